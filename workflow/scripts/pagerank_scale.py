"""One scale case: generate (or read) a large graph, build H^T, run PageRank, time it."""

from nnflow.pagerank.analysis import scale_case_job
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    scale_case_job(
        smk.wildcards.case,
        smk.params.spec,
        smk.output.json,
        alpha=smk.params.alpha,
        tol=smk.params.tol,
        max_iter=smk.params.max_iter,
    )
