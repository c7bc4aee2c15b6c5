"""The trainers: the one registry of how a run of each kind is trained.

A trainer is a function ``train(spec, data, checkpoint, progress=None) -> Trained``
in its own module (``progress``: a :class:`nnflow.progress.Progress` told of each
epoch), registered here by *module path*: :func:`nnflow.train.run.train_run`
imports only the trainer a run names, so a run's source hash (see
:mod:`nnflow.workflow.sourcehash`) covers its own trainer's code and not the
others'. Add a trainer by writing its module and one entry in :data:`TRAINERS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

TRAINERS = {
    "network2": "nnflow.train.trainers.network2",  # Nielsen's network2 SGD (MNIST sheet)
    "solver": "nnflow.train.trainers.solver",  # CS231n FullyConnectedNet + Solver
}


class Trained(NamedTuple):
    """What a trainer returns; :func:`nnflow.train.run.write_run_outputs` writes it."""

    rows: list[dict[str, Any]]  # one metrics row per epoch
    params: dict[str, np.ndarray]  # the model's arrays (model.npz)
    status: dict[str, Any]  # status, diverged_epoch, epochs_completed
    model_meta: dict[str, Any]  # model.json's description of the model
    extra: dict[str, Any]  # run.json extras (timings, best epoch, iterations, ...)


def trainer_module(name: str) -> str:
    """The module path of the trainer ``name``."""
    try:
        return TRAINERS[name]
    except KeyError:
        raise ValueError(f"unknown trainer {name!r} (allowed: {', '.join(sorted(TRAINERS))})") from None


def get_trainer(name: str) -> Callable[..., Trained]:
    """The training function of the trainer ``name`` (its module's ``train``)."""
    return importlib.import_module(trainer_module(name)).train


def take_first(X: np.ndarray, y: np.ndarray, n: int | None, key: str = "train_size"):
    """The first ``n`` examples as in-memory contiguous arrays (all if ``n`` is None)."""
    total = X.shape[0]
    if n is not None and n > total:
        raise ValueError(f"{key}={n} is larger than the training set ({total} examples)")
    n = total if n is None else n
    return np.ascontiguousarray(X[:n]), np.ascontiguousarray(y[:n])
