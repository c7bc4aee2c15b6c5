"""Training runs at the Python level: bad sizes, divergence, resuming, atomic files, no pickle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fake_runs import learnable_data
from fake_runs import run_outputs as _outputs

from nnflow.files import atomic_write, load_npy, load_npz, save_npy, write_json
from nnflow.nn import costs, layers, network2
from nnflow.nn.model_io import load_model, save_model
from nnflow.train import checkpoint as checkpoint_module
from nnflow.train import run as run_module
from nnflow.train.checkpoint import Checkpoint
from nnflow.train.grid import canonical_json
from nnflow.train.run import train_run
from nnflow.train.trainers.network2 import train_network2
from nnflow.train.trainers.solver import train_solver

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("metrics", "model", "model_meta", "run_info")


def _data(rng):
    """Learnable MNIST-shaped in-memory 'prepared' arrays, as load_dataset returns them."""
    return learnable_data(rng, n_train=200, n_eval=50, dim=784)


def _spec(trainer, params, seed=1, experiment="exp"):
    return {"experiment": experiment, "run_id": f"{experiment}/base/seed={seed}", "seed": seed,
            "trainer": trainer, "dataset": "mnist", "params": params}


NET2 = {"sizes": [784, 12, 10], "epochs": 4, "mini_batch_size": 10, "eta": 0.5, "lmbda": 0.1,
        "cost": "cross_entropy", "weight_init": "default", "train_size": 150}
SOLVER = {"hidden_dims": [16, 12], "activation": "relu", "weight_init": "he", "normalization": "batchnorm",
          "dropout_keep_ratio": 0.8, "update_rule": "adam", "learning_rate": 1e-3, "lr_decay": 0.9,
          "batch_size": 25, "num_epochs": 4, "train_size": 150, "num_train_samples": 100}


@pytest.fixture
def data(monkeypatch, rng):
    d = _data(rng)
    monkeypatch.setattr(run_module, "load_dataset", lambda data_dir: d)
    return d


# ------------------------------------------------------------------------------ subset too large


@pytest.mark.parametrize(("trainer", "params"), [("network2", NET2), ("solver", SOLVER)])
def test_train_size_larger_than_training_set_fails_naming_train_size(tmp_path, data, trainer, params):
    spec = _spec(trainer, {**params, "train_size": 201})
    with pytest.raises(ValueError, match=r"train_size=201 is larger than the training set \(200 examples\)"):
        train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ------------------------------------------------------------------------------ divergence


def test_network2_divergence_is_recorded_and_stops_early(tmp_path, data):
    # eta * lmbda / n >> 2: the L2 decay factor 1 - eta*lmbda/n is far below -1, so the weights
    # grow geometrically with alternating sign until the cost (and then the weights) overflow.
    # Warnings are errors in this suite: the overflow must be detected, not warned about.
    spec = _spec("network2", {**NET2, "eta": 1e6, "lmbda": 5.0, "epochs": 6})
    info = train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt")
    assert info["status"] == "diverged"
    assert info["diverged_epoch"] == 3 and info["epochs_completed"] == 2
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert (run["status"], run["diverged_epoch"]) == ("diverged", info["diverged_epoch"])
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + info["epochs_completed"]  # header + the epochs before the divergence
    assert not (tmp_path / "ckpt").exists()


def test_network2_divergence_after_some_epochs_keeps_the_epochs_before(tmp_path, data, monkeypatch):
    # Make the weights non-finite after epoch 2's updates (a learning rate far too large reaching
    # overflow late); the run stops there, keeps epochs 1-2 and says 'diverged at epoch 3'.
    original = network2.Network._is_finite
    calls = []

    def is_finite(self):
        calls.append(1)
        if len(calls) == 3:
            self._W[0][0, 0] = np.inf
        return original(self)

    monkeypatch.setattr(network2.Network, "_is_finite", is_finite)
    spec = _spec("network2", {**NET2, "epochs": 5})
    info = train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt")
    assert (info["status"], info["diverged_epoch"], info["epochs_completed"]) == ("diverged", 3, 2)
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    assert len(calls) == 3  # stopped early: epochs 4 and 5 never ran


def test_solver_divergence_is_recorded(tmp_path, data):
    # learning_rate * reg = 10 > 2: the weight decay alone overshoots and grows geometrically.
    # (Without L2, a too-large rate just kills every ReLU: a finite, useless run, not a divergence.)
    spec = _spec("solver", {**SOLVER, "normalization": "none", "dropout_keep_ratio": 1.0,
                            "update_rule": "sgd", "learning_rate": 10.0, "reg": 1.0})
    info = train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt")
    assert (info["status"], info["diverged_epoch"], info["epochs_completed"]) == ("diverged", 2, 1)
    assert json.loads((tmp_path / "out" / "run.json").read_text())["status"] == "diverged"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_overflow_is_handled_stably_at_1e4(dtype):
    """sigmoid, sigma', softmax, softmax loss and cross-entropy at +-1e4: finite, no warnings."""
    z = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    for fn in (layers.sigmoid, network2.sigmoid, layers.sigmoid_prime, network2.sigmoid_prime):
        out = fn(z)
        assert np.all(np.isfinite(out)) and out.dtype == dtype
    assert layers.sigmoid(z)[0, 0] == 0 and layers.sigmoid(z)[0, -1] == 1
    p = layers.softmax(z)
    assert np.all(np.isfinite(p)) and p[0, -1] == 1
    scores = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=dtype)
    loss, dx = layers.softmax_loss(scores, np.array([1, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    assert loss == pytest.approx(1e4, rel=1e-6)
    a = layers.sigmoid(np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=dtype))
    y = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=dtype)
    assert np.isfinite(costs.CrossEntropyCost.fn(a, y))
    assert np.all(np.isfinite(costs.CrossEntropyCost.delta(None, a, y)))


# ------------------------------------------------------------------------------ resuming


class Interrupted(Exception):
    pass


def _strip_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _assert_same_params(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def test_network2_resumes_bit_for_bit(tmp_path, data, monkeypatch):
    spec = _spec("network2", NET2)
    rows_ref, params_ref, status_ref, _, _ = train_network2(spec, data, Checkpoint(None, spec))

    ckpt = Checkpoint(tmp_path / "ckpt", spec)
    original = Checkpoint.save

    def save(self, arrays, meta):
        if meta["epoch"] == 3:  # epoch 3 trained, its checkpoint never written: the job dies
            raise Interrupted
        original(self, arrays, meta)

    monkeypatch.setattr(Checkpoint, "save", save)
    with pytest.raises(Interrupted):
        train_network2(spec, data, ckpt)
    monkeypatch.setattr(Checkpoint, "save", original)
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["epoch"] == 2
    rows, params, status, _, _ = train_network2(spec, data, ckpt)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert _strip_seconds(rows) == _strip_seconds(rows_ref)
    _assert_same_params(params, params_ref)
    assert status == status_ref


def test_solver_resumes_bit_for_bit(tmp_path, data, monkeypatch):
    from nnflow.nn.solver import Solver

    spec = _spec("solver", SOLVER)
    ref = train_solver(spec, data, Checkpoint(None, spec))

    original = Solver.train

    def train(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.epoch == 3:  # after epoch 3's updates, before its checkpoint
            raise Interrupted

    monkeypatch.setattr(Solver, "train", train)
    ckpt = Checkpoint(tmp_path / "ckpt", spec)
    with pytest.raises(Interrupted):
        train_solver(spec, data, ckpt)
    monkeypatch.setattr(Solver, "train", original)
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["epoch"] == 2
    rows, params, status, _, extra = train_solver(spec, data, ckpt)
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3, 4]
    assert _strip_seconds(rows) == _strip_seconds(ref[0])
    _assert_same_params(params, ref[1])
    assert status == ref[2]
    assert extra["iterations"] == ref[4]["iterations"]
    assert extra["best_val_accuracy"] == ref[4]["best_val_accuracy"]


def test_checkpoint_of_another_spec_is_not_resumed(tmp_path, data):
    spec = _spec("network2", NET2)
    Checkpoint(tmp_path / "ckpt", _spec("network2", {**NET2, "eta": 0.25})).save(
        {"w0": np.zeros(1)}, {"epoch": 3, "rows": [], "rng": None})
    assert Checkpoint(tmp_path / "ckpt", spec).load() is None
    rows, *_ = train_network2(spec, data, Checkpoint(tmp_path / "ckpt", spec))
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]


def test_completed_run_removes_its_checkpoint(tmp_path, data):
    spec = _spec("network2", {**NET2, "epochs": 2})
    train_run(canonical_json(spec), "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "metrics.csv", "model.json", "model.npz", "run.json"]


# ------------------------------------------------------------------------------ atomic writes


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def test_exception_inside_atomic_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.npy"
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_exception_inside_atomic_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as tmp:
        tmp.write_text("{")
        raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"v": 1}
    assert _leftovers(tmp_path) == []


def test_crash_mid_write_never_leaves_a_half_written_final_file(tmp_path):
    """os._exit half-way through np.save inside atomic_write: the final name never appears."""
    target = tmp_path / "big.npy"
    script = textwrap.dedent(f"""
        import os
        import numpy as np
        from nnflow.files import atomic_write
        big = np.arange(4_000_000, dtype=np.float64)
        with atomic_write({str(target)!r}) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, big[: big.size // 2], allow_pickle=False)
                fh.flush()
                os._exit(9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == 9
    assert not target.exists()
    assert len(_leftovers(tmp_path)) == 1  # a stray temporary name, which no stage reads


def test_sigkill_during_repeated_writes_leaves_a_complete_file(tmp_path):
    """SIGKILL at an arbitrary moment while save_npy rewrites a 16 MB array: the file under the
    final name is always one complete version, never a mix or a truncation."""
    target = tmp_path / "a.npy"
    save_npy(target, np.zeros(2_000_000))
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from nnflow.files import save_npy
        for k in range(1, 1000):
            save_npy({str(target)!r}, np.full(2_000_000, float(k)))
            print(k, flush=True)
    """)
    for delay_lines in (1, 3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(delay_lines):
            proc.stdout.readline()
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        a = load_npy(target, mmap=False)
        assert a.shape == (2_000_000,) and np.all(a == a[0]) and a[0] >= delay_lines
        assert all(name.startswith(".a.tmp-") for name in _leftovers(tmp_path))


# ------------------------------------------------------------------------------ no pickle


def test_model_npz_with_object_array_is_refused(tmp_path):
    npz, js = save_model(tmp_path / "model", {"w0": np.ones((2, 2))}, {"kind": "test"})
    params, meta = load_model(npz)
    assert meta == {"kind": "test"} and np.array_equal(params["w0"], np.ones((2, 2)))
    # Replace the arrays by a pickled object array and make the checksum match: still refused.
    np.savez(npz, w0=np.array([{"evil": 1}, None], dtype=object), allow_pickle=True)
    record = json.loads(js.read_text())
    import hashlib

    record["npz_sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    js.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        load_model(npz)
    with pytest.raises(ValueError, match="allow_pickle=False"):
        load_npz(npz)
    with pytest.raises(ValueError, match="object array"):
        save_model(tmp_path / "m2", {"w": np.array([None, 1], dtype=object)})


def _python_sources():
    for top in ("src", "workflow"):
        yield from sorted((ROOT / top).rglob("*.py"))
    yield from sorted((ROOT / "workflow").rglob("*.smk"))
    yield ROOT / "Snakefile"


def test_sources_never_unpickle():
    """No pickle/joblib/torch.load/read_pickle anywhere; every np.load has allow_pickle=False."""
    banned = ("import pickle", "from pickle", "cPickle", "dill", "joblib", "torch.load", "read_pickle",
              "allow_pickle=True", "pickle.load", "shelve")
    offenders, np_loads = [], 0
    for path in _python_sources():
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path}: {b}" for b in banned if b in text]
        if path.suffix != ".py":
            assert "np.load(" not in text and "numpy.load(" not in text, path
            continue
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in ("np", "numpy")):
                np_loads += 1
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False
                if not ok:
                    offenders.append(f"{path}:{node.lineno}: np.load without allow_pickle=False")
    assert offenders == []
    assert np_loads >= 2  # the check looked at the real loaders (nnflow.files)


@pytest.mark.parametrize("trainer", ["network2", "solver"])
def test_kill_between_an_epochs_files_and_its_commit_resumes_from_the_previous_epoch(
    tmp_path, data, monkeypatch, trainer
):
    """The epoch-3 arrays (and Solver checkpoint) are on disk, state.json still says
    epoch 2: resuming must use epoch 2's files, not a mix of the two epochs."""
    spec = _spec(trainer, NET2 if trainer == "network2" else SOLVER)
    train = train_network2 if trainer == "network2" else train_solver
    ref = train(spec, data, Checkpoint(None, spec))

    original = checkpoint_module.write_json

    def write_json_dies_at_epoch_3(path, obj):
        if Path(path).name == "state.json" and obj.get("epoch") == 3:
            raise Interrupted
        original(path, obj)

    monkeypatch.setattr(checkpoint_module, "write_json", write_json_dies_at_epoch_3)
    ckpt = Checkpoint(tmp_path / "ckpt", spec)
    with pytest.raises(Interrupted):
        train(spec, data, ckpt)
    monkeypatch.setattr(checkpoint_module, "write_json", original)
    left = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert "state-000003.npz" in left
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["epoch"] == 2

    rows, params, status, _, _ = train(spec, data, ckpt)
    assert _strip_seconds(rows) == _strip_seconds(ref[0])
    _assert_same_params(params, ref[1])
    assert status == ref[2]
