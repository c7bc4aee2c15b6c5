"""Weight initialisers.

Every initialiser has the signature ``init(rng, sizes, dtype=np.float64, **kw)``
with ``rng`` a ``numpy.random.Generator`` (or an int seed) and ``sizes`` the
layer widths ``[n_0, n_1, ..., n_L]``; it returns ``(weights, biases)``:
``weights[l]`` has shape ``(n_l, n_{l+1})`` (the ``(D, M)`` layout of
``x @ W``) and ``biases[l]`` shape ``(n_{l+1},)``.

Draw order (fixed, so a seed always gives the same network): all biases
first, layer by layer, then all weights, as network2 does.

=================  ==========================================  ==============
name               weights W_l                                 biases
=================  ==========================================  ==============
``network2``       N(0, 1) / sqrt(n_in)                        N(0, 1)
``large``          N(0, 1)                                     N(0, 1)
``weight_scale``   weight_scale * N(0, 1)  (CS231n, 1e-2)      0
``he``             N(0, 2 / n_in)                              0
``xavier``         N(0, 2 / (n_in + n_out)) (Glorot normal);   0
                   ``uniform=True``: U(-a, a),
                   a = sqrt(6 / (n_in + n_out)) (same variance)
=================  ==========================================  ==============
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "network2_default",
    "large",
    "weight_scale",
    "he",
    "xavier",
    "INITIALIZERS",
    "get_initializer",
    "as_rng",
]


def as_rng(rng=None, seed=None) -> np.random.Generator:
    """A ``Generator`` from an explicit ``rng`` or ``seed`` (never global state)."""
    if rng is not None and seed is not None:
        raise ValueError("pass either rng or seed, not both")
    if rng is None:
        return np.random.default_rng(seed)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, int | np.integer):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy.random.Generator or an int seed, got {type(rng)}")


def _check_sizes(sizes) -> list[int]:
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"sizes must list >= 2 positive layer widths, got {sizes}")
    return sizes


def _normal_biases(rng, sizes, dtype):
    return [rng.standard_normal(m).astype(dtype, copy=False) for m in sizes[1:]]


def _zero_biases(sizes, dtype):
    return [np.zeros(m, dtype=dtype) for m in sizes[1:]]


def _std_normal_weights(rng, sizes):
    return [rng.standard_normal((d, m)) for d, m in zip(sizes[:-1], sizes[1:], strict=True)]


def network2_default(rng, sizes, dtype=np.float64):
    """network2's ``default_weight_initializer``: W ~ N(0,1)/sqrt(n_in), b ~ N(0,1)."""
    rng, sizes = as_rng(rng), _check_sizes(sizes)
    biases = _normal_biases(rng, sizes, dtype)
    weights = [(w / np.sqrt(w.shape[0])).astype(dtype, copy=False)
               for w in _std_normal_weights(rng, sizes)]
    return weights, biases


def large(rng, sizes, dtype=np.float64):
    """network2's ``large_weight_initializer``: W ~ N(0,1), b ~ N(0,1)."""
    rng, sizes = as_rng(rng), _check_sizes(sizes)
    biases = _normal_biases(rng, sizes, dtype)
    weights = [w.astype(dtype, copy=False) for w in _std_normal_weights(rng, sizes)]
    return weights, biases


def weight_scale(rng, sizes, dtype=np.float64, weight_scale=1e-2):
    """CS231n: W = weight_scale * N(0,1), b = 0."""
    rng, sizes = as_rng(rng), _check_sizes(sizes)
    weights = [(weight_scale * w).astype(dtype, copy=False)
               for w in _std_normal_weights(rng, sizes)]
    return weights, _zero_biases(sizes, dtype)


def he(rng, sizes, dtype=np.float64):
    """He et al. (2015): W ~ N(0, 2/n_in), b = 0 (for ReLU nets)."""
    rng, sizes = as_rng(rng), _check_sizes(sizes)
    weights = [(w * np.sqrt(2.0 / w.shape[0])).astype(dtype, copy=False)
               for w in _std_normal_weights(rng, sizes)]
    return weights, _zero_biases(sizes, dtype)


def xavier(rng, sizes, dtype=np.float64, uniform=False):
    """Glorot & Bengio (2010): Var W = 2/(n_in + n_out), b = 0.

    Normal by default; ``uniform=True`` draws U(-a, a) with
    ``a = sqrt(6/(n_in + n_out))``, which has the same variance.
    """
    rng, sizes = as_rng(rng), _check_sizes(sizes)
    weights = []
    for d, m in zip(sizes[:-1], sizes[1:], strict=True):
        if uniform:
            a = np.sqrt(6.0 / (d + m))
            w = rng.uniform(-a, a, size=(d, m))
        else:
            w = rng.standard_normal((d, m)) * np.sqrt(2.0 / (d + m))
        weights.append(w.astype(dtype, copy=False))
    return weights, _zero_biases(sizes, dtype)


def xavier_uniform(rng, sizes, dtype=np.float64):
    """:func:`xavier` with ``uniform=True``."""
    return xavier(rng, sizes, dtype=dtype, uniform=True)


INITIALIZERS = {
    "network2": network2_default,
    "default": network2_default,
    "large": large,
    "weight_scale": weight_scale,
    "he": he,
    "xavier": xavier,
    "glorot": xavier,
    "xavier_uniform": xavier_uniform,
}


def get_initializer(name):
    """Initialiser by name (see the module table); callables pass through."""
    if callable(name):
        return name
    if isinstance(name, str) and name.strip().lower() in INITIALIZERS:
        return INITIALIZERS[name.strip().lower()]
    raise ValueError(f"unknown initializer {name!r}; allowed values: {sorted(INITIALIZERS)}")
