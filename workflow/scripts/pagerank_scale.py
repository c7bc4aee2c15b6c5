"""One scale case: generate (or read) a large graph, build H^T, run PageRank, time it."""

from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    import json
    import logging

    from nnflow.files import write_json
    from nnflow.pagerank import graphs
    from nnflow.pagerank import ranking as P
    from nnflow.runtime import environment

    spec = json.loads(smk.params.spec)
    if spec["kind"] == "file":

        def make():
            return graphs.read_edge_list(
                spec["path"],
                index_base=spec["index_base"],
                n_pages=spec["n_pages"],
                delimiter=spec["delimiter"],
            )
    else:

        def make():
            return graphs.generate(
                spec["kind"],
                spec["n"],
                mean_out_degree=spec["mean_out_degree"],
                dangling_fraction=spec["dangling_fraction"],
                seed=spec["seed"],
                exponent=spec["exponent"],
            )

    row, res = P.run_scale_case(
        make, alpha=smk.params.alpha, tol=smk.params.tol, max_iter=smk.params.max_iter
    )
    row.update(case=smk.wildcards.case, case_kind=spec["kind"], alpha=smk.params.alpha, tol=smk.params.tol)
    logging.getLogger("nnflow.pagerank.ranking").info("%s", row)
    write_json(smk.output.json, {"row": row, "spec": spec, "environment": environment()})
