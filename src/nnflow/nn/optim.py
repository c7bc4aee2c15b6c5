"""First-order update rules with CS231n's interface.

Every rule is ``rule(w, dw, config=None) -> (next_w, config)``:

- ``w``: parameter array; ``dw``: gradient of the loss w.r.t. ``w`` (same shape);
- ``config``: dict of hyperparameters and optimiser state; missing entries
  get the defaults listed in each docstring (``config.setdefault``), state
  arrays (velocity, cache, m, v) are created as zeros of w's dtype.

Performance: the step is done IN PLACE with ufunc ``out=`` arguments:
``next_w`` IS ``w`` (when ``w`` is a writable floating-point ndarray; a
floating copy is made otherwise) and the state arrays in ``config`` are
updated in place too. A scratch buffer is kept in ``config["_scratch"]``
so no temporary array is allocated per step. Keys starting with ``_`` are
private scratch space, not optimiser state (checkpoints skip them).

Fused kernels: when numba is installed (and ``NNFLOW_KERNELS`` is not ``numpy``), each
rule runs in one compiled pass over its arrays (:mod:`nnflow.nn.kernels`) instead of the
ufunc sequence below, with bit-identical results; the ufunc code is the fallback for
everything the kernels do not take (see there) and the reference they are tested against.

Checks: the hyperparameters in a config (:data:`CONFIG_RANGES`) are checked once,
on its first step, which marks it ``config["_checked"]``, not on every step;
:func:`check_config` does the same check up front (the Solver calls it at
construction). A bad value raises TypeError/ValueError naming the rule and key.
A new rule gets both by starting, like the rules here, with ``_prepare``.
"""

from __future__ import annotations

import numpy as np

from nnflow.nn import checks, kernels

__all__ = ["sgd", "sgd_momentum", "rmsprop", "adam", "UPDATE_RULES", "get_update_rule",
           "CONFIG_RANGES", "check_config"]

# The hyperparameters a config may hold and their check: a step size must be > 0,
# averaging weights (momentum, decay_rate, beta1, beta2) in [0, 1), where 1 would never
# forget (and Adam's bias correction 1 - beta^t would divide by zero).
CONFIG_RANGES = {
    "learning_rate": checks.positive,
    "momentum": checks.unit_interval,
    "decay_rate": checks.unit_interval,
    "beta1": checks.unit_interval,
    "beta2": checks.unit_interval,
    "epsilon": checks.positive,
}


def check_config(config, where, name="config"):
    """Check the hyperparameters of ``config`` against :data:`CONFIG_RANGES`; return it.

    Keys not listed there (state arrays, ``t``, a custom rule's own settings) pass.
    """
    if not isinstance(config, dict):
        raise TypeError(f"{where}: {name} must be a dict, got {type(config).__name__}")
    for key, check in CONFIG_RANGES.items():
        if key in config:
            check(where, f"{name}[{key!r}]", config[key])
    return config


def _prepare(w, dw, config, rule="update rule"):
    if config is None:
        config = {}
    elif "_checked" not in config:  # the config's first step: check it, once
        check_config(config, rule)
        config["_checked"] = True
    if not (isinstance(w, np.ndarray) and np.issubdtype(w.dtype, np.floating)
            and w.flags.writeable):
        arr = np.asarray(w)
        w = np.array(arr, dtype=arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64)
    dw = np.asarray(dw)
    if dw.shape != w.shape:
        raise ValueError(f"dw must have the shape of w {w.shape}, got {dw.shape}")
    return w, dw, config


def _state(config, key, w):
    """State array ``config[key]``, created as zeros like ``w`` when missing."""
    arr = config.get(key)
    if arr is None:
        arr = np.zeros_like(w)
        config[key] = arr
    elif not isinstance(arr, np.ndarray) or arr.shape != w.shape or not arr.flags.writeable:
        arr = np.array(arr, dtype=w.dtype)
        if arr.shape != w.shape:
            raise ValueError(f"config[{key!r}] must have shape {w.shape}, got {arr.shape}")
        config[key] = arr
    return arr


def _scratch(config, w):
    buf = config.get("_scratch")
    if buf is None or buf.shape != w.shape or buf.dtype != w.dtype:
        buf = np.empty_like(w)
        config["_scratch"] = buf
    return buf


def sgd(w, dw, config=None):
    """Vanilla SGD: ``w <- w - learning_rate * dw``.

    config: ``learning_rate`` (1e-2).
    """
    w, dw, config = _prepare(w, dw, config, "sgd")
    lr = config.setdefault("learning_rate", 1e-2)
    if kernels.fused_sgd(w, dw, lr):
        return w, config
    s = _scratch(config, w)
    np.multiply(dw, lr, out=s)
    w -= s
    return w, config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum (CS231n convention).

    ``v <- momentum * v - learning_rate * dw``; ``w <- w + v``.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity``
    (zeros like w). PyTorch's ``SGD(momentum=mu)`` keeps ``b = mu b + g`` and
    steps ``w -= lr b``; for a constant learning rate ``v = -lr * b``.
    """
    w, dw, config = _prepare(w, dw, config, "sgd_momentum")
    lr = config.setdefault("learning_rate", 1e-2)
    mu = config.setdefault("momentum", 0.9)
    v = _state(config, "velocity", w)
    if kernels.fused_sgd_momentum(w, dw, v, mu, lr):
        return w, config
    s = _scratch(config, w)
    v *= mu
    np.multiply(dw, lr, out=s)
    v -= s
    w += v
    return w, config


def rmsprop(w, dw, config=None):
    """RMSProp.

    ``cache <- decay_rate * cache + (1 - decay_rate) * dw^2``;
    ``w <- w - learning_rate * dw / (sqrt(cache) + epsilon)``.

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon``
    (1e-8), ``cache`` (zeros like w). Same as ``torch.optim.RMSprop`` with
    ``alpha = decay_rate``, ``eps = epsilon``.
    """
    w, dw, config = _prepare(w, dw, config, "rmsprop")
    lr = config.setdefault("learning_rate", 1e-2)
    dr = config.setdefault("decay_rate", 0.99)
    eps = config.setdefault("epsilon", 1e-8)
    cache = _state(config, "cache", w)
    if kernels.fused_rmsprop(w, dw, cache, dr, eps, lr):
        return w, config
    s = _scratch(config, w)
    np.multiply(dw, dw, out=s)
    s *= 1 - dr
    cache *= dr
    cache += s
    np.sqrt(cache, out=s)
    s += eps
    np.divide(dw, s, out=s)
    s *= lr
    w -= s
    return w, config


def adam(w, dw, config=None):
    """Adam (Kingma & Ba 2015) with bias correction.

    ``t <- t + 1`` (incremented BEFORE use), ``m <- beta1 m + (1 - beta1) dw``,
    ``v <- beta2 v + (1 - beta2) dw^2``, ``mhat = m / (1 - beta1^t)``,
    ``vhat = v / (1 - beta2^t)``, ``w <- w - learning_rate mhat / (sqrt(vhat) + epsilon)``.

    Evaluated as ``w -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``
    (the same algebra as ``torch.optim.Adam``), in place.

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999),
    ``epsilon`` (1e-8), ``m``, ``v`` (zeros like w), ``t`` (0).
    """
    w, dw, config = _prepare(w, dw, config, "adam")
    lr = config.setdefault("learning_rate", 1e-3)
    b1 = config.setdefault("beta1", 0.9)
    b2 = config.setdefault("beta2", 0.999)
    eps = config.setdefault("epsilon", 1e-8)
    m = _state(config, "m", w)
    v = _state(config, "v", w)
    t = config.setdefault("t", 0) + 1
    config["t"] = t
    step = lr / (1 - b1**t)
    # w -= m / ((sqrt(v)/sqrt(1 - b2^t) + eps) / step): the step size folded into the
    # denominator's two scalars saves a pass over the array.
    c1 = 1.0 / (np.sqrt(1 - b2**t) * step) if step != 0 else None
    c2 = eps / step if step != 0 else None
    if c1 is not None and kernels.fused_adam(w, dw, m, v, b1, b2, c1, c2):
        return w, config
    _adam_pass(w, dw, m, v, _scratch(config, w), b1, b2, c1, c2)
    return w, config


def _adam_pass(w, dw, m, v, s, b1, b2, c1, c2):
    """The Adam update of (a block of) one parameter; every array has the same shape."""
    # m += (1 - b1) (dw - m) is m <- b1 m + (1 - b1) dw in two passes less.
    np.subtract(dw, m, out=s)
    s *= 1 - b1
    m += s
    np.multiply(dw, dw, out=s)
    s -= v
    s *= 1 - b2
    v += s
    if c1 is None:  # zero step size: only the moments move
        return
    np.sqrt(v, out=s)
    s *= c1
    s += c2
    np.divide(m, s, out=s)
    w -= s


UPDATE_RULES = {"sgd": sgd, "sgd_momentum": sgd_momentum, "rmsprop": rmsprop, "adam": adam}


def get_update_rule(name):
    """Update rule by name (``sgd``, ``sgd_momentum``, ``rmsprop``, ``adam``); callables pass."""
    if callable(name):
        return name
    if isinstance(name, str) and name in UPDATE_RULES:
        return UPDATE_RULES[name]
    raise ValueError(f"unknown update_rule {name!r}; allowed values: {sorted(UPDATE_RULES)}")
