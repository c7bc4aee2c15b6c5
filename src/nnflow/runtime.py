"""What a result was computed with: package versions, BLAS, threads, platform, git commit."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import nnflow
from nnflow.lockfile import installed_distributions, installed_packages, lock_record

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)

# Which implementation of the update rules (nnflow.nn.optim) runs: the fused one-pass
# kernels compiled by numba, or NumPy's ufuncs; "auto" takes numba when it is installed.
KERNELS_VARIABLE = "NNFLOW_KERNELS"
KERNEL_CHOICES = ("auto", "numpy", "numba")
_CPU_COUNT = os.cpu_count() or 1  # read once: os.cpu_count() costs microseconds


class KernelChoiceError(ValueError):
    """NNFLOW_KERNELS holds a value that is not a choice, or asks for a missing numba."""


def kernel_choice() -> str:
    """The update-kernel choice from ``NNFLOW_KERNELS`` (``auto`` when unset)."""
    choice = os.environ.get(KERNELS_VARIABLE) or "auto"
    if choice not in KERNEL_CHOICES:
        raise KernelChoiceError(f"environment variable {KERNELS_VARIABLE}={choice!r} is not a choice; "
                                f"expected one of {', '.join(KERNEL_CHOICES)}")
    return choice


def numba_threads() -> int:
    """Threads the fused kernels may use: the job's budget, never more.

    The budget is ``OMP_NUM_THREADS`` (set by :func:`limit_threads`), else the CPU count;
    capped at the pool numba started. (Not ``NUMBA_NUM_THREADS``: numba re-reads that and
    stops when it changes after its pool started.)
    """
    value = os.environ.get("OMP_NUM_THREADS") or str(_CPU_COUNT)
    try:
        budget = int(value)
    except ValueError:
        raise KernelChoiceError(f"environment variable OMP_NUM_THREADS={value!r} is not an integer") \
            from None
    numba = sys.modules.get("numba")
    if numba is not None:
        budget = min(budget, numba.config.NUMBA_NUM_THREADS)
    return max(budget, 1)


def update_kernels() -> dict[str, Any]:
    """Which update-rule implementation runs in this process, and why.

    ``{"path": "numba", "numba": version, "threads": n}`` (fused one-pass kernels on at
    most ``n`` threads) or ``{"path": "numpy", "reason": ...}``. Raises
    :class:`KernelChoiceError` for a bad ``NNFLOW_KERNELS`` or ``numba`` without numba.
    Under ``auto`` the kernels take over from the (bit-identical) NumPy rules once the
    process has done enough update work to repay starting numba (nnflow.nn.kernels).
    """
    choice = kernel_choice()
    if choice == "numpy":
        return {"path": "numpy", "reason": f"{KERNELS_VARIABLE}=numpy"}
    if importlib.util.find_spec("numba") is None:
        if choice == "numba":
            raise KernelChoiceError(f"environment variable {KERNELS_VARIABLE}=numba, but numba is not "
                                    "installed (pip install 'nnflow[fast]')")
        return {"path": "numpy", "reason": "numba not installed"}
    numba = sys.modules.get("numba")
    version = numba.__version__ if numba is not None else _version("numba")
    return {"path": "numba", "numba": version, "threads": numba_threads()}


def limit_threads(n: int) -> None:
    """Make BLAS/OpenMP use ``n`` threads in this process.

    Sets the environment variables (for child processes and libraries not yet
    loaded) and, when threadpoolctl is installed, also limits the pools of the
    already-loaded BLAS, so a job with ``threads: 1`` does not oversubscribe a
    node on which the scheduler placed other jobs. ``OMP_NUM_THREADS`` is also the
    budget of the fused update kernels (:func:`numba_threads`), read on every call.
    """
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a workflow dependency
        return
    threadpool_limits(limits=n)


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries loaded, their versions, kernels and thread counts (threadpoolctl).

    OpenMP runtimes are left out: numba's (the fused update kernels, started only in some
    jobs) would make one environment look like two; their threads are in ``update_kernels``.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return []
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info() if pool.get("user_api") == "blas"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit(directory: str | os.PathLike = ".") -> str | None:
    """The commit of the work tree at ``directory`` (with ``-dirty``), or None outside git."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=Path(directory),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(workdir: str | os.PathLike | None = None) -> dict[str, Any]:
    """A JSON-serialisable record of the software and hardware environment.

    ``git_commit`` is that of ``workdir``, by default of the checkout the nnflow
    package is imported from (the workflow's code, wherever the jobs run).
    ``lock`` is the lock file this environment should match, its sha256 and how the
    installed distributions differ from it (:func:`nnflow.lockfile.lock_record`; ``None``
    without a lock), ``installed`` the ``name==version`` of every installed distribution,
    ``update_kernels`` which implementation of the update rules runs (:func:`update_kernels`).
    """
    if workdir is None:
        workdir = Path(nnflow.__file__).resolve().parent
    installed = installed_distributions()
    return {
        "nnflow": nnflow.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "packages": {
            name: _version(name)
            for name in ("numpy", "scipy", "pandas", "matplotlib", "snakemake", "threadpoolctl", "numba")
        },
        "numpy": np.__version__,
        "blas": blas_info(),
        "thread_env": {var: os.environ.get(var) for var in THREAD_VARIABLES},
        "update_kernels": update_kernels(),
        "git_commit": git_commit(workdir),
        "lock": lock_record(installed),
        "installed": installed_packages(installed),
    }
