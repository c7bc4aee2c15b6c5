"""The PageRank scale study's cases, resolved from ``pagerank.scale`` of the config.

The config is validated first (the schema fills in every default), so this module
reads values and never states a default of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# The files of one small graph's analysis (rule pagerank_analyse_<graph>) and of its
# figures and captions (rule pagerank_figures_<graph>), by output name.
GRAPH_ANALYSIS_FILES = {
    "matrix": "hyperlink_matrix.csv",
    "table": "hyperlink_matrix_table.rst",
    "eigenvalues": "eigenvalues.csv",
    "iteration": "iteration.csv",
    "pagerank": "pagerank.csv",
    "convergence": "convergence.csv",
    "summary": "summary.json",
}
GRAPH_FIGURES = ("eigenvalues", "iteration", "convergence", "ranking")
GRAPH_CAPTIONS = ("matrix", "eigenvalues", "iteration", "convergence", "ranking")
GRAPH_FIGURE_FILES = {
    **{key: f"{fig}.{ext}" for fig in GRAPH_FIGURES for key, ext in ((fig, "png"), (f"{fig}_pdf", "pdf"))},
    **{f"cap_{cap}": f"captions/{cap}.rst" for cap in GRAPH_CAPTIONS},
}

GENERATED_KEYS = ("mean_out_degree", "dangling_fraction", "exponent", "seed")
FILE_KEYS = ("index_base", "n_pages", "delimiter")
# Peak bytes of a scale case (measured by tracemalloc: ~20 bytes per link to build the CSR
# of H^T, up to ~40 to read and renumber an edge list's ids, ~40 bytes per page for the
# iteration's vectors), with a margin. A link's budget also pays for one page's vectors.
BYTES_PER_LINK = 60
BYTES_PER_PAGE = 48
BASE_MEM_MB = 500
# Typical bytes per line of an edge-list file ("12345,67890\n" is 12).
BYTES_PER_LINE = 8


def scale_cases(pagerank: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Case name -> everything that defines the case (generated graphs and edge-list files).

    Empty when the PageRank stage or its scale study is disabled.
    """
    scale = pagerank["scale"]
    if not (pagerank["enabled"] and scale["enabled"]):
        return {}
    cases: dict[str, dict[str, Any]] = {}
    for kind in scale["generators"]:
        for n in scale["sizes"]:
            cases[f"{kind}_{n}"] = {"kind": kind, "n": int(n), **{k: scale[k] for k in GENERATED_KEYS}}
    for name, spec in scale["files"].items():
        cases[f"file_{name}"] = {"kind": "file", "path": spec["path"], **{k: spec[k] for k in FILE_KEYS}}
    return cases


def case_links(spec: Mapping[str, Any]) -> int:
    """The (estimated) number of links of a case, for its memory request."""
    if spec["kind"] == "file":
        path = spec["path"]
        # before the file exists the job cannot run anyway; ask for a generous amount
        return max(1, os.path.getsize(path) // BYTES_PER_LINE) if os.path.exists(path) else 10**7
    return int(spec["n"] * spec["mean_out_degree"])


def case_pages(spec: Mapping[str, Any]) -> int:
    """The (estimated) number of pages of a case, for its memory request.

    An edge list without ``n_pages`` has as pages the ids its links name (see
    :mod:`nnflow.pagerank.graphs`), counted here as one per estimated link: the
    8-byte lines of :data:`BYTES_PER_LINE` already over-count the links of any
    graph with more than a few hundred pages, whose ids take more digits.
    """
    if spec["kind"] == "file":
        return int(spec["n_pages"]) if spec.get("n_pages") else case_links(spec)
    return int(spec["n"])


def case_mem_mb(spec: Mapping[str, Any]) -> int:
    """Memory (MB) a scale case asks the scheduler for.

    ``BASE_MEM_MB + (BYTES_PER_LINK * links + BYTES_PER_PAGE * max(0, pages - links)) / 10^6``:
    the size of the graph the job holds, never the size of its largest page id.
    """
    links = case_links(spec)
    extra_pages = max(0, case_pages(spec) - links)
    return BASE_MEM_MB + (links * BYTES_PER_LINK + extra_pages * BYTES_PER_PAGE) // 10**6
