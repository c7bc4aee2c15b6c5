"""The first layer's product ``X @ W`` of inputs that are mostly zeros, with NumPy's bits.

network2's monitoring evaluates the whole test set after every epoch (Aufgabe 25a the whole
training set as well), and the first layer's product is most of that work: 400 epochs of
1,000 digits spend four fifths of their time evaluating 10,000 test digits. MNIST's pixels
are 81 % zeros, so a dense product spends four fifths of its multiply-adds on zeros. Here
``X`` is kept as its non-zeros (:class:`SparseRows`, once per data set) and the product sums
those alone, at about half the time of NumPy's. network2's compiled epoch sums the training
inputs' non-zeros the same way in its first layer's two products
(:mod:`nnflow.nn.network2_kernel`).

Bit for bit, because the sum is the one the BLAS computes. OpenBLAS's level-3 driver sums
over ``K`` in blocks -- ``Q`` (its ``GEMM_Q``) at a time while at least ``2 Q`` remain, the
rest in two halves -- each block from zero with one fused multiply-add per term in ``k``
order, and adds each block's sum to ``C`` (zero for ``beta = 0``) in order. Leaving out a
zero input changes no such sum while the weights are finite: ``fma(0, w, s)`` is ``s`` for
``s != 0``, and a zero sum is ``+0`` either way (it starts at ``+0``, and ``+0 + -0`` is
``+0``). Nothing here is read from the library: :func:`blocking` tries the candidate
blockings (:data:`CANDIDATES`) against NumPy's own product of the data's first rows, and
every new shape of call is compared with NumPy's product once per process. A BLAS that sums
otherwise (another library, another CPU's kernel, another thread count's rule) shows there,
and NumPy's product runs, with a warning. Two of the BLAS's exceptions are known and kept:
an odd number of rows ends with a one-column edge kernel that sums otherwise (that row is
taken from NumPy's product of the last three rows), and a single row is a gemv.

Which path runs follows ``NNFLOW_KERNELS`` like the other kernels (:mod:`nnflow.nn.kernels`):
``numpy`` never builds it; ``numba`` and ``auto`` build it for inputs with at most
:data:`MAX_DENSITY` non-zeros (network2 asks under ``auto`` only when its compiled epoch has
started numba anyway, :mod:`nnflow.nn.network2_kernel`).
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from nnflow.nn import blas
from nnflow.runtime import KernelChoiceError, kernel_choice

__all__ = ["CANDIDATES", "MAX_DENSITY", "SparseRows", "blocking", "k_blocks", "max_nbytes", "prepare"]

log = logging.getLogger(__name__)

# The product over the non-zeros costs ~2.3x density of NumPy's (measured on MNIST, [784,
# 30] and [784, 100], one thread): at a third of the inputs non-zero it is still faster.
MAX_DENSITY = 0.33
# Blockings of K tried against the BLAS, (Q, halves): while at least 2Q remain, Q at a
# time; a rest between Q and 2Q in two halves, "floor/u" rounding half of it down, then up
# to a multiple of u (OpenBLAS's one-thread driver, u its kernel's unroll), "ceil" rounding
# half up (its threaded driver). Q as OpenBLAS sets it for x86-64 and ARM cores' kernels.
CANDIDATES = tuple((q, halves) for q in (256, 384, 512, 320, 192, 128, 224, 448, 640, 768, 1024)
                   for halves in ("floor/4", "ceil", "floor/8", "floor/2", "floor/16"))
_PROBE_ROWS = 256  # rows of the data on which the candidates are compared

_LOCK = threading.Lock()
_blocking: dict[tuple, tuple | None] = {}  # (dtype, K, H, BLAS threads) -> candidate, None: none agrees
_checked: dict[tuple, bool] = {}  # (dtype, K, H, BLAS threads, rows) -> agrees with NumPy


def k_blocks(k: int, candidate: tuple[int, str]) -> np.ndarray:
    """The ``[start, stop)`` blocks in which ``candidate`` sums ``k`` terms, shape (blocks, 2)."""
    q, halves = candidate
    blocks, start = [], 0
    while start < k:
        rest = k - start
        if rest >= 2 * q:
            size = q
        elif rest > q:
            if halves == "ceil":
                size = (rest + 1) // 2
            else:
                unroll = int(halves.split("/")[1])
                size = -(-(rest // 2) // unroll) * unroll
        else:
            size = rest
        blocks.append((start, start + size))
        start += size
    return np.array(blocks, dtype=np.int64).reshape(-1, 2)


def _load():
    """``(build, product)`` compiled (:func:`nnflow.nn.network2_kernel.sparse_kernels`: numba
    caches a kernel by its own file, so the epoch that calls them is compiled with them), or
    None without numba."""
    from nnflow.nn import network2_kernel

    return network2_kernel.sparse_kernels()


def _key(X: np.ndarray, W: np.ndarray) -> tuple:
    return (X.dtype.name, X.shape[1], W.shape[1], blas.num_threads())


def blocking(X: np.ndarray, W: np.ndarray) -> tuple[int, str] | None:
    """The candidate blocking whose sums give NumPy's ``X @ W`` bit for bit on the first
    :data:`_PROBE_ROWS` rows of ``X`` (None: no candidate does), once per process, dtype,
    shape and BLAS thread count."""
    key = _key(X, W)
    if key not in _blocking:
        build, product = _load()
        # an even count: the last of an odd one is the BLAS's edge kernel's (see matmul)
        rows = np.ascontiguousarray(X[:max(2, min(X.shape[0], _PROBE_ROWS) // 2 * 2)])
        expected = rows @ W
        found = None
        for candidate in CANDIDATES:
            index, value, pointer = build(rows, k_blocks(X.shape[1], candidate))
            got = np.empty_like(expected)
            product(index, value, pointer, 0, rows.shape[0], W, np.empty(W.shape[1], W.dtype), got)
            if np.array_equal(got, expected):
                found = candidate
                break
        if found is None:
            log.warning("no blocking of K=%d gives the BLAS's bits for %s: NumPy's products run",
                        X.shape[1], key)
        _blocking[key] = found
    return _blocking[key]


class SparseRows:
    """``X`` (N, K) as its non-zeros, in the blocks the BLAS sums ``K`` in; :meth:`matmul`
    gives ``X[start:stop] @ W`` with NumPy's bits, or NumPy's product itself."""

    def __init__(self, X: np.ndarray, candidate: tuple[int, str]):
        build, self._product = _load()
        self.X = X  # for NumPy's product: checks, and weights it cannot take
        self.candidate = candidate
        self.index, self.value, self.pointer = build(X, k_blocks(X.shape[1], candidate))
        self.density = self.value.shape[0] / max(X.size, 1)

    @property
    def nbytes(self) -> int:
        return self.index.nbytes + self.value.nbytes + self.pointer.nbytes

    def matmul(self, W: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``X[start:stop] @ W``, a new C-contiguous array. NumPy's product for weights that
        are not finite (a zero times inf is NaN, which leaving zeros out would miss), of
        another dtype, or a shape of call that gave other bits the first time it was checked."""
        stop = self.X.shape[0] if stop is None else stop
        rows = stop - start
        if (W.dtype != self.X.dtype or W.ndim != 2 or W.shape[0] != self.X.shape[1]
                or not 0 <= start <= stop <= self.X.shape[0] or not np.isfinite(W).all()):
            return self.X[start:stop] @ W
        key = (*_key(self.X, W), rows)
        agrees = _checked.get(key)
        if agrees is False:
            return self.X[start:stop] @ W
        if rows < 2:  # NumPy calls gemv
            return self.X[start:stop] @ W
        out = np.empty((rows, W.shape[1]), dtype=W.dtype)
        # An odd count's last row is the BLAS's one-column edge kernel, which sums otherwise:
        # it is the last row of NumPy's product of the last three rows.
        edge = rows % 2
        self._product(self.index, self.value, self.pointer, start, stop - edge, W,
                      np.empty(W.shape[1], W.dtype), out)
        if edge:
            out[-1] = (self.X[stop - 3:stop] @ W)[-1]
        if agrees is None:
            expected = self.X[start:stop] @ W
            _checked[key] = np.array_equal(out, expected)
            if not _checked[key]:
                log.warning("the sparse first-layer product gave other bits than NumPy's for %s; "
                            "NumPy's product runs for it", key)
                return expected
        return out


def max_nbytes(rows: int, k: int, itemsize: int = 8, pointers: int = 1) -> int:
    """The most a :class:`SparseRows` of ``rows`` x ``k`` inputs that :func:`prepare` takes
    holds: at most :data:`MAX_DENSITY` of them non-zero (value and int32 index), and
    ``pointers`` pointers per row and block (no candidate cuts ``K`` into more than ``k //
    128 + 2`` blocks; network2's compiled epoch adds a second set for the training inputs)."""
    per_row = MAX_DENSITY * k * (itemsize + 4) + pointers * 8 * (k // min(q for q, _ in CANDIDATES) + 3)
    return int(rows * per_row)


def prepare(X: np.ndarray, W: np.ndarray) -> SparseRows | None:
    """``X`` as :class:`SparseRows` for products with weights shaped like ``W``, or None when
    NumPy's product is to run: ``NNFLOW_KERNELS=numpy``, not float64, more than
    :data:`MAX_DENSITY` non-zeros, fewer than 2 rows or columns, weights not finite, a BLAS
    running more than one thread (its threaded driver blocks ``K`` by the call's size; NumPy's
    product is parallel then anyway), numba missing (an error under ``NNFLOW_KERNELS=numba``),
    or no blocking that gives the BLAS's bits. float64 only: OpenBLAS's sgemm kernel sums in
    another order than one fused multiply-add per term."""
    choice = kernel_choice()
    if choice == "numpy":
        return None
    X = np.asarray(X)
    if (X.ndim != 2 or X.dtype != np.float64 or W.dtype != X.dtype or min(X.shape) < 2
            or W.shape[1] < 2 or not np.isfinite(W).all()):
        return None
    if blas.num_threads() != 1:  # several threads: the BLAS's rule depends on the call's size
        return None
    if np.count_nonzero(X) > MAX_DENSITY * X.size:
        return None
    X = np.ascontiguousarray(X)
    with _LOCK:
        if _load() is None:
            if choice == "numba":
                raise KernelChoiceError("NNFLOW_KERNELS=numba, but numba is not installed")
            return None
        candidate = blocking(X, W)
        if candidate is None:
            return None
        rows = SparseRows(X, candidate)
    log.info("products of %d x %d inputs (%.0f %% non-zero) over their non-zeros, K-blocks %s",
             *X.shape, 100 * rows.density, candidate)
    return rows
