"""Where a reproduction's time went: the jobs' benchmark files summed per stage, with the
machine's load that each job's log records (``python -m nnflow stages``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nnflow.compare.cli import main
from nnflow.compare.stages import (
    PERIOD_GAP_S,
    BenchmarkError,
    job_periods,
    job_times,
    log_cpu_seconds,
    log_loads,
    stage_times,
    stages_markdown,
)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
T0 = 1_800_000_000.0


def _benchmark(path: Path, wall: float, cpu: float, rss: float, end: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:00\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    os.utime(path, (end, end))


def _log(path: Path, *loads: tuple[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"2026-12-01 10:00:00,000 nnflow.workflow.jobs INFO load average {load:.2f} at {when} "
             "of the job (2 CPUs)" for when, load in loads]
    path.write_text("\n".join(["train: reading 1 file: x", *lines, "train: wrote 1 file: y"]) + "\n")


@pytest.fixture
def results(tmp_path):
    """Two MNIST runs, a search's final run and a PageRank case (no log of the same name)."""
    r = tmp_path / "results"
    _benchmark(r / "benchmarks/runs/mnist_cost/cost=quadratic/seed=1.tsv", 10.0, 8.0, 400, T0 + 10)
    _benchmark(r / "benchmarks/runs/mnist_cost/cost=quadratic/seed=2.tsv", 20.0, 12.0, 450, T0 + 25)
    _benchmark(r / "benchmarks/experiments/cifar_challenge/final.tsv", 100.0, 190.0, 700, T0 + 200)
    _benchmark(r / "pagerank/scale/benchmarks/erdos_renyi_100.tsv", 2.0, 1.5, 80, T0 + 3)
    _log(r / "logs/runs/mnist_cost/cost=quadratic/seed=1.log", ("start", 1.0), ("end", 3.0))
    _log(r / "logs/runs/mnist_cost/cost=quadratic/seed=2.log", ("start", 2.0), ("end", 2.0))
    _log(r / "logs/experiments/cifar_challenge/final.log", ("start", 0.5), ("end", 4.5))
    return r


def test_stage_times_sum_each_stage_in_order_of_its_first_job(results):
    stages = {s.stage: s for s in stage_times(results)}
    assert list(stages) == ["runs/mnist_cost", "pagerank/scale", "experiments/cifar_challenge", "total"]
    mnist = stages["runs/mnist_cost"]
    assert (mnist.jobs, mnist.wall_s, mnist.cpu_s) == (2, 30.0, 20.0)
    assert (mnist.longest_s, mnist.max_rss_mb) == (20.0, 450)
    assert mnist.cpu_per_wall == pytest.approx(2 / 3)
    assert mnist.span_s == pytest.approx(25.0)  # first starts at T0 + 0, second ends at T0 + 25
    assert (mnist.load_mean, mnist.load_max, mnist.cpus) == (2.0, 3.0, 2)
    final = stages["experiments/cifar_challenge"]
    assert final.cpu_per_wall == pytest.approx(1.9) and (final.load_mean, final.load_max) == (2.5, 4.5)
    assert stages["pagerank/scale"].load_mean is None  # no log named like its benchmark
    total = stages["total"]
    assert (total.jobs, total.wall_s, total.cpu_s, total.load_max) == (4, 132.0, 211.5, 4.5)
    assert total.span_s == pytest.approx(200.0)  # the final run starts at T0 + 100, the first at T0 + 0


def test_the_markdown_table_states_cpu_wall_and_load(results):
    text = stages_markdown(stage_times(results))
    assert ("| stage | jobs | wall s | CPU s | CPU/wall | longest job s | span s | peak RSS MB "
            "| load mean / max |") in text
    assert "| runs/mnist_cost | 2 | 30 | 20 | 0.67 | 20 | 25 | 450 | 2.0 / 3.0 |" in text
    assert "| pagerank/scale | 1 | 2 | 2 | 0.75 | 2 | 2 | 80 | n/a |" in text
    assert "| **total** | 4 | 132 | 212 | 1.60 | 100 | 200 | 700 | 2.2 / 4.5 |" in text  # 13 / 6
    assert "(2 CPUs)" in text


def test_a_resumed_job_counts_the_load_of_its_last_start(tmp_path):
    log = tmp_path / "job.log"
    _log(log, ("start", 7.0), ("start", 1.0), ("end", 2.0))  # killed once, then resumed
    assert log_loads(log) == ((1.0, 2.0), 2)
    assert log_loads(tmp_path / "missing.log") == ((), None)


def test_stages_command_prints_the_table_and_refuses_a_directory_without_benchmarks(
        results, tmp_path, capsys):
    assert main(["stages", str(results)]) == 0
    assert "| runs/mnist_cost | 2 |" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["stages", str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert f"{tmp_path / 'empty'}: no benchmark files" in capsys.readouterr().err


def test_a_damaged_benchmark_file_is_named(results):
    bad = results / "benchmarks/runs/mnist_cost/cost=quadratic/seed=1.tsv"
    bad.write_text(HEADER + "ten\t0:00:10\t400\t1\t1\t1\t0\t0\t50\t8\n")
    with pytest.raises(BenchmarkError, match=r"seed=1.tsv: column 's' must be a number, got 'ten'"):
        stage_times(results)
    bad.write_text("s\tcpu_time\n10\t8\n")
    with pytest.raises(BenchmarkError, match=r"seed=1.tsv: benchmark columns \['max_rss'\] missing"):
        stage_times(results)


def test_every_job_log_records_the_load_at_its_start_and_end(tmp_path):
    # job() configures the root logger: in a subprocess, away from pytest's log capture
    script = textwrap.dedent(f"""
        from types import SimpleNamespace
        from nnflow.workflow.jobs import job
        smk = SimpleNamespace(log=[{str(tmp_path / "job.log")!r}], input=[], output=[], threads=1, rule="t")
        with job(smk):
            print("working")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loads, cpus = log_loads(tmp_path / "job.log")
    assert len(loads) == 2 and all(load >= 0 for load in loads) and cpus == os.cpu_count()
    cpu = log_cpu_seconds(tmp_path / "job.log")
    assert cpu is not None and 0 < cpu < 60  # the interpreter's start-up and imports at least
    lines = (tmp_path / "job.log").read_text().splitlines()
    assert "reading no files" in lines[0] and "wrote no files" in lines[-1]  # first and last lines stay


def test_stage_of_a_job_is_named_by_its_directories(tmp_path):
    _benchmark(tmp_path / "benchmarks/data/prepare_mnist.tsv", 5.0, 4.0, 500, T0)
    _benchmark(tmp_path / "benchmarks/top.tsv", 1.0, 1.0, 10, T0 + 10)
    _benchmark(tmp_path / "benchmarks/runs/exp/a/b/seed=1.tsv", 1.0, 1.0, 10, T0 + 20)
    assert [s.stage for s in stage_times(tmp_path)] == ["data", ".", "runs/exp", "total"]


def _one_period(results):
    """The fixture's final run moved to overlap the MNIST runs: its jobs form one period."""
    _benchmark(results / "benchmarks/experiments/cifar_challenge/final.tsv", 100.0, 190.0, 700, T0 + 120)


def test_jobs_of_a_later_partial_rerun_are_called_out_and_can_be_tabled_alone(results, capsys):
    _one_period(results)
    # a rerun of one MNIST run 10 minutes after the reproduction replaced its benchmark file
    _benchmark(results / "benchmarks/runs/mnist_cost/cost=quadratic/seed=2.tsv", 30.0, 28.0, 460,
               T0 + 800)
    periods = job_periods(job_times(results))
    assert [len(p) for p in periods] == [3, 1]
    assert main(["stages", str(results)]) == 0
    text = capsys.readouterr().out
    assert "warning: these jobs ran in 2 separate periods" in text
    assert ": 3 jobs;" in text
    assert ": 1 job. The rows mix them; `--latest` keeps the last period only." in text
    assert "| **total** | 4 |" in text
    assert main(["stages", str(results), "--latest"]) == 0
    latest = capsys.readouterr().out
    assert "| runs/mnist_cost | 1 | 30 | 28 |" in latest and "| **total** | 1 |" in latest
    assert "warning" not in latest
    assert [s.stage for s in stage_times(results, latest=True)] == ["runs/mnist_cost", "total"]


def test_one_period_gets_no_warning_and_a_gap_up_to_the_threshold_stays_one(results):
    _one_period(results)
    assert len(job_periods(job_times(results))) == 1
    assert "warning" not in stages_markdown(stage_times(results), job_periods(job_times(results)))
    # the final run ends at T0 + 120; a job starting PERIOD_GAP_S later is still the same period
    _benchmark(results / "benchmarks/runs/late/seed=1.tsv", 5.0, 5.0, 10, T0 + 120 + PERIOD_GAP_S + 5)
    assert len(job_periods(job_times(results))) == 1
    _benchmark(results / "benchmarks/runs/late/seed=1.tsv", 5.0, 5.0, 10, T0 + 120 + PERIOD_GAP_S + 6)
    assert len(job_periods(job_times(results))) == 2


def test_the_cpu_time_a_job_logs_replaces_the_benchmarks_sampled_one(results):
    """Snakemake samples a job's CPU time every 30 s after its first 15 s: a long job's
    benchmark misses up to its last 30 s. The job's own count, logged at its end, wins."""
    final_log = results / "logs/experiments/cifar_challenge/final.log"
    text = final_log.read_text().replace(
        "train: wrote 1 file: y",
        "2026-12-01 10:00:00,000 nnflow.workflow.jobs INFO cpu time 197.25 s of the job's process "
        "(user 180.00, system 17.25, children 0.00)\ntrain: wrote 1 file: y")
    final_log.write_text(text)
    stages = {s.stage: s for s in stage_times(results)}
    assert stages["experiments/cifar_challenge"].cpu_s == pytest.approx(197.25)  # benchmark: 190
    assert stages["runs/mnist_cost"].cpu_s == pytest.approx(20.0)  # no cpu line: the benchmark's
    assert stages["total"].cpu_s == pytest.approx(211.5 - 190.0 + 197.25)


def test_a_resumed_job_counts_the_cpu_time_of_its_last_start_only(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("\n".join([
        "x INFO load average 1.00 at start of the job (2 CPUs)",
        "x INFO cpu time 50.00 s of the job's process (user 50.00, system 0.00, children 0.00)",
        "x INFO load average 1.00 at start of the job (2 CPUs)",  # killed after the line above
        "x INFO load average 1.00 at end of the job (2 CPUs)"]) + "\n")
    assert log_cpu_seconds(log) is None
    log.write_text(log.read_text() + "x INFO cpu time 7.50 s of the job's process (user 7.00, "
                   "system 0.50, children 0.00)\n")
    assert log_cpu_seconds(log) == 7.5
    assert log_cpu_seconds(tmp_path / "missing.log") is None


def test_a_script_jobs_process_ends_after_its_last_log_line(tmp_path):
    """In a ``script:`` job (Snakemake's own object) the process exits right after the job's
    last log line, skipping the interpreter's teardown; the log and outputs are complete."""
    script = textwrap.dedent(f"""
        from snakemake.iocontainers import Snakemake
        from nnflow.files import write_text
        from nnflow.workflow.jobs import job
        smk = object.__new__(Snakemake)  # what the script preamble builds, with just these fields
        smk.log, smk.input, smk.output = [{str(tmp_path / "job.log")!r}], [], [{str(tmp_path / "out.txt")!r}]
        smk.threads, smk.rule = 1, "t"
        with job(smk):
            print("working")
            write_text(smk.output[0], "done")
        print("after the block")
        raise SystemExit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "after the block" not in proc.stdout
    assert (tmp_path / "out.txt").read_text() == "done"
    lines = (tmp_path / "job.log").read_text().splitlines()
    assert "working" in lines and "wrote" in lines[-1] and "out.txt" in lines[-1]
