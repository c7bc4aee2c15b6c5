"""Report captions that state measured numbers.

Caption templates live in ``workflow/report/*.rst`` and use ``$name``
placeholders (:class:`string.Template`). A figure rule renders its template with
the numbers it computed into a caption file beside the figure, which the
Snakemake report then shows. A placeholder without a value is an error: a
caption never silently shows a template variable.

One rounding per quantity: a measured percentage or difference in percentage points
(a key ending in ``_pct`` or ``_points``) is shown with two decimals, as
:func:`percent_text` and :func:`points_text` show it in sentences and figures; a configured
threshold (a key with ``target`` or ``plateau``) is shown as configured (``60%``, ``0.5 points``).
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import Any

from nnflow.files import write_text

PERCENT_SUFFIXES = ("_pct", "_points")
CONFIGURED_THRESHOLDS = ("target", "plateau")


def percent_text(value_pct: float) -> str:
    """A measured percentage, two decimals: 83.4812 -> '83.48' (the caller adds '%')."""
    return "n/a" if value_pct != value_pct else f"{value_pct:.2f}"


def points_text(difference_points: float) -> str:
    """A signed difference in percentage points, two decimals: 0.07 -> '+0.07'."""
    return "n/a" if difference_points != difference_points else f"{difference_points:+.2f}"


def format_value(value: Any, key: str = "") -> str:
    """A template value as caption text: floats to four significant digits, percentages and
    points (``key`` ending in ``_pct``/``_points``, not a configured threshold) to two decimals."""
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if key.endswith(PERCENT_SUFFIXES) and not any(word in key for word in CONFIGURED_THRESHOLDS):
            return percent_text(value)
        if abs(value) >= 1e4 or (value != 0 and abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def render_caption(
    template_path: str | os.PathLike, values: Mapping[str, Any], out_path: str | os.PathLike
) -> str:
    """Render ``template_path`` with ``values`` into ``out_path`` and return the text."""
    with open(template_path, encoding="utf-8") as fh:
        template = string.Template(fh.read())
    try:
        text = template.substitute({k: format_value(v, k) for k, v in values.items()})
    except KeyError as exc:
        raise KeyError(
            f"{template_path}: no value for placeholder ${exc.args[0]} "
            f"(given: {sorted(values)})"
        ) from None
    write_text(out_path, text)
    return text
