"""Scale study table (CSV + rst), figure and caption."""

from nnflow.pagerank.report import scale_summary_job
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    scale_summary_job(list(smk.input.cases), smk.input, smk.output)
