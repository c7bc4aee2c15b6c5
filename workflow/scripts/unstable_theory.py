"""Rule unstable_theory: Aufgabe 26 (a)-(c) numbers, table, figures and caption."""

import json

from nnflow.files import write_csv, write_json
from nnflow.report.captions import render_caption
from nnflow.theory import figures as pt
from nnflow.theory.unstable import run_unstable_theory
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    params = json.loads(smk.params.theory)
    res = run_unstable_theory(params)
    sp, iv, ch, gr, mc = (res[k] for k in ("sigma_prime", "interval", "chains", "growth", "mc_check"))

    pt.plot_sigmoid_prime(sp["z_plot"], sp["sigma_prime_plot"], sp, out=smk.output.sigmoid_prime)
    pt.plot_interval_length(
        iv["w_plot"], iv["length_plot"], iv["argmax_w"], iv["max_length"], out=smk.output.interval
    )
    pt.plot_lognormal(gr, ch["mu"], ch["s2"], out=smk.output.lognormal)

    columns = list(gr)
    rows = [{k: gr[k][i] for k in columns} for i in range(len(gr["n"]))]
    write_csv(smk.output.table, rows, columns)
    numbers = {
        "params": params,
        "sigma_prime": {k: v for k, v in sp.items() if not k.endswith("_plot")},
        "interval": {k: v for k, v in iv.items() if not k.endswith("_plot")},
        "chains": ch,
        "mc_check": mc,
        "lognormal_table": rows,
    }
    write_json(smk.output.numbers, numbers)

    last = len(gr["n"]) - 1
    render_caption(
        smk.input.template,
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
        smk.output.caption,
    )
