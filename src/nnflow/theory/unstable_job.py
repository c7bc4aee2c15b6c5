"""The unstable_theory job: Aufgabe 26 (a)-(c) from its config section to numbers, figures, caption.

The whole body of ``workflow/scripts/unstable_theory.py``; ``outputs`` are the rule's
named files (Snakemake's ``output`` or any object with those attributes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from nnflow.files import write_csv, write_json
from nnflow.report.captions import render_caption
from nnflow.theory import figures
from nnflow.theory.unstable import run_unstable_theory


def mean_note(growth: Mapping[str, Any], n_samples: int) -> str:
    """Why the Monte Carlo mean of Q falls below E[Q] from some n on, with the numbers of this run.

    Half of E[Q] comes from draws above exp(nμ + ns²) (``unstable.mean_tail_draws``); from the first
    n where the sample expects fewer than one such draw, the sample mean misses that half. The
    median exp(nμ) needs no rare draws: Monte Carlo and formula agree there.
    """
    ns, draws = list(growth["n"]), list(growth["mc_mean_tail_draws"])
    short = [i for i, d in enumerate(draws) if d < 1.0]
    rule = (
        "half of E[Q] comes from draws with log Q > nμ + ns², which a fraction ½·erfc(√(ns²/2)) of "
        f"draws reach; a sample of {n_samples} draws expects fewer than one of them "
    )
    if not short:
        return (
            rule + f"for no n shown here (at n = {ns[-1]}: {draws[-1]:.3g} expected), so the Monte Carlo "
            "means follow the formula."
        )
    i, last = short[0], len(ns) - 1
    ratio = growth["mean_mc"][last] / growth["mean_formula"][last]
    return (
        rule + f"from n = {ns[i]} on ({draws[i]:.2g} expected there, {draws[last]:.2g} at n = {ns[last]}). "
        f"Such a sample misses the rare huge values that carry the mean, so its mean falls short (at n = "
        f"{ns[last]} it is {ratio:.2g} × E[Q]): the formula is right, the sample mean of a heavy-tailed "
        f"product is not a reliable estimate of it. The median is: exp(nμ) = "
        f"{growth['median_formula'][last]:.3g} and Monte Carlo {growth['median_mc'][last]:.3g} at "
        f"n = {ns[last]} (squares on the dashed line)."
    )


def unstable_theory_job(theory: str | Mapping[str, Any], template: str, outputs: Any) -> dict[str, Any]:
    """Aufgabe 26 (a)-(c): numbers, table, figures and caption; returns the numbers."""
    params = json.loads(theory) if isinstance(theory, str) else dict(theory)
    res = run_unstable_theory(params)
    sp, iv, ch, gr, mc = (res[k] for k in ("sigma_prime", "interval", "chains", "growth", "mc_check"))

    figures.plot_sigmoid_prime(sp["z_plot"], sp["sigma_prime_plot"], sp, out=outputs.sigmoid_prime)
    figures.plot_interval_length(
        iv["w_plot"], iv["length_plot"], iv["argmax_w"], iv["max_length"], out=outputs.interval
    )
    figures.plot_lognormal(gr, ch["mu"], ch["s2"], out=outputs.lognormal)

    columns = list(gr)
    rows = [{k: gr[k][i] for k in columns} for i in range(len(gr["n"]))]
    write_csv(outputs.table, rows, columns)
    numbers = {
        "params": params,
        "sigma_prime": {k: v for k, v in sp.items() if not k.endswith("_plot")},
        "interval": {k: v for k, v in iv.items() if not k.endswith("_plot")},
        "chains": ch,
        "mc_check": mc,
        "lognormal_table": rows,
    }
    write_json(outputs.numbers, numbers)

    last = len(gr["n"]) - 1
    render_caption(
        template,
        {
            "sp_max": sp["max"],
            "sp_argmax": sp["argmax"],
            "sp_min": sp["min"],
            "z_max": sp["z_max"],
            "n_points": sp["n_points"],
            "w_star": iv["argmax_w"],
            "L_star": iv["max_length"],
            "bf_max_diff": max(r["abs_diff"] for r in iv["brute_force"]),
            "bf_da": params["brute_force_da"],
            "p_w_ge_4": iv["p_abs_w_ge_4"],
            "mu": ch["mu"],
            "s2": ch["s2"],
            "frac_q_ge_1": ch["frac_q_ge_1"],
            "depth": ch["depth"],
            "n_chains": ch["n_chains"],
            "growth_rate": ch["mu"] + ch["s2"] / 2,
            "weight_std": params["weight_std"],
            "bias_std": params["bias_std"],
            "median_factor": math.exp(ch["mu"]),
            "mc_samples": params["mc_samples"],
            "mean_note": mean_note(gr, params["mc_samples"]),
            "n_last": int(gr["n"][last]),
            "mean_last": gr["mean_formula"][last],
            "median_last": gr["median_formula"][last],
            "cv_last": gr["cv_formula"][last],
            "chk_mu": mc["mu"],
            "chk_s2": mc["s2"],
            "chk_n": mc["n"],
            "chk_samples": mc["n_samples"],
            "chk_mean_f": mc["mean_formula"],
            "chk_mean_mc": mc["mean_mc"],
            "chk_z_mean": mc["z_mean"],
            "chk_var_f": mc["var_formula"],
            "chk_var_mc": mc["var_mc"],
            "chk_z_var": mc["z_var"],
        },
        outputs.caption,
    )
    return numbers
