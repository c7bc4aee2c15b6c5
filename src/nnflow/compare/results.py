"""One result set — a results directory or a snapshot of one — read into plain records.

A result set is a tree laid out as :class:`nnflow.workflow.layout.ResultTree` says:
every directory holding a ``run.json`` below ``runs/`` (the grid and search runs) or
``experiments/`` (a search's final run) is one run, keyed by its run ID. Of a run we
keep what identifies and measures it:

- its parameters (``spec.params``) and status,
- its *metrics*: the summary row of :func:`nnflow.report.tables.summarise_run` (the
  final value of every metric column, the best accuracy and its epoch — the numbers
  of ``summary.csv``), the epochs completed and, for a search's final run, the test
  accuracy measured once,
- the SHA-256 of its ``model.npz`` (read from the file, or from a snapshot's
  manifest, which keeps the hash instead of the weights),
- its wall-clock seconds (listed, never compared: they differ on every rerun).

Snakemake never deletes the runs a config no longer declares (after a grid value
changed, the old run's directory stays). A run on disk that the set's ``summary.csv``
does not list is therefore *left over* — from an earlier config, or not aggregated
yet — and kept apart from the runs compared (``all_runs=True`` keeps it in); a
search's final run is always in, and without a ``summary.csv`` every run is.

Besides the runs, the *numbers* of the analytic stages and of a search's choice are
read as flat ``{key path: value}`` maps: the theory stages' ``numbers.json``, each
PageRank graph's ``summary.json`` and a search's ``chosen.json``.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnflow.files import file_sha256, read_json
from nnflow.pagerank.cases import GRAPH_ANALYSIS_FILES
from nnflow.report.tables import summarise_run
from nnflow.workflow.layout import RUN_OUTPUTS, SEARCH_OUTPUTS, SUMMARY_TABLE, THEORY_NUMBERS, ResultTree

SNAPSHOT_MANIFEST = "snapshot.json"
DEFAULT_RESULTS = "results"


class ResultsError(ValueError):
    """A result directory or snapshot that cannot be read (the message names the path)."""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    experiment: str
    trainer: str
    seed: int | None
    params: dict[str, Any]
    status: str
    metrics: dict[str, Any]
    seconds: float | None
    model_sha256: str | None

    @property
    def run_path(self) -> str:
        """The run ID below its experiment (``<label>/seed=<seed>``, or ``final``)."""
        return self.run_id.removeprefix(f"{self.experiment}/")

    @property
    def label(self) -> str:
        return self.run_path.rsplit("/seed=", 1)[0]

    def headline(self) -> tuple[str, float] | None:
        """``(metric, value)`` that answers "how good is this run": the test accuracy measured
        once (a search's final run), else the final test accuracy (network2 runs), else the
        final validation accuracy (Solver runs); None for a run without any of them."""
        for key in ("test_accuracy", "final_test_accuracy", "final_val_accuracy"):
            value = self.metrics.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return key, float(value)
        return None


@dataclass
class ResultSet:
    root: Path
    runs: dict[str, RunRecord]
    numbers: dict[str, dict[str, Any]]
    manifest: dict[str, Any] | None = None
    left_over: dict[str, RunRecord] = field(default_factory=dict)

    @property
    def is_snapshot(self) -> bool:
        return self.manifest is not None

    def describe(self) -> str:
        """One line: the path and, for a snapshot, its name, time, commit and config hash."""
        text = f"{self.root} ({len(self.runs)} runs"
        if self.left_over:
            text += f", {len(self.left_over)} left over"
        if self.manifest is not None:
            m = self.manifest
            commit = (m.get("git_commit") or "n/a")[:12]
            config = ((m.get("config") or {}).get("sha256") or "n/a")[:12]
            text += f"; snapshot {m.get('name')!r} of {m.get('created')}, commit {commit}, config {config}"
        return text + ")"


def run_dirs(root: str | os.PathLike) -> list[Path]:
    """The directories below ``root`` that hold a run (a ``run.json``), runs first, then finals."""
    tree = ResultTree(str(root))
    found = []
    for top in (tree.runs, tree.experiments):
        found += sorted(p.parent for p in Path(top).rglob(RUN_OUTPUTS["run_info"]))
    return found


def number_files(root: str | os.PathLike) -> list[Path]:
    """The JSON files of the non-training results below ``root`` that exist, in a fixed order."""
    tree = ResultTree(str(root))
    candidates = [Path(tree.unstable) / THEORY_NUMBERS, Path(tree.complex_backprop) / THEORY_NUMBERS]
    candidates += sorted(Path(tree.pagerank).glob(f"*/{GRAPH_ANALYSIS_FILES['summary']}"))
    candidates += sorted(Path(tree.experiments).glob(f"*/{SEARCH_OUTPUTS['chosen']}"))
    return [p for p in candidates if p.is_file()]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested JSON as ``{"a.b[0].c": leaf}`` (an empty list or dict is a leaf)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _finite_or_text(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else repr(value)


def read_run(run_dir: Path, root: Path, models: Mapping[str, Any] | None) -> RunRecord:
    """One run's record; ``models`` is a snapshot's ``{relative model path: {sha256}}``."""
    info_path = run_dir / RUN_OUTPUTS["run_info"]
    metrics_path = run_dir / RUN_OUTPUTS["metrics"]
    info = read_json(info_path)
    spec = info.get("spec") if isinstance(info, dict) else None
    if not isinstance(spec, dict) or not {"run_id", "experiment", "params"} <= set(spec):
        raise ResultsError(f"{info_path}: not a run.json of nnflow (no spec with run_id, experiment, params)")
    if not metrics_path.is_file():
        raise ResultsError(f"{metrics_path}: missing (every run directory with a run.json has one)")
    try:
        row = summarise_run(metrics_path, info)
    except (KeyError, ValueError) as exc:
        raise ResultsError(f"{metrics_path}: cannot be read as a run's metrics ({exc})") from None
    metrics = {k: _finite_or_text(v) for k, v in row.items()
               if k.startswith(("final_", "best_")) or k in ("epochs_completed", "diverged_epoch")}
    if info.get("test_accuracy") is not None:
        metrics["test_accuracy"] = info["test_accuracy"]
    model = run_dir / RUN_OUTPUTS["model"]
    if models is not None:
        sha = (models.get(model.relative_to(root).as_posix()) or {}).get("sha256")
    else:
        sha = file_sha256(model) if model.is_file() else None
    return RunRecord(
        run_id=spec["run_id"], experiment=spec["experiment"], trainer=spec.get("trainer", "n/a"),
        seed=spec.get("seed"), params=dict(spec["params"]), status=str(row["status"]),
        metrics=metrics, seconds=info.get("seconds"), model_sha256=sha,
    )


def summary_run_ids(root: Path) -> set[str] | None:
    """The run IDs ``summary.csv`` lists, or None without a summary (or one without run IDs)."""
    path = root / SUMMARY_TABLE
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if "run_id" not in (reader.fieldnames or []):
            return None
        return {row["run_id"] for row in reader}


def load_result_set(root: str | os.PathLike, hash_models: bool = True, all_runs: bool = False) -> ResultSet:
    """Read every run and every number file below ``root`` (a results directory or a snapshot).

    Runs that the set's ``summary.csv`` does not list go to ``left_over`` (see the module
    docstring) unless ``all_runs``. ``hash_models=False`` skips hashing the weights of a live
    tree (listing needs no hashes).
    """
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"{root}: no such directory")
    manifest_path = root / SNAPSHOT_MANIFEST
    manifest = read_json(manifest_path) if manifest_path.is_file() else None
    if manifest is not None:
        models = manifest.get("models") or {}
    else:
        models = None if hash_models else {}
    dirs = run_dirs(root)
    numbers = {p.relative_to(root).as_posix(): flatten(read_json(p)) for p in number_files(root)}
    if not dirs and not numbers:
        tree = ResultTree(str(root))
        raise ResultsError(
            f"{root}: no results here (no {RUN_OUTPUTS['run_info']} below {tree.runs}/ or "
            f"{tree.experiments}/, no theory or PageRank numbers); expected a results directory "
            "of a finished reproduction or a snapshot of one"
        )
    listed = None if all_runs else summary_run_ids(root)
    finals = Path(ResultTree(str(root)).experiments)
    runs: dict[str, RunRecord] = {}
    left_over: dict[str, RunRecord] = {}
    for d in dirs:
        record = read_run(d, root, models)
        if record.run_id in runs or record.run_id in left_over:
            raise ResultsError(f"{d}: run ID {record.run_id!r} appears twice in {root}")
        current = listed is None or record.run_id in listed or d.is_relative_to(finals)
        (runs if current else left_over)[record.run_id] = record
    return ResultSet(root=root, runs=runs, numbers=numbers, manifest=manifest, left_over=left_over)


def snapshot_names(results: str | os.PathLike = DEFAULT_RESULTS) -> list[str]:
    """The snapshots kept in ``<results>/snapshots/``, oldest first (by their manifest's time)."""
    directory = Path(ResultTree(str(results)).snapshots)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        if (path / SNAPSHOT_MANIFEST).is_file():
            found.append((str(read_json(path / SNAPSHOT_MANIFEST).get("created", "")), path.name))
    return [name for _, name in sorted(found)]


def resolve(argument: str | None, results: str | os.PathLike = DEFAULT_RESULTS) -> Path:
    """The directory an argument names: a result directory or snapshot given by path, or
    the name of a snapshot in ``<results>/snapshots/``; None means ``results`` itself.

    A bare name that is both a directory here and a snapshot is refused as ambiguous.
    """
    if argument is None:
        return Path(results)
    path = Path(argument)
    snapshots = Path(ResultTree(str(results)).snapshots)
    named = snapshots / argument if argument and "/" not in argument and os.sep not in argument else None
    if named is not None and named.is_dir() and path.is_dir() and path.resolve() != named.resolve():
        raise ResultsError(
            f"{argument!r} is ambiguous: both the directory {path} and the snapshot {named} exist "
            f"(write ./{argument} for the directory or {named} for the snapshot)"
        )
    if path.is_dir():
        return path
    if named is not None and named.is_dir():
        return named
    known = snapshot_names(results)
    raise ResultsError(
        f"{argument!r} is neither a directory nor a snapshot in {snapshots}/ "
        f"(snapshots there: {', '.join(known) if known else 'none'})"
    )


def latest_snapshot(results: str | os.PathLike = DEFAULT_RESULTS) -> Path:
    """The most recent snapshot in ``<results>/snapshots/`` (the default "before" of a compare)."""
    names = snapshot_names(results)
    if not names:
        raise ResultsError(
            f"no snapshot in {ResultTree(str(results)).snapshots}/ to compare with: name two result "
            "sets, or keep one first with `python -m nnflow snapshot NAME`"
        )
    return Path(ResultTree(str(results)).snapshots) / names[-1]
