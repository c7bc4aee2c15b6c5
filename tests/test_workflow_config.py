"""The configuration resolved in the package: runs validated, scale cases, defaults once."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from nnflow.pagerank.cases import case_mem_mb, scale_cases
from nnflow.workflow.config import (
    ConfigError,
    fill_defaults,
    load_schema,
    resolve_config,
    resolve_datasets,
    resolve_runs,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())


def test_the_shipped_config_resolves_to_its_runs():
    runs = resolve_runs(CONFIG, SCHEMA)
    assert "mnist_cost/cost=quadratic+eta=3.0+weight_init=large/seed=1" in runs
    assert sum(r.experiment == "cifar_challenge" for r in runs.values()) == 8


@pytest.mark.parametrize(("experiment", "change", "message"), [
    ("cifar_optimizers", lambda e: e["grid"]["points"].append({"update_rule": "adagrad"}),
     r"experiments\.cifar_optimizers \(run cifar_optimizers/update_rule=adagrad/seed=1\): "
     r"update_rule: 'adagrad' is not one of"),
    ("mnist_cost", lambda e: e["grid"]["product"].update(weight_init=["huge"]),
     r"experiments\.mnist_cost .*weight_init: 'huge' is not one of"),
    ("cifar_challenge", lambda e: e["search"]["space"].update(batch_size={"choice": [0]}),
     r"experiments\.cifar_challenge \(run cifar_challenge/cand=000/seed=1\): batch_size: 0 is less"),
    ("mnist_cost", lambda e: e["params"].update(eta=3.0),
     r"experiments\.mnist_cost: \['eta'\] set both in params and in grid"),
])
def test_a_bad_grid_or_search_value_is_named(experiment, change, message):
    cfg = copy.deepcopy(CONFIG)
    change(cfg["experiments"][experiment])
    with pytest.raises(ConfigError, match=message):
        resolve_runs(cfg, SCHEMA)


def _resolved_pagerank(**scale):
    pr = copy.deepcopy(CONFIG["pagerank"])
    pr["scale"].update(scale)
    return pr


def test_scale_cases_from_generators_sizes_and_files(tmp_path):
    links = tmp_path / "links.csv"
    links.write_text("1,2\n2,3\n3,1\n")
    pr = _resolved_pagerank(sizes=[100, 200], generators=["scale_free"],
                            files={"mine": {"path": str(links), "index_base": 1, "n_pages": None,
                                            "delimiter": "auto"}})
    cases = scale_cases(pr)
    assert list(cases) == ["scale_free_100", "scale_free_200", "file_mine"]
    assert cases["scale_free_200"] == {"kind": "scale_free", "n": 200, "mean_out_degree": 10,
                                       "dangling_fraction": 0.05, "exponent": 2.5, "seed": 2026}
    assert cases["file_mine"]["path"] == str(links)
    assert case_mem_mb(cases["file_mine"]) == 500
    assert case_mem_mb({"kind": "erdos_renyi", "n": 10**6, "mean_out_degree": 10}) == 500 + 600
    assert scale_cases({**pr, "enabled": False}) == {}
    assert scale_cases(_resolved_pagerank(enabled=False)) == {}


def test_the_builtin_datasets_are_complete_declarations():
    datasets = resolve_datasets(CONFIG)
    assert list(datasets) == ["mnist", "cifar10"]
    assert datasets["cifar10"].accept_mirror_checksums and not datasets["mnist"].accept_mirror_checksums
    assert datasets["mnist"].settings["validation_size"] == 10000 and datasets["mnist"].label == "MNIST"
    assert [f.role for f in datasets["mnist"].files] == ["train_images", "train_labels", "test_images",
                                                         "test_labels"]


def test_a_declared_dataset_is_checked_against_its_format():
    cfg = copy.deepcopy(CONFIG)
    files = {role: {"name": f"{role}.gz", "md5": "0" * 32, "md5_of": "decompressed"}
             for role in ("train_images", "train_labels", "test_images", "test_labels")}
    cfg["data"]["datasets"]["fashion"] = {"format": "idx", "label": "Fashion-MNIST", "files": files,
                                          "urls": ["https://example.invalid/"], "validation_size": 5000}
    cfg["experiments"]["mnist_cost"]["dataset"] = "fashion"
    assert resolve_datasets(cfg)["fashion"].label == "Fashion-MNIST"
    del cfg["data"]["datasets"]["fashion"]["validation_size"]
    with pytest.raises(ConfigError, match="data.datasets.fashion: a idx dataset needs validation_size"):
        resolve_datasets(cfg)
    cfg["data"]["datasets"]["fashion"].update(validation_size=5000, format="cifar10_binary")
    with pytest.raises(ConfigError, match="data.datasets.fashion.files: a cifar10_binary dataset has the "
                                          "files archive; got train_images"):
        resolve_datasets(cfg)
    cfg["data"]["datasets"]["fashion"]["format"] = "hdf5"
    with pytest.raises(ConfigError, match="data.datasets.fashion.format: unknown dataset format 'hdf5'"):
        resolve_datasets(cfg)


def test_defaults_behind_a_ref_are_filled_once_from_the_schema():
    """Snakemake's validate fills only defaults written at the property itself."""
    from snakemake.utils import validate

    cfg = copy.deepcopy(CONFIG)
    exp = cfg["experiments"]["mnist_cost"]
    del exp["resources"], exp["seeds"]
    validate(cfg, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    assert "resources" not in exp and "seeds" not in exp
    fill_defaults(cfg, SCHEMA)
    resources = SCHEMA["definitions"]["resources"]["properties"]
    # mem_mb has no default: without it the run's memory is estimated (nnflow.train.memory)
    assert exp["resources"] == {k: v["default"] for k, v in resources.items() if k != "mem_mb"}
    assert exp["seeds"] == SCHEMA["definitions"]["seeds"]["default"]
    runs = resolve_runs(cfg, SCHEMA)
    assert {r.seed for r in runs.values() if r.experiment == "mnist_cost"} == set(exp["seeds"])


def test_fill_defaults_keeps_given_values_and_follows_items_and_additional_properties():
    schema = {
        "definitions": {
            "leaf": {"type": "object", "properties": {"x": {"default": 1}, "y": {"default": [2]}}},
        },
        "type": "object",
        "properties": {
            "list": {"type": "array", "items": {"$ref": "#/definitions/leaf"}},
            "named": {"type": "object", "additionalProperties": {"$ref": "#/definitions/leaf"}},
            "given": {"$ref": "#/definitions/leaf", "default": {}},
        },
    }
    cfg = {"list": [{}, {"x": 5}], "named": {"a": {"y": []}}}
    fill_defaults(cfg, schema)
    assert cfg == {"list": [{"x": 1, "y": [2]}, {"x": 5, "y": [2]}], "named": {"a": {"x": 1, "y": []}},
                   "given": {"x": 1, "y": [2]}}
    cfg["list"][0]["y"].append(3)
    assert cfg["list"][1]["y"] == [2]  # defaults are copies


def test_two_theory_sections_are_refused():
    cfg = copy.deepcopy(CONFIG)
    experiments = cfg["experiments"]
    experiments["cifar_optimizers"]["theory"] = dict(experiments["unstable_gradients"]["theory"])
    with pytest.raises(ConfigError, match="only one experiment may have a theory section"):
        resolve_config(cfg, SCHEMA)


def test_an_experiment_without_a_figure_or_with_an_unknown_analysis_key():
    cfg = copy.deepcopy(CONFIG)
    del cfg["experiments"]["cifar_overfitting"]["figure"], cfg["experiments"]["cifar_overfitting"]["report"]
    assert any(r.experiment == "cifar_overfitting" for r in resolve_config(cfg, SCHEMA).values())
    cfg = copy.deepcopy(CONFIG)
    cfg["experiments"]["mnist_cost"]["analysis"]["from_epoch"] = 3
    with pytest.raises(ConfigError, match=r"experiments\.mnist_cost\.analysis: unknown analysis key\(s\) "
                                          r"from_epoch for figure 'cost_comparison' \(allowed: reference\)"):
        resolve_config(cfg, SCHEMA)
    cfg = copy.deepcopy(CONFIG)
    del cfg["experiments"]["cifar_challenge"]["final"]
    with pytest.raises(ConfigError, match="figure 'random_search' needs final"):
        resolve_config(cfg, SCHEMA)
