"""The workflow under faults: a diverging run, a SIGKILLed job, two workflows on one directory,
a few hundred runs; plus download faults not covered by test_data_*.py (a slow server).

The workflow tests run the real Snakefile with ``--directory`` in a temporary directory on a
synthetic MNIST mirror (never real data). The prepared data are built once per module and the
working directory (with its .snakemake metadata) is copied for each test.
"""

from __future__ import annotations

import csv
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnflow.data import sources
from nnflow.data.fetch import FetchError, download
from nnflow.files import load_npz
from nnflow.train.grid import expand_runs

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SMOKE = ROOT / "tests" / "smoke" / "config.yaml"
MNIST_DATA = [f"results/data/mnist/{n}" for n in
              ("X_train.npy", "y_train.npy", "X_val.npy", "y_val.npy", "X_test.npy", "y_test.npy",
               "provenance.json")]
LOCK_MESSAGE = "Directory cannot be locked"


def _smoke() -> dict:
    return yaml.safe_load(SMOKE.read_text())


def _only(cfg: dict, *experiments: str) -> dict:
    """Disable every experiment except those named, and the PageRank stage."""
    for name, exp in cfg["experiments"].items():
        exp["enabled"] = name in experiments
    cfg["pagerank"] = {"enabled": False}
    return cfg


def _env(mirror: Path) -> dict:
    # a checkpoint after every epoch (the workflow's default spaces them 10 s apart): the kill
    # tests wait for the checkpoint of a given epoch
    return {**os.environ, "NNFLOW_DATA_MIRROR": str(mirror), "PYTHONPATH": str(ROOT / "src"),
            "NNFLOW_CHECKPOINT_INTERVAL": "0"}


def _cmd(workdir: Path, *args: str) -> list[str]:
    return [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(workdir / "test_config.yaml"), "--workflow-profile", "none",
            "--cores", "1", *args]


def _snakemake(workdir: Path, mirror: Path, *args: str, check=True, timeout=300):
    proc = subprocess.run(_cmd(workdir, *args), env=_env(mirror), capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, out
    return proc.returncode, out


def _write_config(workdir: Path, cfg: dict) -> None:
    (workdir / "test_config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A working directory with the smoke config's MNIST data prepared (mirror, workdir)."""
    from nnflow.data.synthetic import write_mirror

    base = tmp_path_factory.mktemp("reliability")
    mirror = write_mirror(base / "mirror", np.random.default_rng(7), n_train=600, n_test=100,
                          datasets=("mnist",))
    work = base / "template"
    work.mkdir()
    _write_config(work, _only(_smoke()))
    _snakemake(work, mirror, *MNIST_DATA)
    return mirror, work


def _workdir(prepared, dest: Path, cfg: dict) -> Path:
    _, template = prepared
    shutil.copytree(template, dest, symlinks=True)
    _write_config(dest, cfg)
    return dest


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------ divergence


@pytest.mark.workflow
def test_diverging_run_is_recorded_and_the_grid_goes_on(prepared, tmp_path):
    """Smoke config + one mnist_cost grid point whose learning rate is far too large.

    eta = 1e6 with lmbda = 5 on 500 examples: the L2 decay factor 1 - eta*lmbda/n = -9999 makes
    the weights grow geometrically until the cost overflows (checked: status diverged in epoch 2
    of this config). Without L2, a large eta only saturates the sigmoids (finite, no divergence).
    """
    mirror, _ = prepared
    cfg = _only(_smoke(), "mnist_cost")
    exp = cfg["experiments"]["mnist_cost"]
    exp["params"].pop("lmbda")
    exp["grid"]["points"] = [
        {"cost": "quadratic", "eta": 3.0, "lmbda": 0.0},
        {"cost": "cross_entropy", "eta": 0.5, "lmbda": 0.0},
        {"cost": "quadratic", "eta": 1.0e6, "lmbda": 5.0},
    ]
    work = _workdir(prepared, tmp_path / "w", cfg)
    out_dir = work / "results" / "experiments" / "mnist_cost"
    _snakemake(work, mirror, "--cores", "2", "results/experiments/mnist_cost/numbers.json")

    ids = {r.params["eta"]: r.run_id for r in expand_runs(cfg["experiments"]).values()}
    diverged = work / "results" / "runs" / ids[1.0e6]
    info = json.loads((diverged / "run.json").read_text())
    assert info["status"] == "diverged"
    assert info["diverged_epoch"] == 2 and info["epochs_completed"] == 1
    assert len(_read_csv(diverged / "metrics.csv")) == 1  # the epoch before the divergence
    assert not (work / "results" / "checkpoints" / ids[1.0e6]).exists()
    for eta in (3.0, 0.5):
        info = json.loads((work / "results" / "runs" / ids[eta] / "run.json").read_text())
        assert info["status"] == "completed" and info["epochs_completed"] == 2

    summary = {r["run_id"]: r for r in _read_csv(out_dir / "summary.csv")}
    assert sorted(summary) == sorted(ids.values())
    row = summary[ids[1.0e6]]
    assert row["status"] == "diverged" and float(row["diverged_epoch"]) == 2
    assert sorted(r["status"] for r in summary.values()) == ["completed", "completed", "diverged"]

    numbers = json.loads((out_dir / "numbers.json").read_text())
    assert numbers["n_diverged"] == 1 and numbers["n_completed"] == 2
    assert "diverged at epoch 2" in numbers["diverged_runs"]
    assert "diverged" in (out_dir / "caption.rst").read_text()
    assert (out_dir / "figure.png").stat().st_size > 0


# ------------------------------------------------------------------------------ interruptions

RUN = "mnist_overfitting/base/seed=1"
EPOCHS = 250  # about 10 s of training: long enough to be killed half-way


def _long_run_config() -> dict:
    cfg = _only(_smoke(), "mnist_overfitting")
    exp = cfg["experiments"]["mnist_overfitting"]
    exp["params"].update(sizes=[784, 30, 10], epochs=EPOCHS, train_size=500, lmbda=0.1)
    exp.pop("grid")
    return cfg


def _target(work: Path) -> str:
    return f"results/runs/{RUN}/metrics.csv"  # targets are relative to --directory


def _start(work: Path, mirror: Path) -> subprocess.Popen:
    with open(work / "snakemake.out", "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(_cmd(work, _target(work)), env=_env(mirror), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_epoch(work: Path, proc: subprocess.Popen, epoch: int, timeout=120) -> int:
    state = work / "results" / "checkpoints" / RUN / "state.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (work / "snakemake.out").read_text()
        try:
            reached = json.loads(state.read_text())["epoch"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            reached = 0
        if reached >= epoch:
            return reached
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint with epoch >= {epoch} after {timeout} s")


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its job: the whole process group
    proc.wait(timeout=30)


@pytest.mark.workflow
def test_sigkilled_job_resumes_from_its_checkpoint_bit_for_bit(prepared, tmp_path):
    """Also: a second workflow on the same directory is refused by Snakemake's lock, and the
    lock a killed workflow leaves behind is removed with --unlock."""
    mirror, _ = prepared
    cfg = _long_run_config()
    ref = _workdir(prepared, tmp_path / "ref", cfg)
    work = _workdir(prepared, tmp_path / "killed", cfg)

    reference = _start(ref, mirror)  # the uninterrupted run, on the other core
    victim = _start(work, mirror)
    try:
        _wait_for_epoch(work, victim, 2)
        # Frozen (SIGSTOP) while the second workflow is refused: on a loaded machine the job
        # could otherwise finish its epochs before the kill below.
        os.killpg(victim.pid, signal.SIGSTOP)
        code, out = _snakemake(work, mirror, _target(work), check=False, timeout=120)  # concurrent
        assert code != 0 and LOCK_MESSAGE in out and "--unlock" in out, out
        assert victim.poll() is None  # the first workflow is undisturbed
    finally:
        _kill(victim)
    try:  # the reference never outlives a failure here
        run_dir = work / "results" / "runs" / RUN
        assert not (run_dir / "run.json").exists()  # killed before the end: no complete run
        ckpt_epoch = json.loads((work / "results" / "checkpoints" / RUN / "state.json").read_text())["epoch"]
        assert 2 <= ckpt_epoch < EPOCHS

        code, out = _snakemake(work, mirror, "--rerun-incomplete", _target(work), check=False)
        assert code != 0 and LOCK_MESSAGE in out  # the killed workflow's lock is left behind
        _snakemake(work, mirror, "--unlock", _target(work))
        _, out = _snakemake(work, mirror, "--rerun-incomplete", _target(work))
        assert reference.wait(timeout=300) == 0, (ref / "snakemake.out").read_text()
    finally:
        if reference.poll() is None:
            _kill(reference)

    log = (work / "results" / "logs" / "runs" / f"{RUN}.log").read_text()
    resumed = [int(m) for m in re.findall(r"resuming from checkpoint after epoch (\d+)", log)]
    assert resumed and resumed[-1] >= ckpt_epoch
    assert "resuming" not in (ref / "results" / "logs" / "runs" / f"{RUN}.log").read_text()

    ref_dir = ref / "results" / "runs" / RUN
    got, want = _read_csv(run_dir / "metrics.csv"), _read_csv(ref_dir / "metrics.csv")
    assert len(got) == EPOCHS
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in got] == \
           [{k: v for k, v in r.items() if k != "seconds"} for r in want]
    a, b = load_npz(run_dir / "model.npz"), load_npz(ref_dir / "model.npz")
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs_completed"] == EPOCHS
    assert info["checkpoint"] == {"resumed_from_epoch": resumed[-1]}
    assert json.loads((ref_dir / "run.json").read_text())["checkpoint"] == {"resumed_from_epoch": None}
    assert not (work / "results" / "checkpoints" / RUN).exists()  # removed after completion
    assert not list(run_dir.glob(".*tmp-*"))


@pytest.mark.workflow
def test_killed_run_restarts_when_its_data_changed_and_says_why(prepared, tmp_path):
    """Kill, switch the dataset's dtype (the prepared data changes), rerun: the old epochs are
    not resumed; the run starts from epoch 0 and run.json records why."""
    mirror, _ = prepared
    cfg = _long_run_config()
    work = _workdir(prepared, tmp_path / "killed", cfg)
    victim = _start(work, mirror)
    _wait_for_epoch(work, victim, 2)
    _kill(victim)
    _snakemake(work, mirror, "--unlock", _target(work))
    cfg["data"]["datasets"]["mnist"]["dtype"] = "float32"
    _write_config(work, cfg)
    _snakemake(work, mirror, "--rerun-incomplete", _target(work))

    log = (work / "results" / "logs" / "runs" / f"{RUN}.log").read_text()
    assert "resuming" not in log and "restarting from epoch 0" in log
    info = json.loads((work / "results" / "runs" / RUN / "run.json").read_text())
    assert info["checkpoint"]["resumed_from_epoch"] is None
    assert "written for another the prepared data" in info["checkpoint"]["restarted"]
    assert load_npz(work / "results" / "runs" / RUN / "model.npz")["w0"].dtype == np.float32


@pytest.mark.workflow
def test_an_orphaned_job_and_a_rerun_never_train_the_same_run_at_once(prepared, tmp_path):
    """Killing only Snakemake's main process leaves its job running; after --unlock a rerun's
    job refuses to write into the same checkpoint, naming the orphan's PID."""
    mirror, _ = prepared
    cfg = _long_run_config()
    # Long enough (minutes) to outlive --unlock and the rerun on a loaded machine; killed below.
    cfg["experiments"]["mnist_overfitting"]["params"]["epochs"] = 20 * EPOCHS
    work = _workdir(prepared, tmp_path / "orphan", cfg)
    main = _start(work, mirror)
    _wait_for_epoch(work, main, 1)
    os.kill(main.pid, signal.SIGKILL)  # the main process only: its job lives on
    main.wait(timeout=30)
    lock = work / "results" / "checkpoints" / RUN / ".lock"
    orphan = int(re.match(r"pid (\d+)", lock.read_text()).group(1))
    try:
        os.kill(orphan, 0)  # alive
        _snakemake(work, mirror, "--unlock", _target(work))
        code, out = _snakemake(work, mirror, "--rerun-incomplete", _target(work), check=False)
        assert code != 0
        log = (work / "results" / "logs" / "runs" / f"{RUN}.log").read_text()
        assert f"being trained by another process (pid {orphan} on" in log, log
        os.kill(orphan, 0)  # the orphan was not disturbed
    finally:
        os.killpg(main.pid, signal.SIGKILL)  # the orphan is in the session we started


# ------------------------------------------------------------------------------ load


@pytest.mark.workflow
def test_three_hundred_runs_build_their_dag(tmp_path):
    cfg = _only(_smoke(), "cifar_challenge")
    exp = cfg["experiments"]["cifar_challenge"]
    exp["search"]["n_candidates"] = 300
    exp["params"].update(num_epochs=1, train_size=50)
    exp["search"]["space"]["hidden_dims"] = {"choice": [[4], [8]]}
    tmp_path.mkdir(exist_ok=True)
    _write_config(tmp_path, cfg)
    started = time.perf_counter()
    code, out = _snakemake(tmp_path, tmp_path / "no-mirror", "-n", "--quiet", "rules", timeout=300)
    seconds = time.perf_counter() - started
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    assert counts.get("train_solver") == "300", out
    assert counts.get("challenge_select") == "1" and counts.get("challenge_final") == "1"
    print(f"\nDAG of {counts.get('total')} jobs (300 runs) built by snakemake -n in {seconds:.1f} s")


# ------------------------------------------------------------------------------ slow server


def test_slow_server_times_out_retries_and_leaves_nothing(tmp_path):
    """A server that answers the request but never sends the body within the timeout."""
    requests = []

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            time.sleep(1.5)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/train-images-idx3-ubyte.gz"
    dest = tmp_path / "train-images-idx3-ubyte.gz"
    try:
        started = time.monotonic()
        with pytest.raises(FetchError) as err:
            download([url], dest, lambda p: {}, timeout=0.3, retries=1, backoff=0.01)
        elapsed = time.monotonic() - started
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    msg = str(err.value)
    assert "could not fetch train-images-idx3-ubyte.gz" in msg and url in msg
    assert "gave up after 2 attempts" in msg and re.search(r"time(d )?out", msg, re.I), msg
    assert len(requests) == 2 and elapsed < 3
    assert list(tmp_path.iterdir()) == []


def test_mnist_labels_outside_0_to_9_are_refused():
    from nnflow.data.prepare import split_mnist

    images = np.zeros((20, 28, 28), np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 10
    bad = labels.copy()
    bad[7] = 12
    split_mnist(images, labels, images[:5], labels[:5], validation_size=5)  # valid
    for args in ((images, bad, images[:5], labels[:5]), (images, labels, images[:5], bad[5:10])):
        with pytest.raises(ValueError, match=r"12.*0\.\.9|0\.\.9.*12"):
            split_mnist(*args, validation_size=5)


def test_sources_registry_has_checksums_for_every_file():
    """Every file a stage trusts is verified against a published checksum."""
    for name in ("mnist", "cifar10"):
        for f in sources.get_source(name).files:
            assert re.fullmatch(r"[0-9a-f]{32}", f.md5), (name, f)
