"""The one benchmark command: nnflow against its peers, in one run, as ratios.

    .venv/bin/python benchmarks/run.py [--quick] [--only mnist,cifar,pagerank,workflow]
    make bench

Runs (see each module's docstring): bench_mnist (network2 + modular trainer vs Nielsen's
per-example loop vs PyTorch CPU), bench_cifar (Solver + Adam vs PyTorch CPU, fraction of the
measured GEMM peak, forward/backward/update breakdown), bench_pagerank (the PageRank engineer's
functions: networkx, igraph, 10^6 pages) and bench_workflow (Snakemake DAG build, no-op rerun,
per-job overhead, in a temporary copy). Every comparison is interleaved in the same run; every
figure is min / median of repetitions; the environment (nnflow.runtime.environment(), BLAS library and
kernel via threadpoolctl, thread counts, CPU) is recorded with the results.

Writes benchmarks/results/<timestamp>.csv (+ latest.csv, <timestamp>_env.json, ratios PNG) and
the markdown table to benchmarks/latest.md (committed copy of the latest table). ``--quick``:
fewer repetitions and shorter epochs (figures are per epoch of the size shown); both take
about 10 minutes on a loaded 2-core machine, most of it the workflow part (smoke build).

Run it on demand; it is never part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common as C  # noqa: E402
import noise  # noqa: E402

PAGERANK_TARGETS = {"networkx.pagerank": 0.05, "igraph PRPACK": 1.0}
LARGE_TARGET_S = 5.0
LARGE_TARGET_MB = 3000.0

COLUMNS = ["bench", "case", "tool", "dtype", "threads", "repeats", "min_s", "median_s",
           "ratio_to", "ratio_median", "ratio_min", "target", "meets", "reliable",
           "unreliable_reason", "spread", "ref_spread", "load_max", "foreign_cpu", "blas_kernel"]


def run_pagerank(quick, log):
    import bench_pagerank as BP

    small = 100_000
    large = 200_000 if quick else 1_000_000
    log(f"  PageRank: {small} pages vs networkx/igraph; {large} pages scale case "
        "(bench_pagerank's functions)")
    bw = BP.copy_bandwidth()
    rows = []
    small_rows = BP.bench_small(small, 2026)
    nn = next(r for r in small_rows if r["tool"] == "nnflow (build + iteration)")
    for r in small_rows:
        case = f"{r['case']} ({r['links']} links), tol {BP.TOL} L1"
        if r["tool"] in PAGERANK_TARGETS:
            rows.append(C.row("pagerank", case, r["tool"], [r["seconds"]],
                              max_abs_diff=r.get("max_abs_diff")))
            rows.append(C.row("pagerank", case, "nnflow (build + iteration)", [nn["seconds"]],
                              ref=[r["seconds"]], ref_name=r["tool"],
                              target=PAGERANK_TARGETS[r["tool"]]))
        else:
            rows.append(C.row("pagerank", case, r["tool"], [r["seconds"]],
                              iterations=r.get("iterations")))
    for r in BP.bench_large(large, 2026, bw):
        mem = r["maxrss_mb"]
        ok = bool(r["seconds"] < LARGE_TARGET_S and mem < LARGE_TARGET_MB)
        rows.append(C.row("pagerank", f"{r['case']} ({r['links']} links)", r["tool"],
                          [r["seconds"]], target=LARGE_TARGET_S, meets=ok,
                          peak_traced_mb=r["peak_traced_mb"], maxrss_mb=mem,
                          matvec_vs_bound=r["matvec_vs_bound"], iterations=r["iterations"]))
    return rows


def _fmt(v, digits=3):
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def load_line(conditions, rows):
    """One sentence: the machine's load during the whole run and how many rows it spoiled."""
    bad = [r for r in rows if not r["reliable"]]
    parts = []
    if conditions is not None and conditions.load_max is not None:
        parts.append(f"1-minute load average at most {conditions.load_max:.2f} on "
                     f"{conditions.cores} cores")
    if conditions is not None and conditions.foreign_cpu is not None:
        parts.append(f"other processes used {conditions.foreign_cpu:.2f} cores on average")
    verdict = (f"**{len(bad)} of {len(rows)} rows unreliable** (spread max/min > "
               f"{C.MAX_SPREAD:g}, or other processes competing for the cores): their ratios "
               "are not reported" if bad else
               f"every row reliable (spread max/min <= {C.MAX_SPREAD:g}, no competing load)")
    return f"Load during the run: {', '.join(parts) or 'not recorded'}; {verdict}."


def markdown(rows, env_line, started, quick, elapsed, conditions=None):
    lines = [f"Benchmarks of nnflow ({'--quick' if quick else 'full'} run, {started} UTC, "
             f"{elapsed / 60:.1f} min, git {rows and rows[0].get('git') or ''})",
             "",
             f"Machine: {env_line}",
             "",
             load_line(conditions, rows),
             "",
             "Times are min / median of interleaved repetitions in this run; ratio = nnflow's "
             "median / the peer's median (< 1: nnflow faster). MNIST and CIFAR data are "
             "synthetic random arrays of the real shapes. Regenerate with "
             "`.venv/bin/python benchmarks/run.py` (`make bench`). Spread = max / min of the "
             "contender's repetitions (/ the peer's).",
             "",
             "| benchmark | case | contender | dtype | thr | min s | median s | spread | ratio vs | "
             "ratio | target | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["ratio_median"]
        target = r["target"]
        met = r["meets"]
        if r.get("peak_fraction_median") is not None or \
                r.get("peak_fraction_median_unreliable") is not None:
            ratio = r.get("peak_fraction_median")
            target = f">= {r['target']}" if r["target"] is not None else ""
            met = r.get("meets_peak") if r["target"] is not None else None
            r_to = f"GEMM peak ({r.get('epoch_gflops', 0):.0f} GFLOP/s of an epoch)"
        else:
            r_to = r["ratio_to"]
            target = f"<= {target}" if target is not None else ""
        if r.get("share") is not None:
            r_to, ratio = "share of epoch", r["share"]
        if r.get("gflops_best") is not None:
            r_to, ratio = "GFLOP/s (best)", r["gflops_best"]
        if r.get("maxrss_mb") is not None and r["bench"] == "pagerank":
            r_to, ratio = "max RSS MB", r["maxrss_mb"]
            target = f"< {LARGE_TARGET_S} s, < {LARGE_TARGET_MB:.0f} MB"
        if r["bench"] == "workflow" and r.get("jobs"):
            r_to, ratio = "jobs", r["jobs"]
        if r["bench"] == "workflow" and r["target"] is not None:
            target = f"< {r['target']} s"
        ratio_cell, met_cell = _fmt(ratio), _fmt(met)
        if not r["reliable"]:
            ratio_cell, met_cell = "unreliable", f"unreliable: {r['unreliable_reason']}"
        spread = _fmt(r.get("spread"), 3)
        if r.get("ref_spread") is not None:
            spread += f" / {_fmt(r['ref_spread'], 3)}"
        lines.append("| " + " | ".join([
            r["bench"], r["case"], r["tool"], r["dtype"] or "", _fmt(r["threads"]),
            _fmt(r["min_s"]), _fmt(r["median_s"]), spread, r_to or "", ratio_cell,
            str(target or ""), met_cell]) + " |")
    return "\n".join(lines) + "\n"


def figure(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = []
    for r in rows:
        if r.get("peak_fraction_median") is not None:
            continue
        if r["ratio_median"] is not None and r["target"] is not None:
            items.append((f"{r['bench']} {r['dtype']} {r['tool']} / {r['ratio_to']}",
                          r["ratio_median"], r["target"]))
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(items) + 1.2))
    ys = range(len(items))
    ax.barh(ys, [v for _, v, _ in items],
            color=["tab:green" if v <= t else "tab:red" for _, v, t in items])
    ax.scatter([t for _, _, t in items], ys, marker="|", s=300, color="k", label="target")
    ax.set_yticks(list(ys), [n for n, _, _ in items], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("time ratio nnflow / peer (median of interleaved repetitions; < 1 = faster)")
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, shorter epochs")
    ap.add_argument("--only", default="mnist,cifar,pagerank,workflow",
                    help="comma-separated subset of mnist,cifar,pagerank,workflow")
    ap.add_argument("--no-latest-md", action="store_true",
                    help="do not overwrite benchmarks/latest.md")
    ap.add_argument("--max-spread", type=float, default=noise.SPREAD_LIMIT,
                    help="a contender whose repetitions' max/min exceeds this is unreliable "
                    f"(default {noise.SPREAD_LIMIT})")
    args = ap.parse_args(argv)
    if not args.max_spread > 1:
        ap.error(f"--max-spread must be > 1 (max/min of repetitions), got {args.max_spread}")
    C.MAX_SPREAD = args.max_spread
    unknown = sorted(set(args.only.split(",")) - {"mnist", "cifar", "pagerank", "workflow"})
    if unknown:
        ap.error(f"--only: unknown benchmark(s) {', '.join(unknown)}; choose from "
                 "mnist, cifar, pagerank, workflow")
    which = set(args.only.split(","))
    from nnflow.runtime import environment

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    t0 = time.perf_counter()
    if C.have_torch():
        import torch  # noqa: F401  (load its thread pools before recording the environment)
    env = environment(C.ROOT)
    env_line = C.blas_line()
    log(f"Machine: {env_line}")
    rows = []

    def bench(name):
        if name == "pagerank":
            return lambda: run_pagerank(args.quick, log)
        module = __import__(f"bench_{name}")
        return lambda: module.run(args.quick, log=log)

    with noise.Watch() as whole_run:
        for name in ("mnist", "cifar", "pagerank", "workflow"):
            if name not in which:
                continue
            with noise.Watch() as part:
                part_rows = bench(name)()
            for r in part_rows:  # measured outside common.interleaved: judged by the part's load
                if not r["conditions_known"]:
                    C.judge(r, part.conditions)
            rows += part_rows
    elapsed = time.perf_counter() - t0
    for r in rows:
        r["git"] = env.get("git_commit")
    C.RESULTS.mkdir(parents=True, exist_ok=True)
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    for name in (f"{stamp}.csv", "latest.csv"):
        with open(C.RESULTS / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS + extra)
            w.writeheader()
            w.writerows(rows)
    env_record = {**env, "machine_line": env_line, "quick": args.quick, "started_utc": started,
                  "elapsed_s": elapsed, "load": whole_run.conditions.as_dict(),
                  "max_spread": C.MAX_SPREAD}
    (C.RESULTS / f"{stamp}_env.json").write_text(json.dumps(env_record, indent=2, default=str))
    (C.RESULTS / "latest_env.json").write_text(json.dumps(env_record, indent=2, default=str))
    table = markdown(rows, env_line, started, args.quick, elapsed, whole_run.conditions)
    (C.RESULTS / f"{stamp}.md").write_text(table)
    if not args.no_latest_md:
        (HERE / "latest.md").write_text(table)
    png = figure(rows, C.RESULTS / f"{stamp}_ratios.png")
    if png:
        (C.RESULTS / "latest_ratios.png").write_bytes(Path(png).read_bytes())
    print(table)
    log(f"results: {C.RESULTS / (stamp + '.csv')}, figure {png}, table benchmarks/latest.md")


if __name__ == "__main__":
    main()
