from nnflow.train.challenge import train_final
from nnflow.train.checkpoint import checkpoint_interval
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    train_final(
        chosen_path=smk.input.chosen,
        final=smk.params.final,
        data_dir=smk.params.data_dir,
        outputs=dict(smk.output.items()),
        checkpoint_dir=smk.params.checkpoint,
        threads=smk.threads,
        code=smk.params.code,
        checkpoint_interval=checkpoint_interval(),
    )
