"""Snakemake script of prepare_dataset: split arrays + provenance.json."""

from pathlib import Path

from nnflow.data.prepare import prepare_dataset
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    prepare_dataset(
        smk.params.source,
        Path(smk.input.record).parent,
        Path(smk.output.provenance).parent,
        **smk.params.settings,
    )
