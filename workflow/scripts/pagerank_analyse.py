"""Aufgabe 12 for one small graph: H, eigenvalues, plain iteration, PageRank -> CSV/JSON."""

from nnflow.pagerank.analysis import analyse_graph_job
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    analyse_graph_job(
        smk.params.name,
        smk.params.graph,
        smk.output,
        alpha=smk.params.alpha,
        unit_tolerance=smk.params.unit_tolerance,
        steps=smk.params.steps,
        tol=smk.params.tol,
        max_iter=smk.params.max_iter,
        dense_max_pages=smk.params.dense_max_pages,
    )
