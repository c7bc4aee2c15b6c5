from nnflow.report.table_jobs import write_environment_tables
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    write_environment_tables(smk.input.run_infos, dict(smk.output.items()))
