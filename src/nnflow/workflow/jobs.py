"""Glue between a Snakemake ``script:`` and the package.

Scripts stay a few lines long: they open :func:`job`, which sends stdout and
stderr to the rule's log, sets up logging, limits BLAS threads to the job's
``threads`` and reports progress on the terminal (:mod:`nnflow.progress`: the
stderr the job was started with, labelled with the rule and its wildcards); then
they call one nnflow function. Every job's log says what the job read (first
line) and what it wrote (last line), so no log is empty, whatever the function
logs itself. A ``script:`` job's process ends right after that last line
(:func:`_end_process`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from nnflow.progress import Progress
from nnflow.runtime import limit_threads

log = logging.getLogger("nnflow.workflow.jobs")
SHOWN_FILES = 5  # a job with more inputs (a table of every run) names the first ones and counts
# The machine's load at a job's start and end, in its log (read back by nnflow.compare.stages).
LOAD_LINE = "load average %.2f at %s of the job (%d CPUs)"
LOAD_PATTERN = re.compile(r"load average (?P<load>\d+(?:\.\d+)?) at (?P<when>start|end) of the job "
                          r"\((?P<cpus>\d+) CPUs\)")
# The CPU time of the job's process (and its waited-for children) from start to end, counted
# by the kernel: exact, where Snakemake's benchmark samples it (every 30 s after 15 s).
CPU_LINE = "cpu time %.2f s of the job's process (user %.2f, system %.2f, children %.2f)"
CPU_PATTERN = re.compile(r"cpu time (?P<seconds>\d+(?:\.\d+)?) s of the job's process")


def log_load(when: str) -> None:
    """Log the 1-minute load average: above the CPU count, the job shared the cores."""
    log.info(LOAD_LINE, os.getloadavg()[0], when, os.cpu_count() or 1)


def log_cpu_time() -> None:
    """Log the CPU seconds this process (imports included) and its children have used."""
    t = os.times()
    children = t.children_user + t.children_system
    log.info(CPU_LINE, t.user + t.system + children, t.user, t.system, children)


def file_list(paths: Any, sizes: bool = False) -> str:
    """``paths`` for a log line: "2 files: a (1.2 kB), b (3 kB)", the first few of many."""
    paths = [str(p) for p in paths]
    if not paths:
        return "no files"
    shown = [f"{p} ({_size(p)})" if sizes else p for p in paths[:SHOWN_FILES]]
    more = f", ... ({len(paths) - SHOWN_FILES} more)" if len(paths) > SHOWN_FILES else ""
    return f"{len(paths)} file{'s' * (len(paths) != 1)}: {', '.join(shown)}{more}"


def _size(path: str) -> str:
    try:
        n = os.path.getsize(path)
    except OSError:
        return "missing"
    return f"{n} B" if n < 1000 else f"{n / 1000:.1f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB"


def job_label(smk: Any) -> str:
    """A job's name in progress lines: its rule and wildcard values, e.g.
    "train_network2 mnist_cost/cost=quadratic/seed=1"."""
    rule = getattr(smk, "rule", None) or "job"
    values = [str(v) for v in (getattr(smk, "wildcards", None) or [])]
    return f"{rule} {'/'.join(values)}" if values else rule


@contextlib.contextmanager
def job(smk: Any) -> Iterator[Any]:
    """Context for the body of a Snakemake script: log redirection, thread limits and the
    job's progress reporter (:func:`nnflow.progress.current` inside the block)."""
    log_path = smk.log[0] if len(smk.log) else None
    stream = open(log_path, "a", buffering=1, encoding="utf-8") if log_path else None
    old_out, old_err = sys.stdout, sys.stderr
    if stream is not None:
        sys.stdout = sys.stderr = stream
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    try:
        limit_threads(int(getattr(smk, "threads", 1) or 1))
        progress = Progress.from_environment(job_label(smk), old_err)  # the terminal, not the log
        rule = getattr(smk, "rule", None) or "job"
        log.info("%s: reading %s", rule, file_list(smk.input))
        log_load("start")
        with progress:
            yield smk
        log_load("end")
        log_cpu_time()
        log.info("%s: wrote %s", rule, file_list(smk.output, sizes=True))
    except BaseException:
        log.exception("job failed")
        raise
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        if stream is not None:
            stream.close()
    if _is_script_job(smk):
        _end_process()


def _is_script_job(smk: Any) -> bool:
    """Whether ``smk`` is Snakemake's own object: the block ran in a ``script:`` job's process."""
    containers = sys.modules.get("snakemake.iocontainers")
    return containers is not None and isinstance(smk, getattr(containers, "Snakemake", ()))


def _end_process() -> None:
    """End a script job's process as soon as its work is done: its outputs are written and
    closed (atomically), its log closed, and nothing runs after the script's ``with job(...)``
    block; the interpreter's teardown only frees memory, and cost 0.35 s of CPU time in a job
    that had loaded numba (LLVM's shutdown), 0.1 s in the others: ~16 CPU-seconds of the
    reproduction's 80 jobs. Buffers are flushed first, as a normal exit would."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
