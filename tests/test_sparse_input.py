"""The first layer's product over non-zero inputs (nnflow.nn.sparse_input) against NumPy's."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from nnflow.nn import blas, network2, network2_kernel, sparse_input
from nnflow.runtime import KernelChoiceError

pytest.importorskip("numba")
threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def one_blas_thread(monkeypatch):
    """The kernel is taken with one BLAS thread (a workflow job's); fresh per-process checks."""
    monkeypatch.setattr(sparse_input, "_blocking", {})
    monkeypatch.setattr(sparse_input, "_checked", {})
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        yield


def _sparse(shape, density, seed=0, dtype=np.float64):
    gen = np.random.default_rng(seed)
    X = gen.normal(size=shape) * (gen.random(shape) < density)
    X[gen.random(shape) < 0.02] = -0.0  # zeros of both signs
    return X.astype(dtype)


def _weights(k, h, seed=1):
    return np.random.default_rng(seed).normal(size=(k, h))


def test_k_blocks_follow_openblas_rule():
    blocks = sparse_input.k_blocks(784, (256, "floor/4")).tolist()
    assert blocks == [[0, 256], [256, 512], [512, 648], [648, 784]]
    assert sparse_input.k_blocks(300, (256, "floor/4")).tolist() == [[0, 152], [152, 300]]
    assert sparse_input.k_blocks(300, (256, "ceil")).tolist() == [[0, 150], [150, 300]]
    assert sparse_input.k_blocks(17, (256, "ceil")).tolist() == [[0, 17]]
    for k in (1, 255, 256, 257, 511, 512, 513, 1023, 3072):
        blocks = sparse_input.k_blocks(k, (256, "floor/8"))
        assert blocks[0, 0] == 0 and blocks[-1, 1] == k and (blocks[1:, 0] == blocks[:-1, 1]).all()


@pytest.mark.parametrize("k, h", [(784, 30), (784, 100), (300, 7), (513, 2), (1000, 17), (20, 5)])
def test_the_product_has_numpys_bits(k, h):
    X = _sparse((301, k), 0.2)
    W = _weights(k, h)
    rows = sparse_input.prepare(X, W)
    assert rows is not None, "the kernel must be taken on this machine's OpenBLAS"
    for start, stop in [(0, 301), (0, 256), (5, 300), (1, 4), (0, 3), (100, 102), (300, 301), (7, 7)]:
        got = rows.matmul(W, start, stop)
        np.testing.assert_array_equal(got, X[start:stop] @ W, strict=True)
    assert sparse_input._checked and all(sparse_input._checked.values())  # the kernel computed them


def test_a_small_odd_data_set_is_calibrated_on_an_even_number_of_rows():
    X, W = _sparse((101, 300), 0.2), _weights(300, 7)
    rows = sparse_input.prepare(X, W)
    assert rows is not None
    np.testing.assert_array_equal(rows.matmul(W), X @ W, strict=True)


def test_a_shape_that_gives_other_bits_falls_back_to_numpy(monkeypatch, caplog):
    X, W = _sparse((64, 784), 0.2), _weights(784, 30)
    rows = sparse_input.prepare(X, W)

    def off_by_one_ulp(index, value, pointer, start, stop, W, acc, out):
        product(index, value, pointer, start, stop, W, acc, out)
        out[0, 0] = np.nextafter(out[0, 0], np.inf)

    product = rows._product
    monkeypatch.setattr(rows, "_product", off_by_one_ulp)
    with caplog.at_level(logging.WARNING, logger="nnflow.nn.sparse_input"):
        first, second = rows.matmul(W, 0, 64), rows.matmul(W, 0, 64)
    np.testing.assert_array_equal(first, X @ W, strict=True)
    np.testing.assert_array_equal(second, X @ W, strict=True)
    assert "other bits than NumPy's" in caplog.text and caplog.text.count("other bits") == 1


def test_weights_that_are_not_finite_take_numpys_product():
    X, W = _sparse((40, 50), 0.2), _weights(50, 6)
    rows = sparse_input.prepare(X, W)
    W[np.flatnonzero(X[3] == 0)[0], 2] = np.inf  # zero times inf is NaN: NumPy's product says so
    with np.errstate(invalid="ignore"):
        got, expected = rows.matmul(W), X @ W
    assert np.isnan(got[3, 2])
    np.testing.assert_array_equal(got, expected, strict=True)


def test_what_the_kernel_does_not_take(monkeypatch):
    W = _weights(50, 6)
    assert sparse_input.prepare(_sparse((40, 50), 0.6), W) is None  # dense
    assert sparse_input.prepare(_sparse((40, 50), 0.2, dtype=np.float32), W.astype(np.float32)) is None
    assert sparse_input.prepare(_sparse((40, 50), 0.2), np.full((50, 6), np.nan)) is None
    monkeypatch.setenv("NNFLOW_KERNELS", "numpy")
    assert sparse_input.prepare(_sparse((40, 50), 0.2), W) is None
    monkeypatch.delenv("NNFLOW_KERNELS")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        if blas.num_threads() == 2:  # on a machine of one core OpenBLAS keeps one
            assert sparse_input.prepare(_sparse((40, 50), 0.2), W) is None


def test_asked_for_by_name_without_numba_is_an_error(monkeypatch):
    monkeypatch.setenv("NNFLOW_KERNELS", "numba")
    monkeypatch.setattr(sparse_input, "_load", lambda: None)
    with pytest.raises(KernelChoiceError, match="numba is not installed"):
        sparse_input.prepare(_sparse((40, 50), 0.2), _weights(50, 6))


def _sgd(path, monkeypatch, cost, d=64, m=10, lmbda=0.1, n=1001, n_eval=333):
    monkeypatch.setenv("NNFLOW_KERNELS", path)
    X, Xe = _sparse((n, d), 0.2, seed=2), _sparse((n_eval, d), 0.2, seed=3)
    gen = np.random.default_rng(4)
    net = network2.Network([d, 12, 5], cost=cost, seed=7)
    net.large_weight_initializer()
    result = net.SGD((X, gen.integers(0, 5, n)), 3, m, 0.5, lmbda=lmbda,
                     evaluation_data=(Xe, gen.integers(0, 5, n_eval)),
                     monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                     monitor_training_cost=True, monitor_training_accuracy=True, seed=3)
    return result, [w.copy() for w in net._Wb]


@pytest.fixture
def sparse_training(monkeypatch):
    """Which runs' first layers summed non-zero inputs alone (fresh per-process checks)."""
    monkeypatch.setattr(network2_kernel, "_sparse_verified", {})
    taken = []
    use_sparse = network2_kernel._Runner.use_sparse

    def spy(self, rows):
        taken.append(use_sparse(self, rows))
        return taken[-1]

    monkeypatch.setattr(network2_kernel._Runner, "use_sparse", spy)
    return taken


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
@pytest.mark.parametrize("d, m, lmbda", [
    (64, 10, 0.1),  # 65 rows of [W; b]: the bias row from the BLAS's edge kernel
    (63, 4, 0.0),   # 64 rows, no weight decay, another mini-batch
])
def test_network2_training_and_monitoring_over_non_zero_inputs_give_numpys_bits(
        cost, d, m, lmbda, monkeypatch, sparse_training):
    checked = sparse_input._checked
    numpy_result, numpy_weights = _sgd("numpy", monkeypatch, cost, d, m, lmbda)
    assert not checked and not sparse_training
    result, weights = _sgd("numba", monkeypatch, cost, d, m, lmbda)
    assert sparse_training == [True]  # the training's first layer took them
    assert checked and all(checked.values())  # 1001 and 333 rows: odd counts, their edge row
    assert result == numpy_result
    for a, b in zip(weights, numpy_weights, strict=True):
        np.testing.assert_array_equal(a, b, strict=True)


def test_an_odd_mini_batch_trains_with_the_dense_products(monkeypatch, sparse_training):
    numpy_result, numpy_weights = _sgd("numpy", monkeypatch, "cross_entropy", m=5)
    result, weights = _sgd("numba", monkeypatch, "cross_entropy", m=5)
    assert sparse_training == [False]
    assert result == numpy_result
    for a, b in zip(weights, numpy_weights, strict=True):
        np.testing.assert_array_equal(a, b, strict=True)


def test_sparse_training_that_gives_other_bits_is_refused(monkeypatch, sparse_training, caplog):
    pointers = network2_kernel._row_pointers

    def one_block_off(index, pointer, blocks):
        shifted = blocks.copy()
        shifted[0, 1] -= 4  # the first block ends early: other sums
        shifted[1, 0] -= 4
        return pointers(index, pointer, shifted)

    numpy_result, numpy_weights = _sgd("numpy", monkeypatch, "cross_entropy", d=600)
    monkeypatch.setattr(network2_kernel, "_row_pointers", one_block_off)
    with caplog.at_level(logging.WARNING, logger="nnflow.nn.network2_kernel"):
        result, weights = _sgd("numba", monkeypatch, "cross_entropy", d=600)
    assert sparse_training == [False]
    assert "over non-zero inputs gave other bits" in caplog.text
    assert result == numpy_result
    for a, b in zip(weights, numpy_weights, strict=True):
        np.testing.assert_array_equal(a, b, strict=True)
