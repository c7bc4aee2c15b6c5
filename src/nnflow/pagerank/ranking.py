r"""PageRank: hyperlink matrix, its spectrum, the plain iteration and the Google fix.

CIFAR sheet, Aufgabe 12. For pages ``S_1..S_n`` the hyperlink matrix is

.. math:: h_{ij} = 1/|S_i| \text{ if } S_i \to S_j, \quad 0 \text{ otherwise},

with ``|S_i|`` the number of distinct pages ``S_i`` links to. Rows of linking
pages sum to 1; rows of dangling pages are 0 (H is *substochastic*). The random
surfer's distribution evolves as ``pi^{k+1} = H^T pi^k``.

Why it need not converge: every closed class (strongly connected, no exit) of
period ``p`` gives ``H`` the eigenvalues ``e^{2 pi i k/p}``, ``k = 0..p-1``
(:func:`nnflow.pagerank.graphs.class_structure`). A start inside a class of period
``p > 1`` (the sheet's ``pi^0 = e_6``) cycles with period ``p`` forever; two
closed classes make the limit depend on the start; dangling pages leak mass.

The fix (Brin & Page): the stochastic ``S = H + d w^T`` (``d`` = dangling
indicator, ``w`` = dangling distribution, default ``v``) and the Google matrix

.. math:: G = \alpha S + (1 - \alpha) \mathbf{1} v^T,

``v`` = personalisation (default uniform ``1/n``). ``G`` is positive and
stochastic, so ``x^{k+1} = G^T x^k`` converges to the unique PageRank ``x``
from any distribution. Because ``G^T(x - y) = \alpha S^T (x - y)`` for
``sum(x) = sum(y)`` and ``\|S^T z\|_1 \le \|z\|_1``, the L1 residual obeys
``r_k = \|x^{k+1} - x^k\|_1 \le \alpha^k r_0``, and ``|\lambda_2(G)| \le \alpha``
(Haveliwala & Kamvar 2003). These are the same semantics as
``networkx.pagerank`` (which uses ``dangling = personalization`` by default).

Large graphs: ``H^T`` is held as CSR (the CSC of ``H``), and one iteration is
one sparse mat-vec into a preallocated vector plus O(n) vector work; the
dangling mass is the scalar ``d . x``. Nothing is densified.
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from nnflow.pagerank.graphs import EdgeList

try:  # y += A @ x without allocating (scipy's own kernel behind A @ x)
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - private scipy API moved
    _csr_matvec = None

__all__ = [
    "LinkMatrix",
    "PageRankResult",
    "ConvergenceError",
    "link_matrix",
    "eigenvalues",
    "count_unit_modulus",
    "plain_iteration",
    "detect_period",
    "distribution",
    "stochastic_matrix",
    "google_matrix",
    "second_eigenvalue_modulus",
    "pagerank",
    "matvec_into",
    "time_matvec",
    "run_scale_case",
    "personalization_vector",
    "networkx_pagerank",
    "analyse_graph",
]


DEFAULT_ALPHA = 0.85  # the damping factor of Brin and Page (the config's default too)


class ConvergenceError(RuntimeError):
    """The power iteration did not reach ``tol`` within ``max_iter`` iterations."""


@dataclass(frozen=True)
class LinkMatrix:
    """The hyperlink matrix ``H`` of a graph, stored as ``HT = H^T`` in CSR.

    ``dangling`` is the 0/1 float indicator of pages without out-links (so the
    dangling mass is ``dangling @ x``); ``n_duplicates`` counts repeated links
    that were merged.
    """

    HT: sp.csr_array
    out_degree: np.ndarray
    dangling: np.ndarray
    n_duplicates: int

    @property
    def n(self) -> int:
        return self.HT.shape[0]

    @property
    def n_links(self) -> int:
        return int(self.HT.nnz)

    @property
    def n_dangling(self) -> int:
        return int(np.count_nonzero(self.out_degree == 0))

    def H(self) -> sp.csr_array:
        """``H`` itself as CSR (a transpose, O(nnz))."""
        return self.HT.T.tocsr()

    def dense(self) -> np.ndarray:
        """``H`` as a dense array (small graphs only)."""
        return self.HT.toarray().T.copy()

    def nbytes(self) -> int:
        a = self.HT
        return a.data.nbytes + a.indices.nbytes + a.indptr.nbytes


def link_matrix(graph: EdgeList) -> LinkMatrix:
    """Build ``H^T`` (CSR) from the int32 link arrays of ``graph``.

    1. the 0/1 pattern of H in CSR with boolean data: directly from
       ``indptr = searchsorted(src, 0..n)`` when ``src`` is sorted (the
       generators' output), else by scipy's O(nnz) COO->CSR counting sort;
    2. duplicates merged (per-row sort; ``True + True = True``);
    3. CSR(H) -> CSC(H), which *is* CSR(H^T), moving one byte of data per link;
    4. the values ``(H^T)_{ji} = 1/|S_i|`` gathered as ``inv_deg[indices]``.

    No dense array, no float COO copy, no global sort of the links.
    """
    n = graph.n
    src, dst = graph.src, graph.dst
    ones = np.ones(graph.m, dtype=bool)
    if graph.m == 0 or bool(np.all(src[1:] >= src[:-1])):
        indptr = np.searchsorted(src, np.arange(n + 1, dtype=src.dtype)).astype(np.int32)
        a = sp.csr_array((ones, dst.copy(), indptr), shape=(n, n))
    else:
        a = sp.csr_array((ones, (src, dst)), shape=(n, n))
    del ones
    a.sum_duplicates()
    n_dup = graph.m - a.nnz
    deg = np.diff(a.indptr)
    csc = a.tocsc()
    del a
    inv = np.zeros(n)
    np.divide(1.0, deg, out=inv, where=deg > 0)
    indices = csc.indices.astype(np.int32, copy=False)
    indptr = csc.indptr.astype(np.int32, copy=False)
    ht = sp.csr_array((inv[indices], indices, indptr), shape=(n, n))
    dangling = (deg == 0).astype(np.float64)
    return LinkMatrix(ht, deg, dangling, int(n_dup))


# --------------------------------------------------------------------------- spectrum


def eigenvalues(h: np.ndarray) -> np.ndarray:
    """All eigenvalues of the dense ``h``, sorted by decreasing modulus, then angle."""
    lam = np.linalg.eigvals(np.asarray(h, dtype=np.float64))
    lam = np.where(np.abs(lam.imag) < 1e-14, lam.real + 0j, lam)
    order = np.lexsort((np.round(np.mod(np.angle(lam), 2 * np.pi), 12), -np.round(np.abs(lam), 12)))
    return lam[order]


def count_unit_modulus(lam: np.ndarray, tol: float) -> int:
    """Number of eigenvalues with ``| |lambda| - 1 | <= tol``."""
    if not tol > 0:
        raise ValueError(f"tolerance must be > 0, got {tol}")
    return int(np.count_nonzero(np.abs(np.abs(lam) - 1.0) <= tol))


def second_eigenvalue_modulus(g: np.ndarray) -> float:
    """``|lambda_2|``: the second largest eigenvalue modulus of the dense ``g``."""
    mod = np.sort(np.abs(np.linalg.eigvals(g)))[::-1]
    return float(mod[1]) if mod.size > 1 else 0.0


# --------------------------------------------------------------------------- plain iteration


def matvec_into(a: sp.csr_array, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[:] = a @ x`` for CSR ``a`` without allocating a new vector."""
    if _csr_matvec is not None and a.indices.dtype == a.indptr.dtype and a.data.dtype == x.dtype:
        out.fill(0.0)
        _csr_matvec(a.shape[0], a.shape[1], a.indptr, a.indices, a.data, x, out)
    else:  # pragma: no cover - fallback
        out[:] = a @ x
    return out


def plain_iteration(link: LinkMatrix, start: int, steps: int) -> np.ndarray:
    """``pi^{k+1} = H^T pi^k`` from ``pi^0 = e_start`` (0-based); rows k = 0..steps."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0 <= start < link.n:
        raise ValueError(f"start page index {start} not in 0..{link.n - 1}")
    hist = np.zeros((steps + 1, link.n))
    hist[0, start] = 1.0
    for k in range(steps):
        matvec_into(link.HT, hist[k], hist[k + 1])
    return hist


def detect_period(history: np.ndarray, tol: float = 1e-12, window: int | None = None) -> int | None:
    """Smallest ``p >= 1`` with ``||pi^k - pi^{k-p}||_1 <= tol`` for the last
    ``window`` iterates (default: half of them); ``p = 1`` means converged,
    ``None`` = no period found within the history."""
    steps = history.shape[0] - 1
    window = max(1, steps // 2) if window is None else window
    for p in range(1, steps - window + 2):
        ks = np.arange(steps - window + 1, steps + 1)
        if ks[0] - p < 0:
            break
        diff = np.abs(history[ks] - history[ks - p]).sum(axis=1)
        if np.all(diff <= tol):
            return p
    return None


# --------------------------------------------------------------------------- Google matrix


def distribution(weights, n: int, name: str) -> np.ndarray | None:
    """Normalise non-negative ``weights`` (length n) to sum 1; ``None`` stays None (uniform)."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"{name} must have length n = {n}, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    s = w.sum()
    if not s > 0:
        raise ValueError(f"{name} must have a positive entry")
    return w / s


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha (damping) must be in (0, 1), got {alpha}")
    return alpha


def stochastic_matrix(h: np.ndarray, dangling_weights: np.ndarray | None = None) -> np.ndarray:
    """``S = H + d w^T``: dangling rows replaced by ``w`` (default uniform ``1/n``)."""
    h = np.asarray(h, dtype=np.float64)
    n = h.shape[0]
    w = np.full(n, 1.0 / n) if dangling_weights is None else distribution(dangling_weights, n, "dangling")
    d = ~np.any(h != 0, axis=1)
    s = h.copy()
    s[d] = w
    return s


def google_matrix(
    h: np.ndarray,
    alpha: float = DEFAULT_ALPHA,
    personalization: np.ndarray | None = None,
    dangling: np.ndarray | None = None,
) -> np.ndarray:
    """``G = alpha S + (1 - alpha) 1 v^T``; dangling rows of S are ``dangling``
    (default: ``v``, as networkx); ``v`` defaults to uniform."""
    alpha = _check_alpha(alpha)
    n = np.asarray(h).shape[0]
    v = distribution(personalization, n, "personalization")
    v = np.full(n, 1.0 / n) if v is None else v
    w = v if dangling is None else distribution(dangling, n, "dangling")
    return alpha * stochastic_matrix(h, w) + (1.0 - alpha) * np.outer(np.ones(n), v)


@dataclass
class PageRankResult:
    """``x``: PageRank (sums to 1); ``residuals[k] = ||x^{k+1} - x^k||_1``."""

    x: np.ndarray
    iterations: int
    converged: bool
    residuals: np.ndarray = field(repr=False)
    alpha: float = DEFAULT_ALPHA
    tol: float = 0.0


def pagerank(
    link: LinkMatrix,
    alpha: float = DEFAULT_ALPHA,
    personalization: np.ndarray | None = None,
    dangling: np.ndarray | None = None,
    tol: float = 1e-12,
    max_iter: int = 1000,
    x0: np.ndarray | None = None,
    strict: bool = True,
) -> PageRankResult:
    r"""Power iteration ``x^{k+1} = G^T x^k`` without forming G:

    .. math:: x^{k+1} = \alpha H^T x^k + \alpha (d \cdot x^k) w + (1-\alpha) v

    (``sum x^k = 1``). Stops when ``||x^{k+1} - x^k||_1 < tol`` (networkx
    stops at ``< n * tol_nx``). ``x0`` defaults to uniform. Raises
    :class:`ConvergenceError` after ``max_iter`` iterations if ``strict``.
    Memory: H^T plus five n-vectors, allocated once.
    """
    alpha = _check_alpha(alpha)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    n = link.n
    v = distribution(personalization, n, "personalization")
    w = v if dangling is None else distribution(dangling, n, "dangling")
    if x0 is None:
        x = np.full(n, 1.0 / n)
    else:
        x = distribution(x0, n, "x0").copy()
    y = np.empty(n)
    tmp = np.empty(n)
    teleport = None if v is None else (1.0 - alpha) * v
    residuals = np.empty(max_iter)
    ht, d = link.HT, link.dangling
    converged = False
    k = 0
    for k in range(1, max_iter + 1):
        matvec_into(ht, x, y)
        leak = alpha * float(d @ x)
        y *= alpha
        if w is None and v is None:
            y += (leak + 1.0 - alpha) / n
        else:
            if w is None:
                y += leak / n
            else:
                np.multiply(w, leak, out=tmp)
                y += tmp
            if teleport is None:
                y += (1.0 - alpha) / n
            else:
                y += teleport
        np.subtract(y, x, out=tmp)
        np.abs(tmp, out=tmp)
        r = float(tmp.sum())
        residuals[k - 1] = r
        x, y = y, x
        if r < tol:
            converged = True
            break
    if not converged and strict:
        raise ConvergenceError(
            f"PageRank did not converge to tol = {tol} within {max_iter} iterations "
            f"(last L1 residual {residuals[k - 1]:.3g})"
        )
    x /= x.sum()
    return PageRankResult(x, k, converged, residuals[:k].copy(), alpha, tol)


# --------------------------------------------------------------------------- scale


def time_matvec(a: sp.csr_array, repeats: int = 5) -> float:
    """Median wall time in seconds of one ``a @ x`` (into a preallocated vector)."""
    x = np.full(a.shape[1], 1.0 / a.shape[1])
    out = np.empty(a.shape[0])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        matvec_into(a, x, out)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _maxrss_mb() -> float | None:
    """This process's peak resident memory in MB.

    Linux: ``VmHWM`` of ``/proc/self/status``, which counts this program only;
    ``ru_maxrss`` survives ``execve``, so a job started by a large process (Snakemake,
    pytest with torch loaded) would report its parent's size. Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def run_scale_case(
    make_graph,
    *,
    alpha: float = DEFAULT_ALPHA,
    tol: float = 1e-10,
    max_iter: int = 1000,
    trace_memory: bool = True,
) -> tuple[dict, PageRankResult]:
    """Generate/read a graph (``make_graph()`` -> EdgeList), build H^T and run
    :func:`pagerank`, timing each phase; peak memory by ``tracemalloc`` (numpy
    and scipy buffers are traced) and the process's ``ru_maxrss``."""
    if trace_memory:
        tracemalloc.start()
    try:
        t0 = time.perf_counter()
        graph = make_graph()
        t1 = time.perf_counter()
        link = link_matrix(graph)
        m_given = graph.m
        del graph
        t2 = time.perf_counter()
        res = pagerank(link, alpha=alpha, tol=tol, max_iter=max_iter)
        t3 = time.perf_counter()
        peak = tracemalloc.get_traced_memory()[1] if trace_memory else None
    finally:
        if trace_memory:
            tracemalloc.stop()
    t_mv = time_matvec(link.HT)
    row = {
        "n": link.n,
        "links_given": m_given,
        "links": link.n_links,
        "duplicates": link.n_duplicates,
        "dangling": link.n_dangling,
        "iterations": res.iterations,
        "final_residual": float(res.residuals[-1]),
        "generate_s": t1 - t0,
        "build_s": t2 - t1,
        "pagerank_s": t3 - t2,
        "per_iteration_s": (t3 - t2) / res.iterations,
        "matvec_s": t_mv,
        "csr_mb": link.nbytes() / 1e6,
        "peak_traced_mb": None if peak is None else peak / 1e6,
        "maxrss_mb": _maxrss_mb(),
    }
    return row, res


# --------------------------------------------------------------------------- the exercise


def personalization_vector(graph: EdgeList, weights: dict | None) -> np.ndarray | None:
    """``{page label: weight}`` -> normalised vector ``v`` (unlisted pages 0); None = uniform."""
    if weights is None:
        return None
    v = np.zeros(graph.n)
    for label, wt in weights.items():
        v[graph.index_of(int(label))] = float(wt)
    return distribution(v, graph.n, "personalization")


def networkx_pagerank(
    graph: EdgeList, alpha: float, personalization: np.ndarray | None = None, tol: float = 1e-14
) -> np.ndarray:
    """Reference PageRank from ``networkx.pagerank`` (raises ImportError without networkx).

    networkx stops when ``||x^{k+1} - x^k||_1 < n * tol``; ``tol = 1e-14`` per page
    makes its result accurate to ~1e-13.
    """
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(range(graph.n))
    g.add_edges_from(zip(graph.src.tolist(), graph.dst.tolist(), strict=True))
    pers = None if personalization is None else dict(enumerate(personalization.tolist()))
    pr = nx.pagerank(g, alpha=alpha, personalization=pers, tol=tol, max_iter=100000)
    return np.array([pr[i] for i in range(graph.n)])


def analyse_graph(
    graph: EdgeList,
    *,
    alpha: float = DEFAULT_ALPHA,
    unit_tolerance: float = 1e-9,
    steps: int = 30,
    start_page: int | None = None,
    personalization: dict | None = None,
    tol: float = 1e-13,
    max_iter: int = 10000,
    dense_max_pages: int = 2000,
) -> dict:
    """Everything Aufgabe 12 asks, for a small graph (no I/O).

    Returns a dict with ``H`` (dense), ``eigenvalues``, ``n_unit`` (count with
    ``|lambda| = 1`` within ``unit_tolerance``), ``structure`` (closed classes,
    periods, dangling and transient pages), the plain iteration ``history``
    from ``e_start`` and its detected ``period``, the PageRank ``result``,
    ``lambda2_G = |lambda_2(G)|`` and the residual bound check.
    """
    from nnflow.pagerank.graphs import class_structure

    alpha = _check_alpha(alpha)
    if graph.n > dense_max_pages:
        raise ValueError(
            f"{graph.source}: {graph.n} pages > dense_max_pages = {dense_max_pages}; "
            "use the scale study for large graphs"
        )
    link = link_matrix(graph)
    h = link.dense()
    lam = eigenvalues(h)
    n_unit = count_unit_modulus(lam, unit_tolerance)
    structure = class_structure(graph)
    start = graph.n - 1 if start_page is None else graph.index_of(start_page)
    history = plain_iteration(link, start, steps)
    period = detect_period(history)
    v = personalization_vector(graph, personalization)
    result = pagerank(link, alpha=alpha, personalization=v, tol=tol, max_iter=max_iter)
    g = google_matrix(h, alpha, v)
    r = result.residuals
    k = np.arange(r.size)
    bound = alpha**k * r[0]
    tail = r[r > 1e3 * np.finfo(float).eps]
    rate = float((tail[-1] / tail[0]) ** (1.0 / (tail.size - 1))) if tail.size > 1 else float("nan")
    return {
        "link": link,
        "H": h,
        "eigenvalues": lam,
        "n_unit": n_unit,
        "structure": structure,
        "start": start,
        "history": history,
        "period": period,
        "personalization": v,
        "result": result,
        "G": g,
        "lambda2_G": second_eigenvalue_modulus(g),
        "bound": bound,
        "bound_holds": bool(np.all(r <= bound * (1 + 1e-9) + 1e-15)),
        "observed_rate": rate,
        "theory_iterations": int(np.ceil(np.log(tol / r[0]) / np.log(alpha))) if r[0] > tol else 0,
    }
