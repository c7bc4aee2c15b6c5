"""Report captions that state measured numbers.

Caption templates live in ``workflow/report/*.rst`` and use ``$name``
placeholders (:class:`string.Template`). A figure rule renders its template with
the numbers it computed into a caption file beside the figure, which the
Snakemake report then shows. A placeholder without a value is an error: a
caption never silently shows a template variable.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping
from typing import Any

from nnflow.files import write_text


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
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
        text = template.substitute({k: format_value(v) for k, v in values.items()})
    except KeyError as exc:
        raise KeyError(
            f"{template_path}: no value for placeholder ${exc.args[0]} "
            f"(given: {sorted(values)})"
        ) from None
    write_text(out_path, text)
    return text
