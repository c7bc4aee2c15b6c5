from nnflow.report.tables import concat_tables, write_frame
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    write_frame(smk.output.metrics, concat_tables(list(smk.input.metrics)))
    write_frame(smk.output.summary, concat_tables(list(smk.input.summaries)))
