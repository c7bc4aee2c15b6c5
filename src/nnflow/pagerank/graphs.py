"""Directed link graphs for the PageRank stage: edge lists, generators, closed classes.

A graph on ``n`` pages is a pair of ``int32`` index arrays ``src, dst`` (0-based;
link ``src[k] -> dst[k]``). Page *labels* are ``index_base + index`` (the sheet
numbers its pages 1..6, so ``index_base = 1`` by default) -- or, when the ids of
an edge list leave gaps, the sorted ids themselves (:attr:`EdgeList.ids`): the
pages of an edge list without ``n_pages`` are the ids its links name, numbered
``0..n-1`` in the order of the ids, so memory grows with the number of links and
never with the largest id (three links between pages 1, 7 and 2,000,000,000 make
a 3-page graph). With ``n_pages`` the pages are the declared range
``index_base .. index_base + n_pages - 1``, linked or not.

Conventions (documented because they change H):

* duplicate links ``i -> j`` count **once** (a page either links to another or
  not; ``|S_i|`` is the number of *distinct* pages ``S_i`` links to);
* a self-link ``i -> i`` is a link like any other (networkx does the same);
* a page without out-links is *dangling*: its row of H is zero.

Everything here computes; reading a file is the one input function
(:func:`read_edge_list`), which raises :class:`EdgeListError` naming the file and
the line of the first bad entry.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

__all__ = [
    "EdgeList",
    "EdgeListError",
    "ClosedClass",
    "edge_list",
    "read_edge_list",
    "random_digraph",
    "scale_free_digraph",
    "generate",
    "GENERATORS",
    "adjacency",
    "bfs_levels",
    "class_structure",
    "closed_classes",
]

INDEX_MAX = np.iinfo(np.int32).max
ID_MAX = np.iinfo(np.int64).max


class EdgeListError(ValueError):
    """A malformed edge list (the message names the file and line)."""


@dataclass(frozen=True)
class EdgeList:
    """Links ``src[k] -> dst[k]`` between pages ``0..n-1``.

    Page ``i`` is labelled ``ids[i]`` when ``ids`` is given (the increasing page ids
    of an edge list whose ids leave gaps), else ``index_base + i``.
    """

    src: np.ndarray
    dst: np.ndarray
    n: int
    index_base: int = 1
    source: str = "inline"
    ids: np.ndarray | None = None

    def __post_init__(self):
        if self.src.shape != self.dst.shape or self.src.ndim != 1:
            raise ValueError("src and dst must be 1-d arrays of equal length")
        if self.n < 1:
            raise ValueError(f"a graph needs at least one page, got n = {self.n}")
        if self.ids is not None and (self.ids.shape != (self.n,) or np.any(self.ids[1:] <= self.ids[:-1])):
            raise ValueError(f"ids must be {self.n} increasing page ids, got shape {self.ids.shape}")

    @property
    def m(self) -> int:
        """Number of links as given (duplicates included)."""
        return int(self.src.size)

    @property
    def labels(self) -> np.ndarray:
        """The page ids of pages ``0..n-1`` (int64)."""
        if self.ids is not None:
            return self.ids.astype(np.int64, copy=True)
        return np.arange(self.n, dtype=np.int64) + self.index_base

    def index_of(self, label: int) -> int:
        """0-based index of the page labelled ``label``."""
        if self.ids is not None:
            i = int(np.searchsorted(self.ids, int(label)))
            if i < self.n and self.ids[i] == int(label):
                return i
            raise ValueError(
                f"page {label} is not in this graph (its {self.n} pages are the ids of its links, "
                f"{self.ids[0]}..{self.ids[-1]})"
            )
        i = int(label) - self.index_base
        if not 0 <= i < self.n:
            raise ValueError(
                f"page {label} is not in this graph (pages {self.index_base}..{self.index_base + self.n - 1})"
            )
        return i


# --------------------------------------------------------------------------- edge lists


def _check_n_pages(n_pages: int, where: str) -> int:
    if n_pages < 1:
        raise ValueError(f"{where}: n_pages must be >= 1, got {n_pages}")
    if n_pages > INDEX_MAX:
        raise ValueError(f"{where}: n_pages = {n_pages} exceeds the int32 index range")
    return int(n_pages)


def _range_message(label: int, index_base: int, n_pages: int | None) -> str | None:
    if label < index_base:
        return f"page id {label} < index_base {index_base}"
    if n_pages is not None and label >= index_base + n_pages:
        last = index_base + n_pages - 1
        return f"page id {label} out of range: n_pages = {n_pages} (ids {index_base}..{last})"
    if label > ID_MAX:
        return f"page id {label} exceeds the 64-bit integer range"
    return None


def _pages(
    pairs: np.ndarray, index_base: int, n_pages: int | None, where: str
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    """``(src, dst, n, ids)`` of the ``(m, 2)`` int64 page ids ``pairs`` (modified in place).

    With ``n_pages`` page ``i`` is id ``index_base + i``. Without it the pages are
    the distinct ids of the links: when they are ``index_base, index_base + 1, ...``
    without a gap the indices are ``id - index_base`` and ``ids`` is None (as with
    ``n_pages``); otherwise the ids are numbered in increasing order and returned
    as ``ids``. Memory is O(links) either way: a presence table over the id span
    when the span is at most the number of endpoints, else the sorted distinct ids
    and a binary search of each endpoint among them.
    """
    if n_pages is not None:
        n = _check_n_pages(n_pages, where)
        pairs -= index_base
        ids = None
    elif pairs.size == 0:
        raise ValueError(f"{where}: no links and no n_pages given")
    else:
        lo = int(pairs.min())
        span = int(pairs.max()) - lo + 1
        if span <= pairs.size:
            pairs -= lo
            present = np.zeros(span, dtype=bool)
            present[pairs.ravel()] = True
            if lo == index_base and bool(present.all()):
                n, ids = span, None
            else:
                ids = np.flatnonzero(present) + lo
                index = np.cumsum(present, dtype=np.int32)
                index -= 1
                pairs = index[pairs]
                n = int(ids.size)
        else:
            ids = np.unique(pairs)
            pairs = np.searchsorted(ids, pairs).astype(np.int32)
            n = int(ids.size)
        if n > INDEX_MAX:
            raise ValueError(f"{where}: {n} distinct pages exceed the int32 index range")
    return (
        np.ascontiguousarray(pairs[:, 0], dtype=np.int32),
        np.ascontiguousarray(pairs[:, 1], dtype=np.int32),
        n,
        ids,
    )


def edge_list(
    pairs: Iterable[Sequence[int]],
    *,
    index_base: int = 1,
    n_pages: int | None = None,
    source: str = "inline",
) -> EdgeList:
    """An :class:`EdgeList` from ``[[i, j], ...]`` page labels (e.g. the config's inline list).

    Without ``n_pages`` the pages are the ids the links name (see :func:`_pages`);
    ``n_pages`` declares the pages ``index_base .. index_base + n_pages - 1``, which
    allows pages without any link.
    """
    links = []
    for k, pair in enumerate(pairs):
        if (
            not isinstance(pair, Sequence)
            or isinstance(pair, str)
            or len(pair) != 2
            or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in pair)
        ):
            raise ValueError(f"{source}: link #{k + 1} must be a pair of integer page ids, got {pair!r}")
        for v in pair:
            msg = _range_message(int(v), index_base, n_pages)
            if msg:
                raise ValueError(f"{source}: link #{k + 1} {list(pair)}: {msg}")
        links.append((int(pair[0]), int(pair[1])))
    src, dst, n, ids = _pages(np.array(links, dtype=np.int64).reshape(-1, 2), index_base, n_pages, source)
    return EdgeList(src, dst, n, index_base, source, ids)


_DELIMITERS = {"comma": ",", "tab": "\t", "whitespace": None}
DELIMITERS = ("auto", *_DELIMITERS)  # "auto": by file suffix


def _delimiter_for(path: Path, delimiter: str) -> str | None:
    if delimiter == "auto":
        suffix = path.suffix.lower()
        return {".csv": ",", ".tsv": "\t", ".tab": "\t"}.get(suffix)
    if delimiter not in _DELIMITERS:
        raise ValueError(f"delimiter must be one of auto, {', '.join(_DELIMITERS)}; got {delimiter!r}")
    return _DELIMITERS[delimiter]


def _fields(line: str, delim: str | None) -> list[str]:
    line = line.split("#", 1)[0]
    return [f.strip() for f in (line.split(delim) if delim else line.split())]


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _scan(
    path: Path, delim: str | None, index_base: int, n_pages: int | None
) -> Iterator[tuple[int, int, int]]:
    """Yield ``(line_number, i, j)`` for every link line; raise on the first bad line."""
    seen_data = False
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            fields = _fields(raw, delim)
            if fields == [""] or not fields:
                continue
            if len(fields) != 2:
                raise EdgeListError(
                    f"{path}:{lineno}: expected 2 fields (source, target), "
                    f"got {len(fields)}: {raw.rstrip()!r}"
                )
            if not all(_is_int(f) for f in fields):
                if not seen_data and not any(_is_int(f) for f in fields):
                    seen_data = True  # a header line such as "source,target"
                    continue
                raise EdgeListError(f"{path}:{lineno}: page ids must be integers: {raw.rstrip()!r}")
            seen_data = True
            i, j = int(fields[0]), int(fields[1])
            for v in (i, j):
                msg = _range_message(v, index_base, n_pages)
                if msg:
                    raise EdgeListError(f"{path}:{lineno}: {msg}")
            yield lineno, i, j


def _header_rows(path: Path, delim: str | None) -> int:
    """Number of leading lines to skip (comments/blank lines and at most one header)."""
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            fields = _fields(raw, delim)
            if fields == [""] or not fields:
                continue
            if not any(_is_int(f) for f in fields):
                return lineno
            return lineno - 1
    return 0


def read_edge_list(
    path: str | os.PathLike,
    *,
    index_base: int = 1,
    n_pages: int | None = None,
    delimiter: str = "auto",
) -> EdgeList:
    """Read a CSV/TSV/whitespace edge list: one link ``source<delim>target`` per line.

    ``#`` starts a comment (whole line or trailing), blank lines are skipped and
    the first non-comment line may be a header (e.g. ``source,target``).
    ``delimiter``: ``auto`` (``,`` for ``.csv``, tab for ``.tsv``/``.tab``,
    otherwise any whitespace), ``comma``, ``tab`` or ``whitespace``.
    Page ids are integers ``>= index_base`` (and ``< index_base + n_pages`` when
    ``n_pages`` is given); without ``n_pages`` the pages are the ids the links name,
    however large and sparse (see :func:`_pages`). A bad line raises
    :class:`EdgeListError` with ``<file>:<line>``.

    Large files are parsed by ``numpy.loadtxt`` (C parser); only when that fails
    is the file scanned line by line to locate and explain the error.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeListError(f"{path}: edge-list file not found")
    delim = _delimiter_for(path, delimiter)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data = np.loadtxt(
                path,
                dtype=np.int64,
                comments="#",
                delimiter=delim,
                skiprows=_header_rows(path, delim),
                ndmin=2,
                encoding="utf-8",
            )
        ok = data.ndim == 2 and data.shape[1] == 2 and data.size > 0
        if ok:
            ok = int(data.min()) >= index_base and (n_pages is None or int(data.max()) < index_base + n_pages)
    except (ValueError, UserWarning):
        ok = False
    if not ok:
        # slow path: find the first bad line (raises), or an empty file
        rows = list(_scan(path, delim, index_base, n_pages))
        if not rows:
            if n_pages is None:
                raise EdgeListError(f"{path}: no links found (and no n_pages given)")
            data = np.empty((0, 2), dtype=np.int64)
        else:
            data = np.asarray([(i, j) for _, i, j in rows], dtype=np.int64)
    src, dst, n, ids = _pages(data, index_base, n_pages, str(path))
    return EdgeList(src, dst, n, index_base, str(path), ids)


# --------------------------------------------------------------------------- generators


def _out_degrees(
    n: int, mean_out_degree: float, dangling_fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Out-degrees: ``round(f n)`` dangling pages (degree 0, chosen at random); every
    other page has degree ``1 + Poisson(d / (1 - f) - 1)`` so the mean over all
    pages is ``d``."""
    if n < 2:
        raise ValueError(f"a generated graph needs n >= 2 pages, got {n}")
    if n > INDEX_MAX:
        raise ValueError(f"n = {n} exceeds the int32 index range")
    if not 0.0 <= dangling_fraction < 1.0:
        raise ValueError(f"dangling_fraction must be in [0, 1), got {dangling_fraction}")
    lam = mean_out_degree / (1.0 - dangling_fraction)
    if lam < 1.0:
        raise ValueError(
            f"mean_out_degree / (1 - dangling_fraction) must be >= 1 (every non-dangling page "
            f"has a link), got {lam}"
        )
    deg = rng.poisson(lam - 1.0, size=n).astype(np.int64) + 1
    n_dangling = int(round(dangling_fraction * n))
    if n_dangling:
        deg[rng.permutation(n)[:n_dangling]] = 0
    return deg


def random_digraph(
    n: int,
    mean_out_degree: float,
    dangling_fraction: float,
    rng: np.random.Generator,
) -> EdgeList:
    """Erdos-Renyi-like directed graph: out-degrees from :func:`_out_degrees`, each
    link to a page drawn uniformly from the ``n - 1`` others (no self-links).

    Vectorised: ``src = repeat(arange(n), deg)``; ``dst = r + (r >= src)`` with
    ``r ~ U{0..n-2}``. Duplicate links are possible (probability ~ d/n per link)
    and count once in H. The expected number of links is ``n * mean_out_degree``.
    """
    deg = _out_degrees(n, mean_out_degree, dangling_fraction, rng)
    src = np.repeat(np.arange(n, dtype=np.int32), deg)
    dst = rng.integers(0, n - 1, size=src.size, dtype=np.int32)
    dst += dst >= src
    return EdgeList(src, dst, n, 0, f"random_digraph(n={n}, d={mean_out_degree}, f={dangling_fraction})")


def scale_free_digraph(
    n: int,
    mean_out_degree: float,
    dangling_fraction: float,
    rng: np.random.Generator,
    exponent: float = 2.5,
) -> EdgeList:
    """Scale-free directed graph (preferential-attachment-like in-degrees).

    The "static model" (Goh, Kahng, Kim 2001; Chung-Lu): page of rank ``r``
    (``r = 1..n``) gets a link with probability proportional to ``r^{-a}``,
    ``a = 1/(gamma - 1)``, which gives in-degrees with the power-law tail
    ``P(k) ~ k^{-gamma}`` (``gamma = exponent > 2``) that preferential
    attachment produces. Targets are sampled by inverting the continuous CDF
    ``F(x) = (x^{1-a} - 1)/((n+1)^{1-a} - 1)`` on ``[1, n+1)`` -- no loop, no
    table -- and the ranks are shuffled onto pages so hubs are random pages.
    Out-degrees as in :func:`random_digraph`; a self-link drawn is moved to the
    next page. Duplicates count once in H.
    """
    if not exponent > 2.0:
        raise ValueError(f"exponent (gamma) must be > 2, got {exponent}")
    deg = _out_degrees(n, mean_out_degree, dangling_fraction, rng)
    src = np.repeat(np.arange(n, dtype=np.int32), deg)
    a = 1.0 / (exponent - 1.0)
    b = 1.0 - a
    u = rng.random(src.size)
    # x = (1 + u ((n+1)^b - 1))^(1/b), in place to keep memory at one float vector
    u *= (n + 1.0) ** b - 1.0
    u += 1.0
    np.power(u, 1.0 / b, out=u)
    u -= 1.0
    rank = u.astype(np.int32)
    del u
    np.minimum(rank, n - 1, out=rank)
    perm = rng.permutation(n).astype(np.int32)
    dst = perm[rank]
    del rank
    self_link = dst == src
    dst[self_link] = (dst[self_link] + 1) % n
    return EdgeList(
        src, dst, n, 0, f"scale_free_digraph(n={n}, d={mean_out_degree}, f={dangling_fraction}, g={exponent})"
    )


GENERATORS = {"erdos_renyi": random_digraph, "scale_free": scale_free_digraph}


def generate(
    kind: str,
    n: int,
    *,
    mean_out_degree: float,
    dangling_fraction: float,
    seed: int,
    exponent: float = 2.5,
) -> EdgeList:
    """Generate a graph of ``kind`` (``erdos_renyi`` | ``scale_free``) from
    ``numpy.random.default_rng([seed, n])`` (same seed and size -> same graph)."""
    rng = np.random.default_rng([int(seed), int(n)])
    if kind == "erdos_renyi":
        return random_digraph(n, mean_out_degree, dangling_fraction, rng)
    if kind == "scale_free":
        return scale_free_digraph(n, mean_out_degree, dangling_fraction, rng, exponent)
    raise ValueError(f"unknown generator {kind!r}; choose from {sorted(GENERATORS)}")


# --------------------------------------------------------------------------- structure


def adjacency(graph: EdgeList) -> sp.csr_array:
    """0/1 adjacency matrix ``A`` (CSR, duplicates merged): ``A_ij = 1`` iff ``i -> j``."""
    n = graph.n
    a = sp.csr_array((np.ones(graph.m, dtype=bool), (graph.src, graph.dst)), shape=(n, n))
    a.sum_duplicates()  # True + True = True: duplicates merge into one link
    return a


def bfs_levels(a: sp.csr_array, roots: np.ndarray | Sequence[int]) -> np.ndarray:
    """Breadth-first distance from the nearest of ``roots`` (-1 = unreachable).

    Frontier-at-a-time on the CSR rows, so the work is vectorised per level.
    """
    n = a.shape[0]
    level = np.full(n, -1, dtype=np.int64)
    frontier = np.unique(np.asarray(roots, dtype=np.int64))
    level[frontier] = 0
    d = 0
    while frontier.size:
        d += 1
        nbrs = a[frontier].indices
        nbrs = np.unique(nbrs[level[nbrs] < 0])
        level[nbrs] = d
        frontier = nbrs
    return level


@dataclass(frozen=True)
class ClosedClass:
    """A closed communicating class: a strongly connected set of pages with at
    least one link and no link leaving it. ``period`` = gcd of its cycle lengths
    (1 = aperiodic). ``pages`` are 0-based indices."""

    pages: tuple[int, ...]
    period: int


def class_structure(graph: EdgeList) -> dict:
    """Strongly connected components and which are closed, with their periods.

    A random surfer (the chain ``pi^{k+1} = H^T pi^k``) entering a closed class
    never leaves it. A closed class of period ``p`` makes ``H`` have the ``p``
    eigenvalues ``exp(2 pi i k/p)`` (Perron-Frobenius for its irreducible
    stochastic block), so the number of eigenvalues with ``|lambda| = 1`` is the
    sum of the periods of all closed classes. Dangling pages (zero rows) form
    singleton classes without links: they lose the surfer (H is substochastic)
    and contribute the eigenvalue 0, not 1.

    The period of a class is ``gcd(level(u) + 1 - level(v))`` over its links
    ``u -> v``, with BFS levels from any page of the class (a standard identity:
    every cycle length is a sum of such differences and vice versa).

    Returns ``{"n_components", "component" (per page), "closed": [ClosedClass],
    "dangling": indices, "transient": indices}``.
    """
    a = adjacency(graph)
    n_comp, comp = csgraph.connected_components(a, directed=True, connection="strong")
    coo = a.tocoo()
    src, dst = coo.row, coo.col
    cross = comp[src] != comp[dst]
    has_exit = np.zeros(n_comp, dtype=bool)
    has_exit[comp[src[cross]]] = True
    has_link = np.zeros(n_comp, dtype=bool)
    has_link[comp[src[~cross]]] = True
    closed_ids = np.flatnonzero(~has_exit & has_link)
    closed: list[ClosedClass] = []
    if closed_ids.size:
        is_closed = np.zeros(n_comp, dtype=bool)
        is_closed[closed_ids] = True
        # one root per closed class; classes are disjoint and closed, so one
        # multi-source BFS gives every class's levels at once
        order = np.argsort(comp, kind="stable")
        first = np.searchsorted(comp[order], closed_ids)
        roots = order[first]
        level = bfs_levels(a, roots)
        inside = is_closed[comp[src]]
        diff = np.abs(level[src[inside]] + 1 - level[dst[inside]])
        period = np.zeros(n_comp, dtype=np.int64)
        np.gcd.at(period, comp[src[inside]], diff)
        members = np.split(order, np.searchsorted(comp[order], np.arange(1, n_comp)))
        for c in closed_ids:
            closed.append(ClosedClass(tuple(int(i) for i in np.sort(members[c])), int(period[c])))
        closed.sort(key=lambda cl: cl.pages)
    out_deg = np.diff(a.indptr)
    dangling = np.flatnonzero(out_deg == 0)
    in_closed = np.zeros(graph.n, dtype=bool)
    for cl in closed:
        in_closed[list(cl.pages)] = True
    transient = np.flatnonzero(~in_closed & (out_deg > 0))
    return {
        "n_components": int(n_comp),
        "component": comp,
        "closed": closed,
        "dangling": dangling,
        "transient": transient,
    }


def closed_classes(graph: EdgeList) -> list[ClosedClass]:
    """The closed classes of ``graph`` (see :func:`class_structure`)."""
    return class_structure(graph)["closed"]
