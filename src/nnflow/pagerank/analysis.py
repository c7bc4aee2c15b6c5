"""The PageRank stage's computing jobs: a graph spec -> matrices, spectra, iterations, timings.

Each ``*_job`` function is the whole body of one workflow script
(``pagerank_analyse.py``, ``pagerank_scale.py``); ``outputs`` are the rule's named
files (Snakemake's ``output`` or any object with those attributes). The figures
and captions are drawn from these files by :mod:`nnflow.pagerank.report`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from nnflow.files import write_csv, write_json, write_text
from nnflow.pagerank import ranking
from nnflow.pagerank.graphs import EdgeList, edge_list, generate, read_edge_list
from nnflow.runtime import environment

# The per-page tolerance networkx.pagerank runs with for the cross-check (captions state it).
NETWORKX_TOL = 1e-14

log = logging.getLogger(__name__)


def fraction(x: float, max_denominator: int = 1000) -> str:
    """``0.333.. -> '1/3'`` when a small fraction matches to 1e-12, else ``'%.6g'``."""
    f = Fraction(float(x)).limit_denominator(max_denominator)
    if abs(float(f) - x) > 1e-12:
        return f"{x:.6g}"
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def matrix_rst_table(h: np.ndarray, labels, corner: str = "H") -> str:
    """reStructuredText grid table of ``h`` with row/column labels (``S_i``)."""
    head = [corner] + [f"S{lab}" for lab in labels]
    rows = [[f"S{lab}"] + [fraction(v) for v in row] for lab, row in zip(labels, h, strict=True)]
    width = max(len(c) for r in [head, *rows] for c in r)
    sep = "+" + "+".join("-" * (width + 2) for _ in head) + "+"
    hsep = sep.replace("-", "=")

    def line(cells):
        return "|" + "|".join(f" {c:>{width}} " for c in cells) + "|"

    out = [sep, line(head), hsep]
    for r in rows:
        out += [line(r), sep]
    return "\n".join(out) + "\n"


def load_graph(name: str, spec: Mapping[str, Any]) -> EdgeList:
    """The small graph of ``pagerank.graphs.<name>``: a literal edge list or an edge-list file."""
    if spec.get("file"):
        return read_edge_list(
            spec["file"],
            index_base=spec.get("index_base", 1),
            n_pages=spec.get("n_pages"),
            delimiter=spec.get("delimiter", "auto"),
        )
    return edge_list(
        spec["edges"],
        index_base=spec.get("index_base", 1),
        n_pages=spec.get("n_pages"),
        source=f"pagerank.graphs.{name}.edges",
    )


def analyse_graph_job(
    name: str,
    graph: str | Mapping[str, Any],
    outputs: Any,
    *,
    alpha: float,
    unit_tolerance: float,
    steps: int,
    tol: float,
    max_iter: int,
    dense_max_pages: int,
) -> dict[str, Any]:
    """Aufgabe 12 for one small graph: H, eigenvalues, plain iteration, PageRank -> CSV/JSON.

    Returns the summary written to ``outputs.summary``.
    """
    spec = json.loads(graph) if isinstance(graph, str) else dict(graph)
    g = load_graph(name, spec)
    a = ranking.analyse_graph(
        g,
        alpha=alpha,
        unit_tolerance=unit_tolerance,
        steps=steps,
        start_page=spec.get("start_page"),
        personalization=spec.get("personalization"),
        tol=tol,
        max_iter=max_iter,
        dense_max_pages=dense_max_pages,
    )
    labels = g.labels.tolist()
    res = a["result"]
    try:
        ref = ranking.networkx_pagerank(g, res.alpha, a["personalization"], tol=NETWORKX_TOL)
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
        outputs.matrix,
        [
            {"page": f"S{lab}", **{f"S{c}": float(v) for c, v in zip(labels, row, strict=True)}}
            for lab, row in zip(labels, a["H"], strict=True)
        ],
        cols,
    )
    write_text(outputs.table, matrix_rst_table(a["H"], labels))
    lam = a["eigenvalues"]
    tol_u = unit_tolerance
    write_csv(
        outputs.eigenvalues,
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
        outputs.iteration,
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
        outputs.pagerank,
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
        outputs.convergence,
        [
            {"k": k, "residual": float(r), "bound": float(b)}
            for k, (r, b) in enumerate(zip(res.residuals, a["bound"], strict=True))
        ],
        ["k", "residual", "bound"],
    )
    st = a["structure"]
    steps_change = np.abs(np.diff(hist, axis=0)).sum(axis=1)
    summary = {
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
        "networkx_tol": NETWORKX_TOL,
        "pagerank": {str(lab): float(res.x[i]) for i, lab in enumerate(labels)},
    }
    write_json(outputs.summary, summary)
    return summary


def scale_case_job(case: str, spec: str | Mapping[str, Any], out_json: str, *, alpha: float, tol: float,
                   max_iter: int) -> dict[str, Any]:
    """One scale case: generate (or read) a large graph, build H^T, run PageRank, time it."""
    spec = json.loads(spec) if isinstance(spec, str) else dict(spec)
    if spec["kind"] == "file":

        def make():
            return read_edge_list(
                spec["path"],
                index_base=spec["index_base"],
                n_pages=spec["n_pages"],
                delimiter=spec["delimiter"],
            )
    else:

        def make():
            return generate(
                spec["kind"],
                spec["n"],
                mean_out_degree=spec["mean_out_degree"],
                dangling_fraction=spec["dangling_fraction"],
                seed=spec["seed"],
                exponent=spec["exponent"],
            )

    row, _ = ranking.run_scale_case(make, alpha=alpha, tol=tol, max_iter=max_iter)
    row.update(case=case, case_kind=spec["kind"], alpha=alpha, tol=tol)
    log.info("%s", row)
    write_json(out_json, {"row": row, "spec": spec, "environment": environment()})
    return row
