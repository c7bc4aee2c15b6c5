"""Per-layer gradient and update norms: unstable gradients (Blatt 10, Aufgabe 26)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter

from nnflow.report.figures.common import (
    SPREAD,
    bullet_list,
    compare_word,
    completed,
    draw_band,
    draw_diverged,
    group_curve,
    group_params,
    groups_in_order,
    int_epochs,
    kind_build,
    n_seeds,
    new_figure,
    num,
    run_table,
    seed_band,
    value_text,
)


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


def _initial_imbalance(groups: list[dict[str, Any]], first: int, last: int) -> str:
    """The caption's first answer sentence: how much the last hidden layer's gradient norm differs
    from the first's at initialisation, per activation (the first grid point of each)."""
    first_of_activation: dict[str, dict[str, Any]] = {}
    for x in groups:
        first_of_activation.setdefault(x["activation"], x)
    ratios = [(a, x["ratio_init"]) for a, x in first_of_activation.items() if math.isfinite(x["ratio_init"])]
    if not ratios:
        return "No completed run recorded gradient norms at initialisation."
    (act, ratio), rest = ratios[0], ratios[1:]
    others = "".join(f" and {num(r, 3)}× with {a}" for a, r in rest)
    return (
        f"At initialisation the gradient norm ‖∂C/∂b‖ of hidden layer {last} is {num(ratio, 3)}× that of "
        f"hidden layer {first} with {act}{others} (geometric mean over seeds)."
    )


def unstable_numbers(tidy: pd.DataFrame, analysis: Mapping[str, Any]) -> dict[str, Any]:
    runs = run_table(tidy)
    first, last = hidden_layers(tidy)
    ratios = layer_ratio_per_run(tidy, first, last)
    updates = update_ratio_per_run(tidy, first, last)
    has_updates = bool(len(updates))
    balance = float(analysis["balance_factor"])
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
            f"The right column shows how much each layer actually learned: the relative change of its "
            f"weights "
            f"during epoch e, ‖W_l(e) − W_l(e−1)‖ / ‖W_l(e−1)‖ (log scale, epochs 1–{numbers['epochs']}). "
            f"The update ratio u compares layer {last} with layer {first} (geometric mean over epochs and "
            "seeds); its imbalance factor is max(u, 1/u)."
        )
    else:
        numbers["update_description"] = (
            "The runs record no relative weight updates per layer, so the figure has only the "
            "gradient-norm column."
        )
    numbers["update_answer"] = _update_answer(groups, has_updates, first, last, balance)
    numbers["answer"] = f"{_initial_imbalance(groups, first, last)} {numbers['update_answer']}"
    return numbers


def _log_axis(ax) -> None:
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3, which="major")


def unstable_figure(tidy, analysis, numbers) -> Figure:
    """One row per grid point, at most two columns (gradient norms; relative updates if
    recorded), so the figure stays readable at the report's width however many grid points."""
    runs = run_table(tidy)
    groups = groups_in_order(tidy)
    grad_layers = layer_columns(tidy)
    upd_layers = update_layer_columns(tidy) if numbers.get("has_update_norms") else []
    columns = [("grad_norm_layer", grad_layers)] + ([(UPDATE_PREFIX, upd_layers)] if upd_layers else [])
    ncols, nrows = len(columns), len(groups)
    fig = new_figure(ncols, nrows, width=4.4, height=2.9)
    axes = fig.subplots(nrows, ncols, sharex=True, sharey="col", squeeze=False)
    all_layers = sorted(set(grad_layers) | set(upd_layers))
    # a qualitative palette: neighbouring layers must not be neighbouring shades
    colors = {layer: f"C{k % 10}" for k, layer in enumerate(all_layers)}
    first, last = numbers["first_hidden_layer"], numbers["last_hidden_layer"]
    info = {x["group"]: x for x in numbers["groups"]}
    legend: dict[str, Any] = {}
    for i, (prefix, layers) in enumerate(columns):
        bands = {l: seed_band(tidy, f"{prefix}{l}", geometric=True) for l in layers}
        for j, g in enumerate(groups):
            ax, x, p = axes[j, i], info[g], group_params(runs, g)
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
            lr = value_text(p.get("learning_rate"))
            point = f"{p.get('activation')} + {p.get('update_rule')} (lr {lr})"
            if i == 0:
                ax.set_title(
                    f"{point}, {n_seeds(n)}\ngradient ratio layer {last}/{first}: "
                    f"{num(x['ratio_init'], 3)} → {num(x['ratio_end'], 3)}",
                    fontsize=9,
                )
                ax.set_ylabel(r"$\|\partial C/\partial b^l\|$")
            else:
                ax.set_title(f"{point}\nupdate ratio layer {last}/{first}: {num(x['update_ratio'], 3)}",
                             fontsize=9)
                ax.set_ylabel("relative update")
            if j == nrows - 1:
                ax.set_xlabel("epoch")
    columns_text = (
        "left: gradient norm per layer (epoch 0 = at initialisation);\n"
        r"right: relative weight change per epoch $\|W_l(e)-W_l(e-1)\|\,/\,\|W_l(e-1)\|$"
        if upd_layers
        else "gradient norm per layer (epoch 0 = at initialisation); no relative updates recorded"
    )
    fig.suptitle(
        f"{numbers['dataset_label']}, {numbers['architecture']}: one row per grid point\n{columns_text}\n"
        f"log y axes; line = geometric mean, band = {SPREAD}",
        fontsize=10,
    )
    layer_items = [(h, lab) for lab, h in legend.items() if lab.startswith("layer")]
    div_items = [(h, lab) for lab, h in legend.items() if "diverged" in lab]
    items = layer_items + div_items
    fig.legend(
        [h for h, _ in items],
        [lab for _, lab in items],
        loc="outside lower center",
        ncols=min(len(layer_items), 3) or 1,
        fontsize=9,
        title="colour = layer l" + ("; dotted, × = diverged run" if div_items else ""),
        title_fontsize=9,
    )
    return fig


build = kind_build(unstable_numbers, unstable_figure)
