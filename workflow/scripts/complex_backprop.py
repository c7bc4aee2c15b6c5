"""Rule complex_backprop: gradient check and training of a complex-valued net."""

from nnflow.theory.complex_job import complex_backprop_job
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    complex_backprop_job(smk.params.experiment, smk.input.template, smk.output)
