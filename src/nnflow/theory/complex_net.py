r"""Backpropagation for complex-valued nets with Wirtinger derivatives
(Blatt 10, Tutoraufgabe).

Network
-------
Fully connected, complex weights w^l (n_l x n_{l-1}), biases b^l (n_l), and the
complex sigmoid sigma(z) = 1 / (1 + exp(-z)) applied elementwise:

    z^l = w^l a^{l-1} + b^l,     a^l = sigma(z^l),     a^0 = x  (complex).

sigma is holomorphic on C \ {i pi (2k+1) : k in Z} (the zeros of 1 + e^{-z})
with complex derivative sigma'(z) = sigma(z) (1 - sigma(z)).

Cost (real, hence *not* holomorphic), averaged over a batch of N samples:

    C = (1/N) sum_x C_x,    C_x = 1/2 sum_j |a^L_j - y_j|^2 .

Wirtinger calculus
------------------
With z = x + i y:  d/dz = 1/2 (d/dx - i d/dy),  d/dzbar = 1/2 (d/dx + i d/dy),
and chain rule  d(g o f)/dz = (dg/dw o f) df/dz + (dg/dwbar o f) dfbar/dz.
For a real function C:  dC/dzbar = conj(dC/dz).

Backprop equations (the derivative that propagates is d/dz, *not* d/dzbar):

  delta^l_j := dC/dz^l_j .

  (BP1)  delta^L = dC/da^L (.) sigma'(z^L),   dC/da^L = 1/2 conj(a^L - y)
         [C_x = 1/2 sum (a - y) conj(a - y) => dC/da = 1/2 conj(a - y);
          the second chain-rule term vanishes because a^L = sigma(z^L) is
          holomorphic: d conj(a)/dz = conj(d a / d zbar) = 0.]
  (BP2)  delta^l = sigma'(z^l) (.) (w^{l+1})^T delta^{l+1}   -- transpose, NO conjugate
         [z^{l+1}_k = sum_j w_kj sigma(z^l_j) + b_k is holomorphic in z^l, so
          dz^{l+1}_k/dz^l_j = w_kj sigma'(z^l_j) and d conj(z^{l+1}_k)/dz^l_j = 0.]
  (BP3)  dC/db^l_j  = delta^l_j
  (BP4)  dC/dw^l_jk = a^{l-1}_k delta^l_j          (z^l is holomorphic in w, b)

Real and imaginary parts  (w = u + i v, C real):

    dC/du = dC/dw + dC/dwbar = 2 Re(dC/dw),
    dC/dv = i (dC/dw - dC/dwbar) = -2 Im(dC/dw).

Gradient descent on (u, v) with step eta:

    u -= eta dC/du, v -= eta dC/dv  <=>  w -= eta (dC/du + i dC/dv)
                                        = eta * 2 conj(dC/dw) = 2 eta dC/dwbar.

Poles
-----
sigma has poles at z = i pi (2k+1); near them |sigma| and |sigma'| blow up.
We therefore initialise weights and biases small (``scale`` ~ 0.1-0.5) with
|inputs| <= 1, so |Im z| stays far below pi during training;
``min_pole_distance`` reports the distance of all pre-activations to the
nearest pole and is recorded by ``train``.

Parameters are a dict ``{"w": [w^1, ..., w^L], "b": [b^1, ..., b^L]}`` of
complex128 arrays; batches X (N, D) and Y (N, n_L) are complex, one sample
per row.  Only numpy is used.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "csigmoid",
    "csigmoid_prime",
    "init_params",
    "forward",
    "cost",
    "backprop_wirtinger",
    "gradients",
    "min_pole_distance",
    "numerical_gradients",
    "gradient_check",
    "make_teacher_task",
    "train",
    "make_polynomial_task",
    "run_complex_backprop",
]


def csigmoid(z):
    """Complex sigmoid sigma(z) = 1 / (1 + exp(-z)), holomorphic off the poles
    z = i pi (2k+1).  Evaluated as exp(z) / (1 + exp(z)) where Re z < 0 to avoid
    overflow of exp(-z)."""
    z = np.asarray(z, dtype=complex)
    neg = z.real < 0
    out = np.empty_like(z)
    out[~neg] = 1.0 / (1.0 + np.exp(-z[~neg]))
    ez = np.exp(z[neg])
    out[neg] = ez / (1.0 + ez)
    return out


def csigmoid_prime(z):
    """Complex derivative sigma'(z) = sigma(z) (1 - sigma(z)) (d/dz; d/dzbar = 0)."""
    s = csigmoid(z)
    return s * (1.0 - s)


def init_params(sizes, rng: np.random.Generator, scale: float = 0.3) -> dict:
    """Complex Gaussian initialisation: w, b = scale * (N(0,1) + i N(0,1)) / sqrt(2)
    (so E|w|^2 = scale^2), weights additionally divided by sqrt(fan_in).
    Small ``scale`` keeps z away from the poles i pi (2k+1) of sigma."""
    ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        ws.append(scale * _cgauss(rng, (n_out, n_in)) / np.sqrt(n_in))
        bs.append(scale * _cgauss(rng, (n_out,)))
    return {"w": ws, "b": bs}


def _cgauss(rng: np.random.Generator, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


def forward(params: dict, X) -> tuple[list, list]:
    """Batched forward pass.  Returns (zs, activations) with
    activations[0] = X (N, D) and, per layer, z^l = a^{l-1} (w^l)^T + b^l and
    a^l = sigma(z^l), each (N, n_l)."""
    a = np.asarray(X, dtype=complex)
    acts, zs = [a], []
    for w, b in zip(params["w"], params["b"], strict=True):
        z = a @ w.T + b
        a = csigmoid(z)
        zs.append(z)
        acts.append(a)
    return zs, acts


def cost(params: dict, X, Y) -> float:
    """C = (1/N) sum_x 1/2 sum_j |a^L_j(x) - y_j|^2 (real)."""
    _, acts = forward(params, X)
    r = acts[-1] - np.asarray(Y, dtype=complex)
    return float(0.5 * np.sum(np.abs(r) ** 2) / r.shape[0])


def backprop_wirtinger(params: dict, X, Y) -> dict:
    """Wirtinger derivatives dC/dw^l, dC/db^l (d/dz, not d/dzbar) by (BP1)-(BP4),
    vectorised over the batch (see module docstring):

        delta^L = 1/2 conj(a^L - y) (.) sigma'(z^L)
        delta^l = sigma'(z^l) (.) (w^{l+1})^T delta^{l+1}
        dC/db^l = mean_x delta^l,  dC/dw^l = mean_x delta^l (a^{l-1})^T

    Returns {"w": [...], "b": [...], "cost": C}.
    """
    zs, acts = forward(params, X)
    Y = np.asarray(Y, dtype=complex)
    N = acts[0].shape[0]
    L = len(params["w"])
    gw, gb = [None] * L, [None] * L
    resid = acts[-1] - Y
    delta = 0.5 * np.conj(resid) * csigmoid_prime(zs[-1])  # (N, n_L)
    for layer in range(L - 1, -1, -1):
        gb[layer] = delta.sum(axis=0) / N
        gw[layer] = delta.T @ acts[layer] / N  # (n_l, n_{l-1}); no conjugation
        if layer > 0:
            delta = (delta @ params["w"][layer]) * csigmoid_prime(zs[layer - 1])
    c = float(0.5 * np.sum(np.abs(resid) ** 2) / N)
    return {"w": gw, "b": gb, "cost": c}


def gradients(params: dict, X, Y) -> dict:
    """Real gradients w.r.t. real and imaginary parts of every parameter:

        dC/d(Re w) = 2 Re(dC/dw),   dC/d(Im w) = -2 Im(dC/dw)   (same for b).

    Returns dict with lists (one array per layer) ``w_re``, ``w_im``, ``b_re``,
    ``b_im``, the Wirtinger derivatives ``dC_dw``, ``dC_db`` and ``cost``.
    """
    g = backprop_wirtinger(params, X, Y)
    return {
        "w_re": [2.0 * gw.real for gw in g["w"]],
        "w_im": [-2.0 * gw.imag for gw in g["w"]],
        "b_re": [2.0 * gb.real for gb in g["b"]],
        "b_im": [-2.0 * gb.imag for gb in g["b"]],
        "dC_dw": g["w"],
        "dC_db": g["b"],
        "cost": g["cost"],
    }


def min_pole_distance(params: dict, X) -> float:
    """min over all pre-activations z of the distance to the nearest pole
    i pi (2k+1) of the complex sigmoid: sqrt(Re z^2 + (Im z - pole)^2)."""
    zs, _ = forward(params, X)
    z = np.concatenate([zz.ravel() for zz in zs])
    k = np.round((z.imag / np.pi - 1.0) / 2.0)
    pole = np.pi * (2.0 * k + 1.0)
    return float(np.min(np.hypot(z.real, z.imag - pole)))


def _copy(params: dict) -> dict:
    return {"w": [w.copy() for w in params["w"]], "b": [b.copy() for b in params["b"]]}


def numerical_gradients(params: dict, X, Y, h: float = 1e-4) -> dict:
    """Central finite differences of C w.r.t. real and imaginary part of every
    weight and bias separately:
        dC/du ~ (C(u + h) - C(u - h)) / 2h,  dC/dv ~ (C(v + h) - C(v - h)) / 2h.
    Error ~ h^2 C_3 / 6 (truncation, C_3 a third derivative) + eps C / h
    (rounding); for the small nets here C_3 is tiny and h = 1e-4 gives
    relative errors ~1e-9.
    Same keys as ``gradients`` (``w_re``, ``w_im``, ``b_re``, ``b_im``)."""
    p = _copy(params)
    out = {"w_re": [], "w_im": [], "b_re": [], "b_im": []}
    for kind in ("w", "b"):
        for arr in p[kind]:
            g_re = np.zeros(arr.shape)
            g_im = np.zeros(arr.shape)
            flat = arr.reshape(-1)  # view: edits go into p
            for i in range(flat.size):
                orig = flat[i]
                for step, g in ((h, g_re), (1j * h, g_im)):
                    flat[i] = orig + step
                    cp = cost(p, X, Y)
                    flat[i] = orig - step
                    cm = cost(p, X, Y)
                    flat[i] = orig
                    g.reshape(-1)[i] = (cp - cm) / (2.0 * h)
            out[f"{kind}_re"].append(g_re)
            out[f"{kind}_im"].append(g_im)
    return out


def gradient_check(params: dict, X, Y, h: float = 1e-4) -> list[dict]:
    """Compare backprop (``gradients``) with ``numerical_gradients``.

    For each layer l, kind in {w, b} and part in {re, im} returns a record with
    ``rel_error`` = ||g_bp - g_fd|| / max(||g_bp|| + ||g_fd||, 1e-300)
    (Frobenius norms), ``max_elem_rel_error`` = max_i |g_bp - g_fd|_i /
    max(|g_bp|_i + |g_fd|_i, 1e-12 * max|g|), ``max_abs_error`` and ``norm``.
    """
    ana = gradients(params, X, Y)
    num = numerical_gradients(params, X, Y, h=h)
    rows = []
    for kind in ("w", "b"):
        for part in ("re", "im"):
            key = f"{kind}_{part}"
            for layer, (ga, gn) in enumerate(zip(ana[key], num[key], strict=True), start=1):
                diff = np.abs(ga - gn)
                scale = np.abs(ga) + np.abs(gn)
                floor = 1e-12 * max(float(scale.max()), 1e-300)
                rows.append(
                    {
                        "layer": layer,
                        "param": kind,
                        "part": part,
                        "name": f"{kind}{layer}_{part}",
                        "size": int(ga.size),
                        "norm": float(np.linalg.norm(ga)),
                        "max_abs_error": float(diff.max()),
                        "rel_error": float(
                            np.linalg.norm(ga - gn) / max(np.linalg.norm(ga) + np.linalg.norm(gn), 1e-300)
                        ),
                        "max_elem_rel_error": float(np.max(diff / np.maximum(scale, floor))),
                    }
                )
    return rows


def make_teacher_task(
    rng: np.random.Generator,
    n_samples: int = 64,
    sizes=(2, 6, 1),
    input_radius: float = 1.0,
    teacher_scale: float = 1.0,
) -> dict:
    """Tiny synthetic complex regression task: inputs uniform in the disc
    |x| <= input_radius, targets y = teacher_net(x) from a random complex net
    of the same architecture (so the task is realisable) with larger weights
    (``teacher_scale``) than the student initialisation.  Returns dict with X, Y
    and the teacher parameters."""
    D = sizes[0]
    r = input_radius * np.sqrt(rng.uniform(size=(n_samples, D)))
    phi = rng.uniform(0.0, 2.0 * np.pi, size=(n_samples, D))
    X = r * np.exp(1j * phi)
    teacher = init_params(sizes, rng, scale=teacher_scale)
    _, acts = forward(teacher, X)
    return {"X": X, "Y": acts[-1], "teacher": teacher}


def train(params: dict, X, Y, eta: float, n_iter: int, record_every: int = 1) -> dict:
    """Full-batch gradient descent on real and imaginary parts:

        Re w -= eta dC/d(Re w),  Im w -= eta dC/d(Im w)
        <=>  w -= eta (dC/d(Re w) + i dC/d(Im w)) = w - 2 eta conj(dC/dw)

    (same for b).  Works on a copy.  Returns dict with final ``params``,
    ``iteration``, ``cost`` (list, recorded every ``record_every`` iterations
    and at the end) and ``min_pole_distance`` (same iterations).
    """
    p = _copy(params)
    its, costs, dists = [], [], []
    for it in range(n_iter + 1):
        g = backprop_wirtinger(p, X, Y)
        if it % record_every == 0 or it == n_iter:
            its.append(it)
            costs.append(g["cost"])
            dists.append(min_pole_distance(p, X))
        if it == n_iter:
            break
        for kind in ("w", "b"):
            for arr, gw in zip(p[kind], g[kind], strict=True):
                arr -= eta * 2.0 * np.conj(gw)
    return {
        "params": p,
        "iteration": np.array(its),
        "cost": np.array(costs),
        "min_pole_distance": np.array(dists),
    }


def make_polynomial_task(
    rng: np.random.Generator,
    n_samples: int = 64,
    input_radius: float = 1.0,
    coeffs=(0.5, 0.3, 0.2),
) -> dict:
    """Complex regression task y = c0 + c1 x1 + c2 x1 x2 with x uniform in the
    disc |x_k| <= input_radius (two inputs, one output).  The target is
    holomorphic in x -- a net of holomorphic layers can only represent
    holomorphic functions of its input, so e.g. conj(x) would be unlearnable."""
    r = input_radius * np.sqrt(rng.uniform(size=(n_samples, 2)))
    X = r * np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, size=(n_samples, 2)))
    c0, c1, c2 = coeffs
    Y = (c0 + c1 * X[:, 0] + c2 * X[:, 0] * X[:, 1])[:, None]
    return {"X": X, "Y": Y}


def run_complex_backprop(params: dict) -> dict:
    """Gradient check and a training run of complex nets (workflow rule
    ``complex_backprop``).

    ``params`` keys: seed, gradcheck_sizes, gradcheck_samples, gradcheck_h,
    sizes, n_samples, input_radius, target_coeffs, init_scale, eta, n_iter,
    record_every.  One ``numpy.random.Generator`` seeded with ``seed`` is split
    into two streams: (1) gradient check of a net ``gradcheck_sizes`` at its
    initialisation on a random-teacher task (``make_teacher_task``); (2)
    training of a net ``sizes`` by gradient descent on the polynomial task
    (``make_polynomial_task``).  ``cost_constant`` is the cost of the best
    constant prediction (mean of y), the bar a net must beat to have learnt
    more than the bias.  Returns dict with ``gradcheck`` (rows), ``training``
    (iteration, cost, min_pole_distance arrays) and ``summary`` numbers.
    """
    rng_gc, rng_tr = np.random.default_rng(params["seed"]).spawn(2)
    gc_sizes = tuple(params["gradcheck_sizes"])
    m = params["gradcheck_samples"]
    gc_task = make_teacher_task(rng_gc, m, gc_sizes, params["input_radius"], 1.0)
    gc_params = init_params(gc_sizes, rng_gc, params["init_scale"])
    rows = gradient_check(gc_params, gc_task["X"], gc_task["Y"], h=params["gradcheck_h"])

    sizes = tuple(params["sizes"])
    task = make_polynomial_task(
        rng_tr, params["n_samples"], params["input_radius"], tuple(params["target_coeffs"])
    )
    p0 = init_params(sizes, rng_tr, params["init_scale"])
    res = train(p0, task["X"], task["Y"], params["eta"], params["n_iter"], params["record_every"])
    Y = task["Y"]
    c0, c1 = float(res["cost"][0]), float(res["cost"][-1])
    summary = {
        "gradcheck_max_rel_error": max(r["rel_error"] for r in rows),
        "gradcheck_max_elem_rel_error": max(r["max_elem_rel_error"] for r in rows),
        "cost_initial": c0,
        "cost_final": c1,
        "cost_ratio": c1 / c0,
        "cost_constant": float(0.5 * np.sum(np.abs(Y - Y.mean(axis=0)) ** 2) / Y.shape[0]),
        "min_pole_distance": float(res["min_pole_distance"].min()),
        "initial_pole_distance": float(res["min_pole_distance"][0]),
    }
    return {
        "gradcheck": rows,
        "training": {k: res[k] for k in ("iteration", "cost", "min_pole_distance")},
        "summary": summary,
    }
