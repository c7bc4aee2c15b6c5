"""Captions: config facts only through placeholders, the answer first, one rounding per quantity.

A caption template (``workflow/report/*.rst``) may contain the mathematics of its question, but
every fact of the configuration (sizes, epochs, seeds, sample counts, distributions, names) must
come from the run through a placeholder: checked by scanning the templates' literal numbers, and
by rendering the captions of two different configurations and finding each one's facts in its own
caption.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from test_figure_readability import KIND_RUNS
from test_figures import network2_wide, run_figure, solver_wide, write_run

from nnflow.pagerank.analysis import analyse_graph_job
from nnflow.pagerank.report import STAND_IN_LINKS, graph_figures_job
from nnflow.report.captions import format_value
from nnflow.theory.complex_job import complex_backprop_job
from nnflow.theory.unstable_job import unstable_theory_job

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "workflow" / "report"
CONFIGS = [ROOT / "config.yaml", ROOT / "tests" / "smoke" / "config.yaml"]

# The literal numbers a template may hold: mathematics that no config changes (0 ≤ σ′ ≤ 1/4,
# |w| ≥ 4, ½, 2 Re ∂C/∂w, |λ| = 1, the 16–84 % quantiles of ±1 standard deviation).
MATHS = {"0", "1", "2", "4", "16", "84"}
# Names that contain digits but are no facts of a run: the sheets' exercises and CIFAR-10.
NAMES = re.compile(r"\b(?:Blatt|Aufgabe|Tutoraufgabe) \d+[a-z]?(?:/[a-z])?|CIFAR-10")
PLACEHOLDER = re.compile(r"\$(?:\w+|\{\w+\})")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")


def literal_numbers(template: str) -> list[str]:
    """The numbers a template states itself (not through a placeholder, not in a name)."""
    return NUMBER.findall(NAMES.sub(" ", PLACEHOLDER.sub(" ", template)))


def config_values() -> dict[str, str]:
    """Every number in the shipped and the smoke config, as text -> the first key holding it."""
    found: dict[str, str] = {}

    def walk(node, key):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, int | float) and not isinstance(node, bool):
            for text in {str(node), f"{node:g}"}:
                found.setdefault(text, key)

    for path in CONFIGS:
        walk(yaml.safe_load(path.read_text(encoding="utf-8")), "")
    return found


def test_caption_templates_state_no_config_fact():
    example = "Blatt 10, Aufgabe 25a on CIFAR-10: $epochs epochs, ${n}x, depth 30, 1e-14"
    assert literal_numbers(example) == ["30", "14"]
    values = config_values()
    stated = {
        path.name: sorted(set(literal_numbers(path.read_text(encoding="utf-8"))) - MATHS)
        for path in sorted(TEMPLATES.glob("*.rst"))
    }
    hard_coded = {
        name: [f"{n}" + (f" (= config {values[n]})" if n in values else "") for n in numbers]
        for name, numbers in stated.items()
        if numbers
    }
    assert not hard_coded, f"numbers written into caption templates instead of placeholders: {hard_coded}"


SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def answer_of(caption: str) -> str:
    """The caption's answer paragraph: the first paragraph after the title that starts with
    **Answer.**; '' if there is none."""
    paragraphs = [p.strip() for p in caption.split("\n\n") if p.strip()]
    return next((p for p in paragraphs[:3] if p.startswith("**Answer.**")), "")


def sentences(text: str) -> int:
    return len(SENTENCE_END.findall(text.removeprefix("**Answer.**").strip()))


# ---------------------------------------------------------------------------------------------
# the same caption rendered for two configurations states each one's facts
# ---------------------------------------------------------------------------------------------

NETWORK2_CONFIGS = [
    {"sizes": [784, 30, 10], "epochs": 5, "seeds": (1, 2), "train_size": 1000},
    {"sizes": [784, 17, 10], "epochs": 7, "seeds": (1, 2, 3), "train_size": 700},
]


@pytest.mark.parametrize("cfg", NETWORK2_CONFIGS, ids=["a", "b"])
def test_network2_captions_follow_the_config(cfg, tmp_path):
    E = cfg["epochs"]
    cost_runs, l2_runs = [], []
    for seed in cfg["seeds"]:
        acc = 0.8 + 0.01 * np.arange(E) + 0.001 * seed
        for cost in ("quadratic", "cross_entropy"):
            params = {"cost": cost, "weight_init": "large", "sizes": cfg["sizes"]}
            label = f"cost={cost}+weight_init=large"
            cost_runs.append(write_run(tmp_path / "cost", "mnist_cost", label, seed, params,
                                       network2_wide(acc, acc + 0.02)))
        for lmbda in (0.0, 0.1):
            params = {"lmbda": lmbda, "sizes": cfg["sizes"], "train_size": cfg["train_size"]}
            l2_runs.append(write_run(tmp_path / "l2", "mnist_overfitting", f"lmbda={lmbda}", seed, params,
                                     network2_wide(acc + lmbda / 10, acc + 0.05)))
    net = f"network2 [{', '.join(map(str, cfg['sizes']))}]"
    cost = " ".join(run_figure(tmp_path / "cost", "mnist_cost", cost_runs)[1].split())
    l2 = " ".join(run_figure(tmp_path / "l2", "mnist_overfitting", l2_runs, {"from_epoch": 2})[1].split())
    assert net in cost and f"after {E} epochs" in cost.lower()
    assert f"(n={len(cfg['seeds'])})" in cost
    assert net in l2 and f"first {cfg['train_size']:,} MNIST training images" in l2
    assert "marks epoch 2" in l2


SOLVER_CONFIGS = [
    {"hidden_dims": [100, 100], "epochs": 3, "seeds": (1, 2), "train_size": 4000, "activation": "relu"},
    {"hidden_dims": [64, 32, 16], "epochs": 5, "seeds": (1, 2, 3), "train_size": 900, "activation": "tanh"},
]


@pytest.mark.parametrize("cfg", SOLVER_CONFIGS, ids=["a", "b"])
def test_solver_captions_follow_the_config(cfg, tmp_path):
    E = cfg["epochs"]
    runs = []
    for rule, lr in (("sgd", 0.01), ("adam", 0.001)):
        for seed in cfg["seeds"]:
            acc = list(0.1 + 0.05 * np.arange(E + 1) + 0.001 * seed)
            params = {"update_rule": rule, "learning_rate": lr, "hidden_dims": cfg["hidden_dims"],
                      "activation": cfg["activation"], "train_size": cfg["train_size"]}
            label = f"learning_rate={lr}+update_rule={rule}"
            runs.append(write_run(tmp_path, "cifar_optimizers", label, seed, params,
                                  solver_wide(acc, acc, list(np.linspace(2, 1, E)), lr)))
    caption = " ".join(run_figure(tmp_path, "cifar_optimizers", runs)[1].split())
    dims = cfg["hidden_dims"]
    assert f"{len(dims)} hidden" in caption.replace("two", "2").replace("three", "3")
    assert f"{dims[-1]} units" in caption
    assert f"{cfg['train_size']:,} CIFAR-10" in caption and f"for {E} epochs" in caption
    assert f"**Answer.** After {E} epochs, " in caption
    assert f"n={len(cfg['seeds'])}" in caption


THEORY_CONFIGS = [
    {"chain_depth": 12, "n_chains": 300, "weight_std": 1.0, "bias_std": 1.0, "n_factors": [1, 3, 12],
     "mc_samples": 1000, "z_max": 1000.0},
    {"chain_depth": 9, "n_chains": 200, "weight_std": 0.5, "bias_std": 2.0, "n_factors": [1, 9],
     "mc_samples": 1500, "z_max": 300.0},
]


@pytest.mark.parametrize("cfg", THEORY_CONFIGS, ids=["a", "b"])
def test_unstable_theory_caption_follows_the_config(cfg, tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    theory = {**config["experiments"]["unstable_gradients"]["theory"], "z_points": 2001, **cfg}
    out = SimpleNamespace(**{k: str(tmp_path / v) for k, v in dict(
        numbers="n.json", table="t.csv", caption="c.rst", sigmoid_prime="sp.png", interval="iv.png",
        lognormal="ln.png").items()})
    unstable_theory_job(json.dumps(theory), str(TEMPLATES / "unstable_theory.rst"), out)
    caption = " ".join(Path(out.caption).read_text().split())
    assert f"{cfg['n_chains']} sigmoid chains of depth {cfg['chain_depth']}" in caption
    assert f"w ~ N(0, {cfg['weight_std']:g}²), b ~ N(0, {cfg['bias_std']:g}²)" in caption
    assert f"[−{cfg['z_max']:g}, {cfg['z_max']:g}]" in caption
    assert f"({cfg['mc_samples']} draws per n)" in caption and f"n = {cfg['n_factors'][-1]}" in caption
    assert 1 <= sentences(answer_of(Path(out.caption).read_text())) <= 3


@pytest.mark.parametrize("sizes,n_iter", [([2, 6, 1], 40), ([2, 3, 3, 1], 60)])
def test_complex_backprop_caption_follows_the_config(sizes, n_iter, tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    params = {k: v for k, v in config["experiments"]["complex_backprop"].items() if k != "enabled"}
    params.update(sizes=sizes, n_iter=n_iter)
    out = SimpleNamespace(**{k: str(tmp_path / v) for k, v in dict(
        numbers="n.json", gradcheck="g.csv", training="t.csv", caption="c.rst", gradcheck_png="g.png",
        training_png="t.png").items()})
    complex_backprop_job(json.dumps(params), str(TEMPLATES / "complex_backprop.rst"), out)
    caption = " ".join(Path(out.caption).read_text().split())
    assert f"net {'-'.join(map(str, sizes))}, η = {params['eta']:g}, {n_iter} iterations" in caption
    assert 1 <= sentences(answer_of(Path(out.caption).read_text())) <= 3


def pagerank_captions(tmp_path, name, graph, alpha):
    data = SimpleNamespace(**{k: str(tmp_path / v) for k, v in dict(
        matrix="H.csv", table="H.rst", eigenvalues="eig.csv", iteration="it.csv", pagerank="pr.csv",
        convergence="conv.csv", summary="summary.json").items()})
    analyse_graph_job(name, json.dumps(graph), data, alpha=alpha, unit_tolerance=1e-9, steps=12, tol=1e-12,
                      max_iter=10_000, dense_max_pages=100)
    inputs = SimpleNamespace(**vars(data), **{
        f"tpl_{k}": str(TEMPLATES / f"pagerank_{t}.rst")
        for k, t in [("matrix", "hyperlink_matrix"), ("eigenvalues", "eigenvalues"),
                     ("iteration", "iteration"), ("convergence", "convergence"), ("ranking", "ranking")]
    })
    names = ("matrix", "eigenvalues", "iteration", "convergence", "ranking")
    out = SimpleNamespace(**{k: str(tmp_path / f"{k}.png") for k in names[1:]},
                          **{f"cap_{k}": str(tmp_path / f"{k}.rst") for k in names})
    graph_figures_job(inputs, out)
    return {k: " ".join(Path(getattr(out, f"cap_{k}")).read_text().split()) for k in names}


def test_pagerank_captions_say_the_shipped_graph_is_a_stand_in(tmp_path):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    shipped = config["pagerank"]["graphs"]["model_internet"]
    captions = pagerank_captions(tmp_path, "model_internet", shipped, 0.85)
    for kind, caption in captions.items():
        assert '"model_internet" is a stand-in' in caption, kind
        assert "``pagerank.graphs.model_internet.edges``" in caption, kind
    assert ":math:`\\alpha` = 0.85" in captions["ranking"]


def test_pagerank_captions_of_an_own_graph_name_its_source(tmp_path):
    graph = {"edges": [[1, 2], [2, 3], [3, 1], [3, 4]], "index_base": 1, "start_page": 2}
    captions = pagerank_captions(tmp_path, "my_web", graph, 0.7)
    for kind, caption in captions.items():
        assert "stand-in" not in caption, kind
        assert 'The links of "my_web" come from ``pagerank.graphs.my_web.edges``' in caption, kind
    assert ":math:`\\alpha` = 0.7" in captions["ranking"] and "4 pages" in captions["matrix"]


def test_the_stand_in_is_the_graph_the_config_and_schema_ship():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    default = schema["properties"]["pagerank"]["properties"]["graphs"]["default"]["model_internet"]
    for graph in (config["pagerank"]["graphs"]["model_internet"], default):
        assert graph["index_base"] == 1 and {tuple(e) for e in graph["edges"]} == STAND_IN_LINKS


# ---------------------------------------------------------------------------------------------
# the answer first, in at most three sentences
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(KIND_RUNS))
def test_figure_captions_lead_with_a_short_answer(kind, tmp_path):
    experiment, runs, analysis, extra = KIND_RUNS[kind](tmp_path)
    _, caption = run_figure(tmp_path, experiment, runs, analysis, extra=extra)
    answer = answer_of(caption)
    assert answer, caption[:400]
    assert 1 <= sentences(answer) <= 3, answer


# ---------------------------------------------------------------------------------------------
# one rounding per quantity
# ---------------------------------------------------------------------------------------------


def test_percentages_and_points_have_two_decimals_targets_stay_as_configured():
    assert format_value(83.4812, "base_peak_test_pct") == "83.48"
    assert format_value(17.0, "final_val_pct") == "17.00"
    assert format_value(0.07, "best_margin_points") == "0.07"
    assert format_value(60.0, "target_train_pct") == "60" and format_value(0.5, "plateau_points") == "0.5"
    assert format_value(0.012341, "lowest_loss") == "0.01234"


def test_theory_figures_write_numbers_as_their_caption_does():
    from nnflow.theory import figures as pt
    from nnflow.theory import unstable as u

    mu, s2 = -0.012341, 0.5
    table = u.lognormal_growth_table(mu, s2, [1, 2], np.random.default_rng(0), 500)
    (ax,) = pt.plot_lognormal(table, mu, s2).axes
    assert f"$\\mu$ = {format_value(mu)}" in ax.get_title() and format_value(mu) == "-0.01234"
    fig = pt.plot_interval_length(np.linspace(4, 30, 50), np.linspace(0.1, 0.2, 50), 6.89412, 0.447712)
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert f"maximum {format_value(0.447712)} at |w| = {format_value(6.89412)}" in labels
