"""Live progress of a workflow job on the terminal: which job, epoch i/N, the latest metric, an ETA.

A workflow job (:func:`nnflow.workflow.jobs.job`) sends its stdout and stderr to its log
file; its progress lines go to the stream it was started with instead — under Snakemake
the terminal that runs the workflow, since Snakemake passes its own stderr down to script
jobs (on a cluster: the job's output file). One line per job says, e.g.::

    [nnflow] train_network2 mnist_cost/eta=3.0/seed=1: epoch 12/30, test accuracy 95.10%, ETA 38s
    [nnflow] train_network2 mnist_cost/eta=3.0/seed=1: done: test accuracy 95.54% after 30 epochs, 1m10s

Each line is complete in itself and starts with the job's rule and wildcards, so the
lines of jobs running at once can interleave and stay readable. A job writes

- an epoch line at most once per ``interval`` seconds (the newest epoch; those in
  between are only in the log),
- a "still running" line after ``heartbeat`` seconds without a line (a long epoch, data
  preparation, a figure), so a running job is never silent for longer,
- one line when a training run finishes, with its headline metric (never held back).

The environment decides (:meth:`Progress.from_environment`): ``NNFLOW_PROGRESS=1`` on,
``0`` off, ``auto`` or unset: on when the stream is a terminal — so CI logs and output
captured by a program (the test suite's Snakemake runs) get none. ``NNFLOW_PROGRESS_INTERVAL``
sets ``interval`` (seconds, default 5).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TextIO

PREFIX = "[nnflow]"
SWITCH = "NNFLOW_PROGRESS"
INTERVAL = "NNFLOW_PROGRESS_INTERVAL"
SWITCH_VALUES = {"1": True, "0": False, "auto": None, "": None}
DEFAULT_INTERVAL = 5.0
DEFAULT_HEARTBEAT = 20.0  # a job is never silent longer than this plus one tick (TICK)
TICK = 1.0  # how often the background thread checks whether a line is due


def duration(seconds: float) -> str:
    """Seconds for a progress line: "8s", "3m05s", "1h02m"."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _switch(environ: Mapping[str, str], stream: TextIO | None) -> bool:
    value = environ.get(SWITCH, "auto").strip().lower()
    if value not in SWITCH_VALUES:
        raise ValueError(f"environment variable {SWITCH}={environ[SWITCH]!r}: expected 1 (progress lines "
                         "on), 0 (off) or auto (on when the output is a terminal)")
    on = SWITCH_VALUES[value]
    if on is None:
        isatty = getattr(stream, "isatty", None)
        on = bool(isatty and isatty())
    return on and stream is not None


def _interval(environ: Mapping[str, str]) -> float:
    text = environ.get(INTERVAL, "")
    if not text.strip():
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"environment variable {INTERVAL}={text!r}: expected a number of seconds > 0")
    return value


class Progress:
    """The progress lines of one job, written to ``stream`` (``None``: a silent reporter).

    The job reports through :meth:`epochs` (training of ``total`` epochs begins),
    :meth:`epoch` (an epoch ended, with its metric) and :meth:`finish` (the run's last
    line). Whether a line is due is decided by :meth:`tick`, which each report calls
    and, inside ``with progress:``, a background thread calls every :data:`TICK` seconds
    (so a job stuck in one long epoch still says so). ``clock`` (seconds) is replaceable
    for tests.

    The ETA is the mean time of the epochs trained by this process times the epochs
    left (a resumed run's earlier epochs did not take time here).
    """

    def __init__(self, label: str, stream: TextIO | None, interval: float = DEFAULT_INTERVAL,
                 heartbeat: float = DEFAULT_HEARTBEAT, clock: Callable[[], float] = time.monotonic):
        if not interval > 0:
            raise ValueError(f"Progress: interval must be > 0 seconds, got {interval!r}")
        self.label = label
        self.stream = stream
        self.interval = float(interval)
        self.heartbeat = max(float(heartbeat), self.interval)
        self.clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: Progress | None = None  # the reporter current() gave before `with self:`
        self._started = self._last_line = clock()
        self._total: int | None = None
        self._first_done = self._done = 0
        self._epochs_started = self._last_epoch = self._started
        self._metric = ""
        self._news = False  # an epoch ended since the last line
        self._finished = False

    @classmethod
    def from_environment(cls, label: str, stream: TextIO | None,
                         environ: Mapping[str, str] | None = None) -> Progress:
        """A reporter configured by ``NNFLOW_PROGRESS`` and ``NNFLOW_PROGRESS_INTERVAL``
        (see the module docstring); silent when they say off. A bad value is a ValueError
        naming the variable."""
        environ = os.environ if environ is None else environ
        interval = _interval(environ)
        return cls(label, stream if _switch(environ, stream) else None, interval=interval)

    @classmethod
    def silent(cls) -> Progress:
        return cls("", None)

    @property
    def enabled(self) -> bool:
        return self.stream is not None

    # ------------------------------------------------------------------ reports

    def epochs(self, total: int, done: int = 0) -> None:
        """Training of ``total`` epochs begins now, ``done`` of them already trained (resumed)."""
        with self._lock:
            self._total, self._first_done, self._done = int(total), int(done), int(done)
            self._epochs_started = self._last_epoch = self.clock()
        self.tick()

    def epoch(self, done: int, metric: str = "") -> None:
        """Epoch ``done`` (1-based) of the total has ended; ``metric`` e.g. "test accuracy 95.10%"."""
        with self._lock:
            self._done, self._metric, self._news = int(done), metric, True
            self._last_epoch = self.clock()
        self.tick()

    def finish(self, text: str) -> None:
        """The job's last line (a finished run and its headline metric), written at once."""
        with self._lock:
            self._finished = True
            self._write(text)

    def tick(self) -> None:
        """Write the current state if a line is due: news and ``interval`` seconds since the
        last line, or ``heartbeat`` seconds of silence."""
        with self._lock:
            if self.stream is None or self._finished:
                return
            now = self.clock()
            since = now - self._last_line
            if (self._news and since >= self.interval) or since >= self.heartbeat:
                self._write(self._state(now))

    # ------------------------------------------------------------------ lines

    def _state(self, now: float) -> str:
        if self._total is None:
            return f"running for {duration(now - self._started)}"
        done, total = self._done, self._total
        trained = done - self._first_done
        since_epoch = duration(now - self._last_epoch)
        if trained == 0 and done < total:
            return f"epoch {done + 1}/{total} running for {since_epoch}"
        parts = [f"epoch {done}/{total}", *([self._metric] if self._metric and trained else [])]
        if done < total:
            per_epoch = (self._last_epoch - self._epochs_started) / trained
            parts.append(f"ETA {duration(per_epoch * (total - done))}")
        text = ", ".join(parts)
        if self._news or done >= total:
            return text
        return f"{text}; epoch {done + 1} running for {since_epoch}"

    def _write(self, text: str) -> None:
        self._news = False
        self._last_line = self.clock()
        if self.stream is None:
            return
        try:
            self.stream.write(f"{PREFIX} {self.label}: {text}\n")  # one write: lines of jobs don't mix
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal must not fail the job
            self.stream = None

    # ------------------------------------------------------------------ background thread

    def __enter__(self) -> Progress:
        global _current
        self._previous = _current
        _current = self
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="nnflow-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _current
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        _current = self._previous

    def _run(self) -> None:
        while not self._stop.wait(min(TICK, self.interval)):
            self.tick()


_current: Progress | None = None


def current() -> Progress:
    """The reporter of the innermost ``with progress:`` block (the running job's), else a silent one."""
    return _current if _current is not None else Progress.silent()
