"""What a result was computed with: package versions, BLAS, threads, platform, git commit."""

from __future__ import annotations

import os
import platform
import subprocess
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


def limit_threads(n: int) -> None:
    """Make BLAS/OpenMP use ``n`` threads in this process.

    Sets the environment variables (for child processes and libraries not yet
    loaded) and, when threadpoolctl is installed, also limits the pools of the
    already-loaded BLAS, so a job with ``threads: 1`` does not oversubscribe a
    node on which the scheduler placed other jobs.
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
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return []
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


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
    without a lock), ``installed`` the ``name==version`` of every installed distribution.
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
            for name in ("numpy", "scipy", "pandas", "matplotlib", "snakemake", "threadpoolctl")
        },
        "numpy": np.__version__,
        "blas": blas_info(),
        "thread_env": {var: os.environ.get(var) for var in THREAD_VARIABLES},
        "git_commit": git_commit(workdir),
        "lock": lock_record(installed),
        "installed": installed_packages(installed),
    }
