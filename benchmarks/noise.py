"""Is a measurement trustworthy? The machine's conditions while it ran, and the verdict.

A benchmark on a shared machine is only as good as the quiet it ran in. Two signs that it
was not quiet, both recorded for every measurement (``Watch``) and judged by ``verdict``:

- **spread**: max / min of one contender's repetitions. Interleaving (common.interleaved)
  makes a *steady* competitor hit every contender alike, but a competitor that comes and goes
  hits some repetitions and not others, and shows up here.
- **the machine's load**: the 1-minute load average (``/proc/loadavg``, sampled every
  ``SAMPLE_S`` seconds; its maximum over the measurement) against the number of cores, and
  the CPU time that *other* processes (and the hypervisor, as steal time) took during the
  measurement, from ``/proc/stat`` minus this process's own CPU time, in cores.

The load average counts this benchmark's own busy threads too: a 2-thread contender alone
keeps it near 2 on a 2-core machine, which is not a competitor. ``verdict`` therefore calls
a measurement unreliable when the load average exceeded the cores *and* other processes took
CPU time (more than ``FOREIGN_CPU_FLOOR`` cores, the background of an idle machine), or when
other processes alone took more than ``FOREIGN_CPU_LIMIT`` cores, or when the spread exceeded
``SPREAD_LIMIT``. Thresholds are settings of ``run.py`` (``--max-spread``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass

# On this project's quiet 2-core VM (other processes < 0.03 cores) repetitions of a few
# tenths of a second spread up to ~1.45 (max/min of five); above 1.5 something intervened.
SPREAD_LIMIT = 1.5
FOREIGN_CPU_LIMIT = 0.25
FOREIGN_CPU_FLOOR = 0.05
SAMPLE_S = 0.5


@dataclass(frozen=True)
class Conditions:
    """The machine while a measurement ran: wall seconds, max 1-min load average, cores,
    and other processes' CPU time per wall second (None where /proc is unavailable)."""

    wall_s: float
    load_max: float | None
    cores: int
    foreign_cpu: float | None

    def merged(self, other: Conditions | None) -> Conditions:
        """The worse of two measurements' conditions (a ratio is as noisy as its worse side)."""
        if other is None:
            return self

        def worst(a, b):
            return b if a is None else a if b is None else max(a, b)

        return Conditions(self.wall_s + other.wall_s, worst(self.load_max, other.load_max),
                          self.cores, worst(self.foreign_cpu, other.foreign_cpu))

    def as_dict(self) -> dict:
        return asdict(self)


def _busy_seconds() -> float | None:
    """Seconds of CPU time the whole machine has spent busy (incl. steal), from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal [guest guest_nice: inside user/nice]
    ticks = [int(v) for v in fields[1:9]]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _load1() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


class Watch:
    """Context manager: the machine's conditions while its body ran (``.conditions``)."""

    def __init__(self, sample_s: float = SAMPLE_S):
        self.sample_s = sample_s
        self.conditions: Conditions | None = None
        self._loads: list[float] = []
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.wait(self.sample_s):
            load = _load1()
            if load is not None:
                self._loads.append(load)

    def __enter__(self) -> Watch:
        load = _load1()
        self._loads = [load] if load is not None else []
        self._wall0, self._busy0, self._own0 = time.perf_counter(), _busy_seconds(), _own_seconds()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        wall = time.perf_counter() - self._wall0
        busy1, own1 = _busy_seconds(), _own_seconds()
        load = _load1()
        if load is not None:
            self._loads.append(load)
        foreign = None
        if self._busy0 is not None and busy1 is not None and wall > 0:
            # clock ticks are 10 ms: a short measurement cannot resolve less than that
            foreign = max(0.0, ((busy1 - self._busy0) - (own1 - self._own0)) / wall)
        self.conditions = Conditions(wall, max(self._loads) if self._loads else None,
                                     os.cpu_count() or 1, foreign)
        return False


class Samples(list):
    """Repetition times (seconds) that remember the conditions they were measured under."""

    conditions: Conditions | None = None

    def scaled(self, factor: float) -> Samples:
        out = Samples(t * factor for t in self)
        out.conditions = self.conditions
        return out


def samples(times, conditions: Conditions | None) -> Samples:
    out = Samples(times)
    out.conditions = conditions
    return out


def conditions_of(ts) -> Conditions | None:
    return getattr(ts, "conditions", None)


def spread(ts) -> float | None:
    """max / min of the repetitions (None for fewer than two or a non-positive minimum)."""
    if len(ts) < 2 or min(ts) <= 0:
        return None
    return max(ts) / min(ts)


def verdict(spreads: list[float | None], conditions: Conditions | None,
            max_spread: float = SPREAD_LIMIT) -> str | None:
    """Why a measurement is unreliable, or None when nothing says it is."""
    reasons = []
    worst = max((s for s in spreads if s is not None), default=None)
    if worst is not None and worst > max_spread:
        reasons.append(f"spread {worst:.2f} > {max_spread:g}")
    if conditions is not None and conditions.foreign_cpu is not None:
        foreign = conditions.foreign_cpu
        overloaded = conditions.load_max is not None and conditions.load_max > conditions.cores
        if foreign > FOREIGN_CPU_LIMIT:
            reasons.append(f"other processes used {foreign:.2f} cores")
        elif overloaded and foreign > FOREIGN_CPU_FLOOR:
            reasons.append(f"load average {conditions.load_max:.2f} > {conditions.cores} cores "
                           f"with other processes using {foreign:.2f} cores")
    return "; ".join(reasons) or None
