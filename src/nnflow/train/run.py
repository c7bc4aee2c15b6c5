"""One training run of the workflow, from its spec to its files.

A run spec (see :mod:`nnflow.train.grid`) names a trainer (``network2`` for the
MNIST sheet's Nielsen-style runs, ``solver`` for the CS231n-style modular nets),
a dataset, a seed and the parameters. :func:`train_run` loads the prepared
data, trains, and writes

- ``metrics.csv``: one row per epoch, computed values only (wall-clock times
  go to ``run.json``'s ``epoch_seconds``), so the same spec gives the same bytes,
- ``model.npz`` + ``model.json``: the final parameters and their metadata,
- ``run.json``: the spec, status (``completed`` / ``diverged`` with the epoch),
  timings, dataset provenance, the software environment and whether the run
  resumed a checkpoint (from which epoch) or why it discarded one,
- for solver runs also ``iterations.csv`` (the loss of every mini-batch).

Every epoch ends with a checkpoint outside the declared outputs (parameters,
optimizer state, generator state, history), so a job killed half-way resumes
where it stopped and ends with exactly the metrics and weights of an
uninterrupted run — if the checkpoint belongs to the same spec, prepared data and
code (see :mod:`nnflow.train.checkpoint`); one process at a time trains a run.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from nnflow.data.prepared import load_prepared
from nnflow.files import write_csv, write_json
from nnflow.nn import kernels
from nnflow.nn.model_io import save_model
from nnflow.progress import Progress, current, duration
from nnflow.runtime import environment
from nnflow.train.checkpoint import Checkpoint, data_identity
from nnflow.train.trainers import get_trainer


def load_dataset(data_dir: str | os.PathLike) -> dict[str, Any]:
    """The prepared arrays of a dataset (memory-mapped), its provenance and ``identity``
    (:func:`~nnflow.train.checkpoint.data_identity`, which binds checkpoints to it)."""
    return {**load_prepared(data_dir, mmap=True), "identity": data_identity(data_dir)}


def parse_spec(spec: str | dict[str, Any]) -> dict[str, Any]:
    """A run spec given as canonical JSON (a Snakemake param) or as a dict."""
    return json.loads(spec) if isinstance(spec, str) else dict(spec)


def train_run(
    spec: str | dict[str, Any],
    data_dir: str | os.PathLike,
    outputs: dict[str, str],
    checkpoint_dir: str | os.PathLike | None = None,
    threads: int = 1,
    code: str | None = None,
    progress: Progress | None = None,
    checkpoint_interval: float = 0.0,
) -> dict[str, Any]:
    """Train one run and write its outputs (see the module docstring); return run.json's content.

    ``code`` identifies the code the checkpoint is bound to (the workflow passes the job's
    source hash; default: every nnflow module). ``progress`` (default: the running job's,
    :func:`nnflow.progress.current`) hears of each epoch and ends with :func:`finished_line`.
    """
    progress = current() if progress is None else progress
    spec = parse_spec(spec)
    train = get_trainer(spec["trainer"])
    data = load_dataset(data_dir)
    checkpoint = Checkpoint(checkpoint_dir, spec, data=data.get("identity"), code=code,
                            interval=checkpoint_interval)
    with checkpoint.hold():
        started, calls_before = time.perf_counter(), kernels.calls()
        rows, params, status, model_meta, extra = train(spec, data, checkpoint, progress=progress)
        seconds = time.perf_counter() - started
        info = write_run_outputs(spec, rows, params, status, model_meta, extra, outputs,
                                 data["provenance"], threads, seconds, checkpoint.record,
                                 update_calls=kernels.calls_since(calls_before))
        checkpoint.remove()
    progress.finish(finished_line(info))
    return info


def _percent(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, int | float) else "n/a"


def _epochs(n: Any) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def finished_line(info: dict[str, Any]) -> str:
    """A finished run in one line, its headline metric first: the test accuracy measured once
    (a search's final run), else the final test accuracy (network2), else the final
    validation accuracy (Solver runs, with the best one and its epoch). E.g. "done: test
    accuracy 95.54% after 30 epochs, 1m10s"."""
    final, epochs, took = info.get("final") or {}, info.get("epochs_completed"), duration(info["seconds"])
    if info.get("status") == "diverged":
        return f"diverged in epoch {info.get('diverged_epoch')} ({_epochs(epochs)} completed), {took}"
    if info.get("test_accuracy") is not None:
        return (f"done: test accuracy {_percent(info['test_accuracy'])} ({info.get('weights')}), "
                f"{_epochs(epochs)}, {took}")
    if "test_accuracy" in final:
        return f"done: test accuracy {_percent(final['test_accuracy'])} after {_epochs(epochs)}, {took}"
    best = ""
    if info.get("best_epoch") is not None:
        best = f" (best {_percent(info.get('best_val_accuracy'))} at epoch {info['best_epoch']})"
    return f"done: val accuracy {_percent(final.get('val_accuracy'))}{best} after {_epochs(epochs)}, {took}"


def write_run_outputs(spec, rows, params, status, model_meta, extra, outputs, provenance,
                      threads, seconds, checkpoint_record=None, update_calls=None) -> dict[str, Any]:
    """Write metrics, model and run.json; run.json last, so it marks a complete run."""
    columns = list(rows[0]) if rows else ["epoch"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    write_csv(outputs["metrics"], rows, columns)
    if "iterations" in outputs:
        write_csv(outputs["iterations"], extra.get("iterations", []), ["iteration", "epoch", "loss"])
    save_model(outputs["model"], params, {**model_meta, "run_id": spec["run_id"], "seed": spec["seed"]})
    info = {
        "spec": spec,
        **status,
        "seconds": seconds,
        "threads": threads,
        "final": rows[-1] if rows else {},
        "dataset": {
            "name": spec["dataset"],
            "canonical": provenance.get("canonical"),
            "note": provenance.get("note"),
            "files": provenance.get("files"),
        },
        "checkpoint": checkpoint_record or {"resumed_from_epoch": None},
        "environment": environment(),
        # which update-rule path computed this run's steps (environment.update_kernels is the
        # path the process would choose): {"numba": fused calls, "numpy": NumPy calls}
        "update_calls": update_calls,
        **{k: v for k, v in extra.items() if k != "iterations"},
    }
    write_json(outputs["run_info"], info)
    return info
