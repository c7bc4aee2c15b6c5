"""What a person watching the terminal sees while jobs run: per-job progress lines (run, epoch
i/N, metric, ETA), throttled, a heartbeat in long silences, one line per finished run; off
unless the output is a terminal or NNFLOW_PROGRESS=1."""

from __future__ import annotations

import io
import itertools
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fake_runs import learnable_data as _data
from fake_runs import run_outputs as _outputs

from nnflow.progress import Progress, current, duration
from nnflow.train import run as run_module
from nnflow.train.checkpoint import Checkpoint
from nnflow.train.run import finished_line, train_run
from nnflow.train.trainers.solver import train_solver

ROOT = Path(__file__).resolve().parents[1]
DIM = 20


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def _reporter(interval=5.0, heartbeat=20.0):
    clock, stream = FakeClock(), io.StringIO()
    return Progress("train_network2 exp/a/seed=1", stream, interval, heartbeat, clock), clock, stream


# ------------------------------------------------------------------------------ the reporter


def test_epoch_lines_come_at_most_once_per_interval_with_metric_and_eta():
    progress, clock, stream = _reporter(interval=5.0)
    progress.epochs(30)
    for epoch in range(1, 13):  # 2 s per epoch
        clock.now += 2.0
        progress.epoch(epoch, f"test accuracy {90 + epoch / 10:.2f}%")
    # due at t >= 5 (epoch 3, t=6), then >= 5 s after that line (epoch 6, t=12), ...
    assert _lines(stream) == [
        f"[nnflow] train_network2 exp/a/seed=1: epoch {k}/30, test accuracy {90 + k / 10:.2f}%, "
        f"ETA {duration(2.0 * (30 - k))}"
        for k in (3, 6, 9, 12)
    ]


def test_a_long_epoch_or_a_job_without_epochs_says_it_is_still_running():
    progress, clock, stream = _reporter(interval=5.0, heartbeat=20.0)
    clock.now = 19.0
    progress.tick()
    assert _lines(stream) == []  # silent for less than the heartbeat
    clock.now = 20.0
    progress.tick()
    assert _lines(stream) == ["[nnflow] train_network2 exp/a/seed=1: running for 20s"]
    progress.epochs(10)
    clock.now = 40.0
    progress.tick()
    assert _lines(stream)[-1].endswith(": epoch 1/10 running for 20s")
    clock.now = 50.0
    progress.epoch(1, "val accuracy 41.00%")  # news, and 10 s since the last line: written
    clock.now = 69.0
    progress.tick()
    assert len(_lines(stream)) == 3
    clock.now = 70.0
    progress.tick()  # 20 s without a line in a long epoch 2
    # epoch 1 took 30 s (from t=20 to t=50): 9 more take 4m30s
    assert _lines(stream)[-1].endswith(": epoch 1/10, val accuracy 41.00%, ETA 4m30s; "
                                       "epoch 2 running for 20s")


def test_the_finished_line_is_written_at_once_and_is_the_last():
    progress, clock, stream = _reporter(interval=5.0)
    progress.epochs(3)
    clock.now = 1.0
    progress.epoch(1, "m")  # held back: 1 s < interval
    progress.finish("done: test accuracy 95.00% after 3 epochs, 3s")
    clock.now = 100.0
    progress.tick()
    assert _lines(stream) == ["[nnflow] train_network2 exp/a/seed=1: done: test accuracy 95.00% after "
                              "3 epochs, 3s"]


def test_a_resumed_run_estimates_from_the_epochs_it_trained_itself():
    progress, clock, stream = _reporter(interval=1.0)
    progress.epochs(20, done=10)
    clock.now = 3.0
    progress.epoch(11, "m")
    assert _lines(stream) == ["[nnflow] train_network2 exp/a/seed=1: epoch 11/20, m, ETA 27s"]


def test_the_background_thread_writes_the_heartbeat():
    stream = io.StringIO()
    with Progress("job", stream, interval=0.01, heartbeat=0.02) as progress:
        assert current() is progress
        deadline = time.monotonic() + 30
        while not stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert current() is not progress and not current().enabled
    assert stream.getvalue().startswith("[nnflow] job: running for ")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("environ", "terminal", "on"), [
    ({}, True, True),
    ({}, False, False),  # CI logs, captured output: nothing
    ({"NNFLOW_PROGRESS": "auto"}, False, False),
    ({"NNFLOW_PROGRESS": "0"}, True, False),
    ({"NNFLOW_PROGRESS": "1"}, False, True),
])
def test_progress_is_on_for_a_terminal_unless_the_environment_says(environ, terminal, on):
    stream = _Terminal() if terminal else io.StringIO()
    progress = Progress.from_environment("job", stream, environ)
    assert progress.enabled is on
    progress.finish("done")
    assert (stream.getvalue() == "[nnflow] job: done\n") is on


@pytest.mark.parametrize(("environ", "message"), [
    ({"NNFLOW_PROGRESS": "yes"}, "NNFLOW_PROGRESS='yes': expected 1 (progress lines on), 0 (off) or auto"),
    ({"NNFLOW_PROGRESS_INTERVAL": "0"}, "NNFLOW_PROGRESS_INTERVAL='0': expected a number of seconds > 0"),
    ({"NNFLOW_PROGRESS_INTERVAL": "5s"}, "NNFLOW_PROGRESS_INTERVAL='5s': expected a number of seconds > 0"),
])
def test_bad_settings_are_errors_naming_the_variable(environ, message):
    with pytest.raises(ValueError, match=f"^environment variable {re.escape(message)}"):
        Progress.from_environment("job", _Terminal(), environ)


def test_durations_read_as_seconds_minutes_hours():
    assert [duration(s) for s in (0, 8.4, 59.6, 185, 3725)] == ["0s", "8s", "1m00s", "3m05s", "1h02m"]


# ------------------------------------------------------------------------------ runs report to it


def _ticking_reporter(label):
    """Every reading of the clock is one second later: each epoch is past the interval."""
    stream = io.StringIO()
    return Progress(label, stream, interval=0.5, clock=itertools.count().__next__), stream


def test_a_training_run_reports_each_epoch_and_ends_with_its_headline(tmp_path, monkeypatch, rng):
    data = _data(rng)
    monkeypatch.setattr(run_module, "load_dataset", lambda data_dir: data)
    spec = {"experiment": "exp", "run_id": "exp/a/seed=1", "seed": 1, "trainer": "network2",
            "dataset": "mnist", "params": {"sizes": [DIM, 8, 10], "epochs": 3, "mini_batch_size": 10,
                                           "eta": 0.5, "cost": "cross_entropy"}}
    progress, stream = _ticking_reporter("run")
    info = train_run(spec, "unused", _outputs(tmp_path), progress=progress)
    lines = _lines(stream)
    assert [line.split(",")[0] for line in lines[:-1]] == [f"[nnflow] run: epoch {k}/3" for k in (1, 2, 3)]
    assert "test accuracy" in lines[0] and "ETA" in lines[0]
    final = info["final"]["test_accuracy"]
    assert lines[-1].startswith(f"[nnflow] run: done: test accuracy {100 * final:.2f}% after 3 epochs, ")


def test_a_solver_run_reports_its_validation_accuracy(rng):
    spec = {"experiment": "exp", "run_id": "exp/a/seed=1", "seed": 1, "trainer": "solver",
            "dataset": "cifar10", "params": {"hidden_dims": [8], "num_epochs": 2, "batch_size": 20}}
    progress, stream = _ticking_reporter("run")
    rows, *_ = train_solver(spec, _data(rng), Checkpoint(None, spec), progress=progress)
    accuracy = 100 * rows[-1]["val_accuracy"]
    assert _lines(stream)[-1] == f"[nnflow] run: epoch 2/2, val accuracy {accuracy:.2f}%"


@pytest.mark.parametrize(("info", "line"), [
    ({"status": "diverged", "diverged_epoch": 4, "epochs_completed": 3, "seconds": 12.0, "final": {}},
     "diverged in epoch 4 (3 epochs completed), 12s"),
    ({"status": "completed", "epochs_completed": 15, "seconds": 244.0, "final": {"val_accuracy": 0.5},
      "test_accuracy": 0.561, "weights": "best validation accuracy, epoch 9 of 15"},
     "done: test accuracy 56.10% (best validation accuracy, epoch 9 of 15), 15 epochs, 4m04s"),
    ({"status": "completed", "epochs_completed": 4, "seconds": 2.0, "final": {"val_accuracy": 0.335},
      "best_epoch": 3, "best_val_accuracy": 0.35},
     "done: val accuracy 33.50% (best 35.00% at epoch 3) after 4 epochs, 2s"),
    ({"status": "completed", "epochs_completed": 1, "seconds": 0.2, "final": {"test_accuracy": 0.5}},
     "done: test accuracy 50.00% after 1 epoch, 0s"),
])
def test_the_finished_line_leads_with_the_headline_metric(info, line):
    assert finished_line(info) == line


# ------------------------------------------------------------------------------ in a workflow job


def _job(tmp_path, environ):
    script = textwrap.dedent(f"""
        from types import SimpleNamespace
        from nnflow.progress import current
        from nnflow.workflow.jobs import job
        smk = SimpleNamespace(log=[{str(tmp_path / "job.log")!r}], input=[], output=[], threads=1,
                              rule="train_solver", wildcards=["exp", "a/seed=1"])
        with job(smk):
            current().epochs(2)
            print("into the log")
            current().finish("done: val accuracy 50.00% after 2 epochs, 1s")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNFLOW_PROGRESS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**env, **environ})


def test_a_job_writes_progress_to_the_terminal_and_its_output_to_the_log(tmp_path):
    proc = _job(tmp_path, {"NNFLOW_PROGRESS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("[nnflow] train_solver exp/a/seed=1: done: val accuracy 50.00% after 2 "
                           "epochs, 1s\n")
    log = (tmp_path / "job.log").read_text()
    assert "into the log" in log and "[nnflow]" not in log


def test_a_job_whose_output_is_captured_prints_no_progress(tmp_path):
    proc = _job(tmp_path, {})  # stderr is a pipe here, as in CI and the workflow tests
    assert proc.returncode == 0 and proc.stderr == ""
