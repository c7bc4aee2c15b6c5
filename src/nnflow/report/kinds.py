"""The figure kinds: the one registry an experiment's ``figure:`` names a kind from.

Each kind is a module ``nnflow.report.figures.<kind>`` with ``build(tidy, analysis,
extra) -> (figure, numbers)`` and a caption template ``workflow/report/<kind>.rst``.
``extra_inputs`` are the files beyond the experiment's tables that the kind reads;
``needs`` are the keys the experiment must have in ``config.yaml`` for them to exist;
``analysis`` lists every key the experiment's ``analysis:`` may set, with its default
(the only place these defaults are stated; other keys are refused). ``label`` names the
figure in the report's list of items (the list is sorted by it: ``figure: ...`` comes after
a sheet's lettered items ``(a) ...`` and before the ``table: ...`` of the runs).
Registered by module path, so the workflow can read this registry without importing
matplotlib, and a figure job imports only its own kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FigureKind:
    module: str
    label: str
    extra_inputs: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    analysis: Mapping[str, Any] = field(default_factory=dict)


FIGURE_KINDS = {
    # reference: {source, weight_init, test_accuracy: {cost: accuracy}}, published values to compare with
    "cost_comparison": FigureKind(
        "nnflow.report.figures.cost_comparison",
        "figure: accuracy per epoch for each cost",
        analysis={"reference": None},
    ),
    # from_epoch: the epoch the caption quotes the training cost from (marked in the figure, which shows
    # every epoch); smooth_window: moving-average window of the plateau
    # (None: 1/20 of the epochs); reference: {source, peak_test_accuracy: {lmbda: accuracy}}
    "overfitting_l2": FigureKind(
        "nnflow.report.figures.overfitting_l2",
        "figure: training cost and accuracy per epoch, without and with L2",
        analysis={"from_epoch": 1, "smooth_window": None, "plateau_tolerance": 0.005, "reference": None},
    ),
    "overfitting_subset": FigureKind(
        "nnflow.report.figures.overfitting_subset",
        "figure: training and validation accuracy per epoch",
        analysis={"target_train_accuracy": 0.6},
    ),
    "update_rules": FigureKind(
        "nnflow.report.figures.update_rules", "figure: loss and accuracy per epoch for each update rule"
    ),
    # the search's choice and the retrained winner (rules challenge_select / challenge_final)
    "random_search": FigureKind(
        "nnflow.report.figures.random_search",
        "figure: the search's candidates and its retrained winner",
        extra_inputs=("chosen", "final_metrics", "final_test"),
        needs=("search", "final"),
        analysis={"target_test_accuracy": 0.55, "sheet_target_test_accuracy": 0.40},
    ),
    # balance_factor: an imbalance factor below this counts as balanced layers
    "layer_gradients": FigureKind(
        "nnflow.report.figures.layer_gradients",
        "figure: gradient norm and update per layer in trained nets",
        analysis={"balance_factor": 2.0},
    ),
}


def figure_kind(name: str) -> FigureKind:
    try:
        return FIGURE_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown figure kind {name!r} (known: {', '.join(sorted(FIGURE_KINDS))})") from None


def resolve_analysis(kind: str, analysis: Mapping[str, Any] | None) -> dict[str, Any]:
    """The kind's analysis defaults updated with ``analysis``; unknown keys are refused."""
    defaults = figure_kind(kind).analysis
    unknown = sorted(set(analysis or {}) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise ValueError(
            f"unknown analysis key(s) {', '.join(unknown)} for figure {kind!r} (allowed: {allowed})"
        )
    return {**defaults, **(analysis or {})}
