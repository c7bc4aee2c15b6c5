"""The whole DAG on the smoke config, the HTML report, and incremental reruns.

One module-scoped smoke run (data from a generated mini-mirror, every
experiment, aggregation, theory, PageRank) is shared by the tests; each rerun
test works on its own copy of the finished work directory and asks Snakemake
(dry run) which jobs it would run, so nothing here depends on timing.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake_output import job_blocks, job_stats

from nnflow.data.synthetic import write_mirror
from nnflow.train.grid import expand_runs
from nnflow.workflow.config import load_schema, resolve_config, resolve_datasets
from nnflow.workflow.layout import Layout

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SMOKE_CONFIG = ROOT / "tests" / "smoke" / "config.yaml"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(workdir: Path, *args: str, mirror: Path, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [
        SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args,
    ]
    env = {**os.environ, "NNFLOW_DATA_MIRROR": str(mirror)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned_jobs(workdir: Path, mirror: Path) -> dict[str, int]:
    """Rule name -> number of jobs a dry run would execute (empty if nothing to do)."""
    proc = snakemake(workdir, "-n", "--quiet", "rules", mirror=mirror)
    text = proc.stdout + proc.stderr
    return {} if "Nothing to be done" in text else job_stats(text)

@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    base = tmp_path_factory.mktemp("smoke")
    mirror = write_mirror(base / "mirror", np.random.default_rng(0), n_train=600, n_test=200)
    work = base / "work"
    work.mkdir()
    shutil.copy(SMOKE_CONFIG, work / "config.yaml")
    snakemake(work, mirror=mirror)
    snakemake(work, "--report", str(work / "results" / "report.html"), mirror=mirror)
    return work, Path(mirror)


@pytest.fixture
def copy_of(smoke, tmp_path):
    """A private copy of the finished smoke work directory (with Snakemake's metadata)."""
    work, mirror = smoke
    dest = tmp_path / "work"
    shutil.copytree(work, dest, symlinks=True)
    return dest, mirror


def edit_config(workdir: Path, change) -> None:
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    change(cfg)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_smoke_run_builds_every_stage(smoke):
    work, _ = smoke
    results = work / "results"
    cfg = yaml.safe_load(SMOKE_CONFIG.read_text())
    for experiment in ("mnist_cost", "mnist_overfitting", "cifar_overfitting", "cifar_optimizers",
                       "cifar_challenge", "unstable_gradients"):
        for name in ("figure.png", "figure.pdf", "caption.rst", "numbers.json", "metrics.csv"):
            assert (results / "experiments" / experiment / name).stat().st_size > 0
    assert (results / "theory" / "unstable" / "numbers.json").exists()
    assert (results / "theory" / "complex_backprop" / "numbers.json").exists()
    assert any((results / "pagerank").rglob("*.png"))
    summary = pd.read_csv(results / "summary.csv")
    # every run, and the random search's retrained winner with its single test evaluation
    assert sorted(summary["run_id"]) == sorted([*expand_runs(cfg["experiments"]), "cifar_challenge/final"])
    final = summary.set_index("run_id").loc["cifar_challenge/final"]
    test = json.loads((results / "experiments" / "cifar_challenge" / "final" / "test.json").read_text())
    assert final["test_accuracy"] == test["test_accuracy"]
    assert list(summary.columns[:5]) == ["experiment", "run_id", "seed", "status", "diverged_epoch"]
    params_end = max(i for i, c in enumerate(summary.columns) if c.startswith("param_"))
    assert summary.columns[params_end + 1] == "test_accuracy"
    assert set(summary["status"]) == {"completed"}
    tidy = pd.read_csv(results / "metrics.csv")
    assert {"run_id", "experiment", "seed", "epoch", "metric", "value"} <= set(tidy.columns)
    assert set(tidy["run_id"]) == set(summary["run_id"])


def test_captions_state_measured_numbers(smoke):
    work, _ = smoke
    caption = (work / "results" / "experiments" / "mnist_cost" / "caption.rst").read_text()
    assert "$" not in caption
    assert re.search(r"\d+(\.\d+)?%", caption)
    # the smoke mirror is generated, so every caption must say the data are not canonical
    assert "non-canonical" in caption


def test_report_contains_every_figure(smoke):
    work, _ = smoke
    report = work / "results" / "report.html"
    assert report.stat().st_size > 100_000
    text = report.read_text(errors="replace")
    for needle in ("MNIST sheet", "CIFAR sheet", "25a cost functions", "11c accuracy challenge"):
        assert needle in text, needle


def report_data(report: Path) -> tuple[dict, dict]:
    """(categories, results) of a Snakemake report: the two JSON objects its page script holds."""
    text = report.read_text(errors="replace")
    found = []
    for name in ("categories", "results"):
        start = text.index(f"var {name} = {{") + len(f"var {name} = ")
        found.append(json.JSONDecoder().raw_decode(text, start)[0])
    return found[0], found[1]


def test_report_items_are_labelled_in_the_sheets_order(smoke):
    """Every report item has a label, and the report's order (sorted by label) is the sheets':
    (a), (b), (c) of Aufgabe 26 and 12, then the figure of the trained nets and the runs table."""
    work, _ = smoke
    categories, results = report_data(work / "results" / "report.html")

    def shown(category, subcategory):
        return sorted(results[path]["labels"]["item"] for path in categories[category][subcategory])

    for category, subcategories in categories.items():
        for subcategory, paths in subcategories.items():
            for path in paths:
                assert results[path].get("labels", {}).get("item"), (category, subcategory, path)
    unstable = shown("MNIST sheet (Blatt 10)", "26 unstable gradients")
    assert [label[:3] for label in unstable[:3]] == ["(a)", "(b)", "(c)"]
    assert unstable[3].startswith("figure:") and unstable[4].startswith("table:")
    pagerank = shown("CIFAR sheet (Aufgabe 12)", "12 PageRank, graph model_internet")
    assert [label.split(" ")[0] for label in pagerank] == ["(a)", "(b)", "(c)", "fix", "fix"]
    assert "hyperlink matrix" in pagerank[0] and "eigenvalues" in pagerank[1]
    # the summary and each experiment's runs are shown as HTML tables, not only offered as downloads
    assert results["results/summary.html"]["data_uri"].startswith("data:text/html")
    assert results["results/experiments/mnist_cost/runs.html"]["data_uri"].startswith("data:text/html")
    assert results["results/environment.html"]["data_uri"].startswith("data:text/html")
    # the PageRank captions say that the shipped graph is a stand-in for the sheet's
    for path in categories["CIFAR sheet (Aufgabe 12)"]["12 PageRank, graph model_internet"]:
        assert "is a stand-in" in results[path]["caption"], path
    # captions render (no template placeholders, no literal TeX carets)
    for path, result in results.items():
        caption = result.get("caption", "")
        assert "$" not in caption and "b^" not in caption, path


def test_run_records_environment_and_provenance(smoke):
    work, _ = smoke
    run_json = next((work / "results" / "runs" / "mnist_cost").rglob("run.json"))
    info = json.loads(run_json.read_text())
    assert info["status"] == "completed"
    assert info["dataset"]["canonical"] is False
    env = info["environment"]
    assert env["numpy"] and env["python"] and "blas" in env and "thread_env" in env
    assert info["threads"] == 1
    kernels = env["update_kernels"]  # which update rules ran, with at most the job's threads
    assert kernels == ({"path": "numba", "numba": version("numba"), "threads": 1} if find_spec("numba")
                       else {"path": "numpy", "reason": "numba not installed"})
    # what computed the steps: each network2 epoch counts under its path (the smoke runs are
    # too short to start numba under auto), a Solver run counts its update-rule calls
    assert info["update_calls"] == {"numba": 0, "numpy": info["epochs_completed"]}
    solver_info = json.loads(next((work / "results" / "runs" / "cifar_optimizers").rglob("run.json"))
                             .read_text())
    assert sum(solver_info["update_calls"].values()) > 0


def test_every_model_the_workflow_writes_loads_and_reproduces_its_numbers(smoke):
    """network2 runs load with network2.load, solver runs and the challenge's final model with
    FullyConnectedNet.load, and each predicts the accuracy its run recorded."""
    import json

    from nnflow.data.prepared import load_prepared
    from nnflow.nn import network2
    from nnflow.nn.fc_net import FullyConnectedNet

    work, _ = smoke
    results = work / "results"
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    models = sorted(results.glob("runs/**/model.npz"))
    assert len(models) == len(expand_runs(cfg["experiments"]))
    trainers = set()
    for model in models:
        info = json.loads((model.parent / "run.json").read_text())
        data = load_prepared(work / cfg["data"]["prepared_dir"] / info["spec"]["dataset"])
        trainers.add(info["spec"]["trainer"])
        if info["spec"]["trainer"] == "network2":
            net = network2.load(model)
            accuracy = np.mean(np.argmax(net.feedforward(data["X_test"]), axis=1) == data["y_test"])
            assert accuracy == info["final"]["test_accuracy"], model
        else:
            net = FullyConnectedNet.load(model)
            assert np.mean(net.predict(data["X_val"]) == data["y_val"]) == info["best_val_accuracy"], model
    assert trainers == {"network2", "solver"}
    final = results / "experiments" / "cifar_challenge" / "final"
    test = json.loads((final / "test.json").read_text())
    data = load_prepared(work / cfg["data"]["prepared_dir"] / "cifar10")
    net = FullyConnectedNet.load(final / "model")
    assert np.mean(net.predict(data["X_test"]) == data["y_test"]) == test["test_accuracy"]
    assert np.mean(net.predict(data["X_val"]) == data["y_val"]) == test["val_accuracy"]
    assert test["weights"] == f"best validation accuracy, epoch {test['best_epoch']} of {test['epochs']}"


def test_every_run_records_the_lock_it_ran_under(smoke):
    import json

    from nnflow.lockfile import LOCK_PATH, file_sha256

    work, _ = smoke
    lock_sha256 = file_sha256(ROOT / LOCK_PATH)
    run_jsons = sorted((work / "results" / "runs").rglob("run.json"))
    assert len(run_jsons) == len(expand_runs(yaml.safe_load(SMOKE_CONFIG.read_text())["experiments"]))
    for path in run_jsons:
        env = json.loads(path.read_text())["environment"]
        assert env["lock"]["sha256"] == lock_sha256, path
        assert env["lock"]["matches"], f"{path}: not the locked environment: {env['lock']['differences']}"
        assert f"numpy=={np.__version__}" in env["installed"]
    table = pd.read_csv(work / "results" / "environment.csv", dtype=str)
    assert set(table["lock"]) == {lock_sha256[:12]}
    assert all(status.startswith("exact") for status in table["lock_status"])
    caption = (work / "results" / "environment.rst").read_text()
    assert f"All {len(run_jsons)} runs used the locked environment {lock_sha256[:12]} exactly" in caption


def test_second_run_does_nothing(smoke):
    work, mirror = smoke
    assert planned_jobs(work, mirror) == {}


def test_changing_one_learning_rate_reruns_that_run_and_its_aggregation(copy_of):
    work, mirror = copy_of

    def change(cfg):
        cfg["experiments"]["cifar_optimizers"]["grid"]["points"][1]["learning_rate"] = 0.002

    edit_config(work, change)
    jobs = planned_jobs(work, mirror)
    assert jobs == {
        "train_solver": 1,
        "experiment_table": 1,
        "figure_cifar_optimizers": 1,
        "metrics_table": 1,
        "environment_table": 1,
        "all": 1,
    }


def test_changing_a_shared_param_reruns_exactly_that_experiments_runs(copy_of):
    work, mirror = copy_of

    def change(cfg):
        cfg["experiments"]["mnist_overfitting"]["params"]["epochs"] = 3

    edit_config(work, change)
    assert planned_jobs(work, mirror) == {
        "train_network2": 2,
        "experiment_table": 1,
        "figure_mnist_overfitting": 1,
        "metrics_table": 1,
        "environment_table": 1,
        "all": 1,
    }


def test_adding_a_seed_adds_one_run_per_grid_point(copy_of):
    work, mirror = copy_of

    def change(cfg):
        cfg["experiments"]["mnist_cost"]["seeds"] = [1, 2]

    edit_config(work, change)
    jobs = planned_jobs(work, mirror)
    assert jobs["train_network2"] == 2  # two grid points, one new seed each
    assert jobs["figure_mnist_cost"] == 1
    assert "train_solver" not in jobs


def test_deleting_one_run_regenerates_only_that_run(copy_of):
    work, mirror = copy_of
    run = work / "results" / "runs" / "mnist_cost" / "cost=quadratic+eta=3.0+weight_init=large" / "seed=1"
    assert run.exists(), sorted(p.name for p in run.parent.parent.iterdir())
    shutil.rmtree(run)
    jobs = planned_jobs(work, mirror)
    assert jobs == {
        "train_network2": 1,
        "experiment_table": 1,
        "figure_mnist_cost": 1,
        "metrics_table": 1,
        "environment_table": 1,
        "all": 1,
    }


def nnflow_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnflow", *args], cwd=workdir, capture_output=True,
                          text=True, timeout=300)


def test_compare_after_a_rerun_shows_exactly_the_rerun_runs(copy_of):
    """Snapshot, change a shared parameter and a grid value, rerun, compare: the two runs of the
    shared parameter are changed (parameter and weights), the grid value's new run is added and
    its old run removed (its directory, which Snakemake keeps, is named as left over), every
    other run is identical."""
    work, mirror = copy_of
    proc = nnflow_cli(work, "snapshot", "before")
    assert proc.returncode == 0, proc.stderr
    snapshot = work / "results" / "snapshots" / "before"
    kept = [p for p in snapshot.rglob("*") if p.is_file()]
    assert not [p for p in kept if p.suffix in (".npz", ".npy", ".png", ".pdf")]
    n_runs = len(list((work / "results" / "runs").rglob("run.json"))) + 1  # + the challenge's final run
    assert len([p for p in kept if p.name == "run.json"]) == n_runs

    def change(cfg):
        cfg["experiments"]["mnist_overfitting"]["params"]["epochs"] = 3
        cfg["experiments"]["cifar_optimizers"]["grid"]["points"][1]["learning_rate"] = 0.002

    edit_config(work, change)
    snakemake(work, mirror=mirror)
    proc = nnflow_cli(work, "compare", "--out", "results/compare")
    assert proc.returncode == 0, proc.stderr
    assert f"1 added, 1 removed, 2 changed, {n_runs - 3} identical" in proc.stdout
    old, new = (f"cifar_optimizers/learning_rate={lr}+update_rule=adam/seed=1" for lr in ("0.001", "0.002"))
    assert proc.stdout.split("Added (only in B):\n", 1)[1].splitlines()[1].split()[0] == new
    assert proc.stdout.split("Removed (only in A):\n", 1)[1].splitlines()[1].split()[0] == old
    assert proc.stdout.rstrip().split("Left over, not compared")[1].splitlines()[2].split() == ["B", old]
    params = proc.stdout.split("Changed parameters:\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert sorted(line.split() for line in params) == [
        [f"mnist_overfitting/lmbda={lmbda}/seed=1", "epochs", "4", "3"] for lmbda in ("0.0", "0.1")]
    assert "Other results" not in proc.stdout  # theory, PageRank and the search's choice unchanged
    assert (work / "results" / "compare" / "compare.png").stat().st_size > 0


def _rule_kind(rule: str) -> str:
    """A rule name with the per-experiment / per-graph suffix of generated rules dropped."""
    for prefix in ("pagerank_analyse_", "pagerank_figures_"):
        if rule.startswith(prefix):
            return prefix.rstrip("_")
    return rule


SOLVER_AND_NETWORK2 = {"train_network2", "train_solver", "challenge_final"}


@pytest.mark.parametrize(("module", "expected"), [
    (None, set()),
    # the sigmoid of layers.py reaches the Solver path through costs.py and network2._expit
    ("nn/layers.py", SOLVER_AND_NETWORK2),
    ("nn/network2.py", SOLVER_AND_NETWORK2),
    ("nn/solver.py", {"train_solver", "challenge_final"}),
    # imported by nn/optim.py (numba inside a function), and by train/run.py, which records
    # the calls each path made: every training job and the jobs that import the update rules
    ("nn/kernels.py", SOLVER_AND_NETWORK2 | {f"figure_{e}" for e in (
        "mnist_cost", "mnist_overfitting", "cifar_overfitting", "cifar_optimizers", "cifar_challenge",
        "unstable_gradients")}),
    ("nn/network2_kernel.py", SOLVER_AND_NETWORK2),
    ("nn/blas.py", SOLVER_AND_NETWORK2),
    ("train/trainers/network2.py", {"train_network2"}),
    ("train/checkpoint.py", SOLVER_AND_NETWORK2),
    ("data/formats.py", {"prepare_dataset"}),
    ("report/figures/common.py", {f"figure_{e}" for e in (
        "mnist_cost", "mnist_overfitting", "cifar_overfitting", "cifar_optimizers", "cifar_challenge",
        "unstable_gradients")}),
    ("report/figures/update_rules.py", {"figure_cifar_optimizers"}),
    ("report/tables.py", {"experiment_table", "metrics_table", "environment_table"}),
    ("theory/unstable.py", {"unstable_theory"}),
    ("pagerank/graphs.py", {"pagerank_analyse", "pagerank_scale_case"}),
    ("pagerank/figures.py", {"pagerank_figures", "pagerank_scale_summary"}),
    ("theory/figures.py", {"unstable_theory", "complex_backprop"}),
])
def test_editing_a_module_reruns_exactly_the_jobs_that_import_it(smoke, tmp_path, module, expected):
    """A job's `code` param hashes every nnflow module it imports, directly or transitively:
    after an edit, Snakemake finds changed params in exactly the jobs that execute the module.
    (--summary only reads the finished smoke directory.)"""
    work, mirror = smoke
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    if module is not None:
        with open(src / "nnflow" / module, "a") as fh:
            fh.write("\n# an edit\n")
    cmd = [
        SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work),
        "--configfile", str(work / "config.yaml"), "--summary",
    ]
    env = {**os.environ, "NNFLOW_DATA_MIRROR": str(mirror),
           "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # --summary gives each output's status; "params changed" marks the jobs whose own params
    # (here: the source hash) differ, not the downstream jobs that would rerun after them.
    # (--list-changes params cannot be used: Snakemake 9 lists every output there.)
    rows = [line.split("\t") for line in proc.stdout.splitlines()[1:] if "\t" in line]
    changed = {_rule_kind(row[2]) for row in rows if row[-2] == "params changed"}
    assert changed == expected, sorted(changed)


def test_a_new_experiment_needs_only_config_yaml(copy_of):
    """(a) An experiment of an existing trainer and figure kind, added in config.yaml alone,
    reaches its runs, metrics.csv, summary.csv, its figure and the report; one without a
    figure still reaches the tables."""
    work, mirror = copy_of
    params = {"sizes": [784, 12, 10], "epochs": 2, "mini_batch_size": 10, "eta": 0.5,
              "lmbda": 0.0, "train_size": 120, "weight_init": "default"}

    def change(cfg):
        cfg["experiments"]["my_cost_study"] = {
            "trainer": "network2", "dataset": "mnist", "seeds": [1], "params": params,
            "grid": {"points": [{"cost": "quadratic"}, {"cost": "cross_entropy"}]},
            "figure": "cost_comparison",
            "report": {"category": "My own studies", "subcategory": "costs, smaller net",
                       "title": "My study of the two costs."},
        }
        cfg["experiments"]["my_plain_runs"] = {
            "trainer": "network2", "dataset": "mnist", "seeds": [1, 2],
            "params": {**params, "cost": "cross_entropy"},
        }

    edit_config(work, change)
    snakemake(work, mirror=mirror)
    snakemake(work, "--report", str(work / "results" / "report.html"), mirror=mirror)
    results = work / "results"
    assert len(list((results / "runs" / "my_cost_study").rglob("run.json"))) == 2
    summary = pd.read_csv(results / "summary.csv")
    counts = summary["experiment"].value_counts()
    assert counts["my_cost_study"] == 2 and counts["my_plain_runs"] == 2
    assert {"my_cost_study", "my_plain_runs"} <= set(pd.read_csv(results / "metrics.csv")["experiment"])
    study = results / "experiments" / "my_cost_study"
    assert (study / "figure.png").stat().st_size > 0
    caption = (study / "caption.rst").read_text()
    assert caption.startswith("**My study of the two costs.**")
    assert "network2 [784, 12, 10]" in caption and "120 training images" in caption
    assert not (results / "experiments" / "my_plain_runs" / "figure.png").exists()
    report = (results / "report.html").read_text(errors="replace")
    assert "My own studies" in report and "costs, smaller net" in report


NEW_RULE = """

def sign_sgd(w, dw, config=None):
    \"\"\"A rule added by a test: ``w <- w - learning_rate * sign(dw)``.\"\"\"
    w, dw, config = _prepare(w, dw, config)
    w -= config.setdefault("learning_rate", 1e-2) * np.sign(dw)
    return w, config


UPDATE_RULES["sign_sgd"] = sign_sgd
"""


def test_a_new_update_rule_needs_its_function_and_registry_entry(copy_of, tmp_path):
    """(c) A rule added to nnflow.nn.optim (function + registry entry, nothing else) is
    accepted by the config, trained with, and listed in the caption of the rules compared."""
    work, mirror = copy_of
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    with open(src / "nnflow" / "nn" / "optim.py", "a") as fh:
        fh.write(NEW_RULE)

    def change(cfg):
        cfg["experiments"]["cifar_optimizers"]["grid"]["points"].append(
            {"update_rule": "sign_sgd", "learning_rate": 0.0001})

    edit_config(work, change)
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--configfile",
           str(work / "config.yaml"), "--cores", "2", "results/experiments/cifar_optimizers/caption.rst"]
    env = {**os.environ, "NNFLOW_DATA_MIRROR": str(mirror),
           "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    caption = (work / "results" / "experiments" / "cifar_optimizers" / "caption.rst").read_text()
    assert "each of the three update rules (sgd, adam, sign_sgd;" in caption
    run = work / "results" / "runs" / "cifar_optimizers" / "learning_rate=0.0001+update_rule=sign_sgd"
    assert (run / "seed=1" / "run.json").exists()
    # without the registry entry the same config is refused, naming the key
    proc = subprocess.run([*cmd[:-1], "-n"], env={**env, "PYTHONPATH": str(ROOT / "src")},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "update_rule: 'sign_sgd' is not one of" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def full_dry_run() -> subprocess.CompletedProcess:
    """A dry run of every job of the full config, with the workflow profile (profiles/default)."""
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--directory", str(ROOT), "-s", str(ROOT / "Snakefile"),
         "--forceall", "--cores", "2"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "NNFLOW_DATA_MIRROR": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_full_config_dry_run_lists_every_run_with_resources(full_dry_run):
    """The full config builds its DAG; every training job names threads, memory and runtime."""
    cfg = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    assert cfg["experiments"]["mnist_cost"]["params"]["epochs"] == 30
    out = full_dry_run.stdout
    for run_id in expand_runs(cfg["experiments"]):
        experiment, rest = run_id.split("/", 1)
        assert f"wildcards: experiment={experiment}, run={rest}" in out, run_id
    train_blocks = [b for b in job_blocks(out) if re.match(r"rule train_(network2|solver):", b)]
    assert train_blocks
    for block in train_blocks:
        assert re.search(r"resources: .*runtime=\d+.*mem_mb=\d+", block), block
    # the shipped config sets no mem_mb: each job asks for the estimate of its own peak
    schema = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    layout = Layout(cfg, resolve_config(cfg, schema), resolve_datasets(cfg))
    for block in train_blocks:
        experiment, rest = re.search(r"wildcards: experiment=(\S+), run=(\S+)", block).groups()
        declared = int(re.search(r"mem_mb=(\d+)", block).group(1))
        assert declared == layout.run_mem_mb(layout.runs[f"{experiment}/{rest}"]), block
    (final,) = [b for b in job_blocks(out) if b.startswith("rule challenge_final:")]
    assert int(re.search(r"mem_mb=(\d+)", final).group(1)) == layout.final_mem_mb("cifar_challenge")
    candidates = layout.runs_of("cifar_challenge")
    assert layout.final_mem_mb("cifar_challenge") > max(layout.run_mem_mb(r) for r in candidates)


def test_job_blocks_show_no_empty_shell_command(full_dry_run):
    """Every rule is a script: a job block must not end with "Shell command: None" (printshellcmds)."""
    out = full_dry_run.stdout + full_dry_run.stderr
    assert re.search(r"rule train_network2:", out)
    assert "Shell command: None" not in out
