"""Checks of the arguments of the library's public functions (NumPy only).

Every check raises with one message form, ``"<where>: <name> must be <expected>, got
<given>"``, where ``where`` is the public function (``"Network.SGD"``, ``"Solver"``,
``"adam"``) and ``name`` the argument as the caller wrote it (``"eta"``,
``"data['X_train']"``, ``"config['beta1']"``). A value of the wrong type (a string, a
bool, None where a number is expected) raises TypeError; a number or array of the right
type but outside what is allowed raises ValueError.

The checks run once at a function's boundary, not per step: the array checks read each
array once and allocate nothing the size of the array.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["number", "positive", "non_negative", "unit_interval", "count", "finite",
           "examples", "labels", "stack_pairs"]


def _is_real(value) -> bool:
    # bool is an Integral for Python, but True as a learning rate is a mistake, not 1.0
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _interval(low, high, low_closed, high_closed) -> str:
    if high is None:
        return f"{'>=' if low_closed else '>'} {low:g}"
    return f"in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"


def number(where: str, name: str, value, low: float, high: float | None = None, *,
           low_closed: bool = True, high_closed: bool = False):
    """``value`` if it is a finite real number in the interval, else TypeError/ValueError.

    The interval is ``[low, high)`` by default (``low_closed``/``high_closed`` choose the
    brackets; ``high=None`` means no upper bound). The value is returned unchanged (a
    ``np.float32`` stays one, so the caller's arithmetic is what it was without the check).
    """
    expected = f"a finite number {_interval(low, high, low_closed, high_closed)}"
    if not _is_real(value):
        raise TypeError(f"{where}: {name} must be {expected}, got {value!r} "
                        f"({type(value).__name__})")
    inside = math.isfinite(value) and (value >= low if low_closed else value > low) and (
        high is None or (value <= high if high_closed else value < high))
    if not inside:
        raise ValueError(f"{where}: {name} must be {expected}, got {value!r}")
    return value


def positive(where: str, name: str, value):
    """``value`` if it is a finite number > 0 (a learning rate, an epsilon)."""
    return number(where, name, value, 0, low_closed=False)


def non_negative(where: str, name: str, value):
    """``value`` if it is a finite number >= 0 (a regularisation strength)."""
    return number(where, name, value, 0)


def unit_interval(where: str, name: str, value):
    """``value`` if it is a finite number in [0, 1) (a momentum, a decay rate, a beta)."""
    return number(where, name, value, 0, 1)


def count(where: str, name: str, value, minimum: int) -> int:
    """``int(value)`` if ``value`` is a whole number >= ``minimum`` (``3.0`` counts as 3)."""
    expected = f"an integer >= {minimum}"
    if not _is_real(value):
        raise TypeError(f"{where}: {name} must be {expected}, got {value!r} "
                        f"({type(value).__name__})")
    if not (math.isfinite(value) and value == int(value) and value >= minimum):
        raise ValueError(f"{where}: {name} must be {expected}, got {value!r}")
    return int(value)


def finite(where: str, name: str, array: np.ndarray) -> np.ndarray:
    """``array`` if it holds no NaN or infinity, else a ValueError that counts them.

    NaN propagates through ``min`` and an infinity is the minimum or the maximum, so two
    reductions decide without a temporary array the size of the input; the count is
    made only to write the error message.
    """
    if array.size == 0 or not np.issubdtype(array.dtype, np.inexact):
        return array
    if np.isfinite(array.min()) and np.isfinite(array.max()):
        return array
    nan = int(np.count_nonzero(np.isnan(array)))
    inf = int(np.count_nonzero(np.isinf(array)))
    raise ValueError(f"{where}: {name} must hold finite values only, got {nan} NaN and {inf} "
                     f"infinite of {array.size} values (non-finite input is an error, "
                     "not a diverged run)")


def examples(where: str, name: str, array: np.ndarray, num_inputs: int | None = None, *,
             flat: bool = False) -> np.ndarray:
    """``array`` if it holds at least one example (row) with ``num_inputs`` values each.

    The rows may have any shape, ``(N, D)`` or ``(N, d1, ..., dk)``, unless ``flat``
    asks for ``(N, D)``; ``num_inputs=None`` checks only that there is a first row.
    """
    if array.ndim < 1 or array.shape[0] == 0:
        raise ValueError(f"{where}: {name} must hold at least one example, got shape {array.shape}")
    if num_inputs is not None and (array.ndim < 2 or math.prod(array.shape[1:]) != num_inputs
                                   or (flat and array.ndim != 2)):
        raise ValueError(f"{where}: {name} must have shape (N, {num_inputs}) ({num_inputs} "
                         f"values per example), got {array.shape}")
    return array


def labels(where: str, name: str, y: np.ndarray, n: int, num_classes: int | None = None) -> np.ndarray:
    """``y`` if it is ``n`` integer class labels in ``[0, num_classes)`` (``>= 0`` if None)."""
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{where}: {name} must have shape ({n},) (one label per example), "
                         f"got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: {name} must hold integer class labels, got dtype {y.dtype}")
    if n and (y.min() < 0 or (num_classes is not None and y.max() >= num_classes)):
        allowed = f"in [0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(f"{where}: {name} must lie {allowed}, got values in "
                         f"[{y.min()}, {y.max()}]")
    return y


def stack_pairs(where: str, name: str, pairs, num_inputs: int, num_classes: int):
    """network2's list of ``(x, y)`` pairs as arrays ``(X (N, D), y)``, checked pair by pair.

    Every ``x`` must hold ``num_inputs`` values (a ``(D, 1)`` column in network2). The
    first pair decides the label format: a scalar ``y`` means integer labels (``y`` of
    shape (N,)), a vector means ``(K, 1)`` one-hot targets (``y`` of shape (N, K)); every
    other pair must follow it. The first pair that does not is named in the error.
    """
    pairs = pairs if isinstance(pairs, list | tuple) else list(pairs)
    if len(pairs) == 0:
        raise ValueError(f"{where}: {name} must hold at least one example, got an empty "
                         f"{type(pairs).__name__}")
    xs, ys = [], []
    scalar_labels = None
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise TypeError(f"{where}: {name}[{i}] must be an (x, y) pair, got "
                            f"{type(pair).__name__}")
        x, t = np.ravel(pair[0]), np.asarray(pair[1])
        if x.size != num_inputs:
            raise ValueError(f"{where}: {name}[{i}] x must have {num_inputs} values (a "
                             f"({num_inputs}, 1) column), got shape {np.shape(pair[0])}")
        if scalar_labels is None:
            scalar_labels = t.ndim == 0
        if scalar_labels and t.ndim != 0:
            raise ValueError(f"{where}: {name}[{i}] y must be a scalar label like {name}[0]'s, "
                             f"got shape {t.shape}")
        if not scalar_labels and t.size != num_classes:
            raise ValueError(f"{where}: {name}[{i}] y must be a ({num_classes}, 1) one-hot "
                             f"target vector, got shape {t.shape}")
        xs.append(x)
        ys.append(t if scalar_labels else t.ravel())
    return np.stack(xs), (np.array(ys) if scalar_labels else np.stack(ys))
