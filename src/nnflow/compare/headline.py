"""The end of a reproduction in a few lines: where the report is, and the headline numbers.

One row per experiment and run label (a grid point): the headline metric of
:meth:`~nnflow.compare.results.RunRecord.headline` — the test accuracy measured once for a
search's final run, the final test accuracy of network2 runs, the final validation accuracy
of Solver runs — as the mean over the label's seeds with the smallest and largest seed. A
random search lists its final run only (its candidates were only the means of choosing it).
Experiments come in the order of the set's ``summary.csv`` (the config's order).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from nnflow.compare.results import ResultSet, RunRecord
from nnflow.compare.text import table
from nnflow.workflow.layout import SUMMARY_TABLE

METRIC_NAMES = {
    "test_accuracy": "test accuracy (once)",
    "final_test_accuracy": "final test accuracy",
    "final_val_accuracy": "final val accuracy",
}
HEADER = ["experiment", "run", "metric", "mean", "min-max", "runs"]


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _summary_order(root: Path) -> dict[str, int]:
    """Run ID -> its row in ``summary.csv`` (empty without one)."""
    path = root / SUMMARY_TABLE
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {row.get("run_id"): i for i, row in enumerate(csv.DictReader(fh))}


def _group(records: Sequence[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """Runs by (experiment, label), in the order of the result set; a search's candidates
    are left out when its final run is there."""
    searches = {r.experiment for r in records if r.run_path == "final"}
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        if r.experiment in searches and r.run_path != "final":
            continue
        groups.setdefault((r.experiment, r.label), []).append(r)
    return groups


def _runs_cell(records: Sequence[RunRecord]) -> str:
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    if set(statuses) == {"completed"}:
        return str(len(records))
    return ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))


def headline_rows(results: ResultSet) -> list[list[str]]:
    """The rows of :func:`headline_text`'s table (see the module docstring)."""
    rows = []
    order = _summary_order(Path(results.root))
    records = sorted(results.runs.values(), key=lambda r: order.get(r.run_id, len(order)))
    for (experiment, label), group in _group(records).items():
        found = [h for h in (r.headline() for r in group) if h is not None and math.isfinite(h[1])]
        metrics = {name for name, _ in found}
        if len(metrics) == 1:
            values = [v for _, v in found]
            mean = _percent(sum(values) / len(values))
            spread = f"{_percent(min(values))}-{_percent(max(values))}" if len(values) > 1 else ""
            metric = METRIC_NAMES.get(metrics.pop(), "")
        else:  # no finite headline (every seed diverged), or runs of different kinds
            metric, mean, spread = "", "n/a", ""
        rows.append([experiment, label, metric, mean, spread, _runs_cell(group)])
    return rows


def headline_text(results: ResultSet, report: str | Path) -> str:
    """The report's path (or that it is not built yet) and the table of headline numbers."""
    report = Path(report)
    lines = [f"Report: {report} ({report.resolve().as_uri()})" if report.is_file() else
             f"Report: not built yet ({report}; `make reproduce` builds it)"]
    rows = headline_rows(results)
    if rows:
        lines += ["", f"Headline numbers of {results.root} (mean over seeds; `python -m nnflow runs` "
                      "lists every run):", table(HEADER, rows)]
    else:
        lines += ["", f"{results.root}: no training runs (only theory or PageRank numbers)"]
    return "\n".join(lines) + "\n"
