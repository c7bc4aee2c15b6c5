"""network2's compiled epoch (nnflow.nn.network2_kernel) against the NumPy step it replaces."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from nnflow.nn import blas, kernels, network2, network2_kernel
from nnflow.runtime import KernelChoiceError
from nnflow.workflow import sourcehash as sh

pytest.importorskip("numba")
pytest.importorskip("scipy")


def _data(n, d=12, k=4, seed=0, dtype=np.float64):
    gen = np.random.default_rng(seed)
    X = gen.random((n, d)).astype(dtype)
    return X, gen.integers(0, k, n)


def _train(path, monkeypatch, sizes, cost, dtype=np.float64, m=5, n=103, lmbda=0.0, eta=0.7,
           epochs=3, init="large"):
    """Weights, monitoring lists and status of SGD run with NNFLOW_KERNELS=path, and the
    epochs counted per path."""
    monkeypatch.setenv("NNFLOW_KERNELS", path)
    X, y = _data(n, d=sizes[0], k=sizes[-1], dtype=dtype)
    Xe, ye = _data(31, d=sizes[0], k=sizes[-1], seed=1, dtype=dtype)
    net = network2.Network(sizes, cost=cost, seed=7, dtype=dtype)
    if init == "large":
        net.large_weight_initializer()
    before = kernels.calls()
    result = net.SGD((X, y), epochs, m, eta, lmbda=lmbda, evaluation_data=(Xe, ye),
                     monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                     monitor_training_cost=True, monitor_training_accuracy=True,
                     seed=3, return_status=True)
    return [w.copy() for w in net._Wb], result, kernels.calls_since(before)


@pytest.fixture
def always(monkeypatch):
    """The kernel takes any planned work under auto (it repays starting numba from 4e9)."""
    monkeypatch.setattr(network2_kernel, "START_AFTER", 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
@pytest.mark.parametrize("sizes, m, lmbda", [
    ([12, 8, 4], 5, 0.0),          # 103 = 20 x 5 + 3: a smaller last mini-batch
    ([12, 9, 7, 6, 4], 10, 2.5),   # deeper, with L2 decay
    ([12, 4], 2, 0.1),             # no hidden layer, the smallest mini-batch taken
])
def test_the_compiled_epoch_gives_numpys_bits(dtype, cost, sizes, m, lmbda, monkeypatch):
    numpy_w, numpy_out, numpy_calls = _train("numpy", monkeypatch, sizes, cost, dtype, m, lmbda=lmbda)
    fused_w, fused_out, fused_calls = _train("numba", monkeypatch, sizes, cost, dtype, m, lmbda=lmbda)
    assert numpy_calls == {"numba": 0, "numpy": 3} and fused_calls == {"numba": 3, "numpy": 0}
    assert all(a.dtype == dtype for a in fused_w)
    for a, b in zip(numpy_w, fused_w, strict=True):
        assert np.array_equal(a, b)
    assert numpy_out == fused_out  # every monitored cost and accuracy, and the status


def test_a_diverging_run_diverges_alike(monkeypatch):
    """inf and NaN come out of the compiled epoch as out of NumPy's (no warning either way)."""
    runs = [_train(path, monkeypatch, [12, 8, 4], "quadratic", eta=1e305, epochs=3)
            for path in ("numpy", "numba")]
    assert runs[0][1][-1]["status"] == "diverged" == runs[1][1][-1]["status"]
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        assert np.array_equal(a, b, equal_nan=True)


def test_the_mnist_shape_gives_numpys_bits(monkeypatch):
    """[784, 30, 10] at mini-batch 10, the products' real shapes (other OpenBLAS kernels)."""
    runs = [_train(path, monkeypatch, [784, 30, 10], "cross_entropy", m=10, n=500, epochs=2,
                   init="default") for path in ("numpy", "numba")]
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        assert np.array_equal(a, b)


def test_auto_takes_the_kernel_when_the_planned_work_repays_it(monkeypatch):
    """Planned work = epochs x examples x weights (here 3 x 103 x 140)."""
    monkeypatch.setattr(network2_kernel, "_compiled", None)  # as in a fresh process
    monkeypatch.setattr(network2_kernel, "START_AFTER", 3 * 103 * 140 + 1)
    assert _train("auto", monkeypatch, [12, 8, 4], "quadratic")[2] == {"numba": 0, "numpy": 3}
    monkeypatch.setattr(network2_kernel, "START_AFTER", 3 * 103 * 140)
    assert _train("auto", monkeypatch, [12, 8, 4], "quadratic")[2] == {"numba": 3, "numpy": 0}


@pytest.mark.parametrize("case", ["batch of 1", "layer of 1", "other cost", "no scipy"])
def test_what_the_kernel_does_not_take_runs_numpys_step(case, monkeypatch, always):
    sizes, m, cost = [12, 8, 4], 5, "quadratic"
    if case == "batch of 1":
        m = 1
    elif case == "layer of 1":
        sizes = [12, 1, 4]
    elif case == "other cost":
        class Shifted(network2.CrossEntropyCost):
            pass
        cost = Shifted
    else:
        monkeypatch.setattr(network2, "_EXPIT", False)  # as _expit() leaves it without SciPy
    net = network2.Network(sizes, cost=cost)
    assert network2_kernel.unavailable(net, m) is not None
    for path in ("auto", "numba"):  # not an error under numba: a shape, not the machine
        assert _train(path, monkeypatch, sizes, cost, m=m, epochs=1)[2] == {"numba": 0, "numpy": 1}


def test_a_kernel_that_disagrees_with_numpy_is_not_used(monkeypatch, always, caplog):
    """The once-per-process check: a kernel giving other bits is refused with a warning
    under auto, and is an error naming the reason under NNFLOW_KERNELS=numba."""
    real = network2_kernel._load()[0]

    def off_by_one_ulp(*args):
        real(*args)
        w = args[4][0]
        w.flat[0] = np.nextafter(w.flat[0], np.inf)

    monkeypatch.setattr(network2_kernel, "_load", lambda: (off_by_one_ulp, None))
    monkeypatch.setattr(network2_kernel, "_verified", {})
    with caplog.at_level(logging.WARNING, logger="nnflow.nn.network2_kernel"):
        assert _train("auto", monkeypatch, [12, 8, 4], "quadratic", epochs=1)[2] == {"numba": 0, "numpy": 1}
    assert "other bits than NumPy's step" in caplog.text
    with pytest.raises(KernelChoiceError, match="differ from NumPy's step on this machine"):
        _train("numba", monkeypatch, [12, 8, 4], "quadratic", epochs=1)


def test_without_numpys_gemm_symbols_numpys_step_runs(monkeypatch, always):
    monkeypatch.setattr(network2_kernel, "_compiled", None)
    reason = "NumPy's BLAS (mkl) has no 64-bit-integer cblas_?gemm"
    monkeypatch.setattr(blas, "gemm_symbols", lambda: (None, reason))
    assert _train("auto", monkeypatch, [12, 8, 4], "quadratic", epochs=1)[2] == {"numba": 0, "numpy": 1}
    with pytest.raises(KernelChoiceError, match=r"cannot run: NumPy's BLAS \(mkl\)"):
        _train("numba", monkeypatch, [12, 8, 4], "quadratic", epochs=1)


def test_numpys_own_gemm_is_found():
    """The symbols NumPy's matmul resolved (NumPy >= 2 wheels: scipy-openblas64)."""
    addresses, name = blas.gemm_symbols()
    assert addresses is not None, name
    assert set(addresses) == {"float64", "float32"} and all(addresses.values())


def test_the_jobs_code_hash_covers_the_compiled_epoch():
    closure = sh.closure(["nnflow.train.trainers.network2"])
    assert {"nnflow.nn.network2_kernel", "nnflow.nn.blas"} <= set(closure)


def test_the_compiled_epoch_refuses_indices_outside_the_data(monkeypatch, always):
    """The kernel reads X[perm[i]] unchecked: a bad permutation is an error, not a read
    outside the array."""
    monkeypatch.setenv("NNFLOW_KERNELS", "numba")
    X, y = _data(20)
    net = network2.Network([12, 8, 4], seed=1)
    T = net._one_hot(y)
    runner = network2_kernel.epoch_runner(net, X, T, 5, 0.5, 1.0, epochs=1)
    before = [w.copy() for w in net._Wb]
    bad = (np.arange(21), np.array([0, 3, 20, 1, 2]), np.array([-1, 0, 1, 2, 3]), np.zeros((2, 5), int))
    for perm in bad:
        with pytest.raises(ValueError, match="perm must be indices of the 20 training examples"):
            runner(perm)
    assert all(np.array_equal(a, b) for a, b in zip(before, net._Wb, strict=True))  # nothing trained
    runner(np.arange(20)[::-1])
