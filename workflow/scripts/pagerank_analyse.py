"""Aufgabe 12 for one small graph: H, eigenvalues, plain iteration, PageRank -> CSV/JSON."""

from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    import json
    import logging

    import numpy as np

    from nnflow.files import write_csv, write_json, write_text
    from nnflow.pagerank import graphs
    from nnflow.pagerank import ranking as P
    from nnflow.pagerank.figures import matrix_rst_table

    log = logging.getLogger("nnflow.pagerank.ranking")
    spec = json.loads(smk.params.graph)
    name = smk.params.name
    if spec.get("file"):
        g = graphs.read_edge_list(
            spec["file"],
            index_base=spec.get("index_base", 1),
            n_pages=spec.get("n_pages"),
            delimiter=spec.get("delimiter", "auto"),
        )
    else:
        g = graphs.edge_list(
            spec["edges"],
            index_base=spec.get("index_base", 1),
            n_pages=spec.get("n_pages"),
            source=f"pagerank.graphs.{name}.edges",
        )
    a = P.analyse_graph(
        g,
        alpha=smk.params.alpha,
        unit_tolerance=smk.params.unit_tolerance,
        steps=smk.params.steps,
        start_page=spec.get("start_page"),
        personalization=spec.get("personalization"),
        tol=smk.params.tol,
        max_iter=smk.params.max_iter,
        dense_max_pages=smk.params.dense_max_pages,
    )
    labels = g.labels.tolist()
    res = a["result"]
    try:
        ref = P.networkx_pagerank(g, res.alpha, a["personalization"], tol=1e-14)
        nx_diff = float(np.abs(ref - res.x).max())
        nx_status = f"largest absolute difference nnflow vs networkx {nx_diff:.2e}"
    except ImportError:
        ref, nx_diff, nx_status = None, None, "networkx not installed"
    log.info(
        "%s: %d eigenvalues with |lambda|=1, period %s, %d iterations, %s",
        name,
        a["n_unit"],
        a["period"],
        res.iterations,
        nx_status,
    )

    cols = ["page"] + [f"S{lab}" for lab in labels]
    write_csv(
        smk.output.matrix,
        [
            {"page": f"S{lab}", **{f"S{c}": float(v) for c, v in zip(labels, row, strict=True)}}
            for lab, row in zip(labels, a["H"], strict=True)
        ],
        cols,
    )
    write_text(smk.output.table, matrix_rst_table(a["H"], labels))
    lam = a["eigenvalues"]
    tol_u = smk.params.unit_tolerance
    write_csv(
        smk.output.eigenvalues,
        [
            {
                "index": i + 1,
                "real": float(z.real),
                "imag": float(z.imag),
                "modulus": float(abs(z)),
                "unit_modulus": int(abs(abs(z) - 1) <= tol_u),
            }
            for i, z in enumerate(lam)
        ],
        ["index", "real", "imag", "modulus", "unit_modulus"],
    )
    hist = a["history"]
    write_csv(
        smk.output.iteration,
        [
            {"k": k, **{f"S{lab}": float(v) for lab, v in zip(labels, row, strict=True)}}
            for k, row in enumerate(hist)
        ],
        ["k"] + [f"S{lab}" for lab in labels],
    )
    order = np.argsort(-res.x, kind="stable")
    rank = np.empty(g.n, dtype=int)
    rank[order] = np.arange(1, g.n + 1)
    write_csv(
        smk.output.pagerank,
        [
            {
                "page": lab,
                "pagerank": float(res.x[i]),
                "rank": int(rank[i]),
                "networkx": None if ref is None else float(ref[i]),
            }
            for i, lab in enumerate(labels)
        ],
        ["page", "pagerank", "rank", "networkx"],
    )
    write_csv(
        smk.output.convergence,
        [
            {"k": k, "residual": float(r), "bound": float(b)}
            for k, (r, b) in enumerate(zip(res.residuals, a["bound"], strict=True))
        ],
        ["k", "residual", "bound"],
    )
    st = a["structure"]
    steps_change = np.abs(np.diff(hist, axis=0)).sum(axis=1)
    write_json(
        smk.output.summary,
        {
            "graph": name,
            "source": g.source,
            "n": g.n,
            "links_given": g.m,
            "links": a["link"].n_links,
            "duplicates": a["link"].n_duplicates,
            "dangling": [labels[i] for i in st["dangling"]],
            "transient": [labels[i] for i in st["transient"]],
            "closed_classes": [
                {"pages": [labels[i] for i in c.pages], "period": c.period} for c in st["closed"]
            ],
            "unit_tolerance": tol_u,
            "n_unit": a["n_unit"],
            "eigenvalues": [[float(z.real), float(z.imag)] for z in lam],
            "start_page": labels[a["start"]],
            "steps": int(hist.shape[0] - 1),
            "period": a["period"],
            "last_step_l1_change": float(steps_change[-1]),
            "alpha": res.alpha,
            "personalized": a["personalization"] is not None,
            "tol": res.tol,
            "iterations": res.iterations,
            "converged": res.converged,
            "final_residual": float(res.residuals[-1]),
            "lambda2_G": a["lambda2_G"],
            "bound_holds": a["bound_holds"],
            "observed_rate": a["observed_rate"],
            "theory_iterations": a["theory_iterations"],
            "networkx_max_abs_diff": nx_diff,
            "networkx_status": nx_status,
            "pagerank": {str(lab): float(res.x[i]) for i, lab in enumerate(labels)},
        },
    )
