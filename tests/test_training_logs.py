"""What a run says while it trains: epoch k of the planned N in every log line, network2's
console lines when a user asks for them, and what every workflow job read and wrote."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fake_runs import learnable_data

from nnflow.nn import network2
from nnflow.train.checkpoint import Checkpoint
from nnflow.train.trainers.network2 import train_network2
from nnflow.train.trainers.solver import train_solver

ROOT = Path(__file__).resolve().parents[1]
DIM = 20


def _data(rng):
    return learnable_data(rng, provenance={})


def _spec(trainer, params):
    return {"experiment": "exp", "run_id": "exp/base/seed=1", "seed": 1, "trainer": trainer,
            "dataset": "mnist", "params": params}


def test_solver_run_logs_say_epoch_k_of_the_planned_total(rng, caplog):
    spec = _spec("solver", {"hidden_dims": [8], "num_epochs": 4, "batch_size": 20})
    with caplog.at_level(logging.INFO, logger="nnflow"):
        train_solver(spec, _data(rng), Checkpoint(None, spec))
    epochs = [m.split(")")[0] for m in caplog.messages if m.startswith("(Epoch")]
    assert epochs == [f"(Epoch {k} / 4" for k in range(1, 5)]


def test_network2_run_logs_one_readable_line_per_epoch(rng, caplog):
    spec = _spec("network2", {"sizes": [DIM, 8, 10], "epochs": 3, "mini_batch_size": 10, "eta": 0.5,
                              "cost": "cross_entropy"})
    with caplog.at_level(logging.INFO, logger="nnflow"):
        rows, *_ = train_network2(spec, _data(rng), Checkpoint(None, spec))
    lines = [m for m in caplog.messages if m.startswith("epoch ")]
    assert [line.split(" (")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("{" not in line for line in lines)
    last = rows[-1]
    assert f"test cost {last['test_cost']:.4g}, accuracy {100 * last['test_accuracy']:.2f}%" in lines[-1]


def test_verbose_sgd_prints_network2s_lines_without_logging_set_up(rng, capsys):
    d = _data(rng)
    net = network2.Network([DIM, 8, 10], seed=0)
    _, evaluation_accuracy, training_cost, _ = net.SGD(
        (d["X_train"], d["y_train"]), 2, 10, 0.5, evaluation_data=(d["X_test"], d["y_test"]),
        monitor_evaluation_accuracy=True, monitor_training_cost=True, verbose=True)
    expected = []
    for j in range(2):  # network2's lines, epochs counted from 0
        expected += [f"Epoch {j} training complete", f"Cost on training data: {training_cost[j]}",
                     f"Accuracy on evaluation data: {evaluation_accuracy[j]} / 30", ""]
    assert capsys.readouterr().out.splitlines() == expected
    net.SGD((d["X_train"], d["y_train"]), 1, 10, 0.5)
    assert capsys.readouterr().out == ""  # not verbose: nothing printed


@pytest.mark.parametrize("fails", [False, True])
def test_every_job_log_says_what_it_read_and_wrote(tmp_path, fails):
    # job() configures the root logger: in a subprocess, away from pytest's log capture
    script = textwrap.dedent(f"""
        from types import SimpleNamespace
        from nnflow.workflow.jobs import job
        inputs = [{str(tmp_path / "in.csv")!r}] + [f"{tmp_path}/run{{i}}.json" for i in range(7)]
        smk = SimpleNamespace(log=[{str(tmp_path / "job.log")!r}], input=inputs,
                              output=[{str(tmp_path / "out.csv")!r}], threads=1, rule="table")
        with job(smk):
            if {fails}:
                raise RuntimeError("boom")
            open(smk.output[0], "w").write("x" * 1500)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == (1 if fails else 0), proc.stderr
    log = (tmp_path / "job.log").read_text()
    assert f"table: reading 8 files: {tmp_path}/in.csv, {tmp_path}/run0.json" in log
    assert "run3.json, ... (3 more)" in log
    if fails:
        assert "job failed" in log and "boom" in log and "wrote" not in log
    else:
        assert f"table: wrote 1 file: {tmp_path}/out.csv (1.5 kB)" in log
