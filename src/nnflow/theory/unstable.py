"""Unstable gradients in deep sigmoid nets (Blatt 10 Aufgabe 26, Tutoraufgabe 6).

With one neuron per layer, repeated use of (BP2) gives

    delta^l = sigma'(z^l) * w^{l+1} sigma'(z^{l+1}) * ... * w^L sigma'(z^L) * dC/da^L,

so the size of delta^l is governed by the factors q^l = |w^l sigma'(z^l)|.

Contents
--------
(a) ``sigmoid_prime`` and ``check_sigmoid_prime_bound``: 0 <= sigma'(z) <= 1/4.
(b) ``interval_length``: for |w| >= 4 the set of inputs a with
    |w sigma'(w a + b)| >= 1 is an interval (centred at a = -b/w) of length

        L(|w|) = (2/|w|) ln( |w|/2 (1 + sqrt(1 - 4/|w|)) - 1 ),

    ``maximise_interval_length`` finds max L numerically (grid + golden section),
    ``brute_force_interval`` measures the set on a grid of a.
(c) Log-normal model of Q^l = q^{l+1} ... q^L:  with log q i.i.d., mean mu,
    variance s^2 and n = L - l factors,  log Q ~ N(n mu, n s^2), hence

        E[Q]   = exp(n mu + n s^2 / 2),
        Var[Q] = (exp(n s^2) - 1) exp(2 n mu + n s^2).

Only numpy is used; all random numbers come from an explicit
``numpy.random.Generator``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "sigmoid",
    "sigmoid_prime",
    "default_z_grid",
    "check_sigmoid_prime_bound",
    "interval_length",
    "golden_section_max",
    "maximise_interval_length",
    "brute_force_interval",
    "lognormal_moments",
    "lognormal_raw_moment",
    "lognormal_quantiles",
    "mean_tail_draws",
    "monte_carlo_Q",
    "mc_moments_with_errors",
    "simulate_sigmoid_chain",
    "estimate_log_q_stats",
    "lognormal_growth_table",
    "run_unstable_theory",
]

# ---------------------------------------------------------------------------
# (a) sigma'(z) in [0, 1/4]
# ---------------------------------------------------------------------------


def sigmoid(z):
    """Logistic function sigma(z) = 1 / (1 + exp(-z)), evaluated without overflow.

    For z >= 0 use 1/(1 + e^{-z}); for z < 0 the equivalent e^{z}/(1 + e^{z}).
    """
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))  # in (0, 1], never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z):
    """Derivative sigma'(z) = sigma(z) (1 - sigma(z)) = e^{-|z|} / (1 + e^{-|z|})^2.

    The second form is symmetric in z (sigma' is even) and only ever
    exponentiates non-positive numbers, so it is overflow-free for any finite z
    (it underflows gracefully to 0 for |z| > ~745).
    """
    z = np.asarray(z, dtype=float)
    e = np.exp(-np.abs(z))
    return e / (1.0 + e) ** 2


def default_z_grid(z_max: float = 1000.0, n_dense: int = 200_001) -> np.ndarray:
    """Dense uniform grid on [-50, 50] (contains z = 0 exactly) plus a
    logarithmic tail out to +-z_max, so that large |z| (where a naive
    exp(-z) would overflow) are included."""
    dense = np.linspace(-50.0, 50.0, n_dense)
    tail = np.logspace(np.log10(50.0), np.log10(z_max), 200)
    return np.unique(np.concatenate([-tail, dense, tail]))


def check_sigmoid_prime_bound(z_grid=None) -> dict:
    """Numerical check of 0 <= sigma'(z) <= 1/4 on a grid.

    Returns a dict with ``min``, ``max``, ``argmax`` (z at which the max is
    attained), ``argmin``, ``n_points``, ``z_min``/``z_max`` (grid range),
    ``bound_holds`` (0 <= min and max <= 1/4 up to rounding) and
    ``max_minus_quarter``.  Analytically sigma'(z) = 1/(4 cosh^2(z/2)), so the
    maximum 1/4 is attained only at z = 0 and sigma' > 0 everywhere.
    """
    z = default_z_grid() if z_grid is None else np.asarray(z_grid, dtype=float)
    with np.errstate(over="raise", invalid="raise"):
        sp = sigmoid_prime(z)
    i_max = int(np.argmax(sp))
    i_min = int(np.argmin(sp))
    mx = float(sp[i_max])
    mn = float(sp[i_min])
    return {
        "min": mn,
        "max": mx,
        "argmax": float(z[i_max]),
        "argmin": float(z[i_min]),
        "n_points": int(z.size),
        "z_min": float(z.min()),
        "z_max": float(z.max()),
        "max_minus_quarter": mx - 0.25,
        "bound_holds": bool(mn >= 0.0 and mx <= 0.25 + 1e-15),
    }


# ---------------------------------------------------------------------------
# (b) interval of a with |w sigma'(w a + b)| >= 1
# ---------------------------------------------------------------------------


def interval_length(w_abs):
    """Length of {a : |w sigma'(w a + b)| >= 1} for |w| >= 4:

        L(|w|) = (2/|w|) ln( |w|/2 (1 + sqrt(1 - 4/|w|)) - 1 ).

    Derivation: sigma(1 - sigma) >= 1/|w| <=> sigma in [(1-r)/2, (1+r)/2] with
    r = sqrt(1 - 4/|w|); z = ln(sigma/(1-sigma)) gives |z| <= ln((1+r)/(1-r))
    = ln(|w|/2 (1+r) - 1); dividing the z-length by |w| gives the a-length.
    Accepts scalars or arrays; raises ValueError if any |w| < 4 (then
    |w sigma'| <= |w|/4 < 1 everywhere and the set is empty).
    """
    w = np.abs(np.asarray(w_abs, dtype=float))
    if np.any(~np.isfinite(w)) or np.any(w < 4.0):
        raise ValueError(
            "interval_length requires |w| >= 4: for |w| < 4 we have "
            "|w sigma'(z)| <= |w|/4 < 1 for all z, so the interval is empty "
            f"(got min |w| = {float(np.min(w)) if w.size else float('nan')})"
        )
    r = np.sqrt(1.0 - 4.0 / w)
    out = (2.0 / w) * np.log(w / 2.0 * (1.0 + r) - 1.0)
    return float(out) if out.ndim == 0 else out


def golden_section_max(f, lo: float, hi: float, tol: float = 1e-12, max_iter: int = 500):
    """Maximise a unimodal scalar function f on [lo, hi] by golden-section search.

    Keeps points c = hi - g (hi - lo), d = lo + g (hi - lo) with g = (sqrt5 - 1)/2
    and discards the sub-interval that cannot contain the maximum.
    Returns (x_max, f(x_max)).
    """
    g = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = float(lo), float(hi)
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(max_iter):
        if abs(b - a) <= tol * max(1.0, abs(a) + abs(b)):
            break
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    x = 0.5 * (a + b)
    return x, float(f(x))


def maximise_interval_length(w_min: float = 4.0, w_max: float = 100.0, n_grid: int = 100_001):
    """Numerical maximum of L(|w|) (see ``interval_length``).

    Dense grid on [w_min, w_max], then golden-section refinement on the
    bracket [w_{i-1}, w_{i+1}] around the grid argmax.
    Returns (argmax_w, max_length).  (Result: max L ~ 0.4477 at |w| ~ 6.894.)
    """
    w = np.linspace(w_min, w_max, n_grid)
    L = interval_length(w)
    i = int(np.argmax(L))
    lo, hi = w[max(i - 1, 0)], w[min(i + 1, n_grid - 1)]
    return golden_section_max(interval_length, lo, hi)


def brute_force_interval(w: float, b: float, a_grid) -> dict:
    """Measure S = {a : |w sigma'(w a + b)| >= 1} on a uniform grid of a.

    Returns ``length`` (number of grid points in S times the spacing),
    ``lo``/``hi`` (extreme grid points in S), ``center`` = (lo + hi)/2
    (expected -b/w) and ``spacing``.
    """
    a = np.asarray(a_grid, dtype=float)
    da = float(a[1] - a[0])
    inside = np.abs(w * sigmoid_prime(w * a + b)) >= 1.0
    if not inside.any():
        return {
            "length": 0.0,
            "lo": float("nan"),
            "hi": float("nan"),
            "center": float("nan"),
            "spacing": da,
        }
    sel = a[inside]
    return {
        "length": float(inside.sum() * da),
        "lo": float(sel.min()),
        "hi": float(sel.max()),
        "center": float(0.5 * (sel.min() + sel.max())),
        "spacing": da,
    }


# ---------------------------------------------------------------------------
# (c) log-normal model for Q = q^{l+1} ... q^L
# ---------------------------------------------------------------------------


def lognormal_moments(mu: float, s2: float, n):
    """Mean and variance of Q = prod_{k=1}^n q_k with log q_k i.i.d. (mu, s^2),
    treating log Q = sum log q_k ~ N(n mu, n s^2) (log-normal Q):

        E[Q]   = exp(n mu + n s^2 / 2)
        Var[Q] = (exp(n s^2) - 1) exp(2 n mu + n s^2)

    ``n`` may be an array.  Returns (mean, var).
    """
    n = np.asarray(n, dtype=float)
    mean = np.exp(n * mu + n * s2 / 2.0)
    var = np.expm1(n * s2) * np.exp(2.0 * n * mu + n * s2)
    if n.ndim == 0:
        return float(mean), float(var)
    return mean, var


def lognormal_raw_moment(k: int, mu: float, s2: float, n) -> float:
    """E[Q^k] = exp(k n mu + k^2 n s^2 / 2) for log Q ~ N(n mu, n s^2)."""
    return np.exp(k * n * mu + k * k * n * s2 / 2.0)


def lognormal_quantiles(mu: float, s2: float, n, probs=(0.1587, 0.5, 0.8413)):
    """Quantiles of Q: exp(n mu + sqrt(n s^2) Phi^{-1}(p)).  The default
    probabilities give the median exp(n mu) and the +-1 sigma band
    exp(n mu +- sqrt(n) s).  Returns an array of shape (len(probs),) + shape(n)."""
    n = np.asarray(n, dtype=float)
    zs = np.array([_norm_ppf(p) for p in probs])
    zs = zs.reshape((-1,) + (1,) * n.ndim)
    return np.exp(n * mu + np.sqrt(n * s2) * zs)


def mean_tail_draws(s2: float, n, n_samples: int):
    """Expected number of ``n_samples`` draws of Q (log Q ~ N(n mu, n s^2)) that reach the upper
    half of E[Q]: why a sample mean of Q falls below the formula for large n.

    With m = n mu and v = n s^2, e^x phi_{m,v}(x) = E[Q] phi_{m+v,v}(x): the contributions to E[Q]
    are distributed like a normal centred at log Q = m + v, so half of E[Q] comes from draws with
    log Q > m + v, and a draw gets there with probability 1 - Phi(sqrt(v)) = erfc(sqrt(v/2))/2.
    When this count is below one, the sample usually holds none of them: its mean misses half of
    E[Q] or more and falls further below the formula as n grows, while the median exp(n mu) stays
    well estimated. ``n`` may be an array.
    """
    v = np.asarray(n, dtype=float) * s2
    draws = n_samples * 0.5 * np.vectorize(math.erfc)(np.sqrt(v / 2.0))
    return float(draws) if draws.ndim == 0 else draws


def _norm_ppf(p: float) -> float:
    """Standard normal quantile via bisection on 0.5 erfc(-x/sqrt2) (math only)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def monte_carlo_Q(mu: float, s2: float, n: int, n_samples: int, rng: np.random.Generator):
    """Samples of Q = exp(sum_{k=1}^n log q_k) with log q_k ~ N(mu, s^2) i.i.d."""
    logq = rng.normal(mu, math.sqrt(s2), size=(n_samples, n))
    return np.exp(logq.sum(axis=1))


def mc_moments_with_errors(mu: float, s2: float, n: int, samples) -> dict:
    """Compare Monte Carlo moments of Q with the log-normal formulas.

    Standard errors use the exact log-normal moments:
      SE(mean) = sqrt(Var[Q] / N),
      SE(var)  ~ sqrt((m4 - Var^2) / N), m4 = E[(Q - E Q)^4] computed from the
      raw moments E[Q^k] = exp(k n mu + k^2 n s^2 / 2).
    Returns a dict with formula and MC values, their standard errors and the
    deviations in units of the standard error (z-scores).
    """
    x = np.asarray(samples, dtype=float)
    N = x.size
    mean_f, var_f = lognormal_moments(mu, s2, n)
    m1, m2, m3, m4 = (lognormal_raw_moment(k, mu, s2, n) for k in (1, 2, 3, 4))
    c4 = m4 - 4 * m3 * m1 + 6 * m2 * m1**2 - 3 * m1**4
    se_mean = math.sqrt(var_f / N)
    se_var = math.sqrt(max(c4 - var_f**2, 0.0) / N)
    mc_mean = float(x.mean())
    mc_var = float(x.var(ddof=1))
    return {
        "mu": float(mu),
        "s2": float(s2),
        "n": int(n),
        "n_samples": int(N),
        "mean_formula": mean_f,
        "mean_mc": mc_mean,
        "se_mean": se_mean,
        "z_mean": (mc_mean - mean_f) / se_mean,
        "var_formula": var_f,
        "var_mc": mc_var,
        "se_var": se_var,
        "z_var": (mc_var - var_f) / se_var if se_var > 0 else 0.0,
    }


def simulate_sigmoid_chain(
    depth: int,
    n_chains: int,
    rng: np.random.Generator,
    weight_std: float = 1.0,
    bias_std: float = 1.0,
) -> dict:
    """Forward pass through ``n_chains`` independent one-neuron-per-layer sigmoid
    nets of ``depth`` layers, default-initialised as in network2.py-style code
    (w, b ~ N(0, std^2)), with input a^0 ~ U(0, 1) (like a pixel value):

        z^l = w^l a^{l-1} + b^l,  a^l = sigma(z^l),  q^l = |w^l sigma'(z^l)|.

    Returns dict with arrays ``w``, ``z``, ``q`` of shape (n_chains, depth).
    """
    w = rng.normal(0.0, weight_std, size=(n_chains, depth))
    b = rng.normal(0.0, bias_std, size=(n_chains, depth))
    a = rng.uniform(0.0, 1.0, size=n_chains)
    z = np.empty((n_chains, depth))
    for layer in range(depth):
        z[:, layer] = w[:, layer] * a + b[:, layer]
        a = sigmoid(z[:, layer])
    q = np.abs(w * sigmoid_prime(z))
    return {"w": w, "z": z, "q": q}


def estimate_log_q_stats(
    depth: int,
    n_chains: int,
    rng: np.random.Generator,
    weight_std: float = 1.0,
    bias_std: float = 1.0,
) -> dict:
    """Empirical mu = mean(log q) and s^2 = var(log q) for the sheets' scenario
    q = |w sigma'(z)| in default-initialised sigmoid chains
    (see ``simulate_sigmoid_chain``).  Also returns the chains themselves
    (``q``) and the fraction of factors with q >= 1."""
    sim = simulate_sigmoid_chain(depth, n_chains, rng, weight_std, bias_std)
    logq = np.log(sim["q"])  # q > 0 almost surely
    return {
        "mu": float(logq.mean()),
        "s2": float(logq.var(ddof=1)),
        "frac_q_ge_1": float(np.mean(sim["q"] >= 1.0)),
        "mean_q": float(sim["q"].mean()),
        "q": sim["q"],
    }


def lognormal_growth_table(
    mu: float, s2: float, ns, rng: np.random.Generator, n_samples: int = 100_000, q_chains=None
) -> dict:
    """How E[Q] and the spread of Q change with the number of factors n.

    For each n: formula mean/variance, log-normal median exp(n mu) and the
    +-1 sigma band exp(n mu +- sqrt(n) s), coefficient of variation
    sqrt(exp(n s^2) - 1), and a Monte Carlo estimate (Gaussian log q) of
    mean, variance and the same quantiles, with ``mc_mean_tail_draws`` (see
    :func:`mean_tail_draws`: below one, the Monte Carlo mean underestimates E[Q]).
    If ``q_chains`` (n_chains, depth) from ``simulate_sigmoid_chain`` is given, Q over
    the *last* n layers of the actual chains (no independence / normality assumption)
    is added as ``chain_*`` quantiles and mean (``chain_mean_tail_draws`` for the
    chains' count with the fitted s^2).  Returns a dict of 1-d arrays (lists for JSON
    via ``.tolist()``).
    """
    ns = np.asarray(ns, dtype=int)
    mean_f, var_f = lognormal_moments(mu, s2, ns)
    q16, q50, q84 = lognormal_quantiles(mu, s2, ns)
    out = {
        "n": ns,
        "mean_formula": mean_f,
        "var_formula": var_f,
        "median_formula": q50,
        "q16_formula": q16,
        "q84_formula": q84,
        "cv_formula": np.sqrt(np.expm1(ns * s2)),
        "mc_mean_tail_draws": mean_tail_draws(s2, ns, n_samples),
    }
    mc = {k: [] for k in ("mean_mc", "var_mc", "median_mc", "q16_mc", "q84_mc")}
    for n in ns:
        x = monte_carlo_Q(mu, s2, int(n), n_samples, rng)
        mc["mean_mc"].append(x.mean())
        mc["var_mc"].append(x.var(ddof=1))
        p16, p50, p84 = np.quantile(x, [0.1587, 0.5, 0.8413])
        mc["q16_mc"].append(p16)
        mc["median_mc"].append(p50)
        mc["q84_mc"].append(p84)
    out.update({k: np.asarray(v) for k, v in mc.items()})
    if q_chains is not None:
        q = np.asarray(q_chains, dtype=float)
        ch = {k: [] for k in ("chain_mean", "chain_median", "chain_q16", "chain_q84")}
        for n in ns:
            Q = np.exp(np.log(q[:, q.shape[1] - int(n) :]).sum(axis=1))
            ch["chain_mean"].append(Q.mean())
            p16, p50, p84 = np.quantile(Q, [0.1587, 0.5, 0.8413])
            ch["chain_q16"].append(p16)
            ch["chain_median"].append(p50)
            ch["chain_q84"].append(p84)
        out.update({k: np.asarray(v) for k, v in ch.items()})
        out["chain_mean_tail_draws"] = mean_tail_draws(s2, ns, q.shape[0])
    return out


# ---------------------------------------------------------------------------
# the whole study (used by the workflow rule `unstable_theory`)
# ---------------------------------------------------------------------------


def run_unstable_theory(params: dict) -> dict:
    """All numbers and curves of Aufgabe 26 (a)-(c) / Tutoraufgabe 6.

    ``params`` keys: seed, z_max, z_points, z_plot_max, w_search_max, w_plot_max,
    brute_force_w (list), brute_force_da, chain_depth, n_chains, weight_std,
    bias_std, n_factors (list, each <= chain_depth), mc_samples, check_mu,
    check_s2, check_n.  Randomness: one ``numpy.random.Generator`` seeded with
    ``seed``, split into independent child streams per sub-study.
    Returns a JSON-serialisable dict (arrays as numpy arrays) with keys
    ``sigma_prime``, ``interval``, ``chains``, ``growth``, ``mc_check``.
    """
    p = dict(params)
    if max(p["n_factors"]) > p["chain_depth"]:
        raise ValueError("every n in n_factors must be <= chain_depth")
    rng_chain, rng_growth, rng_check = np.random.default_rng(p["seed"]).spawn(3)

    # (a)
    z_grid = default_z_grid(p["z_max"], p["z_points"])
    bound = check_sigmoid_prime_bound(z_grid)
    z_plot = np.linspace(-p["z_plot_max"], p["z_plot_max"], 801)

    # (b)
    w_star, L_star = maximise_interval_length(4.0, p["w_search_max"])
    w_plot = np.linspace(4.0, p["w_plot_max"], 1000)
    da = p["brute_force_da"]
    bf = []
    for w in p["brute_force_w"]:
        a = np.arange(-1.0, 1.0 + da / 2, da)
        meas = brute_force_interval(w, 0.0, a)
        formula = interval_length(w)
        bf.append(
            {
                "w": float(w),
                "formula": formula,
                "brute_force": meas["length"],
                "abs_diff": abs(meas["length"] - formula),
                "spacing": da,
            }
        )
    # probability that |w| >= 4 at all for w ~ N(0, weight_std^2)
    p_w_ge_4 = math.erfc(4.0 / (p["weight_std"] * math.sqrt(2.0)))

    # (c) sheet scenario: default-initialised sigmoid chains
    st = estimate_log_q_stats(p["chain_depth"], p["n_chains"], rng_chain, p["weight_std"], p["bias_std"])
    growth = lognormal_growth_table(st["mu"], st["s2"], p["n_factors"], rng_growth, p["mc_samples"], st["q"])
    x = monte_carlo_Q(p["check_mu"], p["check_s2"], p["check_n"], p["mc_samples"], rng_check)
    check = mc_moments_with_errors(p["check_mu"], p["check_s2"], p["check_n"], x)

    return {
        "sigma_prime": {**bound, "z_plot": z_plot, "sigma_prime_plot": sigmoid_prime(z_plot)},
        "interval": {
            "argmax_w": w_star,
            "max_length": L_star,
            "w_plot": w_plot,
            "length_plot": interval_length(w_plot),
            "brute_force": bf,
            "p_abs_w_ge_4": p_w_ge_4,
        },
        "chains": {
            "mu": st["mu"],
            "s2": st["s2"],
            "frac_q_ge_1": st["frac_q_ge_1"],
            "mean_q": st["mean_q"],
            "depth": p["chain_depth"],
            "n_chains": p["n_chains"],
        },
        "growth": growth,
        "mc_check": check,
    }
