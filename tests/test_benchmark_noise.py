"""The benchmarks judge their own noise: a measurement whose repetitions spread too far, or
that shared the cores with other processes, is marked unreliable and reports no ratio.

No timed assertions on nnflow: these test the judging, with made-up times and conditions,
and that the watcher sees a competing process.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import common as C  # noqa: E402
import noise  # noqa: E402
import run as bench_run  # noqa: E402

QUIET = noise.Conditions(wall_s=10.0, load_max=1.9, cores=2, foreign_cpu=0.01)


def test_a_steady_measurement_on_a_quiet_machine_reports_its_ratio_and_verdict():
    ts = noise.samples([1.0, 1.05, 1.02], QUIET)
    ref = noise.samples([2.0, 2.1, 2.05], QUIET)
    r = C.row("b", "case", "nnflow", ts, ref=ref, ref_name="peer", target=0.9)
    assert r["reliable"] and r["unreliable_reason"] is None
    assert r["ratio_median"] == pytest.approx(1.02 / 2.05)
    assert r["meets"] is True
    assert r["spread"] == pytest.approx(1.05) and r["ref_spread"] == pytest.approx(1.05)


@pytest.mark.parametrize("times, ref_times, conditions, reason", [
    ([1.0, 1.6, 1.1], [2.0, 2.0, 2.0], QUIET, "spread 1.60 > 1.5"),
    ([1.0, 1.0, 1.0], [2.0, 5.0, 2.2], QUIET, "spread 2.50 > 1.5"),  # the peer's noise
    ([1.0, 1.0], [2.0, 2.0], noise.Conditions(10.0, 2.0, 2, 0.6), "other processes used 0.60"),
    ([1.0, 1.0], [2.0, 2.0], noise.Conditions(10.0, 3.1, 2, 0.1), "load average 3.10 > 2 cores"),
])
def test_a_noisy_measurement_is_marked_unreliable_and_reports_no_ratio(times, ref_times,
                                                                         conditions, reason):
    r = C.row("b", "case", "nnflow", noise.samples(times, conditions),
              ref=noise.samples(ref_times, conditions), ref_name="peer", target=10.0)
    assert not r["reliable"]
    assert reason in r["unreliable_reason"]
    assert r["ratio_median"] is None and r["ratio_min"] is None and r["meets"] is None
    assert r["ratio_median_unreliable"] == pytest.approx(statistics.median(times) /
                                                         statistics.median(ref_times))


def test_the_benchmarks_own_threads_alone_do_not_make_it_unreliable():
    # a 2-thread contender keeps the load average near (even a bit above) the 2 cores by itself
    own_load = noise.Conditions(10.0, 2.4, 2, 0.02)
    assert noise.verdict([1.01, 1.02], own_load) is None


def test_a_peak_fraction_row_under_noise_reports_no_fraction_and_no_verdict():
    noisy = noise.Conditions(10.0, 3.0, 2, 1.0)
    r = C.row("cifar", "case", "nnflow fraction of GEMM peak", noise.samples([1.0, 1.0], noisy),
              peak_fraction_median=0.9, peak_fraction_best=0.95, target=0.85, meets_peak=True)
    assert r["peak_fraction_median"] is None and r["meets_peak"] is None
    assert r["peak_fraction_median_unreliable"] == 0.9


def test_a_row_measured_outside_interleaved_is_judged_by_its_parts_conditions():
    r = C.row("cifar-breakdown", "case", "nnflow update", [1.0], share=0.3)
    assert r["conditions_known"] is False and r["reliable"]
    C.judge(r, noise.Conditions(10.0, 3.5, 2, 0.9))
    assert not r["reliable"] and r["share"] is None and r["share_unreliable"] == 0.3


def test_scaling_times_keeps_their_conditions():
    ts = noise.samples([1.0, 2.0], QUIET)
    assert noise.conditions_of(ts.scaled(0.5)) is QUIET and ts.scaled(0.5) == [0.5, 1.0]


def test_the_watch_sees_another_process_taking_cpu_time():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        with noise.Watch(sample_s=0.1) as watch:
            time.sleep(1.5)
    finally:
        busy.kill()
        busy.wait()
    c = watch.conditions
    assert c.wall_s >= 1.5 and c.load_max is not None
    # one busy process on this machine: about one core of other processes' CPU time
    assert c.foreign_cpu > noise.FOREIGN_CPU_LIMIT
    assert noise.verdict([], c) is not None


def test_the_table_says_which_rows_are_unreliable_and_why():
    good = C.row("b", "case", "nnflow", noise.samples([1.0, 1.0], QUIET),
                 ref=noise.samples([2.0, 2.0], QUIET), ref_name="peer", target=0.9)
    bad = C.row("b", "case", "nnflow", noise.samples([1.0, 3.0], QUIET),
                ref=noise.samples([2.0, 2.0], QUIET), ref_name="peer", target=0.9)
    table = bench_run.markdown([good, bad], "machine", "2026-12-01 00:00", True, 60.0, QUIET)
    lines = table.splitlines()
    assert "**1 of 2 rows unreliable**" in table and "1-minute load average at most 1.90" in table
    assert "| 0.5 | <= 0.9 | yes |" in lines[-2]
    assert "| unreliable | <= 0.9 | unreliable: spread 3.00 > 1.5 |" in lines[-1]


@pytest.mark.parametrize("argv, message", [
    (["--max-spread", "1"], "--max-spread must be > 1"),
    (["--only", "mnist,gpu"], "unknown benchmark(s) gpu"),
])
def test_bad_arguments_are_refused_naming_them(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench_run.main(argv)
    assert message in capsys.readouterr().err
