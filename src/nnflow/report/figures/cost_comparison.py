"""Cost functions compared (Blatt 10, Aufgabe 25a): test and training accuracy per epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from nnflow.report.captions import points_text
from nnflow.report.figures.common import (
    SEED_SPREAD_RULE,
    SPREAD,
    bullet_list,
    clamp_diverged_markers,
    compare_seeds,
    costs_compared,
    draw_band,
    draw_diverged,
    group_curve,
    group_params,
    groups_in_order,
    int_epochs,
    kind_build,
    n_seeds,
    new_figure,
    peak,
    percent,
    pretty_group,
    run_table,
    run_values,
    seed_band,
    seeds_in,
)


def mnist_cost_numbers(tidy: pd.DataFrame, analysis: Mapping[str, Any]) -> dict[str, Any]:
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
        first_epoch = int(curve["epoch"].iloc[0]) if len(curve) else -1
        bo = br.loc[br["value"].idxmax()] if len(br) else None
        groups.append(
            {
                "group": g,
                "cost": str(p.get("cost")),
                "weight_init": str(p.get("weight_init")),
                "n_seeds": int(len(fr)),
                "final_epoch": int(curve["epoch"].iloc[-1]) if len(curve) else -1,
                "first_epoch": first_epoch,
                "first_test_pct_mean": 100 * float(curve["mean"].iloc[0]) if len(curve) else math.nan,
                "final_test_pct_mean": 100 * float(fr["value"].mean()) if len(fr) else math.nan,
                "final_test_pct_best_of_seeds": 100 * float(fr["value"].max()) if len(fr) else math.nan,
                "final_test_pct_worst_of_seeds": 100 * float(fr["value"].min()) if len(fr) else math.nan,
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

    lines = [
        f"{pretty_group(x['group'])} (n={x['n_seeds']}): final test accuracy "
        f"{percent(x['final_test_pct_mean'])} mean (seeds {percent(x['final_test_pct_worst_of_seeds'])}–"
        f"{percent(x['final_test_pct_best_of_seeds'])}); peak {percent(x['best_test_pct_best_of_seeds'])} "
        f"(best seed, epoch "
        f"{x['best_test_epoch_best_of_seeds']}); final training accuracy "
        f"{percent(x['final_train_pct_mean'])} mean"
        for x in groups
    ]
    numbers["per_group"] = bullet_list(lines)

    by = {(x["cost"], x["weight_init"]): x for x in groups}
    inits = list(dict.fromkeys(x["weight_init"] for x in groups))
    cmp_lines, early_lines, beats = [], [], []
    for init in inits:
        q, c = by.get(("quadratic", init)), by.get(("cross_entropy", init))
        if not (q and c):
            continue
        diff = c["final_test_pct_mean"] - q["final_test_pct_mean"]
        win = diff > 0
        beats.append(win)
        numbers[f"ce_beats_quadratic_{init}"] = bool(win)
        numbers[f"ce_minus_quadratic_points_{init}"] = diff
        verdict, clause = compare_seeds(
            "cross-entropy", _final_pct(final_runs, c["group"]),
            "quadratic cost", _final_pct(final_runs, q["group"]),
        )
        numbers[f"ce_vs_quadratic_{init}"] = verdict
        cmp_lines.append(f"with {init} initialisation {clause}")
        early_lines.append(
            f"{percent(q['first_test_pct_mean'])} with quadratic cost vs "
            f"{percent(c['first_test_pct_mean'])} with cross-entropy ({init} initialisation)"
        )
    numbers["ce_beats_quadratic"] = bool(beats) and all(beats)
    numbers["spread_rule"] = SEED_SPREAD_RULE
    start = zoom_from_epoch(tidy)
    numbers["panels"] = (
        f"The top row shows every epoch; the bottom row zooms into epochs {start}–{numbers['epochs']} "
        "(the dashed box above)."
        if start is not None
        else "Every epoch is shown (too few epochs for a zoomed row)."
    )
    if cmp_lines:
        first = min(x["first_epoch"] for x in groups)
        numbers["cost_comparison"] = (
            f"After {numbers['epochs']} epochs, on test accuracy: " + "; ".join(cmp_lines) + "."
        )
        numbers["answer"] = (
            numbers["cost_comparison"]
            + f" In the first epochs, where the quadratic cost's learning slowdown would show, the mean test "
            f"accuracy after epoch {first} is " + "; ".join(early_lines) + "."
        )
    else:
        numbers["cost_comparison"] = "No pair of quadratic and cross-entropy runs to compare."
        numbers["answer"] = numbers["cost_comparison"]
    reference = analysis["reference"] or {}
    lines = []
    for cost, accuracy in reference.get("test_accuracy", {}).items():
        numbers[f"reference_{cost}_pct"] = ref = 100 * float(accuracy)
        x = by.get((cost, reference.get("weight_init")))
        if x:
            d = x["best_test_pct_best_of_seeds"] - ref
            lines.append(
                f"{cost} with {x['weight_init']} initialisation peaks at "
                f"{percent(x['best_test_pct_best_of_seeds'])} (best seed) vs {percent(ref)} "
                f"({points_text(d)} points)"
            )
    numbers["reference_comparison"] = (
        f"Against {reference['source']}, compared with our best seed: " + "; ".join(lines) + "."
        if lines
        else ""
    )
    return numbers


MIN_ZOOM_EPOCHS = 3  # a zoomed row needs at least this many epochs to show a course


def zoom_from_epoch(tidy: pd.DataFrame) -> int | None:
    """First epoch of the figure's zoomed row (the later epochs, from a sixth of the run on, but not
    before epoch 2); None when the run is too short for one."""
    E, first = int(tidy["epoch"].max()), int(tidy["epoch"].min())
    start = max(2, E // 6)
    return start if E - start + 1 >= MIN_ZOOM_EPOCHS and start > first else None


def _final_pct(final_runs: pd.DataFrame, group: str) -> list[float]:
    """The final test accuracy (%) of each completed seed of ``group``."""
    return list(100 * final_runs.loc[final_runs["group"] == group, "value"].to_numpy(dtype=float))


def zoom_range(band: pd.DataFrame, from_epoch: int, pad: float = 1.0) -> tuple[float, float] | None:
    """(low, high) accuracy (%) of the zoomed panels: the bands from ``from_epoch`` on, padded;
    None if no epoch is that late."""
    sel = band[band["epoch"] >= from_epoch]
    if sel.empty:
        return None
    lo = float(sel["lo"].min()) - pad
    hi = min(100.0, float(band["hi"].max()) + pad / 2)
    return max(0.0, lo), hi


def mnist_cost_figure(tidy, analysis, numbers) -> Figure:
    """Top row: test and training accuracy over every epoch (the early epochs, where a learning
    slowdown shows); bottom row: the same zoomed to the later epochs (the dashed box above), where
    the final accuracies lie close together. Runs too short for a zoom get the top row only."""
    E, from_epoch = int(tidy["epoch"].max()), zoom_from_epoch(tidy)
    zoomed = from_epoch is not None
    rows = 2 if zoomed else 1
    fig = new_figure(2, rows, width=4.5, height=3.3 if zoomed else 3.8)
    axes = fig.subplots(rows, 2, squeeze=False)
    for col, metric, name in zip(
        (0, 1),
        ["test_accuracy", "train_accuracy"],
        [f"Test data ({numbers['n_test_text']} images)", f"Training data ({numbers['n_train_text']} images)"],
        strict=True,
    ):
        band = seed_band(tidy, metric, scale=100)
        for ax in axes[:, col]:
            for i, g in enumerate(groups_in_order(tidy)):
                color = f"C{i}"
                label = f"{pretty_group(g)} ({n_seeds(seeds_in(band, g))})"
                draw_band(ax, group_curve(band, g), label, color)
                draw_diverged(ax, tidy, g, metric, color, scale=100, label_runs=ax is axes[0, col])
            int_epochs(ax)
            ax.set_ylabel("accuracy (%)")
            ax.grid(alpha=0.3)
        full = axes[0, col]
        full.set_title(f"{name}: every epoch", fontsize=10)
        window = zoom_range(band, from_epoch) if zoomed else None
        if window is not None:
            zoom = axes[1, col]
            zoom.set_ylim(*window)
            zoom.set_xlim(from_epoch, E)
            full.add_patch(Rectangle((from_epoch, window[0]), E - from_epoch, window[1] - window[0],
                                     fill=False, ls="--", lw=1.0, ec="0.3", zorder=3))
            clamp_diverged_markers(zoom)
            zoom.set_title(f"zoomed: epochs {from_epoch}–{E} (dashed box above)", fontsize=10)
        axes[-1, col].set_xlabel("epoch")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    fig.suptitle(
        f"{numbers['dataset_label']}, {numbers['architecture']}: {costs_compared(tidy)}\n"
        f"(mean, band = {SPREAD}" + ("; bottom row zoomed to the later epochs)" if zoomed else ")"),
        fontsize=10,
    )
    return fig


build = kind_build(mnist_cost_numbers, mnist_cost_figure)
