"""Where a reproduction's minutes went: its jobs' ``benchmark:`` files summed per stage.

Snakemake writes one tab-separated benchmark file per job (``s`` wall seconds, ``cpu_time``
CPU seconds, ``max_rss`` MB, ...). Every such file below a directory named ``benchmarks``
counts; its *stage* is that directory's path plus the first two directories below
``benchmarks/``: ``benchmarks/runs/mnist_cost/<label>/seed=1.tsv`` is stage
``runs/mnist_cost``, ``benchmarks/data/prepare_mnist.tsv`` stage ``data``,
``pagerank/scale/benchmarks/<case>.tsv`` stage ``pagerank/scale``.

A stage's CPU/wall is its CPU seconds over its wall seconds: near a job's ``threads``
when it computes all the time, lower when it waits (start-up, I/O, a busy machine).
The file's modification time is the job's end, so its start is that minus ``s``.

The machine's load comes from the job logs: :func:`nnflow.workflow.jobs.job` writes the
1-minute load average at a job's start and end, and the log of the job whose benchmark is
``benchmarks/<path>.tsv`` is ``logs/<path>.log`` (the workflow's rules name both alike).
The CPU seconds come from the log too when it has them (the kernel's count for the job's
process at its end): Snakemake's benchmark samples the CPU time every 0.5 s for 15 s and
every 30 s after that, so for a long job it misses up to the last 30 s. Without such a
line (a job of older code) the benchmark's value is used.
A load above the CPU count means the jobs shared the cores with other work, so their
wall times are inflated; compare CPU seconds then.

A results directory keeps each job's LAST benchmark file: after a partial rerun it holds
jobs of several invocations, and a table over all of them looks like one reproduction
but is not. :func:`job_periods` splits the jobs where more than :data:`PERIOD_GAP_S`
seconds passed without one running; the table says when there is more than one such
period, and ``--latest`` keeps the last one only.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nnflow.workflow.jobs import CPU_PATTERN, LOAD_PATTERN
from nnflow.workflow.layout import BENCHMARK_DIR, LOG_DIR

STAGE_DEPTH = 2  # directories below benchmarks/ that name a stage (runs/<experiment>)
REQUIRED_COLUMNS = ("s", "cpu_time", "max_rss")
# Seconds without a benchmarked job that separate two periods (invocations): within a
# run the next job starts as soon as one ends (every job but the downloads has a file).
PERIOD_GAP_S = 60.0


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read (the message names the file)."""


@dataclass(frozen=True)
class JobTime:
    stage: str
    path: Path
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    end: float  # seconds since the epoch (the file's modification time)
    loads: tuple[float, ...]  # the 1-minute load average at the job's start and end, if logged
    cpus: int | None  # the machine's CPU count, if logged

    @property
    def start(self) -> float:
        return self.end - self.wall_s


@dataclass(frozen=True)
class StageTime:
    stage: str
    jobs: int
    wall_s: float  # the jobs' wall seconds, summed
    cpu_s: float
    longest_s: float
    max_rss_mb: float
    span_s: float  # first job's start to last job's end
    load_mean: float | None
    load_max: float | None
    cpus: int | None

    @property
    def cpu_per_wall(self) -> float | None:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else None


def _number(path: Path, row: dict[str, str], column: str) -> float:
    text = row.get(column)
    try:
        return float(text) if text not in (None, "", "NA", "-") else 0.0
    except ValueError:
        raise BenchmarkError(f"{path}: column {column!r} must be a number, got {text!r}") from None


def read_benchmark(path: str | os.PathLike) -> dict[str, float]:
    """The last row of a Snakemake benchmark file as ``{s, cpu_time, max_rss}`` (missing
    values, written as ``NA`` or ``-`` when Snakemake could not measure them, as 0)."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        raise BenchmarkError(f"{path}: a benchmark file needs a header and a row, got no row")
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[-1]]
    if missing:
        raise BenchmarkError(f"{path}: benchmark columns {missing} missing; the header has "
                             f"{sorted(rows[-1])}")
    return {c: _number(path, rows[-1], c) for c in REQUIRED_COLUMNS}


def _since_last_start(path: str | os.PathLike) -> str | None:
    """A job log from the job's last start on (a resumed job appends to its log), or None
    without a start (no log, or a log of older code)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    starts = [m.start() for m in LOAD_PATTERN.finditer(text) if m["when"] == "start"]
    return text[starts[-1]:] if starts else None


def _loads_in(segment: str | None) -> tuple[tuple[float, ...], int | None]:
    samples = list(LOAD_PATTERN.finditer(segment or ""))
    if not samples:
        return (), None
    return tuple(float(m["load"]) for m in samples), max(int(m["cpus"]) for m in samples)


def _cpu_seconds_in(segment: str | None) -> float | None:
    found = list(CPU_PATTERN.finditer(segment or ""))
    return float(found[-1]["seconds"]) if found else None


def log_loads(path: str | os.PathLike) -> tuple[tuple[float, ...], int | None]:
    """The load averages a job log records at the job's last start (and its end), and the
    CPU count it states; ``((), None)`` without them (no log, or a log of older code).
    A resumed job appends to its log, so only the samples from its last start count."""
    return _loads_in(_since_last_start(path))


def log_cpu_seconds(path: str | os.PathLike) -> float | None:
    """The CPU seconds a job log records at the end of the job's last start (None without)."""
    return _cpu_seconds_in(_since_last_start(path))


def stage_of(relative: Path) -> str:
    """The stage of a benchmark file given by its path below the results directory."""
    parts = relative.parts
    at = parts.index(BENCHMARK_DIR)
    stage = parts[:at] + parts[at + 1:-1][:STAGE_DEPTH]
    return "/".join(stage) or "."


def job_times(results: str | os.PathLike) -> list[JobTime]:
    """Every job benchmark file below ``results``, with its stage and logged load."""
    results = Path(results)
    if not results.is_dir():
        raise BenchmarkError(f"{results}: not a directory (expected a results directory)")
    jobs = []
    for path in sorted(results.rglob("*.tsv")):
        relative = path.relative_to(results)
        if BENCHMARK_DIR not in relative.parts[:-1]:
            continue
        values = read_benchmark(path)
        loads, cpus, cpu_s = (), None, None
        if relative.parts[0] == BENCHMARK_DIR:  # a workflow job's, with a log named alike
            log = _since_last_start(results / LOG_DIR / Path(*relative.parts[1:]).with_suffix(".log"))
            (loads, cpus), cpu_s = _loads_in(log), _cpu_seconds_in(log)
        jobs.append(JobTime(stage_of(relative), path, values["s"],
                            values["cpu_time"] if cpu_s is None else cpu_s,
                            values["max_rss"], path.stat().st_mtime, loads, cpus))
    if not jobs:
        raise BenchmarkError(f"{results}: no benchmark files (*.tsv below a {BENCHMARK_DIR}/ "
                             "directory); run the workflow first")
    return jobs


def summarise(stage: str, jobs: list[JobTime]) -> StageTime:
    loads = [load for job in jobs for load in job.loads]
    cpus = [job.cpus for job in jobs if job.cpus is not None]
    return StageTime(
        stage=stage,
        jobs=len(jobs),
        wall_s=sum(j.wall_s for j in jobs),
        cpu_s=sum(j.cpu_s for j in jobs),
        longest_s=max(j.wall_s for j in jobs),
        max_rss_mb=max(j.max_rss_mb for j in jobs),
        span_s=max(j.end for j in jobs) - min(j.start for j in jobs),
        load_mean=sum(loads) / len(loads) if loads else None,
        load_max=max(loads) if loads else None,
        cpus=max(cpus) if cpus else None,
    )


def job_periods(jobs: list[JobTime], gap_s: float = PERIOD_GAP_S) -> list[list[JobTime]]:
    """The jobs split into periods of work: sorted by start, a new period begins where a
    job starts more than ``gap_s`` seconds after every earlier job ended."""
    periods: list[list[JobTime]] = []
    end = None
    for job in sorted(jobs, key=lambda j: j.start):
        if end is None or job.start > end + gap_s:
            periods.append([])
            end = job.end
        periods[-1].append(job)
        end = max(end, job.end)
    return periods


def stage_times(results: str | os.PathLike, *, latest: bool = False) -> list[StageTime]:
    """One :class:`StageTime` per stage, in order of the stages' first job start, then a
    ``total`` over every job (its ``span_s`` is the benchmarked jobs' wall-clock span).
    ``latest``: only the jobs of the last period (:func:`job_periods`)."""
    jobs = job_times(results)
    if latest:
        jobs = job_periods(jobs)[-1]
    return summarise_stages(jobs)


def summarise_stages(jobs: list[JobTime]) -> list[StageTime]:
    """:func:`stage_times` of the given jobs."""
    by_stage: dict[str, list[JobTime]] = {}
    for job in sorted(jobs, key=lambda j: j.start):
        by_stage.setdefault(job.stage, []).append(job)
    return [summarise(stage, members) for stage, members in by_stage.items()] + [summarise("total", jobs)]


def _fixed(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _clock(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def periods_note(periods: list[list[JobTime]]) -> str:
    """A warning when the jobs ran in more than one period ("" otherwise)."""
    if len(periods) < 2:
        return ""
    spans = "; ".join(f"{_clock(min(j.start for j in p))} to {_clock(max(j.end for j in p))}: "
                      f"{len(p)} job{'s' * (len(p) != 1)}" for p in periods)
    return (f"\nwarning: these jobs ran in {len(periods)} separate periods (more than "
            f"{PERIOD_GAP_S:.0f} s without a job between them): {spans}. The rows mix them; "
            "`--latest` keeps the last period only.\n")


def stages_markdown(stages: list[StageTime], periods: list[list[JobTime]] | None = None) -> str:
    """A Markdown table of :func:`stage_times` for the README: seconds rounded to 1 s,
    CPU/wall to 0.01, the load as mean / max of the logged samples; ``periods`` (of the
    tabled jobs, :func:`job_periods`) adds a warning when there is more than one."""
    header = ["stage", "jobs", "wall s", "CPU s", "CPU/wall", "longest job s", "span s",
              "peak RSS MB", "load mean / max"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in stages:
        name = f"**{s.stage}**" if s.stage == "total" else s.stage
        load = "n/a" if s.load_mean is None else f"{s.load_mean:.1f} / {s.load_max:.1f}"
        cells = [name, str(s.jobs), _fixed(s.wall_s), _fixed(s.cpu_s), _fixed(s.cpu_per_wall, 2),
                 _fixed(s.longest_s), _fixed(s.span_s), _fixed(s.max_rss_mb), load]
        lines.append("| " + " | ".join(cells) + " |")
    cpus = max((s.cpus for s in stages if s.cpus is not None), default=None)
    note = ("" if cpus is None else
            f"\nload: the machine's 1-minute load average at the jobs' start and end ({cpus} CPUs)\n")
    return "\n".join(lines) + "\n" + note + periods_note(periods or [])

