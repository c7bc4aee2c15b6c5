"""Bad input to the library's public functions is refused at the boundary, naming the argument.

Each case calls one public function with one bad argument and checks the exception type
and that the message says which function, which argument and what was given. Wrong types
(a string or a bool where a number belongs) raise TypeError, wrong values ValueError.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnflow.nn import optim
from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.network2 import Network, vectorized_result
from nnflow.nn.solver import Solver
from nnflow.train.checkpoint import Checkpoint
from nnflow.train.trainers.network2 import train_network2
from nnflow.train.trainers.solver import train_solver

D, K, N = 4, 3, 30
_rng = np.random.default_rng(7)
X = _rng.standard_normal((N, D))
Y = _rng.integers(0, K, N)


def _with(array, index, value):
    out = array.copy()
    out[index] = value
    return out


X_NAN = _with(X, (0, 1), np.nan)
X_INF = _with(_with(X, (2, 0), np.inf), (3, 3), -np.inf)


def _net():
    return Network([D, 5, K], seed=0)


def sgd(training_data=(X, Y), epochs=1, mini_batch_size=5, eta=0.1, **kwargs):
    return _net().SGD(training_data, epochs, mini_batch_size, eta, **kwargs)


def _pairs(n=N, bad_index=None, x_len=D, y_len=K):
    """network2's list format: ((D, 1) column, (K, 1) one-hot) pairs, one of them malformed."""
    pairs = []
    for i in range(n):
        bad = i == bad_index
        x = X[i, :x_len if bad else D].reshape(-1, 1)
        pairs.append((x, vectorized_result(int(Y[i]) % (y_len if bad else K), y_len if bad else K)))
    return pairs


def solver(data=None, **settings):
    model = FullyConnectedNet([6], input_dim=D, num_classes=K, seed=0)
    full = {"X_train": X, "y_train": Y, "X_val": X[:10], "y_val": Y[:10], **(data or {})}
    return Solver(model, full, verbose=False, seed=0, **settings)


NETWORK2_CASES = {
    "sgd-monitor-evaluation-accuracy-without-evaluation-data": (
        lambda: sgd(monitor_evaluation_accuracy=True), ValueError,
        ["Network.SGD:", "evaluation_data", "monitor_evaluation_accuracy"]),
    "sgd-monitor-evaluation-cost-without-evaluation-data": (
        lambda: sgd(monitor_evaluation_cost=True), ValueError,
        ["Network.SGD:", "evaluation_data", "monitor_evaluation_cost"]),
    "sgd-empty-arrays": (lambda: sgd((X[:0], Y[:0])), ValueError,
                         ["Network.SGD:", "training_data", "at least one example", "(0, 4)"]),
    "sgd-empty-list": (lambda: sgd([]), ValueError, ["Network.SGD:", "training_data", "empty"]),
    "sgd-nan-inputs": (lambda: sgd((X_NAN, Y)), ValueError,
                       ["Network.SGD:", "training_data inputs", "finite", "1 NaN"]),
    "sgd-inf-evaluation-inputs": (lambda: sgd(evaluation_data=(X_INF, Y)), ValueError,
                                  ["Network.SGD:", "evaluation_data inputs", "2 infinite"]),
    "sgd-nan-targets": (lambda: sgd((X, _with(np.eye(K)[Y], (4, 0), np.nan))), ValueError,
                        ["Network.SGD:", "training_data targets", "1 NaN"]),
    "sgd-negative-eta": (lambda: sgd(eta=-0.5), ValueError, ["Network.SGD:", "eta", "> 0", "-0.5"]),
    "sgd-zero-eta": (lambda: sgd(eta=0.0), ValueError, ["Network.SGD:", "eta", "> 0", "0.0"]),
    "sgd-nan-eta": (lambda: sgd(eta=float("nan")), ValueError, ["Network.SGD:", "eta", "nan"]),
    "sgd-inf-eta": (lambda: sgd(eta=float("inf")), ValueError, ["Network.SGD:", "eta", "inf"]),
    "sgd-string-eta": (lambda: sgd(eta="3"), TypeError, ["Network.SGD:", "eta", "'3'", "str"]),
    "sgd-bool-eta": (lambda: sgd(eta=True), TypeError, ["Network.SGD:", "eta", "True", "bool"]),
    "sgd-negative-lmbda": (lambda: sgd(lmbda=-1.0), ValueError, ["Network.SGD:", "lmbda", ">= 0", "-1.0"]),
    "sgd-negative-epochs": (lambda: sgd(epochs=-2), ValueError, ["Network.SGD:", "epochs", ">= 0", "-2"]),
    "sgd-zero-mini-batch-size": (lambda: sgd(mini_batch_size=0), ValueError,
                                 ["Network.SGD:", "mini_batch_size", ">= 1", "got 0"]),
    "sgd-fractional-mini-batch-size": (lambda: sgd(mini_batch_size=2.5), ValueError,
                                       ["Network.SGD:", "mini_batch_size", "integer", "2.5"]),
    "sgd-more-inputs-than-labels": (lambda: sgd((X, Y[:-1])), ValueError,
                                    ["Network.SGD:", "training_data labels", "(30,)", "(29,)"]),
    "sgd-label-out-of-range": (lambda: sgd((X, _with(Y, 0, K))), ValueError,
                               ["Network.SGD:", "training_data labels", "[0, 3)", "3]"]),
    "sgd-negative-label": (lambda: sgd((X, _with(Y, 0, -1))), ValueError,
                           ["Network.SGD:", "training_data labels", "[0, 3)", "[-1,"]),
    "sgd-fractional-labels": (lambda: sgd((X, Y + 0.5)), ValueError,
                              ["Network.SGD:", "training_data labels", "integer", "float64"]),
    "sgd-input-width": (lambda: sgd((X[:, :3], Y)), ValueError,
                        ["Network.SGD:", "training_data inputs", "(N, 4)", "(30, 3)"]),
    "sgd-list-one-hot-of-wrong-length": (lambda: sgd(_pairs(bad_index=5, y_len=K + 1)), ValueError,
                                         ["Network.SGD:", "training_data[5] y", "(3, 1)", "(4, 1)"]),
    "sgd-list-input-of-wrong-length": (lambda: sgd(_pairs(bad_index=2, x_len=D - 1)), ValueError,
                                       ["Network.SGD:", "training_data[2] x", "4 values", "(3, 1)"]),
    "sgd-list-label-after-one-hot": (lambda: sgd([*_pairs(4), (X[4:5].T, 1)]), ValueError,
                                     ["Network.SGD:", "training_data[4] y", "one-hot", "()"]),
    "sgd-list-item-not-a-pair": (lambda: sgd([*_pairs(4), X[4]]), TypeError,
                                 ["Network.SGD:", "training_data[4]", "(x, y) pair", "ndarray"]),
    "update-mini-batch-negative-eta": (lambda: _net().update_mini_batch((X, Y), -1.0, 0.0, N),
                                       ValueError, ["Network.update_mini_batch:", "eta", "-1.0"]),
    "update-mini-batch-zero-n": (lambda: _net().update_mini_batch((X, Y), 0.1, 0.0, 0),
                                 ValueError, ["Network.update_mini_batch:", "n", ">= 1", "got 0"]),
    "total-cost-negative-lmbda": (lambda: _net().total_cost((X, Y), -0.1), ValueError,
                                  ["Network.total_cost:", "lmbda", "-0.1"]),
    "accuracy-nan-inputs": (lambda: _net().accuracy((X_NAN, Y)), ValueError,
                            ["Network.accuracy:", "data inputs", "1 NaN"]),
}

SOLVER_CASES = {
    "solver-empty-training-data": (lambda: solver({"X_train": X[:0], "y_train": Y[:0]}), ValueError,
                                   ["Solver:", "data['X_train']", "at least one example"]),
    "solver-empty-validation-data": (lambda: solver({"X_val": X[:0], "y_val": Y[:0]}), ValueError,
                                     ["Solver:", "data['X_val']", "at least one example"]),
    "solver-nan-training-inputs": (lambda: solver({"X_train": X_NAN}), ValueError,
                                   ["Solver:", "data['X_train']", "finite", "1 NaN", "of 120"]),
    "solver-inf-validation-inputs": (lambda: solver({"X_val": X_INF[:10]}), ValueError,
                                     ["Solver:", "data['X_val']", "finite", "2 infinite"]),
    "solver-beyond-float32-range": (lambda: solver({"X_train": _with(X, (1, 1), 1e300)}), ValueError,
                                    ["Solver:", "data['X_train']", "1 infinite"]),
    "solver-negative-learning-rate": (lambda: solver(optim_config={"learning_rate": -1e-3}), ValueError,
                                      ["Solver:", "optim_config['learning_rate']", "> 0", "-0.001"]),
    "solver-zero-learning-rate": (lambda: solver(optim_config={"learning_rate": 0}), ValueError,
                                  ["Solver:", "optim_config['learning_rate']", "got 0"]),
    "solver-nan-learning-rate": (lambda: solver(optim_config={"learning_rate": float("nan")}),
                                 ValueError, ["Solver:", "optim_config['learning_rate']", "nan"]),
    "solver-string-learning-rate": (lambda: solver(optim_config={"learning_rate": "3"}), TypeError,
                                    ["Solver:", "optim_config['learning_rate']", "'3'", "str"]),
    "solver-bool-learning-rate": (lambda: solver(optim_config={"learning_rate": True}), TypeError,
                                  ["Solver:", "optim_config['learning_rate']", "True", "bool"]),
    "solver-momentum-one": (lambda: solver(update_rule="sgd_momentum", optim_config={"momentum": 1.0}),
                            ValueError, ["Solver:", "optim_config['momentum']", "[0, 1)", "1.0"]),
    "solver-negative-decay-rate": (lambda: solver(update_rule="rmsprop", optim_config={"decay_rate": -0.1}),
                                   ValueError, ["Solver:", "optim_config['decay_rate']", "-0.1"]),
    "solver-nan-beta2": (lambda: solver(update_rule="adam", optim_config={"beta2": float("nan")}),
                         ValueError, ["Solver:", "optim_config['beta2']", "nan"]),
    "solver-zero-epsilon": (lambda: solver(update_rule="adam", optim_config={"epsilon": 0.0}),
                            ValueError, ["Solver:", "optim_config['epsilon']", "> 0", "0.0"]),
    "solver-negative-lr-decay": (lambda: solver(lr_decay=-0.5), ValueError,
                                 ["Solver:", "lr_decay", "(0, 1]", "-0.5"]),
    "solver-lr-decay-above-one": (lambda: solver(lr_decay=1.5), ValueError,
                                  ["Solver:", "lr_decay", "(0, 1]", "1.5"]),
    "solver-nan-lr-decay": (lambda: solver(lr_decay=float("nan")), ValueError,
                            ["Solver:", "lr_decay", "nan"]),
    "solver-negative-num-epochs": (lambda: solver(num_epochs=-1), ValueError,
                                   ["Solver:", "num_epochs", ">= 0", "-1"]),
    "solver-zero-batch-size": (lambda: solver(batch_size=0), ValueError,
                               ["Solver:", "batch_size", ">= 1", "got 0"]),
    "solver-bool-batch-size": (lambda: solver(batch_size=True), TypeError,
                               ["Solver:", "batch_size", "True", "bool"]),
    "solver-zero-num-train-samples": (lambda: solver(num_train_samples=0), ValueError,
                                      ["Solver:", "num_train_samples", ">= 1"]),
    "solver-labels-shorter-than-inputs": (lambda: solver({"y_train": Y[:-1]}), ValueError,
                                          ["Solver:", "data['y_train']", "(30,)", "(29,)"]),
    "solver-label-out-of-range": (lambda: solver({"y_val": _with(Y[:10], 3, K)}), ValueError,
                                  ["Solver:", "data['y_val']", "[0, 3)"]),
    "solver-fractional-labels": (lambda: solver({"y_train": Y.astype(float)}), ValueError,
                                 ["Solver:", "data['y_train']", "integer", "float64"]),
    "solver-input-width": (lambda: solver({"X_train": X[:, :3]}), ValueError,
                           ["Solver:", "data['X_train']", "(N, 4)", "(30, 3)"]),
    "fc-net-loss-no-examples": (
        lambda: FullyConnectedNet([6], input_dim=D, num_classes=K, seed=0).loss(X[:0], Y[:0]),
        ValueError, ["FullyConnectedNet.loss:", "X", "at least one example", "(0, 4)"]),
}

W, DW = np.ones((3, 2)), np.full((3, 2), 0.1)
OPTIM_CASES = {
    f"{rule}-{key}-{value}": (lambda rule=rule, key=key, value=value: optim.UPDATE_RULES[rule](
        W.copy(), DW, {key: value}), error, [f"{rule}:", f"config['{key}']", repr(value)])
    for rule, key, value, error in [
        ("sgd", "learning_rate", float("nan"), ValueError),
        ("sgd", "learning_rate", "0.1", TypeError),
        ("sgd_momentum", "momentum", -0.1, ValueError),
        ("rmsprop", "decay_rate", 1.0, ValueError),
        ("rmsprop", "epsilon", 0.0, ValueError),
        ("adam", "beta1", 1.0, ValueError),
        ("adam", "beta2", 1.5, ValueError),
        ("adam", "learning_rate", -1e-3, ValueError),
    ]
}



def sign_sgd(w, dw, config=None):
    """A rule added the documented way: its own function, starting with ``_prepare``."""
    w, dw, config = optim._prepare(w, dw, config)
    w -= config.setdefault("learning_rate", 1e-2) * np.sign(dw)
    return w, config


OPTIM_CASES["added-rule-negative-learning-rate"] = (
    lambda: sign_sgd(W.copy(), DW, {"learning_rate": -0.1}), ValueError,
    ["update rule:", "config['learning_rate']", "-0.1"])

TINY_DATA = {"X_train": X, "y_train": Y.astype(np.uint8), "X_val": X[:10], "y_val": Y[:10].astype(np.uint8),
             "X_test": X[:10], "y_test": Y[:10].astype(np.uint8), "provenance": {"num_classes": K}}
NET2_PARAMS = {"sizes": [D, 5, K], "epochs": 2, "mini_batch_size": 5, "eta": 0.5, "cost": "cross_entropy"}
SOLVER_PARAMS = {"hidden_dims": [6], "learning_rate": 1e-2, "batch_size": 10, "num_epochs": 2}


def _run(trainer, params, data=TINY_DATA):
    spec = {"experiment": "bad", "run_id": "bad/x/seed=1", "seed": 1, "trainer": trainer,
            "dataset": "tiny", "params": params}
    train = {"network2": train_network2, "solver": train_solver}[trainer]
    return train(spec, data, Checkpoint(None, spec))


TRAINER_CASES = {
    "network2-run-negative-eta": (lambda: _run("network2", {**NET2_PARAMS, "eta": -0.5}), ValueError,
                                  ["Network.SGD:", "eta", "-0.5"]),
    "network2-run-string-epochs": (lambda: _run("network2", {**NET2_PARAMS, "epochs": "2"}), TypeError,
                                   ["train_network2:", "params['epochs']", "'2'"]),
    "network2-run-nan-test-data": (lambda: _run("network2", NET2_PARAMS, {**TINY_DATA, "X_test": X_NAN[:10]}),
                                   ValueError, ["Network.SGD:", "evaluation_data inputs", "1 NaN"]),
    "network2-run-empty-training-subset": (lambda: _run("network2", {**NET2_PARAMS, "train_size": 0}),
                                           ValueError, ["Network.SGD:", "training_data", "at least one"]),
    "solver-run-string-learning-rate": (lambda: _run("solver", {**SOLVER_PARAMS, "learning_rate": "3"}),
                                        TypeError, ["Solver:", "optim_config['learning_rate']", "'3'"]),
    "solver-run-negative-num-epochs": (lambda: _run("solver", {**SOLVER_PARAMS, "num_epochs": -1}),
                                       ValueError, ["train_solver:", "params['num_epochs']", "-1"]),
    "solver-run-lr-decay-above-one": (lambda: _run("solver", {**SOLVER_PARAMS, "lr_decay": 2.0}),
                                      ValueError, ["Solver:", "lr_decay", "2.0"]),
    "solver-run-nan-validation-data": (
        lambda: _run("solver", SOLVER_PARAMS, {**TINY_DATA, "X_val": X_NAN[:10]}),
        ValueError, ["Solver:", "data['X_val']", "1 NaN"]),
}

CASES = {**NETWORK2_CASES, **SOLVER_CASES, **OPTIM_CASES, **TRAINER_CASES}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_refused_naming_the_argument(case):
    call, error, fragments = CASES[case]
    with pytest.raises(error) as raised:
        call()
    message = str(raised.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{missing} not in {message!r}"


def test_nan_input_is_an_error_but_a_huge_learning_rate_is_a_diverged_run():
    """Divergence is a result (recorded, status "diverged"); NaN in the data is an input error."""
    with pytest.raises(ValueError, match=r"training_data inputs must hold finite values"):
        _net().SGD((X_NAN, Y), 3, 5, 0.5, return_status=True)
    status = _net().SGD((X, Y), 3, 5, 1e100, lmbda=1.0, return_status=True)[-1]
    assert status["status"] == "diverged"
    with pytest.raises(ValueError, match=r"data\['X_train'\] must hold finite values"):
        solver({"X_train": X_NAN})
    diverged = solver(update_rule="sgd", optim_config={"learning_rate": 1e200}, num_epochs=2).train()
    assert diverged.status == "diverged"

