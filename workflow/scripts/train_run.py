from nnflow.train.checkpoint import checkpoint_interval
from nnflow.train.run import train_run
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    train_run(
        spec=smk.params.spec,
        data_dir=smk.params.data_dir,
        outputs=dict(smk.output.items()),
        checkpoint_dir=smk.params.checkpoint,
        threads=smk.threads,
        code=smk.params.code,
        checkpoint_interval=checkpoint_interval(),
    )
