"""FullyConnectedNet: whole-network gradient checks, dtypes, layer gradient norms, errors."""

import numpy as np
import pytest

from nnflow.nn.fc_net import FullyConnectedNet
from nnflow.nn.gradcheck import eval_numerical_gradient, rel_error

N, D, H1, H2, C = 4, 5, 6, 4, 3


def _xy(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.integers(0, C, size=N)


def _check_gradients(model, X, y):
    mask_seed = 99

    def f(_):
        model.rng = np.random.default_rng(mask_seed)  # same dropout mask on every call
        return model.loss(X, y)[0]

    model.rng = np.random.default_rng(mask_seed)
    _, grads = model.loss(X, y)
    for name in sorted(model.params):
        num = eval_numerical_gradient(f, model.params[name], h=1e-5)
        err = rel_error(num, grads[name])
        assert err < 1e-7, (name, err)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("reg", [0.0, 3.14])
def test_whole_network_gradients_each_activation(activation, reg):
    X, y = _xy(1)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, activation=activation,
                              weight_scale=0.7, reg=reg, dtype=np.float64, seed=2)
    _check_gradients(model, X, y)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_whole_network_gradients_with_batchnorm_and_dropout(activation):
    X, y = _xy(3)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, activation=activation,
                              weight_scale=0.7, reg=0.5, normalization="batchnorm",
                              dropout_keep_ratio=0.7, dtype=np.float64, seed=4)
    for i in (1, 2):  # non-trivial gamma/beta
        model.params[f"gamma{i}"] += np.linspace(-0.3, 0.3, model.params[f"gamma{i}"].size)
        model.params[f"beta{i}"] += np.linspace(-0.2, 0.2, model.params[f"beta{i}"].size)
    _check_gradients(model, X, y)


@pytest.mark.parametrize("cost", ["cross_entropy_sigmoid", "quadratic_sigmoid"])
def test_whole_network_gradients_sigmoid_output_costs(cost):
    X, y = _xy(5)
    model = FullyConnectedNet([H1], input_dim=D, num_classes=C, activation="sigmoid",
                              weight_scale=0.7, reg=0.2, dtype=np.float64, seed=6, cost=cost)
    _check_gradients(model, X, y)


def test_initial_softmax_loss_is_log_num_classes_for_small_weights():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 20)), rng.integers(0, 10, size=50)
    model = FullyConnectedNet([30, 30], input_dim=20, num_classes=10, weight_scale=1e-4,
                              dtype=np.float64, seed=0)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(np.log(10), rel=1e-4)


def test_reg_term_is_half_reg_sum_of_squared_weights():
    X, y = _xy(7)
    kwargs = dict(input_dim=D, num_classes=C, weight_scale=0.3, dtype=np.float64, seed=1)
    plain = FullyConnectedNet([H1], **kwargs).loss(X, y)[0]
    model = FullyConnectedNet([H1], reg=2.0, **kwargs)
    expected = plain + 0.5 * 2.0 * (np.sum(model.params["W1"] ** 2)
                                    + np.sum(model.params["W2"] ** 2))
    assert model.loss(X, y)[0] == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_l2_terms_are_the_textbook_expressions_bit_for_bit(normalization):
    """loss + dtype(0.5 reg sum np.sum(W ** 2)) and dW + reg * W, though computed in reused
    work arrays: twice, so that the second step reuses them."""
    X, y = _xy(9)
    kwargs = dict(input_dim=D, num_classes=C, weight_scale=0.3, normalization=normalization, seed=1)
    plain = FullyConnectedNet([H1, H2], **kwargs)
    model = FullyConnectedNet([H1, H2], reg=0.37, **kwargs)  # float32, like the CIFAR runs
    for _ in range(2):
        loss, grads = model.loss(X, y)
        plain_loss, plain_grads = plain.loss(X, y)
        weights = [model.params[f"W{i}"] for i in (1, 2, 3)]
        assert loss == plain_loss + np.float32(0.5 * 0.37 * sum(float(np.sum(w ** 2)) for w in weights))
        for name, g in grads.items():
            expected = plain_grads[name] + 0.37 * model.params[name] if name[0] == "W" else plain_grads[name]
            np.testing.assert_array_equal(g, expected, strict=True)


def test_float32_is_kept_for_scores_loss_and_gradients():
    X, y = _xy(8)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, normalization="batchnorm",
                              dropout_keep_ratio=0.5, seed=0)  # default dtype float32
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.loss(X).dtype == np.float32
    loss, grads = model.loss(X, y)
    assert np.asarray(loss).dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert set(grads) == set(model.params)


def test_layer_gradient_norms_are_bias_gradient_norms():
    X, y = _xy(9)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, activation="sigmoid",
                              reg=0.7, weight_scale=0.5, dtype=np.float64, seed=3)
    loss, grads, norms = model.loss(X, y, return_layer_grads=True)
    assert norms.shape == (3,)
    expected = [np.linalg.norm(grads[f"b{i}"]) for i in (1, 2, 3)]
    np.testing.assert_allclose(norms, expected, rtol=1e-15)
    np.testing.assert_allclose(model.layer_gradient_norms(X, y), expected, rtol=1e-15)


def test_deep_sigmoid_net_early_layers_learn_slower():
    """Nielsen ch. 5: in a deep sigmoid net the first hidden layer's gradient is smallest."""
    rng = np.random.default_rng(0)
    X, y = rng.random((200, 50)), rng.integers(0, 10, size=200)
    model = FullyConnectedNet([30, 30, 30, 30], input_dim=50, num_classes=10,
                              activation="sigmoid", init="network2", dtype=np.float64, seed=1)
    norms = model.layer_gradient_norms(X, y)
    assert norms[0] < norms[1] < norms[2] < norms[3]


def test_test_mode_scores_do_not_consume_randomness_or_update_running_stats():
    X, _ = _xy(10)
    model = FullyConnectedNet([H1], input_dim=D, num_classes=C, normalization="batchnorm",
                              dropout_keep_ratio=0.5, seed=0)
    state = model.rng.bit_generator.state
    before = {k: v.copy() for k, v in model.get_state().items()}
    s1, s2 = model.loss(X), model.loss(X)
    np.testing.assert_array_equal(s1, s2)
    assert model.rng.bit_generator.state == state
    for k, v in model.get_state().items():
        np.testing.assert_array_equal(v, before[k])


def test_initializer_choice_sets_scales():
    he = FullyConnectedNet([400], input_dim=800, init="he", dtype=np.float64, seed=0)
    assert np.std(he.params["W1"]) == pytest.approx(np.sqrt(2 / 800), rel=0.02)
    assert not he.params["b1"].any()
    ws = FullyConnectedNet([400], input_dim=800, weight_scale=0.05, dtype=np.float64, seed=0)
    assert np.std(ws.params["W1"]) == pytest.approx(0.05, rel=0.02)


def test_clear_errors_for_unknown_names_and_wrong_shapes():
    with pytest.raises(ValueError, match="allowed values"):
        FullyConnectedNet([3], activation="softplus")
    with pytest.raises(ValueError, match="allowed values"):
        FullyConnectedNet([3], normalization="layernorm")
    with pytest.raises(ValueError, match="allowed values"):
        FullyConnectedNet([3], init="orthogonal")
    with pytest.raises(ValueError, match="allowed values"):
        FullyConnectedNet([3], cost="hinge")
    model = FullyConnectedNet([3], input_dim=4, num_classes=2)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 4\)"):
        model.loss(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        model.loss(np.zeros((2, 4)), np.array([0, 2]))
