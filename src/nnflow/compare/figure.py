"""The comparison as a figure: each changed, added or removed run's headline accuracy in A and B.

One row per run (its run ID, written above the row so that long IDs leave the data the full
width, and which accuracy is its headline: the test accuracy measured once for a
search's final run, else the final test accuracy of a network2 run or the final
validation accuracy of a Solver run), A as an open circle, B as a filled one, a grey
bar between them and the change in percentage points at the right.
A run only in B (added) has only the filled dot, a run only in A (removed) only the
open one. Sized to be read at 1280 px: 8 in at 150 dpi, no text under 9 pt.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from nnflow.compare.diff import Comparison
from nnflow.compare.results import RunRecord
from nnflow.report.drawing import save_figure, subplots

SPLIT_TAG = {"test_accuracy": "test, once", "final_test_accuracy": "test", "final_val_accuracy": "val"}
COLOUR_A, COLOUR_B = "#4477aa", "#ee6677"  # Paul Tol's bright scheme: told apart by colour-blind readers
WIDTH_IN, ROW_IN, MARGIN_IN = 8.0, 0.6, 1.4
FONT_PT = 9


def _headline(record: RunRecord | None) -> tuple[str, float] | None:
    return None if record is None else record.headline()


def figure_rows(c: Comparison) -> list[tuple[str, float | None, float | None]]:
    """``(label, A value, B value)`` in percent for every changed, added or removed run with a
    headline accuracy on at least one side, in run-ID order."""
    rows = []
    for run_id in sorted({*c.changed(), *c.added(), *c.removed()}):
        a, b = _headline(c.a.runs.get(run_id)), _headline(c.b.runs.get(run_id))
        if a is None and b is None:
            continue
        key = (b or a)[0]
        rows.append((f"{run_id} [{SPLIT_TAG[key]}]", None if a is None else 100 * a[1],
                     None if b is None else 100 * b[1]))
    return rows


def _name(results) -> str:
    return str(results.manifest.get("name")) if results.manifest else str(results.root)


def comparison_figure(c: Comparison, out: str | os.PathLike) -> list[Path]:
    """Draw the figure (see the module docstring); save PNG and PDF at ``out``; return the paths."""
    return save_figure(draw_comparison(c), out)


def draw_comparison(c: Comparison) -> Figure:
    """The figure of the module docstring."""
    rows = figure_rows(c)
    height = MARGIN_IN + ROW_IN * max(len(rows), 2)
    fig, ax = subplots(figsize=(WIDTH_IN, height))
    fig.set_layout_engine("constrained")
    ax.set_title(f"Headline accuracy, A → B: {len(rows)} run{'s' if len(rows) != 1 else ''} "
                 "changed, added or removed", fontsize=FONT_PT + 2)
    if not rows:
        ax.text(0.5, 0.5, "no run's headline accuracy changed", ha="center", va="center",
                fontsize=FONT_PT + 1, transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    ys = list(range(len(rows)))[::-1]
    for y, (label, a, b) in zip(ys, rows, strict=True):
        # the run's name above its row, across the full width: long run IDs leave the data room
        ax.text(0.005, y + 0.22, label, transform=ax.get_yaxis_transform(), va="bottom", fontsize=FONT_PT)
        if a is not None and b is not None and a != b:
            ax.plot([a, b], [y, y], color="0.6", lw=2.5, zorder=2, solid_capstyle="butt")
        if a is not None:
            ax.plot([a], [y], "o", mfc="white", mec=COLOUR_A, mew=1.8, ms=8, zorder=3)
        if b is not None:
            ax.plot([b], [y], "o", color=COLOUR_B, ms=6, zorder=4)
        note = ("added" if a is None else "removed" if b is None
                else f"{b - a:+.2f} pt" if a != b else "no change")
        ax.text(1.01, y, note, transform=ax.get_yaxis_transform(), va="center", fontsize=FONT_PT)
    ax.set_yticks([])
    ax.set_ylim(-0.5, len(rows) - 0.1)
    for y in ys[:-1]:
        ax.axhline(y - 0.5, color="0.85", lw=0.8)
    ax.tick_params(axis="x", labelsize=FONT_PT)
    ax.set_xlabel("accuracy (%)", fontsize=FONT_PT + 1)
    ax.grid(axis="x", color="0.9")
    ax.margins(x=0.08)
    ax.plot([], [], "o", mfc="white", mec=COLOUR_A, mew=1.8, ms=8, label=f"A: {_name(c.a)}")
    ax.plot([], [], "o", color=COLOUR_B, ms=6, label=f"B: {_name(c.b)}")
    fig.legend(loc="outside lower center", ncols=2, fontsize=FONT_PT, frameon=False)
    return fig
