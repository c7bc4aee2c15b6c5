"""Run expansion: readable IDs, canonical params, stable random-search candidates."""

import copy
from pathlib import Path

import pytest
import yaml

from nnflow.train.grid import canonical_json, expand_experiment, expand_runs, sample_candidate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def experiments():
    return yaml.safe_load((ROOT / "config.yaml").read_text())["experiments"]


def test_mnist_cost_run_ids_name_only_the_varying_keys(experiments):
    runs = expand_experiment("mnist_cost", experiments["mnist_cost"])
    ids = [r.run_id for r in runs]
    assert "mnist_cost/cost=quadratic+eta=3.0+weight_init=large/seed=1" in ids
    assert "mnist_cost/cost=cross_entropy+eta=0.5+weight_init=default/seed=3" in ids
    assert len(ids) == 2 * 2 * 3 == len(set(ids))
    quad = next(r for r in runs if r.label.startswith("cost=quadratic"))
    assert quad.params["sizes"] == [784, 30, 10]
    assert quad.params["mini_batch_size"] == 10


def test_sheet_settings_are_in_the_default_config(experiments):
    runs = expand_runs(experiments)
    over = [r for r in runs.values() if r.experiment == "mnist_overfitting"]
    assert {r.params["lmbda"] for r in over} == {0.0, 0.1}
    assert all(r.params["train_size"] == 1000 and r.params["epochs"] == 400 for r in over)
    assert all(r.params["weight_init"] == "large" for r in over)
    cifar = [r for r in runs.values() if r.experiment == "cifar_overfitting"]
    assert all(r.params["train_size"] == 2500 for r in cifar)


def test_canonical_params_do_not_depend_on_key_order(experiments):
    shuffled = copy.deepcopy(experiments)
    shuffled["mnist_cost"]["params"] = dict(reversed(list(shuffled["mnist_cost"]["params"].items())))
    a = {k: canonical_json(r.spec()) for k, r in expand_runs(experiments).items()}
    b = {k: canonical_json(r.spec()) for k, r in expand_runs(shuffled).items()}
    assert a == b


def test_changing_one_grid_value_changes_exactly_its_runs(experiments):
    before = {k: canonical_json(r.spec()) for k, r in expand_runs(experiments).items()}
    changed = copy.deepcopy(experiments)
    changed["mnist_cost"]["grid"]["points"][0]["eta"] = 2.5
    after = {k: canonical_json(r.spec()) for k, r in expand_runs(changed).items()}
    gone = set(before) - set(after)
    new = set(after) - set(before)
    assert len(gone) == len(new) == 2 * 3  # quadratic x {large, default} x 3 seeds
    assert all("eta=2.5" in k for k in new)
    assert all(before[k] == after[k] for k in set(before) & set(after))


def test_adding_a_seed_adds_one_run_per_grid_point(experiments):
    more = copy.deepcopy(experiments)
    more["mnist_cost"]["seeds"] = [1, 2, 3, 4]
    added = set(expand_runs(more)) - set(expand_runs(experiments))
    assert sorted(added) == sorted(
        k.replace("seed=1", "seed=4") for k in expand_runs(experiments)
        if k.startswith("mnist_cost/") and k.endswith("seed=1")
    )


def test_search_candidates_are_stable_when_more_are_drawn(experiments):
    cfg = copy.deepcopy(experiments["cifar_challenge"])
    few = {r.run_id: r.params for r in expand_experiment("cifar_challenge", cfg)}
    cfg["search"]["n_candidates"] += 5
    many = {r.run_id: r.params for r in expand_experiment("cifar_challenge", cfg)}
    assert len(many) == len(few) + 5
    assert all(many[k] == v for k, v in few.items())


def test_candidate_values_lie_in_their_space():
    space = {
        "learning_rate": {"loguniform": [1e-4, 1e-2]},
        "lr_decay": {"uniform": [0.9, 1.0]},
        "depth": {"int": [2, 4]},
        "activation": {"choice": ["relu", "tanh"]},
    }
    for i in range(50):
        c = sample_candidate(space, seed=3, index=i)
        assert 1e-4 <= c["learning_rate"] <= 1e-2
        assert 0.9 <= c["lr_decay"] <= 1.0
        assert c["depth"] in (2, 3, 4)
        assert c["activation"] in ("relu", "tanh")
    assert sample_candidate(space, 3, 7) == sample_candidate(space, 3, 7)
    assert sample_candidate(space, 3, 7) != sample_candidate(space, 3, 8)


def test_unknown_distribution_is_named():
    with pytest.raises(ValueError, match="unknown distribution 'gauss'"):
        sample_candidate({"x": {"gauss": [0, 1]}}, 0, 0)


def test_duplicate_run_names_are_rejected():
    cfg = {
        "trainer": "network2",
        "dataset": "mnist",
        "seeds": [1],
        "params": {"epochs": 1},
        "grid": {"points": [{"eta": 0.5}, {"eta": 0.5}]},
    }
    with pytest.raises(ValueError, match="duplicate run names"):
        expand_experiment("x", cfg)


def test_key_in_params_and_grid_is_rejected():
    cfg = {
        "trainer": "network2",
        "dataset": "mnist",
        "seeds": [1],
        "params": {"eta": 1.0},
        "grid": {"points": [{"eta": 0.5}, {"eta": 3.0}]},
    }
    with pytest.raises(ValueError, match=r"\['eta'\] set both in params and in grid"):
        expand_experiment("x", cfg)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("trainer", "keras", "unknown trainer 'keras'"),
    ],
)
def test_unknown_names_are_rejected(key, value, message):
    cfg = {"trainer": "network2", "dataset": "mnist", "seeds": [1], "params": {}, key: value}
    with pytest.raises(ValueError, match=message):
        expand_experiment("x", cfg)


def test_grid_values_unsafe_for_paths_are_rejected():
    cfg = {
        "trainer": "network2",
        "dataset": "mnist",
        "seeds": [1],
        "params": {},
        "grid": {"product": {"cost": ["a/b", "c"]}},
    }
    with pytest.raises(ValueError, match="not allowed in a run ID"):
        expand_experiment("x", cfg)


def test_disabled_experiment_has_no_runs(experiments):
    cfg = copy.deepcopy(experiments["mnist_cost"])
    cfg["enabled"] = False
    assert expand_experiment("mnist_cost", cfg) == []


def test_changing_one_point_does_not_rename_the_others():
    cfg = {
        "trainer": "solver",
        "dataset": "cifar10",
        "seeds": [1],
        "params": {},
        "grid": {"points": [{"update_rule": "sgd", "learning_rate": 0.001},
                            {"update_rule": "adam", "learning_rate": 0.001}]},
    }
    before = {r.run_id for r in expand_experiment("x", cfg)}
    cfg["grid"]["points"][1]["learning_rate"] = 0.002
    after = {r.run_id for r in expand_experiment("x", cfg)}
    assert before - after == {"x/learning_rate=0.001+update_rule=adam/seed=1"}
    assert after - before == {"x/learning_rate=0.002+update_rule=adam/seed=1"}
