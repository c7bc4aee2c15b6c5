"""What changed between two result sets A (before) and B (after).

Runs are matched by run ID. A run only in B is *added*, only in A *removed*. A run
in both is *changed* if any of these differ, and *identical* otherwise:

- a parameter (compared exactly: parameters come from the config),
- its status (completed / diverged),
- a metric (final and best values, epochs completed, test accuracy): numbers count
  as equal when ``|new - old| <= threshold`` (two NaNs are equal), so a threshold
  hides differences at the level of floating-point noise,
- its weights, by the SHA-256 of ``model.npz`` (when both sides know it).

Wall-clock seconds are never compared. The non-training numbers (theory, PageRank,
a search's choice) are compared key by key with the same threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nnflow.compare.results import ResultSet, RunRecord

ABSENT = "(absent)"
RUN_KINDS = ("param", "status", "metric", "weights")


@dataclass(frozen=True)
class Difference:
    """One difference: ``kind`` is added, removed, param, status, metric, weights or number;
    ``where`` the run ID (or, for a number, its file); ``key`` what differs."""

    kind: str
    where: str
    key: str
    old: Any
    new: Any

    @property
    def delta(self) -> float | None:
        """``new - old`` for two numbers, else None."""
        if _is_number(self.old) and _is_number(self.new):
            return float(self.new) - float(self.old)
        return None


@dataclass
class Comparison:
    a: ResultSet
    b: ResultSet
    threshold: float
    differences: list[Difference]
    identical: list[str]

    def of_kind(self, *kinds: str) -> list[Difference]:
        return [d for d in self.differences if d.kind in kinds]

    def added(self) -> list[str]:
        return [d.where for d in self.of_kind("added")]

    def removed(self) -> list[str]:
        return [d.where for d in self.of_kind("removed")]

    def changed(self) -> list[str]:
        """Run IDs present in both sets that differ in anything compared, sorted."""
        return sorted({d.where for d in self.of_kind(*RUN_KINDS)})

    @property
    def is_empty(self) -> bool:
        return not self.differences


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(old: Any, new: Any, threshold: float = 0.0) -> bool:
    """Equal, or two numbers within ``threshold`` of each other (two NaNs are equal)."""
    if _is_number(old) and _is_number(new):
        old, new = float(old), float(new)
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) and math.isnan(new)
        return old == new or abs(new - old) <= threshold
    return old == new


def _mapping_differences(kind: str, where: str, old: dict[str, Any], new: dict[str, Any],
                         threshold: float) -> list[Difference]:
    out = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, ABSENT), new.get(key, ABSENT)
        if not same(before, after, threshold):
            out.append(Difference(kind, where, key, before, after))
    return out


def run_differences(old: RunRecord, new: RunRecord, threshold: float) -> list[Difference]:
    where = old.run_id
    out = _mapping_differences("param", where, old.params, new.params, 0.0)
    if old.status != new.status:
        out.append(Difference("status", where, "status", old.status, new.status))
    out += _mapping_differences("metric", where, old.metrics, new.metrics, threshold)
    if old.model_sha256 and new.model_sha256 and old.model_sha256 != new.model_sha256:
        out.append(Difference("weights", where, "model.npz sha256", old.model_sha256, new.model_sha256))
    return out


def compare(a: ResultSet, b: ResultSet, threshold: float = 0.0) -> Comparison:
    """Every difference from A to B (see the module docstring); ``threshold`` >= 0."""
    if not (threshold >= 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold={threshold!r}: expected a finite number >= 0")
    differences: list[Difference] = []
    identical = []
    for run_id in sorted(set(a.runs) | set(b.runs)):
        if run_id not in a.runs:
            differences.append(Difference("added", run_id, "", ABSENT, b.runs[run_id].status))
        elif run_id not in b.runs:
            differences.append(Difference("removed", run_id, "", a.runs[run_id].status, ABSENT))
        else:
            found = run_differences(a.runs[run_id], b.runs[run_id], threshold)
            differences += found
            if not found:
                identical.append(run_id)
    for path in sorted(set(a.numbers) | set(b.numbers)):
        if path not in a.numbers or path not in b.numbers:
            before = "present" if path in a.numbers else ABSENT
            after = "present" if path in b.numbers else ABSENT
            differences.append(Difference("number", path, "(file)", before, after))
        else:
            differences += _mapping_differences("number", path, a.numbers[path], b.numbers[path], threshold)
    return Comparison(a, b, threshold, differences, identical)
