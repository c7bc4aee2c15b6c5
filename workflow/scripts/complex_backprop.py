"""Rule complex_backprop: gradient check and training of a complex-valued net."""

import json

from nnflow.files import write_csv, write_json
from nnflow.report.captions import render_caption
from nnflow.theory import figures as pt
from nnflow.theory.complex_net import run_complex_backprop
from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    params = json.loads(smk.params.experiment)
    tol = params.pop("gradcheck_tolerance")
    res = run_complex_backprop(params)
    s, tr, rows = res["summary"], res["training"], res["gradcheck"]
    if s["gradcheck_max_rel_error"] > tol:
        raise RuntimeError(
            f"gradient check failed: max relative error {s['gradcheck_max_rel_error']:.3g} > {tol}"
        )

    write_csv(smk.output.gradcheck, rows, list(rows[0]))
    write_csv(
        smk.output.training,
        [{k: tr[k][i] for k in tr} for i in range(len(tr["iteration"]))],
        list(tr),
    )
    write_json(smk.output.numbers, {"params": {**params, "gradcheck_tolerance": tol}, **s})
    pt.plot_complex_gradcheck(rows, threshold=tol, out=smk.output.gradcheck_png)
    pt.plot_complex_training(
        tr["iteration"], tr["cost"], tr["min_pole_distance"], out=smk.output.training_png
    )
    render_caption(
        smk.input.template,
        {
            **s,
            "tolerance": tol,
            "n_arrays": len(rows),
            "sizes": "-".join(str(n) for n in params["sizes"]),
            "gc_sizes": "-".join(str(n) for n in params["gradcheck_sizes"]),
            "coeffs": "{} + {}·x₁ + {}·x₁x₂".format(*params["target_coeffs"]),
            "input_radius": params["input_radius"],
            "n_samples": params["n_samples"],
            "gc_samples": params["gradcheck_samples"],
            "h": params["gradcheck_h"],
            "eta": params["eta"],
            "n_iter": params["n_iter"],
            "init_scale": params["init_scale"],
            "drop_percent": 100 * (1 - s["cost_ratio"]),
        },
        smk.output.caption,
    )
