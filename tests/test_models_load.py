"""Every model the trainers write loads with the documented API and predicts as it did when
it was measured; network2.load also reads Nielsen's own JSON files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnflow.files import write_json
from nnflow.nn import network2
from nnflow.nn.costs import CrossEntropyCost, QuadraticCost
from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.model_io import load_model, save_model
from nnflow.train import challenge
from nnflow.train import run as run_module
from nnflow.train.run import train_run

DIM = 30
NET2 = {"sizes": [DIM, 12, 10], "epochs": 3, "mini_batch_size": 10, "eta": 0.5, "lmbda": 0.1,
        "cost": "cross_entropy", "weight_init": "default"}
# batchnorm and dropout: the loaded model needs the running statistics of the saved epoch
SOLVER = {"hidden_dims": [16, 12], "activation": "relu", "weight_init": "he", "normalization": "batchnorm",
          "dropout_keep_ratio": 0.8, "update_rule": "adam", "learning_rate": 1e-3, "lr_decay": 0.9,
          "batch_size": 25, "num_epochs": 4, "num_train_samples": 100}


def _data(seed=1, n=150, dtype=np.float64):
    """Class patterns plus noise: learnable, and noisy enough that validation accuracy wavers."""
    rng = np.random.default_rng(seed)
    patterns = rng.random((10, DIM))

    def make(k):
        y = rng.integers(0, 10, k).astype(np.uint8)
        return np.clip(patterns[y] + 0.6 * rng.standard_normal((k, DIM)), 0, 1).astype(dtype), y

    (Xtr, ytr), (Xv, yv), (Xte, yte) = make(n), make(50), make(50)
    return {"X_train": Xtr, "y_train": ytr, "X_val": Xv, "y_val": yv, "X_test": Xte, "y_test": yte,
            "provenance": {"canonical": False, "note": "test data", "files": []}}


def _outputs(directory):
    names = {"metrics": "metrics.csv", "model": "model.npz", "model_meta": "model.json",
             "run_info": "run.json", "iterations": "iterations.csv"}
    return {k: str(directory / v) for k, v in names.items()}


def _spec(trainer, params, experiment="exp"):
    return {"experiment": experiment, "run_id": f"{experiment}/base/seed=1", "seed": 1,
            "trainer": trainer, "dataset": "mnist", "params": params}


def _last_row(path):
    lines = path.read_text().splitlines()
    return dict(zip(lines[0].split(","), lines[-1].split(","), strict=True))


def _accuracy(predicted, y):
    return float(np.mean(predicted == y))


@pytest.fixture
def data(monkeypatch):
    d = _data()
    monkeypatch.setattr(run_module, "load_dataset", lambda data_dir: d)
    monkeypatch.setattr(challenge, "load_dataset", lambda data_dir: d)
    return d


# ------------------------------------------------------------------------------ network2 runs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_network2_run_model_loads_and_predicts_as_measured(tmp_path, monkeypatch, dtype):
    d = _data(dtype=dtype)
    monkeypatch.setattr(run_module, "load_dataset", lambda data_dir: d)
    train_run(_spec("network2", NET2), "unused", _outputs(tmp_path), None)
    net = network2.load(tmp_path / "model")
    assert net.dtype == dtype and net.sizes == NET2["sizes"] and net.cost is CrossEntropyCost
    predicted = np.argmax(net.feedforward(d["X_test"]), axis=1)
    assert _accuracy(predicted, d["y_test"]) == float(_last_row(tmp_path / "metrics.csv")["test_accuracy"])
    arrays, meta = load_model(tmp_path / "model")
    assert meta["dtype"] == np.dtype(dtype).name
    a = d["X_test"].T
    for i in range(2):  # Nielsen's feedforward from the saved arrays
        a = 1 / (1 + np.exp(-(arrays[f"w{i}"] @ a + arrays[f"b{i}"])))
    np.testing.assert_allclose(net.feedforward(d["X_test"]), a.T, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_a_network2_file_without_dtype_loads_with_the_dtype_of_its_arrays(tmp_path):
    # what the workflow wrote before the metadata recorded the dtype
    net = network2.Network([4, 3, 2], seed=0, dtype=np.float32)
    arrays = {f"{p}{i}": a for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True))
              for p, a in (("w", w), ("b", b))}
    save_model(tmp_path / "old", arrays, {"kind": "nnflow.network2.Network", "sizes": [4, 3, 2],
                                          "cost": "quadratic"})
    loaded = network2.load(tmp_path / "old")
    assert loaded.dtype == np.float32 and loaded.cost is QuadraticCost
    x = np.linspace(0, 1, 4, dtype=np.float32)
    np.testing.assert_array_equal(loaded.feedforward(x), net.feedforward(x))
    arrays["b1"] = arrays["b1"].astype(np.float64)  # mixed dtypes decide nothing
    save_model(tmp_path / "mixed", arrays, {"kind": "nnflow.network2.Network", "sizes": [4, 3, 2],
                                            "cost": "quadratic"})
    with pytest.raises(ValueError, match=r"mixed\.json: the model metadata has no 'dtype'"):
        network2.load(tmp_path / "mixed")
    save_model(tmp_path / "nocost", arrays, {"kind": "nnflow.network2.Network", "sizes": [4, 3, 2],
                                             "dtype": "float32"})
    with pytest.raises(ValueError, match=r"nocost\.json: the model metadata has no 'cost'"):
        network2.load(tmp_path / "nocost")


# ------------------------------------------------------------------------------ solver runs


def test_a_solver_run_model_holds_the_best_validation_weights_and_the_last_ones(tmp_path, data):
    info = train_run(_spec("solver", SOLVER), "unused", _outputs(tmp_path), None)
    rows = [line.split(",") for line in (tmp_path / "metrics.csv").read_text().splitlines()]
    val = [float(r[rows[0].index("val_accuracy")]) for r in rows[1:]]
    best_epoch = info["best_epoch"]
    assert best_epoch == int(np.argmax(val)) and best_epoch < SOLVER["num_epochs"]  # this data peaks early

    net = FullyConnectedNet.load(tmp_path / "model")
    assert net.normalization == "batchnorm" and net.dropout_keep_ratio == 0.8
    assert net.dims == [DIM, 16, 12, 10]
    # the loaded weights and batchnorm statistics are those measured at the best epoch
    assert _accuracy(net.predict(data["X_val"]), data["y_val"]) == val[best_epoch]
    assert info["best_val_accuracy"] == val[best_epoch]
    last = FullyConnectedNet.load(tmp_path / "model", prefix="last_")
    assert _accuracy(last.predict(data["X_val"]), data["y_val"]) == val[-1]
    meta = json.loads((tmp_path / "model.json").read_text())["metadata"]
    assert meta["best_epoch"] == best_epoch
    assert meta["weights"] == f"best validation accuracy, epoch {best_epoch} of {SOLVER['num_epochs']}"
    assert info["weights"] == meta["weights"]


def test_the_challenge_tests_the_best_validation_weights_once(tmp_path, data):
    spec = _spec("solver", {**SOLVER, "num_epochs": 1}, experiment="search")
    write_json(tmp_path / "chosen.json", {"run_id": spec["run_id"], "spec": spec, "params": spec["params"]})
    outputs = {**_outputs(tmp_path / "final"), "test": str(tmp_path / "final" / "test.json")}
    challenge.train_final(tmp_path / "chosen.json", {"num_epochs": 4}, "unused", outputs)
    test = json.loads((tmp_path / "final" / "test.json").read_text())
    net = FullyConnectedNet.load(tmp_path / "final" / "model")
    assert test["test_accuracy"] == _accuracy(net.predict(data["X_test"]), data["y_test"])
    assert test["val_accuracy"] == _accuracy(net.predict(data["X_val"]), data["y_val"])
    assert test["best_epoch"] < test["epochs"] == 4
    assert test["weights"] == f"best validation accuracy, epoch {test['best_epoch']} of 4"
    last_row = _last_row(tmp_path / "final" / "metrics.csv")
    assert test["last_epoch_val_accuracy"] == float(last_row["val_accuracy"])
    assert test["last_epoch_val_accuracy"] < test["val_accuracy"]


def test_a_saved_fully_connected_net_round_trips(tmp_path):
    net = FullyConnectedNet([5], input_dim=4, num_classes=3, activation="tanh", dtype=np.float32,
                            cost="cross_entropy_sigmoid", reg=0.1, seed=0)
    net.save(tmp_path / "fc", {"note": "mine"})
    loaded = FullyConnectedNet.load(tmp_path / "fc.json")
    assert loaded.config() == net.config()
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(loaded.loss(x), net.loss(x))


def test_a_fully_connected_net_file_names_what_it_lacks(tmp_path):
    net = FullyConnectedNet([5], input_dim=4, num_classes=3, normalization="batchnorm", seed=0)
    arrays = net.arrays()
    meta = {k: v for k, v in net.config().items() if k != "activation"}
    save_model(tmp_path / "noact", arrays, meta)
    with pytest.raises(ValueError, match=r"noact\.json: the model metadata has no 'activation'"):
        FullyConnectedNet.load(tmp_path / "noact")
    del arrays["state_bn1_running_var"]
    save_model(tmp_path / "nostate", arrays, net.config())
    with pytest.raises(ValueError, match=r"nostate.*\['state_bn1_running_var'\] missing"):
        FullyConnectedNet.load(tmp_path / "nostate")
    with pytest.raises(ValueError, match=r"\['last_W1'\] missing"):
        FullyConnectedNet.load(tmp_path / "nostate", prefix="last_")
    with pytest.raises(ValueError, match="not a saved FullyConnectedNet"):
        FullyConnectedNet.load(network2.Network([4, 2], seed=0).save(tmp_path / "n2")[0])


# ------------------------------------------------------------------------------ Nielsen's JSON

# Written as Nielsen's network2.Network.save writes it (json.dump of sizes, weights and biases
# as nested lists, the cost's class name); the numbers are arbitrary.
NIELSEN = {
    "sizes": [3, 2, 2],
    "weights": [[[0.5, -1.0, 0.25], [1.5, 0.75, -0.5]], [[2.0, -1.0], [-0.5, 1.25]]],
    "biases": [[[0.1], [-0.2]], [[0.3], [0.05]]],
    "cost": "QuadraticCost",
}


def _nielsen_feedforward(a):
    """network2.Network.feedforward, written out: a <- sigmoid(w a + b) per layer."""
    for w, b in zip(NIELSEN["weights"], NIELSEN["biases"], strict=True):
        z = [sum(wij * aj for wij, aj in zip(row, a, strict=True)) + bi[0]
             for row, bi in zip(w, b, strict=True)]
        a = [1 / (1 + np.exp(-zi)) for zi in z]
    return a


@pytest.mark.parametrize("name", ["net.json", "net"])  # Nielsen's save takes any file name
def test_network2_load_reads_nielsens_json(tmp_path, name):
    (tmp_path / name).write_text(json.dumps(NIELSEN))
    net = network2.load(tmp_path / name)
    assert net.sizes == [3, 2, 2] and net.cost is QuadraticCost and net.dtype == np.float64
    for x in ([0.2, 0.4, 0.9], [1.0, 0.0, -1.0]):
        column = np.array(x).reshape(3, 1)
        got = net.feedforward(column)
        assert got.shape == (2, 1)
        np.testing.assert_allclose(got.ravel(), _nielsen_feedforward(x), rtol=1e-14)
        assert int(np.argmax(got)) == int(np.argmax(_nielsen_feedforward(x)))
    np.testing.assert_array_equal(net.weights[0], np.array(NIELSEN["weights"][0]))


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r.pop("biases"), r"needs the keys sizes, weights, biases, cost; missing \['biases'\]"),
    (lambda r: r.update(cost="LogLikelihoodCost"), r"cost 'LogLikelihoodCost' unknown"),
    (lambda r: r["weights"][1].pop(), r"weights\[1\] must have shape \(2, 2\), got \(1, 2\)"),
    (lambda r: r["biases"].pop(), r"biases must list 2 arrays"),
    (lambda r: r["weights"][0][0].pop(), r"weights\[0\] is not a numeric array"),
])
def test_a_bad_nielsen_file_is_refused_naming_the_file_and_key(tmp_path, change, message):
    record = json.loads(json.dumps(NIELSEN))
    change(record)
    (tmp_path / "bad.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=message) as excinfo:
        network2.load(tmp_path / "bad.json")
    assert "bad.json" in str(excinfo.value)
