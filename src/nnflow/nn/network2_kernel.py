"""network2's SGD epoch compiled by numba: the NumPy step of :mod:`nnflow.nn.network2`, bit
for bit, without its per-call overhead.

At network2's mini-batch of 10 a step is five small matrix products and a dozen element-wise
operations on 10-row arrays; in NumPy most of its time is the cost of calling them, not the
arithmetic. Here the whole epoch (gathering each mini-batch, forward, back-propagation,
update) is one compiled loop that calls NumPy's own ``cblas_?gemm`` (:mod:`nnflow.nn.blas`)
with the arguments ``np.matmul`` passes, and does the element-wise work operation by
operation as the NumPy step does, each result rounded to the array's dtype where NumPy
stores it. The sigmoid is SciPy's ``expit``, ``1/(1 + exp(-z))`` with the C library's exp,
which numba calls too (NumPy's own exp is a SIMD one with other last bits, so the NumPy
step's fallback without SciPy is never paired with this kernel). Same weights after every
epoch, bit for bit: the tests train both ways and compare, and every process checks it once
on a small network before the first compiled epoch (:func:`_agrees_with_numpy`), keeping
NumPy's step if not.

Which path runs follows ``NNFLOW_KERNELS`` like the update rules (:mod:`nnflow.nn.kernels`):
``numpy``; ``numba`` (an error when numba or NumPy's gemm symbols are missing); ``auto``, the
default: the kernel when the planned work (:data:`START_AFTER`) repays starting numba,
else NumPy. ``Network.SGD`` counts each epoch in :func:`nnflow.nn.kernels.calls` under the
path that ran it, so run.json records it.

For inputs that are mostly zeros (MNIST's pixels: 81 %), the first layer's two products, ``z
= [x, 1] @ [[W], [b]]`` and its weight gradient, sum the non-zero inputs alone, as the BLAS
sums them (:mod:`nnflow.nn.sparse_input`; float64, an even mini-batch, one BLAS thread):
~20 % of an MNIST epoch. The first steps on the data itself are checked against NumPy's step
once per process and shape (:func:`_sparse_pointer`), keeping the dense products if not.

Taken: sigmoid networks of float32 or float64 with the quadratic or the cross-entropy cost,
mini-batches of at least 2 examples and every layer at least 2 wide (NumPy's matmul calls
other routines for a dimension of 1). A last mini-batch smaller than the others runs
NumPy's step, as does anything else.
"""

from __future__ import annotations

import logging
import math
import threading

import numpy as np

from nnflow.nn import blas, kernels
from nnflow.nn.costs import CrossEntropyCost, QuadraticCost
from nnflow.runtime import KernelChoiceError, kernel_choice

__all__ = ["START_AFTER", "epoch_runner", "planned_work", "unavailable"]

log = logging.getLogger(__name__)

# Under auto, the kernel is taken when a training's planned work, epochs x examples x
# weights, reaches this. Measured at [784, 30, 10] and batch 10 on one thread: NumPy's step
# does ~3e9 of it per second, the kernel saves ~40 % of that time, and starting numba costs
# a process ~0.5 s (import, the cached kernel, the check against NumPy): this much work
# (~1.3 s of NumPy steps) repays the start. 400 epochs of 1,000 digits (9.5e9) gain ~0.3 s
# net, where their monitoring of 10,000 test digits takes ~10 s; 30 epochs of 50,000 (36e9)
# gain ~4 s.
START_AFTER = 4_000_000_000

_LOCK = threading.Lock()
_compiled = None  # the numba dispatcher, once loaded
_verified: dict[tuple[str, bool, int], bool] = {}  # (dtype, quadratic, layers) -> agreed
_sparse_verified: dict[tuple, bool] = {}  # (sizes, m, quadratic, blocking) -> agreed on real data


# Set by _load() once numba is imported (this module must import with NumPy alone): the
# numba external functions for NumPy's gemm symbols, and the compiled gemm call. Globals,
# not closure variables, so that numba's cache recognises the kernel in the next process.
_dgemm = _sgemm = _gemm = None
# The sparse first-layer kernels (nnflow.nn.sparse_input) live here, in the file of the epoch
# that calls them: numba's cache knows a kernel by its own file only, so a callee in another
# file could change without the epoch being recompiled. Set by sparse_kernels().
_fma = _build = _product = _row_product = _row_pointers = None


def _fma_intrinsic():
    from numba.core import types
    from numba.extending import intrinsic

    @intrinsic
    def fma(typingctx, a, b, c):
        if not (a == b == c and a in (types.float32, types.float64)):
            return None

        def codegen(context, builder, signature, args):
            return builder.fma(*args)  # llvm.fma: one rounding, as the BLAS kernel's vfmadd

        return a(a, b, c), codegen

    return fma


def _build_source(X, blocks):
    """``(index, value, pointer)`` of the non-zeros of ``X`` (N, K): row ``i``'s non-zeros in
    block ``b`` are ``pointer[i, b]:pointer[i, b + 1]``, in column order."""
    n, k = X.shape
    nblocks = blocks.shape[0]
    nnz = 0
    for i in range(n):
        for c in range(k):
            if X[i, c] != 0:
                nnz += 1
    index = np.empty(nnz, np.int32)
    value = np.empty(nnz, X.dtype)
    pointer = np.empty((n, nblocks + 1), np.int64)
    p = 0
    for i in range(n):
        for b in range(nblocks):
            pointer[i, b] = p
            for c in range(blocks[b, 0], blocks[b, 1]):
                x = X[i, c]
                if x != 0:
                    index[p] = c
                    value[p] = x
                    p += 1
        pointer[i, nblocks] = p
    return index, value, pointer


def _row_product_source(index, value, pointer, i, W, acc, row, ones):
    """``row = X[i] @ W`` block by block as the BLAS sums it (``acc``: (H,) scratch); with
    ``ones``, ``[X[i], 1] @ W``: the bias row ``W[-1]``, the last column, ends the last block.
    Four terms per pass over ``acc``: the same fused multiply-adds in the same order, a
    quarter of the loads and stores."""
    h = W.shape[1]
    blocks = pointer.shape[1] - 1
    for j in range(h):
        row[j] = 0
    for b in range(blocks):
        for j in range(h):
            acc[j] = 0
        p, end = pointer[i, b], pointer[i, b + 1]
        while p + 4 <= end:
            x0, x1, x2, x3 = value[p], value[p + 1], value[p + 2], value[p + 3]
            w0, w1, w2, w3 = W[index[p]], W[index[p + 1]], W[index[p + 2]], W[index[p + 3]]
            for j in range(h):
                acc[j] = _fma(x3, w3[j], _fma(x2, w2[j], _fma(x1, w1[j], _fma(x0, w0[j], acc[j]))))
            p += 4
        while p < end:
            x0, w0 = value[p], W[index[p]]
            for j in range(h):
                acc[j] = _fma(x0, w0[j], acc[j])
            p += 1
        if ones and b == blocks - 1:
            bias = W[W.shape[0] - 1]
            for j in range(h):
                acc[j] = acc[j] + bias[j]  # fma(1, b, acc): one rounding either way
        for j in range(h):
            row[j] = row[j] + acc[j]


def _product_source(index, value, pointer, start, stop, W, acc, out):
    """``out = X[start:stop] @ W`` (:func:`_row_product_source` row by row)."""
    for i in range(start, stop):
        _row_product(index, value, pointer, i, W, acc, out[i - start], False)


def _row_pointers_source(index, pointer, blocks):
    """Pointers to each row's non-zeros (``pointer[:, 0]`` to ``pointer[:, -1]``, in column
    order) in the K-blocks ``blocks`` instead of the ones they were built for."""
    n, nblocks = pointer.shape[0], blocks.shape[0]
    out = np.empty((n, nblocks + 1), np.int64)
    for i in range(n):
        p, end = pointer[i, 0], pointer[i, pointer.shape[1] - 1]
        for b in range(nblocks):
            out[i, b] = p
            while p < end and index[p] < blocks[b, 1]:
                p += 1
        out[i, nblocks] = end
    return out


def _gemm_source(is64, trans_a, trans_b, m, n, k, one, a, lda, b, ldb, zero, c, ldc):
    if is64:
        _dgemm(blas.ROW_MAJOR, trans_a, trans_b, m, n, k, one, a.ctypes, lda, b.ctypes, ldb,
               zero, c.ctypes, ldc)
    else:
        _sgemm(blas.ROW_MAJOR, trans_a, trans_b, m, n, k, one, a.ctypes, lda, b.ctypes, ldb,
               zero, c.ctypes, ldc)


def _epoch_source(X, T, perm, steps, Wbs, xa, t, zs, acts, deltas, gwbs,
                  is64, quadratic, scale, apply_decay, decay, one, zero,
                  sparse, index, value, pointer, acc, edge, marked, touched):
    """``steps`` mini-batches of ``m = xa.shape[0]`` examples taken in the order of ``perm``,
    each one step of ``Network._step`` on the augmented weights ``Wbs`` (per layer, the
    weights with the biases as their last row). ``xa``, ``t``, ``zs``, ``acts``, ``deltas``,
    ``gwbs``: the step's work arrays, as ``network2._Buffers``; the scalars are in the
    weights' dtype, as NumPy takes the Python floats of the step.

    ``sparse``: the first layer's two products sum the non-zero inputs alone, ``X``'s as
    ``index``, ``value`` and ``pointer`` hold them (:class:`nnflow.nn.sparse_input.SparseRows`,
    ``pointer`` in the K-blocks of ``[x, 1] @ [[W], [b]]``): the product row by row as the
    BLAS sums it, the weight gradient ``[x, 1].T @ delta`` term by term in example order from
    zero, as the BLAS sums over a K of one block; its last row, when the rows are odd, is the
    BLAS's one-column edge kernel's, taken from a product of the last three (``edge``).
    ``marked`` (rows,), all False between steps, and ``touched`` (rows,): the rows of the
    gradient a step computes (the others are +0 and leave the weights as they are)."""
    m, d_in, k = xa.shape[0], X.shape[1], T.shape[1]
    last = len(Wbs) - 1
    for step in range(steps):
        for r in range(m):  # np.take of the mini-batch's rows (sparse: the edge's columns)
            src = perm[step * m + r]
            if sparse:
                for c in range(max(0, d_in - 2), d_in):
                    xa[r, c] = X[src, c]
            else:
                for c in range(d_in):
                    xa[r, c] = X[src, c]
            for c in range(k):
                t[r, c] = T[src, c]
        a = xa
        for l in range(last + 1):  # z = [a, 1] @ [[W], [b]]; a = expit(z)
            z, out = zs[l], acts[l]
            width = z.shape[1]
            if sparse and l == 0:
                for r in range(m):
                    _row_product(index, value, pointer, perm[step * m + r], Wbs[0], acc, z[r], True)
            else:
                _gemm(is64, blas.NO_TRANS, blas.NO_TRANS, m, width, a.shape[1], one, a, a.shape[1],
                      Wbs[l], width, zero, z, width)
            for i in range(m):
                for j in range(width):
                    out[i, j] = one / (one + math.exp(-z[i, j]))
            a = out
        d = deltas[last]
        for i in range(m):  # output error: (a - t), times sigma' for the quadratic cost
            for j in range(k):
                v = a[i, j] - t[i, j]
                if quadratic:
                    v = v * ((one - a[i, j]) * a[i, j])
                d[i, j] = v * scale
        for l in range(last, -1, -1):
            d, Wb, g = deltas[l], Wbs[l], gwbs[l]
            width = d.shape[1]
            a_prev = acts[l - 1] if l > 0 else xa
            rows = a_prev.shape[1]
            if l > 0:  # d_prev = (d @ W.T) * sigma'(z_prev), before W changes
                d_prev = deltas[l - 1]
                h = d_prev.shape[1]
                _gemm(is64, blas.NO_TRANS, blas.TRANS, m, h, width, one, d, width, Wb, width,
                      zero, d_prev, h)
                for i in range(m):
                    for j in range(h):
                        s = a_prev[i, j]
                        d_prev[i, j] = d_prev[i, j] * ((one - s) * s)
            if sparse and l == 0:  # only the rows of inputs that are not all zero: the others'
                # gradient is +0, and W - (+0) is W
                touched[0] = rows - 1  # the column of ones
                count = 1
                for j in range(width):
                    g[rows - 1, j] = zero
                for r in range(m):
                    src = perm[step * m + r]
                    for q in range(pointer[src, 0], pointer[src, pointer.shape[1] - 1]):
                        c, x = index[q], value[q]
                        if not marked[c]:
                            marked[c] = True
                            touched[count] = c
                            count += 1
                            for j in range(width):
                                g[c, j] = zero
                        for j in range(width):
                            g[c, j] = _fma(x, d[r, j], g[c, j])
                    for j in range(width):  # the column of ones: fma(1, d, g)
                        g[rows - 1, j] = g[rows - 1, j] + d[r, j]
                if rows % 2 == 1:
                    _gemm(is64, blas.TRANS, blas.NO_TRANS, 3, width, m, one, xa[:, rows - 3:], rows, d,
                          width, zero, edge, width)
                    for j in range(width):
                        g[rows - 1, j] = edge[2, j]
            else:
                _gemm(is64, blas.TRANS, blas.NO_TRANS, rows, width, m, one, a_prev, rows, d, width,
                      zero, g, width)
            if apply_decay:
                for i in range(rows - 1):
                    for j in range(width):
                        Wb[i, j] = Wb[i, j] * decay
            if sparse and l == 0:
                for u in range(count):
                    i = touched[u]
                    marked[i] = False
                    for j in range(width):
                        Wb[i, j] = Wb[i, j] - g[i, j]
            else:
                for i in range(rows):
                    for j in range(width):
                        Wb[i, j] = Wb[i, j] - g[i, j]


def sparse_kernels():
    """``(build, product)``, the compiled kernels of :mod:`nnflow.nn.sparse_input`, or None
    without numba."""
    global _fma, _build, _product, _row_product, _row_pointers
    if _product is None:
        try:
            import numba  # noqa: F401
        except ImportError:
            return None
        _fma = _fma_intrinsic()
        _row_product = kernels.compile_kernel(_row_product_source)
        _build, _product, _row_pointers = (kernels.compile_kernel(f) for f in (
            _build_source, _product_source, _row_pointers_source))
    return _build, _product


def _load():
    """The compiled epoch (numba imported, NumPy's gemm symbols made known to it), or the
    reason it cannot run."""
    global _compiled
    if _compiled is not None:
        return _compiled, None
    externals, reason = blas.numba_gemm()
    if externals is None:
        return None, reason
    import numba

    global _dgemm, _sgemm, _gemm
    _dgemm, _sgemm = externals["float64"], externals["float32"]
    _gemm = numba.njit(inline="always")(_gemm_source)
    sparse_kernels()
    _compiled = kernels.compile_kernel(_epoch_source)
    return _compiled, None


def planned_work(sizes, n: int, epochs: int) -> int:
    """A training's planned work as :data:`START_AFTER` counts it: epochs x examples x weights."""
    weights = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    return int(epochs) * int(n) * weights


def unavailable(net, m: int) -> str | None:
    """Why the kernel cannot train ``net`` with mini-batches of ``m`` (None: it can)."""
    if net.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        return f"dtype {net.dtype}"
    if net.cost is not QuadraticCost and net.cost is not CrossEntropyCost:
        return f"cost {getattr(net.cost, '__name__', net.cost)}"
    return shape_unavailable(m, net.sizes)


def shape_unavailable(m: int, sizes) -> str | None:
    """What a compiled epoch (this one and the Solver's, :mod:`nnflow.nn.fc_kernel`) needs of
    a training besides its network: mini-batches of ``m`` and layers ``sizes`` of at least
    2, and SciPy's ``expit`` (the NumPy step's sigmoid, which the kernels compute as it
    does); None when it has them."""
    if m < 2 or min(sizes) < 2:
        return "a mini-batch or a layer of 1 (NumPy's matmul takes other routines)"
    from nnflow.nn.network2 import _expit

    if _expit() is None:
        return "SciPy not installed (the NumPy step's sigmoid is then NumPy's exp)"
    return None


class _Runner:
    """One training's compiled epochs: the network's work arrays for mini-batches of ``m``
    (``network2._Buffers``, the NumPy step's own) and the kernel."""

    def __init__(self, kernel, net, X, T, m, eta, decay):
        dtype = net.dtype.type
        self.kernel, self.net, self.X, self.T, self.m = kernel, net, X, T, m
        self.eta, self.decay = eta, decay
        buf = net._buffers_for(m)
        self.arrays = (buf.xa, buf.t, tuple(buf.z), tuple(buf.acts), tuple(buf.deltas), tuple(buf.gwb))
        # NumPy's step takes Python floats as the array's dtype (scale, decay, 1.0)
        self.scalars = (net.dtype == np.float64, net.cost is QuadraticCost, dtype(eta / m),
                        decay != 1.0, dtype(decay), dtype(1.0), dtype(0.0))
        self._dense()

    def _dense(self):
        dtype = self.net.dtype
        self.sparse = None
        self.sparse_arrays = (False, np.empty(0, np.int32), np.empty(0, dtype), np.empty((0, 2), np.int64),
                              np.empty(0, dtype), np.empty((3, 0), dtype), np.zeros(0, np.bool_),
                              np.empty(0, np.int64))

    def use_sparse(self, rows) -> bool:
        """Sum the first layer's products over the non-zero inputs of ``rows`` (the training
        inputs as :class:`~nnflow.nn.sparse_input.SparseRows`) from now on; False, the dense
        products kept, when they would not give NumPy's bits (see :func:`_sparse_pointer`)."""
        pointer = _sparse_pointer(self, rows)
        if pointer is None:
            return False
        self.sparse = rows
        self.sparse_arrays = _sparse_arrays(self.net, rows, pointer)
        return True

    def __call__(self, perm: np.ndarray) -> None:
        """One epoch over ``perm`` (network2's ``_epoch``): the full mini-batches compiled, a
        smaller last one by NumPy's step."""
        perm = np.ascontiguousarray(perm, dtype=np.int64)
        n = self.X.shape[0]
        if perm.ndim != 1 or perm.shape[0] > n or (perm.size and not 0 <= perm.min() <= perm.max() < n):
            # the kernel does not check its indices: a bad one would read outside X
            raise ValueError(f"network2 epoch: perm must be indices of the {n} training examples, "
                             f"got shape {perm.shape}" + (f", values {perm.min()}..{perm.max()}"
                                                          if perm.size else ""))
        steps = perm.shape[0] // self.m
        self.kernel(self.X, self.T, perm, steps, tuple(self.net._Wb), *self.arrays, *self.scalars,
                    *self.sparse_arrays)
        if steps * self.m < perm.shape[0]:
            self.net._epoch(self.X, self.T, perm[steps * self.m:], self.m, self.eta, self.decay)


def epoch_runner(net, X, T, m, eta, decay, epochs):
    """A callable running one epoch of ``net.SGD`` over a permutation with the compiled
    kernel, or None when NumPy's step is to run: ``NNFLOW_KERNELS=numpy``, a network or
    mini-batch the kernel does not take (:func:`unavailable`), too little planned work under
    ``auto``, or a kernel that cannot run here (numba or NumPy's gemm symbols missing, or
    other bits than NumPy's step): the last is an error under ``NNFLOW_KERNELS=numba``.
    ``X``, ``T``: the training inputs and one-hot targets, in the network's dtype."""
    if unavailable(net, m) is not None:
        return None
    kernel = choose_kernel("network2's compiled epoch", _load, _LOCK, _compiled is not None,
                           planned_work(net.sizes, X.shape[0], epochs),
                           lambda k: _agrees_with_numpy(k, net.dtype, net.cost, len(net.sizes) - 1))
    if kernel is None:
        return None
    return _Runner(kernel, net, np.ascontiguousarray(X), np.ascontiguousarray(T), m, eta, decay)


def choose_kernel(what, load, lock, loaded, planned, agrees):
    """The compiled kernel ``load()`` gives (``(kernel, None)`` or ``(None, reason)``) when
    ``NNFLOW_KERNELS`` takes it -- under ``auto``, once ``loaded`` in this process or when the
    ``planned`` work reaches :data:`START_AFTER` -- and ``agrees(kernel)`` (it gives NumPy's
    bits), else None; under ``NNFLOW_KERNELS=numba`` a kernel that cannot run is an error
    naming ``what`` and why. Shared by network2's epoch and the Solver's compiled steps."""
    choice = kernel_choice()
    if choice == "numpy" or (choice == "auto" and not loaded and planned < START_AFTER):
        return None
    with lock:
        kernel, reason = load()
        if kernel is not None and not agrees(kernel):
            kernel, reason = None, "its results differ from NumPy's step on this machine"
    if kernel is None and choice == "numba":
        raise KernelChoiceError(f"NNFLOW_KERNELS=numba, but {what} cannot run: {reason}")
    return kernel


def _sparse_arrays(net, rows, pointer):
    """The epoch's arguments for the first layer's sparse products (see :func:`_epoch_source`)."""
    width, inputs = net.sizes[1], net.sizes[0] + 1
    return (True, rows.index, rows.value, pointer, np.empty(width, net.dtype),
            np.empty((3, width), net.dtype), np.zeros(inputs, np.bool_), np.empty(inputs, np.int64))


def sparse_inputs(net, runner, datasets):
    """For each ``(data, monitored)`` of ``datasets`` (``data[0]`` the inputs, the first the
    training set's) of ``net``, its inputs as :class:`~nnflow.nn.sparse_input.SparseRows` when they are
    monitored, or None where NumPy's products run: all of them when numba does not run anyway
    (``runner`` None) and is not asked for by name. The training set's also when ``runner``
    trains: its first layer then sums them too (:meth:`_Runner.use_sparse`)."""
    from nnflow.nn import sparse_input

    if runner is None and kernel_choice() != "numba":
        return [None] * len(datasets)
    rows = [sparse_input.prepare(data[0], net._W[0]) if monitored or (
        i == 0 and runner is not None) else None for i, (data, monitored) in enumerate(datasets)]
    if runner is not None and rows[0] is not None:
        runner.use_sparse(rows[0])
    return rows


def _sparse_pointer(runner, rows):
    """``rows``' non-zeros pointed to in the K-blocks of the first layer's ``[x, 1] @ [[W],
    [b]]``, or None when the dense products are to run: not float64 (sgemm sums otherwise),
    other inputs than the runner's, an odd mini-batch (the BLAS's edge kernel for its last
    row), more than one block of examples in the weight gradient, a BLAS of several threads,
    or other weights than NumPy's step after a few steps on the data itself (checked once per
    process and shape)."""
    from nnflow.nn import sparse_input

    net, X, m = runner.net, runner.X, runner.m
    n, d_in = X.shape
    same_inputs = rows.X is X or (rows.X.shape == X.shape and np.array_equal(rows.X, X))
    if (net.dtype != np.float64 or not same_inputs or m % 2 or n < m or blas.num_threads() != 1
            or len(sparse_input.k_blocks(m, rows.candidate)) > 1):
        return None
    pointer = _row_pointers(rows.index, rows.pointer, sparse_input.k_blocks(d_in + 1, rows.candidate))
    key = (tuple(net.sizes), m, net.cost is QuadraticCost, rows.candidate)
    if key not in _sparse_verified:
        from nnflow.nn.network2 import Network

        nets = [Network(net.sizes, cost=net.cost, dtype=net.dtype) for _ in range(2)]
        for copy in nets:
            for mine, theirs in zip(copy._Wb, net._Wb, strict=True):
                mine[...] = theirs
        check = _Runner(runner.kernel, nets[0], X, runner.T, m, runner.eta, runner.decay)
        check.sparse_arrays = _sparse_arrays(net, rows, pointer)
        perm = np.arange(min(4, n // m) * m)
        with np.errstate(over="ignore", invalid="ignore"):
            check(perm)
            nets[1]._epoch(X, runner.T, perm, m, runner.eta, runner.decay)
        same = all(np.array_equal(a, b) for a, b in zip(nets[0]._Wb, nets[1]._Wb, strict=True))
        if not same:
            log.warning("network2's compiled epoch over non-zero inputs gave other bits than NumPy's "
                        "step for %s; its dense products run", key)
        _sparse_verified[key] = same
    return pointer if _sparse_verified[key] else None


def _agrees_with_numpy(kernel, dtype, cost, layers) -> bool:
    """Once per process, dtype, cost and depth: two epochs of a small network trained with the
    kernel and with NumPy's step give the same bits (the products go through one BLAS, so
    they must; a BLAS that chose its kernels otherwise would show here)."""
    from nnflow.nn.network2 import Network

    key = (np.dtype(dtype).name, cost is QuadraticCost, layers)
    if key not in _verified:
        gen = np.random.default_rng(0)
        X = gen.standard_normal((23, 9)).astype(dtype)
        T = np.eye(4, dtype=dtype)[gen.integers(0, 4, 23)]
        sizes = [9, *range(layers + 4, 5, -1), 4]  # as deep as the network to train: one compilation
        nets = [Network(sizes, cost=cost, seed=1, dtype=dtype) for _ in range(2)]
        runner = _Runner(kernel, nets[0], X, T, 5, 0.7, 0.99)
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(2):
                perm = np.random.default_rng(epoch).permutation(23)
                runner(perm)
                nets[1]._epoch(X, T, perm, 5, 0.7, 0.99)
        same = all(np.array_equal(a, b) for a, b in zip(nets[0]._Wb, nets[1]._Wb, strict=True))
        if not same:
            log.warning("network2's compiled epoch gave other bits than NumPy's step for %s; "
                        "NumPy's step runs", key)
        _verified[key] = same
    return _verified[key]
