"""Plain-text tables for the terminal: the runs of a result set, and a comparison of two."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nnflow.compare.diff import ABSENT, Comparison, Difference
from nnflow.compare.results import ResultSet, RunRecord
from nnflow.train.grid import LABEL_SEPARATOR

# The metrics a comparison shows by default (the others are counted; --all-metrics lists them).
HEADLINE_METRICS = (
    "test_accuracy", "final_test_accuracy", "best_test_accuracy", "final_val_accuracy",
    "best_val_accuracy", "final_train_accuracy", "epochs_completed", "diverged_epoch",
)
NUMBERS_PER_FILE = 10
HASH_CHARS = 12
LEFT_OVER = ("Left over, not compared (on disk, not in summary.csv: from an earlier config or not "
             "aggregated yet; --all-runs includes them):")


def render(value: Any) -> str:
    """A value as a table cell: six significant digits, lists as ``AxB``, None as ``none``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else repr(value)
    if isinstance(value, list | tuple):
        return "x".join(render(v) for v in value) or "[]"
    return str(value)


def _delta_text(delta: float | None) -> str:
    return "" if delta is None else f"{delta:+.4g}"


def _is_numeric_cell(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: int = 2) -> str:
    """Aligned columns; a column whose cells are all numbers is right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    right = [bool(cells) and all(_is_numeric_cell(r[i]) or r[i] == "" for r in cells)
             for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)]
        return (" " * indent + "  ".join(parts)).rstrip()

    return "\n".join([line(list(header)), *(line(r) for r in cells)])


# ----------------------------------------------------------------------------- runs


def label_keys(label: str) -> set[str]:
    """The parameter names a run label spells out (``cost=quadratic+eta=3.0`` -> cost, eta)."""
    return {part.split("=", 1)[0] for part in label.split(LABEL_SEPARATOR) if "=" in part}


def varying_params(records: Sequence[RunRecord]) -> list[str]:
    """The parameters whose values differ between ``records``, sorted by name."""
    keys = sorted({k for r in records for k in r.params})
    return [k for k in keys if len({render(r.params.get(k, ABSENT)) for r in records}) > 1]


def _accuracy_columns(records: Sequence[RunRecord]) -> list[tuple[str, str]]:
    split = "test" if any("final_test_accuracy" in r.metrics for r in records) else "val"
    columns = [(f"final {split} acc", f"final_{split}_accuracy"),
               (f"best {split} acc", f"best_{split}_accuracy")]
    if any("test_accuracy" in r.metrics for r in records):
        columns.append(("test acc (once)", "test_accuracy"))
    return columns


def _accuracy(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) and not isinstance(value, bool) else ""


def experiment_block(experiment: str, records: Sequence[RunRecord]) -> str:
    """One experiment's runs: run label, the parameters that vary (beyond the label), seed,
    status, epochs, final and best accuracy, seconds."""
    in_labels = set().union(*(label_keys(r.label) for r in records))
    params = [k for k in varying_params(records) if k not in in_labels]
    accuracy = _accuracy_columns(records)
    header = ["run", *params, "seed", "status", "epochs done", *(name for name, _ in accuracy), "seconds"]
    rows = []
    for r in records:
        seconds = "" if r.seconds is None else f"{r.seconds:.1f}"
        rows.append([r.label, *(render(r.params.get(k, ABSENT)) for k in params), render(r.seed),
                     r.status, render(r.metrics.get("epochs_completed")),
                     *(_accuracy(r.metrics.get(key)) for _, key in accuracy), seconds])
    trainers = ", ".join(sorted({r.trainer for r in records}))
    title = f"{experiment}: {len(records)} run{'s' if len(records) != 1 else ''} ({trainers})"
    return title + "\n" + table(header, rows)


def runs_text(results: ResultSet, experiment: str | None = None) -> str:
    """Every run of ``results`` (or of one ``experiment``), one block per experiment."""
    by_experiment: dict[str, list[RunRecord]] = {}
    for record in results.runs.values():
        by_experiment.setdefault(record.experiment, []).append(record)
    if experiment is not None:
        if experiment not in by_experiment:
            known = ", ".join(by_experiment) or "none"
            raise ValueError(f"experiment {experiment!r}: no runs in {results.root} (experiments: {known})")
        by_experiment = {experiment: by_experiment[experiment]}
    blocks = [f"{results.describe()}"]
    blocks += [experiment_block(name, records) for name, records in by_experiment.items()]
    if not by_experiment:
        blocks.append("no training runs (only theory or PageRank numbers)")
    if results.left_over and experiment is None:
        blocks.append(LEFT_OVER.replace(", not compared", "") + "\n"
                      + "\n".join(f"  {run_id}" for run_id in results.left_over))
    return "\n\n".join(blocks) + "\n"


# ----------------------------------------------------------------------------- comparison


def _cell(value: Any) -> str:
    return value if value == ABSENT else render(value)


def _headline_cells(record: RunRecord) -> list[str]:
    headline = record.headline()
    return [record.status, *(("", "") if headline is None else (headline[0], f"{headline[1]:.6g}"))]


def _experiment_counts(run_ids: Sequence[str], results: ResultSet) -> str:
    counts: dict[str, int] = {}
    for run_id in run_ids:
        experiment = results.runs[run_id].experiment
        counts[experiment] = counts.get(experiment, 0) + 1
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def summary_line(c: Comparison) -> str:
    numbers = c.of_kind("number")
    files = len({d.where for d in numbers})
    text = (f"{len(c.a.runs)} runs in A, {len(c.b.runs)} in B: {len(c.added())} added, "
            f"{len(c.removed())} removed, {len(c.changed())} changed, {len(c.identical)} identical")
    if numbers:
        text += (f"; {len(numbers)} other number{'s' if len(numbers) != 1 else ''} changed in {files} "
                 f"file{'s' if files != 1 else ''}")
    return text


def _metric_rows(diffs: Sequence[Difference]) -> list[list[str]]:
    return [[d.where, d.key, _cell(d.old), _cell(d.new), _delta_text(d.delta)] for d in diffs]


def comparison_text(c: Comparison, all_metrics: bool = False) -> str:
    """The comparison as sections: added, removed, changed parameters, status, metrics,
    weights, other numbers, and the identical runs' count per experiment."""
    threshold = f"|delta| <= {c.threshold:g} counts as equal" if c.threshold else "numbers compared exactly"
    out = [f"A (before): {c.a.describe()}\nB (after):  {c.b.describe()}\n"
           f"{summary_line(c)} ({threshold}; seconds not compared)"]
    if c.added():
        rows = [[run_id, *_headline_cells(c.b.runs[run_id])] for run_id in c.added()]
        out.append("Added (only in B):\n" + table(["run", "status", "headline metric", "value"], rows))
    if c.removed():
        rows = [[run_id, *_headline_cells(c.a.runs[run_id])] for run_id in c.removed()]
        out.append("Removed (only in A):\n" + table(["run", "status", "headline metric", "value"], rows))
    params = c.of_kind("param")
    if params:
        rows = [[d.where, d.key, _cell(d.old), _cell(d.new)] for d in params]
        out.append("Changed parameters:\n" + table(["run", "parameter", "old (A)", "new (B)"], rows))
    status = c.of_kind("status")
    if status:
        rows = [[d.where, d.old, d.new] for d in status]
        out.append("Changed status:\n" + table(["run", "old (A)", "new (B)"], rows))
    metrics = c.of_kind("metric")
    shown = metrics if all_metrics else [d for d in metrics if d.key in HEADLINE_METRICS]
    if metrics:
        title = "Changed metrics:" if all_metrics else "Changed metrics (headline; --all-metrics lists all):"
        lines = [title]
        if shown:
            lines.append(table(["run", "metric", "old (A)", "new (B)", "delta"], _metric_rows(shown)))
        if len(metrics) > len(shown):
            lines.append(f"  ... and {len(metrics) - len(shown)} more metric differences in these runs")
        out.append("\n".join(lines))
    weights = c.of_kind("weights")
    if weights:
        rows = [[d.where, d.old[:HASH_CHARS], d.new[:HASH_CHARS]] for d in weights]
        out.append("Changed weights (model.npz SHA-256):\n" + table(["run", "old (A)", "new (B)"], rows))
    numbers = c.of_kind("number")
    if numbers:
        title = "Other results (theory, PageRank, search choice):"
        out.append(f"{title}\n{_numbers_table(numbers, all_metrics)}")
    if c.identical:
        out.append(f"Identical: {len(c.identical)} run{'s' if len(c.identical) != 1 else ''} "
                   f"({_experiment_counts(c.identical, c.b)})")
    left_over = [["A", run_id] for run_id in c.a.left_over] + [["B", run_id] for run_id in c.b.left_over]
    if left_over:
        out.append(f"{LEFT_OVER}\n" + table(["in", "run"], left_over))
    if c.is_empty:
        out.append("No differences: A and B hold the same runs with the same parameters, metrics "
                   "and weights.")
    return "\n\n".join(out) + "\n"


def _numbers_table(numbers: Sequence[Difference], all_rows: bool) -> str:
    rows, hidden = [], 0
    per_file: dict[str, int] = {}
    for d in numbers:
        per_file[d.where] = per_file.get(d.where, 0) + 1
        if all_rows or per_file[d.where] <= NUMBERS_PER_FILE:
            rows.append([d.where, d.key, _cell(d.old), _cell(d.new), _delta_text(d.delta)])
        else:
            hidden += 1
    text = table(["file", "key", "old (A)", "new (B)", "delta"], rows)
    return text + (f"\n  ... and {hidden} more (--all-metrics lists them)" if hidden else "")
