"""NumPy's own matrix product, callable from compiled code.

``np.matmul`` of two float matrices calls ``cblas_dgemm`` / ``cblas_sgemm`` of the BLAS
NumPy is linked against. A numba kernel that calls the same function of the same library
with the arguments NumPy would pass gets the same bits, without the microseconds of Python
and ufunc dispatch around each call (at network2's mini-batch of 10, most of a product's
time). :func:`gemm_symbols` finds the two functions.

What NumPy passes (its ``matmul`` loop, for 2-D operands whose every dimension is at least
2; it takes other routines for 1): ``cblas_?gemm(RowMajor, ta, tb, M, N, K, 1, A, lda, B,
ldb, 0, C, ldc)`` for a C-contiguous ``C`` (M, N), an operand as it is (``NoTrans``, the
leading dimension its row stride) when its rows are contiguous, and as the transpose of a
row-major matrix (``Trans``, its column stride) when its columns are.

Only a BLAS with 64-bit integers (NumPy >= 2's ``scipy-openblas64`` wheels, NumPy 1.x's
``openblas64_``) is taken: its integer width is known from the symbol's name. Anything else
(MKL, Accelerate, a 32-bit-integer OpenBLAS) gives a reason instead, and callers keep
NumPy's own products. :func:`numba_gemm` makes them callable from numba kernels.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

# CBLAS enumerations (cblas.h).
ROW_MAJOR = 101
NO_TRANS = 111
TRANS = 112

# Names of cblas_?gemm in 64-bit-integer OpenBLAS builds: NumPy >= 2 wheels (scipy-openblas64,
# symbols prefixed scipy_), NumPy 1.x wheels and openblas64_ builds (suffix 64_ only).
_SYMBOL_PATTERNS = ("scipy_cblas_{}gemm64_", "cblas_{}gemm64_")


def _numpy_extension() -> str:
    try:
        from numpy._core import _multiarray_umath as module
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as module
    return module.__file__


@functools.cache
def gemm_symbols() -> tuple[dict[str, int] | None, str]:
    """``({"float64": address, "float32": address}, name)`` of the ``cblas_?gemm`` NumPy's
    matmul calls, or ``(None, reason)``.

    Looked up through NumPy's own extension module, so the symbol is the one NumPy resolved
    (dlsym on a library searches the libraries it needs), not another BLAS in the process
    (SciPy brings its own OpenBLAS).
    """
    try:
        lib = ctypes.CDLL(_numpy_extension())
    except OSError as err:  # pragma: no cover - NumPy's module is always loadable
        return None, f"NumPy's extension module could not be opened ({err})"
    for pattern in _SYMBOL_PATTERNS:
        try:
            found = {dtype: getattr(lib, pattern.format(letter))
                     for dtype, letter in (("float64", "d"), ("float32", "s"))}
        except AttributeError:
            continue
        addresses = {dtype: ctypes.cast(fn, ctypes.c_void_p).value for dtype, fn in found.items()}
        return addresses, pattern.format("?")
    blas = _numpy_blas_name()
    return None, f"NumPy's BLAS ({blas}) has no 64-bit-integer cblas_?gemm"


_EXTERNAL_NAMES = {"float64": "nnflow_cblas_dgemm", "float32": "nnflow_cblas_sgemm"}


def numba_gemm():
    """``({"float64": dgemm, "float32": sgemm}, name)``: NumPy's ``cblas_?gemm`` as numba
    external functions, callable from a compiled kernel with the arguments of ``cblas_?gemm``
    (order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc; the arrays as
    ``arr.ctypes``), or ``(None, reason)`` when numba or the symbols are missing.

    The symbols are made known to LLVM under names of this project's, so a kernel numba
    loads from its cache in another process finds them too (once this has run there).
    """
    addresses, found = gemm_symbols()
    if addresses is None:
        return None, found
    try:
        import llvmlite.binding as llvm
        from numba import types
    except ImportError:
        return None, "numba not installed"
    externals = {}
    for dtype, symbol in _EXTERNAL_NAMES.items():
        llvm.add_symbol(symbol, addresses[dtype])
        scalar = types.float64 if dtype == "float64" else types.float32
        externals[dtype] = types.ExternalFunction(symbol, types.void(
            types.intc, types.intc, types.intc, types.int64, types.int64, types.int64, scalar,
            types.voidptr, types.int64, types.voidptr, types.int64, scalar, types.voidptr, types.int64))
    return externals, found


_THREADS_SYMBOLS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_")


@functools.cache
def _threads_function():
    try:
        lib = ctypes.CDLL(_numpy_extension())
    except OSError:  # pragma: no cover - NumPy's module is always loadable
        return None
    for name in _THREADS_SYMBOLS:
        function = getattr(lib, name, None)
        if function is not None:
            function.restype = ctypes.c_int
            function.argtypes = []
            return function
    return None


def num_threads() -> int | None:
    """The threads NumPy's OpenBLAS uses now (None: another BLAS, or not known)."""
    function = _threads_function()
    return None if function is None else int(function())


def _numpy_blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")
        return str(config["Build Dependencies"]["blas"]["name"])
    except Exception:  # noqa: BLE001 - older NumPy: the name is only informative
        return "unknown"
