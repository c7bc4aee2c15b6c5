"""The Solver's compiled steps (nnflow.nn.fc_kernel) against the NumPy step they replace."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from nnflow.nn import blas, fc_kernel, kernels, network2_kernel
from nnflow.nn.costs import CrossEntropyCost, QuadraticCost
from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.fc_step import FCTrainingStep
from nnflow.nn.solver import Solver
from nnflow.runtime import KernelChoiceError
from nnflow.workflow import sourcehash as sh

pytest.importorskip("numba")
pytest.importorskip("scipy")


def _data(n, d, k, seed=0, dtype=np.float64):
    gen = np.random.default_rng(seed)
    return gen.random((n, d)).astype(dtype), gen.integers(0, k, n)


def _solver(path, monkeypatch, *, hidden=(8, 6), d=12, k=4, n=103, activation="sigmoid",
            cost="cross_entropy_sigmoid", dtype=np.float64, batch_size=5, lr=0.7,
            sampling="epoch_shuffle", epochs=3, stop_on_divergence=True, huge_rows=(),
            update_rule="sgd", lr_decay=1.0, **model_args):
    monkeypatch.setenv("NNFLOW_KERNELS", path)
    X, y = _data(n, d, k, dtype=dtype)
    X[list(huge_rows)] = np.finfo(dtype).max  # finite inputs whose products overflow
    Xv, yv = _data(31, d, k, seed=1, dtype=dtype)
    model = FullyConnectedNet(list(hidden), input_dim=d, num_classes=k, activation=activation,
                              cost=cost, init="network2", dtype=dtype, seed=7, **model_args)
    return Solver(model, {"X_train": X, "y_train": y, "X_val": Xv, "y_val": yv},
                  update_rule=update_rule, optim_config={"learning_rate": lr}, batch_size=batch_size,
                  num_epochs=epochs, sampling=sampling, seed=3, verbose=False, restore_best=False,
                  lr_decay=lr_decay,
                  stop_on_divergence=stop_on_divergence)


def _train(path, monkeypatch, **kw):
    """The trained Solver with NNFLOW_KERNELS=path, and the epochs/updates counted per path."""
    solver = _solver(path, monkeypatch, **kw)
    before = kernels.calls()
    solver.train()
    return solver, kernels.calls_since(before)


def _assert_same(a, b):
    assert a.loss_history == b.loss_history or np.array_equal(a.loss_history, b.loss_history,
                                                               equal_nan=True)
    for name in a.model.params:
        assert np.array_equal(a.model.params[name], b.model.params[name], equal_nan=True), name
    for key in ("train_acc_history", "val_acc_history", "status", "iteration", "epoch",
                "diverged_iteration", "best_epoch"):
        assert getattr(a, key) == getattr(b, key), key
    assert a.rng.bit_generator.state == b.rng.bit_generator.state  # the same draws


@pytest.fixture
def always(monkeypatch):
    """The compiled steps take any planned work under auto (they repay numba from 4e9)."""
    monkeypatch.setattr(network2_kernel, "START_AFTER", 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cost", ["cross_entropy_sigmoid", "quadratic_sigmoid"])
@pytest.mark.parametrize("activation, hidden, batch_size, sampling", [
    ("sigmoid", (8, 6), 5, "epoch_shuffle"),      # 103 = 20 x 5 + 3: a smaller last mini-batch
    ("relu", (9, 7, 5), 10, "with_replacement"),  # deeper; mini-batches drawn with replacement
    ("relu", (), 2, "epoch_shuffle"),             # no hidden layer, the smallest mini-batch taken
])
def test_the_compiled_steps_give_numpys_bits(dtype, cost, activation, hidden, batch_size, sampling,
                                             monkeypatch):
    kw = dict(dtype=dtype, cost=cost, activation=activation, hidden=hidden, batch_size=batch_size,
              sampling=sampling)
    numpy_run, numpy_calls = _train("numpy", monkeypatch, **kw)
    fused_run, fused_calls = _train("numba", monkeypatch, **kw)
    assert numpy_calls["numba"] == 0 and fused_calls["numba"] == 3  # one count per compiled epoch
    assert all(p.dtype == dtype for p in fused_run.model.params.values())
    _assert_same(numpy_run, fused_run)


def test_the_mnist_shape_gives_numpys_bits(monkeypatch):
    """[784, 30, 10] at mini-batch 10, the products' real shapes (other OpenBLAS kernels)."""
    runs = [_train(path, monkeypatch, hidden=(30,), d=784, k=10, n=500, batch_size=10, epochs=2)[0]
            for path in ("numpy", "numba")]
    _assert_same(*runs)


@pytest.mark.parametrize("cost", ["quadratic_sigmoid", "cross_entropy_sigmoid"])
@pytest.mark.parametrize("stop", [True, False])
@pytest.mark.parametrize("sampling", ["epoch_shuffle", "with_replacement"])
def test_a_diverging_run_diverges_alike(cost, stop, sampling, monkeypatch):
    """A step whose loss is not finite (quadratic cost, NaN outputs) is the Solver's: it stops
    there, or skips that update and goes on; the cross-entropy's loss stays finite and the
    run ends diverged by its parameters. Same bits either way, NaN included."""
    with np.errstate(over="ignore", invalid="ignore"):  # the evaluations before the epochs
        huge = (40, 90) if sampling == "epoch_shuffle" else (7, 60)  # in a compiled step, mid-epoch
        runs = [_train(path, monkeypatch, cost=cost, activation="relu", epochs=3, huge_rows=huge,
                       stop_on_divergence=stop, sampling=sampling)[0] for path in ("numpy", "numba")]
    losses = np.array(runs[0].loss_history)
    steps = 21 if sampling == "epoch_shuffle" else 20  # 20 of 5 (then 3), or 20 drawn
    if cost == "quadratic_sigmoid":  # NaN outputs in a step that takes one of the huge rows
        first = int(np.flatnonzero(np.isnan(losses))[0])
        assert first % steps not in (0, 19, 20)  # a compiled step, not an epoch's last
        if stop:  # and the generator left as after drawing up to that step (checked below)
            assert runs[0].status == "diverged" and first == len(losses) - 1
        else:  # that update skipped, training goes on
            assert runs[0].status == "completed" and len(losses) == 3 * steps
    else:
        assert np.isfinite(losses).all() and runs[0].status == ("diverged" if stop else "completed")
    _assert_same(*runs)


@pytest.mark.parametrize("lr, dtype, compiled", [
    (np.float64(0.7), np.float32, False),  # NumPy multiplies in float64: its steps run
    (np.float32(0.7), np.float32, True),
    (np.float32(0.7), np.float64, True),   # an exact float32 -> float64 conversion either way
    (np.longdouble(0.7), np.float64, False),
    (1, np.float32, True),
])
def test_a_learning_rate_numpy_would_promote_keeps_numpys_steps(lr, dtype, compiled, monkeypatch):
    runs = [_train(path, monkeypatch, lr=lr, dtype=dtype, epochs=2, lr_decay=0.9)
            for path in ("numpy", "numba")]
    _assert_same(runs[0][0], runs[1][0])
    assert runs[1][1]["numba"] == (2 if compiled else 0)


@pytest.mark.parametrize("change", ["reg", "cost", "activation", "batch_size", "kernels", "rate"])
def test_what_changes_between_train_calls_is_honoured(change, monkeypatch):
    """A second train() after a change of the model's settings, the batch size, NNFLOW_KERNELS
    or a rate's type gives NumPy's numbers (the choice of the compiled steps is made again)."""
    runs = []
    for path in ("numpy", "numba"):
        solver = _solver(path, monkeypatch, epochs=3)
        solver.train(until_epoch=1)
        if change == "reg":
            solver.model.reg = 0.05
        elif change == "cost":
            solver.model.cost = "quadratic_sigmoid"
        elif change == "activation":
            solver.model.activation = "relu"
        elif change == "batch_size":
            solver.batch_size = 8
        elif change == "kernels" and path == "numba":
            monkeypatch.setenv("NNFLOW_KERNELS", "numpy")
        elif change == "rate":
            for config in solver.optim_configs.values():
                config["learning_rate"] = np.float32(0.3)
        before = kernels.calls()
        solver.train()
        runs.append((solver, kernels.calls_since(before)["numba"]))
    _assert_same(runs[0][0], runs[1][0])
    assert runs[1][1] == (0 if change in ("reg", "kernels") else 2)


def test_many_kernel_calls_an_epoch_give_the_same_bits(monkeypatch):
    """At most OUTPUT_VALUES outputs a kernel call (memory stays bounded): an epoch of many calls."""
    monkeypatch.setattr(fc_kernel, "OUTPUT_VALUES", 3 * 5 * 4)  # 3 steps a call
    _assert_same(_train("numpy", monkeypatch)[0], _train("numba", monkeypatch)[0])


def test_printed_losses_are_the_same(monkeypatch, capsys):
    printed = []
    for path in ("numpy", "numba"):
        solver = _solver(path, monkeypatch, epochs=2)
        solver.verbose, solver.print_every = True, 7
        solver.train()
        printed.append([line for line in capsys.readouterr().err.splitlines() if "Iteration" in line])
    assert printed[0] == printed[1] and len(printed[0]) == 2 * 21 // 7


def test_a_resumed_run_gives_the_uninterrupted_runs_bits(monkeypatch, tmp_path):
    whole, _ = _train("numba", monkeypatch, epochs=3)
    first = _solver("numba", monkeypatch, epochs=3)
    first.checkpoint_path = tmp_path / "ckpt"
    first.train(until_epoch=1)
    second = _solver("numba", monkeypatch, epochs=3)
    second.resume(tmp_path / "ckpt")
    second.train()
    _assert_same(whole, second)


@pytest.mark.parametrize("m, k", [(2, 2), (5, 4), (10, 10), (7, 3), (200, 10), (100, 100)])
@pytest.mark.parametrize("cost", ["cross_entropy_sigmoid", "quadratic_sigmoid"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batched_losses_are_the_steps_losses(m, k, cost, dtype):
    """FCTrainingStep.losses of many steps at once = each step's loss_and_grads, bit for bit,
    saturated outputs (0 and 1: the cross-entropy's nan_to_num fallback) included."""
    gen = np.random.default_rng(m * k)
    n, steps = 3 * m + 1, 6
    X, y = gen.random((n, 3)).astype(dtype), gen.integers(0, k, n)
    model = FullyConnectedNet([4], input_dim=3, num_classes=k, activation="sigmoid", cost=cost,
                              dtype=dtype, seed=1)
    step = FCTrainingStep(model, X, y)
    batches = gen.integers(0, n, (steps, m))
    outputs = gen.random((steps, m, k)).astype(dtype)
    outputs[1, 0, :] = 0.0
    outputs[2, -1, :] = 1.0
    outputs[3] = np.where(gen.random((m, k)) < 0.5, 0.0, 1.0)
    expected = []
    for s in range(steps):
        t = step.T[batches[s]]
        fn = QuadraticCost.fn if cost == "quadratic_sigmoid" else CrossEntropyCost.fn
        with np.errstate(divide="ignore", invalid="ignore"):
            expected.append(model.dtype.type(fn(outputs[s], t) / m))
    with np.errstate(divide="ignore", invalid="ignore"):
        got = step.losses(outputs, batches)
    assert got.dtype == dtype and np.array_equal(got, np.array(expected, dtype=dtype))


@pytest.mark.parametrize("kw", [
    {"cost": "softmax"}, {"activation": "tanh"}, {"reg": 0.1}, {"update_rule": "adam", "lr": 1e-3},
    {"normalization": "batchnorm"}, {"dropout_keep_ratio": 0.5}, {"batch_size": 1}, {"hidden": (1,)},
], ids=["softmax", "tanh", "l2", "adam", "batchnorm", "dropout", "batch of 1", "layer of 1"])
def test_what_the_kernel_does_not_take_runs_numpys_step(kw, monkeypatch, always):
    for path in ("auto", "numba"):  # not an error under numba: a net, not the machine
        solver, calls = _train(path, monkeypatch, epochs=1, **kw)
        assert calls["numba"] == 0 and (solver._runner is None or solver._runner[1] is None)
    assert fc_kernel.unavailable(solver.model, solver.update_rule, solver.batch_size) is not None


def test_run_json_counts_the_runs_own_work(monkeypatch):
    """update_calls: one per compiled epoch, one per update of NumPy's steps (each epoch's
    first mini-batch and its smaller last one); the check against NumPy's step is not counted."""
    monkeypatch.setattr(fc_kernel, "_verified", {})  # the check runs in this training
    assert _train("numba", monkeypatch)[1] == {"numba": 3, "numpy": 6}


def test_auto_takes_the_kernel_when_the_planned_work_repays_it(monkeypatch):
    """Planned work = epochs x examples x weights (here 3 x 103 x 170)."""
    monkeypatch.setattr(fc_kernel, "_compiled", None)  # as in a fresh process
    work = 3 * 103 * ((12 + 1) * 8 + (8 + 1) * 6 + (6 + 1) * 4)
    monkeypatch.setattr(network2_kernel, "START_AFTER", work + 1)
    assert _train("auto", monkeypatch)[1]["numba"] == 0
    monkeypatch.setattr(network2_kernel, "START_AFTER", work)
    assert _train("auto", monkeypatch)[1]["numba"] == 3


def test_without_numpys_gemm_symbols_numpys_step_runs(monkeypatch, always):
    monkeypatch.setattr(fc_kernel, "_compiled", None)
    reason = "NumPy's BLAS (mkl) has no 64-bit-integer cblas_?gemm"
    monkeypatch.setattr(blas, "gemm_symbols", lambda: (None, reason))
    assert _train("auto", monkeypatch, epochs=1)[1]["numba"] == 0
    with pytest.raises(KernelChoiceError, match=r"compiled steps cannot run: NumPy's BLAS \(mkl\)"):
        _train("numba", monkeypatch, epochs=1)


def test_a_kernel_that_disagrees_with_numpy_is_not_used(monkeypatch, always, caplog):
    """The once-per-process check: a kernel giving other bits is refused with a warning
    under auto, and is an error naming the reason under NNFLOW_KERNELS=numba."""
    real = fc_kernel._load()[0]

    def off_by_one_ulp(*args):
        stopped = real(*args)
        w = args[5][0]
        w.flat[0] = np.nextafter(w.flat[0], np.inf)
        return stopped

    monkeypatch.setattr(fc_kernel, "_load", lambda: (off_by_one_ulp, None))
    monkeypatch.setattr(fc_kernel, "_verified", {})
    with caplog.at_level(logging.WARNING, logger="nnflow.nn.fc_kernel"):
        assert _train("auto", monkeypatch, epochs=1)[1]["numba"] == 0
    assert "other bits than NumPy's step" in caplog.text
    with pytest.raises(KernelChoiceError, match="differ from NumPy's step on this machine"):
        _train("numba", monkeypatch, epochs=1)


def test_bad_indices_are_refused_before_the_kernel_reads_them(monkeypatch, always):
    solver = _solver("numba", monkeypatch, epochs=1)
    solver.train()
    runner = solver._runner[1]
    with pytest.raises(ValueError, match="indices of the 103 training examples, got 0..103"):
        runner(np.array([[0, 1, 2, 3, 103]]), 0, 1, 0.1, False)
    with pytest.raises(ValueError, match=r"must be \(steps, 5\)"):
        runner(np.zeros((2, 4), np.int64), 0, 1, 0.1, False)


def test_the_jobs_code_hash_covers_the_compiled_steps():
    closure = sh.closure(["nnflow.train.trainers.solver"])
    assert {"nnflow.nn.fc_kernel", "nnflow.nn.blas"} <= set(closure)
