"""One training run of the workflow, from its spec to its files.

A run spec (see :mod:`nnflow.train.grid`) names a trainer (``network2`` for the
MNIST sheet's Nielsen-style runs, ``solver`` for the CS231n-style modular nets),
a dataset, a seed and the parameters. :func:`train_run` loads the prepared
data, trains, and writes

- ``metrics.csv``: one row per epoch, computed values only (wall-clock times
  go to ``run.json``'s ``epoch_seconds``), so the same spec gives the same bytes,
- ``model.npz`` + ``model.json``: the final parameters and their metadata,
- ``run.json``: the spec, status (``completed`` / ``diverged`` with the epoch),
  timings, dataset provenance and the software environment,
- for solver runs also ``iterations.csv`` (the loss of every mini-batch).

Every epoch ends with a checkpoint outside the declared outputs (parameters,
optimizer state, generator state, history), so a job killed half-way resumes
where it stopped and ends with exactly the metrics and weights of an
uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnflow.files import load_npz, read_json, save_npz, write_csv, write_json
from nnflow.nn.model_io import save_model
from nnflow.runtime import environment

log = logging.getLogger(__name__)

NETWORK2_INIT = {"default": "default_weight_initializer", "large": "large_weight_initializer"}


def load_dataset(data_dir: str | os.PathLike) -> dict[str, Any]:
    """The prepared arrays of a dataset (memory-mapped) and its provenance."""
    from nnflow.data import load_prepared

    return load_prepared(data_dir, mmap=True)


def take_first(X: np.ndarray, y: np.ndarray, n: int | None, key: str = "train_size"):
    """The first ``n`` examples as in-memory contiguous arrays (all if ``n`` is None)."""
    total = X.shape[0]
    if n is not None and n > total:
        raise ValueError(f"{key}={n} is larger than the training set ({total} examples)")
    n = total if n is None else n
    return np.ascontiguousarray(X[:n]), np.ascontiguousarray(y[:n])


def _parse_spec(spec: str | dict[str, Any]) -> dict[str, Any]:
    return json.loads(spec) if isinstance(spec, str) else dict(spec)


# ----------------------------------------------------------------------------- checkpoints


class Checkpoint:
    """Per-epoch state of a run in a directory that Snakemake does not manage.

    Each save writes the epoch's arrays to ``state-<epoch>.npz`` (and the caller
    may have written more files of that epoch, e.g. a Solver checkpoint), then
    ``state.json`` — the commit point, naming those files — and only then
    deletes the previous epoch's files. A kill at any moment therefore leaves a
    ``state.json`` whose files are complete and of one and the same epoch. The
    JSON also holds the spec: a checkpoint of another spec (a changed
    parameter) is never resumed from.
    """

    def __init__(self, directory: str | os.PathLike | None, spec: dict[str, Any]):
        self.directory = Path(directory) if directory else None
        self.spec_json = json.dumps(spec, sort_keys=True)

    def path(self, name: str) -> Path | None:
        """Where a file of this checkpoint goes (None when checkpointing is off)."""
        return self.directory / name if self.directory is not None else None

    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        if self.directory is None or not (self.directory / "state.json").exists():
            return None
        meta = read_json(self.directory / "state.json")
        if meta.get("spec") != self.spec_json:
            log.info("checkpoint in %s belongs to another spec; starting afresh", self.directory)
            return None
        arrays = load_npz(self.directory / meta["arrays"])
        log.info("resuming from checkpoint after epoch %s", meta["epoch"])
        return arrays, meta

    def save(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], files: tuple[str, ...] = ()) -> None:
        """Commit the state after ``meta["epoch"]``; ``files`` (already written) belong to it."""
        if self.directory is None:
            return
        name = f"state-{int(meta['epoch']):06d}.npz"
        save_npz(self.directory / name, **arrays)
        write_json(self.directory / "state.json",
                   {**meta, "arrays": name, "files": list(files), "spec": self.spec_json})
        keep = {"state.json", name, *files}
        for old in self.directory.iterdir():
            if old.name not in keep and not old.name.startswith("."):
                old.unlink(missing_ok=True)

    def remove(self) -> None:
        if self.directory is not None and self.directory.exists():
            shutil.rmtree(self.directory)


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


# ----------------------------------------------------------------------------- network2


def train_network2(spec: dict[str, Any], data: dict[str, Any], checkpoint: Checkpoint):
    """Nielsen's experiment: SGD on the training set, monitored on the test set.

    Returns ``(rows, params, status, model_meta)``.
    """
    from nnflow.nn import network2

    p = spec["params"]
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
        _set_rng_state(net.rng, meta["rng"])
        rows, epoch_seconds, start_epoch = meta["rows"], meta["epoch_seconds"], meta["epoch"]

    n_train, n_test = X.shape[0], X_test.shape[0]
    clock = [time.perf_counter()]

    def after_epoch(j: int, network: Any, record: dict[str, Any]) -> None:
        now = time.perf_counter()
        rows.append({
            "epoch": start_epoch + j + 1,
            "train_cost": record.get("training_cost"),
            "train_accuracy": record.get("training_accuracy", 0) / n_train,
            "test_cost": record.get("evaluation_cost"),
            "test_accuracy": record.get("evaluation_accuracy", 0) / n_test,
        })
        epoch_seconds.append(now - clock[0])
        log.info("epoch %d (%.2f s): %s", start_epoch + j + 1, epoch_seconds[-1], rows[-1])
        arrays = {f"w{i}": w for i, w in enumerate(network.weights)}
        arrays.update({f"b{i}": b for i, b in enumerate(network.biases)})
        checkpoint.save(arrays, {"epoch": start_epoch + j + 1, "rows": rows,
                                 "epoch_seconds": epoch_seconds, "rng": _rng_state(network.rng)})
        clock[0] = time.perf_counter()

    net.SGD(
        (X, y),
        p["epochs"] - start_epoch,
        p["mini_batch_size"],
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
    model_meta = {"kind": "nnflow.network2.Network", "sizes": p["sizes"], "cost": p["cost"]}
    return rows, params, status, model_meta, {"epoch_seconds": epoch_seconds}


# ----------------------------------------------------------------------------- solver

SOLVER_INIT = {"he", "xavier", "network2_default", "large"}
LAYER_NORM_BATCH = 1000


def build_model(p: dict[str, Any], input_dim: int, dtype: np.dtype, seed: int):
    """The FullyConnectedNet a solver run's parameters describe."""
    from nnflow.nn.fc_net import FullyConnectedNet

    init = p.get("weight_init", "scale")
    if init != "scale" and init not in SOLVER_INIT:
        raise ValueError(f"weight_init={init!r} unknown (allowed: scale, {', '.join(sorted(SOLVER_INIT))})")
    normalization = p.get("normalization", "none")
    return FullyConnectedNet(
        p["hidden_dims"],
        input_dim=input_dim,
        num_classes=10,
        activation=p.get("activation", "relu"),
        weight_scale=p.get("weight_scale", 1e-2),
        init=None if init == "scale" else {"network2_default": "network2"}.get(init, init),
        reg=p.get("reg", 0.0),
        dropout_keep_ratio=p.get("dropout_keep_ratio", 1.0),
        normalization=None if normalization == "none" else normalization,
        dtype=dtype,
        seed=seed,
    )


def train_solver(spec: dict[str, Any], data: dict[str, Any], checkpoint: Checkpoint,
                 evaluate_test: bool = False):
    """A FullyConnectedNet trained by the Solver, one epoch at a time.

    Training goes epoch by epoch so that each epoch can add what the Solver does
    not record itself (the per-layer gradient norms of the unstable-gradient
    study) and end with a checkpoint. Returns ``(rows, params, status, meta, extra)``.
    """
    from nnflow.nn.solver import Solver

    p = spec["params"]
    X, y = take_first(data["X_train"], data["y_train"], p.get("train_size"))
    model = build_model(p, X.shape[1], X.dtype, spec["seed"])
    track = bool(p.get("track_layer_gradients", False))
    if track and (model.use_dropout or model.normalization):
        raise ValueError("track_layer_gradients needs a net without dropout and batchnorm "
                         "(measuring would change their random state and running statistics)")
    solver = Solver(
        model,
        {"X_train": X, "y_train": y,
         "X_val": np.ascontiguousarray(data["X_val"]), "y_val": np.ascontiguousarray(data["y_val"])},
        update_rule=p.get("update_rule", "sgd"),
        optim_config={"learning_rate": p.get("learning_rate", 1e-2)},
        lr_decay=p.get("lr_decay", 1.0),
        batch_size=p.get("batch_size", 100),
        num_epochs=0,
        sampling=p.get("sampling", "epoch_shuffle"),
        num_train_samples=p.get("num_train_samples", 1000),
        verbose=False,
        seed=spec["seed"],
    )
    # A fixed batch (the first examples, as in Nielsen's chapter 5) for the gradient norms.
    probe = (X[:LAYER_NORM_BATCH], y[:LAYER_NORM_BATCH])
    extras: list[dict[str, Any]] = []  # per epoch: iteration at its end, gradient norms
    resumed = checkpoint.load()
    if resumed is not None:
        solver.resume(checkpoint.path(resumed[1]["solver"]))
        extras = resumed[1]["extras"]
    if not extras:
        extras = [{"epoch": 0, "iteration": 0,
                   **(_layer_norms(model, *probe) if track else {})}]

    for epoch in range(solver.epoch + 1, p["num_epochs"] + 1):
        before = _weights(model) if track else None
        solver.num_epochs = epoch
        solver.train()
        if solver.status == "diverged":
            break
        extras.append({"epoch": epoch, "iteration": solver.iteration,
                       **(_layer_norms(model, *probe) if track else {}),
                       **(_relative_updates(before, _weights(model)) if track else {})})
        stem = checkpoint.path(f"solver-{epoch:06d}")
        if stem is not None:
            npz, js = solver.save_checkpoint(stem)
            checkpoint.save({}, {"epoch": epoch, "extras": extras, "solver": stem.name},
                            files=(npz.name, js.name))

    rows = _solver_rows(solver, extras)
    status = {
        "status": "diverged" if solver.status == "diverged" else "completed",
        "diverged_epoch": solver.diverged_epoch,
        "epochs_completed": solver.epoch,
    }
    bounds = [e["iteration"] for e in extras]
    iterations = [
        {"iteration": i + 1, "epoch": 1 + sum(i >= b for b in bounds[1:]), "loss": loss}
        for i, loss in enumerate(solver.loss_history)
    ]
    extra = {
        "iterations": iterations,
        "epoch_seconds": solver.epoch_time_history[1:],
        "best_val_accuracy": solver.best_val_acc,
        "best_epoch": solver.best_epoch,
    }
    if evaluate_test:
        X_test, y_test = np.asarray(data["X_test"]), np.asarray(data["y_test"])
        extra["test_accuracy"] = float(np.mean(model.predict(X_test) == y_test))
        extra["num_test"] = int(X_test.shape[0])
    meta = {"kind": "nnflow.fc_net.FullyConnectedNet", "dims": model.dims,
            "activation": model.activation, "normalization": model.normalization}
    params = {k: v for k, v in model.params.items()}
    params.update({f"best_{k}": v for k, v in solver.best_params.items()})
    params.update({f"state_{k}": v for k, v in model.get_state().items()})
    return rows, params, status, meta, extra


def _weights(model: Any) -> list[np.ndarray]:
    return [model.params[f"W{i}"].copy() for i in range(1, model.num_layers + 1)]


def _relative_updates(before: list[np.ndarray], after: list[np.ndarray]) -> dict[str, float]:
    """How far each layer's weights moved in an epoch: ``||W(e) - W(e-1)|| / ||W(e-1)||``.

    The gradient norm says how strongly a layer is pushed; this says how much it
    actually learned, which is what an adaptive rule such as Adam equalises.
    """
    return {
        f"update_norm_layer{i}": float(np.linalg.norm(a - b) / np.linalg.norm(b))
        for i, (b, a) in enumerate(zip(before, after, strict=True), start=1)
    }


def _layer_norms(model: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    norms = model.layer_gradient_norms(X, y)
    return {f"grad_norm_layer{i}": float(v) for i, v in enumerate(norms, start=1)}


def _solver_rows(solver: Any, extras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for e in extras:
        k = e["epoch"]
        if k >= len(solver.train_acc_history):
            break
        start = extras[k - 1]["iteration"] if k > 0 else 0
        losses = solver.loss_history[start:e["iteration"]]
        row = {
            "epoch": k,
            "learning_rate": solver.lr_history[k],
            "train_loss": float(np.mean(losses)) if losses else None,
            "train_accuracy": solver.train_acc_history[k],
            "val_accuracy": solver.val_acc_history[k],
            "train_cost": solver.train_cost_history[k] if solver.train_cost_history else None,
            "val_cost": solver.val_cost_history[k] if solver.val_cost_history else None,
        }
        row.update({key: v for key, v in e.items() if key.startswith(("grad_norm", "update_norm"))})
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- dispatch

TRAINERS = {"network2": train_network2, "solver": train_solver}


def train_run(
    spec: str | dict[str, Any],
    data_dir: str | os.PathLike,
    outputs: dict[str, str],
    checkpoint_dir: str | os.PathLike | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Train one run and write its outputs (see the module docstring); return run.json's content."""
    spec = _parse_spec(spec)
    trainer = spec["trainer"]
    if trainer not in TRAINERS:
        raise ValueError(f"unknown trainer {trainer!r} (allowed: {sorted(TRAINERS)})")
    data = load_dataset(data_dir)
    checkpoint = Checkpoint(checkpoint_dir, spec)
    started = time.perf_counter()
    rows, params, status, model_meta, extra = TRAINERS[trainer](spec, data, checkpoint)
    seconds = time.perf_counter() - started
    info = write_run_outputs(spec, rows, params, status, model_meta, extra, outputs,
                             data["provenance"], threads, seconds)
    checkpoint.remove()
    return info


def write_run_outputs(spec, rows, params, status, model_meta, extra, outputs, provenance,
                      threads, seconds) -> dict[str, Any]:
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
        "environment": environment(),
        **{k: v for k, v in extra.items() if k != "iterations"},
    }
    write_json(outputs["run_info"], info)
    return info


# ----------------------------------------------------------------------------- random search


def select_candidate(run_infos: list[str], out_path: str | os.PathLike) -> dict[str, Any]:
    """Choose the random-search candidate with the best validation accuracy.

    Only validation accuracy decides (never the test set); ties go to the
    candidate listed first. Diverged candidates are never chosen.
    """
    candidates = []
    for path in run_infos:
        info = read_json(path)
        candidates.append({
            "run_id": info["spec"]["run_id"],
            "status": info["status"],
            "val_accuracy": info.get("best_val_accuracy"),
            "params": info["spec"]["params"],
            "spec": info["spec"],
        })
    usable = [c for c in candidates if c["status"] == "completed" and c["val_accuracy"] is not None]
    if not usable:
        raise ValueError(f"no completed candidate among {len(candidates)} runs: {run_infos}")
    best = max(usable, key=lambda c: c["val_accuracy"])  # max keeps the first of equals
    chosen = {
        "run_id": best["run_id"],
        "params": best["params"],
        "spec": best["spec"],
        "val_accuracy": best["val_accuracy"],
        "candidates": [{k: c[k] for k in ("run_id", "status", "val_accuracy", "params")}
                       for c in candidates],
    }
    write_json(out_path, chosen)
    return chosen


def train_final(chosen_path: str | os.PathLike, final: str | dict[str, Any], data_dir: str | os.PathLike,
                outputs: dict[str, str], checkpoint_dir: str | os.PathLike | None = None,
                threads: int = 1) -> dict[str, Any]:
    """Retrain the chosen candidate with the final budget and evaluate it once on the test set."""
    chosen = read_json(chosen_path)
    final = _parse_spec(final)
    spec = dict(chosen["spec"])
    spec["params"] = {**chosen["params"], **final}
    spec["run_id"] = f"{spec['experiment']}/final"
    spec["chosen_candidate"] = chosen["run_id"]
    data = load_dataset(data_dir)
    checkpoint = Checkpoint(checkpoint_dir, spec)
    started = time.perf_counter()
    rows, params, status, meta, extra = train_solver(spec, data, checkpoint, evaluate_test=True)
    seconds = time.perf_counter() - started
    info = write_run_outputs(spec, rows, params, status, meta, extra, outputs,
                             data["provenance"], threads, seconds)
    write_json(outputs["test"], {
        "run_id": chosen["run_id"],
        "params": spec["params"],
        "test_accuracy": extra.get("test_accuracy"),
        "val_accuracy": rows[-1]["val_accuracy"] if rows else None,
        "num_test": extra.get("num_test"),
        "status": status["status"],
    })
    checkpoint.remove()
    return info
