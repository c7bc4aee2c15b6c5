from nnflow.report.tables import experiment_tables, write_frame
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    tidy, summary = experiment_tables(list(smk.input.metrics), list(smk.input.run_info))
    write_frame(smk.output.metrics, tidy)
    write_frame(smk.output.summary, summary)
