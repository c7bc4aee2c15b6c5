"""Bad configurations are rejected when the config is loaded, with one message naming the key.

Python level: every case through the JSON schema (:func:`nnflow.workflow.config.validate_config`,
as ``common.smk`` does) or through :mod:`nnflow.train.grid`. Snakemake level: a representative
subset through ``snakemake -n`` with a bad ``--configfile``, including grid / search
values, which only the per-run validation (:func:`nnflow.workflow.config.validate_run_params`) sees.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnflow.train.grid import expand_runs
from nnflow.train.trainers import take_first
from nnflow.workflow.config import ConfigError, load_schema, resolve_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SMOKE = ROOT / "tests" / "smoke" / "config.yaml"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def smoke_config() -> dict:
    return yaml.safe_load(SMOKE.read_text())


def _set(cfg: dict, path: str, value) -> dict:
    """Set a dotted path ('experiments.mnist_cost.params.eta'); list indices as integers."""
    *parents, last = path.split(".")
    node = cfg
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return cfg


def _schema_error(cfg: dict) -> str:
    """The message of the config check common.smk runs (schema, then the package's checks)."""
    with pytest.raises(ConfigError) as err:
        resolve_config(cfg, load_schema(SCHEMA))
    return str(err.value)


def test_smoke_and_default_configs_are_valid():
    for path in (SMOKE, ROOT / "config.yaml"):
        cfg = yaml.safe_load(path.read_text())
        assert resolve_config(cfg, load_schema(SCHEMA))


# (dotted path, bad value, fragments that the one message must contain: the key and what is allowed)
MNIST = "experiments.mnist_cost.params"
CIFAR = "experiments.cifar_overfitting.params"
SCHEMA_CASES = {
    # unknown keys (the message shows the schema, hence the allowed keys)
    "unknown_top_level_key": ("trainingg", {}, ["'trainingg' was unexpected", "allowed: data, experiments"]),
    "unknown_param": (f"{MNIST}.epoch", 3,
                      ["experiments.mnist_cost.params:", "'epoch' was unexpected", "mini_batch_size"]),
    # any name is a new experiment; it must be complete and name a known trainer and figure kind
    "incomplete_new_experiment": ("experiments.mnist_costs", {"trainer": "network2"},
                                  ["'dataset' is a required property", "mnist_costs"]),
    "unknown_figure_kind": (f"{MNIST[:-len('.params')]}.figure", "violin",
                            ["'violin' is not one of", "cost_comparison"]),
    "figure_without_report": ("experiments.my_runs", {"trainer": "network2", "dataset": "mnist", "params": {},
                                                      "figure": "cost_comparison"},
                              ["'report' is a dependency of 'figure'"]),
    "bad_experiment_name": ("experiments.my runs", {"trainer": "network2"}, ["'my runs' does not match"]),
    "unknown_data_key": ("data.datasets.mnist.validation", 10,
                         ["data.datasets.mnist:", "'validation' was unexpected", "validation_size"]),
    "old_style_data_key": ("data.mnist", {"validation_size": 10},
                           ["'mnist' was unexpected", "datasets"]),
    "bad_md5": ("data.datasets.fashion", {"format": "idx",
                                          "files": {"train_images": {"name": "a.gz", "md5": "xyz"}}},
                ["data.datasets.fashion.files.train_images.md5", "does not match"]),
    "unknown_format": ("data.datasets.fashion", {"format": "npz"},
                       ["data.datasets.fashion.format: 'npz' is not one of ['idx', 'cifar10_binary']"]),
    # wrong types
    "epochs_string": (f"{MNIST}.epochs", "ten", ["params.epochs", "is not of type 'integer'"]),
    "eta_string": (f"{MNIST}.eta", "0.5", ["params.eta", "is not of type 'number'"]),
    "sizes_string": (f"{MNIST}.sizes", "784,10,10", ["params.sizes", "is not of type 'array'"]),
    "batch_size_float": (f"{CIFAR}.batch_size", 2.5,
                         ["params.batch_size", "is not of type 'integer'"]),
    "seeds_not_list": ("experiments.mnist_cost.seeds", 1, ["seeds", "is not of type 'array'"]),
    "enabled_string": ("experiments.mnist_cost.enabled", "yes", ["enabled", "is not of type 'boolean'"]),
    # zero / negative sizes, epochs, batch sizes
    "epochs_zero": (f"{MNIST}.epochs", 0, ["params.epochs", "less than the minimum of 1"]),
    "epochs_negative": (f"{MNIST}.epochs", -3, ["params.epochs", "less than the minimum of 1"]),
    "num_epochs_zero": (f"{CIFAR}.num_epochs", 0, ["params.num_epochs", "less than the minimum of 1"]),
    "mini_batch_zero": (f"{MNIST}.mini_batch_size", 0, ["mini_batch_size", "less than the minimum of 1"]),
    "batch_size_negative": (f"{CIFAR}.batch_size", -50, ["batch_size", "less than the minimum of 1"]),
    "train_size_zero": (f"{MNIST}.train_size", 0, ["train_size", "less than the minimum of 1"]),
    "hidden_layer_0_network2": (f"{MNIST}.sizes", [784, 0, 10],
                                ["params.sizes[1]", "less than the minimum of 1"]),
    "hidden_layer_0_solver": (f"{CIFAR}.hidden_dims", [20, 0],
                              ["params.hidden_dims[1]", "less than the minimum of 1"]),
    "no_hidden_layer_list": (f"{CIFAR}.hidden_dims", [], ["hidden_dims", "should be non-empty"]),
    "validation_size_zero": ("data.datasets.mnist.validation_size", 0, ["validation_size", "minimum of 1"]),
    "num_training_negative": ("data.datasets.cifar10.num_training", -1, ["num_training", "minimum of 1"]),
    "n_candidates_zero": ("experiments.cifar_challenge.search.n_candidates", 0,
                          ["n_candidates", "minimum of 1"]),
    # learning rates <= 0
    "eta_zero": (f"{MNIST}.eta", 0, ["params.eta", "less than or equal to the minimum of 0"]),
    "eta_negative": (f"{MNIST}.eta", -0.5, ["params.eta", "less than or equal to the minimum of 0"]),
    "learning_rate_zero": (f"{CIFAR}.learning_rate", 0.0,
                           ["params.learning_rate", "less than or equal to the minimum of 0"]),
    "learning_rate_negative": (f"{CIFAR}.learning_rate", -1e-3,
                               ["params.learning_rate", "less than or equal to the minimum of 0"]),
    "loguniform_lr_zero": ("experiments.cifar_challenge.search.space.learning_rate",
                           {"loguniform": [0, 1e-3]},
                           ["learning_rate.loguniform[0]", "less than or equal to the minimum of 0"]),
    # unknown names
    "unknown_cost": (f"{MNIST}.cost", "hinge", ["params.cost", "['quadratic', 'cross_entropy']"]),
    "unknown_optimizer": (f"{CIFAR}.update_rule", "nesterov",
                          ["params.update_rule", "['sgd', 'sgd_momentum', 'rmsprop', 'adam']"]),
    "unknown_activation": (f"{CIFAR}.activation", "gelu",
                           ["params.activation", "['relu', 'sigmoid', 'tanh']"]),
    "unknown_dataset_network2": ("experiments.mnist_cost.dataset", "fashion_mnist",
                                 ["experiments.mnist_cost.dataset: unknown dataset 'fashion_mnist'",
                                  "declared in data.datasets: mnist, cifar10"]),
    "unknown_dataset_solver": ("experiments.cifar_overfitting.dataset", "svhn",
                               ["experiments.cifar_overfitting.dataset: unknown dataset 'svhn'"]),
    "incomplete_dataset": ("data.datasets.fashion", {"format": "idx", "files": {}},
                           ["data.datasets.fashion.files: a idx dataset has the files train_images"]),
    "dataset_setting_of_another_format": (
        "data.datasets.mnist.num_training", 5,
        ["data.datasets.mnist: unknown setting(s) num_training for format idx"]),
    "unknown_trainer": ("experiments.mnist_cost.trainer", "keras",
                        ["trainer", "'keras' is not one of ['network2', 'solver']"]),
    "unknown_weight_init": (f"{MNIST}.weight_init", "xavier", ["weight_init", "['default', 'large']"]),
    "unknown_dtype": ("data.datasets.mnist.dtype", "float16", ["dtype", "['float32', 'float64']"]),
    "unknown_distribution": ("experiments.cifar_challenge.search.space.batch_size", {"normal": [1, 2]},
                             ["'normal' was unexpected", "loguniform"]),
    # duplicate seeds (duplicate run IDs)
    "duplicate_seeds": ("experiments.mnist_cost.seeds", [1, 1], ["seeds", "non-unique elements"]),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_schema_rejects(case):
    path, value, fragments = SCHEMA_CASES[case]
    msg = _schema_error(_set(smoke_config(), path, value))
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in:\n{msg}"


# ---------------------------------------------------------------------------------------- nnflow.train.grid


def _runs_error(cfg: dict) -> str:
    with pytest.raises(ValueError) as err:
        expand_runs(cfg["experiments"])
    return str(err.value)


def test_duplicate_run_names_rejected_by_runs():
    cfg = smoke_config()
    points = cfg["experiments"]["mnist_cost"]["grid"]["points"]
    points.append(dict(points[0]))
    msg = _runs_error(cfg)
    assert "experiments.mnist_cost: duplicate run names" in msg
    assert "cost=quadratic+eta=3.0" in msg


def test_duplicate_seeds_rejected_by_runs():
    cfg = smoke_config()
    cfg["experiments"]["mnist_cost"]["seeds"] = [2, 2]
    assert "experiments.mnist_cost.seeds: duplicate seeds in [2, 2]" in _runs_error(cfg)


def test_unknown_trainer_rejected_by_runs():
    """The dataset is checked against the declared datasets (test_schema_rejects), the
    trainer also by the run expansion itself."""
    cfg = smoke_config()
    cfg["experiments"]["mnist_cost"]["trainer"] = "keras"
    message = "experiments.mnist_cost.trainer: unknown trainer 'keras' (allowed: network2, solver)"
    assert message in _runs_error(cfg)


def test_key_both_in_params_and_grid_rejected_by_runs():
    cfg = smoke_config()
    cfg["experiments"]["mnist_cost"]["params"]["eta"] = 1.0
    assert "['eta'] set both in params and in grid" in _runs_error(cfg)


def test_empty_product_list_rejected_by_runs_and_schema():
    cfg = smoke_config()
    cfg["experiments"]["mnist_cost"]["grid"]["product"]["weight_init"] = []
    assert "experiments.mnist_cost.grid.product.weight_init: must be a non-empty list" in _runs_error(cfg)
    assert "should be non-empty" in _schema_error(cfg)


def test_subset_larger_than_training_set_names_train_size():
    X, y = np.zeros((50, 3)), np.zeros(50, np.uint8)
    with pytest.raises(ValueError, match=r"^train_size=51 is larger than the training set \(50 examples\)$"):
        take_first(X, y, 51)
    Xs, ys = take_first(X, y, 50)
    assert Xs.shape == (50, 3) and ys.shape == (50,)
    assert take_first(X, y, None)[0].shape == (50, 3)


# ------------------------------------------------------------------------------- snakemake -n level

# Each: (dotted path, bad value, fragments of Snakemake's error output). Grid and search values are
# not covered by the schema's `params`; common.smk validates each expanded run against it.
SNAKEMAKE_CASES = {
    "unknown_param": (f"{MNIST}.epoch", 3, ["'epoch' was unexpected", "experiments.mnist_cost.params:"]),
    "unknown_cost_in_grid_points": (
        "experiments.mnist_cost.grid.points.1.cost", "hinge",
        ["experiments.mnist_cost (run mnist_cost/cost=hinge+",
         "): cost: 'hinge' is not one of ['quadratic', 'cross_entropy']"]),
    "negative_lmbda_in_grid_product": (
        "experiments.mnist_overfitting.grid.product.lmbda", [0.0, -0.1],
        ["experiments.mnist_overfitting", "lmbda: -0.1 is less than the minimum of 0"]),
    "hidden_0_in_search_space": (
        "experiments.cifar_challenge.search.space.hidden_dims", {"choice": [[0]]},
        ["experiments.cifar_challenge (run cifar_challenge/cand=000/seed=1): hidden_dims[0]:",
         "0 is less than the minimum of 1"]),
    "unknown_optimizer_in_search_space": (
        "experiments.cifar_challenge.search.space.update_rule", {"choice": ["nesterov"]},
        ["experiments.cifar_challenge (run cifar_challenge/cand=000/seed=1): update_rule:",
         "'nesterov' is not one of ['sgd', 'sgd_momentum', 'rmsprop', 'adam']"]),
    "nan_learning_rate": (f"{MNIST}.lmbda", float("nan"),
                          ["experiments.mnist_cost.params.lmbda: nan is not a finite number"]),
    "infinite_in_grid": ("experiments.mnist_overfitting.grid.product.lmbda", [0.0, float("inf")],
                         ["experiments.mnist_overfitting.grid.product.lmbda[1]: inf is not a finite"]),
    "sizes_0_not_the_input_dimension": (
        f"{MNIST}.sizes", [785, 10, 10],
        ["params.sizes[0] = 785, but dataset 'mnist' has 784 input features per example"]),
    "sizes_out_not_the_classes": (
        f"{MNIST}.sizes", [784, 10, 5], ["params.sizes[-1] = 5, but dataset 'mnist' has 10 classes"]),
    "train_size_beyond_the_split": (
        "experiments.cifar_overfitting.params.train_size", 401,
        ["experiments.cifar_overfitting (run cifar_overfitting/base/seed=1): params.train_size = 401, "
         "but dataset 'cifar10' has 400 training examples"]),
    "batch_larger_than_the_examples": (
        "experiments.cifar_overfitting.params.batch_size", 201,
        ["params.batch_size = 201, but dataset 'cifar10' has 200 examples to train on"]),
    "duplicate_run_names": (
        "experiments.mnist_cost.grid.points", [{"cost": "quadratic", "eta": 3.0}] * 2,
        ["invalid configuration", "experiments.mnist_cost: duplicate run names"]),
}


def _dry_run(workdir: Path, cfg: dict) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "bad.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "-n", "--workflow-profile", "none", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory):
    """Every Snakemake-level case, two at a time on the two cores.

    The valid control (the smoke config's dry run) is the divergence test of
    test_reliability.py, which builds and runs part of that DAG.
    """
    base = tmp_path_factory.mktemp("dry")
    jobs = {}
    for case, (path, value, _) in SNAKEMAKE_CASES.items():
        jobs[case] = _set(smoke_config(), path, copy.deepcopy(value))
    with ThreadPoolExecutor(2) as pool:
        futures = {case: pool.submit(_dry_run, base / case, cfg) for case, cfg in jobs.items()}
        return {case: f.result() for case, f in futures.items()}


@pytest.mark.workflow
@pytest.mark.parametrize("case", sorted(SNAKEMAKE_CASES))
def test_snakemake_dry_run_rejects(dry_runs, case):
    proc = dry_runs[case]
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    for fragment in SNAKEMAKE_CASES[case][2]:
        assert fragment in out, f"{fragment!r} not in:\n{out}"
    assert "Traceback" not in out  # a configuration error, not a crash
    assert "Job stats" not in out and "rule " not in out.split("Error")[0]  # before any DAG


# ------------------------------------------------------------------------------ YAML read strictly


def _dry_run_text(workdir: Path, text: str, *args: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(text)
    cmd = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "-n", "--workflow-profile", "none", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def test_a_duplicated_key_is_refused_with_both_lines(tmp_path):
    from nnflow.workflow.config import check_config_file

    path = tmp_path / "c.yaml"
    path.write_text("data:\n  retries: 1\n  timeout_seconds: 5\n  retries: 3\n")
    with pytest.raises(ConfigError,
                       match=r"c\.yaml, line 4: duplicate key 'retries' \(first given on line 2"):
        check_config_file(path)
    path.write_text("base: &base {eta: 0.5, epochs: 2}\nrun: {<<: *base, eta: 0.1}\n")
    check_config_file(path)  # a merge key overriding an anchor's value is not a duplicate


def test_an_alias_bomb_is_refused_in_a_few_mb(tmp_path):
    import tracemalloc

    from nnflow.workflow.config import check_config_file

    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]  # 10^10 values
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 1500
    tracemalloc.start()
    with pytest.raises(ConfigError, match=r"bomb\.yaml: expands to [\d,]{14,} values, more than "
                                          r"100,000: YAML aliases \(first at line 2\)"):
        check_config_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5e6
    path.write_text("a: &a [1, 2]\nb: *a\n")
    check_config_file(path)  # small aliases are fine


@pytest.mark.workflow
def test_snakemake_refuses_duplicate_keys_and_alias_bombs_before_the_dag(tmp_path):
    smoke = SMOKE.read_text()
    bomb = "\n".join(['x0: &x0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]'] +
                     [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 9)])
    cases = {
        "dup": (smoke.replace("  retries: 0\n", "  retries: 0\n  retries: 2\n"),
                "duplicate key 'retries' (first given on line"),
        "bomb": (bomb + "\n" + smoke, "values, more than 100,000: YAML aliases"),
    }
    for name, (text, fragment) in cases.items():
        proc = _dry_run_text(tmp_path / name, text)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0 and fragment in out and "Traceback" not in out, out


def test_config_overrides_are_typed_as_a_user_types_them():
    from nnflow.workflow.config import apply_overrides

    cfg = smoke_config()
    # what Snakemake's --config hands over: nested scalars are strings (YAML BaseLoader)
    apply_overrides(cfg, {"experiments": {"mnist_cost": {"params": {
        "eta": "0.25", "sizes": ["784", "20", "10"], "lmbda": "1e-3", "train_size": "null"}}},
        "pagerank": {"enabled": "false"}})
    p = cfg["experiments"]["mnist_cost"]["params"]
    assert p["eta"] == 0.25 and p["sizes"] == [784, 20, 10] and p["lmbda"] == 1e-3
    assert p["train_size"] is None and p["epochs"] == 2 and cfg["pagerank"]["enabled"] is False
    apply_overrides(cfg, {"experiments": {"mnist_cost": {"report": {"title": "3"}}}})
    assert cfg["experiments"]["mnist_cost"]["report"]["title"] == 3  # then refused by the schema
    with pytest.raises(ConfigError, match="experiments.mnist_cost.report.title: 3 is not of type 'string'"):
        resolve_config(cfg, load_schema(SCHEMA))


@pytest.mark.workflow
def test_snakemake_config_overrides_of_nested_numbers_work(tmp_path):
    proc = _dry_run_text(tmp_path, SMOKE.read_text(), "--config",
                         "experiments={mnist_cost: {params: {epochs: 3, sizes: [784, 12, 10]}}}",
                         "--quiet", "rules")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "train_network2" in out and "invalid configuration" not in out


def _omittable(schema: dict, config: dict) -> list[str]:
    """Every top-level section the schema does not require and every experiment."""
    top = [k for k in schema["properties"] if k not in schema.get("required", []) and k in config]
    return top + [f"experiments.{name}" for name in config["experiments"]]


@pytest.mark.workflow
@pytest.mark.parametrize("section", _omittable(load_schema(SCHEMA), yaml.safe_load(
    (ROOT / "config.yaml").read_text())))
def test_every_optional_section_of_the_shipped_config_can_be_left_out(tmp_path, section):
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    *parents, last = section.split(".")
    node = cfg
    for key in parents:
        node = node[key]
    del node[last]
    if not cfg["experiments"]:
        pytest.skip("no experiment left")  # pragma: no cover
    proc = _dry_run_text(tmp_path, yaml.safe_dump(cfg, sort_keys=False), "--quiet", "rules")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in out, out
