"""Figures and report tables of the PageRank stage (CIFAR sheet, Aufgabe 12).

Every plot function takes already-computed numbers, returns the matplotlib
Figure and, if ``out`` is given, writes ``<out>.png`` and ``<out>.pdf``
atomically.
"""

from __future__ import annotations

import numpy as np

from nnflow.report.drawing import finish, subplots

__all__ = [
    "plot_eigenvalues",
    "plot_iteration",
    "plot_convergence",
    "plot_pagerank",
    "plot_scale",
]


def plot_eigenvalues(eigenvalues, unit_tolerance: float, n_unit: int, title: str = "", out=None):
    """Eigenvalues of H in the complex plane with the unit circle."""
    lam = np.asarray(eigenvalues)
    on = np.abs(np.abs(lam) - 1) <= unit_tolerance
    fig, ax = subplots(figsize=(5.5, 5.5))
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(t), np.sin(t), color="0.6", lw=1, label="unit circle $|\\lambda| = 1$")
    ax.scatter(lam.real[~on], lam.imag[~on], s=50, color="C0", zorder=3, label="$|\\lambda| < 1$")
    ax.scatter(
        lam.real[on],
        lam.imag[on],
        s=80,
        marker="*",
        color="C3",
        zorder=4,
        label=f"$|\\lambda| = 1$ (within {unit_tolerance:g}): {n_unit}",
    )
    ax.axhline(0, color="0.85", lw=0.8, zorder=0)
    ax.axvline(0, color="0.85", lw=0.8, zorder=0)
    ax.set_aspect("equal")
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_xlabel(r"Re $\lambda$")
    ax.set_ylabel(r"Im $\lambda$")
    ax.set_title(title or "Eigenvalues of the hyperlink matrix H")
    fig.set_layout_engine("constrained")
    fig.legend(loc="outside lower center", fontsize=8)  # below the axes: never over the circle
    return finish(fig, out)


def plot_iteration(history, labels, start_label, period, out=None, max_panels: int = 12):
    """Each component of ``pi^k = (H^T)^k e_start`` against k, one small panel per page.

    One panel per page (for up to ``max_panels`` pages, else the pages with the
    largest swings) keeps the oscillation readable: overlaid in one axes, the
    curves of a 3-cycle cross each other at every step.
    """
    history = np.asarray(history)
    k = np.arange(history.shape[0])
    swing = history.max(axis=0) - history.min(axis=0)
    pages = np.arange(history.shape[1])
    if pages.size > max_panels:
        pages = np.sort(np.argsort(swing)[::-1][:max_panels])
    fig, axes = subplots(pages.size, 1, figsize=(7, 0.75 * pages.size + 1.2), sharex=True,
                             squeeze=False)
    for ax, i in zip(axes[:, 0], pages, strict=True):
        ax.vlines(k, 0, history[:, i], color=f"C{i % 10}", lw=1.2)
        ax.plot(k, history[:, i], "o", ms=3, color=f"C{i % 10}")
        ax.set_ylim(-0.1, 1.1)
        ax.set_yticks([0, 1])
        ax.set_ylabel(f"$\\pi_{{{labels[i]}}}$", rotation=0, ha="right", va="center")
        ax.grid(axis="x", alpha=0.3)
    per = "no period detected" if period is None else f"detected period {period}"
    axes[0, 0].set_title(
        f"$\\pi^{{(k+1)}} = H^T \\pi^{{(k)}}$ from $\\pi^{{(0)}} = e_{{{start_label}}}$: {per}"
    )
    axes[-1, 0].set_xlabel("iteration k")
    fig.supylabel("probability of page", fontsize=9)
    return finish(fig, out)


def plot_convergence(residuals, alpha: float, lambda2: float | None = None, tol=None, out=None):
    """L1 residual ``||x^{k+1} - x^k||_1`` against k with the bound ``alpha^k r_0``."""
    r = np.asarray(residuals)
    k = np.arange(r.size)
    fig, ax = subplots(figsize=(7, 4))
    ax.semilogy(k, r, marker="o", ms=2, lw=1, label=r"$\|x^{(k+1)} - x^{(k)}\|_1$ (power iteration)")
    ax.semilogy(k, r[0] * alpha**k, "k--", lw=1, label=f"bound $r_0\\,\\alpha^k$, $\\alpha$ = {alpha:g}")
    if lambda2 is not None and 0 < lambda2 < alpha - 1e-9:
        ax.semilogy(
            k, r[0] * lambda2**k, ":", color="C2", label=f"$r_0|\\lambda_2(G)|^k$ = {lambda2:.4g}$^k$"
        )
    if tol is not None:
        ax.axhline(tol, color="C3", lw=0.8, label=f"tolerance {tol:g}")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("L1 residual")
    ax.set_title("Power iteration with the Google matrix G")
    ax.legend(fontsize=8)
    return finish(fig, out)


def plot_pagerank(labels, x, reference=None, out=None):
    """PageRank per page (bars), with networkx's values if given."""
    x = np.asarray(x)
    pos = np.arange(x.size)
    fig, ax = subplots(figsize=(max(4, 0.6 * x.size + 2), 3.5))
    ax.bar(pos, x, color="C0", label="nnflow power iteration")
    if reference is not None:
        ax.plot(pos, reference, "k_", ms=18, mew=2, label="networkx.pagerank")
    ax.set_xticks(pos, [f"S{lab}" for lab in labels])
    ax.set_xlabel("page")
    ax.set_ylabel("PageRank")
    ax.set_title("PageRank (stationary distribution of G)")
    ax.legend(fontsize=8)
    return finish(fig, out)


def plot_scale(rows, out=None):
    """Scale study: time per iteration vs one sparse mat-vec, and peak memory."""
    fig, (ax1, ax2) = subplots(1, 2, figsize=(9, 4))
    kinds = sorted({r["case_kind"] for r in rows})
    for c, kind in enumerate(kinds):
        rs = sorted((r for r in rows if r["case_kind"] == kind), key=lambda r: r["links"])
        m = [r["links"] for r in rs]
        ax1.loglog(m, [r["per_iteration_s"] for r in rs], "o-", color=f"C{c}", label=f"{kind}: per iteration")
        ax1.loglog(
            m, [r["matvec_s"] for r in rs], "s--", color=f"C{c}", alpha=0.6, label=f"{kind}: one matvec"
        )
        ax2.loglog(m, [r["peak_traced_mb"] for r in rs], "o-", color=f"C{c}", label=f"{kind}: peak (traced)")
        ax2.loglog(
            m, [r["csr_mb"] for r in rs], "s--", color=f"C{c}", alpha=0.6, label=f"{kind}: CSR of $H^T$"
        )
    ax1.set_xlabel("links (nonzeros of H)")
    ax1.set_ylabel("time (s)")
    ax1.set_title("Time per power iteration")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("links (nonzeros of H)")
    ax2.set_ylabel("memory (MB)")
    ax2.set_title("Peak memory")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return finish(fig, out)
