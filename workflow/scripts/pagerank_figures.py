"""Figures and captions (with the measured numbers) of one small graph."""

from nnflow.pagerank.report import graph_figures_job
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    graph_figures_job(smk.input, smk.output)
