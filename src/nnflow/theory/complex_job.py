"""The complex_backprop job: gradient check and training of a complex-valued net, to files.

The whole body of ``workflow/scripts/complex_backprop.py``; ``outputs`` are the rule's
named files (Snakemake's ``output`` or any object with those attributes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nnflow.files import write_csv, write_json
from nnflow.report.captions import render_caption
from nnflow.theory import figures
from nnflow.theory.complex_net import run_complex_backprop


def complex_backprop_job(experiment: str | Mapping[str, Any], template: str, outputs: Any) -> dict[str, Any]:
    """Gradient check and training of a complex-valued net; returns the summary numbers."""
    params = json.loads(experiment) if isinstance(experiment, str) else dict(experiment)
    tol = params.pop("gradcheck_tolerance")
    res = run_complex_backprop(params)
    s, tr, rows = res["summary"], res["training"], res["gradcheck"]
    if s["gradcheck_max_rel_error"] > tol:
        raise RuntimeError(
            f"gradient check failed: max relative error {s['gradcheck_max_rel_error']:.3g} > {tol}"
        )

    write_csv(outputs.gradcheck, rows, list(rows[0]))
    write_csv(
        outputs.training,
        [{k: tr[k][i] for k in tr} for i in range(len(tr["iteration"]))],
        list(tr),
    )
    write_json(outputs.numbers, {"params": {**params, "gradcheck_tolerance": tol}, **s})
    figures.plot_complex_gradcheck(rows, threshold=tol, out=outputs.gradcheck_png)
    figures.plot_complex_training(
        tr["iteration"], tr["cost"], tr["min_pole_distance"], out=outputs.training_png
    )
    render_caption(
        template,
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
        outputs.caption,
    )
    return s
