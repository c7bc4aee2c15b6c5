"""The Solver's SGD steps for plain sigmoid and ReLU nets with network2's costs, compiled by
numba: :class:`~nnflow.nn.fc_step.FCTrainingStep` and ``optim.sgd``, bit for bit, without
their per-call overhead.

At small mini-batches (network2's 10) a step of the modular trainer is five small matrix
products and a few dozen NumPy calls on 10-row arrays; most of its time is the calls, not
the arithmetic. Here a run of steps is one compiled loop, as network2's epoch is
(:mod:`nnflow.nn.network2_kernel`): it gathers each mini-batch, calls NumPy's own
``cblas_?gemm`` with the arguments ``np.matmul`` passes (:func:`nnflow.nn.blas.numba_gemm`),
and does the element-wise work operation by operation as :class:`FCTrainingStep` does, each
result rounded to the array's dtype where NumPy stores it:

- ``z = h @ W`` then ``z + b``; ReLU as ``np.maximum(z, 0)`` (NaN kept, ``-0`` to ``+0``);
  the sigmoid as SciPy's ``expit``, ``1/(1 + exp(-z))`` with the C library's exp;
- the output error ``(a - t) / m`` (cross-entropy) or ``(a - t)(a(1 - a)) / m`` (quadratic);
- ``dW = h.T @ dout``, ``db`` summed over the rows in order from +0 (NumPy's reduction over
  the first axis), ``dh = dout @ W.T`` times ``h(1 - h)`` or the ReLU mask;
- SGD's ``w - lr * dw``.

The loss of each step, which the update does not need, is left to NumPy: the kernel keeps
each step's sigmoid outputs and :meth:`FCTrainingStep.losses` computes the losses of a run of
steps in one batched pass of the same operations (a run of at most :data:`OUTPUT_VALUES`
outputs, so memory stays bounded). A quadratic-cost step whose outputs hold a NaN (its loss
is not finite, and the Solver does not update then) ends the run before its update; the
Solver takes that step itself. A NaN is NaN on both paths, but its sign bit may differ after
a divergence: IEEE 754 leaves it to the implementation, and LLVM may swap the operands of an
addition where NumPy's loop keeps the first NaN.

Which path runs follows ``NNFLOW_KERNELS`` as for network2's epoch: ``numpy``; ``numba`` (an
error when numba or NumPy's gemm symbols are missing); ``auto``, the default: the kernel when
the planned work repays starting numba (:data:`nnflow.nn.network2_kernel.START_AFTER`). Every
process checks once per dtype, activation, cost and depth that a few steps of a small net
give NumPy's bits (:func:`_agrees_with_numpy`), keeping NumPy's step if not.

Taken (:func:`unavailable` says why not otherwise): a net :func:`fc_step.supports`, with a
sigmoid or ReLU activation, the ``cross_entropy_sigmoid`` or ``quadratic_sigmoid`` cost (the
softmax needs NumPy's exp, whose last bits differ from the C library's), no L2 term (its
loss is a pairwise sum of every weight each step), trained by ``sgd``; mini-batches of at
least 2 examples and every layer at least 2 wide (NumPy's matmul takes other routines for a
dimension of 1).
"""

from __future__ import annotations

import logging
import math
import threading

import numpy as np

from nnflow.nn import blas, fc_step, kernels, network2_kernel

__all__ = ["epoch_runner", "unavailable"]

log = logging.getLogger(__name__)

_COSTS = ("cross_entropy_sigmoid", "quadratic_sigmoid")
# Steps per kernel call: at most this many sigmoid outputs kept for their losses (which
# take four more arrays of that size), so memory stays bounded whatever N and K.
OUTPUT_VALUES = 1 << 20
_ACTIVATIONS = ("sigmoid", "relu")
_LOCK = threading.Lock()
_compiled = None  # the numba dispatcher, once loaded
_verified: dict[tuple, bool] = {}  # (dtype, activation, cost, layers) -> agreed

# Set by _load() once numba is imported (this module must import with NumPy alone); globals,
# not closure variables, so that numba's cache recognises the kernel in the next process.
_dgemm = _sgemm = _matmul = None


def _matmul_source(is64, a, trans_a, b, trans_b, c):
    """``c = op(a) @ op(b)`` as ``np.matmul`` calls the BLAS, for a C-contiguous ``c`` and
    C-contiguous ``a``, ``b`` (``trans_*``: the operand is the transpose of that array)."""
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    ta = blas.TRANS if trans_a else blas.NO_TRANS
    tb = blas.TRANS if trans_b else blas.NO_TRANS
    if is64:
        _dgemm(blas.ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes, a.shape[1], b.ctypes, b.shape[1],
               0.0, c.ctypes, n)
    else:
        _sgemm(blas.ROW_MAJOR, ta, tb, m, n, k, np.float32(1.0), a.ctypes, a.shape[1], b.ctypes,
               b.shape[1], np.float32(0.0), c.ctypes, n)


def _steps_source(X, T, batches, first, last, Ws, bs, gWs, gbs, x, hs, dhs, outs,
                  is64, relu, quadratic, stop_on_nan, lr, n, one, zero):
    """Steps ``first`` to ``last - 1``: mini-batch ``batches[s]`` of rows of ``X`` (one-hot
    targets ``T``), the step of ``FCTrainingStep`` and SGD on the layers' ``Ws``, ``bs``
    (gradients into ``gWs``, ``gbs``); ``x``, ``hs``, ``dhs``: the step's work arrays (as
    ``fc_step._Buffers``); ``outs[s - first]``: step ``s``'s sigmoid outputs, for its loss.
    Returns ``last``, or the step whose outputs hold a NaN when ``stop_on_nan`` (not
    updated)."""
    m, d = x.shape
    L = len(Ws)
    k = outs.shape[2]
    for step in range(first, last):
        for r in range(m):
            src = batches[step, r]
            for c in range(d):
                x[r, c] = X[src, c]
        a = outs[step - first]
        nan = False
        for l in range(L):
            h = x if l == 0 else hs[l - 1]
            z, b = hs[l], bs[l]
            _matmul(is64, h, False, Ws[l], False, z)
            width = z.shape[1]
            for i in range(m):
                for j in range(width):
                    v = z[i, j] + b[j]
                    z[i, j] = v
                    if l == L - 1:
                        s = one / (one + math.exp(-v))
                        a[i, j] = s
                        if s != s:
                            nan = True
                    elif relu:
                        if not (v > zero or v != v):  # np.maximum(v, 0): NaN kept, -0 to +0
                            z[i, j] = zero
                    else:
                        z[i, j] = one / (one + math.exp(-v))
        if nan and stop_on_nan:
            return step
        dout = dhs[L - 1]
        for i in range(m):
            src = batches[step, i]
            for j in range(k):
                v = a[i, j] - T[src, j]
                if quadratic:
                    v = v * (a[i, j] * (one - a[i, j]))
                dout[i, j] = v / n
        for l in range(L - 1, -1, -1):
            h = x if l == 0 else hs[l - 1]
            gb = gbs[l]
            _matmul(is64, h, True, dout, False, gWs[l])
            width = gb.shape[0]
            for j in range(width):
                gb[j] = zero
            for i in range(m):
                for j in range(width):
                    gb[j] = gb[j] + dout[i, j]
            if l > 0:
                dh = dhs[l - 1]
                _matmul(is64, dout, False, Ws[l], True, dh)
                for i in range(m):
                    for j in range(dh.shape[1]):
                        o = h[i, j]
                        if relu:
                            dh[i, j] = dh[i, j] * (one if o > zero else zero)
                        else:
                            dh[i, j] = (dh[i, j] * o) * (one - o)
                dout = dh
        for l in range(L):
            W, gW, b, gb = Ws[l], gWs[l], bs[l], gbs[l]
            for i in range(W.shape[0]):
                for j in range(W.shape[1]):
                    W[i, j] = W[i, j] - gW[i, j] * lr
            for j in range(b.shape[0]):
                b[j] = b[j] - gb[j] * lr
    return last


def _load():
    """The compiled steps (numba imported, NumPy's gemm made known to it), or the reason they
    cannot run."""
    global _compiled, _dgemm, _sgemm, _matmul
    if _compiled is not None:
        return _compiled, None
    externals, reason = blas.numba_gemm()
    if externals is None:
        return None, reason
    import numba

    _dgemm, _sgemm = externals["float64"], externals["float32"]
    _matmul = numba.njit(inline="always")(_matmul_source)
    _compiled = kernels.compile_kernel(_steps_source)
    return _compiled, None


def unavailable(model, rule, batch_size: int) -> str | None:
    """Why the compiled steps cannot train ``model`` with ``rule`` on mini-batches of
    ``batch_size`` (None: they can)."""
    from nnflow.nn import optim

    if not fc_step.supports(model):
        return "not a plain FullyConnectedNet (batchnorm, dropout or an overridden loss)"
    if rule is not optim.sgd:
        return f"update rule {getattr(rule, '__name__', rule)} (the compiled steps do optim.sgd)"
    if model.activation not in _ACTIVATIONS:
        return f"activation {model.activation} (NumPy's {model.activation} has its own last bits)"
    if model.cost not in _COSTS:
        return f"cost {model.cost} (the softmax takes NumPy's exp, whose last bits differ)"
    if model.reg:
        return "an L2 term (reg > 0)"
    return network2_kernel.shape_unavailable(batch_size, model.dims)


def settings(model):
    """What of a net the compiled steps are made for (a change makes the Solver choose again):
    the fast step's settings and the L2 term."""
    return (*fc_step.settings(model), model.reg)


class _Runner:
    """The compiled steps bound to one :class:`FCTrainingStep`'s model, data and work arrays
    for mini-batches of ``m``; the gradients go where the step's go (``step.grads``). A
    call runs at most :attr:`chunk` steps."""

    def __init__(self, kernel, step, m):
        model = step.model
        names = range(1, model.num_layers + 1)
        self.kernel, self.step, self.m = kernel, step, m
        self.chunk = max(1, OUTPUT_VALUES // (m * model.dims[-1]))
        buf = step._buffers_for(m)
        self.weights = tuple(model.params[f"W{i}"] for i in names)
        self.biases = tuple(model.params[f"b{i}"] for i in names)
        self.arrays = (tuple(step.grads[f"W{i}"] for i in names),
                       tuple(step.grads[f"b{i}"] for i in names), buf.x, tuple(buf.h), tuple(buf.dh))
        dtype = model.dtype.type
        self.flags = (model.dtype == np.float64, model.activation == "relu",
                      model.cost == "quadratic_sigmoid")
        self.scalars = (dtype(m), dtype(1.0), dtype(0.0))
        self.outputs = np.empty((0, m, model.dims[-1]), dtype=model.dtype)

    def bound_to(self, step) -> bool:
        """Whether this runner still computes ``step``: the same step and parameter arrays (a
        FlatUpdate rebinds ``params`` only to its own views, once; the Solver chooses again
        when the model's :func:`settings` change)."""
        model = step.model
        return (step is self.step
                and all(model.params[f"W{i}"] is w for i, w in enumerate(self.weights, 1))
                and all(model.params[f"b{i}"] is b for i, b in enumerate(self.biases, 1)))

    def takes_rate(self, lr) -> bool:
        """Whether ``w - lr * dw`` in the weights' dtype is NumPy's for this learning rate: a
        Python number, or a NumPy scalar that does not promote the product (a float64 rate
        on float32 weights makes NumPy multiply in float64: its steps run then)."""
        dtype = self.step.dtype
        value = kernels.operand(lr, dtype)
        return value is not None and np.result_type(value, dtype) == dtype

    def __call__(self, batches, first, last, lr, stop_on_nan):
        """Steps ``first..last-1`` (at most :attr:`chunk`) of ``batches`` ((steps, m) row
        indices of the step's data) with learning rate ``lr`` (:meth:`takes_rate`); returns
        the step it stopped before (``last``: none). Step ``s``'s outputs stay in
        :attr:`outputs` (row ``s - first``) until the next call."""
        n = self.step.X.shape[0]
        batches = np.ascontiguousarray(batches, dtype=np.int64)
        if (batches.ndim != 2 or batches.shape[1] != self.m or not 0 <= first <= last <= batches.shape[0]
                or last - first > self.chunk):
            raise ValueError(f"compiled steps: batches must be (steps, {self.m}) and 0 <= first <= "
                             f"last <= steps, last - first <= {self.chunk}, got {batches.shape}, "
                             f"{first}, {last}")
        if not self.takes_rate(lr):
            raise ValueError(f"compiled steps: learning rate {lr!r} is not taken (see takes_rate)")
        chosen = batches[first:last]
        if chosen.size and not 0 <= chosen.min() <= chosen.max() < n:
            # the kernel does not check its indices: a bad one would read outside X
            raise ValueError(f"compiled steps: batches must be indices of the {n} training "
                             f"examples, got {chosen.min()}..{chosen.max()}")
        if self.outputs.shape[0] < last - first:
            self.outputs = np.empty((last - first, *self.outputs.shape[1:]), self.outputs.dtype)
        dtype = self.step.dtype.type
        is64, relu, quadratic = self.flags
        m_scalar, one, zero = self.scalars
        return int(self.kernel(self.step.X, self.step.T, batches, first, last, self.weights,
                               self.biases, *self.arrays, self.outputs, is64, relu, quadratic,
                               bool(stop_on_nan), dtype(lr), m_scalar, one, zero))


def epoch_runner(step, rule, batch_size, planned_epochs):
    """A :class:`_Runner` of the compiled steps for ``step`` (an :class:`FCTrainingStep`)
    trained by ``rule``, or None when NumPy's step is to run: ``NNFLOW_KERNELS=numpy``, a net
    or rule the kernel does not take (:func:`unavailable`), too little planned work under
    ``auto``, or a kernel that cannot run here (numba or NumPy's gemm symbols missing, or
    other bits than NumPy's step): the last is an error under ``NNFLOW_KERNELS=numba``."""
    model = step.model
    if unavailable(model, rule, batch_size) is not None:
        return None
    kernel = network2_kernel.choose_kernel(
        "the Solver's compiled steps", _load, _LOCK, _compiled is not None,
        network2_kernel.planned_work(model.dims, step.X.shape[0], planned_epochs),
        lambda k: _agrees_with_numpy(k, model.dtype, model.activation, model.cost, model.num_layers))
    return None if kernel is None else _Runner(kernel, step, batch_size)


def _agrees_with_numpy(kernel, dtype, activation, cost, layers) -> bool:
    """Once per process, dtype, activation, cost and depth: steps of a small net with the
    kernel and with NumPy's step and ``optim.sgd`` give the same weights and losses, bit for
    bit (the products go through one BLAS, so they must; a BLAS that chose its kernels
    otherwise, or a C library's exp other than SciPy's, would show here)."""
    from nnflow.nn import optim
    from nnflow.nn.fc_net import FullyConnectedNet
    from nnflow.nn.fc_step import FCTrainingStep

    key = (np.dtype(dtype).name, activation, cost, layers)
    if key not in _verified:
        gen = np.random.default_rng(0)
        X = gen.standard_normal((23, 9)).astype(dtype)
        y = gen.integers(0, 4, 23)
        batches = np.stack([gen.permutation(23)[:20].reshape(4, 5) for _ in range(2)]).reshape(8, 5)
        hidden = list(range(layers + 3, 4, -1))  # as deep as the net to train: one compilation
        steps = [FCTrainingStep(FullyConnectedNet(hidden, input_dim=9, num_classes=4, activation=activation,
                                                  cost=cost, init="network2", dtype=dtype, seed=1), X, y)
                 for _ in range(2)]
        runner = _Runner(kernel, steps[0], 5)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), kernels.uncounted():
            runner(batches, 0, len(batches), 0.7, False)
            compiled_losses = steps[0].losses(runner.outputs[:len(batches)], batches)
            numpy_losses = []
            model = steps[1].model
            for idx in batches:
                loss, grads = steps[1].loss_and_grads(idx)
                numpy_losses.append(loss)
                for name in model.params:
                    model.params[name], _ = optim.sgd(model.params[name], grads[name],
                                                      {"learning_rate": 0.7})
        same = np.array_equal(compiled_losses, np.array(numpy_losses, dtype=dtype)) and all(
            np.array_equal(a, b) for a, b in zip(steps[0].model.params.values(),
                                                 steps[1].model.params.values(), strict=True))
        if not same:
            log.warning("the Solver's compiled steps gave other bits than NumPy's step for %s; "
                        "NumPy's step runs", key)
        _verified[key] = same
    return _verified[key]
