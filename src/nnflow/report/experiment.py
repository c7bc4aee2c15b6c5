"""One training experiment's figure: its numbers, drawing and caption, by figure kind.

The figure kinds are registered once, by module path, in :data:`FIGURE_KINDS`; each
module (``nnflow.report.figures.<kind>``) has ``build(tidy, analysis, extra) ->
(figure, numbers)`` and ``EXTRA_INPUTS``, the files beyond the experiment's tables
it reads. Only the kind an experiment names is imported, so a figure job's source
hash covers its own kind's code.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nnflow.files import read_json, write_json
from nnflow.report.captions import render_caption
from nnflow.report.drawing import save_figure
from nnflow.report.figures.common import add_footnote, data_note, load_tidy, run_counts, run_table

FIGURE_KINDS = {
    "cost_comparison": "nnflow.report.figures.cost_comparison",
    "overfitting_l2": "nnflow.report.figures.overfitting_l2",
    "overfitting_subset": "nnflow.report.figures.overfitting_subset",
    "update_rules": "nnflow.report.figures.update_rules",
    "random_search": "nnflow.report.figures.random_search",
    "layer_gradients": "nnflow.report.figures.layer_gradients",
}


def figure_module(kind: str) -> str:
    """The module path of the figure kind ``kind``."""
    try:
        return FIGURE_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown figure kind {kind!r} (known: {', '.join(sorted(FIGURE_KINDS))})") from None


def load_kind(kind: str) -> ModuleType:
    return importlib.import_module(figure_module(kind))


def extra_inputs(kind: str) -> tuple[str, ...]:
    """The names of the files a figure of this kind reads beyond the experiment's tables."""
    return tuple(load_kind(kind).EXTRA_INPUTS)


def build(
    kind: str, tidy: pd.DataFrame, analysis: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> tuple[Figure, dict[str, Any]]:
    """(figure, numbers) of one experiment, without the shared run/data numbers."""
    module = load_kind(kind)
    extra = dict(extra or {})
    missing = sorted(set(module.EXTRA_INPUTS) - set(extra))
    if missing:
        raise ValueError(f"a {kind} figure needs the extra inputs {missing}")
    return module.build(tidy, analysis, extra)


def experiment_figure(
    experiment: str,
    kind: str,
    metrics_path: str | os.PathLike,
    summary_path: str | os.PathLike,
    provenance_path: str | os.PathLike,
    template_path: str | os.PathLike,
    analysis: Mapping[str, Any] | str | None,
    out_png: str | os.PathLike,
    out_pdf: str | os.PathLike,
    out_caption: str | os.PathLike,
    out_numbers: str | os.PathLike,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Draw the experiment's figure of kind ``kind``, write numbers.json and the caption.

    Returns the numbers (those of the kind plus the run counts and the data note).
    """
    if isinstance(analysis, str):
        analysis = json.loads(analysis) if analysis.strip() else {}
    analysis = dict(analysis or {})
    tidy = load_tidy(metrics_path)
    summary = pd.read_csv(summary_path)
    runs = run_table(tidy)
    missing = sorted(set(summary["run_id"]) - set(runs["run_id"]))
    if missing:
        raise ValueError(f"{summary_path}: runs without rows in {metrics_path}: {missing}")
    provenance = read_json(provenance_path)
    canonical, note = data_note(provenance)

    fig, numbers = build(kind, tidy, analysis, extra)
    numbers = {
        "experiment": experiment,
        "dataset_canonical": canonical,
        "data_note": note,
        **run_counts(runs),
        **numbers,
    }
    add_footnote(fig, note)
    save_figure(fig, out_png, out_pdf)
    write_json(out_numbers, numbers)
    render_caption(template_path, numbers, out_caption)
    return numbers


