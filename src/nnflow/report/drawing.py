"""Drawing and saving figures: PNG and PDF, each written atomically and byte-reproducibly.

Figures are :class:`matplotlib.figure.Figure` objects made by :func:`subplots` (or
``Figure()``), never through pyplot, and saved with matplotlib's Agg backend (no
display needed, set here, the one place that sets it); the PDF
carries no creation date and the PNG no software stamp, so the same data give
the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from nnflow.files import atomic_write  # noqa: E402


def subplots(*args, figsize: tuple[float, float] | None = None, **kwargs):
    """``(figure, axes)`` like ``pyplot.subplots``, without pyplot's global figure registry.

    Figures made this way need no closing and do not depend on a GUI backend.
    """
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def figure_paths(png_path: str | os.PathLike, pdf_path: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(png, pdf)``: the PDF beside the PNG unless given (``png_path`` may also be a stem)."""
    png_path = Path(png_path)
    stem = png_path.with_suffix("") if png_path.suffix in (".png", ".pdf") else png_path
    return stem.with_suffix(".png"), Path(pdf_path) if pdf_path else stem.with_suffix(".pdf")


def save_figure(
    fig: Figure, png_path: str | os.PathLike, pdf_path: str | os.PathLike | None = None
) -> list[Path]:
    """Save ``fig`` as PNG (150 dpi) and PDF, each atomically; return the two paths."""
    png, pdf = figure_paths(png_path, pdf_path)
    with atomic_write(png) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
    if fig.get_layout_engine() is not None:
        fig.set_layout_engine("none")  # keep the layout just computed: the PDF needs no rerun
    with atomic_write(pdf) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None, "Creator": None})
    return [png, pdf]


def finish(fig: Figure, out: str | os.PathLike | None) -> Figure:
    """Save ``fig`` (PNG + PDF) when ``out`` is given; return it (the plot functions' ending)."""
    if out is not None:
        save_figure(fig, out)
    return fig
