"""Update rules compared on one net and budget (CIFAR sheet, Aufgabe 11b)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nnflow.report.figures.common import (
    RULE_ORDER,
    SEED_SPREAD_RULE,
    SPREAD,
    bullet_list,
    compare_seeds,
    count_text,
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
    run_table,
    run_values,
    seed_band,
    seeds_in,
    value_text,
)


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
                "n_seeds": seeds_in(val, g),
                "final_train_loss": last_value(group_curve(loss, g)),
                "final_train_pct": 100 * last_value(group_curve(train, g)),
                "final_val_pct": 100 * last_value(vc),
                "best_val_pct": 100 * peak(vc)[0],
            }
        )
    numbers: dict[str, Any] = {"groups": groups, "epochs": int(tidy["epoch"].max())}
    rules = list(dict.fromkeys(x["update_rule"] for x in groups))
    numbers["n_rules_text"] = count_text(len(rules))
    numbers["rules_text"] = ", ".join(rules)
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
            f"loss {num(x['final_train_loss'])}, training accuracy {percent(x['final_train_pct'])}, "
            f"validation accuracy {percent(x['final_val_pct'])}"
            for x in groups
        ]
    )
    numbers["spread_rule"] = SEED_SPREAD_RULE
    numbers.update(_best_rule_answer(tidy, numbers, groups))
    return numbers


def _best_rule_answer(tidy: pd.DataFrame, numbers: Mapping[str, Any], groups: list[dict]) -> dict[str, Any]:
    """The caption's answer: the best final validation accuracy against the runner-up's, judged
    by the seed spread (:func:`~nnflow.report.figures.common.compare_seeds`), and the lowest loss."""
    if numbers["best_rule"] == "none":
        return {"best_vs_runner_up": "n/a", "answer": "No run completed, so no update rule can be compared."}
    final_val = run_values(tidy, "val_accuracy", "final")
    by_rule = {x["update_rule"]: x["group"] for x in groups}

    def seeds(rule):
        return list(100 * final_val.loc[final_val["group"] == by_rule[rule], "value"].to_numpy(dtype=float))

    best, runner = numbers["best_rule"], numbers["runner_up_rule"]
    lead = f"After {numbers['epochs']} epochs, {best} has the highest mean final validation accuracy"
    if runner == "none":
        verdict, text = "n/a", f"{lead}, {percent(numbers['best_val_pct'])} (no other rule completed)."
    else:
        verdict, clause = compare_seeds(best, seeds(best), runner, seeds(runner))
        text = f"{lead}, but {clause}." if verdict == "within spread" else f"{lead}: {clause}."
    text += (
        f" The lowest final training loss is {numbers['lowest_loss_rule']}'s ({num(numbers['lowest_loss'])})."
    )
    return {"best_vs_runner_up": verdict, "answer": text}


def cifar_optimizers_figure(tidy, analysis, numbers) -> Figure:
    runs = run_table(tidy)
    fig = new_figure(1, 3, width=6.8, height=2.8)
    axes = fig.subplots(3, 1, sharex=True)
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
            lr, n = value_text(p.get("learning_rate")), seeds_in(band, g)
            lab = f"{p.get('update_rule')} (lr {lr}, {n_seeds(n)})"
            draw_band(ax, group_curve(band, g), lab, f"C{i}")
            draw_diverged(ax, tidy, g, metric, f"C{i}", scale=scale, label_runs=metric == "train_loss")
        int_epochs(ax)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("epoch (0 = before training)")
    axes[0].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(
        f"{numbers['dataset_label']}, {numbers['architecture']}: update rules (mean, band = {SPREAD})",
        fontsize=10,
    )
    return fig


build = kind_build(cifar_optimizers_numbers, cifar_optimizers_figure)
