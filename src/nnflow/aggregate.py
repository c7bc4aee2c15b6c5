"""Tidy tables of run metrics: per experiment, and for the whole study.

Per run, ``metrics.csv`` is wide (one row per epoch, one column per metric) and
``run.json`` holds the resolved parameters, the status and the environment.
Here they become

- a *tidy* long table: one row per (run, epoch, metric) with the run's
  parameters as columns, and
- a *summary*: one row per run with its final and best values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nnflow.io import atomic_write, read_json

ID_COLUMNS = ["experiment", "run_id", "seed", "status", "diverged_epoch"]


def _param_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return "x".join(str(v) for v in value)
    return value


def run_row(info: dict[str, Any]) -> dict[str, Any]:
    """The identifying columns of one run: ID, seed, status and every parameter."""
    spec = info["spec"]
    row = {
        "experiment": spec["experiment"],
        "run_id": spec["run_id"],
        "seed": spec["seed"],
        "status": info.get("status", "completed"),
        "diverged_epoch": info.get("diverged_epoch"),
    }
    for key, value in sorted(spec["params"].items()):
        row[f"param_{key}"] = _param_value(value)
    return row


def tidy_run(metrics_path: str | os.PathLike, info: dict[str, Any]) -> pd.DataFrame:
    """One run's wide metrics as long rows (epoch, metric, value) with its parameters."""
    wide = pd.read_csv(metrics_path)
    if "epoch" not in wide.columns:
        raise ValueError(f"{metrics_path}: no 'epoch' column (columns: {list(wide.columns)})")
    long = wide.melt(id_vars="epoch", var_name="metric", value_name="value").dropna(
        subset=["value"]
    )
    for key, value in run_row(info).items():
        long[key] = value
    param_cols = sorted(c for c in long.columns if c.startswith("param_"))
    return long[ID_COLUMNS + param_cols + ["epoch", "metric", "value"]]


def summarise_run(metrics_path: str | os.PathLike, info: dict[str, Any]) -> dict[str, Any]:
    """Final value of every metric, and the best accuracy with its epoch."""
    wide = pd.read_csv(metrics_path)
    row = run_row(info)
    row["epochs_completed"] = int(wide["epoch"].max()) if len(wide) else 0
    row["seconds"] = info.get("seconds")
    for col in wide.columns:
        if col == "epoch":
            continue
        series = wide[col].dropna()
        if series.empty:
            continue
        row[f"final_{col}"] = float(series.iloc[-1])
        if col.endswith("accuracy"):
            best = int(series.idxmax())
            row[f"best_{col}"] = float(series.loc[best])
            row[f"best_{col}_epoch"] = int(wide.loc[best, "epoch"])
    return row


def experiment_tables(
    metrics_paths: Sequence[str | os.PathLike], run_info_paths: Sequence[str | os.PathLike]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tidy metrics, summary) of the runs of one experiment; the paths pair up in order."""
    if len(metrics_paths) != len(run_info_paths):
        raise ValueError(
            f"{len(metrics_paths)} metrics files but {len(run_info_paths)} run.json files"
        )
    tidy, summary = [], []
    for metrics_path, info_path in zip(metrics_paths, run_info_paths, strict=True):
        info = read_json(info_path)
        tidy.append(tidy_run(metrics_path, info))
        summary.append(summarise_run(metrics_path, info))
    return pd.concat(tidy, ignore_index=True), pd.DataFrame(summary)


def concat_tables(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    return pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()


def write_frame(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a CSV atomically (floats at full precision)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.17g")
