"""Solver: learning, determinism, checkpoint/resume equality, divergence, dtypes, errors."""

import json
import logging

import numpy as np
import pytest

from nnflow.nn import network2
from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.model_io import load_model, save_model
from nnflow.nn.solver import Solver

D, C = 12, 3


def _data(n_train=240, n_val=60, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((C, D)) * 2.0

    def draw(n):
        y = rng.integers(0, C, size=n)
        return (centers[y] + rng.standard_normal((n, D))).astype(dtype), y

    X_train, y_train = draw(n_train)
    X_val, y_val = draw(n_val)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def _model(dtype=np.float64, **kw):
    kw.setdefault("weight_scale", 0.1)
    return FullyConnectedNet([16, 8], input_dim=D, num_classes=C, dtype=dtype, seed=5, **kw)


def _solver(model, data, **kw):
    settings = dict(update_rule="adam", optim_config={"learning_rate": 5e-3}, lr_decay=0.9,
                    batch_size=25, num_epochs=4, num_train_samples=100, verbose=False, seed=1)
    settings.update(kw)
    return Solver(model, data, **settings)


HISTORIES = ("loss_history", "train_acc_history", "val_acc_history", "train_cost_history",
             "val_cost_history", "lr_history")


def test_solver_learns_and_records_histories():
    data = _data()
    solver = _solver(_model(), data, optim_config={"learning_rate": 2e-2}).train()
    assert solver.status == "completed"
    assert len(solver.loss_history) == 4 * (240 // 25)
    for name in ("train_acc_history", "val_acc_history", "train_cost_history",
                 "val_cost_history", "lr_history", "epoch_time_history"):
        assert len(getattr(solver, name)) == 5, name
    assert solver.val_acc_history[-1] > 0.8 > solver.val_acc_history[0]
    assert solver.val_cost_history[-1] < solver.val_cost_history[0]
    assert solver.best_val_acc == max(solver.val_acc_history)
    assert solver.lr_history[1:] == pytest.approx([2e-2 * 0.9**k for k in range(4)], rel=1e-15)
    best = solver.best_epoch
    assert solver.val_acc_history[best] == solver.best_val_acc
    assert set(solver.best_params) == set(solver.model.params)


def test_epoch_shuffle_walks_whole_training_set_each_epoch():
    data = _data(n_train=110)
    solver = _solver(_model(), data, sampling="epoch_shuffle", num_epochs=2).train()
    assert len(solver.loss_history) == 2 * 5  # ceil(110 / 25)


def test_same_seed_and_config_give_bit_identical_runs():
    data = _data()
    runs = [_solver(_model(dropout_keep_ratio=0.8), data).train() for _ in range(2)]
    for name in HISTORIES:
        assert getattr(runs[0], name) == getattr(runs[1], name), name
    for k in runs[0].model.params:
        np.testing.assert_array_equal(runs[0].model.params[k], runs[1].model.params[k])


@pytest.mark.parametrize("sampling", ["with_replacement", "epoch_shuffle"])
def test_resumed_run_is_bit_identical_to_uninterrupted_run(tmp_path, sampling):
    data = _data()
    kw = dict(normalization="batchnorm", dropout_keep_ratio=0.8)
    full = _solver(_model(**kw), data, sampling=sampling).train()

    first = _solver(_model(**kw), data, sampling=sampling, num_epochs=2,
                    checkpoint_path=tmp_path / "ckpt").train()
    assert first.epoch == 2
    # a differently initialised model: everything must come from the checkpoint
    other = FullyConnectedNet([16, 8], input_dim=D, num_classes=C, dtype=np.float64, seed=77,
                              weight_scale=0.1, **kw)
    resumed = _solver(other, data, sampling=sampling, seed=123).resume(tmp_path / "ckpt")
    resumed.train()
    assert resumed.status == "completed" and resumed.epoch == 4
    for name in HISTORIES:
        assert getattr(resumed, name) == getattr(full, name), name
    for k in full.model.params:
        np.testing.assert_array_equal(resumed.model.params[k], full.model.params[k])
    for k, v in full.model.get_state().items():
        np.testing.assert_array_equal(resumed.model.get_state()[k], v)
    assert resumed.best_val_acc == full.best_val_acc


# validation accuracy peaks at epoch 2 (100%) and falls after it: best and last weights differ
PEAKING = dict(n_train=60, seed=2)
PEAKING_SOLVER = dict(num_epochs=6, optim_config={"learning_rate": 2e-2})


def _assert_equal_arrays(a, b):
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_train_ends_with_the_best_validation_parameters_as_cs231n():
    """CS231n's Solver.train ends with ``model.params = best_params``; the last epoch's stay
    in last_params; restore_best=False keeps them in the model."""
    data = _data(**PEAKING)
    solver = _solver(_model(normalization="batchnorm"), data, **PEAKING_SOLVER).train()
    k = solver.best_epoch
    assert 0 < k < 6 and solver.val_acc_history[k] == max(solver.val_acc_history)
    _assert_equal_arrays(solver.model.params, solver.best_params)
    # the best parameters and batchnorm statistics are the model's after epoch k ...
    upto_best = _solver(_model(normalization="batchnorm"), data, **{**PEAKING_SOLVER, "num_epochs": k},
                        restore_best=False).train()
    _assert_equal_arrays(solver.model.params, upto_best.model.params)
    _assert_equal_arrays(solver.model.get_state(), upto_best.model.get_state())
    assert solver.check_accuracy(data["X_val"], data["y_val"])[0] == solver.best_val_acc
    # ... and the last epoch's are those a run without the restore ends with
    no_restore = _solver(_model(normalization="batchnorm"), data, **PEAKING_SOLVER,
                         restore_best=False).train()
    _assert_equal_arrays(solver.last_params, no_restore.model.params)
    _assert_equal_arrays(solver.last_state, no_restore.model.get_state())
    assert no_restore.last_params is None
    assert not all(np.array_equal(solver.last_params[p], solver.best_params[p]) for p in solver.best_params)


def test_training_on_after_the_restore_continues_from_the_last_epoch(tmp_path):
    """Raising num_epochs (in place, or in a checkpoint written after the restore) continues
    from the last epoch's parameters, as an uninterrupted run."""
    data = _data(**PEAKING)
    kw = dict(normalization="batchnorm", dropout_keep_ratio=0.8)
    full = _solver(_model(**kw), data, **{**PEAKING_SOLVER, "num_epochs": 8}).train()
    part = _solver(_model(**kw), data, **PEAKING_SOLVER).train()
    part.save_checkpoint(tmp_path / "after_restore")
    part.num_epochs = 8
    resumed = _solver(_model(**kw), data, **{**PEAKING_SOLVER, "num_epochs": 8}).resume(
        tmp_path / "after_restore")
    for other in (part.train(), resumed.train()):
        for name in HISTORIES:
            assert getattr(other, name) == getattr(full, name), name
        _assert_equal_arrays(other.model.params, full.model.params)
        _assert_equal_arrays(other.last_params, full.last_params)
        _assert_equal_arrays(other.model.get_state(), full.model.get_state())


def test_train_until_an_epoch_pauses_and_logs_the_planned_total(caplog):
    data = _data(**PEAKING)
    solver = _solver(_model(), data, **PEAKING_SOLVER, restore_best=False)
    with caplog.at_level(logging.INFO, logger="nnflow.nn.solver"):
        for epoch in range(1, 7):
            solver.train(until_epoch=epoch)
            assert solver.epoch == epoch and solver.status == ("completed" if epoch == 6 else "paused")
    assert [m.split(")")[0] for m in caplog.messages] == [f"(Epoch {k} / 6" for k in range(1, 7)]
    with pytest.raises(ValueError, match="until_epoch must be <= num_epochs=6, got 7"):
        solver.train(until_epoch=7)


def test_checkpoint_files_are_npz_and_json_without_pickle(tmp_path):
    solver = _solver(_model(), _data(), num_epochs=1, checkpoint_path=tmp_path / "c").train()
    meta = json.loads((tmp_path / "c.json").read_text())
    assert meta["metadata"]["epoch"] == 1
    assert meta["metadata"]["rng_state"]["bit_generator"] == "PCG64"
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert "param__W1" in z.files and "optim__W1__m" in z.files
    assert solver.status == "completed"


def test_resume_rejects_mismatched_settings(tmp_path):
    data = _data()
    _solver(_model(), data, num_epochs=1, checkpoint_path=tmp_path / "c").train()
    with pytest.raises(ValueError, match="batch_size"):
        _solver(_model(), data, batch_size=10).resume(tmp_path / "c")


def test_float32_is_kept_end_to_end():
    data = _data(dtype=np.float32)
    solver = _solver(_model(dtype=np.float32, normalization="batchnorm"), data,
                     num_epochs=1).train()
    assert all(p.dtype == np.float32 for p in solver.model.params.values())
    for cfg in solver.optim_configs.values():
        assert cfg["m"].dtype == np.float32 and cfg["v"].dtype == np.float32
    assert all(v.dtype == np.float32 for v in solver.model.get_state().values())
    assert solver.X_train.dtype == np.float32


def test_divergence_stops_with_status_and_epoch():
    data = _data()
    solver = _solver(_model(weight_scale=1.0), data, update_rule="sgd",
                     optim_config={"learning_rate": 1e200}).train()
    assert solver.status == "diverged"
    assert solver.diverged_epoch == 1
    assert 1 <= solver.diverged_iteration <= 240 // 25
    with pytest.raises(ValueError, match="diverged"):
        solver.train()


def test_clear_errors_for_bad_settings():
    data = _data()
    with pytest.raises(ValueError, match="allowed values"):
        _solver(_model(), data, sampling="without_replacement")
    with pytest.raises(ValueError, match="allowed values"):
        _solver(_model(), data, update_rule="adagrad")
    with pytest.raises(ValueError, match="X_val"):
        Solver(_model(), {"X_train": data["X_train"], "y_train": data["y_train"]})
    with pytest.raises(ValueError, match="y_train"):
        Solver(_model(), dict(data, y_train=data["y_train"][:-1]))


def test_model_io_round_trip_and_checksum(tmp_path):
    params = {"W1": np.arange(6, dtype=np.float32).reshape(2, 3), "b1": np.zeros(3)}
    npz, js = save_model(tmp_path / "m.npz", params, {"note": "x", "sizes": [2, 3]})
    assert npz.name == "m.npz" and js.name == "m.json"
    loaded, meta = load_model(tmp_path / "m")
    assert meta == {"note": "x", "sizes": [2, 3]}
    assert loaded["W1"].dtype == np.float32
    np.testing.assert_array_equal(loaded["W1"], params["W1"])
    save_model(tmp_path / "other", {"W1": np.ones(2)}, {})
    (tmp_path / "m.npz").write_bytes((tmp_path / "other.npz").read_bytes())
    with pytest.raises(ValueError, match="checksum"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("cost", ["cross_entropy", "quadratic"])
def test_solver_as_network2_engine_reproduces_network2_sgd(cost):
    """sigmoid FullyConnectedNet + reg=lmbda/n + sgd + epoch_shuffle == network2.SGD."""
    data = _data(n_train=53)
    n, eta, lmbda, sizes = 53, 0.5, 2.0, [D, 7, C]
    net = network2.Network(sizes, cost=cost, seed=3)
    model = FullyConnectedNet(sizes[1:-1], input_dim=D, num_classes=C, activation="sigmoid",
                              cost=f"{cost}_sigmoid", reg=lmbda / n, dtype=np.float64, seed=0)
    for i in range(len(sizes) - 1):
        model.params[f"W{i + 1}"] = net.weights[i].T.copy()
        model.params[f"b{i + 1}"] = net.biases[i].ravel().copy()
    # no evaluation subsets: the generator draws only one permutation per epoch, as network2;
    # network2 ends with the last epoch's weights: no best-validation restore
    Solver(model, data, update_rule="sgd", optim_config={"learning_rate": eta},
           sampling="epoch_shuffle", batch_size=10, num_epochs=3, num_train_samples=None,
           verbose=False, seed=8, restore_best=False).train()
    net.SGD((data["X_train"], data["y_train"]), 3, 10, eta, lmbda=lmbda, seed=8)
    for i in range(len(sizes) - 1):
        w, b = net.weights[i].T, net.biases[i].ravel()
        assert np.max(np.abs(model.params[f"W{i + 1}"] - w)) < 1e-10 * np.max(np.abs(w))
        assert np.max(np.abs(model.params[f"b{i + 1}"] - b)) < 1e-10 * np.max(np.abs(b))
