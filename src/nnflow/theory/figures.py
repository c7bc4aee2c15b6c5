"""Figures for the theory topics: unstable gradients (Blatt 10 Aufgabe 26 /
Tutoraufgabe 6) and complex-valued backprop (Blatt 10 Tutoraufgabe).

Every function takes already-computed data (no maths beyond trivial
evaluation for drawing), returns the matplotlib Figure and, if ``out`` is
given, saves it to ``<out>.png`` and ``<out>.pdf`` (``out`` may carry either
suffix or none). Legends sit below the axes, never over the data; numbers are written as the
captions write them (``captions.format_value``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from nnflow.report.captions import format_value
from nnflow.report.drawing import finish, subplots

__all__ = [
    "plot_sigmoid_prime",
    "plot_interval_length",
    "plot_lognormal",
    "plot_complex_training",
    "plot_complex_gradcheck",
]


def _legend_below(fig, ax, handles=None, labels=None, ncols: int = 2) -> None:
    """The figure's legend in a row below the axes (constrained layout makes room for it)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    fig.set_layout_engine("constrained")
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=8)


def plot_sigmoid_prime(z, sigma_prime, bound: dict | None = None, out=None):
    """sigma'(z) on a grid with the bound 1/4 and the numerical maximum marked.
    ``bound`` is the dict from ``unstable.check_sigmoid_prime_bound``."""
    z = np.asarray(z)
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(z, sigma_prime, label=r"$\sigma'(z)=\sigma(z)(1-\sigma(z))$")
    ax.axhline(0.25, color="k", ls="--", lw=1, label=r"upper bound $1/4$")
    ax.axhline(0.0, color="0.5", ls=":", lw=1, label="lower bound 0")
    if bound is not None:
        ax.plot(
            [bound["argmax"]],
            [bound["max"]],
            "o",
            color="C3",
            label=f"max = {format_value(bound['max'])} at z = {format_value(bound['argmax'])}",
        )
    ax.set_xlabel("pre-activation $z$ (dimensionless)")
    ax.set_ylabel(r"$\sigma'(z)$ (dimensionless)")
    ax.set_title(r"Sigmoid derivative: $0 \leq \sigma'(z) \leq 1/4$")
    _legend_below(fig, ax)
    ax.grid(alpha=0.3)
    return finish(fig, out)


def plot_interval_length(w_abs, length, argmax_w: float, max_length: float, out=None):
    """Length of {a : |w sigma'(w a + b)| >= 1} vs |w| with the maximum annotated."""
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(w_abs, length, label=r"$\frac{2}{|w|}\ln\left(\frac{|w|}{2}(1+\sqrt{1-4/|w|})-1\right)$")
    ax.plot(
        [argmax_w],
        [max_length],
        "o",
        color="C3",
        label=f"maximum {format_value(max_length)} at |w| = {format_value(argmax_w)}",
    )
    ax.annotate(
        f"max = {format_value(max_length)}\n|w| = {format_value(argmax_w)}",
        xy=(argmax_w, max_length),
        xytext=(argmax_w + 0.25 * (np.max(w_abs) - argmax_w), 0.85 * max_length),
        arrowprops={"arrowstyle": "->"},
    )
    ax.set_xlabel("weight magnitude $|w|$ (dimensionless)")
    ax.set_ylabel("interval length in $a$ (activation units)")
    ax.set_title(r"Inputs $a$ with $|w\,\sigma'(wa+b)|\geq 1$")
    ax.set_ylim(0, 1.15 * max_length)
    _legend_below(fig, ax, ncols=1)
    ax.grid(alpha=0.3)
    return finish(fig, out)


def _means(ax, n, mean, tail_draws, color: str, marker: str, label: str) -> bool:
    """Sample means of Q: filled where the sample reaches the upper half of E[Q] (at least one
    expected draw there, ``unstable.mean_tail_draws``), hollow where it does not and so falls
    short. Returns whether any is hollow."""
    mean = np.asarray(mean, dtype=float)
    ok = np.ones(len(n), dtype=bool) if tail_draws is None else np.asarray(tail_draws) >= 1.0
    ax.plot(n[ok], mean[ok], marker, color=color, ls="none", ms=5, label=label)
    ax.plot(n[~ok], mean[~ok], marker, color=color, ls="none", ms=6, mfc="none")
    return bool((~ok).any())


def plot_lognormal(table: dict, mu: float, s2: float, out=None):
    """E[Q], the median and the +-1 sigma band of Q = q^{l+1}...q^L vs the number of
    factors n: log-normal formulas (lines, band) vs Monte Carlo (markers) and,
    if present in ``table`` (see ``unstable.lognormal_growth_table``), the
    actual sigmoid chains. A sample mean is drawn hollow where its sample holds less than one
    expected draw in the upper half of E[Q] (``*_mean_tail_draws``): there it underestimates
    E[Q], a property of the heavy tail, not of the formula; the medians beside it stay reliable."""
    n = np.asarray(table["n"])
    fig, ax = subplots(figsize=(6.5, 5.6))
    ax.fill_between(
        n,
        table["q16_formula"],
        table["q84_formula"],
        color="C0",
        alpha=0.2,
        label=r"formula 16-84% band $e^{n\mu\pm\sqrt{n}s}$",
    )
    ax.plot(n, table["mean_formula"], "C0-", label=r"formula mean $E[Q]=e^{n\mu+ns^2/2}$")
    ax.plot(n, table["median_formula"], "C0--", label=r"formula median $e^{n\mu}$")
    short = _means(ax, n, table["mean_mc"], table.get("mc_mean_tail_draws"), "C1", "o", "Monte Carlo mean")
    ax.plot(n, table["median_mc"], "C1s", ms=3, mfc="none", label="Monte Carlo median")
    ax.errorbar(
        n,
        table["median_mc"],
        yerr=[
            np.asarray(table["median_mc"]) - table["q16_mc"],
            np.asarray(table["q84_mc"]) - table["median_mc"],
        ],
        fmt="none",
        ecolor="C1",
        alpha=0.6,
        label="Monte Carlo 16-84%",
    )
    if "chain_median" in table:
        short |= _means(ax, n, table["chain_mean"], table.get("chain_mean_tail_draws"), "C2", "^",
                        "sigmoid chains: mean")
        ax.plot(n, table["chain_median"], "C2v", ms=4, mfc="none", label="sigmoid chains: median")
    ax.set_yscale("log")
    ax.set_xlabel("number of factors $n = L - \\ell$")
    ax.set_ylabel("$Q^\\ell = q^{\\ell+1}\\cdots q^L$ (dimensionless)")
    ax.set_title(f"Log-normal model, $\\mu$ = {format_value(mu)}, $s^2$ = {format_value(s2)}")
    handles, labels = ax.get_legend_handles_labels()
    if short:
        handles.append(Line2D([], [], marker="o", ls="none", color="0.3", mfc="none"))
        labels.append("hollow: mean of a sample with < 1 draw\nin the upper half of E[Q] (falls short)")
    _legend_below(fig, ax, handles, labels)
    ax.grid(alpha=0.3, which="both")
    return finish(fig, out)


def plot_complex_training(iteration, cost, min_pole_distance=None, out=None):
    """Training cost vs iteration (log scale); optionally the minimum distance of
    the pre-activations to the poles i pi (2k+1) on a second axis."""
    fig, ax = subplots(figsize=(6, 4))
    ax.plot(iteration, cost, "C0-", label=r"cost $C=\frac{1}{2N}\sum|a^L-y|^2$")
    ax.set_yscale("log")
    ax.set_xlabel("gradient-descent iteration")
    ax.set_ylabel("cost $C$ (dimensionless)")
    handles, labels = ax.get_legend_handles_labels()
    if min_pole_distance is not None:
        ax2 = ax.twinx()
        ax2.plot(iteration, min_pole_distance, "C3--", label="min distance of z to a pole")
        ax2.set_ylabel(r"min$|z-i\pi(2k+1)|$ (dimensionless)")
        ax2.set_ylim(bottom=0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    _legend_below(fig, ax, handles, labels)
    ax.set_title("Complex-valued net trained with Wirtinger backprop")
    ax.grid(alpha=0.3, which="both")
    return finish(fig, out)


def plot_complex_gradcheck(rows: list[dict], threshold: float = 1e-7, out=None):
    """Relative error backprop vs finite differences for every parameter array
    (rows from ``complex_net.gradient_check``) on a log scale."""
    names = [r["name"] for r in rows]
    rel = np.array([r["rel_error"] for r in rows])
    elem = np.array([r["max_elem_rel_error"] for r in rows])
    x = np.arange(len(rows))
    fig, ax = subplots(figsize=(max(6, 0.45 * len(rows) + 2), 4))
    part_colors = {"re": "C0", "im": "C1"}
    ax.bar(x, rel, color=[part_colors[r["part"]] for r in rows])
    ax.plot(x, elem, "kx", label="max elementwise relative error")
    ax.axhline(threshold, color="C3", ls="--", label=f"tolerance {threshold:g}")
    parts = [
        Patch(color=part_colors[part], label=f"relative error (Frobenius norm), {name} part")
        for part, name in (("re", "real"), ("im", "imaginary"))
        if any(r["part"] == part for r in rows)
    ]
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax.set_xlabel("parameter array (layer, weight/bias, real/imag part)")
    ax.set_ylabel("relative error (dimensionless)")
    ax.set_title("Gradient check: Wirtinger backprop vs central differences")
    handles, labels = ax.get_legend_handles_labels()
    _legend_below(fig, ax, parts + handles, [h.get_label() for h in parts] + labels)
    ax.grid(alpha=0.3, axis="y", which="both")
    return finish(fig, out)
