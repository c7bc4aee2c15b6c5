"""Overfitting on a small training set, without and with L2 (Blatt 10, Aufgabe 25b/c)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nnflow.report.captions import percent_text, points_text
from nnflow.report.figures.common import (
    SEED_SPREAD_RULE,
    SPREAD,
    compare_word,
    costs_compared,
    draw_band,
    draw_diverged,
    group_curve,
    group_params,
    groups_in_order,
    int_epochs,
    kind_build,
    last_value,
    n_seeds,
    new_figure,
    num,
    peak,
    percent,
    plateau_epoch,
    run_table,
    run_values,
    seed_band,
    seed_separation,
    seeds_in,
    smoothed,
    value_at,
)


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
    from_epoch = int(analysis["from_epoch"])
    E = int(tidy["epoch"].max())
    window = int(analysis["smooth_window"] or max(1, round(E / 20)))
    tolerance = float(analysis["plateau_tolerance"])
    reference = analysis["reference"] or {}
    reference_peaks = {float(k): float(v) for k, v in reference.get("peak_test_accuracy", {}).items()}
    groups = []
    for g in groups_in_order(tidy):
        x = overfitting_group_numbers(tidy, g, from_epoch, window, tolerance)
        x["lmbda"] = float(group_params(runs, g).get("lmbda", math.nan))
        ref = reference_peaks.get(x["lmbda"])
        x["reference_peak_pct"] = 100 * ref if ref is not None else math.nan
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
        "spread_rule": SEED_SPREAD_RULE,
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
        "reference_peak_pct",
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
        f"{100 * tolerance:g} points up to its best, {percent(b['smoothed_peak_test_pct'])} "
        f"(it ends at {percent(b['final_test_pct'])}, "
        f"{abs(drop):.2f} points {'below' if drop >= 0 else 'above'} that best), while the "
        f"training cost {'keeps falling' if falls else 'does not fall further'}: "
        + ", ".join(f"{num(c)} at epoch {e}" for e, c in sorted({
            from_epoch: b["train_cost_from"],
            b["stop_improving_epoch"]: b["train_cost_at_stop"],
            b["final_epoch"]: b["train_cost_end"],
        }.items()))
        + f". The training accuracy ends at {percent(b['final_train_pct'])}, "
        f"{percent_text(b['final_gap_points'])} points above the test accuracy."
    )
    d_peak = r["peak_test_pct"] - b["peak_test_pct"]
    numbers["l2_peak_difference_points"] = d_peak
    numbers["l2_gap_difference_points"] = r["final_gap_points"] - b["final_gap_points"]
    numbers["l2_answer"] = (
        f"With λ = {r['lmbda']:g} the peak test accuracy (mean curve) is "
        f"{percent(r['peak_test_pct'])} at epoch {r['peak_test_epoch']} vs "
        f"{percent(b['peak_test_pct'])} at epoch {b['peak_test_epoch']} without "
        f"({points_text(d_peak)} points, "
        f"{compare_word(r['peak_test_pct'], b['peak_test_pct'], 1e-4, ('higher', 'lower'))}); "
        f"the final train–test gap is {percent_text(r['final_gap_points'])} vs "
        f"{percent_text(b['final_gap_points'])} points "
        f"({compare_word(r['final_gap_points'], b['final_gap_points'], 1e-3)}); "
        f"the test accuracy reaches its plateau at epoch {r['stop_improving_epoch']} vs "
        f"{b['stop_improving_epoch']} "
        f"({compare_word(r['stop_improving_epoch'], b['stop_improving_epoch'], 0, ('later', 'earlier'))}); "
        f"the training cost (which includes the L2 term) goes from "
        f"{num(r['train_cost_from'])} to {num(r['train_cost_end'])} vs "
        f"{num(b['train_cost_from'])} to {num(b['train_cost_end'])} without, ending "
        f"{compare_word(r['train_cost_end'], b['train_cost_end'], 1e-3, ('higher', 'lower'))}."
    )
    seed_peaks = run_values(tidy, "test_accuracy", "max")

    def peaks(group):
        return list(100 * seed_peaks.loc[seed_peaks["group"] == group, "value"].to_numpy(dtype=float))

    verdict = seed_separation(peaks(r["group"]), peaks(b["group"]))
    numbers["l2_peak_vs_base"] = verdict
    spread_words = {
        "higher": "every seed peaks higher with L2",
        "lower": "every seed peaks lower with L2",
        "within spread": "no difference beyond seed spread in the seeds' peaks",
        "single seed": "a single seed: no seed spread to judge the difference by",
        "n/a": "no completed runs to compare",
    }[verdict]
    timing = compare_word(r["stop_improving_epoch"], b["stop_improving_epoch"], 0, ("later", "earlier"))
    numbers["answer"] = (
        f"Overfitting shows as a test accuracy that stops improving (on a plateau from epoch "
        f"{b['stop_improving_epoch']}, best {window}-epoch average {percent(b['smoothed_peak_test_pct'])}) "
        f"while the training cost {'keeps falling' if falls else 'no longer falls'} and the training "
        f"accuracy reaches {percent(b['final_train_pct'])}: a final train–test gap of "
        f"{percent_text(b['final_gap_points'])} points. With L2 (λ = {r['lmbda']:g}) the peak test accuracy "
        f"of the mean curve is {percent(r['peak_test_pct'])} vs {percent(b['peak_test_pct'])} "
        f"({points_text(d_peak)} points; {spread_words}), the gap "
        f"{percent_text(r['final_gap_points'])} vs {percent_text(b['final_gap_points'])} points, and the "
        f"plateau is reached {timing} (epoch {r['stop_improving_epoch']} vs {b['stop_improving_epoch']})."
    )
    reference_lines = [
        f"λ = {x['lmbda']:g}: best seed peaks at {percent(x['peak_test_pct_best_of_seeds'])} "
        f"(epoch {x['peak_test_epoch_best_of_seeds']}) vs {percent(x['reference_peak_pct'])}"
        for x in groups
        if math.isfinite(x["reference_peak_pct"])
    ]
    numbers["reference_comparison"] = (
        f"Against {reference['source']}: " + "; ".join(reference_lines) + "." if reference_lines else ""
    )
    return numbers


def mnist_overfitting_figure(tidy, analysis, numbers) -> Figure:
    from_epoch = numbers["from_epoch"]
    sub = tidy  # every epoch: the plateau and the onset of overfitting can lie before from_epoch
    fig = new_figure(1, 3, width=6.8, height=2.8)
    ax_cost, ax_test, ax_gap = fig.subplots(3, 1, sharex=True)
    cost = seed_band(sub, "train_cost")
    test = seed_band(sub, "test_accuracy", scale=100)
    train = seed_band(sub, "train_accuracy", scale=100)
    for i, g in enumerate(groups_in_order(tidy)):
        color = f"C{i}"
        x = next(y for y in numbers["groups"] if y["group"] == g)
        lab = f"λ = {x['lmbda']:g} ({n_seeds(seeds_in(test, g))})"
        draw_band(ax_cost, group_curve(cost, g), lab, color)
        draw_diverged(ax_cost, tidy, g, "train_cost", color)
        draw_band(ax_test, group_curve(test, g), lab, color)
        draw_diverged(ax_test, tidy, g, "test_accuracy", color, scale=100)
        if x["stop_improving_epoch"] >= 0:
            ax_test.axvline(
                x["stop_improving_epoch"],
                color=color,
                ls="--",
                lw=0.9,
                label=f"λ = {x['lmbda']:g}: plateau from epoch {x['stop_improving_epoch']}",
            )
        # each λ its own marker: the training curves of different λ can lie on top of each other
        marker = "osD^v"[i % 5]
        draw_band(ax_gap, group_curve(train, g), f"λ = {x['lmbda']:g} training", color, marker=marker)
        draw_band(ax_gap, group_curve(test, g), f"λ = {x['lmbda']:g} test", color, ls="--", alpha=0.1,
                  marker=marker)
    ax_cost.set_title("Training cost (log scale)")
    ax_cost.set_yscale("log")
    ax_cost.set_ylabel("cost per training example (incl. L2 term)")
    ax_test.set_title("Test accuracy")
    ax_test.set_ylabel("accuracy (%)")
    ax_gap.set_title("Training vs test accuracy")
    ax_gap.set_ylabel("accuracy (%)")
    first_epoch = int(tidy["epoch"].min())
    for ax in (ax_cost, ax_test, ax_gap):
        if from_epoch > first_epoch:
            ax.axvline(from_epoch, color="0.35", ls=":", lw=1.2,
                       label=f"from_epoch = {from_epoch}"
                       if ax is ax_cost else None)
        int_epochs(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax_gap.set_xlabel("epoch")
    fig.suptitle(
        f"{numbers['dataset_label']}, {numbers['n_train_text']} training images, {costs_compared(tidy)},\n"
        f"epochs {first_epoch}–{numbers['epochs']}: "
        f"overfitting with and without L2 (mean, band = {SPREAD})",
        fontsize=10,
    )
    return fig


build = kind_build(mnist_overfitting_numbers, mnist_overfitting_figure)
