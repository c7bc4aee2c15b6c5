"""Cost functions compared (Blatt 10, Aufgabe 25a): test and training accuracy per epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nnflow.report.figures.common import (
    SPREAD,
    bullet_list,
    clamp_diverged_markers,
    costs_compared,
    draw_band,
    draw_diverged,
    group_curve,
    group_params,
    groups_in_order,
    int_epochs,
    kind_build,
    new_figure,
    num,
    peak,
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
    reference = analysis["reference"] or {}
    lines = []
    for cost, accuracy in reference.get("test_accuracy", {}).items():
        numbers[f"reference_{cost}_pct"] = ref = 100 * float(accuracy)
        x = by.get((cost, reference.get("weight_init")))
        if x:
            d = x["best_test_pct_best_of_seeds"] - ref
            lines.append(
                f"{cost} with {x['weight_init']} initialisation peaks at "
                f"{num(x['best_test_pct_best_of_seeds'])}% (best seed) vs {ref:.2f}% ({d:+.2f} points)"
            )
    numbers["reference_comparison"] = (
        f"Against {reference['source']}, compared with our best seed: " + "; ".join(lines) + "."
        if lines
        else ""
    )
    return numbers


def zoom_accuracy(ax, band: pd.DataFrame, from_epoch: int, pad: float = 1.0) -> None:
    sel = band[band["epoch"] >= from_epoch]
    if sel.empty:
        return
    lo = float(sel["lo"].min()) - pad
    hi = min(100.0, float(band["hi"].max()) + pad / 2)
    ax.set_ylim(max(0.0, lo), hi)


def mnist_cost_figure(tidy, analysis, numbers) -> Figure:
    fig = new_figure(2, width=4.5, height=3.8)
    axes = fig.subplots(1, 2, sharex=True)
    E = int(tidy["epoch"].max())
    for ax, metric, name in zip(
        axes,
        ["test_accuracy", "train_accuracy"],
        [f"test data ({numbers['n_test_text']} images)", f"training data ({numbers['n_train_text']} images)"],
        strict=True,
    ):
        band = seed_band(tidy, metric, scale=100)
        for i, g in enumerate(groups_in_order(tidy)):
            color = f"C{i}"
            draw_band(ax, group_curve(band, g), f"{pretty_group(g)} (n={seeds_in(band, g)} seeds)", color)
            draw_diverged(ax, tidy, g, metric, color, scale=100)
        zoom_accuracy(ax, band, from_epoch=max(2, E // 6))
        clamp_diverged_markers(ax)
        int_epochs(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"Accuracy on the {name}")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=9)
    fig.suptitle(
        f"{numbers['dataset_label']}, {numbers['architecture']}: {costs_compared(tidy)}\n"
        f"(mean, band = {SPREAD}; y axis zoomed, early epochs may lie below)",
        fontsize=10,
    )
    return fig


build = kind_build(mnist_cost_numbers, mnist_cost_figure)
