"""Checkpoints are bound to their run's identity, survive damage and have one writer."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_experiments import NET2, SOLVER, _data, _outputs, _spec

from nnflow.files import load_npz
from nnflow.nn.solver import Solver
from nnflow.train import run as run_module
from nnflow.train.checkpoint import Checkpoint, CheckpointBusyError, checkpoint_interval, data_identity
from nnflow.train.run import train_run

ROOT = Path(__file__).resolve().parents[1]


class Interrupted(Exception):
    pass


@pytest.fixture
def data(monkeypatch, rng):
    d = {**_data(rng), "identity": "data-A"}
    monkeypatch.setattr(run_module, "load_dataset", lambda data_dir: d)
    return d


def _interrupt_solver_after(monkeypatch, epoch: int) -> None:
    original = Solver.train

    def train(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.epoch == epoch:
            raise Interrupted

    monkeypatch.setattr(Solver, "train", train)


def _killed_run(tmp_path, monkeypatch, spec, epoch=2, code="code-A"):
    """A run killed after ``epoch`` epochs were checkpointed; the library is restored."""
    with monkeypatch.context() as m:
        _interrupt_solver_after(m, epoch + 1)
        with pytest.raises(Interrupted):
            train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt", code=code)
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["epoch"] == epoch


def _reference(tmp_path, spec) -> dict:
    info = train_run(spec, "unused", _outputs(tmp_path / "ref"), None)
    return {"info": info, "model": load_npz(tmp_path / "ref" / "model.npz"),
            "metrics": (tmp_path / "ref" / "metrics.csv").read_text()}


def _assert_like(tmp_path, ref) -> None:
    assert (tmp_path / "out" / "metrics.csv").read_text() == ref["metrics"]
    got = load_npz(tmp_path / "out" / "model.npz")
    assert all(np.array_equal(got[k], ref["model"][k]) for k in ref["model"])


def test_a_resumed_run_says_so_and_from_which_epoch(tmp_path, data, monkeypatch):
    spec = _spec("solver", SOLVER)
    ref = _reference(tmp_path, spec)
    assert ref["info"]["checkpoint"] == {"resumed_from_epoch": None}
    _killed_run(tmp_path, monkeypatch, spec, epoch=2)
    info = train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt", code="code-A")
    assert info["checkpoint"] == {"resumed_from_epoch": 2}
    assert json.loads((tmp_path / "out" / "run.json").read_text())["checkpoint"] == info["checkpoint"]
    _assert_like(tmp_path, ref)


@pytest.mark.parametrize(("change", "named"), [
    ("data", "written for another the prepared data"),
    ("code", "written for another the code"),
])
def test_a_checkpoint_of_other_data_or_code_is_never_resumed(tmp_path, data, monkeypatch, change, named):
    spec = _spec("solver", SOLVER)
    ref = _reference(tmp_path, spec)
    _killed_run(tmp_path, monkeypatch, spec, epoch=2)
    code = "code-A"
    if change == "data":
        data["identity"] = "data-B"
    else:
        code = "code-B"
    info = train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt", code=code)
    assert info["checkpoint"]["resumed_from_epoch"] is None
    assert named in info["checkpoint"]["restarted"]
    assert "after epoch 2" in info["checkpoint"]["restarted"]
    _assert_like(tmp_path, ref)  # trained from epoch 0: the same as an uninterrupted run


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_bit(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(("damage", "target"), [
    (_truncate, "state-*.npz"),
    (_flip_a_bit, "state-*.npz"),
    (_flip_a_bit, "solver-*.npz"),
    (_truncate, "state.json"),
    (Path.unlink, "solver-*.json"),
])
def test_a_damaged_checkpoint_is_moved_aside_and_the_run_restarts(
        tmp_path, data, monkeypatch, damage, target):
    spec = _spec("solver", SOLVER)
    ref = _reference(tmp_path, spec)
    _killed_run(tmp_path, monkeypatch, spec, epoch=2)
    victim = next((tmp_path / "ckpt").glob(target))
    damage(victim)
    before = sorted(p.name for p in (tmp_path / "ckpt").iterdir() if p.name != ".lock")

    info = train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt", code="code-A")
    assert info["checkpoint"]["resumed_from_epoch"] is None
    reason = info["checkpoint"]["restarted"]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("ckpt.damaged-")]
    assert len(aside) == 1 and str(aside[0]) in reason, reason
    assert sorted(p.name for p in aside[0].iterdir()) == before  # kept, nothing deleted
    _assert_like(tmp_path, ref)


def test_network2_checkpoint_with_a_flipped_bit_is_not_resumed(tmp_path, data):
    spec = _spec("network2", NET2)
    ckpt = Checkpoint(tmp_path / "ckpt", spec, data="data-A", code="code-A")
    ckpt.save({"w0": np.ones(3)}, {"epoch": 1, "rows": [], "rng": None})
    _flip_a_bit(next((tmp_path / "ckpt").glob("state-*.npz")))
    fresh = Checkpoint(tmp_path / "ckpt", spec, data="data-A", code="code-A")
    assert fresh.load() is None
    assert "sha256" in fresh.record["restarted"]


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    spec = _spec("network2", NET2)
    first = Checkpoint(tmp_path / "ckpt", spec, data="d", code="c")
    with first.hold():
        with pytest.raises(CheckpointBusyError, match=r"being trained by another process \(pid \d+ on "):
            with Checkpoint(tmp_path / "ckpt", spec, data="d", code="c").hold():
                pass  # pragma: no cover
    with Checkpoint(tmp_path / "ckpt", spec, data="d", code="c").hold():  # released after the block
        pass


def test_the_lock_of_a_killed_holder_is_released(tmp_path):
    """An orphaned job holds the lock while it lives; once it dies a rerun may train."""
    script = textwrap.dedent(f"""
        import sys, time
        from nnflow.train.checkpoint import Checkpoint
        with Checkpoint({str(tmp_path / 'ckpt')!r}, {{}}, data="d", code="c").hold():
            print("held", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={"PYTHONPATH": str(ROOT / "src")})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CheckpointBusyError, match=rf"pid {holder.pid} on"):
            with Checkpoint(tmp_path / "ckpt", {}, data="d", code="c").hold():
                pass  # pragma: no cover
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with Checkpoint(tmp_path / "ckpt", {}, data="d", code="c").hold():
        pass


def test_data_identity_changes_when_the_prepared_data_is_rewritten(tmp_path):
    (tmp_path / "provenance.json").write_text('{"dtype": "float64"}')
    np.save(tmp_path / "X_train.npy", np.zeros(3))
    before = data_identity(tmp_path)
    assert data_identity(tmp_path) == before
    np.save(tmp_path / "X_train.npy", np.zeros(4))
    assert data_identity(tmp_path) != before


def test_a_resumed_network2_run_writes_the_same_metrics_bytes(tmp_path, data, monkeypatch):
    spec = _spec("network2", NET2)
    ref = _reference(tmp_path, spec)
    original = Checkpoint.save

    def save(self, arrays, meta, files=()):
        if meta["epoch"] == 3:  # epoch 3 trained, its checkpoint never written: the job dies
            raise Interrupted
        original(self, arrays, meta, files)

    with monkeypatch.context() as m:
        m.setattr(Checkpoint, "save", save)
        with pytest.raises(Interrupted):
            train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt", code="code-A")
    info = train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt", code="code-A")
    assert info["checkpoint"] == {"resumed_from_epoch": 2}
    _assert_like(tmp_path, ref)  # metrics.csv byte for byte, the weights exactly


# ------------------------------------------------------------------------------ interval


def test_a_checkpoint_is_due_after_its_interval_or_the_last_epoch(tmp_path):
    every = Checkpoint(tmp_path / "a", {}, data="d", code="c")
    assert every.interval == 0 and every.due()
    spaced = Checkpoint(tmp_path / "b", {}, data="d", code="c", interval=3600)
    assert not spaced.due() and spaced.due(last=True)
    assert not Checkpoint(None, {}, interval=0).due(last=True)  # checkpointing off
    with pytest.raises(ValueError, match=r"Checkpoint: interval must be a number of seconds >= 0, got -1"):
        Checkpoint(tmp_path / "c", {}, interval=-1)


@pytest.mark.parametrize(("trainer", "params"), [("network2", NET2), ("solver", SOLVER)])
def test_an_interval_saves_fewer_epochs_and_the_run_ends_the_same(tmp_path, data, monkeypatch,
                                                                   trainer, params):
    """With an interval longer than the run only the last epoch is checkpointed (it was
    every epoch: 400 fsynced checkpoints for 400 short epochs); metrics and weights are
    those of the run without checkpoints."""
    spec = _spec(trainer, params)
    ref = _reference(tmp_path, spec)
    saved = []
    original = Checkpoint.save

    def spy(self, arrays, meta, files=()):
        saved.append(meta["epoch"])
        original(self, arrays, meta, files)

    monkeypatch.setattr(Checkpoint, "save", spy)
    train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt", code="code-A",
              checkpoint_interval=3600)
    assert saved == [4]
    _assert_like(tmp_path, ref)


def test_a_run_resumed_with_an_interval_ends_like_an_uninterrupted_one(tmp_path, data, monkeypatch):
    spec = _spec("solver", SOLVER)
    ref = _reference(tmp_path, spec)
    _killed_run(tmp_path, monkeypatch, spec, epoch=2)  # checkpointed after every epoch up to 2
    info = train_run(spec, "unused", _outputs(tmp_path / "out"), tmp_path / "ckpt", code="code-A",
                     checkpoint_interval=3600)
    assert info["checkpoint"] == {"resumed_from_epoch": 2}
    _assert_like(tmp_path, ref)


@pytest.mark.parametrize(("value", "seconds"), [(None, 10.0), ("", 10.0), ("0", 0.0), ("2.5", 2.5)])
def test_the_workflow_interval_comes_from_the_environment(value, seconds):
    environ = {} if value is None else {"NNFLOW_CHECKPOINT_INTERVAL": value}
    assert checkpoint_interval(environ) == seconds


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_bad_interval_variable_is_named(value):
    with pytest.raises(ValueError, match=rf"NNFLOW_CHECKPOINT_INTERVAL must be a number of seconds >= 0, "
                                         rf"got '{value}'"):
        checkpoint_interval({"NNFLOW_CHECKPOINT_INTERVAL": value})
