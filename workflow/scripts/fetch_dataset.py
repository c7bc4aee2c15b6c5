"""Snakemake script of fetch_<dataset>: verified raw files into the download cache."""

from nnflow.data.fetch import fetch
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    fetch(
        smk.params.dataset,
        smk.params.download_dir,
        accept_mirror_checksums=smk.params.accept_mirror,
        options=smk.params.transport,
    )
