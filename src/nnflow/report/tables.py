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

from nnflow.files import atomic_write, read_json
from nnflow.report.html_table import write_table_html

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
    summary = pd.DataFrame(summary)
    return pd.concat(tidy, ignore_index=True), summary[summary_columns(summary.columns)]


def concat_tables(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    return pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()


def write_frame(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a CSV atomically (floats at full precision)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.17g")


# Headline metrics first, in this order: what a reader of the summary looks for.
HEADLINE_METRICS = ("test_accuracy", "val_accuracy", "train_accuracy", "test_cost", "val_cost",
                    "train_cost", "train_loss")


def summary_columns(columns: Sequence[str]) -> list[str]:
    """``columns`` of a summary in reading order: the run's identity (:data:`ID_COLUMNS`), its
    ``param_*`` (sorted), the single ``test_accuracy`` evaluation of a search's winner, per
    headline metric (:data:`HEADLINE_METRICS`) ``final_``, ``best_`` and ``best_..._epoch``,
    then ``epochs_completed``, ``seconds`` and every other column (sorted)."""
    present = list(dict.fromkeys(columns))
    head = [c for c in ID_COLUMNS if c in present]
    head += sorted(c for c in present if c.startswith("param_"))
    metric_order = ["test_accuracy"]
    for metric in HEADLINE_METRICS:
        metric_order += [f"final_{metric}", f"best_{metric}", f"best_{metric}_epoch"]
    head += [c for c in [*metric_order, "epochs_completed", "seconds"] if c in present]
    return head + sorted(c for c in present if c not in head)


def final_run_tables(
    metrics_path: str | os.PathLike, run_info_path: str | os.PathLike, test_path: str | os.PathLike
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tidy metrics, one-row summary) of a random search's retrained winner, whose summary
    row also carries ``test_accuracy``: its single evaluation on the test set (``test.json``)."""
    tidy, summary = experiment_tables([metrics_path], [run_info_path])
    test = read_json(test_path)
    if "test_accuracy" not in test:
        raise ValueError(f"{test_path}: no 'test_accuracy' (keys: {sorted(test)})")
    return tidy, summary.assign(test_accuracy=float(test["test_accuracy"]))


def study_tables(
    metrics_paths: Sequence[str | os.PathLike],
    summary_paths: Sequence[str | os.PathLike],
    finals: Sequence[tuple[str | os.PathLike, str | os.PathLike, str | os.PathLike]] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The study's tidy metrics and summary: the experiments' tables, then per random search
    its retrained winner (``finals``: ``(metrics.csv, run.json, test.json)`` each), the
    summary's columns in :func:`summary_columns` order."""
    final_tables = [final_run_tables(*paths) for paths in finals]
    tidy = [pd.read_csv(p) for p in metrics_paths] + [t for t, _ in final_tables]
    summary = [pd.read_csv(p) for p in summary_paths] + [s for _, s in final_tables]
    if not summary:
        return pd.DataFrame(), pd.DataFrame()
    tidy, summary = (pd.concat(frames, ignore_index=True, sort=False) for frames in (tidy, summary))
    return tidy, summary[summary_columns(summary.columns)]


def summary_for_reading(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` as the report shows it: ``run_id`` becomes ``run``, the ID without the
    experiment's name (its own column), and ``seed`` (part of the ID) is left out."""
    run = [
        str(r)[len(f"{e}/"):] if str(r).startswith(f"{e}/") else str(r)
        for e, r in zip(summary["experiment"], summary["run_id"], strict=True)
    ]
    shown = summary.drop(columns=["run_id", "seed"]).copy()
    shown.insert(1, "run", run)
    return shown


# ----------------------------------------------------------------------------- environment

ENVIRONMENT_COLUMNS = [
    "nnflow",
    "python",
    "platform",
    "numpy",
    "scipy",
    "blas",
    "thread_env",
    "threads",
    "update_kernels",
    "git_commit",
    "lock",
    "lock_status",
]
_THREAD_ORDER = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _text(value: Any) -> str:
    return "n/a" if value is None or value == "" else str(value)


def _blas_text(pools: Any) -> str:
    """'openblas 0.3.27 Haswell, 1 thread' per threadpoolctl pool, sorted and joined with '; '
    (NumPy and SciPy each load their own OpenBLAS, listed in import order: one environment,
    one text)."""
    if not pools:
        return "n/a"
    parts = []
    for pool in pools:
        n = pool.get("num_threads")
        threads = "? threads" if n is None else f"{n} thread{'' if n == 1 else 's'}"
        words = [pool.get("internal_api") or "?", pool.get("version"), pool.get("architecture")]
        parts.append(" ".join(str(w) for w in words if w) + f", {threads}")
    return "; ".join(sorted(parts))


def _kernels_text(record: Any, calls: Any = None) -> str:
    """'numba 0.68.1, 2 threads' or 'numpy (numba not installed)': which implementation of
    the update rules ran (:func:`nnflow.runtime.update_kernels`; 'n/a' when not recorded).

    ``calls`` (run.json's ``update_calls``: update-rule calls, or network2's epochs, by the
    path that computed them) corrects what the process would choose by what it did: 'none
    (no update rule called)' for a run that recorded no such call (network2 before its
    epochs were counted), 'numpy (numba not started: too little update work)' for a short
    run under ``auto``.
    """
    if not record:
        return "n/a"
    if calls is not None and not calls.get("numba"):
        if not calls.get("numpy"):
            return "none (no update rule called)"
        if record.get("path") == "numba":
            return "numpy (numba not started: too little update work)"
    if record.get("path") == "numba":
        n = record.get("threads")
        return f"numba {record.get('numba')}, {n} thread{'' if n == 1 else 's'}"
    reason = record.get("reason")
    return f"{record.get('path')} ({reason})" if reason else _text(record.get("path"))


def _thread_env_text(env: Any) -> str:
    """'OMP=1 OPENBLAS=1 MKL=1' for the variables that are set ('none set' otherwise)."""
    env = {k: v for k, v in (env or {}).items() if v is not None}
    names = [k for k in _THREAD_ORDER if k in env] + sorted(k for k in env if k not in _THREAD_ORDER)
    text = " ".join(f"{k.removesuffix('_NUM_THREADS')}={env[k]}" for k in names)
    return text or "none set"


_LOCK_STATUS_SHOWN = 3  # differences named in a lock_status cell; the rest are counted


def _names_text(items: list[str]) -> str:
    shown = "; ".join(items[:_LOCK_STATUS_SHOWN])
    more = len(items) - _LOCK_STATUS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _lock_columns(env: dict[str, Any]) -> tuple[str, str]:
    """(lock, lock_status) of one run's environment (see :func:`environment_row`)."""
    if "lock" not in env:
        return "n/a", "not recorded"
    record = env["lock"]
    if record is None:
        return "none", "no lock: installed from pyproject.toml's ranges"
    digest = str(record.get("sha256") or "unreadable")[:12]
    differences = list(record.get("differences") or [])
    if differences or not record.get("matches"):
        return digest, "DIFFERS: " + (_names_text(differences) or "not the locked versions")
    unlocked = list(record.get("unlocked") or [])
    return digest, "exact" + (f", plus {_names_text(unlocked)}" if unlocked else "")


def environment_row(info: dict[str, Any]) -> dict[str, Any]:
    """The environment columns of one run.json (``n/a`` for what an older run does not record).

    ``lock`` is the first 12 hex digits of the sha256 of the lock file the run compared its
    environment with (``none`` without a lock), ``lock_status`` the comparison: ``exact``
    (every locked distribution at its pinned version; ``, plus name==version`` lists what
    was installed beyond the lock), or ``DIFFERS: ...`` naming the distributions that were
    missing or at another version. ``update_kernels`` is the implementation of the update
    rules the run used (the fused numba kernels and their threads, or NumPy and why).
    """
    env = info.get("environment") or {}
    packages = env.get("packages") or {}
    threads = info.get("threads")
    lock, lock_status = _lock_columns(env)
    return {
        "nnflow": _text(env.get("nnflow")),
        "python": _text(env.get("python")),
        "platform": _text(env.get("platform")),
        "numpy": _text(env.get("numpy") or packages.get("numpy")),
        "scipy": _text(packages.get("scipy")),
        "blas": _blas_text(env.get("blas")),
        "thread_env": _thread_env_text(env.get("thread_env")),
        "threads": "n/a" if threads is None else str(threads),
        "update_kernels": _kernels_text(env.get("update_kernels"), info.get("update_calls")),
        "git_commit": _text(env.get("git_commit")),
        "lock": lock,
        "lock_status": lock_status,
    }


def environment_table(run_infos: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per distinct environment of the given run.json contents, in order of first
    appearance: the columns of :data:`ENVIRONMENT_COLUMNS`, ``n_runs`` and ``experiments``
    (the experiments run in it, sorted and comma-joined)."""
    rows: dict[tuple[str, ...], dict[str, Any]] = {}
    for info in run_infos:
        row = environment_row(info)
        key = tuple(row[c] for c in ENVIRONMENT_COLUMNS)
        entry = rows.setdefault(key, {**row, "n_runs": 0, "experiments": set()})
        entry["n_runs"] += 1
        entry["experiments"].add(str((info.get("spec") or {}).get("experiment", "n/a")))
    out = [{**r, "experiments": ", ".join(sorted(r["experiments"]))} for r in rows.values()]
    return pd.DataFrame(out, columns=[*ENVIRONMENT_COLUMNS, "n_runs", "experiments"])


def _rst_cell(value: Any) -> str:
    text = " ".join(str(value).split()) or "n/a"
    for ch in ("\\", "*", "`", "|", "_"):
        text = text.replace(ch, "\\" + ch)
    return text


def lock_verdict(table: pd.DataFrame) -> str:
    """One sentence on ``table`` (from :func:`environment_table`): whether every run used
    the same lock exactly, or which runs did not (empty for no runs)."""
    if table.empty:
        return ""
    total = int(table["n_runs"].sum())
    exact = table[table["lock_status"].str.startswith("exact")]
    digests = sorted(set(exact["lock"]))
    if len(exact) == len(table) and len(digests) == 1:
        plus = int(exact.loc[exact["lock_status"] != "exact", "n_runs"].sum())
        extra = f" ({plus} of them with packages installed beyond the lock)" if plus else ""
        return f"All {total} runs used the locked environment {digests[0]} exactly{extra}."
    groups: dict[str, int] = {}
    for rec in table.to_dict("records"):
        status = rec["lock_status"]
        if status.startswith("exact"):
            key = f"lock {rec['lock']} exactly"
        elif status.startswith("DIFFERS"):
            key = f"an environment that differs from lock {rec['lock']}"
        elif rec["lock"] == "none":
            key = "no lock"
        else:
            key = "an environment recorded without its lock"
        groups[key] = groups.get(key, 0) + int(rec["n_runs"])
    parts = [f"{n} run{'' if n == 1 else 's'} {key}" for key, n in groups.items()]
    return "NOT all runs used one locked environment: " + "; ".join(parts) + " (see the lock_status column)."


def environment_rst(table: pd.DataFrame, title: str = "Software environment of the runs") -> str:
    """``table`` (from :func:`environment_table`) as an RST list-table for a report caption,
    followed by :func:`lock_verdict`.

    Git commits are shortened to 12 characters (keeping a ``-dirty`` mark).
    """
    header = [str(c) for c in table.columns]
    lines = [f".. list-table:: {_rst_cell(title)}", "   :header-rows: 1", ""]
    body = [header]
    for rec in table.to_dict("records"):
        cells = []
        for col in header:
            value = rec[col]
            if col == "git_commit" and value != "n/a":
                commit, dirty = str(value).removesuffix("-dirty"), str(value).endswith("-dirty")
                value = commit[:12] + ("-dirty" if dirty else "")
            cells.append(value)
        body.append(cells)
    for cells in body:
        for i, cell in enumerate(cells):
            lines.append(f"   {'*' if i == 0 else ' '} - {_rst_cell(cell)}")
    verdict = lock_verdict(table)
    if verdict:
        lines += ["", _rst_cell(verdict)]
    return "\n".join(lines) + "\n"


ENVIRONMENT_INTRO = (
    "One row per distinct software environment the runs were computed in: versions, BLAS libraries "
    "and thread settings, the git commit and the lock (first 12 hex digits of its sha256) with how the "
    "installed distributions compared with it; n_runs and experiments say which runs used it. The same "
    "table is results/environment.csv."
)


def write_environment_html(path: str | os.PathLike, table: pd.DataFrame) -> str:
    """``table`` (from :func:`environment_table`) as the report's HTML page, introduced by
    :data:`ENVIRONMENT_INTRO` and :func:`lock_verdict`; returns the text."""
    intro = " ".join(part for part in (ENVIRONMENT_INTRO, lock_verdict(table)) if part)
    title = "Environment: one row per software environment"
    return write_table_html(path, table, title, intro, drop_empty=False)
