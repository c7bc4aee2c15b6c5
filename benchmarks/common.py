"""Shared helpers of the benchmarks: interleaved timing, environment line, GEMM peak.

Every comparison is measured IN THE SAME RUN and INTERLEAVED: repetition r runs
contender A, then B, then C, ... so that a change in the machine's load (the
benchmark machines are shared) hits every contender alike. Each figure is the
min and the median over the repetitions; ratios are taken between medians of
the same run (and, as a cross-check, between minima).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int,
                setup: dict[str, Callable[[], Callable[[], object]]] | None = None,
                warmup: bool = True) -> dict[str, list[float]]:
    """Time each contender ``repeats`` times, interleaved (A B C A B C ...).

    ``contenders[name]`` is a zero-argument callable timed as a whole. With
    ``setup[name]`` given, it is called (untimed) before every repetition and
    returns the callable to time (fresh model / optimiser state per repetition).
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    if warmup:
        for name, fn in contenders.items():
            if setup and name in setup:
                continue  # a setup-based contender warms up in its own first repetition
            fn()
    for _ in range(repeats):
        for name, fn in contenders.items():
            run = setup[name]() if setup and name in setup else fn
            times[name].append(timed(run))
    return times


def summary(ts: list[float]) -> tuple[float, float]:
    return min(ts), statistics.median(ts)


def gemm_seconds(n: int, dtype, repeats: int = 3) -> float:
    """Best time of one ``n x n @ n x n`` matmul (BLAS, all its threads)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=c)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_gflops(n: int, dtype, repeats: int = 3) -> float:
    return 2 * n**3 / gemm_seconds(n, dtype, repeats) / 1e9


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_line() -> str:
    """One line: CPU, BLAS library/version/kernel/threads, the pinning variables."""
    from nnflow.runtime import blas_info

    parts = []
    for pool in blas_info():
        if pool.get("internal_api") in ("openblas", "mkl", "blis"):
            parts.append(f"{pool['internal_api']} {pool.get('version')} kernel "
                         f"{pool.get('architecture')} ({pool.get('num_threads')} threads)")
        else:
            parts.append(f"{pool.get('internal_api')} ({pool.get('num_threads')} threads)")
    pins = ", ".join(f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                      "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                     if os.environ.get(v))
    torch_part = ""
    try:
        import torch

        torch_part = (f"; torch {torch.__version__} ({torch.get_num_threads()} threads, "
                      f"{torch.backends.cpu.get_cpu_capability()})")
    except ImportError:
        pass
    return (f"{cpu_model()}, {os.cpu_count()} CPUs; numpy {np.__version__}: "
            f"{'; '.join(parts) or 'BLAS unknown'}; "
            f"pinning: {pins or 'none (OPENBLAS_CORETYPE/L2_SIZE unset)'}{torch_part}")


def blas_kernel() -> str:
    from nnflow.runtime import blas_info

    for pool in blas_info():
        if pool.get("internal_api") in ("openblas", "mkl", "blis"):
            return f"{pool['internal_api']}:{pool.get('architecture')}"
    return "unknown"


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def row(bench: str, case: str, tool: str, ts: list[float], *, dtype: str = "", threads=None,
        ref: list[float] | None = None, ref_name: str = "", target: float | None = None,
        **extra) -> dict:
    """One result row: min/median seconds, ratio of medians against ``ref``."""
    tmin, tmed = summary(ts)
    r = {"bench": bench, "case": case, "tool": tool, "dtype": dtype, "threads": threads,
         "repeats": len(ts), "min_s": tmin, "median_s": tmed, "ratio_to": ref_name,
         "ratio_median": None, "ratio_min": None, "target": target, "meets": None,
         "blas_kernel": blas_kernel()}
    if ref is not None:
        rmin, rmed = summary(ref)
        r["ratio_median"] = tmed / rmed
        r["ratio_min"] = tmin / rmin
        if target is not None:
            r["meets"] = bool(r["ratio_median"] <= target)
    r.update(extra)
    return r
