"""Figures and captions (with the measured numbers) of one small graph."""

from nnflow.workflow.jobs import job

with job(snakemake) as smk:
    import numpy as np
    import pandas as pd

    from nnflow.files import read_json
    from nnflow.pagerank import figures as plots
    from nnflow.report.captions import render_caption

    s = read_json(smk.input.summary)
    table = open(smk.input.table, encoding="utf-8").read()
    lam = np.array([complex(re, im) for re, im in s["eigenvalues"]])
    labels = pd.read_csv(smk.input.pagerank)["page"].tolist()

    def pages(ls):
        return "{" + ", ".join(f"S{p}" for p in ls) + "}"

    closed = s["closed_classes"]
    periods = [c["period"] for c in closed]
    closed_text = "; ".join(f"{pages(c['pages'])} (period {c['period']})" for c in closed) or "none"
    if s["dangling"]:
        dangling_text = (
            f"The dangling pages {pages(s['dangling'])} have no out-links: their rows of H are zero, "
            "so H is substochastic and the surfer's probability mass that reaches them is lost; "
            "each such page contributes the eigenvalue 0, not 1."
        )
    else:
        dangling_text = "There are no dangling pages: every row of H sums to 1 (H is stochastic)."
    eig_text = ", ".join(
        f"{z.real:.4f}{z.imag:+.4f}i" if abs(z.imag) > 1e-12 else f"{z.real:.4f}" for z in lam
    )
    common = {
        "graph": s["graph"],
        "n": s["n"],
        "links": s["links"],
        "duplicates": s["duplicates"],
        "n_dangling": len(s["dangling"]),
    }
    values = {
        **common,
        "table": table,
        "eigenvalues": eig_text,
        "n_unit": s["n_unit"],
        "unit_tolerance": s["unit_tolerance"],
        "closed_classes": closed_text,
        "n_closed": len(closed),
        "sum_periods": sum(periods),
        "transient": pages(s["transient"]) if s["transient"] else "none",
        "dangling_text": dangling_text,
        "count_matches": "equals" if sum(periods) == s["n_unit"] else "does NOT equal",
    }
    render_caption(smk.input.tpl_matrix, values, smk.output.cap_matrix)
    plots.plot_eigenvalues(
        lam,
        s["unit_tolerance"],
        s["n_unit"],
        title=f"Eigenvalues of H ({s['graph']})",
        out=smk.output.eigenvalues,
    )
    render_caption(smk.input.tpl_eigenvalues, values, smk.output.cap_eigenvalues)

    hist = pd.read_csv(smk.input.iteration).drop(columns="k").to_numpy()
    plots.plot_iteration(hist, labels, s["start_page"], s["period"], out=smk.output.iteration)
    period = s["period"]
    if period is None:
        verdict = f"no period was detected within {s['steps']} steps"
    elif period == 1:
        verdict = "the iteration converged from this start"
    else:
        verdict = (
            f"the iterates repeat with period {period} and never converge: the L1 change of the "
            f"last step is still {s['last_step_l1_change']:.3g}"
        )
    render_caption(
        smk.input.tpl_iteration,
        {
            **common,
            "start_page": s["start_page"],
            "steps": s["steps"],
            "period": period,
            "verdict": verdict,
            "closed_classes": closed_text,
        },
        smk.output.cap_iteration,
    )

    conv = pd.read_csv(smk.input.convergence)
    plots.plot_convergence(
        conv["residual"].to_numpy(), s["alpha"], s["lambda2_G"], s["tol"], out=smk.output.convergence
    )
    render_caption(
        smk.input.tpl_convergence,
        {
            **common,
            "alpha": s["alpha"],
            "iterations": s["iterations"],
            "tol": s["tol"],
            "final_residual": s["final_residual"],
            "lambda2_G": s["lambda2_G"],
            "lambda2_ok": "holds" if s["lambda2_G"] <= s["alpha"] + 1e-12 else "is VIOLATED",
            "bound_ok": "holds at every iteration" if s["bound_holds"] else "is VIOLATED",
            "observed_rate": s["observed_rate"],
            "theory_iterations": s["theory_iterations"],
            "personalization": "a personalisation vector v (also used for dangling rows, as networkx)"
            if s["personalized"]
            else "uniform teleportation v = 1/n",
        },
        smk.output.cap_convergence,
    )

    pr = pd.read_csv(smk.input.pagerank)
    ref = None if pr["networkx"].isna().all() else pr["networkx"].to_numpy()
    plots.plot_pagerank(labels, pr["pagerank"].to_numpy(), ref, out=smk.output.ranking)
    ranking = ", ".join(f"S{row.page}: {row.pagerank:.6f}" for row in pr.sort_values("rank").itertuples())
    render_caption(
        smk.input.tpl_ranking,
        {
            **common,
            "ranking": ranking,
            "networkx": s["networkx_status"],
            "alpha": s["alpha"],
        },
        smk.output.cap_ranking,
    )
