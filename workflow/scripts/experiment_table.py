from nnflow.report.table_jobs import write_experiment_tables
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    write_experiment_tables(smk.wildcards.experiment, smk.input.metrics, smk.input.run_info,
                            dict(smk.output.items()))
