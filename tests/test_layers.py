"""Layers: centred finite-difference gradient checks, stability and errors."""

import numpy as np
import pytest

from nnflow.nn import layers
from nnflow.nn.gradcheck import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

TOL = 1e-7


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_affine_forward_matches_explicit_sum_and_flattens_input(rng):
    x = rng.standard_normal((2, 3, 4))
    w = rng.standard_normal((12, 5))
    b = rng.standard_normal(5)
    out, _ = layers.affine_forward(x, w, b)
    expected = np.array([[sum(x[n].ravel()[d] * w[d, m] for d in range(12)) + b[m]
                          for m in range(5)] for n in range(2)])
    assert out.shape == (2, 5)
    assert rel_error(expected, out) < 1e-12


def test_affine_backward_gradients(rng):
    x = rng.standard_normal((10, 2, 3))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((10, 5))
    dx_num = eval_numerical_gradient_array(lambda x: layers.affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: layers.affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: layers.affine_forward(x, w, b)[0], b, dout)
    dx, dw, db = layers.affine_backward(dout, layers.affine_forward(x, w, b)[1])
    assert dx.shape == x.shape
    assert rel_error(dx_num, dx) < TOL
    assert rel_error(dw_num, dw) < TOL
    assert rel_error(db_num, db) < TOL


@pytest.mark.parametrize("name", ["sigmoid", "relu", "tanh"])
def test_activation_backward_gradients(rng, name):
    forward = getattr(layers, f"{name}_forward")
    backward = getattr(layers, f"{name}_backward")
    x = rng.standard_normal((6, 7))
    if name == "relu":  # keep every input at least 0.1 away from the kink
        x = np.sign(x) * (np.abs(x) + 0.1)
    dout = rng.standard_normal(x.shape)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x)[0], x, dout)
    dx = backward(dout, forward(x)[1])
    assert rel_error(dx_num, dx) < TOL


def test_sigmoid_matches_definition_and_is_stable_at_extremes():
    x = np.array([-1000.0, -745.0, -40.0, -1.0, 0.0, 2.0, 40.0, 1000.0])
    with np.errstate(over="ignore"):
        naive = 1.0 / (1.0 + np.exp(-x))
    s = layers.sigmoid(x)  # warnings are errors in this suite
    assert np.all(np.isfinite(s))
    moderate = np.abs(x) <= 40
    assert np.allclose(s[moderate], naive[moderate], rtol=1e-14, atol=0)
    assert s[0] == 0.0 and s[-1] == 1.0
    # small outputs keep full relative precision: sigma(-40) = e^-40 / (1 + e^-40)
    assert s[2] == pytest.approx(np.exp(-40.0) / (1 + np.exp(-40.0)), rel=1e-14)


def test_sigmoid_keeps_float32():
    x = np.linspace(-100, 100, 11, dtype=np.float32)
    assert layers.sigmoid_forward(x)[0].dtype == np.float32
    assert layers.relu_forward(x)[0].dtype == np.float32
    assert layers.tanh_forward(x)[0].dtype == np.float32


def test_softmax_loss_value_and_gradient(rng):
    x = rng.standard_normal((8, 5))
    y = rng.integers(0, 5, size=8)
    loss, dx = layers.softmax_loss(x, y)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(8), y])), rel=1e-13)
    dx_num = eval_numerical_gradient(lambda x: layers.softmax_loss(x, y)[0], x)
    assert rel_error(dx_num, dx) < TOL


def test_softmax_loss_uniform_scores_gives_log_num_classes():
    loss, _ = layers.softmax_loss(np.zeros((4, 10)), np.array([0, 3, 9, 2]))
    assert loss == pytest.approx(np.log(10.0), rel=1e-15)


def test_softmax_loss_finite_for_extreme_scores():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    loss, dx = layers.softmax_loss(x, np.array([1, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    assert loss == pytest.approx(1000.0, rel=1e-12)  # (2000 + 0) / 2


def test_softmax_loss_rejects_bad_labels():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        layers.softmax_loss(x, np.zeros((3, 1), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        layers.softmax_loss(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        layers.softmax_loss(x, np.array([0, 1, 4]))


def test_affine_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="features per example"):
        layers.affine_forward(np.zeros((2, 3)), np.zeros((4, 5)), np.zeros(5))
    with pytest.raises(ValueError, match="b must have shape"):
        layers.affine_forward(np.zeros((2, 4)), np.zeros((4, 5)), np.zeros(4))


def test_dropout_gradient_with_fixed_mask(rng):
    x = rng.standard_normal((10, 6))
    dout = rng.standard_normal(x.shape)
    param = {"mode": "train", "p": 0.6}

    def f(x):  # a fresh Generator with the same seed draws the same mask
        return layers.dropout_forward(x, param, rng=np.random.default_rng(7))[0]

    _, cache = layers.dropout_forward(x, param, rng=np.random.default_rng(7))
    dx = layers.dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(f, x, dout)
    assert rel_error(dx_num, dx) < TOL
    assert 0 < np.count_nonzero(cache[1]) < x.size


def test_dropout_keeps_expectation_and_is_identity_in_test_mode():
    x = np.ones((500, 400))
    out, _ = layers.dropout_forward(x, {"mode": "train", "p": 0.3}, rng=np.random.default_rng(0))
    assert abs(out.mean() - 1.0) < 0.02
    assert abs(np.mean(out == 0) - 0.7) < 0.01
    out_test, _ = layers.dropout_forward(x, {"mode": "test", "p": 0.3})
    assert out_test is x


def test_dropout_rejects_bad_parameters():
    with pytest.raises(ValueError, match="keep probability"):
        layers.dropout_forward(np.ones(3), {"p": 0.0})
    with pytest.raises(ValueError, match="mode"):
        layers.dropout_forward(np.ones(3), {"p": 0.5, "mode": "eval"})
    with pytest.raises(ValueError, match="rng"):
        layers.dropout_forward(np.ones(3), {"p": 0.5, "mode": "train"})


def test_batchnorm_train_forward_normalises_and_updates_running_stats(rng):
    x = 3.0 + 2.0 * rng.standard_normal((200, 3))
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 5.0])
    param = {"mode": "train", "momentum": 0.9}
    out, _ = layers.batchnorm_forward(x, gamma, beta, param)
    assert np.allclose(out.mean(axis=0), beta, atol=1e-12)
    assert np.allclose(out.std(axis=0), gamma, rtol=1e-4)
    assert np.allclose(param["running_mean"], 0.1 * x.mean(axis=0), rtol=1e-12)
    assert np.allclose(param["running_var"], 0.1 * x.var(axis=0), rtol=1e-12)
    out_test, _ = layers.batchnorm_forward(x, gamma, beta, dict(param, mode="test"))
    expected = gamma * (x - param["running_mean"]) / np.sqrt(param["running_var"] + 1e-5) + beta
    assert rel_error(expected, out_test) < 1e-12


@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_backward_gradients(rng, mode):
    n, d = 6, 4
    x = 2.0 * rng.standard_normal((n, d)) + 1.0
    gamma = rng.standard_normal(d)
    beta = rng.standard_normal(d)
    dout = rng.standard_normal((n, d))
    running = {"running_mean": rng.standard_normal(d), "running_var": rng.random(d) + 0.5}

    def param():
        return {"mode": mode, **{k: v.copy() for k, v in running.items()}}

    def fx(x):
        return layers.batchnorm_forward(x, gamma, beta, param())[0]

    def fg(g):
        return layers.batchnorm_forward(x, g, beta, param())[0]

    def fb(b):
        return layers.batchnorm_forward(x, gamma, b, param())[0]

    dx, dgamma, dbeta = layers.batchnorm_backward(
        dout, layers.batchnorm_forward(x, gamma, beta, param())[1])
    assert rel_error(eval_numerical_gradient_array(fx, x, dout), dx) < TOL
    assert rel_error(eval_numerical_gradient_array(fg, gamma, dout), dgamma) < TOL
    assert rel_error(eval_numerical_gradient_array(fb, beta, dout), dbeta) < TOL


def test_batchnorm_rejects_unknown_mode():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        layers.batchnorm_forward(np.ones((2, 2)), np.ones(2), np.zeros(2), {"mode": "eval"})


def test_sigmoid_in_place_output_equals_out_of_place():
    x = np.linspace(-50, 50, 101)
    expected = layers.sigmoid(x)
    y = x.copy()
    assert layers.sigmoid(y, out=y) is y
    np.testing.assert_array_equal(y, expected)
