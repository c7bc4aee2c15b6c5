"""Modular layers in the shape of CS231n assignment 2 (``layers.py``).

Every layer is a pair ``*_forward(...) -> (out, cache)`` and
``*_backward(dout, cache) -> gradients``. Arrays are mini-batch first:
``x`` has shape ``(N, D)`` (affine layers also accept ``(N, d1, ..., dk)``,
flattened to ``(N, D)`` with ``D = d1 * ... * dk``), labels ``y`` have shape
``(N,)`` with integer class indices. An activation is a layer of its own.

Everything is written for both float32 and float64 inputs; no function
upcasts a float32 array.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "affine_forward",
    "affine_backward",
    "sigmoid",
    "sigmoid_forward",
    "sigmoid_backward",
    "relu_forward",
    "relu_backward",
    "tanh_forward",
    "tanh_backward",
    "softmax",
    "softmax_loss",
    "dropout_forward",
    "dropout_backward",
    "batchnorm_forward",
    "batchnorm_backward",
]


def _as_float_array(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _check_labels(y, n: int, num_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) (one integer label per row), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"y must hold labels in [0, {num_classes}), got values in [{y.min()}, {y.max()}]"
        )
    return y


# --------------------------------------------------------------------------- affine


def affine_forward(x, w, b):
    """Affine (fully-connected) layer: ``out = x @ w + b``.

    Parameters
    ----------
    x : (N, D) or (N, d1, ..., dk) array; rows are flattened to length D.
    w : (D, M) weights.
    b : (M,) biases.

    Returns
    -------
    out : (N, M)
    cache : (x, w, b) for :func:`affine_backward`.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    b = np.asarray(b)
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, D) or (N, d1, ..., dk), got {x.shape}")
    if w.ndim != 2:
        raise ValueError(f"w must have shape (D, M), got {w.shape}")
    x2 = x.reshape(x.shape[0], -1)
    if x2.shape[1] != w.shape[0]:
        raise ValueError(
            f"x has {x2.shape[1]} features per example (shape {x.shape}) but w has shape "
            f"{w.shape}; expected w of shape ({x2.shape[1]}, M)"
        )
    if b.shape != (w.shape[1],):
        raise ValueError(f"b must have shape ({w.shape[1]},) to match w {w.shape}, got {b.shape}")
    out = x2 @ w
    out += b
    return out, (x, w, b)


def affine_backward(dout, cache, *, compute_dx=True):
    """Backward pass of :func:`affine_forward`.

    With ``out = x w + b``: ``dx = dout w^T`` (reshaped like x),
    ``dw = x^T dout``, ``db = sum_n dout[n]``.

    Returns ``(dx, dw, db)`` with the shapes of ``x``, ``w`` and ``b``. With
    ``compute_dx=False`` (the first layer of a network, whose input needs no
    gradient) ``dx`` is None and its matrix product is skipped.
    """
    x, w, b = cache
    dout = np.asarray(dout)
    if dout.shape != (x.shape[0], w.shape[1]):
        raise ValueError(f"dout must have shape {(x.shape[0], w.shape[1])}, got {dout.shape}")
    x2 = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape) if compute_dx else None
    dw = x2.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


# --------------------------------------------------------------------------- sigmoid


def sigmoid(x, out=None):
    """Numerically stable logistic function ``1 / (1 + exp(-x))``.

    Uses ``e = exp(-|x|)``, ``sigma = 1/(1+e)`` for ``x >= 0`` and ``e/(1+e)``
    for ``x < 0``: ``exp`` never overflows and small outputs keep full
    relative precision. ``out`` (same shape and dtype as x, may be x itself)
    receives the result.
    """
    x = _as_float_array(x, "x")
    if out is None:
        out = np.empty_like(x)
    neg = x < 0  # before writing: out may be x itself
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.add(e, 1.0, out=out)
    np.divide(1.0, out, out=out)  # out = 1/(1+e) = sigma(|x|)
    # sigma(-|x|) = e * sigma(|x|) exactly (e/(1+e)), evaluated only where x < 0.
    np.multiply(e, out, out=out, where=neg)
    return out


def sigmoid_prime(z):
    """Derivative ``sigma'(z) = sigma(z) (1 - sigma(z))`` (network2's name)."""
    s = sigmoid(z)
    return s * (1.0 - s)


def sigmoid_forward(x):
    """Sigmoid layer. Returns ``(out, cache)`` with ``out = sigma(x)``, cache = out."""
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout, cache):
    """``dx = dout * sigma(x) * (1 - sigma(x))`` using the cached output."""
    out = cache
    return dout * out * (1.0 - out)


# --------------------------------------------------------------------------- relu, tanh


def relu_forward(x):
    """ReLU layer ``max(0, x)``. Returns ``(out, cache)`` with cache = x."""
    x = _as_float_array(x, "x")
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """``dx = dout * [x > 0]`` (the subgradient 0 is used at x = 0)."""
    x = cache
    return dout * (x > 0)


def tanh_forward(x):
    """tanh layer. Returns ``(out, cache)`` with cache = out."""
    out = np.tanh(_as_float_array(x, "x"))
    return out, out


def tanh_backward(dout, cache):
    """``dx = dout * (1 - tanh(x)^2)`` using the cached output."""
    out = cache
    return dout * (1.0 - out * out)


# --------------------------------------------------------------------------- softmax


def softmax(x):
    """Row-wise softmax of ``x`` (N, C), stable: ``exp(x - max)`` never overflows."""
    x = _as_float_array(x, "x")
    shifted = x - x.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def softmax_loss(x, y):
    """Softmax cross-entropy averaged over the mini-batch.

    ``L = -(1/N) sum_n log p[n, y_n]`` with ``p = softmax(x)``;
    ``dL/dx = (p - onehot(y)) / N``.

    Parameters
    ----------
    x : (N, C) class scores.
    y : (N,) integer labels in ``[0, C)``.

    Returns ``(loss, dx)``; loss is a scalar of x's dtype.
    """
    x = _as_float_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, C), got {x.shape}")
    n = x.shape[0]
    y = _check_labels(y, n, x.shape[1])
    if n == 0:
        raise ValueError("x must contain at least one example (N >= 1)")
    shifted = x - x.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    # log p[n, y_n] = shifted[n, y_n] - log sum_c exp(shifted[n, c]); sums >= 1, no log(0).
    log_p = shifted[rows, y] - np.log(sums[:, 0])
    loss = -log_p.sum() / n
    dx = exp
    dx /= sums
    dx[rows, y] -= 1
    dx /= n
    return x.dtype.type(loss), dx


# --------------------------------------------------------------------------- dropout


def dropout_forward(x, dropout_param, rng=None):
    """Inverted dropout.

    ``dropout_param`` (CS231n semantics):

    - ``p``: probability of KEEPING a unit (0 < p <= 1).
    - ``mode``: ``"train"`` or ``"test"``.
    - ``mask`` (optional): a fixed mask of 0/1 values of x's shape, used
      instead of drawing one (e.g. for gradient checks).

    In train mode ``out = x * m / p`` with ``m ~ Bernoulli(p)`` drawn from the
    explicit ``rng`` (a ``numpy.random.Generator``; required unless p == 1 or
    a mask is given). In test mode ``out = x``: inverted dropout already
    keeps the expected activation unchanged during training.

    Returns ``(out, cache)`` with cache ``(dropout_param, mask)``; mask already
    includes the ``1/p`` factor (None in test mode).
    """
    p = dropout_param.get("p", 1.0)
    mode = dropout_param.get("mode", "train")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"dropout_param['p'] (keep probability) must be in (0, 1], got {p}")
    if mode not in ("train", "test"):
        raise ValueError(f"dropout_param['mode'] must be 'train' or 'test', got {mode!r}")
    x = _as_float_array(x, "x")
    if mode == "test" or (p == 1.0 and "mask" not in dropout_param):
        return x, (dropout_param, None)
    if "mask" in dropout_param:
        keep = np.asarray(dropout_param["mask"])
        if keep.shape != x.shape:
            raise ValueError(f"dropout_param['mask'] must have shape {x.shape}, got {keep.shape}")
        mask = keep.astype(x.dtype) / x.dtype.type(p)
    else:
        if rng is None:
            raise ValueError("dropout_forward in train mode needs rng (a numpy.random.Generator)")
        mask = rng.random(x.shape, dtype=x.dtype) < p
        mask = mask.astype(x.dtype)
        mask /= x.dtype.type(p)
    return x * mask, (dropout_param, mask)


def dropout_backward(dout, cache):
    """``dx = dout * mask / p`` in train mode, ``dout`` in test mode."""
    _, mask = cache
    if mask is None:
        return dout
    return dout * mask


# --------------------------------------------------------------------------- batchnorm


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation (Ioffe & Szegedy), CS231n ``bn_param`` semantics.

    Train mode, per feature d over the batch:
    ``mu = mean_n x``, ``var = mean_n (x - mu)^2`` (biased),
    ``xhat = (x - mu) / sqrt(var + eps)``, ``out = gamma * xhat + beta``, and
    ``running = momentum * running + (1 - momentum) * batch_stat``.
    Test mode uses the running mean/var instead of the batch statistics.

    Parameters
    ----------
    x : (N, D); gamma, beta : (D,).
    bn_param : dict with ``mode`` ("train"/"test"), ``eps`` (1e-5),
        ``momentum`` (0.9), ``running_mean`` / ``running_var`` ((D,), created
        as zeros of x's dtype if absent and updated IN PLACE in train mode).

    Returns ``(out, cache)``.
    """
    x = _as_float_array(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (N, D), got {x.shape}")
    n, d = x.shape
    gamma = np.asarray(gamma)
    beta = np.asarray(beta)
    if gamma.shape != (d,) or beta.shape != (d,):
        raise ValueError(
            f"gamma and beta must have shape ({d},), got {gamma.shape} and {beta.shape}"
        )
    mode = bn_param.get("mode", "train")
    if mode not in ("train", "test"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    running_mean = bn_param.setdefault("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.setdefault("running_var", np.zeros(d, dtype=x.dtype))

    if mode == "train":
        if n < 2:
            raise ValueError(f"batchnorm in train mode needs N >= 2 examples, got N={n}")
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc * xc).mean(axis=0)
        inv_std = 1.0 / np.sqrt(var + eps)
        xhat = xc * inv_std
        running_mean *= momentum
        running_mean += (1 - momentum) * mu
        running_var *= momentum
        running_var += (1 - momentum) * var
    else:
        inv_std = 1.0 / np.sqrt(running_var + eps)
        xhat = (x - running_mean) * inv_std
    out = gamma * xhat + beta
    return out, (mode, xhat, gamma, inv_std)


def batchnorm_backward(dout, cache):
    """Backward pass of :func:`batchnorm_forward`.

    Train mode (batch statistics depend on x), with ``g = dout * gamma``:
    ``dx = inv_std / N * (N g - sum_n g - xhat * sum_n(g * xhat))``;
    test mode: ``dx = dout * gamma * inv_std``.
    ``dgamma = sum_n dout * xhat``, ``dbeta = sum_n dout``.

    Returns ``(dx, dgamma, dbeta)``.
    """
    mode, xhat, gamma, inv_std = cache
    dout = np.asarray(dout)
    if dout.shape != xhat.shape:
        raise ValueError(f"dout must have shape {xhat.shape}, got {dout.shape}")
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    g = dout * gamma
    if mode == "test":
        return g * inv_std, dgamma, dbeta
    dx = (inv_std / n) * (n * g - g.sum(axis=0) - xhat * (g * xhat).sum(axis=0))
    return dx, dgamma, dbeta
