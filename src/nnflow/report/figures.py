"""Comparison figures and report captions of the training experiments.

One entry point, :func:`experiment_figure`, called by the ``figure_<experiment>``
rules: it reads the experiment's tidy table (``metrics.csv``: one row per run,
epoch and metric) and its summary, draws one figure (PNG + PDF), computes the
numbers the caption states, writes them to ``numbers.json`` and renders the
caption template with them.

The grid point of a run is the label in its run ID
(``<experiment>/<label>/seed=<seed>``). Curves show the mean over the seeds of a
grid point with a shaded min–max band; only *completed* runs enter means,
bands and numbers. Diverged runs are drawn thin with a cross at the divergence
epoch and counted in the caption.

The maths of the numbers (peaks, smoothed peak epochs, gaps, gradient ratios)
lives in small pure functions over DataFrames (``seed_band``, ``peak``,
``smoothed_peak_epoch``, ``run_values``, ``layer_ratio_per_run``, ...).
Accuracies are fractions 0..1 in the tables; numbers whose key ends in ``_pct``
are percent.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from nnflow.files import read_json, write_json  # noqa: E402
from nnflow.report.captions import render_caption  # noqa: E402
from nnflow.report.drawing import save_figure  # noqa: E402
from nnflow.train.grid import LABEL_SEPARATOR  # noqa: E402

__all__ = [
    "experiment_figure",
    "save_figure",
    "load_tidy",
    "seed_band",
    "peak",
    "smoothed_peak_epoch",
    "run_values",
    "layer_ratio_per_run",
    "compare_word",
]

SPREAD = "min–max over seeds"
BOOK_MNIST_COST = {"quadratic": 0.9542, "cross_entropy": 0.9549}  # Nielsen ch. 1 and ch. 3
BOOK_OVERFITTING = {0.0: 0.8227, 0.1: 0.871}  # Nielsen ch. 3, 1,000 digits, 400 epochs
SHEET_CHALLENGE_TARGET = 0.40
RULE_ORDER = ["sgd", "sgd_momentum", "rmsprop", "adam"]
PRETTY_KEY = {"lmbda": "λ", "eta": "η", "learning_rate": "lr", "weight_init": "init"}


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------



# ---------------------------------------------------------------------------------------------
# Tables and pure maths
# ---------------------------------------------------------------------------------------------


def grid_label(run_id: str) -> str:
    """The grid-point label of a run ID ``<experiment>/<label>/seed=<seed>``."""
    parts = str(run_id).split("/")
    return "/".join(parts[1:-1]) if len(parts) >= 3 else str(run_id)


def load_tidy(metrics_path: str | os.PathLike) -> pd.DataFrame:
    """The tidy table with a ``group`` column (grid-point label) added."""
    tidy = pd.read_csv(metrics_path)
    return tidy.assign(group=tidy["run_id"].map(grid_label))


def run_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """One row per run: run_id, group, seed, status, diverged_epoch and the ``param_*`` columns."""
    cols = ["run_id", "group", "seed", "status", "diverged_epoch"] + [
        c for c in tidy.columns if c.startswith("param_")
    ]
    return tidy[cols].drop_duplicates("run_id").reset_index(drop=True)


def groups_in_order(tidy: pd.DataFrame) -> list[str]:
    return [str(g) for g in pd.unique(tidy["group"])]


def completed(tidy: pd.DataFrame) -> pd.DataFrame:
    return tidy[tidy["status"] == "completed"]


def seed_band(tidy: pd.DataFrame, metric: str, scale: float = 1.0, geometric: bool = False) -> pd.DataFrame:
    """Per group and epoch: mean, std, lo (min), hi (max) and n over the completed runs.

    Non-finite values are dropped. Columns: group, epoch, mean, std, lo, hi, n. With
    ``geometric`` (for log axes) non-positive values are dropped too and ``mean`` is the
    geometric mean (``std`` is then the std of the natural log).
    """
    d = completed(tidy)
    d = d[(d["metric"] == metric) & np.isfinite(d["value"])]
    if geometric:
        d = d[d["value"] > 0]
    d = d.assign(value=d["value"] * scale)
    g = d.assign(logv=np.log(d["value"]) if geometric else d["value"]).groupby(["group", "epoch"], sort=False)
    out = g["value"].agg(lo="min", hi="max", n="count")
    out["mean"] = np.exp(g["logv"].mean()) if geometric else g["value"].mean()
    out["std"] = g["logv"].std()
    out = out.reset_index()[["group", "epoch", "mean", "std", "lo", "hi", "n"]]
    return out.sort_values(["group", "epoch"], kind="stable").reset_index(drop=True)


def group_curve(band: pd.DataFrame, group: str) -> pd.DataFrame:
    return band[band["group"] == group].sort_values("epoch").reset_index(drop=True)


def peak(curve: pd.DataFrame, column: str = "mean") -> tuple[float, int]:
    """(maximum of ``column``, its first epoch); (nan, -1) for an empty curve."""
    if curve.empty:
        return math.nan, -1
    values = curve[column].to_numpy(dtype=float)
    i = int(np.nanargmax(values))
    return float(values[i]), int(curve["epoch"].iloc[i])


def smoothed(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Centred moving average with shrinking windows at the ends."""
    s = pd.Series(np.asarray(values, dtype=float))
    return s.rolling(max(1, int(window)), center=True, min_periods=1).mean().to_numpy()


def smoothed_peak_epoch(curve: pd.DataFrame, window: int, column: str = "mean") -> int:
    """Epoch of the maximum of the centred ``window``-epoch moving average of ``column``.

    -1 for an empty curve.
    """
    if curve.empty:
        return -1
    sm = smoothed(curve[column].to_numpy(dtype=float), window)
    return int(curve["epoch"].iloc[int(np.nanargmax(sm))])


def plateau_epoch(curve: pd.DataFrame, window: int, tolerance: float, column: str = "mean") -> int:
    """First epoch at which the ``window``-epoch moving average of ``column`` comes within
    ``tolerance`` of its maximum: from there on the curve gains at most ``tolerance``.

    This is where the test accuracy stops improving in any useful sense; the exact
    argmax of a slowly creeping curve lies near the end and says little. -1 if empty.
    """
    if curve.empty:
        return -1
    sm = smoothed(curve[column].to_numpy(dtype=float), window)
    reached = np.flatnonzero(sm >= np.nanmax(sm) - tolerance)
    return int(curve["epoch"].iloc[int(reached[0])])


def value_at(curve: pd.DataFrame, epoch: int, column: str = "mean") -> float:
    row = curve[curve["epoch"] == epoch]
    return float(row[column].iloc[0]) if len(row) else math.nan


def last_value(curve: pd.DataFrame, column: str = "mean") -> float:
    return float(curve[column].iloc[-1]) if len(curve) else math.nan


def run_values(tidy: pd.DataFrame, metric: str, how: str = "final") -> pd.DataFrame:
    """Per completed run (run_id, group, seed): the ``final`` (last epoch) or ``max`` value
    of ``metric`` and the epoch it occurs at (first one for ties)."""
    d = completed(tidy)
    d = d[(d["metric"] == metric) & np.isfinite(d["value"])].sort_values(["run_id", "epoch"])
    rows = []
    for run_id, r in d.groupby("run_id", sort=False):
        if how == "final":
            i = len(r) - 1
        elif how == "max":
            i = int(np.argmax(r["value"].to_numpy()))
        else:
            raise ValueError(f"how must be 'final' or 'max', not {how!r}")
        rows.append(
            {
                "run_id": run_id,
                "group": r["group"].iloc[0],
                "seed": r["seed"].iloc[0],
                "value": float(r["value"].iloc[i]),
                "epoch": int(r["epoch"].iloc[i]),
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "group", "seed", "value", "epoch"])


def layer_columns(tidy: pd.DataFrame) -> list[int]:
    """Layer indices l of the ``grad_norm_layer<l>`` metrics, sorted."""
    names = pd.unique(tidy["metric"])
    out = [int(m[len("grad_norm_layer") :]) for m in names if str(m).startswith("grad_norm_layer")]
    return sorted(out)


def hidden_layers(tidy: pd.DataFrame) -> tuple[int, int]:
    """(first, last) hidden layer index: 1 and len(hidden_dims) (or L - 1 without it)."""
    layers = layer_columns(tidy)
    if not layers:
        raise ValueError("no grad_norm_layer<l> metrics in the table")
    n_hidden = None
    if "param_hidden_dims" in tidy.columns:
        dims = str(tidy["param_hidden_dims"].iloc[0])
        n_hidden = len([d for d in dims.split("x") if d])
    last = n_hidden if n_hidden and n_hidden in layers else max(layers) - 1
    return 1, max(1, last)


def layer_ratio_per_run(tidy: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """Per completed run: ||dC/db^last|| / ||dC/db^first|| at its first and at its last epoch,
    and during training (``ratio_during``: geometric mean over the epochs >= 1).

    Columns: run_id, group, seed, epoch_init, ratio_init, epoch_end, ratio_end, ratio_during
    (plus the four norms).
    """
    d = completed(tidy)
    names = {f"grad_norm_layer{first}": "first", f"grad_norm_layer{last}": "last"}
    d = d[d["metric"].isin(list(names)) & np.isfinite(d["value"])]
    wide = d.pivot_table(index=["run_id", "group", "seed", "epoch"], columns="metric", values="value").rename(
        columns=names
    )
    wide = wide.dropna().reset_index().sort_values(["run_id", "epoch"])
    rows = []
    for run_id, r in wide.groupby("run_id", sort=False):
        a, b = r.iloc[0], r.iloc[-1]
        trained = r[r["epoch"] >= 1]
        rows.append(
            {
                "run_id": run_id,
                "group": r["group"].iloc[0],
                "seed": r["seed"].iloc[0],
                "epoch_init": int(a["epoch"]),
                "first_init": float(a["first"]),
                "last_init": float(a["last"]),
                "ratio_init": float(a["last"] / a["first"]),
                "epoch_end": int(b["epoch"]),
                "first_end": float(b["first"]),
                "last_end": float(b["last"]),
                "ratio_end": float(b["last"] / b["first"]),
                "ratio_during": geo_mean(trained["last"] / trained["first"]) if len(trained) else math.nan,
            }
        )
    return pd.DataFrame(rows)


def geo_mean(values: Sequence[float] | np.ndarray) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.mean(np.log(v)))) if v.size else math.nan


def imbalance(ratio: float) -> float:
    """max(r, 1/r): the factor between the two layers' gradient norms (1 = balanced)."""
    if not (ratio > 0 and math.isfinite(ratio)):
        return math.nan
    return max(ratio, 1.0 / ratio)


def compare_word(a: float, b: float, tol: float = 0.01, words=("larger", "smaller")) -> str:
    """``words[0]`` if a > b (relative tolerance ``tol``), ``words[1]`` if a < b,
    'about the same' otherwise, 'n/a' if either is missing."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return "n/a"
    if abs(a - b) <= tol * max(abs(a), abs(b)):
        return "about the same"
    return words[0] if a > b else words[1]


def pct(frac: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(frac) else f"{100 * frac:.{digits}f}%"


def num(x: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


# ---------------------------------------------------------------------------------------------
# Plot helpers
# ---------------------------------------------------------------------------------------------


def _value_text(value: Any) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return "n/a" if value != value else f"{value:g}"
    return str(value)


def group_params(runs: pd.DataFrame, group: str) -> dict[str, Any]:
    row = runs[runs["group"] == group].iloc[0]
    return {c[len("param_") :]: row[c] for c in runs.columns if c.startswith("param_")}


def pretty_group(group: str) -> str:
    """'cost=quadratic+eta=3.0' -> 'cost quadratic, η 3'."""
    if "=" not in group:
        return group
    parts = []
    for item in group.split(LABEL_SEPARATOR):
        key, _, value = item.partition("=")
        try:
            value = f"{float(value):g}"
        except ValueError:
            pass
        parts.append(f"{PRETTY_KEY.get(key, key)}={value}")
    return ", ".join(parts)


def draw_band(ax, curve: pd.DataFrame, label: str, color, ls="-", alpha=0.18) -> None:
    if curve.empty:
        return
    x = curve["epoch"].to_numpy()
    ax.plot(x, curve["mean"].to_numpy(), color=color, ls=ls, lw=1.6, label=label)
    ax.fill_between(x, curve["lo"].to_numpy(), curve["hi"].to_numpy(), color=color, alpha=alpha, lw=0)


def draw_diverged(
    ax,
    tidy: pd.DataFrame,
    group: str,
    metric: str,
    color,
    scale=1.0,
    from_epoch: int | None = None,
    label_runs: bool = True,
) -> int:
    """Thin dashed curves of the group's diverged runs with a cross at the divergence epoch.
    Returns the number of diverged runs drawn."""
    d = tidy[(tidy["group"] == group) & (tidy["status"] != "completed")]
    count = 0
    for _run_id, r in d.groupby("run_id", sort=False):
        count += 1
        k = r["diverged_epoch"].iloc[0]
        k_txt = "?" if pd.isna(k) else str(int(k))
        r = r[(r["metric"] == metric) & np.isfinite(r["value"])].sort_values("epoch")
        if from_epoch is not None:
            r = r[r["epoch"] >= from_epoch]
        if r.empty:
            continue
        who = "" if group == "base" else f"{pretty_group(group)} "
        label = f"{who}seed {r['seed'].iloc[0]} (diverged at epoch {k_txt})" if label_runs else None
        x, y = r["epoch"].to_numpy(), r["value"].to_numpy() * scale
        ax.plot(x, y, color=color, ls=":", lw=0.9, alpha=0.8)
        before = r[r["epoch"] <= k] if not pd.isna(k) else r
        xe = float(k) if not pd.isna(k) else float(x[-1])
        ye = float(before["value"].iloc[-1] * scale) if len(before) else float(y[-1])
        ax.plot(
            [xe],
            [ye],
            marker="x",
            ms=9,
            mew=2,
            color=color,
            ls="none",
            label=label,
            gid="diverged",
            clip_on=False,
        )
    return count


def clamp_diverged_markers(ax) -> None:
    """Move divergence crosses that lie outside a zoomed y range onto its edge."""
    lo, hi = ax.get_ylim()
    for line in ax.get_lines():
        if line.get_gid() == "diverged":
            y = np.clip(np.asarray(line.get_ydata(), dtype=float), lo, hi)
            line.set_ydata(y)


def int_epochs(*axes) -> None:
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _new_figure(ncols: int, nrows: int = 1, width: float = 4.6, height: float = 3.6) -> Figure:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig


def add_footnote(fig: Figure, text: str) -> None:
    if text:
        fig.text(0.005, -0.01, text, fontsize=7, color="0.3", ha="left", va="top", wrap=True)


def data_note(provenance: Mapping[str, Any]) -> tuple[bool, str]:
    """(canonical, note sentence for caption and figure; '' when the data are canonical)."""
    canonical = bool(provenance.get("canonical", False))
    if canonical:
        return True, ""
    note = str(provenance.get("note") or "the provenance does not say how the data differ")
    return False, f"Data: non-canonical copy of the dataset — {note.rstrip('.')}."


# ---------------------------------------------------------------------------------------------
# Shared numbers
# ---------------------------------------------------------------------------------------------


def run_counts(runs: pd.DataFrame) -> dict[str, Any]:
    div = runs[runs["status"] != "completed"]
    listing = [
        f"{r.run_id} (diverged at epoch {'?' if pd.isna(r.diverged_epoch) else int(r.diverged_epoch)})"
        for r in div.itertuples()
    ]
    n, k = len(runs), len(div)
    seeds = runs[runs["status"] == "completed"].groupby("group", sort=False)["seed"].nunique()
    if k == 0:
        sentence = f"All {n} runs completed."
    else:
        sentence = (
            f"{k} of {n} runs diverged (excluded from means, spreads and numbers): "
            + "; ".join(listing)
            + "."
        )
    return {
        "n_runs": n,
        "n_completed": n - k,
        "n_diverged": k,
        "diverged_runs": "; ".join(listing) if listing else "none",
        "diverged_sentence": sentence,
        "n_seeds_min": int(seeds.min()) if len(seeds) else 0,
        "n_seeds_max": int(seeds.max()) if len(seeds) else 0,
        "spread": SPREAD,
    }


def bullet_list(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines) if lines else "- (no completed runs)"


def _n_of(band: pd.DataFrame, group: str) -> int:
    c = group_curve(band, group)
    return int(c["n"].max()) if len(c) else 0


# ---------------------------------------------------------------------------------------------
# mnist_cost (Blatt 10, 25a)
# ---------------------------------------------------------------------------------------------


def mnist_cost_numbers(tidy: pd.DataFrame) -> dict[str, Any]:
    runs = run_table(tidy)
    test = seed_band(tidy, "test_accuracy")
    final_runs = run_values(tidy, "test_accuracy", "final")
    best_runs = run_values(tidy, "test_accuracy", "max")
    train_final = run_values(tidy, "train_accuracy", "final")
    groups = []
    for g in groups_in_order(tidy):
        p = group_params(runs, g)
        curve = group_curve(test, g)
        peak_mean, peak_epoch = peak(curve)
        fr, br = final_runs[final_runs["group"] == g], best_runs[best_runs["group"] == g]
        bo = br.loc[br["value"].idxmax()] if len(br) else None
        groups.append(
            {
                "group": g,
                "cost": str(p.get("cost")),
                "weight_init": str(p.get("weight_init")),
                "n_seeds": int(len(fr)),
                "final_epoch": int(curve["epoch"].iloc[-1]) if len(curve) else -1,
                "final_test_pct_mean": 100 * float(fr["value"].mean()) if len(fr) else math.nan,
                "final_test_pct_best_of_seeds": 100 * float(fr["value"].max()) if len(fr) else math.nan,
                "best_test_pct_mean_curve": 100 * peak_mean,
                "best_test_epoch_mean_curve": peak_epoch,
                "best_test_pct_best_of_seeds": 100 * float(bo["value"]) if bo is not None else math.nan,
                "best_test_epoch_best_of_seeds": int(bo["epoch"]) if bo is not None else -1,
                "final_train_pct_mean": 100 * float(train_final[train_final["group"] == g]["value"].mean())
                if len(fr)
                else math.nan,
            }
        )
    numbers: dict[str, Any] = {"groups": groups}
    numbers["epochs"] = int(tidy["epoch"].max())
    numbers["book_quadratic_pct"] = 100 * BOOK_MNIST_COST["quadratic"]
    numbers["book_cross_entropy_pct"] = 100 * BOOK_MNIST_COST["cross_entropy"]

    lines = [
        f"{pretty_group(x['group'])} (n={x['n_seeds']}): final test accuracy "
        f"{num(x['final_test_pct_mean'])}% mean, {num(x['final_test_pct_best_of_seeds'])}% best "
        f"seed; peak {num(x['best_test_pct_best_of_seeds'])}% (best seed, epoch "
        f"{x['best_test_epoch_best_of_seeds']}); final training accuracy "
        f"{num(x['final_train_pct_mean'])}% mean"
        for x in groups
    ]
    numbers["per_group"] = bullet_list(lines)

    by = {(x["cost"], x["weight_init"]): x for x in groups}
    inits = list(dict.fromkeys(x["weight_init"] for x in groups))
    cmp_lines, beats = [], []
    for init in inits:
        q, c = by.get(("quadratic", init)), by.get(("cross_entropy", init))
        if not (q and c):
            continue
        diff = c["final_test_pct_mean"] - q["final_test_pct_mean"]
        win = diff > 0
        beats.append(win)
        numbers[f"ce_beats_quadratic_{init}"] = bool(win)
        numbers[f"ce_minus_quadratic_points_{init}"] = diff
        cmp_lines.append(
            f"with {init} initialisation cross-entropy is "
            f"{'ahead of' if win else 'not ahead of'} quadratic cost "
            f"({num(c['final_test_pct_mean'])}% vs {num(q['final_test_pct_mean'])}%, "
            f"{diff:+.2f} points)"
        )
    numbers["ce_beats_quadratic"] = bool(beats) and all(beats)
    numbers["cost_comparison"] = (
        f"After the last epoch ({numbers['epochs']}), on mean test accuracy, " + "; ".join(cmp_lines) + "."
        if cmp_lines
        else "No pair of quadratic and cross-entropy runs to compare."
    )
    book = []
    for cost in ("quadratic", "cross_entropy"):
        x = by.get((cost, "large"))
        if x:
            ref = 100 * BOOK_MNIST_COST[cost]
            d = x["best_test_pct_best_of_seeds"] - ref
            book.append(
                f"{cost} with large_weight_initializer peaks at "
                f"{num(x['best_test_pct_best_of_seeds'])}% (best seed) vs the book's "
                f"{ref:.2f}% ({d:+.2f} points)"
            )
    numbers["book_comparison"] = ("Against the book: " + "; ".join(book) + ".") if book else ""
    return numbers


def zoom_accuracy(ax, band: pd.DataFrame, from_epoch: int, pad: float = 1.0) -> None:
    sel = band[band["epoch"] >= from_epoch]
    if sel.empty:
        return
    lo = float(sel["lo"].min()) - pad
    hi = min(100.0, float(band["hi"].max()) + pad / 2)
    ax.set_ylim(max(0.0, lo), hi)


def mnist_cost_figure(tidy, analysis, numbers) -> Figure:
    fig = _new_figure(2, width=5.4, height=4.0)
    axes = fig.subplots(1, 2)
    E = int(tidy["epoch"].max())
    for ax, metric, name in zip(
        axes, ["test_accuracy", "train_accuracy"], ["test data (10,000 digits)", "training data"], strict=True
    ):
        band = seed_band(tidy, metric, scale=100)
        for i, g in enumerate(groups_in_order(tidy)):
            color = f"C{i}"
            draw_band(ax, group_curve(band, g), f"{pretty_group(g)} (n={_n_of(band, g)} seeds)", color)
            draw_diverged(ax, tidy, g, metric, color, scale=100)
        zoom_accuracy(ax, band, from_epoch=max(2, E // 6))
        clamp_diverged_markers(ax)
        int_epochs(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"Accuracy on the {name}")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle(
        f"MNIST, network2 [784, 30, 10]: quadratic vs cross-entropy cost "
        f"(mean, band = {SPREAD}; y axis zoomed, early epochs may lie below)",
        fontsize=10,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# mnist_overfitting (Blatt 10, 25b/c)
# ---------------------------------------------------------------------------------------------


def overfitting_group_numbers(
    tidy: pd.DataFrame, group: str, from_epoch: int, window: int, tolerance: float = 0.005
) -> dict[str, Any]:
    """Peak test accuracy, the epoch test accuracy stops improving, training cost and gap."""
    sub = tidy[tidy["group"] == group]
    test = group_curve(seed_band(sub, "test_accuracy"), group)
    train_acc = group_curve(seed_band(sub, "train_accuracy"), group)
    cost = group_curve(seed_band(sub, "train_cost"), group)
    best_runs = run_values(sub, "test_accuracy", "max")
    peak_mean, peak_epoch = peak(test)
    stop_epoch = plateau_epoch(test, window, tolerance)
    sm = smoothed(test["mean"].to_numpy(), window) if len(test) else np.array([math.nan])
    end = int(test["epoch"].iloc[-1]) if len(test) else -1
    c_from = value_at(cost, from_epoch)
    c_stop = value_at(cost, stop_epoch)
    c_end = last_value(cost)
    final_train, final_test = last_value(train_acc), last_value(test)
    bo = best_runs.loc[best_runs["value"].idxmax()] if len(best_runs) else None
    return {
        "group": group,
        "n_seeds": int(test["n"].max()) if len(test) else 0,
        "final_epoch": end,
        "peak_test_pct": 100 * peak_mean,
        "peak_test_epoch": peak_epoch,
        "peak_test_pct_best_of_seeds": 100 * float(bo["value"]) if bo is not None else math.nan,
        "peak_test_epoch_best_of_seeds": int(bo["epoch"]) if bo is not None else -1,
        "stop_improving_epoch": stop_epoch,
        "smoothed_peak_test_pct": 100 * float(np.nanmax(sm)),
        "final_test_pct": 100 * final_test,
        "train_cost_from": c_from,
        "train_cost_at_stop": c_stop,
        "train_cost_end": c_end,
        "train_cost_still_falling": bool(c_end < c_stop) if math.isfinite(c_stop) else False,
        "final_train_pct": 100 * final_train,
        "final_gap_points": 100 * (final_train - final_test),
    }


def mnist_overfitting_numbers(tidy: pd.DataFrame, analysis: Mapping[str, Any]) -> dict[str, Any]:
    runs = run_table(tidy)
    from_epoch = int(analysis.get("from_epoch", 1))
    E = int(tidy["epoch"].max())
    window = int(analysis.get("smooth_window", max(1, round(E / 20))))
    tolerance = float(analysis.get("plateau_tolerance", 0.005))
    groups = []
    for g in groups_in_order(tidy):
        x = overfitting_group_numbers(tidy, g, from_epoch, window, tolerance)
        x["lmbda"] = float(group_params(runs, g).get("lmbda", math.nan))
        book = BOOK_OVERFITTING.get(x["lmbda"])
        x["book_peak_pct"] = 100 * book if book is not None else math.nan
        groups.append(x)
    base = [x for x in groups if x["lmbda"] == 0.0]
    reg = [x for x in groups if x["lmbda"] != 0.0]
    if not base or not reg:
        raise ValueError(
            f"mnist_overfitting needs a lmbda=0 and a lmbda>0 grid point, got {[x['lmbda'] for x in groups]}"
        )
    b, r = base[0], reg[0]
    numbers: dict[str, Any] = {
        "groups": groups,
        "from_epoch": from_epoch,
        "epochs": E,
        "smooth_window": window,
        "plateau_points": 100 * tolerance,
    }
    keys = [
        "peak_test_pct",
        "peak_test_epoch",
        "peak_test_pct_best_of_seeds",
        "stop_improving_epoch",
        "smoothed_peak_test_pct",
        "final_test_pct",
        "train_cost_from",
        "train_cost_at_stop",
        "train_cost_end",
        "final_train_pct",
        "final_gap_points",
        "book_peak_pct",
        "n_seeds",
        "lmbda",
    ]
    for prefix, x in (("base", b), ("l2", r)):
        for k in keys:
            numbers[f"{prefix}_{k}"] = x[k]
    falls = b["train_cost_still_falling"]
    drop = b["smoothed_peak_test_pct"] - b["final_test_pct"]
    numbers["base_train_cost_still_falling"] = falls
    numbers["overfitting_answer"] = (
        "Overfitting shows when the training cost keeps falling while the accuracy on unseen "
        "data no longer improves, and as a gap between training and test accuracy. Here, "
        f"without regularisation, the test accuracy stops improving at epoch "
        f"{b['stop_improving_epoch']}: from there its {window}-epoch moving average gains at most "
        f"{100 * tolerance:g} points up to its best, {num(b['smoothed_peak_test_pct'])}% "
        f"(it ends at {num(b['final_test_pct'])}%, "
        f"{abs(drop):.2f} points {'below' if drop >= 0 else 'above'} that best), while the "
        f"training cost {'keeps falling' if falls else 'does not fall further'}: "
        + ", ".join(f"{num(c)} at epoch {e}" for e, c in sorted({
            from_epoch: b["train_cost_from"],
            b["stop_improving_epoch"]: b["train_cost_at_stop"],
            b["final_epoch"]: b["train_cost_end"],
        }.items()))
        + f". The training accuracy ends at {num(b['final_train_pct'])}%, "
        f"{num(b['final_gap_points'])} points above the test accuracy."
    )
    d_peak = r["peak_test_pct"] - b["peak_test_pct"]
    numbers["l2_peak_difference_points"] = d_peak
    numbers["l2_gap_difference_points"] = r["final_gap_points"] - b["final_gap_points"]
    numbers["l2_answer"] = (
        f"With λ = {r['lmbda']:g} the peak test accuracy (mean curve) is "
        f"{num(r['peak_test_pct'])}% at epoch {r['peak_test_epoch']} vs "
        f"{num(b['peak_test_pct'])}% at epoch {b['peak_test_epoch']} without "
        f"({d_peak:+.2f} points, "
        f"{compare_word(r['peak_test_pct'], b['peak_test_pct'], 1e-4, ('higher', 'lower'))}); "
        f"the final train–test gap is {num(r['final_gap_points'])} vs "
        f"{num(b['final_gap_points'])} points "
        f"({compare_word(r['final_gap_points'], b['final_gap_points'], 1e-3)}); "
        f"the test accuracy reaches its plateau at epoch {r['stop_improving_epoch']} vs "
        f"{b['stop_improving_epoch']} "
        f"({compare_word(r['stop_improving_epoch'], b['stop_improving_epoch'], 0, ('later', 'earlier'))}); "
        f"the training cost (which includes the L2 term) goes from "
        f"{num(r['train_cost_from'])} to {num(r['train_cost_end'])} vs "
        f"{num(b['train_cost_from'])} to {num(b['train_cost_end'])} without, ending "
        f"{compare_word(r['train_cost_end'], b['train_cost_end'], 1e-3, ('higher', 'lower'))}."
    )
    book_lines = [
        f"λ = {x['lmbda']:g}: best seed peaks at {num(x['peak_test_pct_best_of_seeds'])}% "
        f"(epoch {x['peak_test_epoch_best_of_seeds']}) vs the book's {num(x['book_peak_pct'])}%"
        for x in groups
        if math.isfinite(x["book_peak_pct"])
    ]
    numbers["book_comparison"] = ("Against the book: " + "; ".join(book_lines) + ".") if book_lines else ""
    return numbers


def mnist_overfitting_figure(tidy, analysis, numbers) -> Figure:
    from_epoch = numbers["from_epoch"]
    sub = tidy[tidy["epoch"] >= from_epoch]
    fig = _new_figure(3, width=4.4, height=3.8)
    ax_cost, ax_test, ax_gap = fig.subplots(1, 3)
    cost = seed_band(sub, "train_cost")
    test = seed_band(sub, "test_accuracy", scale=100)
    train = seed_band(sub, "train_accuracy", scale=100)
    for i, g in enumerate(groups_in_order(tidy)):
        color = f"C{i}"
        x = next(y for y in numbers["groups"] if y["group"] == g)
        lab = f"λ = {x['lmbda']:g} (n={_n_of(test, g)} seeds)"
        draw_band(ax_cost, group_curve(cost, g), lab, color)
        draw_diverged(ax_cost, tidy, g, "train_cost", color, from_epoch=from_epoch)
        draw_band(ax_test, group_curve(test, g), lab, color)
        draw_diverged(ax_test, tidy, g, "test_accuracy", color, scale=100, from_epoch=from_epoch)
        if x["stop_improving_epoch"] >= 0:
            ax_test.axvline(
                x["stop_improving_epoch"],
                color=color,
                ls="--",
                lw=0.9,
                label=f"λ = {x['lmbda']:g}: plateau from epoch {x['stop_improving_epoch']}",
            )
        draw_band(ax_gap, group_curve(train, g), f"λ = {x['lmbda']:g} training", color)
        draw_band(ax_gap, group_curve(test, g), f"λ = {x['lmbda']:g} test", color, ls="--", alpha=0.1)
    ax_cost.set_title("Training cost (log scale)")
    ax_cost.set_yscale("log")
    ax_cost.set_ylabel("cost per training example (incl. L2 term)")
    ax_test.set_title("Test accuracy")
    ax_test.set_ylabel("accuracy (%)")
    ax_gap.set_title("Training vs test accuracy")
    ax_gap.set_ylabel("accuracy (%)")
    for ax in (ax_cost, ax_test, ax_gap):
        int_epochs(ax)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"MNIST, 1,000 training digits, cross-entropy, epochs {from_epoch}–{numbers['epochs']}: "
        f"overfitting with and without L2 (mean, band = {SPREAD})",
        fontsize=10,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# cifar_overfitting (11a)
# ---------------------------------------------------------------------------------------------


def cifar_overfitting_numbers(tidy: pd.DataFrame, analysis: Mapping[str, Any]) -> dict[str, Any]:
    target = float(analysis.get("target_train_accuracy", 0.6))
    train = seed_band(tidy, "train_accuracy")
    val = seed_band(tidy, "val_accuracy")
    max_train_runs = run_values(tidy, "train_accuracy", "max")
    groups = []
    for g in groups_in_order(tidy):
        tc, vc = group_curve(train, g), group_curve(val, g)
        mt = max_train_runs[max_train_runs["group"] == g]
        peak_train, peak_train_epoch = peak(tc)
        peak_val, peak_val_epoch = peak(vc)
        n_reach = int((mt["value"] >= target).sum())
        groups.append(
            {
                "group": g,
                "n_seeds": int(len(mt)),
                "max_train_pct": 100 * peak_train,
                "max_train_epoch": peak_train_epoch,
                "max_train_pct_best_of_seeds": 100 * float(mt["value"].max()) if len(mt) else math.nan,
                "runs_reaching_target": n_reach,
                "reaches_target": bool(peak_train >= target),
                "final_train_pct": 100 * last_value(tc),
                "final_val_pct": 100 * last_value(vc),
                "max_val_pct": 100 * peak_val,
                "max_val_epoch": peak_val_epoch,
                "final_gap_points": 100 * (last_value(tc) - last_value(vc)),
            }
        )
    x = groups[0]
    numbers: dict[str, Any] = {
        "groups": groups,
        "target_train_pct": 100 * target,
        "epochs": int(tidy["epoch"].max()),
    }
    for k, v in x.items():
        if k != "group":
            numbers[k] = v
    numbers["target_sentence"] = (
        f"The mean training accuracy peaks at {num(x['max_train_pct'])}% (epoch "
        f"{x['max_train_epoch']}), so the {100 * target:g}% target is "
        f"{'met' if x['reaches_target'] else 'not met'} on average; "
        f"{x['runs_reaching_target']} of {x['n_seeds']} completed runs reach it."
    )
    numbers["overfitting_sentence"] = (
        f"Overfitting shows as the gap between the curves: training accuracy climbs to "
        f"{num(x['final_train_pct'])}% at the last epoch while validation accuracy "
        f"{'stays near' if x['final_val_pct'] <= x['max_val_pct'] + 1e-9 else 'ends at'} "
        f"{num(x['final_val_pct'])}% (its maximum: {num(x['max_val_pct'])}% at epoch "
        f"{x['max_val_epoch']}), a gap of {num(x['final_gap_points'])} points."
    )
    if len(groups) > 1:
        numbers["per_group"] = bullet_list(
            [
                f"{pretty_group(y['group'])}: max training {num(y['max_train_pct'])}%, final "
                f"validation {num(y['final_val_pct'])}%"
                for y in groups
            ]
        )
    else:
        numbers["per_group"] = ""
    return numbers


def cifar_overfitting_figure(tidy, analysis, numbers) -> Figure:
    fig = _new_figure(2, width=5.0, height=3.9)
    ax_acc, ax_loss = fig.subplots(1, 2)
    train = seed_band(tidy, "train_accuracy", scale=100)
    val = seed_band(tidy, "val_accuracy", scale=100)
    loss = seed_band(tidy, "train_loss")
    multi = len(groups_in_order(tidy)) > 1
    for i, g in enumerate(groups_in_order(tidy)):
        c1, c2 = (f"C{2 * i}", f"C{2 * i + 1}")
        pre = f"{pretty_group(g)}: " if multi else ""
        n = _n_of(train, g)
        draw_band(ax_acc, group_curve(train, g), f"{pre}training, 2,500 pairs (n={n} seeds)", c1)
        draw_band(ax_acc, group_curve(val, g), f"{pre}validation (n={n} seeds)", c2)
        draw_diverged(ax_acc, tidy, g, "train_accuracy", c1, scale=100)
        draw_band(ax_loss, group_curve(loss, g), f"{pre}training loss (n={n} seeds)", c1)
        draw_diverged(ax_loss, tidy, g, "train_loss", c1, label_runs=False)
    ax_acc.axhline(
        numbers["target_train_pct"],
        color="k",
        ls="--",
        lw=0.9,
        label=f"target {numbers['target_train_pct']:g}% training accuracy",
    )
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("Training vs validation accuracy")
    ax_loss.set_ylabel("mean minibatch loss of the epoch")
    ax_loss.set_title("Training loss")
    for ax in (ax_acc, ax_loss):
        int_epochs(ax)
        ax.set_xlabel("epoch (0 = before training)" if ax is ax_acc else "epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"CIFAR-10, 2,500 training pairs: overfitting (mean, band = {SPREAD})", fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------------
# cifar_optimizers (11b)
# ---------------------------------------------------------------------------------------------


def _rule_sorted(tidy: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    gs = groups_in_order(tidy)

    def key(g):
        rule = str(group_params(runs, g).get("update_rule"))
        return (RULE_ORDER.index(rule) if rule in RULE_ORDER else len(RULE_ORDER), gs.index(g))

    return sorted(gs, key=key)


def cifar_optimizers_numbers(tidy: pd.DataFrame, analysis: Mapping[str, Any]) -> dict[str, Any]:
    runs = run_table(tidy)
    loss = seed_band(tidy, "train_loss")
    train = seed_band(tidy, "train_accuracy")
    val = seed_band(tidy, "val_accuracy")
    groups = []
    for g in _rule_sorted(tidy, runs):
        p = group_params(runs, g)
        vc = group_curve(val, g)
        groups.append(
            {
                "group": g,
                "update_rule": str(p.get("update_rule")),
                "learning_rate": float(p.get("learning_rate", math.nan)),
                "n_seeds": _n_of(val, g),
                "final_train_loss": last_value(group_curve(loss, g)),
                "final_train_pct": 100 * last_value(group_curve(train, g)),
                "final_val_pct": 100 * last_value(vc),
                "best_val_pct": 100 * peak(vc)[0],
            }
        )
    numbers: dict[str, Any] = {"groups": groups, "epochs": int(tidy["epoch"].max())}
    for x in groups:
        for k in ("final_train_loss", "final_train_pct", "final_val_pct"):
            numbers[f"{x['update_rule']}_{k}"] = x[k]
    ok = [x for x in groups if math.isfinite(x["final_val_pct"])]
    if ok:
        best = max(ok, key=lambda x: x["final_val_pct"])
        low = min(ok, key=lambda x: x["final_train_loss"])
        others = [x for x in ok if x is not best]
        runner = max(others, key=lambda x: x["final_val_pct"]) if others else None
        numbers.update(
            best_rule=best["update_rule"],
            best_val_pct=best["final_val_pct"],
            best_train_pct=best["final_train_pct"],
            lowest_loss_rule=low["update_rule"],
            lowest_loss=low["final_train_loss"],
            best_margin_points=best["final_val_pct"] - runner["final_val_pct"] if runner else math.nan,
            runner_up_rule=runner["update_rule"] if runner else "none",
        )
    else:
        numbers.update(
            best_rule="none",
            best_val_pct=math.nan,
            best_train_pct=math.nan,
            lowest_loss_rule="none",
            lowest_loss=math.nan,
            best_margin_points=math.nan,
            runner_up_rule="none",
        )
    numbers["per_group"] = bullet_list(
        [
            f"{x['update_rule']} (lr {x['learning_rate']:g}, n={x['n_seeds']}): final training "
            f"loss {num(x['final_train_loss'])}, training accuracy {num(x['final_train_pct'])}%, "
            f"validation accuracy {num(x['final_val_pct'])}%"
            for x in groups
        ]
    )
    return numbers


def cifar_optimizers_figure(tidy, analysis, numbers) -> Figure:
    runs = run_table(tidy)
    fig = _new_figure(3, width=4.3, height=3.8)
    axes = fig.subplots(1, 3)
    specs = [
        ("train_loss", 1.0, "mean minibatch loss of the epoch", "Training loss"),
        ("train_accuracy", 100.0, "accuracy (%)", "Training accuracy"),
        ("val_accuracy", 100.0, "accuracy (%)", "Validation accuracy"),
    ]
    order = _rule_sorted(tidy, runs)
    for ax, (metric, scale, ylabel, title) in zip(axes, specs, strict=True):
        band = seed_band(tidy, metric, scale=scale)
        for i, g in enumerate(order):
            p = group_params(runs, g)
            lab = (
                f"{p.get('update_rule')} (lr {_value_text(p.get('learning_rate'))}, n={_n_of(band, g)} seeds)"
            )
            draw_band(ax, group_curve(band, g), lab, f"C{i}")
            draw_diverged(ax, tidy, g, metric, f"C{i}", scale=scale, label_runs=metric == "train_loss")
        ax.set_xlabel("epoch (0 = before training)" if metric != "train_loss" else "epoch")
        int_epochs(ax)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"CIFAR-10, 5 hidden layers of 100 ReLU units: update rules (mean, band = {SPREAD})", fontsize=10
    )
    return fig


# ---------------------------------------------------------------------------------------------
# cifar_challenge (11c)
# ---------------------------------------------------------------------------------------------

KEY_PARAMS = [
    "hidden_dims",
    "update_rule",
    "learning_rate",
    "lr_decay",
    "batch_size",
    "normalization",
    "dropout_keep_ratio",
    "reg",
]


def _param_text(params: Mapping[str, Any], keys: Sequence[str] = KEY_PARAMS) -> str:
    out = []
    for k in keys:
        if k not in params:
            continue
        v = params[k]
        if isinstance(v, list | tuple):
            v = "x".join(str(a) for a in v)
        elif isinstance(v, float):
            v = f"{v:.3g}"
        out.append(f"{k}={v}")
    return ", ".join(out)


def challenge_numbers(
    tidy: pd.DataFrame,
    analysis: Mapping[str, Any],
    chosen: Mapping[str, Any],
    final_metrics: pd.DataFrame,
    final_test: Mapping[str, Any],
) -> dict[str, Any]:
    runs = run_table(tidy)
    status = dict(zip(runs["run_id"], runs["status"], strict=True))
    target = float(analysis.get("target_test_accuracy", 0.55))
    cands = list(chosen.get("candidates", []))
    n_div = sum(1 for c in cands if status.get(c["run_id"], "completed") != "completed")
    test_acc = float(final_test["test_accuracy"])
    fm = final_metrics.sort_values("epoch")
    final_train = float(fm["train_accuracy"].dropna().iloc[-1]) if "train_accuracy" in fm else math.nan
    final_val_curve = float(fm["val_accuracy"].dropna().iloc[-1]) if "val_accuracy" in fm else math.nan
    vals = [
        float(c["val_accuracy"])
        for c in cands
        if c.get("val_accuracy") is not None and math.isfinite(float(c["val_accuracy"]))
    ]
    numbers: dict[str, Any] = {
        "n_candidates": len(cands),
        "n_candidates_diverged": n_div,
        "chosen_run_id": str(chosen["run_id"]),
        "chosen_params": _param_text(chosen.get("params", {})),
        "chosen_val_pct": 100 * float(chosen["val_accuracy"]),
        "candidates_val_pct_min": 100 * min(vals) if vals else math.nan,
        "candidates_val_pct_median": 100 * float(np.median(vals)) if vals else math.nan,
        "final_epochs": int(fm["epoch"].max()) if len(fm) else 0,
        "final_train_pct": 100 * final_train,
        "final_val_pct": 100 * float(final_test.get("val_accuracy", final_val_curve)),
        "test_pct": 100 * test_acc,
        "num_test": int(final_test.get("num_test", 0)),
        "sheet_target_pct": 100 * SHEET_CHALLENGE_TARGET,
        "our_target_pct": 100 * target,
        "sheet_target_met": "met" if test_acc >= SHEET_CHALLENGE_TARGET else "not met",
        "our_target_met": "met" if test_acc >= target else "not met",
    }
    numbers["test_sentence"] = (
        f"The final test accuracy is {pct(test_acc)} on {numbers['num_test']} test images: the "
        f"sheet's {100 * SHEET_CHALLENGE_TARGET:g}% is {numbers['sheet_target_met']} "
        f"({100 * (test_acc - SHEET_CHALLENGE_TARGET):+.2f} points) and our {100 * target:g}% "
        f"target is {numbers['our_target_met']} ({100 * (test_acc - target):+.2f} points)."
    )
    return numbers


def challenge_figure(tidy, analysis, numbers, chosen, final_metrics, final_test) -> Figure:
    runs = run_table(tidy)
    info = {r.run_id: r for r in runs.itertuples()}
    fig = _new_figure(2, width=5.4, height=4.2)
    ax_bar, ax_fin = fig.subplots(1, 2, width_ratios=[1.1, 1])
    cands = sorted(
        chosen.get("candidates", []),
        key=lambda c: -1.0 if c.get("val_accuracy") is None else float(c["val_accuracy"]),
    )
    ys, labels = np.arange(len(cands)), []
    diverged_labelled = False
    for y, c in zip(ys, cands, strict=True):
        v = c.get("val_accuracy")
        v = math.nan if v is None else 100 * float(v)
        is_chosen = c["run_id"] == chosen["run_id"]
        r = info.get(c["run_id"])
        div = r is not None and r.status != "completed"
        color = "C3" if is_chosen else ("0.6" if div else "C0")
        ax_bar.barh(
            y,
            0 if math.isnan(v) else v,
            color=color,
            hatch="//" if div else None,
            edgecolor="white" if not div else "0.3",
        )
        p = c.get("params", {})
        lr = p.get("learning_rate")
        labels.append(
            f"{grid_label(c['run_id'])}: {p.get('update_rule', '?')}, lr {lr:.2g}"
            if isinstance(lr, float)
            else grid_label(c["run_id"])
        )
        if not math.isnan(v):
            ax_bar.text(v + 0.3, y, f"{v:.1f}", va="center", fontsize=7)
        if div:
            k = r.diverged_epoch
            x0 = 0 if math.isnan(v) else v
            ax_bar.plot([x0], [y], "x", color="k", ms=8, mew=2, clip_on=False)
            ax_bar.text(
                x0 + 1.0,
                y,
                f"diverged at epoch {'?' if pd.isna(k) else int(k)}",
                va="center",
                fontsize=7,
            )
            diverged_labelled = True
    ax_bar.set_yticks(ys, labels, fontsize=7)
    handles = [
        Patch(color="C3", label=f"chosen: {grid_label(chosen['run_id'])}"),
        Patch(color="C0", label="other candidates"),
    ]
    if diverged_labelled:
        handles.append(Patch(facecolor="0.6", edgecolor="0.3", hatch="//", label="diverged (×)"))
    top = max([100 * float(c["val_accuracy"]) for c in cands if c.get("val_accuracy")] or [1.0])
    ax_bar.set_xlim(0, 1.15 * top)
    ax_bar.set_xlabel("validation accuracy (%) after the search epochs")
    ax_bar.set_title(f"Random search: {len(cands)} candidates (1 seed each)")
    ax_bar.legend(handles=handles, fontsize=7, loc="lower right")
    ax_bar.grid(axis="x", alpha=0.3)

    fm = final_metrics.sort_values("epoch")
    for col, color, name in (("train_accuracy", "C0", "training"), ("val_accuracy", "C1", "validation")):
        if col in fm:
            d = fm[["epoch", col]].dropna()
            ax_fin.plot(d["epoch"], 100 * d[col], color=color, marker="o", ms=3, label=name)
    E = int(fm["epoch"].max()) if len(fm) else 0
    ax_fin.plot(
        [E],
        [numbers["test_pct"]],
        marker="*",
        ms=14,
        color="C3",
        ls="none",
        label=f"test accuracy {numbers['test_pct']:.2f}% (n={numbers['num_test']})",
    )
    ax_fin.axhline(
        numbers["sheet_target_pct"],
        color="k",
        ls=":",
        lw=1,
        label=f"sheet target {numbers['sheet_target_pct']:g}%",
    )
    ax_fin.axhline(
        numbers["our_target_pct"],
        color="k",
        ls="--",
        lw=1,
        label=f"our target {numbers['our_target_pct']:g}%",
    )
    ax_fin.set_xlabel("epoch (0 = before training)")
    int_epochs(ax_fin)
    ax_fin.set_ylabel("accuracy (%)")
    ax_fin.set_title("Chosen configuration retrained (1 run)")
    ax_fin.grid(alpha=0.3)
    ax_fin.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "CIFAR-10 accuracy challenge: selection on validation accuracy, one test evaluation", fontsize=10
    )
    return fig


# ---------------------------------------------------------------------------------------------
# unstable_gradients (Blatt 10, 26 / Tutoraufgabe 6)
# ---------------------------------------------------------------------------------------------


UPDATE_PREFIX = "update_norm_layer"


def update_layer_columns(tidy: pd.DataFrame) -> list[int]:
    """Layer indices l of the ``update_norm_layer<l>`` metrics, sorted ([] for older runs)."""
    names = [str(m) for m in pd.unique(tidy["metric"])]
    return sorted(
        int(m[len(UPDATE_PREFIX) :])
        for m in names
        if m.startswith(UPDATE_PREFIX) and m[len(UPDATE_PREFIX) :].isdigit()
    )


def update_ratio_per_run(tidy: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """Per completed run: how much more layer ``last`` learned per epoch than layer ``first``.

    ``update_norm_layer<l>`` at epoch e >= 1 is ``||W_l(e) - W_l(e-1)|| / ||W_l(e-1)||``.
    ``ratio`` is the geometric mean over the run's epochs of last / first; ``first`` and
    ``last`` are the geometric means of the two layers' relative updates. Columns: run_id,
    group, seed, n_epochs, first, last, ratio (empty without update metrics).
    """
    cols = ["run_id", "group", "seed", "n_epochs", "first", "last", "ratio"]
    d = completed(tidy)
    names = {f"{UPDATE_PREFIX}{first}": "first", f"{UPDATE_PREFIX}{last}": "last"}
    d = d[d["metric"].isin(list(names)) & np.isfinite(d["value"]) & (d["value"] > 0) & (d["epoch"] >= 1)]
    if d.empty:
        return pd.DataFrame(columns=cols)
    wide = d.pivot_table(index=["run_id", "group", "seed", "epoch"], columns="metric", values="value").rename(
        columns=names
    )
    if not {"first", "last"} <= set(wide.columns):
        return pd.DataFrame(columns=cols)
    wide = wide.dropna().reset_index().sort_values(["run_id", "epoch"])
    rows = [
        {
            "run_id": run_id,
            "group": r["group"].iloc[0],
            "seed": r["seed"].iloc[0],
            "n_epochs": int(len(r)),
            "first": geo_mean(r["first"]),
            "last": geo_mean(r["last"]),
            "ratio": geo_mean(r["last"] / r["first"]),
        }
        for run_id, r in wide.groupby("run_id", sort=False)
    ]
    return pd.DataFrame(rows, columns=cols)


def _within(flag: bool) -> str:
    return "within" if flag else "not within"


def _imbalance_clause(what, a, b, name_a, name_b, key, balance) -> str:
    """'<what> ra for A vs rb for B, imbalance factor ib vs ia, <word> with B, k× <word> (...)'."""
    ratio, imb, bal = f"{key}_ratio", f"{key}_imbalance", f"{key}_balanced"
    ia, ib = a[imb], b[imb]
    w = compare_word(ib, ia, 0.1)
    factor = {"smaller": ia / ib, "larger": ib / ia}.get(w, math.nan) if ib and ia else math.nan
    times = f", {num(factor, 3)}× {w}" if math.isfinite(factor) else ""
    return (
        f"{what} {num(a[ratio], 3)} for {name_a} vs {num(b[ratio], 3)} for {name_b}, imbalance factor "
        f"{num(ib, 3)} vs {num(ia, 3)}, {w} with {name_b}{times} ({_within(b[bal])} a factor of "
        f"{balance:g} with {name_b})"
    )


def _update_answer(
    groups: list[dict[str, Any]], has_updates: bool, first: int, last: int, balance: float
) -> str:
    """The caption's computed statement on what Adam does to how much each layer learns."""
    if not has_updates:
        return (
            f"These runs contain no {UPDATE_PREFIX}<l> metrics (they were computed before the relative "
            "weight updates were recorded), so how much each layer learned per epoch — what an adaptive "
            "rule such as Adam equalises — is not shown and not compared here."
        )
    by = {(x["activation"], x["update_rule"]): x for x in groups}
    parts = []
    for act in dict.fromkeys(x["activation"] for x in groups):
        s, a = by.get((act, "sgd")), by.get((act, "adam"))
        if not (s and a):
            continue
        w = compare_word(a["update_imbalance"], s["update_imbalance"], 0.1)
        own = compare_word(a["update_imbalance"], a["imbalance_end"], 0.1)
        own += " as" if own == "about the same" else " than" if own != "n/a" else ""
        if a["update_balanced"] and not a["balanced_end"]:
            verdict = (
                "so with Adam the layers learn at comparable speed "
                f"(within a factor of {balance:g}) even though "
                f"their gradient norms at the end still differ by a factor of {num(a['imbalance_end'], 3)}"
            )
        elif a["update_balanced"]:
            verdict = (
                f"so with Adam both how much the layers learn and their gradient norms are within a factor "
                f"of {balance:g} of each other"
            )
        else:
            verdict = (
                f"so even with Adam the layers' learning speeds differ by more than a factor of {balance:g}"
            )
        parts.append(
            f"With {act}, the relative weight change per epoch of layer {last} is "
            f"{num(s['update_ratio'], 3)}× "
            f"that of layer {first} under SGD and {num(a['update_ratio'], 3)}× under Adam (update imbalance "
            f"factor {num(s['update_imbalance'], 3)} vs {num(a['update_imbalance'], 3)}, {w} with Adam); "
            f"Adam's update imbalance is {own} its gradient-norm imbalance at the end "
            f"({num(a['imbalance_end'], 3)}), {verdict}."
        )
    if not parts:
        return (
            "There is no SGD/Adam pair with the same activation, so Adam's effect on the updates "
            "is not compared."
        )
    return " ".join(parts)


def unstable_numbers(tidy: pd.DataFrame, analysis: Mapping[str, Any]) -> dict[str, Any]:
    runs = run_table(tidy)
    first, last = hidden_layers(tidy)
    ratios = layer_ratio_per_run(tidy, first, last)
    updates = update_ratio_per_run(tidy, first, last)
    has_updates = bool(len(updates))
    balance = float(analysis.get("balance_factor", 2.0))
    groups = []
    for g in groups_in_order(tidy):
        p = group_params(runs, g)
        r = ratios[ratios["group"] == g] if len(ratios) else ratios
        u = updates[updates["group"] == g]
        ri = geo_mean(r["ratio_init"]) if len(r) else math.nan
        re_ = geo_mean(r["ratio_end"]) if len(r) else math.nan
        rd = geo_mean(r["ratio_during"]) if len(r) else math.nan
        ur = geo_mean(u["ratio"]) if len(u) else math.nan
        groups.append(
            {
                "group": g,
                "activation": str(p.get("activation")),
                "update_rule": str(p.get("update_rule")),
                "n_seeds": int(len(r)),
                "epoch_init": int(r["epoch_init"].min()) if len(r) else -1,
                "epoch_end": int(r["epoch_end"].max()) if len(r) else -1,
                "ratio_init": ri,
                "ratio_end": re_,
                "imbalance_init": imbalance(ri),
                "imbalance_end": imbalance(re_),
                "ratio_during": rd,
                "imbalance_during": imbalance(rd),
                "balanced_during": bool(imbalance(rd) <= balance),
                "norm_first_init": geo_mean(r["first_init"]) if len(r) else math.nan,
                "norm_last_init": geo_mean(r["last_init"]) if len(r) else math.nan,
                "norm_first_end": geo_mean(r["first_end"]) if len(r) else math.nan,
                "norm_last_end": geo_mean(r["last_end"]) if len(r) else math.nan,
                "balanced_end": bool(imbalance(re_) <= balance),
                "update_n_seeds": int(len(u)),
                "update_epochs": int(u["n_epochs"].max()) if len(u) else 0,
                "update_first": geo_mean(u["first"]) if len(u) else math.nan,
                "update_last": geo_mean(u["last"]) if len(u) else math.nan,
                "update_ratio": ur,
                "update_imbalance": imbalance(ur),
                "update_balanced": bool(imbalance(ur) <= balance),
            }
        )
    for x in groups:  # the gradient-norm ratios, under the names the clauses use
        x["end_ratio"], x["end_imbalance"], x["end_balanced"] = (
            x["ratio_end"],
            x["imbalance_end"],
            x["balanced_end"],
        )
        x["during_ratio"], x["during_imbalance"], x["during_balanced"] = (
            x["ratio_during"],
            x["imbalance_during"],
            x["balanced_during"],
        )
    numbers: dict[str, Any] = {
        "groups": groups,
        "first_hidden_layer": first,
        "last_hidden_layer": last,
        "balance_factor": balance,
        "epochs": int(tidy["epoch"].max()),
        "has_update_norms": has_updates,
    }
    for x in groups:
        slug = f"{x['activation']}_{x['update_rule']}"
        numbers[f"ratio_init_{slug}"] = x["ratio_init"]
        numbers[f"ratio_end_{slug}"] = x["ratio_end"]
        numbers[f"imbalance_end_{slug}"] = x["imbalance_end"]
        numbers[f"ratio_during_{slug}"] = x["ratio_during"]
        numbers[f"update_ratio_{slug}"] = x["update_ratio"]
        numbers[f"update_imbalance_{slug}"] = x["update_imbalance"]

    def group_line(x):
        line = (
            f"{x['activation']} + {x['update_rule']} (n={x['n_seeds']}): gradient-norm ratio "
            f"{num(x['ratio_init'], 3)} at epoch {x['epoch_init']}, {num(x['ratio_end'], 3)} at "
            f"epoch {x['epoch_end']}, {num(x['ratio_during'], 3)} during training (geometric mean "
            f"over epochs 1–{x['epoch_end']}; imbalance factor {num(x['imbalance_during'], 3)}, "
            f"{'within' if x['balanced_during'] else 'outside'} a factor of {balance:g})"
        )
        if has_updates:
            line += (
                f"; relative-update ratio {num(x['update_ratio'], 3)} over epochs 1–{x['update_epochs']} "
                f"(imbalance factor {num(x['update_imbalance'], 3)}, "
                f"{'within' if x['update_balanced'] else 'outside'} a factor of {balance:g})"
            )
        return line

    numbers["per_group"] = bullet_list([group_line(x) for x in groups])

    by = {(x["activation"], x["update_rule"]): x for x in groups}
    acts = list(dict.fromkeys(x["activation"] for x in groups))
    rules = list(dict.fromkeys(x["update_rule"] for x in groups))

    def sentence(a, b, name_a, name_b):
        text = _imbalance_clause(
            "gradient-norm ratio during training", a, b, name_a, name_b, "during", balance
        )
        if has_updates:
            text += "; " + _imbalance_clause("relative-update ratio", a, b, name_a, name_b, "update", balance)
        return text

    def paragraph(title, lines, missing):
        return (f"{title}:\n\n" + bullet_list(lines)) if lines else missing

    adam_lines = [
        f"{act}: " + sentence(by[(act, "sgd")], by[(act, "adam")], f"{act}+SGD", f"{act}+Adam")
        for act in acts
        if (act, "sgd") in by and (act, "adam") in by
    ]
    relu_lines = [
        f"{rule}: " + sentence(by[("sigmoid", rule)], by[("relu", rule)], f"sigmoid+{rule}", f"relu+{rule}")
        for rule in rules
        if ("sigmoid", rule) in by and ("relu", rule) in by
    ]
    what = "gradient norms and relative updates" if has_updates else "gradient norms"
    numbers["adam_comparison"] = paragraph(
        f"Adam vs SGD ({what})", adam_lines, "No SGD/Adam pair to compare."
    )
    numbers["relu_comparison"] = paragraph(
        f"ReLU vs sigmoid ({what})", relu_lines, "No sigmoid/ReLU pair to compare."
    )
    if has_updates:
        numbers["update_description"] = (
            f"The bottom row shows how much each layer actually learned: the relative change of its weights "
            f"during epoch e, ‖W_l(e) − W_l(e−1)‖ / ‖W_l(e−1)‖ (log scale, epochs 1–{numbers['epochs']}). "
            f"The update ratio u compares layer {last} with layer {first} (geometric mean over epochs and "
            "seeds); its imbalance factor is max(u, 1/u)."
        )
    else:
        numbers["update_description"] = (
            "The runs record no relative weight updates per layer, so the figure has only the "
            "gradient-norm row."
        )
    numbers["update_answer"] = _update_answer(groups, has_updates, first, last, balance)
    return numbers


def _log_axis(ax) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3, which="major")


def unstable_figure(tidy, analysis, numbers) -> Figure:
    runs = run_table(tidy)
    groups = groups_in_order(tidy)
    grad_layers = layer_columns(tidy)
    upd_layers = update_layer_columns(tidy) if numbers.get("has_update_norms") else []
    rows = [("grad_norm_layer", grad_layers)] + ([(UPDATE_PREFIX, upd_layers)] if upd_layers else [])
    ncols, nrows = len(groups), len(rows)
    fig = _new_figure(ncols, nrows, width=4.0, height=3.1)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey="row", squeeze=False)
    all_layers = sorted(set(grad_layers) | set(upd_layers))
    colors = dict(
        zip(all_layers, matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, len(all_layers))), strict=True)
    )
    first, last = numbers["first_hidden_layer"], numbers["last_hidden_layer"]
    info = {x["group"]: x for x in numbers["groups"]}
    legend: dict[str, Any] = {}
    for i, (prefix, layers) in enumerate(rows):
        bands = {l: seed_band(tidy, f"{prefix}{l}", geometric=True) for l in layers}
        for j, g in enumerate(groups):
            ax, x, p = axes[i, j], info[g], group_params(runs, g)
            n = 0
            for l in layers:
                c = group_curve(bands[l], g)
                n = max(n, int(c["n"].max()) if len(c) else 0)
                kind = "output" if l > last else "hidden"
                draw_band(ax, c, f"layer {l} ({kind})", colors[l], alpha=0.15)
                sub = tidy[(tidy["group"] == g) & (tidy["value"] > 0)]
                draw_diverged(ax, sub, g, f"{prefix}{l}", colors[l], label_runs=(i == 0 and l == layers[0]))
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(lab, h)
            _log_axis(ax)
            int_epochs(ax)
            if i == 0:
                ax.set_title(
                    f"{p.get('activation')} + {p.get('update_rule')} "
                    f"(lr {_value_text(p.get('learning_rate'))}, n={n} seeds)\n"
                    f"gradient ratio layer {last}/{first}: "
                    f"{num(x['ratio_init'], 3)} → {num(x['ratio_end'], 3)}",
                    fontsize=9,
                )
            else:
                ax.set_title(f"update ratio layer {last}/{first}: {num(x['update_ratio'], 3)}", fontsize=9)
            if i == nrows - 1:
                ax.set_xlabel("epoch")
        axes[i, 0].set_ylabel(
            "gradient norm " + r"$\|\partial C/\partial b^l\|$"
            if i == 0
            else "relative update per epoch\n" + r"$\|W_l(e)-W_l(e-1)\| \,/\, \|W_l(e-1)\|$"
        )
    dims = runs["param_hidden_dims"].iloc[0] if "param_hidden_dims" in runs else "?"
    rows_text = (
        "top: gradient norm per layer (epoch 0 = at initialisation)\n"
        "bottom: relative weight change per layer during each epoch (how much the layer learned)"
        if upd_layers
        else "gradient norm per layer (epoch 0 = at initialisation); no relative updates recorded"
    )
    fig.suptitle(
        f"MNIST, hidden layers {dims}, one column per grid point — {rows_text}\n"
        f"log y axes; line = geometric mean, band = {SPREAD}",
        fontsize=10,
    )
    layer_items = [(h, lab) for lab, h in legend.items() if lab.startswith("layer")]
    div_items = [(h, lab.replace(" seed ", "\nseed ")) for lab, h in legend.items() if "diverged" in lab]
    items = layer_items + div_items
    fig.legend(
        [h for h, _ in items],
        [lab for _, lab in items],
        loc="outside right center",
        fontsize=8,
        title="colour = layer l" + ("\ndotted, × = diverged run" if div_items else ""),
        title_fontsize=8,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

SIMPLE: dict[str, tuple[Callable, Callable]] = {
    "mnist_cost": (lambda t, a: mnist_cost_numbers(t), mnist_cost_figure),
    "mnist_overfitting": (mnist_overfitting_numbers, mnist_overfitting_figure),
    "cifar_overfitting": (cifar_overfitting_numbers, cifar_overfitting_figure),
    "cifar_optimizers": (cifar_optimizers_numbers, cifar_optimizers_figure),
    "unstable_gradients": (unstable_numbers, unstable_figure),
}
EXPERIMENTS = [*SIMPLE, "cifar_challenge"]


def build(
    experiment: str, tidy: pd.DataFrame, analysis: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> tuple[Figure, dict[str, Any]]:
    """(figure, numbers) of one experiment, without the shared run/data numbers."""
    if experiment == "cifar_challenge":
        extra = extra or {}
        missing = {"chosen", "final_metrics", "final_test"} - set(extra)
        if missing:
            raise ValueError(f"cifar_challenge needs extra inputs {sorted(missing)}")
        chosen = read_json(extra["chosen"])
        final_metrics = pd.read_csv(extra["final_metrics"])
        final_test = read_json(extra["final_test"])
        numbers = challenge_numbers(tidy, analysis, chosen, final_metrics, final_test)
        fig = challenge_figure(tidy, analysis, numbers, chosen, final_metrics, final_test)
        return fig, numbers
    if experiment not in SIMPLE:
        raise ValueError(f"no figure for experiment {experiment!r} (known: {EXPERIMENTS})")
    numbers_fn, figure_fn = SIMPLE[experiment]
    numbers = numbers_fn(tidy, analysis)
    return figure_fn(tidy, analysis, numbers), numbers


def experiment_figure(
    experiment: str,
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
    """Draw the experiment's figure, write numbers.json and the caption; return the numbers."""
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

    fig, numbers = build(experiment, tidy, analysis, extra)
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
