"""Every path a rule reads or writes, from the resolved config (nnflow.workflow.layout)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from nnflow.workflow.config import load_schema, resolve_config, resolve_datasets
from nnflow.workflow.layout import Layout

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def _layout(change=None) -> Layout:
    cfg = copy.deepcopy(yaml.safe_load((ROOT / "config.yaml").read_text()))
    if change:
        change(cfg)
    runs = resolve_config(cfg, SCHEMA)
    return Layout(cfg, runs, resolve_datasets(cfg))


def test_the_default_target_of_the_shipped_config():
    layout = _layout()
    outputs = layout.all_outputs()
    assert len(outputs) == len(set(outputs)) and all(p.startswith("results/") for p in outputs)
    assert "results/data/cifar10/provenance.json" in outputs
    assert "results/experiments/cifar_challenge/figure.png" in outputs
    assert "results/theory/unstable/numbers.json" in outputs
    assert "results/pagerank/model_internet/captions/ranking.rst" in outputs
    assert "results/pagerank/scale/caption.rst" in outputs
    # 12 mnist_cost + 6 mnist_overfitting + 3 cifar_overfitting + 12 cifar_optimizers
    # + 8 challenge candidates + 12 unstable_gradients
    assert sum(p.endswith("/run.json") for p in outputs) == len(layout.runs) == 53
    assert layout.search_experiments() == ["cifar_challenge"]


def test_figure_inputs_follow_the_kind():
    layout = _layout()
    assert set(layout.figure_inputs("mnist_cost")) == {"metrics", "summary", "provenance"}
    search = layout.figure_inputs("cifar_challenge")
    assert search["chosen"] == "results/experiments/cifar_challenge/chosen.json"
    assert search["final_test"] == "results/experiments/cifar_challenge/final/test.json"
    assert search["provenance"] == "results/data/cifar10/provenance.json"


def test_an_experiment_without_a_figure_has_tables_but_no_figure():
    def change(cfg):
        exp = cfg["experiments"]["cifar_overfitting"]
        del exp["figure"], exp["report"]

    layout = _layout(change)
    assert "cifar_overfitting" in layout.trained_experiments()
    assert "cifar_overfitting" not in layout.plotted_experiments()
    assert "results/experiments/cifar_overfitting/figure.png" not in layout.all_outputs()


def test_disabled_stages_have_no_targets():
    def change(cfg):
        cfg["pagerank"]["enabled"] = False
        cfg["experiments"]["complex_backprop"]["enabled"] = False
        cfg["experiments"]["unstable_gradients"]["enabled"] = False

    layout = _layout(change)
    assert layout.targets_pagerank() == [] and layout.targets_theory() == []
    assert not any("unstable_gradients" in p for p in layout.all_outputs())


def test_downloads_and_prepared_files_of_a_dataset():
    layout = _layout()
    assert layout.downloads("cifar10") == {
        "archive": "results/downloads/cifar10/cifar-10-binary.tar.gz",
        "record": "results/downloads/cifar10/sources.json",
    }
    assert layout.prepared("mnist")[-1] == "results/data/mnist/provenance.json"
    assert layout.prepare_settings("mnist") == {"dtype": "float64", "pixel_scale": 255, "num_classes": 10,
                                                "validation_size": 10000}
