"""The PageRank stage's report jobs: analysis files -> figures and captions with the numbers.

Each ``*_job`` function is the whole body of one workflow script
(``pagerank_figures.py``, ``pagerank_scale_summary.py``); ``inputs`` / ``outputs``
are the rule's named files. Nothing here computes PageRank: editing the solver
reruns these jobs only through their inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnflow.files import read_json, write_csv
from nnflow.pagerank import figures
from nnflow.report.captions import render_caption

# The sheet's figure of its "model internet" is not available: config.yaml ships this 6-page graph
# (page ids from 1, link i -> j as (i, j)) in its place. A graph with exactly these links is that
# stand-in, and its captions say so.
STAND_IN_LINKS = frozenset({(1, 2), (1, 3), (2, 4), (3, 1), (3, 2), (3, 5), (4, 5), (5, 6), (6, 4)})

SCALE_COLUMNS = [
    "case", "case_kind", "n", "links", "duplicates", "dangling", "iterations", "final_residual",
    "generate_s", "build_s", "pagerank_s", "per_iteration_s", "matvec_s", "csr_mb", "peak_traced_mb",
    "maxrss_mb", "alpha", "tol", "links_given",
]


def matrix_links(matrix_csv: str | Path) -> set[tuple[int, int]]:
    """The links (i, j), page i -> page j, of the hyperlink matrix H written by the analysis job
    (rows ``page`` = 'S<i>', columns 'S<j>', entry 1/|S_i| for a link, else 0)."""
    h = pd.read_csv(matrix_csv).set_index("page")
    return {
        (int(str(row)[1:]), int(str(col)[1:]))
        for row, values in h.iterrows()
        for col, value in values.items()
        if value > 0
    }


def graph_provenance(name: str, source: str, links: set[tuple[int, int]]) -> str:
    """The captions' statement of where the graph comes from, computed from its actual links:
    the shipped stand-in says it is one and names the config keys that replace it."""
    keys = f"``pagerank.graphs.{name}.edges`` (pairs [i, j]: page i links to page j) or, for an edge-list " \
        f"file, ``pagerank.graphs.{name}.file``"
    if links == STAND_IN_LINKS:
        n_pages = len({page for link in links for page in link})
        return (
            f"**\"{name}\" is a stand-in**: the sheet's figure of its model internet is not available, so "
            f"these are the answers for a {n_pages}-page graph chosen in its "
            f"place, not the sheet's. To analyse the sheet's own graph, enter its links as {keys} in "
            "``config.yaml``."
        )
    where = f"the file ``{source}``" if not source.startswith("pagerank.graphs.") else f"``{source}``"
    return f"The links of \"{name}\" come from {where} (config ``pagerank.graphs.{name}``)."


def graph_figures_job(inputs: Any, outputs: Any) -> None:
    """Figures and captions (with the measured numbers) of one small graph."""
    s = read_json(inputs.summary)
    table = Path(inputs.table).read_text(encoding="utf-8")
    lam = np.array([complex(re, im) for re, im in s["eigenvalues"]])
    labels = pd.read_csv(inputs.pagerank)["page"].tolist()

    def pages(ls):
        return "{" + ", ".join(f"S{p}" for p in ls) + "}"

    closed = s["closed_classes"]
    periods = [c["period"] for c in closed]
    closed_text = "; ".join(f"{pages(c['pages'])} (period {c['period']})" for c in closed) or "none"
    if s["dangling"]:
        dangling_text = (
            f"The dangling pages {pages(s['dangling'])} have no out-links: their rows of H are zero, "
            "so H is substochastic and the surfer's probability mass that reaches them is lost; "
            "each such page contributes the eigenvalue 0, not 1."
        )
    else:
        dangling_text = "There are no dangling pages: every row of H sums to 1 (H is stochastic)."
    eig_text = ", ".join(
        f"{z.real:.4f}{z.imag:+.4f}i" if abs(z.imag) > 1e-12 else f"{z.real:.4f}" for z in lam
    )
    common = {
        "provenance": graph_provenance(s["graph"], s["source"], matrix_links(inputs.matrix)),
        "graph": s["graph"],
        "n": s["n"],
        "links": s["links"],
        "duplicates": s["duplicates"],
        "n_dangling": len(s["dangling"]),
    }
    values = {
        **common,
        "table": table,
        "eigenvalues": eig_text,
        "n_unit": s["n_unit"],
        "unit_tolerance": s["unit_tolerance"],
        "closed_classes": closed_text,
        "n_closed": len(closed),
        "sum_periods": sum(periods),
        "transient": pages(s["transient"]) if s["transient"] else "none",
        "dangling_text": dangling_text,
        "count_matches": "equals" if sum(periods) == s["n_unit"] else "does NOT equal",
    }
    render_caption(inputs.tpl_matrix, values, outputs.cap_matrix)
    figures.plot_eigenvalues(
        lam,
        s["unit_tolerance"],
        s["n_unit"],
        title=f"Eigenvalues of H ({s['graph']})",
        out=outputs.eigenvalues,
    )
    render_caption(inputs.tpl_eigenvalues, values, outputs.cap_eigenvalues)

    hist = pd.read_csv(inputs.iteration).drop(columns="k").to_numpy()
    figures.plot_iteration(hist, labels, s["start_page"], s["period"], out=outputs.iteration)
    period = s["period"]
    if period is None:
        verdict = f"no period was detected within {s['steps']} steps"
    elif period == 1:
        verdict = "the iteration converged from this start"
    else:
        verdict = (
            f"the iterates repeat with period {period} and never converge: the L1 change of the "
            f"last step is still {s['last_step_l1_change']:.3g}"
        )
    render_caption(
        inputs.tpl_iteration,
        {
            **common,
            "start_page": s["start_page"],
            "steps": s["steps"],
            "period": period,
            "verdict": verdict,
            "closed_classes": closed_text,
        },
        outputs.cap_iteration,
    )

    conv = pd.read_csv(inputs.convergence)
    figures.plot_convergence(
        conv["residual"].to_numpy(), s["alpha"], s["lambda2_G"], s["tol"], out=outputs.convergence
    )
    render_caption(
        inputs.tpl_convergence,
        {
            **common,
            "alpha": s["alpha"],
            "iterations": s["iterations"],
            "tol": s["tol"],
            "final_residual": s["final_residual"],
            "lambda2_G": s["lambda2_G"],
            "lambda2_ok": "holds" if s["lambda2_G"] <= s["alpha"] + 1e-12 else "is VIOLATED",
            "bound_ok": "holds at every iteration" if s["bound_holds"] else "is VIOLATED",
            "observed_rate": s["observed_rate"],
            "theory_iterations": s["theory_iterations"],
            "personalization": "a personalisation vector v (also used for dangling rows, as networkx)"
            if s["personalized"]
            else "uniform teleportation v = 1/n",
        },
        outputs.cap_convergence,
    )

    pr = pd.read_csv(inputs.pagerank)
    ref = None if pr["networkx"].isna().all() else pr["networkx"].to_numpy()
    figures.plot_pagerank(labels, pr["pagerank"].to_numpy(), ref, out=outputs.ranking)
    ranking_text = ", ".join(
        f"S{row.page}: {row.pagerank:.6f}" for row in pr.sort_values("rank").itertuples()
    )
    render_caption(
        inputs.tpl_ranking,
        {
            **common,
            "ranking": ranking_text,
            "networkx": s["networkx_status"],
            "networkx_tol": s["networkx_tol"],
            "alpha": s["alpha"],
        },
        outputs.cap_ranking,
    )


def scale_summary_job(case_files: list[str], inputs: Any, outputs: Any) -> list[dict[str, Any]]:
    """Scale study table (CSV + rst), figure and caption."""
    rows = [read_json(p)["row"] for p in case_files]
    write_csv(outputs.csv, rows, SCALE_COLUMNS)
    figures.plot_scale(rows, out=outputs.figure)

    head = [
        "case",
        "pages",
        "links",
        "iterations",
        "time (s)",
        "s/iteration",
        "s/matvec",
        "CSR (MB)",
        "peak (MB)",
    ]
    body = [
        [
            r["case"],
            f"{r['n']:,}",
            f"{r['links']:,}",
            str(r["iterations"]),
            f"{r['pagerank_s']:.3g}",
            f"{r['per_iteration_s']:.3g}",
            f"{r['matvec_s']:.3g}",
            f"{r['csr_mb']:.0f}",
            f"{r['peak_traced_mb']:.0f}",
        ]
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    sep = "  ".join("=" * w for w in widths)

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))

    table = "\n".join([sep, line(head), sep, *map(line, body), sep])
    big = max(rows, key=lambda r: r["links"])
    largest = (
        f"{big['case']} ({big['n']:,} pages, {big['links']:,} links): {big['iterations']} iterations "
        f"in {big['pagerank_s']:.3g} s ({big['per_iteration_s']:.3g} s per iteration vs "
        f"{big['matvec_s']:.3g} s for one mat-vec), graph construction {big['build_s']:.3g} s, "
        f"peak traced memory {big['peak_traced_mb']:.0f} MB for a {big['csr_mb']:.0f} MB CSR matrix"
    )
    render_caption(
        inputs.template,
        {"alpha": rows[0]["alpha"], "tol": rows[0]["tol"], "table": table, "largest": largest},
        outputs.caption,
    )
    return rows
