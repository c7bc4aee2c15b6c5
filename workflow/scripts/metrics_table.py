from nnflow.report.table_jobs import write_study_tables
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    write_study_tables(smk.input.metrics, smk.input.summaries, smk.input.final_metrics,
                       smk.input.final_runs, smk.input.final_tests, dict(smk.output.items()))
