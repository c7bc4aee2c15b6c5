"""Costs of Nielsen's network2 (on sigmoid outputs) and L2 regularisation.

network2 evaluates a cost one example at a time on column vectors; here
``a`` (outputs) and ``y`` (one-hot targets) have shape ``(N, K)``:

- ``fn(a, y)`` is the SUM of network2's per-example costs over the rows
  (for one example it is exactly network2's ``fn``);
- ``mean(a, y) = fn(a, y) / N`` is the average over the data, as
  network2's ``total_cost`` reports it;
- ``delta(z, a, y)`` is the output error ``dC/dz`` of each example.

L2 regularisation has two conventions in this project:

- network2: cost term ``0.5 * (lmbda / n) * sum_l ||W_l||^2`` with ``n`` the
  training-set size, update ``w <- (1 - eta*lmbda/n) w - (eta/m) sum_batch grad``
  (:func:`l2_cost`, :func:`weight_decay_factor`);
- CS231n: ``loss += 0.5 * reg * sum_l ||W_l||^2`` and ``dW += reg * W``
  (:func:`l2_reg_loss`).
"""

from __future__ import annotations

import numpy as np

from nnflow.nn.layers import sigmoid

__all__ = [
    "QuadraticCost",
    "CrossEntropyCost",
    "COSTS",
    "get_cost",
    "cost_name",
    "l2_cost",
    "weight_decay_factor",
    "l2_reg_loss",
]


def _rows(a) -> int:
    a = np.asarray(a)
    return a.shape[0] if a.ndim == 2 else 1


class QuadraticCost:
    """``C = 0.5 ||a - y||^2`` per example; ``delta = (a - y) sigma'(z)``."""

    name = "quadratic"

    @staticmethod
    def fn(a, y):
        """Summed quadratic cost ``0.5 * sum (a - y)^2`` over all entries."""
        d = np.asarray(a) - np.asarray(y)
        return 0.5 * np.sum(d * d)

    @staticmethod
    def mean(a, y):
        """``fn(a, y) / N`` for ``a`` of shape (N, K)."""
        return QuadraticCost.fn(a, y) / _rows(a)

    @staticmethod
    def delta(z, a, y):
        """Output error ``(a - y) * sigma'(z)``, elementwise, any shape."""
        s = sigmoid(z)
        return (np.asarray(a) - y) * (s * (1.0 - s))


class CrossEntropyCost:
    """``C = -sum_k [y_k ln a_k + (1 - y_k) ln(1 - a_k)]``; ``delta = a - y``.

    As in network2 the elementwise terms pass through ``np.nan_to_num``:
    ``0 * ln 0`` (nan) counts 0, and ``ln 0`` where the target disagrees
    (-inf) becomes the largest finite float; a sum that overflows is clamped
    to the largest float as well (network2 would return inf). No warning is
    emitted.
    """

    name = "cross_entropy"

    @staticmethod
    def fn(a, y):
        """Summed cross-entropy over all entries (network2's fn for one example)."""
        a = np.asarray(a)
        y = np.asarray(y)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            terms = -y * np.log(a) - (1 - y) * np.log(1 - a)
            total = np.sum(np.nan_to_num(terms))
        # Two saturated wrong outputs add up two max floats: clamp the overflow too.
        return np.nan_to_num(total)

    @staticmethod
    def mean(a, y):
        """``fn(a, y) / N`` for ``a`` of shape (N, K)."""
        return CrossEntropyCost.fn(a, y) / _rows(a)

    @staticmethod
    def delta(z, a, y):
        """Output error ``a - y`` (the sigma'(z) factor cancels)."""
        return np.asarray(a) - y


COSTS = {"quadratic": QuadraticCost, "cross_entropy": CrossEntropyCost}


def get_cost(name):
    """Cost class by name: ``"quadratic"`` or ``"cross_entropy"``.

    A cost class itself (``QuadraticCost``/``CrossEntropyCost`` or any class
    with ``fn`` and ``delta``) is returned unchanged.
    """
    if isinstance(name, str):
        key = name.strip().lower().replace("-", "_")
        if key in COSTS:
            return COSTS[key]
        raise ValueError(f"unknown cost {name!r}; allowed values: {sorted(COSTS)}")
    if hasattr(name, "fn") and hasattr(name, "delta"):
        return name
    raise ValueError(
        f"cost must be a name in {sorted(COSTS)} or a class with fn/delta, got {name!r}"
    )


def cost_name(cost) -> str:
    """Registry name of a cost class (for saving models)."""
    for key, cls in COSTS.items():
        if cost is cls or getattr(cost, "name", None) == key:
            return key
    raise ValueError(f"cost {cost!r} is not a registered cost; allowed: {sorted(COSTS)}")


def l2_cost(weights, lmbda, n):
    """network2's regularisation term ``0.5 * (lmbda / n) * sum_l ||W_l||^2``."""
    if n <= 0:
        raise ValueError(f"n (training-set size) must be positive, got {n}")
    return 0.5 * (lmbda / n) * sum(float(np.sum(np.square(w))) for w in weights)


def weight_decay_factor(eta, lmbda, n):
    """network2's multiplicative weight decay ``1 - eta * lmbda / n``."""
    if n <= 0:
        raise ValueError(f"n (training-set size) must be positive, got {n}")
    return 1 - eta * (lmbda / n)


def l2_reg_loss(weights, reg):
    """CS231n regulariser ``0.5 * reg * sum_l ||W_l||^2`` (its gradient is ``reg * W``)."""
    return 0.5 * reg * sum(float(np.sum(np.square(w))) for w in weights)
