"""The ``solver`` trainer: a :class:`~nnflow.nn.fc_net.FullyConnectedNet` trained by the Solver."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnflow.nn import checks
from nnflow.nn.fc_net import NORMALIZATIONS as FC_NORMALIZATIONS
from nnflow.nn.fc_net import STATE, FullyConnectedNet
from nnflow.nn.solver import Solver
from nnflow.progress import Progress
from nnflow.train.checkpoint import Checkpoint
from nnflow.train.trainers import Trained, take_first

# weight_init names of a solver run: "scale" (weight_scale * N(0, 1)) or an initialiser
WEIGHT_INITS = ("scale", "he", "xavier", "network2_default", "large")
NORMALIZATIONS = tuple(n or "none" for n in FC_NORMALIZATIONS)
LAYER_NORM_BATCH = 1000


# The value of each solver parameter a run leaves out (the schema states none of them).
DEFAULTS = {
    "weight_init": "scale",
    "normalization": "none",
    "activation": "relu",
    "weight_scale": 1e-2,
    "reg": 0.0,
    "dropout_keep_ratio": 1.0,
    "track_layer_gradients": False,
    "update_rule": "sgd",
    "learning_rate": 1e-2,
    "lr_decay": 1.0,
    "batch_size": 100,
    "sampling": "epoch_shuffle",
    "num_train_samples": 1000,
}


def setting(p: dict[str, Any], key: str) -> Any:
    """The solver parameter ``key`` of the run parameters ``p`` (its default if absent)."""
    return p.get(key, DEFAULTS[key])


def build_model(p: dict[str, Any], input_dim: int, dtype: np.dtype, seed: int, num_classes: int = 10):
    """The FullyConnectedNet a solver run's parameters describe."""
    init = setting(p, "weight_init")
    if init not in WEIGHT_INITS:
        raise ValueError(f"weight_init={init!r} unknown (allowed: {', '.join(WEIGHT_INITS)})")
    normalization = setting(p, "normalization")
    return FullyConnectedNet(
        p["hidden_dims"],
        input_dim=input_dim,
        num_classes=num_classes,
        activation=setting(p, "activation"),
        weight_scale=setting(p, "weight_scale"),
        init=None if init == "scale" else {"network2_default": "network2"}.get(init, init),
        reg=setting(p, "reg"),
        dropout_keep_ratio=setting(p, "dropout_keep_ratio"),
        normalization=None if normalization == "none" else normalization,
        dtype=dtype,
        seed=seed,
    )


def train_solver(spec: dict[str, Any], data: dict[str, Any], checkpoint: Checkpoint,
                 evaluate_test: bool = False, progress: Progress | None = None):
    """A FullyConnectedNet trained by the Solver, one epoch at a time.

    Training goes epoch by epoch so that each epoch can add what the Solver does
    not record itself (the per-layer gradient norms of the unstable-gradient
    study) and end with a checkpoint. At the end the model takes the parameters
    (and batchnorm statistics) of the epoch with the best validation accuracy, as
    CS231n's Solver does: they are the model's arrays in ``model.npz`` (the last
    epoch's under ``last_``), ``best_epoch`` is in run.json and model.json, and
    ``evaluate_test`` measures the test accuracy of these weights. The metrics
    rows are those of every epoch, as trained. Each epoch is reported to ``progress``
    with its validation accuracy. Returns a :class:`~nnflow.train.trainers.Trained`.
    """
    progress = Progress.silent() if progress is None else progress
    p = spec["params"]
    # the Solver is driven one epoch at a time (train(until_epoch=k)) up to this
    num_epochs = checks.count("train_solver", "params['num_epochs']", p["num_epochs"], 0)
    X, y = take_first(data["X_train"], data["y_train"], p.get("train_size"))
    # older provenance files (before datasets were declared) hold no num_classes: 10
    num_classes = int((data.get("provenance") or {}).get("num_classes", 10))
    model = build_model(p, X.shape[1], X.dtype, spec["seed"], num_classes)
    track = bool(setting(p, "track_layer_gradients"))
    if track and (model.use_dropout or model.normalization):
        raise ValueError("track_layer_gradients needs a net without dropout and batchnorm "
                         "(measuring would change their random state and running statistics)")
    solver = Solver(
        model,
        {"X_train": X, "y_train": y,
         "X_val": np.ascontiguousarray(data["X_val"]), "y_val": np.ascontiguousarray(data["y_val"])},
        update_rule=setting(p, "update_rule"),
        optim_config={"learning_rate": setting(p, "learning_rate")},
        lr_decay=setting(p, "lr_decay"),
        batch_size=setting(p, "batch_size"),
        num_epochs=num_epochs,
        sampling=setting(p, "sampling"),
        num_train_samples=setting(p, "num_train_samples"),
        verbose=False,
        seed=spec["seed"],
        restore_best=False,  # the per-epoch measurements below need the epoch's own weights
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

    progress.epochs(num_epochs, solver.epoch)
    for epoch in range(solver.epoch + 1, num_epochs + 1):
        before = _weights(model) if track else None
        solver.train(until_epoch=epoch)
        if solver.status == "diverged":
            break
        progress.epoch(epoch, f"val accuracy {100 * solver.val_acc_history[-1]:.2f}%")
        extras.append({"epoch": epoch, "iteration": solver.iteration,
                       **(_layer_norms(model, *probe) if track else {}),
                       **(_relative_updates(before, _weights(model)) if track else {})})
        stem = checkpoint.path(f"solver-{epoch:06d}")
        if stem is not None and checkpoint.due(last=epoch == num_epochs):
            npz, js = solver.save_checkpoint(stem)
            checkpoint.save({}, {"epoch": epoch, "extras": extras, "solver": stem.name},
                            files=(npz.name, js.name))

    rows = _solver_rows(solver, extras)
    solver.restore_best_params()
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
    if solver.batch_size != setting(p, "batch_size"):  # clamped to the training set
        extra["effective_batch_size"] = solver.batch_size
    if evaluate_test:
        X_test, y_test = np.asarray(data["X_test"]), np.asarray(data["y_test"])
        extra["test_accuracy"] = float(np.mean(model.predict(X_test) == y_test))
        extra["num_test"] = int(X_test.shape[0])
    extra["weights"] = weights_description(solver.best_epoch, solver.epoch)
    meta = {**model.config(), "best_epoch": solver.best_epoch, "weights": extra["weights"]}
    params = model.arrays()
    if solver.last_params is not None:  # None when no epoch was trained (num_epochs=0)
        params.update({f"{LAST}{k}": v for k, v in solver.last_params.items()})
        params.update({f"{LAST}{STATE}{k}": v for k, v in solver.last_state.items()})
    return Trained(rows, params, status, meta, extra)


LAST = "last_"  # prefix of the last epoch's arrays in model.npz (FullyConnectedNet.load(prefix=))


def weights_description(best_epoch: int | None, epochs: int) -> str:
    """Which weights a solver run's model holds, e.g. "best validation accuracy, epoch 9 of 15"."""
    if best_epoch is None:
        return "initial weights (no epoch trained)"
    return f"best validation accuracy, epoch {best_epoch} of {epochs}"


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


train = train_solver
