"""Every figure the report shows is readable where the report shows it.

The report (Snakemake's HTML report in a 1280 px wide browser window, the list of items open)
gives a figure about 700 px of width (``drawing.REPORT_IMAGE_WIDTH_PX``, measured in headless
Chromium) and scales its PNG down to that. Each figure is built here on tiny data, shaped like
the shipped config's (four grid points where it has four), and every text in it must then
appear at least ``drawing.MIN_TEXT_PX`` pixels tall: its size in points × dpi/72 × the scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_figures import (
    network2_wide,
    run_figure,
    saved_figures,
    solver_wide,
    unstable_update_runs,
    write_run,
)

from nnflow.files import write_json
from nnflow.report import drawing
from nnflow.report.kinds import FIGURE_KINDS


def smallest_texts(fig, n=3):
    sizes = drawing.displayed_text_sizes(fig)
    assert sizes, "a figure without text"
    return sizes[:n]


def assert_readable(fig):
    width, _ = drawing.png_size(fig)
    smallest = smallest_texts(fig)
    assert smallest[0][0] >= drawing.MIN_TEXT_PX, (
        f"figure {width} px wide: smallest texts at {drawing.REPORT_IMAGE_WIDTH_PX} px display width "
        + "; ".join(f"{px:.1f} px {text!r}" for px, text in smallest)
    )


# ---------------------------------------------------------------------------------------------
# the figure kinds of the training experiments, drawn as the workflow draws them
# ---------------------------------------------------------------------------------------------


def cost_runs(root):
    runs = []
    for cost, eta in (("quadratic", 3.0), ("cross_entropy", 0.5)):
        for init in ("large", "default"):
            for seed in (1, 2):
                test = 0.9 + 0.01 * np.arange(6) / 5 + 0.002 * seed
                params = {"cost": cost, "eta": eta, "weight_init": init, "sizes": [784, 30, 10]}
                runs.append(write_run(root, "mnist_cost", f"cost={cost}+eta={eta}+weight_init={init}", seed,
                                      params, network2_wide(test, test + 0.02)))
    return "mnist_cost", runs, {}, None


def overfitting_l2_runs(root):
    e = np.arange(1, 41, dtype=float)
    runs = []
    for lmbda, top in ((0.0, 0.80), (0.1, 0.85)):
        for seed in (1, 2):
            test = top - 0.002 * np.abs(e - 20) + 0.001 * seed
            params = {"lmbda": lmbda, "cost": "cross_entropy", "train_size": 1000, "sizes": [784, 30, 10]}
            runs.append(write_run(root, "mnist_overfitting", f"lmbda={lmbda}", seed, params,
                                  network2_wide(test, np.minimum(1.0, 0.7 + 0.01 * e), 2.0 / e + lmbda)))
    return "mnist_overfitting", runs, {"from_epoch": 1}, None


def overfitting_subset_runs(root):
    params = {"hidden_dims": [100, 100], "train_size": 50, "activation": "relu"}
    runs = [
        write_run(root, "cifar_overfitting", "base", seed, params,
                  solver_wide([0.1, 0.3, 0.5, 0.7, 0.8], [0.1, 0.2, 0.24, 0.25, 0.24], [2.0, 1.5, 1.1, 0.9]))
        for seed in (1, 2)
    ]
    return "cifar_overfitting", runs, {}, None


def update_rules_runs(root):
    runs = []
    lrs = {"sgd": 0.01, "sgd_momentum": 0.01, "rmsprop": 1e-4, "adam": 1e-3}
    for rule, lr in lrs.items():
        for seed in (1, 2):
            params = {"update_rule": rule, "learning_rate": lr, "hidden_dims": [100, 100]}
            runs.append(write_run(root, "cifar_optimizers", f"learning_rate={lr}+update_rule={rule}", seed,
                                  params, solver_wide([0.1, 0.3, 0.4], [0.1, 0.25, 0.3], [2.2, 1.9], lr)))
    return "cifar_optimizers", runs, {}, None


def random_search_runs(root):
    runs, cands = [], []
    for i in range(1, 9):
        params = {"hidden_dims": [500, 500] if i % 2 else [1000], "update_rule": "adam",
                  "learning_rate": 1e-3 * i, "batch_size": 200,
                  "normalization": "batchnorm" if i % 3 else None, "activation": "relu"}
        v = 0.4 + 0.01 * i
        label = f"cand={i:03d}"
        runs.append(write_run(root, "cifar_challenge", label, 1, params,
                              solver_wide([0.1, v + 0.1], [0.1, v], [1.5])))
        cands.append({"run_id": f"cifar_challenge/{label}/seed=1", "val_accuracy": v, "params": params})
    write_json(root / "chosen.json", {"run_id": cands[-1]["run_id"], "params": cands[-1]["params"],
                                      "val_accuracy": cands[-1]["val_accuracy"], "candidates": cands})
    pd.DataFrame(solver_wide([0.1, 0.5, 0.6], [0.1, 0.45, 0.5], [1.6, 1.3])).to_csv(root / "final.csv",
                                                                                  index=False)
    write_json(root / "test.json", {"test_accuracy": 0.51, "val_accuracy": 0.5, "num_test": 10000,
                                    "run_id": "cifar_challenge/final", "params": cands[-1]["params"]})
    extra = {"chosen": root / "chosen.json", "final_metrics": root / "final.csv",
             "final_test": root / "test.json"}
    return "cifar_challenge", runs, {}, extra


def layer_gradients_runs(root):
    update_ratio = {("sigmoid", "sgd"): 100.0, ("sigmoid", "adam"): 1.05, ("relu", "sgd"): 3.0,
                    ("relu", "adam"): 1.0}
    grad_end = {("sigmoid", "sgd"): 20.0, ("sigmoid", "adam"): 8.0, ("relu", "sgd"): 1.2,
                ("relu", "adam"): 1.1}
    return "unstable_gradients", unstable_update_runs(root, update_ratio, grad_end), {}, None


KIND_RUNS = {
    "cost_comparison": cost_runs,
    "overfitting_l2": overfitting_l2_runs,
    "overfitting_subset": overfitting_subset_runs,
    "update_rules": update_rules_runs,
    "random_search": random_search_runs,
    "layer_gradients": layer_gradients_runs,
}


def test_every_figure_kind_is_checked():
    assert set(KIND_RUNS) == set(FIGURE_KINDS)


@pytest.mark.parametrize("kind", sorted(KIND_RUNS))
def test_experiment_figure_is_readable_in_the_report(kind, tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    experiment, runs, analysis, extra = KIND_RUNS[kind](tmp_path)
    # a non-canonical dataset: the figure carries the data note as its footnote
    run_figure(tmp_path, experiment, runs, analysis, canonical=False, extra=extra)
    (fig,) = saved
    assert_readable(fig)


# ---------------------------------------------------------------------------------------------
# theory and PageRank figures
# ---------------------------------------------------------------------------------------------


def theory_figures():
    from nnflow.theory import complex_net as cn
    from nnflow.theory import figures as pt
    from nnflow.theory import unstable as u

    z = np.linspace(-10, 10, 401)
    yield "sigmoid_prime", pt.plot_sigmoid_prime(z, u.sigmoid_prime(z), u.check_sigmoid_prime_bound(z))
    w = np.linspace(4, 30, 300)
    ws, ls = u.maximise_interval_length()
    yield "interval_length", pt.plot_interval_length(w, u.interval_length(w), ws, ls)
    table = u.lognormal_growth_table(-1.0, 0.5, [1, 5, 10, 15, 20], np.random.default_rng(0), 2000)
    yield "lognormal", pt.plot_lognormal(table, -1.0, 0.5)
    rng = np.random.default_rng(3)
    params = cn.init_params([2, 3, 2], rng, scale=0.3)
    x = rng.normal(size=(8, 2)) + 1j * rng.normal(size=(8, 2))
    y = rng.normal(size=(8, 2)) + 1j * rng.normal(size=(8, 2))
    yield "complex_gradcheck", pt.plot_complex_gradcheck(cn.gradient_check(params, x, y))
    res = cn.train(params, x, y, eta=1.0, n_iter=20, record_every=5)
    yield "complex_training", pt.plot_complex_training(res["iteration"], res["cost"],
                                                       res["min_pole_distance"])


def pagerank_figures():
    from nnflow.pagerank import figures as plots
    from nnflow.pagerank import graphs
    from nnflow.pagerank import ranking as P

    model = graphs.edge_list([[1, 2], [1, 3], [2, 4], [3, 1], [3, 2], [3, 5], [4, 5], [5, 6], [6, 4]])
    a = P.analyse_graph(model)
    yield "eigenvalues", plots.plot_eigenvalues(a["eigenvalues"], 1e-9, a["n_unit"], title="H")
    yield "iteration", plots.plot_iteration(a["history"], model.labels, 6, a["period"])
    res = P.pagerank(P.link_matrix(model), alpha=0.85, tol=1e-13)
    yield "convergence", plots.plot_convergence(res.residuals, 0.85, 0.5, tol=1e-13)
    yield "ranking", plots.plot_pagerank(model.labels, res.x, res.x)
    rows = [
        {"case_kind": kind, "links": 10 * n, "per_iteration_s": 1e-8 * n, "matvec_s": 8e-9 * n,
         "peak_traced_mb": 1e-4 * n, "csr_mb": 8e-5 * n}
        for kind in ("erdos_renyi", "scale_free") for n in (100_000, 1_000_000)
    ]
    yield "scale", plots.plot_scale(rows)


def test_theory_and_pagerank_figures_are_readable_in_the_report():
    figures = dict([*theory_figures(), *pagerank_figures()])
    assert len(figures) == 10
    unreadable = []
    for name, fig in figures.items():
        px, text = drawing.displayed_text_sizes(fig)[0]
        if px < drawing.MIN_TEXT_PX:
            unreadable.append(f"{name}: {px:.1f} px {text!r} ({drawing.png_size(fig)[0]} px wide)")
    assert not unreadable, unreadable


# ---------------------------------------------------------------------------------------------
# no legend over data
# ---------------------------------------------------------------------------------------------


def covered_by_legends(fig) -> list[str]:
    """What the legends of ``fig`` cover inside an axes: labels of lines (and the gids of bars)
    that cross a legend's box where the axes shows them."""
    from matplotlib.transforms import Bbox

    drawing.png_size(fig)  # lays the figure out
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    covered = []
    for legend in legends:
        box = legend.get_window_extent()
        for ax in fig.axes:
            region = Bbox.intersection(box, ax.bbox)
            if region is None or not ax.get_visible():
                continue
            for line in ax.get_lines():
                path = line.get_transform().transform_path(line.get_path())
                vertices = path.vertices[np.isfinite(path.vertices).all(axis=1)]
                drawn_line = line.get_linestyle() not in ("None", "none", "")
                if (drawn_line and path.intersects_bbox(region, filled=False)) or any(
                    region.contains(x, y) for x, y in vertices
                ):
                    covered.append(f"line {line.get_label()!r}")
            for patch in ax.patches:
                if patch.get_window_extent().overlaps(region):
                    covered.append(f"patch {patch.get_label()!r}")
    return covered


def test_theory_and_pagerank_legends_cover_no_data():
    covered = {name: covered_by_legends(fig) for name, fig in [*theory_figures(), *pagerank_figures()]}
    assert not any(covered.values()), covered


@pytest.mark.parametrize("kind", sorted(KIND_RUNS))
def test_experiment_figure_legends_cover_no_data(kind, tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    experiment, runs, analysis, extra = KIND_RUNS[kind](tmp_path)
    run_figure(tmp_path, experiment, runs, analysis, extra=extra)
    assert not covered_by_legends(saved[0]), covered_by_legends(saved[0])


def test_gradient_check_legend_names_the_real_and_imaginary_bars():
    fig = dict(theory_figures())["complex_gradcheck"]
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "relative error (Frobenius norm), real part" in labels
    assert "relative error (Frobenius norm), imaginary part" in labels


def test_lognormal_figure_marks_sample_means_that_fall_short():
    """With s² = 1.5 and 2,000 draws, fewer than one draw reaches the upper half of E[Q] from
    n = 8 on: those Monte Carlo means are drawn hollow and the legend says why."""
    from nnflow.theory import figures as pt
    from nnflow.theory import unstable as u

    table = u.lognormal_growth_table(-2.0, 1.5, [1, 4, 8, 15], np.random.default_rng(0), 2000)
    fig = pt.plot_lognormal(table, -2.0, 1.5)
    (ax,) = fig.axes
    hollow = [line for line in ax.get_lines()
              if line.get_marker() == "o" and line.get_markerfacecolor() == "none" and len(line.get_xdata())]
    assert [list(line.get_xdata()) for line in hollow] == [[8, 15]]
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any(label.startswith("hollow: mean of a sample with < 1 draw") for label in labels)
