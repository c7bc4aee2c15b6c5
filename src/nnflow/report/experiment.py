"""One training experiment's figure: its numbers, drawing and caption, by figure kind.

The figure kinds are registered once, in :data:`nnflow.report.kinds.FIGURE_KINDS`;
only the kind an experiment names is imported, so a figure job's source hash
covers its own kind's code.
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
from nnflow.report.figures.common import (
    add_footnote,
    data_note,
    load_tidy,
    run_counts,
    run_table,
    structure_facts,
)
from nnflow.report.kinds import figure_kind, resolve_analysis


def load_kind(kind: str) -> ModuleType:
    return importlib.import_module(figure_kind(kind).module)


def build(
    kind: str,
    tidy: pd.DataFrame,
    analysis: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
) -> tuple[Figure, dict[str, Any]]:
    """(figure, numbers) of one experiment; ``facts`` (dataset, sizes, net) come first in numbers."""
    extra = dict(extra or {})
    missing = sorted(set(figure_kind(kind).extra_inputs) - set(extra))
    if missing:
        raise ValueError(f"a {kind} figure needs the extra inputs {missing}")
    analysis = resolve_analysis(kind, analysis)
    return load_kind(kind).build(tidy, analysis, extra, dict(facts or {}))


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
    title: str = "",
    dataset_label: str | None = None,
) -> dict[str, Any]:
    """Draw the experiment's figure of kind ``kind``, write numbers.json and the caption.

    ``title`` is the caption's first sentence (config ``report.title``),
    ``dataset_label`` the dataset's name in words (its declaration's ``label``). Returns the
    numbers: the run counts, the data note, the structural facts (dataset, split
    sizes, net, from the runs' parameters and the provenance) and the kind's own.
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

    facts = structure_facts(runs, provenance, dataset_label)
    fig, numbers = build(kind, tidy, analysis, extra, facts)
    numbers = {
        "experiment": experiment,
        "title": title,
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


