"""Listing runs, keeping snapshots and comparing two result sets (nnflow.compare, python -m nnflow).

The result sets are written by the real writer (:func:`nnflow.train.run.write_run_outputs`)
from tiny runs of the real trainers, so every file has the workflow's format.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_runs import learnable_data as _data

from nnflow.compare.diff import compare
from nnflow.compare.figure import comparison_figure, draw_comparison, figure_rows
from nnflow.compare.headline import headline_text
from nnflow.compare.results import SNAPSHOT_MANIFEST, load_result_set, resolve
from nnflow.compare.snapshot import make_snapshot
from nnflow.compare.text import comparison_text, runs_text
from nnflow.files import file_sha256, load_npz, save_npz, write_json
from nnflow.report.tables import experiment_tables, write_frame
from nnflow.train.checkpoint import Checkpoint
from nnflow.train.run import write_run_outputs
from nnflow.train.trainers.network2 import train_network2
from nnflow.train.trainers.solver import train_solver
from nnflow.workflow.layout import RUN_OUTPUTS, SOLVER_OUTPUTS, SUMMARY_TABLE, ResultTree

ROOT = Path(__file__).resolve().parents[1]
NET2 = {"sizes": [20, 8, 10], "epochs": 2, "mini_batch_size": 10, "eta": 0.5, "lmbda": 0.0,
        "cost": "cross_entropy", "weight_init": "default", "train_size": 60}
SOLVER = {"hidden_dims": [8], "activation": "relu", "update_rule": "adam", "learning_rate": 1e-3,
          "batch_size": 20, "num_epochs": 2, "train_size": 60, "num_train_samples": None}

CHANGED = "mnist_cost/eta=0.5/seed=2"
ADDED = "mnist_cost/eta=0.5/seed=3"
REMOVED = "mnist_cost/eta=3.0/seed=1"
IDENTICAL = ["cifar_optimizers/update_rule=adam/seed=1", "mnist_cost/eta=0.5/seed=1"]


def write_run(root: Path, data, run_id: str, params: dict, trainer: str = "network2") -> Path:
    """Train one tiny run and write its files where the workflow writes them."""
    experiment, _, rest = run_id.partition("/")
    seed = int(rest.rsplit("seed=", 1)[1])
    spec = {"experiment": experiment, "run_id": run_id, "seed": seed, "trainer": trainer,
            "dataset": "mnist", "params": params}
    train = train_network2 if trainer == "network2" else train_solver
    rows, weights, status, meta, extra = train(spec, data, Checkpoint(None, spec))
    run_dir = Path(ResultTree(str(root)).run_dir(run_id))
    outputs = {key: str(run_dir / name) for key, name in RUN_OUTPUTS.items()}
    if trainer == "solver":
        outputs["iterations"] = str(run_dir / SOLVER_OUTPUTS["iterations"])
    write_run_outputs(spec, rows, weights, status, meta, extra, outputs, data["provenance"], 1, 0.5)
    return run_dir


@pytest.fixture(scope="module")
def result_sets(tmp_path_factory):
    """A and B: B has one run retrained with a changed parameter, one added, one removed."""
    rng = np.random.default_rng(7)
    data = _data(rng)
    base = tmp_path_factory.mktemp("sets")
    a = base / "a"
    write_run(a, data, "mnist_cost/eta=0.5/seed=1", NET2)
    write_run(a, data, CHANGED, NET2)
    write_run(a, data, REMOVED, {**NET2, "eta": 3.0})
    write_run(a, data, "cifar_optimizers/update_rule=adam/seed=1", SOLVER, trainer="solver")
    write_json(Path(ResultTree(str(a)).unstable) / "numbers.json", {"interval": {"max_length": 0.45}})
    write_summary(a)
    b = base / "b"
    shutil.copytree(a, b)
    shutil.rmtree(Path(ResultTree(str(b)).run_dir(REMOVED)))
    write_run(b, data, CHANGED, {**NET2, "epochs": 3})
    write_run(b, data, ADDED, NET2)
    write_summary(b)
    return a, b


def write_summary(root: Path) -> None:
    """summary.csv of the runs below ``root``, as the metrics_table rule writes it."""
    infos = sorted(Path(ResultTree(str(root)).runs).rglob("run.json"))
    _, summary = experiment_tables([p.parent / "metrics.csv" for p in infos], infos)
    write_frame(root / SUMMARY_TABLE, summary)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                                      os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "nnflow", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


# ------------------------------------------------------------------------------ comparing


def test_compare_names_exactly_the_added_removed_and_changed_runs(result_sets):
    a, b = result_sets
    c = compare(load_result_set(a), load_result_set(b))
    assert c.added() == [ADDED]
    assert c.removed() == [REMOVED]
    assert c.changed() == [CHANGED]
    assert c.identical == IDENTICAL
    params = c.of_kind("param")
    assert [(d.where, d.key, d.old, d.new) for d in params] == [(CHANGED, "epochs", 2, 3)]
    metrics = {d.key: d for d in c.of_kind("metric")}
    assert {d.where for d in metrics.values()} == {CHANGED}
    assert (metrics["epochs_completed"].old, metrics["epochs_completed"].new) == (2, 3)
    assert metrics["epochs_completed"].delta == 1
    assert "final_train_cost" in metrics  # a third epoch of SGD changes the cost
    assert [d.where for d in c.of_kind("weights")] == [CHANGED]
    assert c.of_kind("status") == [] and c.of_kind("number") == []


def test_the_comparison_table_shows_each_difference_in_its_section(result_sets):
    a, b = result_sets
    text = comparison_text(compare(load_result_set(a), load_result_set(b)))
    sections = {block.split("\n", 1)[0]: block for block in text.split("\n\n")}
    assert "4 runs in A, 4 in B: 1 added, 1 removed, 1 changed, 2 identical" in text
    added = sections["Added (only in B):"]
    assert ADDED in added and REMOVED not in added and CHANGED not in added
    assert REMOVED in sections["Removed (only in A):"]
    param_lines = sections["Changed parameters:"].splitlines()[1:]
    assert len(param_lines) == 2 and param_lines[1].split() == [CHANGED, "epochs", "2", "3"]
    metrics = sections["Changed metrics (headline; --all-metrics lists all):"]
    row = next(line for line in metrics.splitlines() if "epochs_completed" in line)
    assert row.split() == [CHANGED, "epochs_completed", "2", "3", "+1"]
    assert "more metric differences" in metrics  # the costs, listed with --all-metrics
    assert text.rstrip().endswith("Identical: 2 runs (cifar_optimizers 1, mnist_cost 1)")
    everything = comparison_text(compare(load_result_set(a), load_result_set(b)), all_metrics=True)
    assert "final_train_cost" not in text and "final_train_cost" in everything


def test_the_columns_of_the_table_are_aligned(result_sets):
    a, b = result_sets
    text = comparison_text(compare(load_result_set(a), load_result_set(b)), all_metrics=True)
    block = next(s for s in text.split("\n\n") if s.startswith("Changed metrics"))
    header, *rows = block.splitlines()[1:]
    start = header.index("metric")
    assert all(row[start:].startswith(row.split()[1]) for row in rows)
    end = header.index("delta") + len("delta")
    assert all(len(row) == end for row in rows)  # a numeric column is right-aligned


def test_seconds_are_not_compared_and_a_threshold_hides_tiny_differences(result_sets, tmp_path):
    a, _ = result_sets
    b = _copy(a, tmp_path / "b")
    run_json = Path(ResultTree(str(b)).run_dir(IDENTICAL[1])) / "run.json"
    info = json.loads(run_json.read_text())
    info["seconds"] = info["seconds"] + 100.0
    run_json.write_text(json.dumps(info))
    metrics_csv = run_json.parent / "metrics.csv"
    header, *rows = metrics_csv.read_text().splitlines()
    column = header.split(",").index("test_cost")
    cells = rows[-1].split(",")
    cells[column] = repr(float(cells[column]) + 1e-12)
    metrics_csv.write_text("\n".join([header, *rows[:-1], ",".join(cells)]) + "\n")

    exact = compare(load_result_set(a), load_result_set(b))
    assert [(d.where, d.key) for d in exact.differences] == [(IDENTICAL[1], "final_test_cost")]
    assert exact.differences[0].delta == pytest.approx(1e-12, rel=1e-3)
    tolerant = compare(load_result_set(a), load_result_set(b), threshold=1e-9)
    assert tolerant.differences == [] and len(tolerant.identical) == 4
    assert "No differences" in comparison_text(tolerant)


def test_changed_theory_numbers_are_listed_by_file_and_key(result_sets, tmp_path):
    a, _ = result_sets
    b = _copy(a, tmp_path / "b")
    write_json(Path(ResultTree(str(b)).unstable) / "numbers.json", {"interval": {"max_length": 0.5}})
    c = compare(load_result_set(a), load_result_set(b))
    assert [(d.kind, d.where, d.key, d.old, d.new) for d in c.differences] == [
        ("number", "theory/unstable/numbers.json", "interval.max_length", 0.45, 0.5)]
    assert "theory/unstable/numbers.json  interval.max_length" in comparison_text(c)


def test_the_figure_and_csv_show_the_changed_runs(result_sets, tmp_path):
    a, b = result_sets
    c = compare(load_result_set(a), load_result_set(b))
    rows = figure_rows(c)
    assert [label for label, _, _ in rows] == [f"{CHANGED} [test]", f"{ADDED} [test]", f"{REMOVED} [test]"]
    changed, added, removed = rows
    assert added[1] is None and added[2] is not None and removed[2] is None and removed[1] is not None
    old = c.a.runs[CHANGED].metrics["final_test_accuracy"]
    assert changed[1] == pytest.approx(100 * old)
    png, pdf = comparison_figure(c, tmp_path / "compare.png")
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0

    proc = _cli("compare", a, b, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "out" / "compare.csv").read_text().splitlines()
    assert lines[0] == "kind,where,key,old,new,delta"
    kinds = {(line.split(",")[0], line.split(",")[1]) for line in lines[1:]}
    assert {w for k, w in kinds if k == "added"} == {ADDED}
    assert {w for k, w in kinds if k == "removed"} == {REMOVED}
    assert {w for k, w in kinds if k in ("param", "metric", "weights")} == {CHANGED}
    assert (tmp_path / "out" / "compare.png").is_file() and (tmp_path / "out" / "compare.pdf").is_file()


def test_the_figure_is_readable_at_1280_px(result_sets, tmp_path):
    """Shown in a 1280 px wide window (scaled down if wider), its smallest text is >= 8 px."""
    from matplotlib.image import imread
    from matplotlib.text import Text

    a, b = result_sets
    c = compare(load_result_set(a), load_result_set(b))
    fig = draw_comparison(c)
    png, _ = comparison_figure(c, tmp_path / "compare.png")
    width_px = imread(png).shape[1]
    scale = min(1.0, 1280 / width_px)
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
    smallest_pt = min(t.get_fontsize() for t in texts)
    assert smallest_pt * 150 / 72 * scale >= 8, (smallest_pt, width_px)
    assert len(texts) >= 3 * 2  # tick labels and notes of the three runs at least


def test_runs_the_summary_does_not_list_are_left_over_not_compared(result_sets, tmp_path):
    """After a grid value changed, Snakemake keeps the old run's directory; the new summary.csv
    no longer lists it, so it is named as left over, not compared as identical."""
    a, b = result_sets
    b_stale = _copy(b, tmp_path / "b")
    old_run = Path(ResultTree(str(a)).run_dir(REMOVED))
    shutil.copytree(old_run, Path(ResultTree(str(b_stale)).run_dir(REMOVED)))
    c = compare(load_result_set(a), load_result_set(b_stale))
    assert c.removed() == [REMOVED] and REMOVED not in c.identical
    assert list(load_result_set(b_stale).left_over) == [REMOVED]
    text = comparison_text(c)
    assert "4 runs in A, 4 in B: 1 added, 1 removed" in text
    assert text.split("Left over, not compared")[1].splitlines()[-1].split() == ["B", REMOVED]
    listing = runs_text(load_result_set(b_stale, hash_models=False))
    assert listing.rstrip().splitlines()[-1].strip() == REMOVED
    everything = compare(load_result_set(a, all_runs=True), load_result_set(b_stale, all_runs=True))
    assert everything.removed() == [] and REMOVED in everything.identical


# ------------------------------------------------------------------------------ listing


def test_runs_lists_every_run_with_the_parameters_that_vary_and_headline_metrics(result_sets):
    _, b = result_sets
    text = runs_text(load_result_set(b, hash_models=False))
    blocks = {block.split(":", 1)[0]: block for block in text.split("\n\n")[1:]}
    assert set(blocks) == {"mnist_cost", "cifar_optimizers"}
    mnist = blocks["mnist_cost"].splitlines()
    assert mnist[0] == "mnist_cost: 3 runs (network2)"
    # eta is in the labels; epochs varies (the changed run) and is not: it gets a column
    assert mnist[1].split() == ["run", "epochs", "seed", "status", "epochs", "done", "final", "test", "acc",
                                "best", "test", "acc", "seconds"]
    changed = next(line for line in mnist[2:] if line.split()[2] == "2")
    assert changed.split()[:5] == ["eta=0.5", "3", "2", "completed", "3"]
    assert "final val acc" in blocks["cifar_optimizers"]


# ------------------------------------------------------------------------------ headline


def _add_search(root: Path, data) -> float:
    """A random search's candidate and its final run (retrained, tested once); the test accuracy."""
    write_run(root, data, "cifar_challenge/cand=000/seed=1", SOLVER, trainer="solver")
    spec = {"experiment": "cifar_challenge", "run_id": "cifar_challenge/final", "seed": 1,
            "trainer": "solver", "dataset": "cifar10", "params": SOLVER}
    rows, weights, status, meta, extra = train_solver(spec, data, Checkpoint(None, spec), evaluate_test=True)
    final_dir = Path(ResultTree(str(root)).experiments) / "cifar_challenge" / "final"
    outputs = {key: str(final_dir / name) for key, name in {**RUN_OUTPUTS, **SOLVER_OUTPUTS}.items()}
    write_run_outputs(spec, rows, weights, status, meta, extra, outputs, data["provenance"], 1, 0.5)
    return extra["test_accuracy"]


def _final(root: Path, run_id: str, key: str) -> float:
    return json.loads((Path(ResultTree(str(root)).run_dir(run_id)) / "run.json").read_text())["final"][key]


def test_headline_lists_each_label_as_mean_over_seeds_and_a_search_by_its_final_run(result_sets, tmp_path):
    _, b = result_sets
    results = _copy(b, tmp_path / "results")
    test_accuracy = _add_search(results, _data(np.random.default_rng(3)))
    write_summary(results)
    report = tmp_path / "report.html"
    text = headline_text(load_result_set(results, hash_models=False), report)
    assert text.splitlines()[0] == f"Report: not built yet ({report}; `make reproduce` builds it)"
    rows = [line.split() for line in text.splitlines()[4:]]
    mnist = [_final(results, f"mnist_cost/eta=0.5/seed={seed}", "test_accuracy") for seed in (1, 2, 3)]
    adam = _final(results, "cifar_optimizers/update_rule=adam/seed=1", "val_accuracy")
    assert rows == [  # summary.csv's order; the search's candidate is left out
        ["cifar_optimizers", "update_rule=adam", "final", "val", "accuracy", f"{100 * adam:.2f}%", "1"],
        ["mnist_cost", "eta=0.5", "final", "test", "accuracy", f"{100 * sum(mnist) / 3:.2f}%",
         f"{100 * min(mnist):.2f}%-{100 * max(mnist):.2f}%", "3"],
        ["cifar_challenge", "final", "test", "accuracy", "(once)", f"{100 * test_accuracy:.2f}%", "1"],
    ]
    report.write_text("<html></html>")
    proc = _cli("headline", "--results", results, "--report", report)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"Report: {report} ({report.resolve().as_uri()})"
    assert proc.stdout.splitlines()[1:] == text.splitlines()[1:]


# ------------------------------------------------------------------------------ snapshots


def test_a_snapshot_keeps_the_small_files_and_hashes_the_weights(result_sets, tmp_path):
    a, _ = result_sets
    results = _copy(a, tmp_path / "results")
    config = tmp_path / "config.yaml"
    config.write_text("experiments: {}\n")
    manifest = make_snapshot("before", results, config)
    snap = Path(ResultTree(str(results)).snapshots) / "before"
    assert manifest["path"] == str(snap)
    files = {p.relative_to(snap).as_posix() for p in snap.rglob("*") if p.is_file()}
    solver_run = Path(ResultTree(str(results)).run_dir(IDENTICAL[0]))
    assert (solver_run / SOLVER_OUTPUTS["iterations"]).is_file()  # in the results, not in the snapshot
    assert not any(f.endswith((".npz", ".npy", SOLVER_OUTPUTS["iterations"])) for f in files)
    for run_id in (CHANGED, REMOVED, *IDENTICAL):
        rel = Path(ResultTree(".").run_dir(run_id)).relative_to(".").as_posix()
        assert {f"{rel}/run.json", f"{rel}/metrics.csv"} <= files
        model = f"{rel}/model.npz"
        assert manifest["models"][model]["sha256"] == file_sha256(results / model)
    assert {"summary.csv", "theory/unstable/numbers.json", "config.yaml", SNAPSHOT_MANIFEST} <= files
    assert manifest["config"]["sha256"] == file_sha256(config) and manifest["created"].endswith("Z")
    assert json.loads((snap / SNAPSHOT_MANIFEST).read_text())["models"] == manifest["models"]
    # the snapshot compares as equal to what it was taken of
    same = compare(load_result_set(snap), load_result_set(results))
    assert same.differences == [] and len(same.identical) == 4


def test_changed_weights_are_detected_against_a_snapshot(result_sets, tmp_path):
    a, _ = result_sets
    results = _copy(a, tmp_path / "results")
    make_snapshot("before", results)
    model = Path(ResultTree(str(results)).run_dir(IDENTICAL[0])) / "model.npz"
    arrays = load_npz(model)
    name = sorted(arrays)[0]
    arrays[name] = arrays[name] + 1e-3
    save_npz(model, **arrays)
    c = compare(load_result_set(resolve("before", results)), load_result_set(results))
    assert [(d.kind, d.where) for d in c.differences] == [("weights", IDENTICAL[0])]
    assert "Changed weights (model.npz SHA-256):" in comparison_text(c)


def test_a_snapshot_is_never_overwritten_and_needs_results(result_sets, tmp_path):
    a, _ = result_sets
    results = _copy(a, tmp_path / "results")
    make_snapshot("before", results)
    proc = _cli("snapshot", "before", "--results", results)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{results}/snapshots/before: already exists" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _cli("snapshot", "x", "--results", empty)
    assert proc.returncode == 2 and f"{empty}: no results to keep" in proc.stderr
    assert not (empty / "snapshots").exists() or not any((empty / "snapshots").iterdir())


# ------------------------------------------------------------------------------ the command line


def test_cli_compares_the_newest_snapshot_with_the_results_by_default(result_sets, tmp_path):
    a, b = result_sets
    results = _copy(a, tmp_path / "results")
    proc = _cli("snapshot", "before", "--results", results)
    assert proc.returncode == 0, proc.stderr
    assert "snapshot 'before'" in proc.stdout and "recorded by SHA-256, not copied" in proc.stdout
    shutil.rmtree(results / "runs")
    shutil.copytree(b / "runs", results / "runs")
    shutil.copy(b / SUMMARY_TABLE, results / SUMMARY_TABLE)
    proc = _cli("compare", "--results", results)
    assert proc.returncode == 0, proc.stderr
    assert "snapshot 'before'" in proc.stdout
    assert "1 added, 1 removed, 1 changed, 2 identical" in proc.stdout
    assert CHANGED in proc.stdout and ADDED in proc.stdout and REMOVED in proc.stdout
    proc = _cli("runs", "before", "--results", results)
    assert proc.returncode == 0 and REMOVED.split("/")[1] in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["compare", "{tmp}/missing", "{a}"], "'{tmp}/missing' is neither a directory nor a snapshot in "
                                          "{results}/snapshots/ (snapshots there: none)"),
    (["compare", "nosuchname", "{a}"], "'nosuchname' is neither a directory nor a snapshot"),
    (["compare", "{tmp}/empty", "{a}"], "{tmp}/empty: no results here"),
    (["compare"], "no snapshot in {results}/snapshots/ to compare with"),
    (["runs", "{tmp}/empty"], "{tmp}/empty: no results here"),
    (["headline", "{tmp}/empty"], "{tmp}/empty: no results here"),
    (["compare", "{a}", "{a}", "--threshold", "-1"], "threshold=-1.0: expected a finite number >= 0"),
])
def test_bad_input_exits_2_with_a_message_naming_it(result_sets, tmp_path, args, message):
    a, _ = result_sets
    (tmp_path / "empty").mkdir()
    results = tmp_path / "results"
    fill = {"tmp": tmp_path, "a": a, "results": results}
    proc = _cli(*(arg.format(**fill) for arg in args), "--results", results, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("usage: python -m nnflow")
    assert message.format(**fill) in proc.stderr


def test_help_explains_each_command():
    proc = _cli("--help")
    assert proc.returncode == 0
    assert all(name in proc.stdout for name in ("runs", "snapshot", "compare", "headline"))
    proc = _cli("compare", "--help")
    assert "--threshold" in proc.stdout and "results/snapshots/" in proc.stdout
