"""The ``network2`` trainer: Nielsen's experiment with :class:`nnflow.nn.network2.Network`."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from nnflow.nn import checks, network2, network2_io
from nnflow.progress import Progress
from nnflow.train.checkpoint import Checkpoint, rng_state, set_rng_state
from nnflow.train.trainers import Trained, take_first

log = logging.getLogger(__name__)
# metrics.csv's columns, in this order
ROW_COLUMNS = ("epoch", "train_cost", "train_accuracy", "test_cost", "test_accuracy")

NETWORK2_INIT = {"default": "default_weight_initializer", "large": "large_weight_initializer"}


def train_network2(spec: dict[str, Any], data: dict[str, Any], checkpoint: Checkpoint,
                   progress: Progress | None = None):
    """Nielsen's experiment: SGD on the training set, monitored on the test set.

    Each epoch is reported to ``progress`` with its test accuracy. Returns a
    :class:`~nnflow.train.trainers.Trained`.
    """
    progress = Progress.silent() if progress is None else progress
    p = spec["params"]
    epochs = checks.count("train_network2", "params['epochs']", p["epochs"], 0)
    X, y = take_first(data["X_train"], data["y_train"], p.get("train_size"))
    X_test, y_test = np.ascontiguousarray(data["X_test"]), np.ascontiguousarray(data["y_test"])
    net = network2.Network(p["sizes"], cost=p["cost"], seed=spec["seed"], dtype=X.dtype)
    init = p.get("weight_init", "default")
    if init not in NETWORK2_INIT:
        raise ValueError(f"weight_init={init!r} unknown for network2 (allowed: {sorted(NETWORK2_INIT)})")
    getattr(net, NETWORK2_INIT[init])()

    rows: list[dict[str, Any]] = []
    epoch_seconds: list[float] = []
    start_epoch = 0
    resumed = checkpoint.load()
    if resumed is not None:
        arrays, meta = resumed
        n_layers = len(p["sizes"]) - 1
        net.weights = [arrays[f"w{i}"] for i in range(n_layers)]
        net.biases = [arrays[f"b{i}"] for i in range(n_layers)]
        set_rng_state(net.rng, meta["rng"])
        # state.json stores its keys sorted: put each row back in the columns' order, so a
        # resumed run writes the same metrics.csv bytes as an uninterrupted one
        rows = [{key: row[key] for key in ROW_COLUMNS} for row in meta["rows"]]
        epoch_seconds, start_epoch = meta["epoch_seconds"], meta["epoch"]

    n_train, n_test = X.shape[0], X_test.shape[0]
    clock = [time.perf_counter()]

    def after_epoch(j: int, network: Any, record: dict[str, Any]) -> None:
        now = time.perf_counter()
        values = (start_epoch + j + 1, record.get("training_cost"),
                  record.get("training_accuracy", 0) / n_train, record.get("evaluation_cost"),
                  record.get("evaluation_accuracy", 0) / n_test)
        rows.append(dict(zip(ROW_COLUMNS, values, strict=True)))
        epoch_seconds.append(now - clock[0])
        log.info("%s", epoch_line(rows[-1], epochs, epoch_seconds[-1]))
        progress.epoch(rows[-1]["epoch"], f"test accuracy {100 * rows[-1]['test_accuracy']:.2f}%")
        if checkpoint.due(last=start_epoch + j + 1 == epochs):
            arrays = {f"w{i}": w for i, w in enumerate(network.weights)}
            arrays.update({f"b{i}": b for i, b in enumerate(network.biases)})
            checkpoint.save(arrays, {"epoch": start_epoch + j + 1, "rows": rows,
                                     "epoch_seconds": epoch_seconds, "rng": rng_state(network.rng)})
        clock[0] = time.perf_counter()

    progress.epochs(epochs, start_epoch)
    mini_batch_size = min(p["mini_batch_size"], max(n_train, 1))  # what SGD uses: never more than the data
    net.SGD(
        (X, y),
        epochs - start_epoch,
        mini_batch_size,
        p["eta"],
        lmbda=p.get("lmbda", 0.0),
        evaluation_data=(X_test, y_test),
        monitor_evaluation_cost=True,
        monitor_evaluation_accuracy=True,
        monitor_training_cost=True,
        monitor_training_accuracy=True,
        callback=after_epoch,
    )
    status = dict(net.status)
    status["epochs_completed"] = start_epoch + status["epochs_completed"]
    if status.get("diverged_epoch") is not None:
        status["diverged_epoch"] = start_epoch + status["diverged_epoch"] + 1
    params = {f"w{i}": w for i, w in enumerate(net.weights)}
    params.update({f"b{i}": b for i, b in enumerate(net.biases)})
    model_meta = network2_io.metadata(net)
    extra: dict[str, Any] = {"epoch_seconds": epoch_seconds}
    if mini_batch_size != p["mini_batch_size"]:
        extra["effective_mini_batch_size"] = mini_batch_size
    return Trained(rows, params, status, model_meta, extra)


def epoch_line(row: dict[str, Any], epochs: int, seconds: float) -> str:
    """One log line per epoch, e.g. "epoch 3/30 (0.52 s): train cost 0.41, accuracy 91.20%; test ..."."""
    return (f"epoch {row['epoch']}/{epochs} ({seconds:.2f} s): train cost {row['train_cost']:.4g}, "
            f"accuracy {100 * row['train_accuracy']:.2f}%; test cost {row['test_cost']:.4g}, "
            f"accuracy {100 * row['test_accuracy']:.2f}%")


train = train_network2
