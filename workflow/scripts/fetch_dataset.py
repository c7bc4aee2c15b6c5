"""Snakemake script of fetch_<dataset>: verified raw files into the download cache."""

from nnflow.data.fetch import fetch
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    fetch(smk.params.source, smk.params.download_dir, options=smk.params.transport)
