"""Rule unstable_theory: Aufgabe 26 (a)-(c) numbers, table, figures and caption."""

from nnflow.theory.unstable_job import unstable_theory_job
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    unstable_theory_job(smk.params.theory, smk.input.template, smk.output)
