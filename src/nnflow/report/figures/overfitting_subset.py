"""A net memorising a small training subset (CIFAR sheet, Aufgabe 11a)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nnflow.report.captions import percent_text
from nnflow.report.figures.common import (
    SPREAD,
    bullet_list,
    draw_band,
    draw_diverged,
    group_curve,
    groups_in_order,
    int_epochs,
    kind_build,
    last_value,
    n_seeds,
    new_figure,
    peak,
    percent,
    pretty_group,
    run_values,
    seed_band,
    seeds_in,
)


def cifar_overfitting_numbers(tidy: pd.DataFrame, analysis: Mapping[str, Any]) -> dict[str, Any]:
    target = float(analysis["target_train_accuracy"])
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
        f"The mean training accuracy peaks at {percent(x['max_train_pct'])} (epoch "
        f"{x['max_train_epoch']}), so the {100 * target:g}% target is "
        f"{'met' if x['reaches_target'] else 'not met'} on average; "
        f"{x['runs_reaching_target']} of {x['n_seeds']} completed runs reach it."
    )
    numbers["overfitting_sentence"] = (
        f"Overfitting shows as the gap between the curves: training accuracy climbs to "
        f"{percent(x['final_train_pct'])} at the last epoch while validation accuracy "
        f"{'stays near' if x['final_val_pct'] <= x['max_val_pct'] + 1e-9 else 'ends at'} "
        f"{percent(x['final_val_pct'])} (its maximum: {percent(x['max_val_pct'])} at epoch "
        f"{x['max_val_epoch']}), a gap of {percent_text(x['final_gap_points'])} points."
    )
    if len(groups) > 1:
        numbers["per_group"] = bullet_list(
            [
                f"{pretty_group(y['group'])}: max training {percent(y['max_train_pct'])}, final "
                f"validation {percent(y['final_val_pct'])}"
                for y in groups
            ]
        )
    else:
        numbers["per_group"] = ""
    return numbers


def cifar_overfitting_figure(tidy, analysis, numbers) -> Figure:
    fig = new_figure(2, width=4.4, height=3.9)
    ax_acc, ax_loss = fig.subplots(1, 2, sharex=True)
    train = seed_band(tidy, "train_accuracy", scale=100)
    val = seed_band(tidy, "val_accuracy", scale=100)
    loss = seed_band(tidy, "train_loss")
    multi = len(groups_in_order(tidy)) > 1
    for i, g in enumerate(groups_in_order(tidy)):
        c1, c2 = (f"C{2 * i}", f"C{2 * i + 1}")
        pre = f"{pretty_group(g)}: " if multi else ""
        n = seeds_in(train, g)
        train_label = f"{pre}training, {numbers['n_train_text']} pairs ({n_seeds(n)})"
        draw_band(ax_acc, group_curve(train, g), train_label, c1)
        draw_band(ax_acc, group_curve(val, g), f"{pre}validation ({n_seeds(n)})", c2)
        draw_diverged(ax_acc, tidy, g, "train_accuracy", c1, scale=100)
        draw_band(ax_loss, group_curve(loss, g), f"{pre}training loss ({n_seeds(n)})", c1)
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
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{numbers['dataset_label']}, {numbers['n_train_text']} training pairs, {numbers['architecture']}:\n"
        f"overfitting (mean, band = {SPREAD})",
        fontsize=10,
    )
    return fig


build = kind_build(cifar_overfitting_numbers, cifar_overfitting_figure)
