"""The random search and its retrained winner (CIFAR sheet, Aufgabe 11c)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from nnflow.files import read_json
from nnflow.report.captions import percent_text
from nnflow.report.figures.common import (
    grid_label,
    int_epochs,
    new_figure,
    pct,
    run_table,
)

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


def _candidate_label(candidate: Mapping[str, Any]) -> str:
    """'cand=003: 1000x500, batchnorm, adam, lr 0.0012': the candidate's widths and
    normalisation (what most often decides between candidates), rule and learning rate."""
    p = candidate.get("params", {})
    parts = []
    if p.get("hidden_dims") is not None:
        dims = p["hidden_dims"]
        parts.append("x".join(str(d) for d in dims) if isinstance(dims, list | tuple) else str(dims))
    if "normalization" in p:
        parts.append(str(p["normalization"] or "no norm"))
    if "update_rule" in p:
        parts.append(str(p["update_rule"]))
    lr = p.get("learning_rate")
    if isinstance(lr, float | int):
        parts.append(f"lr {lr:.2g}")
    name = grid_label(candidate["run_id"])
    return f"{name}: {', '.join(parts)}" if parts else name


def challenge_numbers(
    tidy: pd.DataFrame,
    analysis: Mapping[str, Any],
    chosen: Mapping[str, Any],
    final_metrics: pd.DataFrame,
    final_test: Mapping[str, Any],
) -> dict[str, Any]:
    runs = run_table(tidy)
    status = dict(zip(runs["run_id"], runs["status"], strict=True))
    target = float(analysis["target_test_accuracy"])
    sheet_target = float(analysis["sheet_target_test_accuracy"])
    cands = list(chosen.get("candidates", []))
    n_div = sum(1 for c in cands if status.get(c["run_id"], "completed") != "completed")
    test_acc = float(final_test["test_accuracy"])
    fm = final_metrics.sort_values("epoch")
    final_train = float(fm["train_accuracy"].dropna().iloc[-1]) if "train_accuracy" in fm else math.nan
    final_val_curve = float(fm["val_accuracy"].dropna().iloc[-1]) if "val_accuracy" in fm else math.nan
    tested_val = float(final_test.get("val_accuracy", final_val_curve))  # of the tested weights
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
        "final_val_pct": 100 * final_val_curve,
        "test_pct": 100 * test_acc,
        # test.json files from before the best-weights restore tested the last epoch's weights
        "tested_weights": final_test.get("weights") or "last epoch",
        "tested_epoch": int(final_test.get("best_epoch", fm["epoch"].max() if len(fm) else 0)),
        "tested_val_pct": 100 * tested_val,
        "num_test": int(final_test.get("num_test", 0)),
        "sheet_target_pct": 100 * sheet_target,
        "our_target_pct": 100 * target,
        "sheet_target_met": "met" if test_acc >= sheet_target else "not met",
        "our_target_met": "met" if test_acc >= target else "not met",
    }
    numbers["test_sentence"] = (
        f"The final test accuracy is {pct(test_acc)} on {numbers['num_test']} test images, "
        f"measured once with the weights of the {numbers['tested_weights']} (validation accuracy "
        f"{pct(tested_val)}): the "
        f"sheet's {100 * sheet_target:g}% is {numbers['sheet_target_met']} "
        f"({100 * (test_acc - sheet_target):+.2f} points) and our {100 * target:g}% "
        f"target is {numbers['our_target_met']} ({100 * (test_acc - target):+.2f} points)."
    )
    return numbers


def challenge_figure(tidy, analysis, numbers, chosen, final_metrics, final_test) -> Figure:
    runs = run_table(tidy)
    info = {r.run_id: r for r in runs.itertuples()}
    # One panel per row: the candidates' labels need the width, and at the report's width
    # two panels side by side collide (titles) and shrink the text below 8 px.
    fig = new_figure(1, nrows=2, width=7.5, height=3.6)
    ax_bar, ax_fin = fig.subplots(2, 1, height_ratios=[max(len(chosen.get("candidates", [])), 4), 10])
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
        labels.append(_candidate_label(c))
        if not math.isnan(v):
            ax_bar.text(v + 0.3, y, percent_text(v), va="center", fontsize=8)
        if div:
            k = r.diverged_epoch
            x0 = 0 if math.isnan(v) else v
            ax_bar.plot([x0], [y], "x", color="k", ms=8, mew=2, clip_on=False)
            ax_bar.text(
                x0 + 1.0,
                y,
                f"diverged at epoch {'?' if pd.isna(k) else int(k)}",
                va="center",
                fontsize=8,
            )
            diverged_labelled = True
    ax_bar.set_yticks(ys, labels, fontsize=8)
    handles = [
        Patch(color="C3", label=f"chosen: {grid_label(chosen['run_id'])}"),
        Patch(color="C0", label="other candidates"),
    ]
    if diverged_labelled:
        handles.append(Patch(facecolor="0.6", edgecolor="0.3", hatch="//", label="diverged (×)"))
    top = max([100 * float(c["val_accuracy"]) for c in cands if c.get("val_accuracy")] or [1.0])
    ax_bar.set_xlim(0, 1.15 * top)
    ax_bar.set_xlabel("validation accuracy (%) after the search epochs")
    ax_bar.set_title(f"Random search: {len(cands)} candidates (1 seed each)", fontsize=10)
    ax_bar.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22),
                  ncol=len(handles), frameon=False)  # below the axis: never over a bar
    ax_bar.grid(axis="x", alpha=0.3)

    fm = final_metrics.sort_values("epoch")
    for col, color, name in (("train_accuracy", "C0", "training"), ("val_accuracy", "C1", "validation")):
        if col in fm:
            d = fm[["epoch", col]].dropna()
            ax_fin.plot(d["epoch"], 100 * d[col], color=color, marker="o", ms=3, label=name)
    ax_fin.plot(
        [numbers["tested_epoch"]],
        [numbers["test_pct"]],
        marker="*",
        ms=14,
        color="C3",
        ls="none",
        label=f"test accuracy {numbers['test_pct']:.2f}% (n={numbers['num_test']}, weights of epoch "
        f"{numbers['tested_epoch']})",
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
    ax_fin.set_title("Chosen configuration retrained (1 run)", fontsize=10)
    ax_fin.grid(alpha=0.3)
    ax_fin.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
                  frameon=False)  # below the axis: never over the data
    fig.suptitle(
        f"{numbers['dataset_label']}: random search, selection on validation accuracy, one test evaluation",
        fontsize=10,
    )
    return fig


def build(
    tidy: pd.DataFrame, analysis: Mapping[str, Any], extra: Mapping[str, Any], facts: Mapping[str, Any]
) -> tuple[Figure, dict]:
    """(figure, numbers) of a random search: candidates, the chosen one, its final run and test."""
    chosen = read_json(extra["chosen"])
    final_metrics = pd.read_csv(extra["final_metrics"])
    final_test = read_json(extra["final_test"])
    numbers = {**facts, **challenge_numbers(tidy, analysis, chosen, final_metrics, final_test)}
    return challenge_figure(tidy, analysis, numbers, chosen, final_metrics, final_test), numbers
