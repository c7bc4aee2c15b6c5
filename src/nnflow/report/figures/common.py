"""What every figure kind shares: tidy tables, seed bands, peaks, wording, drawing helpers.

Comparison figures and report captions of the training experiments.

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

import math
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy

from nnflow.data.sources import DATASETS
from nnflow.nn.optim import UPDATE_RULES
from nnflow.report.captions import percent_text, points_text
from nnflow.train.grid import LABEL_SEPARATOR

SPREAD = "min–max over seeds"
FOOTNOTE_PT = 8


RULE_ORDER = list(UPDATE_RULES)  # the registry's order


PRETTY_KEY = {"lmbda": "λ", "eta": "η", "learning_rate": "lr", "weight_init": "init"}


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


def percent(value_pct: float) -> str:
    """'83.48%': a measured percentage as every caption and figure shows it (two decimals)."""
    return "n/a" if not math.isfinite(value_pct) else f"{percent_text(value_pct)}%"


# How the captions decide whether two grid points differ (stated in the captions that compare).
SEED_SPREAD_RULE = (
    "A difference counts only when the two seed ranges (min–max over seeds of the compared value, "
    "the ends of the bands) do not overlap; otherwise it is called no difference beyond seed spread."
)


def seed_separation(a: Sequence[float], b: Sequence[float]) -> str:
    """How the per-seed values ``a`` compare with ``b``.

    'higher' / 'lower' when the ranges [min, max] do not overlap (every seed of one beats every
    seed of the other), 'within spread' when they overlap, 'single seed' when either side has
    fewer than two seeds (no spread to judge by), 'n/a' when either has no finite value.
    """
    a = np.asarray([v for v in a if math.isfinite(v)], dtype=float)
    b = np.asarray([v for v in b if math.isfinite(v)], dtype=float)
    if not (len(a) and len(b)):
        return "n/a"
    if min(len(a), len(b)) < 2:
        return "single seed"
    if a.min() > b.max():
        return "higher"
    if a.max() < b.min():
        return "lower"
    return "within spread"


def compare_seeds(name_a: str, a: Sequence[float], name_b: str, b: Sequence[float]) -> tuple[str, str]:
    """(verdict of :func:`seed_separation`, the clause a caption states) for per-seed
    percentages ``a`` and ``b``: the means, their difference and what it means.

    ``compare_seeds("adam", [37.1, 36.9], "rmsprop", [36.5, 37.0])`` gives ('within spread',
    'no difference beyond seed spread between adam and rmsprop (37.00% vs 36.75%, +0.25 points)').
    """
    verdict = seed_separation(a, b)
    a = [v for v in a if math.isfinite(v)]
    b = [v for v in b if math.isfinite(v)]
    if verdict == "n/a":
        return verdict, f"{name_a} vs {name_b}: no completed runs to compare"
    mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
    values = f"{percent(mean_a)} vs {percent(mean_b)}, {points_text(mean_a - mean_b)} points"
    if verdict == "within spread":
        return verdict, f"no difference beyond seed spread between {name_a} and {name_b} ({values})"
    if verdict == "single seed":
        return verdict, (
            f"{name_a} {percent(mean_a)} vs {name_b} {percent(mean_b)} "
            f"({points_text(mean_a - mean_b)} points; a single seed, so no seed spread to judge "
            "the difference by)"
        )
    word = "ahead of" if verdict == "higher" else "behind"
    return verdict, f"{name_a} is {word} {name_b} beyond the seed spread ({values})"


def num(x: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def value_text(value: Any) -> str:
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


def draw_band(ax, curve: pd.DataFrame, label: str, color, ls="-", alpha=0.18, marker=None) -> None:
    """The mean curve with its seed band; ``marker`` marks about a dozen of its points (to tell
    apart curves that lie on top of each other)."""
    if curve.empty:
        return
    x = curve["epoch"].to_numpy()
    ax.plot(x, curve["mean"].to_numpy(), color=color, ls=ls, lw=1.6, label=label, marker=marker,
            markevery=max(1, len(x) // 12), ms=5, mfc="none")
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


def new_figure(ncols: int, nrows: int = 1, width: float = 4.6, height: float = 3.6) -> Figure:
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    return fig


def add_footnote(fig: Figure, text: str) -> None:
    """``text`` in small grey type just above the figure's top edge (above the title), where no
    legend or label can lie under it; saving with a tight bounding box keeps it in the image."""
    if text:
        where = offset_copy(fig.transFigure, fig=fig, y=0.06, units="inches")
        # about 0.5 em per character: lines no wider than the figure
        width_chars = max(40, int(fig.get_figwidth() * 72 / (0.5 * FOOTNOTE_PT)))
        fig.text(0.005, 1.0, textwrap.fill(text, width_chars), fontsize=FOOTNOTE_PT, color="0.3", ha="left",
                 va="bottom", transform=where)


def data_note(provenance: Mapping[str, Any]) -> tuple[bool, str]:
    """(canonical, note sentence for caption and figure; '' when the data are canonical)."""
    canonical = bool(provenance.get("canonical", False))
    if canonical:
        return True, ""
    note = str(provenance.get("note") or "the provenance does not say how the data differ")
    return False, f"Data: non-canonical copy of the dataset — {note.rstrip('.')}."


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


def n_seeds(n: int) -> str:
    """'n=3 seeds', 'n=1 seed': the seed count of a legend entry or a panel title."""
    return f"n={n} seed{'' if n == 1 else 's'}"


def seeds_in(band: pd.DataFrame, group: str) -> int:
    c = group_curve(band, group)
    return int(c["n"].max()) if len(c) else 0


# ---------------------------------------------------------------------------------------------
# Structural facts: what titles and captions say about the setup, read from the runs
# ---------------------------------------------------------------------------------------------

ACTIVATION_LABELS = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def count_text(n: int) -> str:
    """3 -> 'three' (words up to ten, digits with thousands separators above)."""
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else f"{n:,}"


def _ints(text: Any) -> list[int]:
    """'784x30x10' (a list parameter in the tables) or a list -> [784, 30, 10]."""
    if isinstance(text, list | tuple):
        return [int(v) for v in text]
    return [int(v) for v in str(text).split("x") if v.strip()]


def _uniform(runs: pd.DataFrame, column: str) -> Any:
    """The value of ``column`` shared by every run; None if absent or if the runs differ."""
    if column not in runs:
        return None
    values = runs[column].drop_duplicates()
    if len(values) != 1:
        return None
    value = values.iloc[0]
    return None if isinstance(value, float) and math.isnan(value) else value


def describe_hidden(hidden_dims: Any, activation: str | None) -> str:
    """'5 x 100 relu' -> 'five hidden ReLU layers of 100 units'."""
    dims = _ints(hidden_dims)
    act = f"{ACTIVATION_LABELS.get(activation, activation)} " if activation else ""
    layers = "layer" if len(dims) == 1 else "layers"
    if len(set(dims)) == 1:
        return f"{count_text(len(dims))} hidden {act}{layers} of {dims[0]:,} units"
    widths = ", ".join(f"{d:,}" for d in dims[:-1]) + f" and {dims[-1]:,}"
    return f"{count_text(len(dims))} hidden {act}{layers} of {widths} units"


def describe_architecture(runs: pd.DataFrame) -> str:
    """The net the runs share, in words ('network2 [784, 30, 10]', 'two hidden ReLU layers ...')."""
    sizes = _uniform(runs, "param_sizes")
    if sizes is not None:
        return f"network2 [{', '.join(str(s) for s in _ints(sizes))}]"
    hidden = _uniform(runs, "param_hidden_dims")
    if hidden is not None:
        return describe_hidden(hidden, _uniform(runs, "param_activation"))
    return "nets that differ between grid points (see the legend)"


def costs_compared(tidy: pd.DataFrame) -> str:
    """'quadratic vs cross-entropy cost' for the costs of the runs, in grid order."""
    if "param_cost" not in tidy:
        return "cost"
    costs = [str(c).replace("_", "-") for c in dict.fromkeys(tidy["param_cost"].dropna())]
    return (" vs ".join(costs) + " cost") if costs else "cost"


def structure_facts(
    runs: pd.DataFrame, provenance: Mapping[str, Any], dataset_label: str | None = None
) -> dict[str, Any]:
    """Dataset, split sizes and architecture of an experiment, for its title and caption.

    Taken from the runs' parameters (the resolved config) and the data provenance, so a
    changed ``sizes``, ``hidden_dims`` or ``train_size`` changes the words with it.
    """
    splits = provenance.get("splits", {})
    name = provenance.get("dataset")
    if dataset_label is None:  # called without the declaration: a built-in's label, else the name
        source = DATASETS.get(name)
        dataset_label = source.label if source is not None else str(name)
    if "param_train_size" in runs and runs["param_train_size"].notna().any():
        sizes = runs["param_train_size"].drop_duplicates()
        n_train = int(sizes.iloc[0]) if len(sizes) == 1 else None  # None: differs between runs
    else:
        n_train = splits.get("train")  # no train_size: the whole training split
    facts: dict[str, Any] = {
        "dataset_label": dataset_label,
        "architecture": describe_architecture(runs),
        "n_train": n_train,
        "n_val": splits.get("val"),
        "n_test": splits.get("test"),
    }
    for key in ("n_train", "n_val", "n_test"):
        value = facts[key]
        facts[f"{key}_text"] = f"{value:,}" if isinstance(value, int) else "a varying number of"
    return facts


def kind_build(
    numbers_fn: Callable[[pd.DataFrame, Mapping[str, Any]], dict[str, Any]],
    figure_fn: Callable[[pd.DataFrame, Mapping[str, Any], Mapping[str, Any]], Figure],
) -> Callable[..., tuple[Figure, dict[str, Any]]]:
    """The ``build`` of a figure kind that computes its numbers and then draws from them
    (every kind but random_search, which reads extra files): the facts come first."""

    def build(tidy, analysis, extra, facts):
        numbers = {**facts, **numbers_fn(tidy, analysis)}
        return figure_fn(tidy, analysis, numbers), numbers

    build.__doc__ = f"(figure, numbers) from :func:`{numbers_fn.__name__}` and :func:`{figure_fn.__name__}`."
    return build
