"""Workflow benchmark: Snakemake DAG build, no-op rerun and per-job overhead, in a temporary copy.

Never touches /work/main's results/: the Snakefile, workflow/, config.yaml and tests/smoke are
copied to a temporary directory (nnflow itself is the installed package) and everything runs
there:

1. DAG build of the FULL config: ``snakemake -n --quiet rules`` (nothing is built, so this
   times parsing + DAG construction with every job pending);
2. the smoke config (tests/smoke/config.yaml) on a synthetic mirror
   (``nnflow.data.synthetic.write_mirror``, ``NNFLOW_DATA_MIRROR``) is run once, untimed; then a
   no-op rerun (``snakemake`` with nothing to do) is timed;
3. DAG build for a 300-candidate random search: the smoke config with
   ``cifar_challenge.search.n_candidates = 300``;
4. per-job overhead of the train rule: one tiny 1-epoch run forced through Snakemake
   (``snakemake --forcerun <its run.json>``, whole command timed) vs the same run as a library
   call (``nnflow.train.run.train_run``) in a fresh Python process, timed the same way
   (process start + imports included in both); and that difference less the no-op rerun's
   time (Snakemake's start-up and DAG build, paid once per command): what each job of a
   reproduction costs beyond its own process.

    .venv/bin/python benchmarks/bench_workflow.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

try:
    import common as C
except ImportError:  # pragma: no cover
    from benchmarks import common as C

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TARGET_NOOP_S = 3.0


def _copy_tree(dst: Path) -> None:
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(C.ROOT / name, dst / name)
    shutil.copytree(C.ROOT / "workflow", dst / "workflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(C.ROOT / "profiles", dst / "profiles")
    (dst / "requirements").mkdir()  # the Snakefile names its container image by the lock's digest
    shutil.copy2(C.ROOT / "requirements" / "lock.txt", dst / "requirements" / "lock.txt")
    (dst / "tests" / "smoke").mkdir(parents=True)
    shutil.copy2(C.ROOT / "tests" / "smoke" / "config.yaml", dst / "tests" / "smoke")


def _smk(cwd: Path, *args, env=None, timeout=3600) -> tuple[float, str]:
    cmd = [SNAKEMAKE, "--cores", "2", "--workflow-profile", "none", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return dt, proc.stdout + proc.stderr


def _count_jobs(text: str) -> int | None:
    # `snakemake -n --quiet rules` prints a table "rule  count" ending in "total  N"
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "total" and parts[1].isdigit():
            return int(parts[1])
    return None


def _job_rules(text: str) -> str:
    """The 'Job stats' table of a snakemake run as 'rule xN, ...'."""
    out, inside = [], False
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("Job stats"):
            inside = True
            continue
        if inside and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            out.append(f"{parts[0]} x{parts[1]}")
    return ", ".join(out) or "unknown"


def run(quick=False, repeats=None, log=print, keep=False):
    repeats = repeats or (2 if quick else 3)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="nnflow-bench-workflow-"))
    try:
        _copy_tree(tmp)
        env = {**os.environ}
        # 1. DAG build of the full config
        log("  workflow: DAG build of the full config")
        ts, jobs = [], None
        for _ in range(repeats):
            dt, out = _smk(tmp, "-n", "--quiet", "rules", env=env)
            ts.append(dt)
            jobs = _count_jobs(out)
        rows.append(C.row("workflow", "full config.yaml", "DAG build (snakemake -n --quiet rules)",
                          ts, jobs=jobs))
        # 3. 300-candidate search DAG (smoke-derived)
        smoke = yaml.safe_load((tmp / "tests" / "smoke" / "config.yaml").read_text())
        big = copy.deepcopy(smoke)
        big["experiments"]["cifar_challenge"]["search"]["n_candidates"] = 300
        (tmp / "search300.yaml").write_text(yaml.safe_dump(big, sort_keys=False))
        log("  workflow: DAG build of a 300-candidate search")
        ts = []
        for _ in range(repeats):
            dt, out = _smk(tmp, "-n", "--quiet", "rules", "--configfile", "search300.yaml", env=env)
            ts.append(dt)
            jobs = _count_jobs(out)
        rows.append(C.row("workflow", "smoke config, cifar_challenge n_candidates=300",
                          "DAG build (snakemake -n --quiet rules)", ts, jobs=jobs))
        # 2. smoke run, then no-op rerun
        from nnflow.data.synthetic import write_mirror

        mirror = write_mirror(tmp / "mirror", np.random.default_rng(7), n_train=600, n_test=100)
        env["NNFLOW_DATA_MIRROR"] = str(mirror)
        log("  workflow: smoke run (untimed build of everything; a few minutes)")
        t_build, _ = _smk(tmp, "--configfile", "tests/smoke/config.yaml", env=env)
        ts, reran = [], []
        for _ in range(repeats):
            dt, out = _smk(tmp, "--configfile", "tests/smoke/config.yaml", env=env)
            if "Nothing to be done" not in out:
                jobs = _job_rules(out)
                reran.append(jobs)
                log(f"  workflow: WARNING the no-op rerun had work to do: {jobs}")
            ts.append(dt)
        noop_s = float(np.median(ts))
        rows.append(C.row("workflow", "smoke config, everything built", "no-op rerun (snakemake)",
                          ts, target=TARGET_NOOP_S, meets=bool(np.median(ts) < TARGET_NOOP_S),
                          smoke_build_s=t_build, rerun_jobs="; ".join(reran) or None))
        ts = []
        for _ in range(repeats):
            dt, out = _smk(tmp, "-n", "--configfile", "tests/smoke/config.yaml", env=env)
            ts.append(dt)
        rows.append(C.row("workflow", "smoke config, everything built", "no-op dry run (snakemake -n)",
                          ts, target=TARGET_NOOP_S, meets=bool(np.median(ts) < TARGET_NOOP_S)))
        # 4. per-job overhead of the train rule
        rows += _job_overhead(tmp, env, repeats, log, noop_s)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


LIB_CALL = """
import sys, time
t0 = time.perf_counter()
from nnflow.train.run import train_run
train_run(spec=sys.argv[1], data_dir=sys.argv[2], outputs=dict(
    metrics=sys.argv[3] + '/metrics.csv', model=sys.argv[3] + '/model.npz',
    model_meta=sys.argv[3] + '/model.json', run_info=sys.argv[3] + '/run.json'),
    checkpoint_dir=sys.argv[3] + '/ckpt', threads=1)
print(time.perf_counter() - t0)
"""


def _job_overhead(tmp: Path, env, repeats, log, noop_s):
    from nnflow.train.grid import canonical_json, expand_runs

    cfg = yaml.safe_load((tmp / "tests" / "smoke" / "config.yaml").read_text())
    runs = expand_runs(cfg["experiments"])
    # the first network2 run of the smoke config (a few epochs on a few hundred examples)
    run_ = next(r for r in runs.values() if r.trainer == "network2")
    run_json = tmp / "results" / "runs" / run_.run_id / "run.json"
    rel = run_json.relative_to(tmp)
    log(f"  workflow: per-job overhead of the train rule ({rel.parent})")
    spec = canonical_json(run_.spec())
    data_dir = tmp / "results" / "data" / run_.dataset
    ts_smk, ts_lib, ts_inner = [], [], []
    for i in range(repeats):
        dt, _ = _smk(tmp, "--configfile", "tests/smoke/config.yaml", "--forcerun", str(rel),
                     "--", str(rel), env=env)
        ts_smk.append(dt)
        out = tmp / f"libcall{i}"
        out.mkdir()
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", LIB_CALL, spec, str(data_dir), str(out)],
                              env=env, capture_output=True, text=True, timeout=600)
        ts_lib.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        ts_inner.append(float(proc.stdout.strip().splitlines()[-1]))
    case = f"one tiny run ({run_.run_id})"
    return [
        C.row("workflow", case, "train rule through snakemake (whole command)", ts_smk,
              ref=ts_lib, ref_name="library call in a fresh python"),
        C.row("workflow", case, "library call in a fresh python (whole process)", ts_lib),
        C.row("workflow", case, "library call (train_run alone, imports included)", ts_inner),
        C.row("workflow", case, "per-job overhead (snakemake - library process)",
              [a - b for a, b in zip(ts_smk, ts_lib, strict=True)]),
        # The row above includes Snakemake's start-up and DAG build, paid once per command, not
        # per job; a reproduction's jobs each pay only the rest: the script runner's new Python,
        # its pickled preamble, benchmark and output bookkeeping.
        C.row("workflow", case, "per-job overhead within a run (snakemake - no-op rerun - library process)",
              [a - noop_s - b for a, b in zip(ts_smk, ts_lib, strict=True)]),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = ap.parse_args(argv)
    rows = run(args.quick, args.repeats, keep=args.keep)
    for r in rows:
        print(f"{r['case'][:50]:50s} {r['tool'][:50]:50s} min {r['min_s']:.2f}s "
              f"median {r['median_s']:.2f}s jobs={r.get('jobs')}")
    return rows


if __name__ == "__main__":
    main()
