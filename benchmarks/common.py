"""Shared helpers of the benchmarks: interleaved timing, environment line, GEMM peak.

Every comparison is measured IN THE SAME RUN and INTERLEAVED: repetition r runs
contender A, then B, then C, ... so that a change in the machine's load (the
benchmark machines are shared) hits every contender alike. Each figure is the
min and the median over the repetitions; ratios are taken between medians of
the same run (and, as a cross-check, between minima). Every measurement also records the
machine's conditions while it ran and its spread (noise.py); a row they make unreliable
is marked so and reports no ratio.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:  # run as a script (benchmarks/ on sys.path) or imported as benchmarks.common
    import noise
except ImportError:  # pragma: no cover
    from benchmarks import noise

from nnflow.nn import kernels

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


@contextlib.contextmanager
def environ(**values):
    """Environment variables set for the duration (the kernels read them every step)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def with_kernels(path, fn):
    """``fn`` run with nnflow's kernels on ``path``: "numba" (the fused update rules and
    network2's compiled epoch from the first step, where ``auto`` would start them only
    after enough work) or "numpy" (NumPy's ufuncs and products)."""
    def run():
        with environ(NNFLOW_KERNELS=path):
            return fn()

    return run


# The compiled kernels when numba is installed (the "nnflow" contenders), else NumPy.
FUSED = "numba" if kernels.active_path()["path"] == "numba" else "numpy"


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int,
                setup: dict[str, Callable[[], Callable[[], object]]] | None = None,
                warmup: bool = True) -> dict[str, noise.Samples]:
    """Time each contender ``repeats`` times, interleaved (A B C A B C ...).

    ``contenders[name]`` is a zero-argument callable timed as a whole. With
    ``setup[name]`` given, it is called (untimed) before every repetition and
    returns the callable to time (fresh model / optimiser state per repetition).
    Each contender's times carry the machine's conditions during the whole interleaved
    measurement (``.conditions``, see noise.py).
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    with noise.Watch() as watch:
        if warmup:  # a first run loads what a process loads once (numba's kernels, caches)
            for name, fn in contenders.items():
                (setup[name]() if setup and name in setup else fn)()
        for _ in range(repeats):
            for name, fn in contenders.items():
                run = setup[name]() if setup and name in setup else fn
                times[name].append(timed(run))
    return {name: noise.samples(ts, watch.conditions) for name, ts in times.items()}


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


MAX_SPREAD = noise.SPREAD_LIMIT  # run.py --max-spread sets it


def row(bench: str, case: str, tool: str, ts: list[float], *, dtype: str = "", threads=None,
        ref: list[float] | None = None, ref_name: str = "", target: float | None = None,
        **extra) -> dict:
    """One result row: min/median seconds, ratio of medians against ``ref``.

    ``spread`` (max/min of the repetitions, also ``ref_spread``) and the machine's conditions
    during the measurement decide ``reliable``; an unreliable row keeps its ratio only as
    ``ratio_median_unreliable`` and meets no target (``meets`` None): noise is not a result.
    """
    tmin, tmed = summary(ts)
    conditions = noise.conditions_of(ts)
    if ref is not None and noise.conditions_of(ref) is not None:
        conditions = noise.conditions_of(ref).merged(conditions)
    r = {"bench": bench, "case": case, "tool": tool, "dtype": dtype, "threads": threads,
         "repeats": len(ts), "min_s": tmin, "median_s": tmed, "ratio_to": ref_name,
         "ratio_median": None, "ratio_min": None, "target": target, "meets": None,
         "blas_kernel": blas_kernel(), "spread": noise.spread(ts),
         "ref_spread": noise.spread(ref) if ref is not None else None}
    if ref is not None:
        rmin, rmed = summary(ref)
        r["ratio_median"] = tmed / rmed
        r["ratio_min"] = tmin / rmin
        if target is not None:
            r["meets"] = bool(r["ratio_median"] <= target)
    r.update(extra)
    return judge(r, conditions)


# The figures an unreliable row must not report; each is kept as <name>_unreliable.
REPORTED = ("ratio_median", "ratio_min", "peak_fraction_median", "peak_fraction_best", "share")
VERDICTS = ("meets", "meets_peak")


def judge(r: dict, conditions: noise.Conditions | None) -> dict:
    """Set ``reliable`` / ``unreliable_reason`` / ``load_max`` / ``foreign_cpu`` of a row from
    its spreads and ``conditions``; an unreliable row's figures move to ``*_unreliable``."""
    r["load_max"] = conditions.load_max if conditions else None
    r["foreign_cpu"] = conditions.foreign_cpu if conditions else None
    r["conditions_known"] = conditions is not None
    reason = noise.verdict([r.get("spread"), r.get("ref_spread")], conditions, MAX_SPREAD)
    r["reliable"] = reason is None
    r["unreliable_reason"] = reason
    if reason is not None:
        for key in REPORTED:
            if r.get(key) is not None:
                r[f"{key}_unreliable"] = r[key]
                r[key] = None
        for key in VERDICTS:
            if key in r:
                r[key] = None
    return r
