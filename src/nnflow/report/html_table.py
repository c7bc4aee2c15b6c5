"""Tables as self-contained HTML pages, for the Snakemake report.

The report shows an item of type ``text/html`` inline (in a frame) but offers a CSV only as a
download; so each table the report should show is also written as one small HTML page: a
heading, an introduction, and the table with a header row that stays in view while scrolling.
Values are shown as in the CSV, floats to four significant digits; empty cells stay empty.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from nnflow.files import write_text

STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 12px; color: #1e293b; }
h1 { font-size: 18px; margin: 0 0 6px 0; }
p { max-width: 60em; margin: 0 0 10px 0; }
.wrap { overflow: auto; max-height: 85vh; border: 1px solid #cbd5e1; }
table { border-collapse: collapse; white-space: nowrap; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e2e8f0; }
th { position: sticky; top: 0; background: #e2e8f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #f8fafc; }
"""


def cell_text(value: Any) -> str:
    """The text of one cell: '' for a missing value, floats to four significant digits
    (integral floats without a decimal point)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def table_html(frame: pd.DataFrame, title: str, intro: str = "", columns: Sequence[str] | None = None) -> str:
    """``frame`` (its ``columns``, default all) as an HTML page with ``title`` and ``intro``
    (plain text; both escaped). Numeric columns are right-aligned."""
    columns = list(frame.columns if columns is None else columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the table (columns: {list(frame.columns)})")
    numeric = {c for c in columns if pd.api.types.is_numeric_dtype(frame[c])}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    rows = []
    for rec in frame[columns].itertuples(index=False):
        cells = (
            f'<td{" class=num" if c in numeric else ""}>{html.escape(cell_text(v))}</td>'
            for c, v in zip(columns, rec, strict=True)
        )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    intro_html = f"<p>{html.escape(intro)}</p>" if intro else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{intro_html}"
        f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></div></body></html>\n"
    )


def write_table_html(
    path: str | os.PathLike, frame: pd.DataFrame, title: str, intro: str = "", drop_empty: bool = True
) -> str:
    """Write :func:`table_html` of ``frame`` to ``path`` (atomically) and return the text;
    ``drop_empty`` leaves out columns without any value."""
    columns = [c for c in frame.columns if not (drop_empty and frame[c].isna().all())]
    text = table_html(frame, title, intro, columns)
    write_text(path, text)
    return text
