"""Drawing and saving figures: PNG and PDF, each written atomically and byte-reproducibly.

Figures are :class:`matplotlib.figure.Figure` objects made by :func:`subplots` (or
``Figure()``), never through pyplot, and saved with matplotlib's Agg backend (no
display needed, set here, the one place that sets it); the PDF
carries no creation date and the PNG no software stamp, so the same data give
the same files.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from nnflow.files import atomic_write  # noqa: E402

PNG_DPI = 150
# The width (CSS px) the HTML report gives a figure in a 1280 px wide browser window with the
# list of items open (measured in Chromium: the window less the list and the padding). A
# figure's PNG is scaled down to it, never up.
REPORT_IMAGE_WIDTH_PX = 700
# The smallest text (CSS px) a reader can read without zooming.
MIN_TEXT_PX = 8.0


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
    """Save ``fig`` as PNG (:data:`PNG_DPI`) and PDF, each atomically; return the two paths."""
    png, pdf = figure_paths(png_path, pdf_path)
    with atomic_write(png) as tmp:
        fig.savefig(tmp, format="png", dpi=PNG_DPI, bbox_inches="tight", metadata={"Software": None})
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


def png_size(fig: Figure) -> tuple[int, int]:
    """(width, height) in pixels of the PNG :func:`save_figure` writes for ``fig``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight")
    width, height = struct.unpack(">II", buf.getvalue()[16:24])  # the PNG's IHDR chunk
    return width, height


def displayed_text_sizes(
    fig: Figure, display_width_px: float = REPORT_IMAGE_WIDTH_PX
) -> list[tuple[float, str]]:
    """``(size in px, text)`` of every visible text of ``fig`` as the report shows it, smallest first.

    The PNG is ``w`` px wide at :data:`PNG_DPI`; shown ``display_width_px`` wide it is scaled by
    ``s = min(1, display_width_px / w)``, so a text of ``f`` points appears ``f · dpi/72 · s`` px tall.
    """
    width, _ = png_size(fig)  # also lays the figure out, so tick labels exist
    scale = min(1.0, display_width_px / width)
    sizes = [
        (text.get_fontsize() * PNG_DPI / 72 * scale, text.get_text())
        for text in fig.findobj(Text)
        if text.get_visible() and text.get_text().strip() and _ancestors_visible(text)
    ]
    return sorted(sizes, key=lambda item: item[0])


def _ancestors_visible(artist) -> bool:
    """Whether no axes that hold ``artist`` is hidden (a hidden axes draws none of its texts)."""
    axes = getattr(artist, "axes", None)
    return axes is None or axes.get_visible()
