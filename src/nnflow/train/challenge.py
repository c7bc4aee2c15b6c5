"""The accuracy challenge's final run: retrain the chosen candidate, test it once."""

from __future__ import annotations

import os
import time
from typing import Any

from nnflow.files import read_json, write_json
from nnflow.nn import kernels
from nnflow.progress import Progress, current
from nnflow.train.checkpoint import Checkpoint
from nnflow.train.run import finished_line, load_dataset, parse_spec, write_run_outputs
from nnflow.train.trainers.solver import train_solver


def train_final(chosen_path: str | os.PathLike, final: str | dict[str, Any], data_dir: str | os.PathLike,
                outputs: dict[str, str], checkpoint_dir: str | os.PathLike | None = None,
                threads: int = 1, code: str | None = None,
                progress: Progress | None = None, checkpoint_interval: float = 0.0) -> dict[str, Any]:
    """Retrain the chosen candidate with the final budget and evaluate it once on the test set.

    The test set sees the weights of the epoch with the best validation accuracy (the
    Solver's best parameters; see :func:`~nnflow.train.trainers.solver.train_solver`).
    ``progress`` as for :func:`~nnflow.train.run.train_run`.
    """
    progress = current() if progress is None else progress
    chosen = read_json(chosen_path)
    final = parse_spec(final)
    spec = dict(chosen["spec"])
    spec["params"] = {**chosen["params"], **final}
    spec["run_id"] = f"{spec['experiment']}/final"
    spec["chosen_candidate"] = chosen["run_id"]
    data = load_dataset(data_dir)
    checkpoint = Checkpoint(checkpoint_dir, spec, data=data.get("identity"), code=code,
                            interval=checkpoint_interval)
    with checkpoint.hold():
        started, calls_before = time.perf_counter(), kernels.calls()
        rows, params, status, meta, extra = train_solver(spec, data, checkpoint, evaluate_test=True,
                                                       progress=progress)
        seconds = time.perf_counter() - started
        info = write_run_outputs(spec, rows, params, status, meta, extra, outputs,
                                 data["provenance"], threads, seconds, checkpoint.record,
                                 update_calls=kernels.calls_since(calls_before))
        _write_test(outputs["test"], chosen, spec, rows, status, extra)
        checkpoint.remove()
    progress.finish(finished_line(info))
    return info


def _write_test(path, chosen, spec, rows, status, extra) -> None:
    """test.json: the one test evaluation, of the best-validation weights (selected on
    validation only), with which weights they are and their validation accuracy."""
    write_json(path, {
        "run_id": chosen["run_id"],
        "params": spec["params"],
        "test_accuracy": extra.get("test_accuracy"),
        "weights": extra.get("weights"),
        "best_epoch": extra.get("best_epoch"),
        "epochs": status["epochs_completed"],
        "val_accuracy": extra.get("best_val_accuracy"),
        "last_epoch_val_accuracy": rows[-1]["val_accuracy"] if rows else None,
        "num_test": extra.get("num_test"),
        "status": status["status"],
    })
