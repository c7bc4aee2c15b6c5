"""Smoke test of the data stage under Snakemake, on a synthetic mirror (never real data)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from nnflow.data.prepared import load_prepared
from nnflow.data.synthetic import write_mirror

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
PREPARED = ["X_train", "y_train", "X_val", "y_val", "X_test", "y_test"]
TARGETS = [f"results/data/{ds}/{n}" for ds in ("mnist", "cifar10")
           for n in [*(f"{a}.npy" for a in PREPARED), "provenance.json"]]


def _config(tmp_path: Path) -> Path:
    """config.yaml of the project with a tiny data section and every experiment disabled."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    data = copy.deepcopy(cfg["data"])
    data.update(mirror=None, retries=0, timeout_seconds=5)
    datasets = data["datasets"]
    datasets["mnist"] = {**datasets.get("mnist", {}), "validation_size": 100, "accept_mirror_checksums": True}
    datasets["cifar10"] = {**datasets.get("cifar10", {}), "num_training": 400, "num_validation": 50,
                           "num_test": 100, "accept_mirror_checksums": True}
    cfg["data"] = data
    for exp in cfg.get("experiments", {}).values():
        exp["enabled"] = False
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _snakefile(tmp_path: Path) -> Path:
    """The data stage alone: the real common.smk and data.smk (others' stages not needed).

    ``workflow/`` is linked next to it, so paths relative to the workflow's base
    directory (the schema) resolve as in the project.
    """
    (tmp_path / "workflow").symlink_to(ROOT / "workflow", target_is_directory=True)
    path = tmp_path / "Snakefile"
    path.write_text('include: "workflow/rules/common.smk"\ninclude: "workflow/rules/data.smk"\n')
    return path


def _snakemake(tmp_path, mirror, *args, targets=TARGETS, succeed=True):
    env = {**os.environ, "NNFLOW_DATA_MIRROR": str(mirror),
           "PYTHONPATH": str(ROOT / "src")}
    cmd = [
        str(SNAKEMAKE), "-s", str(tmp_path / "Snakefile"), "--directory", str(tmp_path / "w"),
        "--configfile", str(tmp_path / "config.yaml"), "--cores", "2",
        "--workflow-profile", "none", *args, *targets,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert (proc.returncode == 0) == succeed, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_data_stage_on_synthetic_mirror(tmp_path):
    mirror = write_mirror(tmp_path / "mirror", np.random.default_rng(7), n_train=600, n_test=100)
    _config(tmp_path)
    _snakefile(tmp_path)
    _snakemake(tmp_path, mirror)

    work = tmp_path / "w"
    shapes = {"mnist": (500, 100, 100, 784, np.float64), "cifar10": (400, 50, 100, 3072, np.float32)}
    for ds, (ntr, nva, nte, dim, dtype) in shapes.items():
        d = load_prepared(work / "results" / "data" / ds)
        assert d["X_train"].shape == (ntr, dim) and d["X_train"].dtype == dtype
        assert d["X_val"].shape == (nva, dim) and d["X_test"].shape == (nte, dim)
        assert d["y_train"].shape == (ntr,) and d["y_train"].dtype == np.uint8
        prov = d["provenance"]
        assert prov["canonical"] is False
        assert all(f["verified_by"] == "mirror SHA256SUMS" for f in prov["files"])
        assert all(f["source"].startswith(str(mirror)) for f in prov["files"])
        assert (work / "results" / "logs" / "data" / f"prepare_{ds}.log").exists()
        assert (work / "results" / "benchmarks" / "data" / f"prepare_{ds}.tsv").exists()
    assert "JPEG-recompressed" in load_prepared(work / "results/data/cifar10")["provenance"]["note"]

    # a second run has nothing to do, even when the same bytes sit in another mirror
    assert "Nothing to be done" in _snakemake(tmp_path, mirror, "-n")
    other = shutil.copytree(mirror, tmp_path / "other-mirror")
    assert "Nothing to be done" in _snakemake(tmp_path, other, "-n")

    # a changed split setting reruns prepare, not fetch
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["data"]["datasets"]["mnist"]["validation_size"] = 50
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = _snakemake(tmp_path, mirror, "-n")
    assert "prepare_dataset" in out and "fetch_mnist" not in out and "fetch_cifar10" not in out


def test_a_cached_file_replaced_after_the_fetch_is_refused_then_refetched(tmp_path):
    """The prepare job that the newer file reruns refuses it, naming the file and both
    checksums, and leaves no prepared arrays; deleting the file refetches it."""
    import hashlib

    from nnflow.data.formats import read_idx
    from nnflow.data.synthetic import gzip_bytes, idx_bytes

    mirror = write_mirror(tmp_path / "mirror", np.random.default_rng(7), n_train=600, n_test=100,
                          datasets=("mnist",))
    _config(tmp_path)
    _snakefile(tmp_path)
    mnist_targets = [t for t in TARGETS if "/mnist/" in t]
    _snakemake(tmp_path, mirror, targets=mnist_targets)

    work = tmp_path / "w"
    cached = work / "results" / "downloads" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    recorded = hashlib.sha256(cached.read_bytes()).hexdigest()
    labels = read_idx(cached)
    cached.write_bytes(gzip_bytes(idx_bytes(np.random.default_rng(1).permutation(labels))))
    actual = hashlib.sha256(cached.read_bytes()).hexdigest()
    _snakemake(tmp_path, mirror, targets=mnist_targets, succeed=False)
    log = (work / "results" / "logs" / "data" / "prepare_mnist.log").read_text()
    assert f"results/downloads/mnist/{cached.name}: not the file the fetch verified: " in log
    assert f"expected sha256 {recorded} (recorded in sources.json" in log and f"got {actual}" in log
    assert not (work / "results" / "data" / "mnist" / "provenance.json").exists()

    cached.unlink()
    out = _snakemake(tmp_path, mirror, targets=mnist_targets)
    assert "fetch_mnist" in out
    d = load_prepared(work / "results" / "data" / "mnist")
    entry = next(f for f in d["provenance"]["files"] if f["name"] == cached.name)
    assert cached.read_bytes() == (mirror / "mnist" / cached.name).read_bytes()
    assert entry["sha256"] == recorded and entry["verified_by"] == "mirror SHA256SUMS"
    np.testing.assert_array_equal(d["y_test"], labels)


def test_a_new_idx_dataset_needs_only_config_yaml(tmp_path):
    """(b) A second dataset in MNIST's IDX format — 12x12 images of 3 classes, built here —
    declared in config.yaml alone is fetched (from a mirror), verified against its
    declared md5s, prepared, trained on, and named in its figure."""
    import hashlib

    from nnflow.data.synthetic import class_images, gzip_bytes, idx_bytes

    rng = np.random.default_rng(3)
    y_tr, y_te = rng.integers(0, 3, 240).astype(np.uint8), rng.integers(0, 3, 60).astype(np.uint8)
    x_tr, patterns = class_images(rng, y_tr, 144)
    x_te, _ = class_images(rng, y_te, 144, patterns=patterns)
    raw = {"train_images": idx_bytes(x_tr.reshape(-1, 12, 12)), "train_labels": idx_bytes(y_tr),
           "test_images": idx_bytes(x_te.reshape(-1, 12, 12)), "test_labels": idx_bytes(y_te)}
    mirror = tmp_path / "mirror"
    (mirror / "tiny").mkdir(parents=True)
    files = {}
    for role, data in raw.items():
        name = f"tiny-{role}.gz"
        (mirror / "tiny" / name).write_bytes(gzip_bytes(data))
        files[role] = {"name": name, "md5": hashlib.md5(data).hexdigest(), "md5_of": "decompressed"}

    cfg = yaml.safe_load((ROOT / "tests" / "smoke" / "config.yaml").read_text())
    for exp in cfg["experiments"].values():
        exp["enabled"] = False
    cfg["pagerank"] = {"enabled": False}
    cfg["data"]["datasets"]["tiny_digits"] = {
        "format": "idx", "label": "Tiny digits", "mirror_subdir": "tiny", "files": files,
        "validation_size": 40, "num_classes": 3, "pixel_scale": 255,
    }
    cfg["experiments"]["tiny_costs"] = {
        "trainer": "network2", "dataset": "tiny_digits", "seeds": [1],
        "params": {"sizes": [144, 8, 3], "epochs": 2, "mini_batch_size": 10, "eta": 0.5, "lmbda": 0.0,
                   "weight_init": "default"},
        "grid": {"points": [{"cost": "quadratic"}, {"cost": "cross_entropy"}]},
        "figure": "cost_comparison",
        "report": {"category": "Own data", "subcategory": "tiny digits", "title": "Tiny digits."},
    }
    cfg["experiments"]["tiny_solver"] = {
        "trainer": "solver", "dataset": "tiny_digits", "seeds": [1],
        "params": {"hidden_dims": [8], "num_epochs": 2, "batch_size": 20, "learning_rate": 0.01,
                   "update_rule": "adam", "num_train_samples": None},
    }
    work = tmp_path / "w"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "NNFLOW_DATA_MIRROR": str(mirror), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--configfile",
         str(work / "config.yaml"), "--cores", "2"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    d = load_prepared(work / "results" / "data" / "tiny_digits")
    assert (d["X_train"].shape, d["X_val"].shape, d["X_test"].shape) == ((200, 144), (40, 144), (60, 144))
    prov = d["provenance"]
    assert prov["canonical"] is True and prov["format"] == "idx" and prov["num_classes"] == 3
    assert all(f["verified_by"] == "published md5" for f in prov["files"])
    run_json = work / "results" / "runs" / "tiny_solver" / "base" / "seed=1" / "run.json"
    info = yaml.safe_load(run_json.read_text())
    assert info["status"] == "completed" and info["dataset"]["name"] == "tiny_digits"
    caption = (work / "results" / "experiments" / "tiny_costs" / "caption.rst").read_text()
    assert "the 60 Tiny digits test images" in caption and "network2 [144, 8, 3]" in caption
    import pandas as pd

    assert set(pd.read_csv(work / "results" / "summary.csv")["experiment"]) == {"tiny_costs", "tiny_solver"}
