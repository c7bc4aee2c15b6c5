"""PageRank benchmark (run on demand, not part of the tests).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_pagerank.py [--small 100000] [--large 1000000]

1. at ``--small`` pages (10 links per page, 5 % dangling): nnflow vs ``networkx.pagerank``
   (given ``tol = nnflow_tol / n``: networkx stops at an L1 change < n * tol, so both stop at
   the same L1 change) and igraph's PRPACK (if ``igraph`` is installed);
2. at ``--large`` pages: nnflow time (construction + iteration) and peak memory;
3. one sparse mat-vec against a memory-bandwidth bound: bytes it must touch (CSR once, x and y
   once) divided by a STREAM-like copy bandwidth measured with numpy in the same run; and a
   second bound charging one 64-byte cache line per link for the random gather of x.

Targets: nnflow <= 0.05 x networkx and <= 1.0 x igraph at 10^5 pages; < 5 s and < 3 GB at
10^6 pages / 10^7 links. Prints a table and writes benchmarks/results/pagerank.csv with the
environment (nnflow.runtime.environment()) in benchmarks/results/pagerank_env.json.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import numpy as np

from nnflow.files import write_csv, write_json
from nnflow.pagerank import graphs
from nnflow.pagerank import ranking as P
from nnflow.runtime import environment

ALPHA = 0.85
TOL = 1e-10  # L1 change at which every solver stops
OUT = Path(__file__).resolve().parent / "results"


def copy_bandwidth(nbytes: int = 400_000_000, repeats: int = 5) -> float:
    """STREAM-like copy bandwidth in bytes/s (read + write counted), best of ``repeats``."""
    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best


def best_of(fn, repeats=3):
    times, out = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_small(n: int, seed: int) -> list[dict]:
    g = graphs.generate("erdos_renyi", n, mean_out_degree=10, dangling_fraction=0.05, seed=seed)
    t_build, link = best_of(lambda: P.link_matrix(g))
    t_pr, res = best_of(lambda: P.pagerank(link, alpha=ALPHA, tol=TOL))
    rows = [
        {
            "case": f"er_{n}",
            "tool": "nnflow (build H^T)",
            "n": n,
            "links": link.n_links,
            "seconds": t_build,
            "iterations": None,
        },
        {
            "case": f"er_{n}",
            "tool": "nnflow (power iteration)",
            "n": n,
            "links": link.n_links,
            "seconds": t_pr,
            "iterations": res.iterations,
        },
        {
            "case": f"er_{n}",
            "tool": "nnflow (build + iteration)",
            "n": n,
            "links": link.n_links,
            "seconds": t_build + t_pr,
            "iterations": res.iterations,
        },
    ]
    total = t_build + t_pr
    try:
        import networkx as nx

        gn = nx.DiGraph()
        gn.add_nodes_from(range(n))
        gn.add_edges_from(zip(g.src.tolist(), g.dst.tolist(), strict=True))
        t_nx, pr = best_of(lambda: nx.pagerank(gn, alpha=ALPHA, tol=TOL / n, max_iter=10000), 1)
        x_nx = np.array([pr[i] for i in range(n)])
        rows.append(
            {
                "case": f"er_{n}",
                "tool": "networkx.pagerank",
                "n": n,
                "links": link.n_links,
                "seconds": t_nx,
                "iterations": None,
                "max_abs_diff": float(np.abs(x_nx - res.x).max()),
                "nnflow_ratio": total / t_nx,
            }
        )
    except ImportError:
        print("networkx not installed")
    try:
        import igraph as ig

        gi = ig.Graph(n=n, edges=np.column_stack([g.src, g.dst]).tolist(), directed=True)
        gi.simplify(multiple=True, loops=False)  # duplicates count once, as in nnflow
        t_ig, x_ig = best_of(lambda: np.array(gi.pagerank(damping=ALPHA, implementation="prpack")))
        rows.append(
            {
                "case": f"er_{n}",
                "tool": "igraph PRPACK",
                "n": n,
                "links": gi.ecount(),
                "seconds": t_ig,
                "iterations": None,
                "max_abs_diff": float(np.abs(x_ig - res.x).max()),
                "nnflow_ratio": total / t_ig,
            }
        )
    except ImportError:
        print("igraph not installed (pip install igraph)")
    return rows


def bench_large(n: int, seed: int, bandwidth: float) -> list[dict]:
    rows = []
    for kind in ("erdos_renyi", "scale_free"):
        gc.collect()
        row, res = P.run_scale_case(
            lambda kind=kind: graphs.generate(kind, n, mean_out_degree=10, dangling_fraction=0.05, seed=seed),
            alpha=ALPHA,
            tol=TOL,
        )
        link_bytes = row["csr_mb"] * 1e6
        # one y = H^T x must read data+indices+indptr and x once, write y once
        bytes_min = link_bytes + 2 * 8 * n
        t_bound = bytes_min / bandwidth
        # a random graph gathers x[j] from a random place per link: one 64-byte cache line each
        t_gather = (link_bytes + 8 * n + 64 * row["links"]) / bandwidth
        total = row["build_s"] + row["pagerank_s"]
        rows.append(
            {
                "case": f"{kind}_{n}",
                "tool": "nnflow (build + iteration)",
                "n": n,
                "links": row["links"],
                "seconds": total,
                "iterations": row["iterations"],
                "build_s": row["build_s"],
                "pagerank_s": row["pagerank_s"],
                "per_iteration_s": row["per_iteration_s"],
                "matvec_s": row["matvec_s"],
                "matvec_bound_s": t_bound,
                "matvec_vs_bound": row["matvec_s"] / t_bound,
                "matvec_gather_bound_s": t_gather,
                "peak_traced_mb": row["peak_traced_mb"],
                "maxrss_mb": row["maxrss_mb"],
                "generate_s": row["generate_s"],
            }
        )
        del res
    return rows


COLUMNS = [
    "case",
    "tool",
    "n",
    "links",
    "seconds",
    "iterations",
    "max_abs_diff",
    "nnflow_ratio",
    "build_s",
    "pagerank_s",
    "per_iteration_s",
    "matvec_s",
    "matvec_bound_s",
    "matvec_gather_bound_s",
    "matvec_vs_bound",
    "peak_traced_mb",
    "maxrss_mb",
    "generate_s",
    "bandwidth_gb_s",
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    bw = copy_bandwidth()
    rows = bench_small(args.small, args.seed) + bench_large(args.large, args.seed, bw)
    for r in rows:
        r["bandwidth_gb_s"] = bw / 1e9
    OUT.mkdir(parents=True, exist_ok=True)
    write_csv(OUT / "pagerank.csv", rows, COLUMNS)
    write_json(OUT / "pagerank_env.json", environment())

    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}"
        return str(v)

    shown = [
        "case",
        "tool",
        "links",
        "seconds",
        "iterations",
        "max_abs_diff",
        "nnflow_ratio",
        "per_iteration_s",
        "matvec_s",
        "matvec_gather_bound_s",
        "matvec_bound_s",
        "peak_traced_mb",
        "maxrss_mb",
    ]
    table = [[fmt(r.get(c)) for c in shown] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(shown, *table, strict=True)]
    print("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)))
    for t in table:
        print("  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
    print(f"copy bandwidth: {bw / 1e9:.2f} GB/s; results in {OUT / 'pagerank.csv'}")


if __name__ == "__main__":
    main()
