"""The workflow on a real (local, one-node) SLURM cluster, against a local run of the same config.

A throw-away cluster (tests/slurm_cluster.py: Debian slurm-wlm + munge, installed if missing,
skipped with the reason if that is impossible) runs the smoke config's training runs and
aggregation tables with ``--profile profiles/slurm``; the same targets run locally at the same
time. The tests check that

(a) the jobs really went through SLURM: every SLURM job id that Snakemake reports is in the
    cluster's completion log, the plugin wrote a log per job, and the number of SLURM jobs is
    what the profile's grouping implies (all short network2 runs in one group job);
(b) the results are bit-identical to the local run (model.npz arrays, prepared data, every
    table), apart from wall-clock timing columns/fields, logs and benchmarks;
(c) the downloads ran on the submit host (localrules), never as SLURM jobs.

Theory, PageRank and figure jobs are left out to keep the test at a few minutes on two cores
(each SLURM job starts Snakemake twice, ~15 s); NNFLOW_SLURM_FULL_DAG=1 runs the whole DAG.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from slurm_cluster import PARTITION, cluster_or_skip
from snakemake_output import job_stats

from nnflow.data.synthetic import write_mirror
from nnflow.train.grid import expand_runs

pytestmark = [pytest.mark.slurm, pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SMOKE_CONFIG = ROOT / "tests" / "smoke" / "config.yaml"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
FULL_DAG = os.environ.get("NNFLOW_SLURM_FULL_DAG") == "1"
# Every training run (via the tidy tables) and the challenge's selection + final retraining.
TARGETS = [] if FULL_DAG else [
    "results/metrics.csv",
    "results/summary.csv",
    "results/experiments/cifar_challenge/final/test.json",
]
LOCAL_RULES = {"fetch_mnist", "fetch_cifar10"}
NO_JOB_RULES = {"all"}  # rules without an action run nowhere
GROUPED_RULE, GROUP, GROUP_COMPONENTS = "train_network2", "mnist_runs", 6


def _base_cmd(work: Path) -> list[str]:
    return [SNAKEMAKE, *TARGETS, "-s", str(ROOT / "Snakefile"), "--directory", str(work),
            "--configfile", str(work.parent / "config.yaml")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with cluster_or_skip(tmp_path_factory.mktemp("slurm")) as c:
        yield c


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same smoke targets through SLURM and locally (side by side); both must succeed."""
    base = tmp_path_factory.mktemp("slurmflow")
    mirror = write_mirror(base / "mirror", np.random.default_rng(0), n_train=600, n_test=200)
    shutil.copy(SMOKE_CONFIG, base / "config.yaml")
    env = {**cluster.env, "NNFLOW_DATA_MIRROR": str(mirror)}
    slurm_cmd = [
        *_base_cmd(base / "slurm"),
        "--profile", str(ROOT / "profiles" / "slurm"), "--workflow-profile", "none",
        "--cores", "2",                              # the test node's CPUs: the most one job may ask for
        "--slurm-status-command", "squeue",          # no accounting daemon, so no sacct
        "--slurm-no-account",
        # the README's recipe: --default-resources replaces the profile's list, so every rule
        # must declare its own mem_mb and runtime (checked in test_jobs_ran_as_slurm_jobs)
        "--default-resources", f"slurm_partition={PARTITION}",
        "--slurm-init-seconds-before-status-checks", "1",
        "--seconds-between-status-checks", "1",
        "--max-status-checks-per-second", "10",
        "--slurm-keep-successful-logs",              # the per-job logs are evidence below
    ]
    local_cmd = [*_base_cmd(base / "local"), "--cores", "2"]  # + profiles/default (workflow profile)
    with open(base / "slurm.out", "w") as s_out, open(base / "local.out", "w") as l_out:
        procs = {
            "slurm": subprocess.Popen(slurm_cmd, env=env, stdout=s_out, stderr=subprocess.STDOUT),
            "local": subprocess.Popen(local_cmd, env=env, stdout=l_out, stderr=subprocess.STDOUT),
        }
        try:
            codes = {name: p.wait(timeout=900) for name, p in procs.items()}
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.terminate()
                    p.wait(60)
    out = {name: (base / f"{name}.out").read_text() for name in procs}
    for name, code in codes.items():
        assert code == 0, f"{name} run failed ({code}):\n{out[name][-6000:]}\n{cluster.diagnostics()}"
    return {"base": base, "slurm": base / "slurm", "local": base / "local", "out": out}


def _slurm_jobs(cluster) -> dict[str, dict[str, str]]:
    """SLURM job id -> comment (the plugin writes rule/group + wildcards there), partition, CPUs,
    time limit and requested memory."""
    res = subprocess.run(["squeue", "-h", "--states", "all", "-o", "%i|%k|%P|%C|%T|%l|%m"],
                         env=cluster.env, capture_output=True, text=True, check=True)
    jobs = {}
    for line in res.stdout.splitlines():
        jobid, comment, partition, cpus, state, time_limit, memory = line.split("|")
        jobs[jobid] = {"comment": comment, "partition": partition, "cpus": cpus, "state": state,
                       "time_limit": time_limit, "memory": memory}
    return jobs


# -- (a) the jobs went through SLURM, as many as the grouping implies ------------------------------

def test_jobs_ran_as_slurm_jobs(runs, cluster):
    out = runs["out"]["slurm"]
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: ([^)]+)\)", out)
    assert submitted, out[-3000:]
    ids = [jobid for jobid, _ in submitted]
    assert len(set(ids)) == len(ids)

    # the cluster's own record: every one of them completed on this cluster
    completed = {j["JobId"]: j for j in cluster.completed_jobs()}
    for jobid, log in submitted:
        assert completed[jobid]["JobState"] == "COMPLETED", completed[jobid]
        assert Path(log).is_file() and Path(log).name == f"{jobid}.log"
        assert Path(log).is_relative_to(runs["slurm"] / ".snakemake" / "slurm_logs")

    # one SLURM job per non-local job, except that the network2 runs share group jobs
    planned = job_stats(runs["out"]["local"])
    n_grouped = planned.pop(GROUPED_RULE)
    expected = sum(n for rule, n in planned.items() if rule not in LOCAL_RULES | NO_JOB_RULES)
    expected += math.ceil(n_grouped / GROUP_COMPONENTS)
    assert len(ids) == expected, (planned, n_grouped, ids)

    jobs = _slurm_jobs(cluster)
    ours = {jobid: jobs[jobid] for jobid in ids}
    comments = [j["comment"] for j in ours.values()]
    group_jobs = [c for c in comments if c == f"rule_{GROUP}_{GROUPED_RULE}"]
    assert len(group_jobs) == math.ceil(n_grouped / GROUP_COMPONENTS) == 1, comments
    assert not any(c.startswith(f"rule_{GROUPED_RULE}") for c in comments)
    assert {j["partition"] for j in ours.values()} == {PARTITION}
    assert all(int(j["cpus"]) <= 2 for j in ours.values())  # --cores 2 caps a (group) job's CPUs
    # every job asked for the time and memory its rule declares, not the partition's defaults
    # (the test partition's time limit is INFINITE: a job without a runtime shows UNLIMITED)
    assert all(j["time_limit"] not in ("UNLIMITED", "INFINITE") for j in ours.values()), ours
    assert all(j["memory"] not in ("0", "0M") for j in ours.values()), ours
    # the one group job ran every network2 run
    group_log = next(Path(log) for _, log in submitted if f"group_{GROUP}_" in log).read_text()
    network2 = [r for r in expand_runs(yaml.safe_load(SMOKE_CONFIG.read_text())["experiments"]).values()
                if r.trainer == "network2"]
    assert len(network2) == n_grouped
    for run in network2:
        assert f"results/runs/{run.run_id}/model.npz" in group_log, run.run_id


# -- (b) bit-identical results -----------------------------------------------------------------------

def _timing(name: str) -> bool:
    """Wall-clock fields and the run environment legitimately differ between two runs."""
    return "seconds" in name or name == "environment"


def _csv_rows(path: Path) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(path.read_text())))
    head = rows[0]
    keep = [i for i, h in enumerate(head) if not _timing(h)]
    metric = head.index("metric") if "metric" in head else None  # tidy tables: timing rows
    return [[r[i] for i in keep] for r in rows if metric is None or not _timing(r[metric])]


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not _timing(k)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _results(work: Path) -> set[Path]:
    root = work / "results"
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()
            and p.relative_to(root).parts[0] not in ("logs", "benchmarks")}


def test_results_equal_local_run(runs):
    slurm, local = runs["slurm"] / "results", runs["local"] / "results"
    files = _results(runs["slurm"])
    assert files == _results(runs["local"])
    models = [f for f in files if f.name == "model.npz"]
    assert models and all(f.with_name("metrics.csv") in files for f in models)
    for rel in models:
        with np.load(slurm / rel) as a, np.load(local / rel) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), (rel, key)
    for rel in sorted(files):
        a, b = slurm / rel, local / rel
        if a.read_bytes() == b.read_bytes():
            continue
        if rel.suffix == ".csv":  # e.g. per-run metrics.csv: equal but for the `seconds` column
            assert _csv_rows(a) == _csv_rows(b), rel
        elif rel.suffix == ".json":  # run.json: equal but for timing and environment
            assert _strip(json.loads(a.read_text())) == _strip(json.loads(b.read_text())), rel
        elif rel.suffix == ".html" and {rel.with_suffix(".csv"), rel.with_name("summary.csv")} & files:
            continue  # the report's rendering of a table compared above (its seconds differ)
        elif rel.suffix in (".pdf", ".tsv") or rel.parts[:2] == ("pagerank", "scale"):
            continue  # PDF creation dates; PageRank's timing benchmark (FULL_DAG only)
        else:
            pytest.fail(f"{rel} differs between the SLURM and the local run")
    for rel in files:
        if rel.suffix in (".npy", ".npz", ".gz"):
            assert (slurm / rel).read_bytes() == (local / rel).read_bytes(), rel


# -- (c) downloads on the submit host -------------------------------------------------------------

def test_downloads_ran_locally(runs, cluster):
    out = runs["out"]["slurm"]
    for rule in LOCAL_RULES:
        assert f"localrule {rule}:" in out
        assert not (runs["slurm"] / ".snakemake" / "slurm_logs" / f"rule_{rule}").exists()
    comments = [j["comment"] for j in _slurm_jobs(cluster).values()]
    assert comments and not any(c.startswith("rule_fetch") for c in comments)
    assert (runs["slurm"] / "results" / "downloads" / "mnist" / "sources.json").is_file()


# -- no cluster needed ------------------------------------------------------------------------------

@pytest.mark.parametrize("config", [SMOKE_CONFIG, ROOT / "config.yaml"], ids=["smoke", "full"])
def test_run_wildcards_survive_remote_job_encoding(config):
    """Every executor other than `local` hands a job to a new Snakemake as `--target-jobs
    rule:wildcard=value,...`; Snakemake 9 splits that at every comma (snakemake#2366), so a
    wildcard value with a comma cannot run on a cluster."""
    from snakemake.target_jobs import parse_target_jobs_cli_args
    from snakemake_interface_executor_plugins.utils import TargetSpec, encode_target_jobs_cli_args

    runs = expand_runs(yaml.safe_load(config.read_text())["experiments"])
    for run in runs.values():
        wildcards = {"experiment": run.experiment, "run": run.run_id.split("/", 1)[1]}
        encoded = encode_target_jobs_cli_args([TargetSpec("train_solver", wildcards)])
        (parsed,) = parse_target_jobs_cli_args(encoded)
        received = {k: v.strip('"') for k, v in parsed.wildcards_dict.items()}
        assert received == wildcards, f"run {run.run_id!r} arrives in a cluster job as {received}"
