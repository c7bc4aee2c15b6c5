"""Fused update rules: each rule of :mod:`nnflow.nn.optim` in one pass over the arrays.

NumPy's ufuncs make about a dozen passes over every parameter array per Adam step; the
kernels here make one, compiled by numba (an optional dependency, ``nnflow[fast]``) and
spread over the job's threads. Which implementation runs is chosen by the environment
variable ``NNFLOW_KERNELS`` (``auto``, the default: numba when installed; ``numpy``;
``numba``: fail without it), read on every step; :func:`active_path` reports it and
:func:`nnflow.runtime.environment` records it in every run.json.

Same numbers as NumPy, bit for bit: every kernel does the ufunc sequence of its NumPy
rule, operation by operation, rounding each intermediate to the array's dtype exactly
where NumPy stores into its scratch buffer (``cast(...)``), and each scalar takes the
type NumPy's promotion gives it (:func:`operand`: a Python float becomes the array's
dtype, a NumPy float64 scalar keeps float64 for that one operation, as in NumPy). No
fastmath, so no FMA contraction and no reassociation. The rules are elementwise, so the
result does not depend on how many threads share the loop.

The fused path takes C-contiguous arrays of one dtype (float32 or float64) that do not
overlap, and scalars that are Python or NumPy floats; anything else (a strided view, a
float64 gradient for float32 weights, an empty array) and arrays too small to gain
(:data:`NUMPY_BELOW`) return ``False`` and the rule runs its NumPy code, which stays
the reference the kernels are tested against.

numba is imported, and the kernels compiled (``cache=True``: once per machine, in
``__pycache__`` or numba's user cache, in memory only when neither is writable), on the
first fused step, not when this module is imported. Starting numba costs ~0.6 s per
process even with the cache (import, loading the machine code, the thread pool), more than
a short job's updates take: so under ``auto`` the NumPy rules run until the process has
done :data:`AUTO_START_AFTER` element-passes of update work (about that 0.6 s of NumPy;
counted, not timed, so the switch comes at the same step in every rerun), and the kernels
from then on. ``NNFLOW_KERNELS=numba`` starts them on the first step.
"""

from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

from nnflow.runtime import (
    KernelChoiceError,
    kernel_choice,
    numba_threads,
)
from nnflow.runtime import (
    update_kernels as active_path,
)

__all__ = ["active_path", "calls", "calls_since", "fused_sgd", "fused_sgd_momentum",
           "fused_rmsprop", "fused_adam", "NUMPY_BELOW", "SINGLE_THREAD_BELOW"]

# Below these sizes (elements) NumPy's ufuncs are faster than a kernel call, whose fixed
# cost (checks, numba's dispatch, thread setting: ~5 us) outweighs the passes it saves; the
# crossovers measured on 2 cores (float32 and float64). The result is the same either way.
NUMPY_BELOW = {"sgd": 32_768, "sgd_momentum": 16_384, "rmsprop": 4_096, "adam": 1_024}
# Below this size the serial kernel runs: the thread pool's launch costs 70-100 us a call
# on this project's 2-core VM, and an update is bound by memory, which one core nearly
# saturates (one Adam step of float32, serial / 2 threads: 4,096: 1.0 / 86 us; 1.5 M:
# 0.45 / 0.56 ms; 4.2 M: 1.6 / 1.4-1.6 ms; 8.4 M: 3.6 / 3.1-3.3 ms).
SINGLE_THREAD_BELOW = 8_388_608
# Under auto: the element-passes of NumPy update work (size x NUMPY_PASSES) after which
# numba is started; NumPy does one pass in ~0.15 ns per element (Adam on 1.79 M float32
# parameters: 2.8 ms), so this is ~0.6 s, what starting numba costs.
AUTO_START_AFTER = 4_000_000_000
NUMPY_PASSES = {"sgd": 2, "sgd_momentum": 4, "rmsprop": 9, "adam": 11}
_deferred_passes = 0  # NumPy update work done so far under auto, before numba started

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

# Each kernel is made by a function of the loop to run (numba.prange, handed in by _load:
# this module may not import numba, as nnflow.nn needs NumPy only); ``cast`` rounds to the
# array's dtype where the NumPy rule stores an intermediate result into its scratch buffer.


def _sgd_kernel(loop):
    def sgd(w, dw, lr):
        cast = w.dtype.type
        for i in loop(w.size):
            w[i] = w[i] - cast(dw[i] * lr)
    return sgd


def _sgd_momentum_kernel(loop):
    def sgd_momentum(w, dw, velocity, mu, lr):
        cast = w.dtype.type
        for i in loop(w.size):
            vi = cast(velocity[i] * mu) - cast(dw[i] * lr)
            velocity[i] = vi
            w[i] = w[i] + vi
    return sgd_momentum


def _rmsprop_kernel(loop):
    def rmsprop(w, dw, cache, one_minus_decay, decay, eps, lr):
        cast = w.dtype.type
        for i in loop(w.size):
            g = dw[i]
            ci = cast(cache[i] * decay) + cast(g * g * one_minus_decay)
            cache[i] = ci
            w[i] = w[i] - cast(g / cast(np.sqrt(ci) + eps) * lr)
    return rmsprop


def _adam_kernel(loop):
    def adam(w, dw, m, v, one_minus_b1, one_minus_b2, c1, c2):
        cast = w.dtype.type
        for i in loop(w.size):
            g = dw[i]
            mi = m[i] + cast((g - m[i]) * one_minus_b1)
            vi = v[i] + cast((g * g - v[i]) * one_minus_b2)
            m[i] = mi
            v[i] = vi
            w[i] = w[i] - mi / cast(cast(np.sqrt(vi) * c1) + c2)
    return adam


_KERNEL_SOURCES = {"sgd": _sgd_kernel, "sgd_momentum": _sgd_momentum_kernel,
                   "rmsprop": _rmsprop_kernel, "adam": _adam_kernel}
# One kernel launch at a time per process: numba's workqueue layer (the default here, see
# _start_threads) terminates the process when parallel kernels are launched from several
# Python threads at once (a user training models in a thread pool); kernels of different
# threads take turns instead.
_LAUNCH = threading.Lock()
_compiled: dict | None = None  # rule name -> numba dispatcher, once numba is loaded
_numba = None
_numba_missing = False  # auto found numba not installed


def _load():
    """The compiled kernels, or None when numba is not installed and the choice is auto."""
    global _compiled, _numba, _numba_missing
    if _compiled is not None:
        return _compiled
    try:
        import numba

        _start_threads(numba)
    except ImportError as err:
        if active_path()["path"] == "numpy":  # auto, and numba is not installed
            _numba_missing = True  # no import attempt on every later step
            return None
        raise KernelChoiceError(f"numba is installed but failed to import ({err}); set "
                                "NNFLOW_KERNELS=numpy to use the NumPy update rules") from err
    compiled = {}
    for name, source in _KERNEL_SOURCES.items():
        # (threaded, serial): the serial one for one thread, without the launch of the
        # thread pool's work (measured: 70-100 us per call even on one thread of the pool)
        compiled[name] = tuple(compile_kernel(source(loop), parallel=parallel)
                               for loop, parallel in ((numba.prange, True), (range, False)))
    _numba, _compiled = numba, compiled
    return compiled


def compile_kernel(kernel, *, parallel=False):
    """``kernel`` compiled by numba (imported by the caller), cached on disk when it can be.

    Every compiled kernel of nnflow is made here. ``error_model="numpy"``: a float
    division by zero gives inf or nan, as in NumPy, instead of a check that raises; the
    check kept LLVM from vectorising the serial loops (5x).
    """
    import numba

    options = {"parallel": parallel, "nogil": True, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(kernel)
    except RuntimeError as err:  # no writable cache directory: compile in memory
        if "cannot cache" not in str(err):
            raise
        return numba.njit(**options)(kernel)


# NumPy >= 2 (NEP 50): a Python scalar takes the array's dtype, a NumPy scalar keeps its
# own (float32 array * float64 scalar computes in float64), as numba's typing does too.
# NumPy 1.x casts NumPy scalars to the array's float dtype as well (value-based casting).
_NUMPY_SCALARS_ARE_WEAK = np.lib.NumpyVersion(np.__version__) < "2.0.0"


def _start_threads(numba):
    """Start numba's thread pool, on its own "workqueue" layer unless the user chose one.

    numba prefers OpenMP; in a process that also runs another OpenMP runtime (PyTorch in
    the benchmarks) its 2-thread kernels made every BLAS call around them slow (measured on
    2 cores, CIFAR epoch of 9 800: 4.3-5.8 s with OpenMP, 1.0-2.0 s with workqueue, NumPy
    rules 2.4-2.7 s). workqueue does not take parallel kernels launched from several Python
    threads at once (numba stops the process), so launches hold ``_LAUNCH``: updates from
    several threads take turns. ``NUMBA_THREADING_LAYER=omp`` (or ``tbb``) is left alone.
    """
    if not os.environ.get("NUMBA_THREADING_LAYER"):
        numba.config.THREADING_LAYER = "workqueue"
    numba.get_num_threads()  # starts the pool


def operand(x, dtype):
    """The scalar ``x`` as NumPy's ufuncs combine it with an array of ``dtype`` (None: not taken):
    a Python float or int as ``dtype``, a NumPy float32 or float64 scalar as itself."""
    kind = type(x)
    if kind is float or kind is int or (_NUMPY_SCALARS_ARE_WEAK and kind in _SCALARS):
        return dtype.type(x)
    return x if kind in _SCALARS else None


_SCALARS = (np.float32, np.float64)


# Update-rule calls, network2 epochs (nnflow.nn.network2_kernel) and the Solver's compiled
# epochs (nnflow.nn.fc_kernel) of this process by the path that computed them: what ran, as
# opposed to what active_path() would choose (under auto a run may start on NumPy, or stay
# on it with too little work; small arrays always take NumPy).
_CALLS = {"numba": 0, "numpy": 0}


def calls() -> dict[str, int]:
    """Update-rule calls and network2 epochs of this process so far: ``{"numba": compiled,
    "numpy": NumPy}``."""
    return dict(_CALLS)


def count_call(path: str) -> None:
    """Count one call computed by ``path`` ("numba" or "numpy") made outside this module
    (network2's epochs, :mod:`nnflow.nn.network2_kernel`; the Solver's compiled epochs,
    :mod:`nnflow.nn.fc_kernel`)."""
    _CALLS[path] += 1


@contextlib.contextmanager
def uncounted():
    """Calls made inside are not counted (a compiled kernel's check against NumPy's step is
    not the work of the run that triggered it)."""
    saved = dict(_CALLS)
    try:
        yield
    finally:
        _CALLS.update(saved)


def calls_since(before: dict[str, int]) -> dict[str, int]:
    """The calls made since ``before`` (an earlier :func:`calls`)."""
    return {path: _CALLS[path] - before.get(path, 0) for path in _CALLS}


def _run(name, arrays, scalars):
    """Run kernel ``name`` on ``arrays`` (the first and every state array are written);
    False, with nothing done, for what the kernels do not take or when NumPy is chosen.
    Counts the call under the path that computes it (:func:`calls`)."""
    fused = _try_kernel(name, arrays, scalars)
    _CALLS["numba" if fused else "numpy"] += 1
    return fused


def _try_kernel(name, arrays, scalars):
    choice = kernel_choice()
    if choice == "numpy":
        return False
    if choice == "numba" and _compiled is None:
        _load()  # asked for by name: fail on the first step, not on the first large array
    w = arrays[0]
    dtype = w.dtype
    if dtype not in _FLOATS or w.size < NUMPY_BELOW[name] or w.size == 0:
        return False
    for i, arr in enumerate(arrays):
        if not (type(arr) is np.ndarray and arr.dtype == dtype and arr.flags.c_contiguous):
            return False
        if i != 1 and not arr.flags.writeable:
            return False
        for other in arrays[i + 1:]:
            if np.may_share_memory(arr, other):
                return False
    operands = [operand(x, dtype) for x in scalars]
    if None in operands:
        return False
    kernels = _compiled
    if kernels is None:
        global _deferred_passes
        if _numba_missing:
            return False
        if _deferred_passes < AUTO_START_AFTER:  # only under auto: numba would have loaded
            _deferred_passes += w.size * NUMPY_PASSES[name]
            return False
        kernels = _load()
        if kernels is None:
            return False
    flat = [arr.reshape(-1) for arr in arrays]
    threaded, serial = kernels[name]
    threads = 1 if w.size < SINGLE_THREAD_BELOW else numba_threads()
    if threads == 1:
        serial(*flat, *operands)
        return True
    with _LAUNCH:  # workqueue aborts the process on launches from two Python threads at once
        _numba.set_num_threads(threads)
        threaded(*flat, *operands)
    return True


def fused_sgd(w, dw, lr):
    """``w -= lr * dw`` in one pass; False (nothing done) when the NumPy path must run."""
    return _run("sgd", (w, dw), (lr,))


def fused_sgd_momentum(w, dw, velocity, mu, lr):
    """``velocity = mu velocity - lr dw; w += velocity`` in one pass, or False."""
    return _run("sgd_momentum", (w, dw, velocity), (mu, lr))


def fused_rmsprop(w, dw, cache, decay, eps, lr):
    """``cache = decay cache + (1 - decay) dw^2; w -= lr dw / (sqrt(cache) + eps)``, or False."""
    return _run("rmsprop", (w, dw, cache), (1 - decay, decay, eps, lr))


def fused_adam(w, dw, m, v, b1, b2, c1, c2):
    """Adam's moment and weight update (see ``optim._adam_pass``) in one pass, or False."""
    return _run("adam", (w, dw, m, v), (1 - b1, 1 - b2, c1, c2))
