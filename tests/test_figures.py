"""Tests for nnflow.report.figures: comparison figures, numbers and captions of the experiments.

Synthetic runs are written in the real per-run format (wide metrics.csv + run.json) and
turned into the experiment tables by nnflow.report.tables, so the figures are tested against
the table format the workflow produces.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnflow.files import write_json
from nnflow.report import experiment as report_experiment
from nnflow.report.figures import common, layer_gradients, overfitting_subset
from nnflow.report.tables import experiment_tables, write_frame

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "workflow" / "report"
# experiment -> figure kind, as in the shipped config
KIND = {"mnist_cost": "cost_comparison", "mnist_overfitting": "overfitting_l2",
        "cifar_overfitting": "overfitting_subset", "cifar_optimizers": "update_rules",
        "cifar_challenge": "random_search", "unstable_gradients": "layer_gradients"}
JPEG_NOTE = "CIFAR-10 mirror, JPEG-recompressed; pixel values differ from the canonical files"


def write_run(root, experiment, label, seed, params, wide, status="completed", diverged=None):
    d = Path(root) / "runs" / experiment / label / f"seed={seed}"
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(wide).to_csv(d / "metrics.csv", index=False)
    info = {
        "spec": {
            "experiment": experiment,
            "run_id": f"{experiment}/{label}/seed={seed}",
            "seed": seed,
            "params": params,
        },
        "status": status,
        "diverged_epoch": diverged,
    }
    write_json(d / "run.json", info)
    return d / "metrics.csv", d / "run.json"


def make_tables(root, runs):
    metrics, infos = zip(*runs, strict=True)
    tidy, summary = experiment_tables(list(metrics), list(infos))
    m, s = Path(root) / "metrics.csv", Path(root) / "summary.csv"
    write_frame(m, tidy)
    write_frame(s, summary)
    return m, s


def run_figure(root, experiment, runs, analysis=None, canonical=True, extra=None):
    m, s = make_tables(root, runs)
    prov = Path(root) / "provenance.json"
    dataset = "cifar10" if experiment.startswith("cifar") else "mnist"
    splits = {"train": 49000, "val": 1000, "test": 10000} if dataset == "cifar10" else \
        {"train": 50000, "val": 10000, "test": 10000}
    write_json(prov, {"canonical": canonical, "note": "" if canonical else JPEG_NOTE,
                      "dataset": dataset, "splits": splits})
    out = Path(root) / "out"
    numbers = report_experiment.experiment_figure(
        experiment,
        KIND[experiment],
        m,
        s,
        prov,
        REPORT / f"{KIND[experiment]}.rst",
        json.dumps(analysis or {}),
        out / "figure.png",
        out / "figure.pdf",
        out / "caption.rst",
        out / "numbers.json",
        extra=extra,
        title=f"A title for {experiment}.",
    )
    for name in ("figure.png", "figure.pdf", "caption.rst", "numbers.json"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figure.pdf").read_bytes()[:5] == b"%PDF-"
    assert not list(out.glob(".*tmp-*")), "temporary files left behind"
    caption = (out / "caption.rst").read_text(encoding="utf-8")
    assert "$" not in caption
    on_disk = json.loads((out / "numbers.json").read_text())
    assert on_disk["n_runs"] == numbers["n_runs"]
    return numbers, caption


# ---------------------------------------------------------------------------------------------
# pure functions
# ---------------------------------------------------------------------------------------------


def test_peak_and_smoothed_peak_epoch():
    epochs = np.arange(1, 41)
    values = 0.8 - 0.002 * np.abs(epochs - 20.0)
    values[5] = 0.85  # a single spike at epoch 6: the raw peak, not the smoothed one
    curve = pd.DataFrame({"epoch": epochs, "mean": values})
    assert common.peak(curve) == (pytest.approx(0.85), 6)
    assert common.smoothed_peak_epoch(curve, window=1) == 6
    assert common.smoothed_peak_epoch(curve, window=9) == 20
    assert common.peak(curve.iloc[:0]) == (pytest.approx(float("nan"), nan_ok=True), -1)


def test_compare_word_and_imbalance():
    assert common.compare_word(2.0, 1.0) == "larger"
    assert common.compare_word(1.0, 2.0, words=("higher", "lower")) == "lower"
    assert common.compare_word(1.0, 1.001) == "about the same"
    assert common.compare_word(float("nan"), 1.0) == "n/a"
    assert layer_gradients.imbalance(0.01) == pytest.approx(100.0)
    assert layer_gradients.imbalance(4.0) == 4.0
    assert layer_gradients.geo_mean([1.0, 100.0]) == pytest.approx(10.0)


def test_grid_label():
    assert common.grid_label("mnist_cost/cost=quadratic+eta=3.0/seed=1") == "cost=quadratic+eta=3.0"
    assert common.pretty_group("lmbda=0.1+eta=3.0") == "λ=0.1, η=3"


# ---------------------------------------------------------------------------------------------
# mnist_cost
# ---------------------------------------------------------------------------------------------


def network2_wide(test, train, cost=None):
    e = np.arange(1, len(test) + 1)
    cost = np.linspace(1.0, 0.5, len(test)) if cost is None else cost
    return {
        "epoch": e,
        "train_cost": cost,
        "train_accuracy": train,
        "test_cost": np.asarray(cost) * 1.1,
        "test_accuracy": test,
        "seconds": np.full(len(test), 1.5),
    }


def test_mnist_cost(tmp_path):
    runs = []
    E = 5
    base = {"quadratic": 0.90, "cross_entropy": 0.93}
    for cost, eta in (("quadratic", 3.0), ("cross_entropy", 0.5)):
        for init in ("large", "default"):
            label = f"cost={cost}+eta={eta}+weight_init={init}"
            for seed in (1, 2):
                test = base[cost] + 0.01 * np.arange(E) / (E - 1) + 0.002 * (seed - 1)
                params = {"cost": cost, "eta": eta, "weight_init": init, "sizes": [784, 30, 10]}
                runs.append(
                    write_run(tmp_path, "mnist_cost", label, seed, params, network2_wide(test, test + 0.02))
                )
    # a diverged quadratic/large run with terrible accuracy: must not enter the mean
    params = {"cost": "quadratic", "eta": 3.0, "weight_init": "large", "sizes": [784, 30, 10]}
    bad = np.array([0.1, 0.1, 0.1])
    runs.append(
        write_run(
            tmp_path,
            "mnist_cost",
            "cost=quadratic+eta=3.0+weight_init=large",
            3,
            params,
            network2_wide(bad, bad),
            status="diverged",
            diverged=3,
        )
    )
    reference = {"source": "the book", "weight_init": "large",
                 "test_accuracy": {"quadratic": 0.9542, "cross_entropy": 0.9549}}
    numbers, caption = run_figure(tmp_path, "mnist_cost", runs, {"reference": reference})
    g = {x["group"]: x for x in numbers["groups"]}
    q = g["cost=quadratic+eta=3.0+weight_init=large"]
    assert q["n_seeds"] == 2
    assert q["final_test_pct_mean"] == pytest.approx(100 * (0.91 + 0.001))
    assert q["final_test_pct_best_of_seeds"] == pytest.approx(100 * 0.912)
    assert q["best_test_epoch_best_of_seeds"] == E
    assert numbers["n_diverged"] == 1 and numbers["n_runs"] == 9
    assert numbers["ce_beats_quadratic"] is True
    assert numbers["ce_beats_quadratic_large"] is True
    assert numbers["ce_minus_quadratic_points_default"] == pytest.approx(3.0)
    assert "(diverged at epoch 3)" in caption
    assert "1 of 9 runs diverged" in caption
    assert "91.10%" in caption  # quadratic/large mean final test accuracy
    assert "Against the book" in caption and "95.42" in caption and "95.49" in caption
    assert "Data:" not in caption
    # structural facts come from the runs' parameters and the provenance, not from the template
    assert caption.startswith("**A title for mnist_cost.**")
    assert "the 10,000 MNIST test images" in caption and "50,000 training images" in caption
    assert "network2 [784, 30, 10]" in caption


def test_mnist_cost_without_a_reference_says_nothing_about_one(tmp_path):
    runs = [
        write_run(tmp_path, "mnist_cost", f"cost={cost}+weight_init=large", 1,
                  {"cost": cost, "weight_init": "large", "sizes": [784, 100, 10]},
                  network2_wide(np.array([0.9, 0.91]), np.array([0.92, 0.93])))
        for cost in ("quadratic", "cross_entropy")
    ]
    numbers, caption = run_figure(tmp_path, "mnist_cost", runs)
    assert numbers["reference_comparison"] == ""
    assert "book" not in caption and "Against" not in caption
    assert "network2 [784, 100, 10]" in caption

# ---------------------------------------------------------------------------------------------
# mnist_overfitting
# ---------------------------------------------------------------------------------------------


def test_mnist_overfitting(tmp_path):
    E = 40
    e = np.arange(1, E + 1, dtype=float)
    runs = []
    for lmbda, top, peak_epoch in ((0.0, 0.80, 20), (0.1, 0.85, 30)):
        for seed in (1, 2):
            test = top - 0.002 * np.abs(e - peak_epoch) + 0.001 * (seed - 1)
            train = np.minimum(1.0, 0.7 + 0.01 * e)
            cost = 2.0 / e + lmbda
            params = {"lmbda": lmbda, "cost": "cross_entropy", "train_size": 1000}
            runs.append(
                write_run(
                    tmp_path,
                    "mnist_overfitting",
                    f"lmbda={lmbda}",
                    seed,
                    params,
                    network2_wide(test, train, cost),
                )
            )
    analysis = {"from_epoch": 10, "smooth_window": 5, "plateau_tolerance": 0.0,
                "reference": {"source": "the book", "peak_test_accuracy": {"0.0": 0.8227, "0.1": 0.871}}}
    numbers, caption = run_figure(tmp_path, "mnist_overfitting", runs, analysis)
    assert numbers["base_stop_improving_epoch"] == 20
    assert numbers["l2_stop_improving_epoch"] == 30
    assert numbers["base_peak_test_epoch"] == 20
    assert numbers["base_peak_test_pct"] == pytest.approx(80.05)
    assert numbers["l2_peak_test_pct"] == pytest.approx(85.05)
    assert numbers["base_train_cost_from"] == pytest.approx(0.2)
    assert numbers["base_train_cost_end"] == pytest.approx(0.05)
    assert numbers["l2_train_cost_end"] == pytest.approx(0.15)
    final_test = 0.80 - 0.002 * 20 + 0.0005
    assert numbers["base_final_gap_points"] == pytest.approx(100 * (1.0 - final_test))
    assert numbers["groups"][0]["train_cost_still_falling"] is True
    assert numbers["l2_peak_difference_points"] == pytest.approx(5.0)
    assert "Woran lässt sich Overfitting erkennen?" in caption
    assert "stops improving at epoch 20" in caption
    assert "training cost keeps falling" in caption
    assert "+5.00 points, higher" in caption
    assert "Against the book" in caption and "82.27" in caption and "87.1" in caption
    assert "first 1,000 MNIST training images" in caption


# ---------------------------------------------------------------------------------------------
# cifar_overfitting
# ---------------------------------------------------------------------------------------------


def solver_wide(train, val, loss, lr=0.01, grads=None):
    n = len(train)
    wide = {
        "epoch": np.arange(n),
        "learning_rate": [np.nan] + [lr] * (n - 1),
        "train_loss": [np.nan] + list(loss),
        "train_accuracy": train,
        "val_accuracy": val,
        "seconds": [np.nan] + [2.0] * (n - 1),
    }
    for name, values in (grads or {}).items():
        wide[name] = values
    return wide


def test_cifar_overfitting_with_jpeg_note(tmp_path):
    runs = []
    train = np.array([0.10, 0.30, 0.50, 0.65, 0.72, 0.70])
    val = np.array([0.10, 0.20, 0.24, 0.26, 0.25, 0.24])
    loss = np.array([2.0, 1.5, 1.1, 0.9, 0.8])
    params = {"hidden_dims": [100, 100], "train_size": 2500, "activation": "relu"}
    for seed, shift in ((1, 0.0), (2, 0.02)):
        runs.append(
            write_run(
                tmp_path, "cifar_overfitting", "base", seed, params, solver_wide(train + shift, val, loss)
            )
        )
    runs.append(
        write_run(
            tmp_path,
            "cifar_overfitting",
            "base",
            3,
            params,
            solver_wide(train[:3] * 0, val[:3], [np.inf, np.nan]),
            status="diverged",
            diverged=1,
        )
    )
    numbers, caption = run_figure(
        tmp_path, "cifar_overfitting", runs, {"target_train_accuracy": 0.6}, canonical=False
    )
    assert numbers["max_train_pct"] == pytest.approx(73.0)
    assert numbers["max_train_epoch"] == 4
    assert numbers["reaches_target"] is True and numbers["runs_reaching_target"] == 2
    assert numbers["final_val_pct"] == pytest.approx(24.0)
    assert numbers["final_gap_points"] == pytest.approx(71.0 - 24.0)
    assert numbers["n_diverged"] == 1 and numbers["n_completed"] == 2
    assert numbers["dataset_canonical"] is False
    assert JPEG_NOTE in caption and JPEG_NOTE in numbers["data_note"]
    assert "target is met" in caption
    assert "(diverged at epoch 1)" in caption


def test_cifar_overfitting_target_not_met(tmp_path):
    params = {"hidden_dims": [100, 100]}
    runs = [
        write_run(
            tmp_path,
            "cifar_overfitting",
            "base",
            1,
            params,
            solver_wide([0.1, 0.3, 0.5], [0.1, 0.2, 0.2], [2.0, 1.8]),
        )
    ]
    tidy = common.load_tidy(make_tables(tmp_path, runs)[0])
    numbers = overfitting_subset.cifar_overfitting_numbers(tidy, {"target_train_accuracy": 0.6})
    assert numbers["reaches_target"] is False and numbers["runs_reaching_target"] == 0
    assert "target is not met" in numbers["target_sentence"]
    assert common.data_note({"canonical": True, "note": "x"}) == (True, "")
    assert common.data_note({"canonical": False, "note": JPEG_NOTE})[1].startswith("Data:")


# ---------------------------------------------------------------------------------------------
# cifar_optimizers
# ---------------------------------------------------------------------------------------------


def test_cifar_optimizers(tmp_path):
    runs = []
    quality = {"sgd": 0.0, "sgd_momentum": 0.05, "rmsprop": 0.08, "adam": 0.12}
    lrs = {"sgd": 0.01, "sgd_momentum": 0.01, "rmsprop": 1e-4, "adam": 1e-3}
    for rule in ("adam", "sgd", "rmsprop", "sgd_momentum"):  # order is restored in the figure
        for seed in (1, 2):
            q = quality[rule]
            train = np.array([0.1, 0.25, 0.35, 0.40]) + q
            val = np.array([0.1, 0.22, 0.28, 0.30]) + q
            loss = np.array([2.2, 1.9, 1.7]) - q
            params = {"update_rule": rule, "learning_rate": lrs[rule]}
            runs.append(
                write_run(
                    tmp_path,
                    "cifar_optimizers",
                    f"learning_rate={lrs[rule]}+update_rule={rule}",
                    seed,
                    params,
                    solver_wide(train, val, loss, lrs[rule]),
                )
            )
    numbers, caption = run_figure(tmp_path, "cifar_optimizers", runs, canonical=False)
    assert [x["update_rule"] for x in numbers["groups"]] == ["sgd", "sgd_momentum", "rmsprop", "adam"]
    assert numbers["best_rule"] == "adam" and numbers["lowest_loss_rule"] == "adam"
    assert numbers["adam_final_val_pct"] == pytest.approx(42.0)
    assert numbers["sgd_final_train_loss"] == pytest.approx(1.7)
    assert numbers["best_margin_points"] == pytest.approx(4.0)
    assert numbers["runner_up_rule"] == "rmsprop"
    assert "adam is ahead of rmsprop beyond the seed spread (42.00% vs 38.00%, +4.00 points)" in caption
    assert JPEG_NOTE in caption


# ---------------------------------------------------------------------------------------------
# cifar_challenge
# ---------------------------------------------------------------------------------------------


def test_cifar_challenge(tmp_path):
    runs, cands = [], []
    vals = {1: 0.40, 2: 0.52, 3: 0.45, 4: None}
    for i, v in vals.items():
        label = f"cand={i:03d}"
        params = {
            "hidden_dims": [500, 500],
            "update_rule": "adam",
            "learning_rate": 1e-3 * i,
            "batch_size": 200,
            "normalization": "batchnorm",
        }
        if v is None:
            w = solver_wide([0.1, 0.1], [0.1, 0.1], [np.nan])
            runs.append(
                write_run(tmp_path, "cifar_challenge", label, 1, params, w, status="diverged", diverged=1)
            )
        else:
            w = solver_wide([0.1, v + 0.1], [0.1, v], [1.5])
            runs.append(write_run(tmp_path, "cifar_challenge", label, 1, params, w))
        cands.append({"run_id": f"cifar_challenge/{label}/seed=1", "val_accuracy": v, "params": params})
    chosen = {
        "run_id": "cifar_challenge/cand=002/seed=1",
        "params": cands[1]["params"],
        "val_accuracy": 0.52,
        "candidates": cands,
    }
    write_json(tmp_path / "chosen.json", chosen)
    final = pd.DataFrame(solver_wide([0.1, 0.5, 0.6, 0.65], [0.1, 0.45, 0.55, 0.53], [1.6, 1.3, 1.1]))
    final.to_csv(tmp_path / "final.csv", index=False)
    write_json(
        tmp_path / "test.json",
        {
            "test_accuracy": 0.512,
            "val_accuracy": 0.55,
            "weights": "best validation accuracy, epoch 2 of 3",
            "best_epoch": 2,
            "run_id": "cifar_challenge/final",
            "num_test": 10000,
            "params": cands[1]["params"],
        },
    )
    extra = {
        "chosen": tmp_path / "chosen.json",
        "final_metrics": tmp_path / "final.csv",
        "final_test": tmp_path / "test.json",
    }
    numbers, caption = run_figure(
        tmp_path, "cifar_challenge", runs, {"target_test_accuracy": 0.55}, canonical=False, extra=extra
    )
    assert numbers["n_candidates"] == 4 and numbers["n_candidates_diverged"] == 1
    assert numbers["chosen_run_id"] == "cifar_challenge/cand=002/seed=1"
    assert numbers["chosen_val_pct"] == pytest.approx(52.0)
    assert numbers["test_pct"] == pytest.approx(51.2)
    assert numbers["sheet_target_met"] == "met" and numbers["our_target_met"] == "not met"
    assert numbers["final_train_pct"] == pytest.approx(65.0)
    assert "sheet's 40% is met" in caption and "55% target is not met" in caption
    # which weights were tested, from test.json; the retrained curve's last value beside it
    assert ("measured once with the weights of the best validation accuracy, epoch 2 of 3 "
            "(validation accuracy 55.00%)") in caption
    assert numbers["tested_epoch"] == 2 and numbers["final_val_pct"] == pytest.approx(53.0)
    assert "learning_rate=0.002" in caption
    assert JPEG_NOTE in caption


def test_cifar_challenge_needs_extra_inputs(tmp_path):
    runs = [
        write_run(
            tmp_path,
            "cifar_challenge",
            "cand=001",
            1,
            {"learning_rate": 1e-3},
            solver_wide([0.1, 0.2], [0.1, 0.2], [1.0]),
        )
    ]
    with pytest.raises(ValueError, match="extra inputs"):
        run_figure(tmp_path, "cifar_challenge", runs)


# ---------------------------------------------------------------------------------------------
# unstable_gradients
# ---------------------------------------------------------------------------------------------


def test_unstable_gradients(tmp_path):
    # hidden layers 1..3, output layer 4; ratio layer3/layer1 per grid point (init, end)
    ratios = {
        ("sigmoid", "sgd"): (100.0, 50.0),
        ("sigmoid", "adam"): (100.0, 2.0),
        ("relu", "sgd"): (1.5, 1.2),
        ("relu", "adam"): (1.5, 1.1),
    }
    runs = []
    for (act, rule), (r0, r1) in ratios.items():
        lr = 0.1 if rule == "sgd" else 1e-3
        for seed in (1, 2):
            scale = 10.0**seed  # the same in every layer: ratios do not depend on it
            ratio = np.array([r0, (r0 + r1) / 2, r1])
            grads = {
                "grad_norm_layer1": scale * 1e-3 * np.ones(3),
                "grad_norm_layer2": scale * 1e-3 * np.sqrt(ratio),
                "grad_norm_layer3": scale * 1e-3 * ratio,
                "grad_norm_layer4": scale * 1e-1 * np.ones(3),
            }
            params = {
                "activation": act,
                "update_rule": rule,
                "learning_rate": lr,
                "hidden_dims": [30, 30, 30],
            }
            label = f"activation={act}+learning_rate={lr}+update_rule={rule}"
            runs.append(
                write_run(
                    tmp_path,
                    "unstable_gradients",
                    label,
                    seed,
                    params,
                    solver_wide([0.1, 0.5, 0.8], [0.1, 0.5, 0.8], [1.0, 0.5], lr, grads),
                )
            )
    numbers, caption = run_figure(tmp_path, "unstable_gradients", runs)
    assert numbers["first_hidden_layer"] == 1 and numbers["last_hidden_layer"] == 3
    assert numbers["ratio_init_sigmoid_sgd"] == pytest.approx(100.0)
    assert numbers["ratio_end_sigmoid_sgd"] == pytest.approx(50.0)
    assert numbers["ratio_end_sigmoid_adam"] == pytest.approx(2.0)
    g = {(x["activation"], x["update_rule"]): x for x in numbers["groups"]}
    assert g[("sigmoid", "adam")]["balanced_end"] is True
    assert g[("sigmoid", "sgd")]["balanced_end"] is False
    assert g[("relu", "sgd")]["epoch_init"] == 0 and g[("relu", "sgd")]["epoch_end"] == 2
    # during training = geometric mean over epochs 1, 2: sqrt(75 * 50) and sqrt(51 * 2)
    assert numbers["ratio_during_sigmoid_sgd"] == pytest.approx(np.sqrt(75 * 50))
    assert "61.2 for sigmoid+SGD vs 10.1 for sigmoid+Adam" in caption
    assert "10.1 vs 61.2, smaller with sigmoid+Adam, 6.06× smaller" in caption
    assert "smaller with relu+sgd" in caption
    # older runs without update_norm_layer<l>: no bottom row, no update numbers, a sentence saying so
    assert numbers["has_update_norms"] is False
    assert np.isnan(numbers["update_ratio_sigmoid_sgd"])
    assert "no update_norm_layer<l> metrics" in caption
    assert "only the gradient-norm column" in caption
    assert "relative-update ratio" not in caption


def unstable_update_runs(root, update_ratio, grad_ratio_end, epochs=4, diverged=None):
    """Runs with hidden layers 1..4 (output 5) whose layer-4/layer-1 relative update per epoch is
    ``update_ratio[(act, rule)]`` (constant over epochs, the seed scales every layer alike)."""
    runs = []
    for (act, rule), u in update_ratio.items():
        lr = 0.1 if rule == "sgd" else 1e-3
        for seed in (1, 2, 3):
            scale = 2.0**seed
            e = np.arange(epochs + 1)
            r = np.geomspace(10.0, grad_ratio_end[(act, rule)], epochs + 1)
            wide_extra = {f"grad_norm_layer{l}": 1e-3 * r ** ((l - 1) / 3) for l in (1, 2, 3, 4)}
            wide_extra["grad_norm_layer5"] = 0.1 * np.ones(epochs + 1)
            decay = scale * 1e-2 * np.exp(-e / 3.0)  # varies over epochs: only the ratio is constant
            for l in (1, 2, 3, 4, 5):
                v = decay * u ** ((min(l, 4) - 1) / 3)
                v[0] = np.nan  # no update before the first epoch
                wide_extra[f"update_norm_layer{l}"] = v
            params = {"activation": act, "update_rule": rule, "learning_rate": lr, "hidden_dims": [30] * 4}
            label = f"activation={act}+learning_rate={lr}+update_rule={rule}"
            status, k = ("diverged", 2) if diverged == (act, rule, seed) else ("completed", None)
            acc = list(np.linspace(0.1, 0.9, epochs + 1))
            wide = solver_wide(acc, acc, list(np.linspace(2.0, 0.5, epochs)), lr, wide_extra)
            if status == "diverged":  # a diverged run's huge updates must not enter the numbers
                wide["update_norm_layer4"] = np.r_[np.nan, 1e6 * np.ones(epochs)]
            runs.append(write_run(root, "unstable_gradients", label, seed, params, wide, status, k))
    return runs


def test_unstable_gradients_update_ratio(tmp_path):
    update_ratio = {
        ("sigmoid", "sgd"): 100.0,
        ("sigmoid", "adam"): 1.05,
        ("relu", "sgd"): 3.0,
        ("relu", "adam"): 1.0,
    }
    grad_end = {
        ("sigmoid", "sgd"): 20.0,
        ("sigmoid", "adam"): 8.0,
        ("relu", "sgd"): 1.2,
        ("relu", "adam"): 1.1,
    }
    runs = unstable_update_runs(tmp_path, update_ratio, grad_end, diverged=("relu", "sgd", 3))
    numbers, caption = run_figure(tmp_path, "unstable_gradients", runs)
    assert numbers["has_update_norms"] is True
    assert numbers["first_hidden_layer"] == 1 and numbers["last_hidden_layer"] == 4
    assert numbers["update_ratio_sigmoid_sgd"] == pytest.approx(100.0)
    assert numbers["update_imbalance_sigmoid_sgd"] == pytest.approx(100.0)
    assert numbers["update_ratio_sigmoid_adam"] == pytest.approx(1.05)
    assert numbers["update_ratio_relu_sgd"] == pytest.approx(3.0)  # the diverged seed is left out
    assert numbers["imbalance_end_sigmoid_adam"] == pytest.approx(8.0)
    g = {(x["activation"], x["update_rule"]): x for x in numbers["groups"]}
    assert g[("sigmoid", "sgd")]["update_balanced"] is False
    assert g[("sigmoid", "adam")]["update_balanced"] is True
    assert g[("sigmoid", "adam")]["balanced_end"] is False
    assert g[("relu", "sgd")]["update_n_seeds"] == 2
    assert g[("sigmoid", "sgd")]["update_epochs"] == 4
    # geometric mean over epochs and seeds of layer 1's relative update: 1e-2 * 2**2 * exp(-2.5/3)
    assert g[("sigmoid", "sgd")]["update_first"] == pytest.approx(4e-2 * np.exp(-2.5 / 3))
    # both imbalances are compared, with computed words
    assert "relative-update ratio 100 for sigmoid+SGD vs 1.05 for sigmoid+Adam" in caption
    assert "imbalance factor 1.05 vs 100, smaller with sigmoid+Adam, 95.2× smaller" in caption
    # geometric mean over epochs 1..4 of geomspace(10, end, 5): 10 * (end / 10) ** 0.625
    assert "gradient-norm ratio during training 15.4 for sigmoid+SGD vs 8.7 for sigmoid+Adam" in caption
    assert "relative-update ratio 100 for sigmoid+sgd vs 3 for relu+sgd" in caption
    assert "(not within a factor of 2 with relu+sgd)" in caption
    # the computed answer replaces the fixed sentence about Adam
    assert "Note that Adam rescales" not in caption
    assert (
        "With sigmoid, the relative weight change per epoch of layer 4 is 100× that of layer 1 under SGD "
        "and 1.05× under Adam" in caption
    )
    assert "learn at comparable speed (within a factor of 2) even though their gradient norms" in caption
    assert "differ by a factor of 8" in caption
    assert "so even with Adam" not in caption
    assert "right column shows how much each layer actually learned" in caption


def test_unstable_gradients_adam_not_balancing_updates(tmp_path):
    update_ratio = {("sigmoid", "sgd"): 100.0, ("sigmoid", "adam"): 10.0}
    grad_end = {("sigmoid", "sgd"): 20.0, ("sigmoid", "adam"): 8.0}
    numbers, caption = run_figure(
        tmp_path, "unstable_gradients", unstable_update_runs(tmp_path, update_ratio, grad_end)
    )
    assert numbers["update_imbalance_sigmoid_adam"] == pytest.approx(10.0)
    assert "so even with Adam the layers' learning speeds differ by more than a factor of 2" in caption
    assert "No sigmoid/ReLU pair to compare." in caption


def test_update_ratio_per_run_without_updates():
    tidy = pd.DataFrame(
        {
            "run_id": ["e/a/seed=1"],
            "group": ["a"],
            "seed": [1],
            "status": ["completed"],
            "epoch": [0],
            "metric": ["grad_norm_layer1"],
            "value": [1.0],
        }
    )
    assert layer_gradients.update_layer_columns(tidy) == []
    assert layer_gradients.update_ratio_per_run(tidy, 1, 3).empty


def test_script_is_thin_and_lints():
    script = REPO / "workflow" / "scripts" / "experiment_figure.py"
    assert "experiment_figure(" in script.read_text()
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff not installed")
    files = [REPO / "src/nnflow/report/figures", REPO / "src/nnflow/report/experiment.py", script,
             Path(__file__)]
    res = subprocess.run([ruff, "check", *map(str, files)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_plateau_epoch_ignores_a_slow_creep_to_the_end():
    """A curve that jumps to 83% by epoch 50 and then creeps up 0.4 points over 350
    epochs has its plateau at epoch 50, not at its argmax near the end."""
    epochs = np.arange(1, 401)
    acc = np.where(epochs < 50, 0.83 * epochs / 50, 0.83 + 0.004 * (epochs - 50) / 350)
    curve = pd.DataFrame({"epoch": epochs, "mean": acc})
    assert common.plateau_epoch(curve, window=1, tolerance=0.005) == 50
    assert common.smoothed_peak_epoch(curve, window=1) == 400
    assert common.plateau_epoch(curve, window=1, tolerance=0.0) == 400


# ---------------------------------------------------------------------------------------------
# differences judged against the seed spread
# ---------------------------------------------------------------------------------------------


def test_seed_separation_needs_non_overlapping_seed_ranges():
    assert common.seed_separation([95.6, 95.7, 95.5], [95.4, 95.3, 95.35]) == "higher"
    assert common.seed_separation([95.4, 95.3], [95.6, 95.5]) == "lower"
    # +0.07 points on the means, but the seeds' ranges overlap
    assert common.seed_separation([95.61, 95.50, 95.72], [95.54, 95.45, 95.63]) == "within spread"
    assert common.seed_separation([95.6], [95.5, 95.4]) == "single seed"
    assert common.seed_separation([], [95.5]) == "n/a"
    verdict, clause = common.compare_seeds("adam", [37.1, 36.9], "rmsprop", [36.5, 37.0])
    assert verdict == "within spread"
    assert clause == ("no difference beyond seed spread between adam and rmsprop "
                      "(37.00% vs 36.75%, +0.25 points)")


def test_mnist_cost_calls_a_difference_inside_the_seed_spread_none(tmp_path):
    runs = []
    finals = {"quadratic": (0.9554, 0.9545, 0.9563), "cross_entropy": (0.9561, 0.9550, 0.9572)}
    for cost, per_seed in finals.items():
        for seed, final in enumerate(per_seed, start=1):
            test = np.array([0.90, 0.94, final])
            params = {"cost": cost, "weight_init": "default", "sizes": [784, 30, 10]}
            runs.append(write_run(tmp_path, "mnist_cost", f"cost={cost}+weight_init=default", seed, params,
                                  network2_wide(test, test + 0.01)))
    numbers, caption = run_figure(tmp_path, "mnist_cost", runs)
    assert numbers["ce_minus_quadratic_points_default"] == pytest.approx(0.07)
    assert numbers["ce_vs_quadratic_default"] == "within spread"
    text = " ".join(caption.split())
    assert ("with default initialisation no difference beyond seed spread between cross-entropy and "
            "quadratic cost (95.61% vs 95.54%, +0.07 points)") in text
    assert "ahead" not in text
    assert common.SEED_SPREAD_RULE in text


def test_update_rules_name_no_winner_inside_the_seed_spread(tmp_path):
    runs = []
    finals = {"rmsprop": (0.366, 0.360, 0.372), "adam": (0.370, 0.364, 0.376)}
    for rule, per_seed in finals.items():
        for seed, final in enumerate(per_seed, start=1):
            params = {"update_rule": rule, "learning_rate": 1e-3}
            runs.append(write_run(tmp_path, "cifar_optimizers", f"update_rule={rule}", seed, params,
                                  solver_wide([0.1, 0.3, 0.35], [0.1, 0.3, final], [1.9, 1.5])))
    numbers, caption = run_figure(tmp_path, "cifar_optimizers", runs)
    assert numbers["best_rule"] == "adam" and numbers["best_margin_points"] == pytest.approx(0.4)
    assert numbers["best_vs_runner_up"] == "within spread"
    text = " ".join(caption.split())
    assert ("adam has the highest mean final validation accuracy, but no difference beyond seed spread "
            "between adam and rmsprop (37.00% vs 36.60%, +0.40 points)") in text
    assert "ahead" not in text


# ---------------------------------------------------------------------------------------------
# axes that show each question's evidence
# ---------------------------------------------------------------------------------------------


def saved_figures(monkeypatch) -> list:
    saved = []
    save = report_experiment.save_figure

    def record(fig, *args, **kwargs):
        saved.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(report_experiment, "save_figure", record)
    return saved


def test_cost_figure_shows_every_epoch_and_zooms_in_a_second_row(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    E, runs = 12, []
    for cost, start in (("quadratic", 0.60), ("cross_entropy", 0.90)):
        for seed in (1, 2):
            test = 0.95 - (0.95 - start) * np.exp(-np.arange(E) / 2) + 0.001 * seed
            params = {"cost": cost, "weight_init": "large", "sizes": [784, 30, 10]}
            runs.append(write_run(tmp_path, "mnist_cost", f"cost={cost}+weight_init=large", seed, params,
                                  network2_wide(test, test)))
    run_figure(tmp_path, "mnist_cost", runs)
    (fig,) = saved
    full_test, full_train, zoom_test, zoom_train = fig.axes[:4]
    for full in (full_test, full_train):  # the slow first epochs of the quadratic cost are in view
        assert full.get_xlim()[0] <= 1 and full.get_xlim()[1] >= E
        assert full.get_ylim()[0] <= 60.1
    for full, zoom in ((full_test, zoom_test), (full_train, zoom_train)):  # the later epochs, zoomed
        lo, hi = zoom.get_ylim()
        assert zoom.get_xlim()[0] > 1 and hi <= 100
        assert hi - lo < 0.75 * (full.get_ylim()[1] - full.get_ylim()[0])
    assert "every epoch" in full_test.get_title() and "zoomed" in zoom_test.get_title()


def test_overfitting_figure_shows_every_epoch_and_marks_from_epoch(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    E, runs = 40, []
    e = np.arange(1, E + 1, dtype=float)
    for lmbda, top in ((0.0, 0.80), (0.1, 0.85)):
        for seed in (1, 2):
            test = top - 0.3 * np.exp(-e / 5) + 0.001 * seed
            params = {"lmbda": lmbda, "cost": "cross_entropy", "train_size": 1000}
            runs.append(write_run(tmp_path, "mnist_overfitting", f"lmbda={lmbda}", seed, params,
                                  network2_wide(test, np.minimum(1.0, 0.6 + 0.02 * e), 2.0 / e + lmbda)))
    numbers, caption = run_figure(tmp_path, "mnist_overfitting", runs, {"from_epoch": 25})
    assert numbers["base_stop_improving_epoch"] < 25  # the plateau lies before from_epoch
    (fig,) = saved
    for ax in fig.axes[:3]:
        curves = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
        assert min(float(np.min(line.get_xdata())) for line in curves) == 1
        marks = [line for line in ax.get_lines() if list(line.get_xdata()) == [25, 25]]
        assert len(marks) == 1, "from_epoch is marked by one vertical line"
    assert "marks epoch 25" in " ".join(caption.split())


def test_cost_figure_of_a_short_run_has_no_zoomed_row(tmp_path, monkeypatch):
    saved = saved_figures(monkeypatch)
    runs = [write_run(tmp_path, "mnist_cost", f"cost={cost}", 1, {"cost": cost, "sizes": [784, 10, 10]},
                      network2_wide(np.array([0.2, 0.3]), np.array([0.25, 0.35])))
            for cost in ("quadratic", "cross_entropy")]
    numbers, caption = run_figure(tmp_path, "mnist_cost", runs)
    (fig,) = saved
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2
    assert "Every epoch is shown (too few epochs for a zoomed row)." in caption


def test_legends_count_one_seed_in_the_singular():
    from nnflow.report.figures.common import n_seeds

    assert (n_seeds(1), n_seeds(3)) == ("n=1 seed", "n=3 seeds")
