"""Training memory: batches never exceed the data, and each job declares at least what it uses.

Peaks are measured in child processes as the kernel's ``VmHWM`` (the high-water mark of
the process's own resident memory). ``ru_maxrss`` would not do: it survives ``execve``,
so a child started by a large process (pytest, Snakemake) reports its parent's size.
Every child runs under an address-space limit, so a regression (the 6 GB batch buffers
this guards against) fails with a MemoryError instead of filling the machine.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnflow.data.prepare import SplitShapes, declared_shapes
from nnflow.nn import kernels, network2_kernel, optim, sparse_input
from nnflow.train import memory
from nnflow.train.memory import estimate_run_memory, run_mem_mb
from nnflow.train.trainers import TRAINERS
from nnflow.workflow.config import load_schema, resolve_config, resolve_datasets
from nnflow.workflow.layout import Layout

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
ADDRESS_SPACE_LIMIT = 3 * 1024**3

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")

CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from nnflow.train.checkpoint import Checkpoint
from nnflow.train.run import load_dataset
from nnflow.train.trainers import get_trainer
from nnflow.train.trainers.solver import train_solver
spec, data_dir, evaluate_test = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] == "test"
data = load_dataset(data_dir)
if evaluate_test:
    trained = train_solver(spec, data, Checkpoint(None, spec), evaluate_test=True)
else:
    trained = get_trainer(spec["trainer"])(spec, data, Checkpoint(None, spec))
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
extra = {{k: v for k, v in trained.extra.items() if k.startswith("effective")}}
print(json.dumps({{"peak_mb": peak_kib * 1024 / 1e6, "extra": extra, "status": trained.status["status"],
                  "numba": "numba" in sys.modules}}))
"""


def write_prepared(directory: Path, shapes: SplitShapes, seed: int = 0) -> Path:
    """Prepared arrays of the given shapes (random values: memory does not depend on them)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dtype = {4: np.float32, 8: np.float64}[shapes.itemsize]
    for split, n in (("train", shapes.n_train), ("val", shapes.n_val), ("test", shapes.n_test)):
        np.save(directory / f"X_{split}.npy", rng.random((n, shapes.dim), dtype=dtype))
        np.save(directory / f"y_{split}.npy", rng.integers(0, shapes.num_classes, n).astype(np.uint8))
    (directory / "provenance.json").write_text(json.dumps({"num_classes": shapes.num_classes}))
    return directory


def train_in_child(spec: dict, data_dir: Path, evaluate_test: bool = False) -> dict:
    """Train ``spec`` in a fresh interpreter; its peak memory (MB), effective batch and status."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(limit=ADDRESS_SPACE_LIMIT), json.dumps(spec), str(data_dir),
         "test" if evaluate_test else "train"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def spec_of(trainer: str, params: dict, run_id: str = "memory/base/seed=1") -> dict:
    return {"experiment": "memory", "run_id": run_id, "seed": 1, "trainer": trainer, "dataset": "d",
            "params": params}


SMOKE_SHAPES = {  # what the smoke workflow prepares from its generated mirror (600 / 100 images)
    "mnist": SplitShapes(500, 100, 100, 784, 10, 8),
    "cifar10": SplitShapes(400, 50, 100, 3072, 10, 4),
}


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    return {name: write_prepared(root / name, shapes) for name, shapes in SMOKE_SHAPES.items()}


def smoke_layout() -> Layout:
    cfg = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "smoke" / "config.yaml").read_text()))
    runs = resolve_config(cfg, SCHEMA)
    return Layout(cfg, runs, resolve_datasets(cfg))


# --------------------------------------------------------------------------- batch never above the data


@pytest.mark.parametrize(("trainer", "params", "key"), [
    ("network2", {"sizes": [784, 10, 10], "epochs": 2, "mini_batch_size": 10**6, "eta": 0.5,
                  "cost": "cross_entropy", "train_size": 300}, "effective_mini_batch_size"),
    ("solver", {"hidden_dims": [20], "batch_size": 10**6, "num_epochs": 2, "train_size": 300,
                "sampling": "with_replacement", "update_rule": "adam", "learning_rate": 1e-3},
     "effective_batch_size"),
])
def test_a_batch_larger_than_the_training_set_is_the_training_set(smoke_data, trainer, params, key):
    dataset = "mnist" if trainer == "network2" else "cifar10"
    shapes = SMOKE_SHAPES[dataset]
    result = train_in_child(spec_of(trainer, params), smoke_data[dataset])
    assert result["status"] == "completed" and result["extra"] == {key: 300}
    # bounded by the data: within what a batch of the 300 examples is declared to need
    assert result["peak_mb"] <= run_mem_mb(trainer, params, shapes)


LIBRARY_CHILD = """
import resource
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
import numpy as np
from nnflow.nn import network2
from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.solver import Solver
rng = np.random.default_rng(0)
X, y = rng.random((30, 4)), rng.integers(0, 3, 30)
whole, huge = network2.Network([4, 5, 3], seed=1), network2.Network([4, 5, 3], seed=1)
whole.SGD((X, y), 2, 30, 0.5)
huge.SGD((X, y), 2, 10**9, 0.5)  # buffers of 10^9 rows would take 100 GB
assert all(np.array_equal(a, b) for a, b in zip(whole.weights, huge.weights, strict=True))
model = FullyConnectedNet([5], input_dim=4, num_classes=3, seed=1)
solver = Solver(model, {{"X_train": X, "y_train": y, "X_val": X, "y_val": y}}, batch_size=10**9,
                num_epochs=1, verbose=False, seed=1)
solver.train()
print(solver.batch_size)
"""


def test_the_library_clamps_the_batch_for_python_callers():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", LIBRARY_CHILD.format(limit=ADDRESS_SPACE_LIMIT)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["30"]


# --------------------------------------------------------------------------- the estimate


def test_the_estimate_counts_every_trainer_and_update_rule():
    assert set(memory.ESTIMATORS) == set(TRAINERS)
    # a scratch array plus the state: velocity (momentum), cache (rmsprop), m and v (adam)
    copies = {name: memory.update_rule_arrays(name) for name in optim.UPDATE_RULES}
    assert copies == {"sgd": 1, "sgd_momentum": 2, "rmsprop": 2, "adam": 3}
    with pytest.raises(ValueError, match="trainer 'torch' has no memory estimate .*resources.mem_mb"):
        run_mem_mb("torch", {}, SMOKE_SHAPES["mnist"])


def test_a_run_without_the_sizes_its_memory_depends_on_is_named():
    cfg = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "smoke" / "config.yaml").read_text()))
    del cfg["experiments"]["cifar_overfitting"]["params"]["hidden_dims"]
    layout = Layout(cfg, resolve_config(cfg, SCHEMA), resolve_datasets(cfg))
    (run,) = layout.runs_of("cifar_overfitting")
    where = r"experiments\.cifar_overfitting \(run cifar_overfitting/base/seed=1\)"
    with pytest.raises(ValueError, match=where + ": params: a solver run needs 'hidden_dims'"):
        layout.run_mem_mb(run)


def test_the_estimate_grows_with_batch_size_widths_and_optimizer_state():
    cifar = SplitShapes(49000, 1000, 10000, 3072, 10, 4)

    def solver(**change):
        params = {"hidden_dims": [100], "batch_size": 100, "num_epochs": 1, **change}
        return run_mem_mb("solver", params, cifar)

    assert solver(batch_size=100) < solver(batch_size=1000) < solver(batch_size=10000)
    assert solver(batch_size=49000) == solver(batch_size=10**6)  # never more than the training set
    assert solver(hidden_dims=[100]) < solver(hidden_dims=[1000]) < solver(hidden_dims=[1000, 1000])
    assert solver(update_rule="sgd") < solver(update_rule="sgd_momentum") < solver(update_rule="adam")
    assert solver(train_size=1000) < solver(train_size=10000) < solver(train_size=None)
    mnist = SplitShapes(50000, 10000, 10000, 784, 10, 8)

    def network2(threads=1, **change):
        params = {"sizes": [784, 30, 10], "mini_batch_size": 10, "epochs": 30, **change}
        return run_mem_mb("network2", params, mnist, threads=threads)

    assert network2(mini_batch_size=10) < network2(mini_batch_size=5000) < network2(mini_batch_size=50000)
    assert network2(mini_batch_size=50000) == network2(mini_batch_size=10**6)
    assert network2() < network2(sizes=[784, 1000, 10]) < network2(sizes=[784, 1000, 1000, 10])
    assert network2(threads=2) > network2()


@pytest.mark.slow
def test_the_estimate_covers_a_cifar_shaped_run_within_a_factor(tmp_path):
    shapes = SplitShapes(5000, 1000, 1000, 3072, 10, 4)
    params = {"hidden_dims": [100], "batch_size": 500, "num_epochs": 2, "update_rule": "adam",
              "learning_rate": 1e-3}
    measured = train_in_child(spec_of("solver", params), write_prepared(tmp_path / "cifar", shapes))
    declared = estimate_run_memory("solver", params, shapes).mem_mb
    assert measured["peak_mb"] <= declared <= 3 * measured["peak_mb"]


def test_a_run_that_starts_numba_asks_for_its_runtime_too(smoke_data):
    """numba's runtime (~140 MB) is in the request of a run whose work starts it: here a
    network2 run planned just above the compiled epoch's threshold, on the smoke data; so are
    the copies of its inputs' non-zeros that its monitoring may keep."""
    shapes = SMOKE_SHAPES["mnist"]
    epochs = -(-network2_kernel.START_AFTER // network2_kernel.planned_work([784, 30, 10], shapes.n_train, 1))
    params = {"sizes": [784, 30, 10], "epochs": epochs, "mini_batch_size": 10, "eta": 0.5,
              "cost": "cross_entropy"}
    assert memory.starts_numba("network2", params, shapes)
    assert not memory.starts_numba("network2", {**params, "epochs": epochs - 1}, shapes)
    result = train_in_child(spec_of("network2", params), smoke_data["mnist"])
    assert result["numba"] and result["status"] == "completed"
    assert result["peak_mb"] <= run_mem_mb("network2", params, shapes)
    fewer = {**params, "epochs": epochs - 1}
    more = run_mem_mb("network2", params, shapes) - run_mem_mb("network2", fewer, shapes)
    sparse = (sparse_input.max_nbytes(shapes.n_train, 784, pointers=2)
              + sparse_input.max_nbytes(shapes.n_test, 784))
    sparse_mb = memory.SAFETY_FACTOR * sparse / memory.MB
    assert memory.NUMBA_MB + sparse_mb <= more <= memory.NUMBA_MB + sparse_mb + 1


def test_a_solver_run_counts_numba_when_its_update_work_starts_it(monkeypatch):
    cifar = SMOKE_SHAPES["cifar10"]
    params = {"hidden_dims": [50], "batch_size": 50, "num_epochs": 1, "update_rule": "adam",
              "learning_rate": 1e-3}
    steps_needed = kernels.AUTO_START_AFTER / (memory._parameter_count([3072, 50, 10])
                                               * kernels.NUMPY_PASSES["adam"])
    epochs = int(-(-steps_needed // (cifar.n_train // 50)))
    assert memory.starts_numba("solver", {**params, "num_epochs": epochs}, cifar)
    assert not memory.starts_numba("solver", {**params, "num_epochs": epochs - 1}, cifar)
    monkeypatch.delitem(kernels.NUMPY_PASSES, "adam")  # as for a rule without a fused kernel
    assert not memory.starts_numba("solver", {**params, "num_epochs": epochs}, cifar)


# --------------------------------------------------------------------------- the workflow's requests


@pytest.mark.slow
def test_the_smoke_runs_stay_within_their_declared_memory(smoke_data):
    layout = smoke_layout()
    first_runs = {}
    for run in layout.runs.values():
        first_runs.setdefault(run.experiment, run)
    for run in first_runs.values():
        assert "mem_mb" not in run.resources  # the smoke config declares none: estimated
        measured = train_in_child(run.spec(), smoke_data[run.dataset])
        assert measured["peak_mb"] <= layout.run_mem_mb(run), run.run_id
    # the random search's final run: any candidate with the final settings, tested once
    (experiment,) = layout.search_experiments()
    final = layout.config["experiments"][experiment]["final"]
    for run in layout.runs_of(experiment):
        spec = {**run.spec(), "params": {**run.params, **final}}
        measured = train_in_child(spec, smoke_data[run.dataset], evaluate_test=True)
        assert measured["peak_mb"] <= layout.final_mem_mb(experiment), run.run_id


def test_an_explicit_mem_mb_wins_over_the_estimate():
    cfg = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "smoke" / "config.yaml").read_text()))
    cfg["experiments"]["mnist_cost"]["resources"] = {"mem_mb": 777}
    cfg["experiments"]["cifar_challenge"]["resources"] = {"mem_mb": 888}
    runs = resolve_config(cfg, SCHEMA)
    layout = Layout(cfg, runs, resolve_datasets(cfg))
    by_experiment = {run.experiment: layout.run_mem_mb(run) for run in runs.values()}
    assert by_experiment["mnist_cost"] == 777 and by_experiment["cifar_challenge"] == 888
    assert layout.final_mem_mb("cifar_challenge") == 888
    # without it: the estimate, on the shapes the declaration gives (an IDX dataset's sizes are in
    # its files; MNIST's are assumed, split by the smoke config's validation_size: 100)
    assert declared_shapes(layout.datasets["mnist"]) == SplitShapes(59900, 100, 10000, 784, 10, 8)
    assert declared_shapes(layout.datasets["cifar10"]) == SplitShapes(400, 50, 100, 3072, 10, 4)
    overfitting = next(r for r in runs.values() if r.experiment == "mnist_overfitting")
    assert by_experiment["mnist_overfitting"] == run_mem_mb("network2", overfitting.params,
                                                            declared_shapes(layout.datasets["mnist"]))
