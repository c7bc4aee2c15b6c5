"""The theory and PageRank jobs (the bodies of their workflow scripts), called directly."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from nnflow.pagerank.analysis import analyse_graph_job, scale_case_job
from nnflow.pagerank.report import graph_figures_job, scale_summary_job
from nnflow.theory.complex_job import complex_backprop_job
from nnflow.theory.unstable_job import unstable_theory_job

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
TEMPLATES = ROOT / "workflow" / "report"


def _files(directory: Path, **names: str) -> SimpleNamespace:
    return SimpleNamespace(**{key: str(directory / name) for key, name in names.items()})


@pytest.fixture
def model_internet(tmp_path):
    """The config's model internet analysed into tmp_path; returns (outputs, summary)."""
    pr = CONFIG["pagerank"]
    out = _files(tmp_path, matrix="H.csv", table="H.rst", eigenvalues="eig.csv", iteration="it.csv",
                 pagerank="pr.csv", convergence="conv.csv", summary="summary.json")
    summary = analyse_graph_job(
        "model_internet", json.dumps(pr["graphs"]["model_internet"]), out,
        alpha=pr["alpha"], unit_tolerance=pr["unit_tolerance"], steps=pr["iteration_steps"],
        tol=pr["tol"], max_iter=pr["max_iter"], dense_max_pages=2000,
    )
    return out, summary


def test_model_internet_has_the_period_3_cycle_and_a_converged_pagerank(model_internet):
    out, s = model_internet
    assert s["n"] == 6 and s["links"] == 9
    assert s["n_unit"] == 3 and s["period"] == 3
    assert s["closed_classes"] == [{"pages": [4, 5, 6], "period": 3}]
    assert s["converged"] and s["final_residual"] <= s["tol"]
    assert sum(s["pagerank"].values()) == pytest.approx(1.0, abs=1e-12)
    assert json.loads(Path(out.summary).read_text()) == s
    assert len(pd.read_csv(out.iteration)) == s["steps"] + 1


def test_graph_figures_state_the_measured_numbers(model_internet, tmp_path):
    data, s = model_internet
    inputs = SimpleNamespace(**vars(data), **{
        f"tpl_{k}": str(TEMPLATES / f"pagerank_{t}.rst")
        for k, t in [("matrix", "hyperlink_matrix"), ("eigenvalues", "eigenvalues"),
                     ("iteration", "iteration"), ("convergence", "convergence"), ("ranking", "ranking")]
    })
    out = _files(tmp_path / "fig", eigenvalues="e.png", iteration="i.png", convergence="c.png",
                 ranking="r.png", cap_matrix="m.rst", cap_eigenvalues="e.rst", cap_iteration="i.rst",
                 cap_convergence="c.rst", cap_ranking="r.rst")
    (tmp_path / "fig").mkdir()
    graph_figures_job(inputs, out)
    for name in ("e", "i", "c", "r"):
        assert (tmp_path / "fig" / f"{name}.png").stat().st_size > 0
        assert (tmp_path / "fig" / f"{name}.pdf").stat().st_size > 0
    iteration = Path(out.cap_iteration).read_text()
    assert "period 3" in iteration and "$" not in iteration
    top = max(s["pagerank"], key=s["pagerank"].get)
    assert f"S{top}: {s['pagerank'][top]:.6f}" in Path(out.cap_ranking).read_text()


def test_scale_case_and_summary(tmp_path):
    spec = {"kind": "erdos_renyi", "n": 500, "mean_out_degree": 5, "dangling_fraction": 0.05,
            "exponent": 2.5, "seed": 1}
    row = scale_case_job("er_500", json.dumps(spec), str(tmp_path / "er.json"), alpha=0.85, tol=1e-10,
                         max_iter=1000)
    assert row["n"] == 500 and row["case"] == "er_500" and row["iterations"] > 1
    out = _files(tmp_path, csv="scale.csv", caption="caption.rst", figure="scale.png")
    rows = scale_summary_job([str(tmp_path / "er.json")],
                             SimpleNamespace(template=str(TEMPLATES / "pagerank_scale.rst")), out)
    assert rows == [row]
    assert pd.read_csv(out.csv)["n"].tolist() == [500]
    assert "er_500 (500 pages" in Path(out.caption).read_text()


def test_unstable_theory_job(tmp_path):
    theory = {**CONFIG["experiments"]["unstable_gradients"]["theory"],
              "z_points": 2001, "n_chains": 500, "n_factors": [1, 5], "mc_samples": 2000}
    out = _files(tmp_path, numbers="n.json", table="t.csv", caption="c.rst", sigmoid_prime="sp.png",
                 interval="iv.png", lognormal="ln.png")
    numbers = unstable_theory_job(json.dumps(theory), str(TEMPLATES / "unstable_theory.rst"), out)
    assert numbers["sigma_prime"]["max"] == pytest.approx(0.25)
    assert json.loads(Path(out.numbers).read_text())["params"] == theory
    assert pd.read_csv(out.table)["n"].tolist() == [1, 5]
    assert "$" not in Path(out.caption).read_text()


def test_complex_backprop_job_and_its_gradient_check_gate(tmp_path):
    params = {k: v for k, v in CONFIG["experiments"]["complex_backprop"].items() if k != "enabled"}
    params["n_iter"] = 100
    out = _files(tmp_path, numbers="n.json", gradcheck="g.csv", training="t.csv", caption="c.rst",
                 gradcheck_png="g.png", training_png="t.png")
    s = complex_backprop_job(json.dumps(params), str(TEMPLATES / "complex_backprop.rst"), out)
    assert s["gradcheck_max_rel_error"] < params["gradcheck_tolerance"]
    assert "$" not in Path(out.caption).read_text()
    with pytest.raises(RuntimeError, match="gradient check failed"):
        complex_backprop_job(json.dumps({**params, "gradcheck_tolerance": 1e-300}),
                             str(TEMPLATES / "complex_backprop.rst"), out)
