"""network2 costs: values, output-error gradients, L2 terms, extremes, registry."""

import numpy as np
import pytest

from nnflow.nn import costs, layers
from nnflow.nn.gradcheck import eval_numerical_gradient, rel_error


def _one_hot(labels, k):
    y = np.zeros((len(labels), k))
    y[np.arange(len(labels)), labels] = 1.0
    return y


@pytest.fixture
def batch():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((7, 4)) * 2
    y = _one_hot(rng.integers(0, 4, size=7), 4)
    return z, y


def test_quadratic_fn_sums_network2_per_example_costs(batch):
    z, y = batch
    a = layers.sigmoid(z)
    per_example = [0.5 * np.linalg.norm(a[i] - y[i]) ** 2 for i in range(len(a))]
    assert costs.QuadraticCost.fn(a, y) == pytest.approx(sum(per_example), rel=1e-14)
    assert costs.QuadraticCost.mean(a, y) == pytest.approx(np.mean(per_example), rel=1e-14)


def test_cross_entropy_fn_sums_network2_per_example_costs(batch):
    z, y = batch
    a = layers.sigmoid(z)
    per_example = [np.sum(np.nan_to_num(-y[i] * np.log(a[i]) - (1 - y[i]) * np.log(1 - a[i])))
                   for i in range(len(a))]
    assert costs.CrossEntropyCost.fn(a, y) == pytest.approx(sum(per_example), rel=1e-14)
    assert costs.CrossEntropyCost.mean(a, y) == pytest.approx(np.mean(per_example), rel=1e-14)


@pytest.mark.parametrize("cost", [costs.QuadraticCost, costs.CrossEntropyCost])
def test_delta_is_gradient_of_cost_wrt_output_preactivation(batch, cost):
    z, y = batch
    dz_num = eval_numerical_gradient(lambda z: cost.fn(layers.sigmoid(z), y), z.copy())
    dz = cost.delta(z, layers.sigmoid(z), y)
    assert rel_error(dz_num, dz) < 1e-7


def test_l2_cost_gradient_is_lmbda_over_n_times_w():
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]
    lmbda, n = 5.0, 17
    for i, w in enumerate(weights):
        def f(w_i, i=i):
            ws = list(weights)
            ws[i] = w_i
            return costs.l2_cost(ws, lmbda, n)
        assert rel_error(eval_numerical_gradient(f, w.copy()), (lmbda / n) * w) < 1e-7
    expected = 0.5 * (lmbda / n) * sum(np.linalg.norm(w) ** 2 for w in weights)
    assert costs.l2_cost(weights, lmbda, n) == pytest.approx(expected, rel=1e-14)
    assert costs.weight_decay_factor(0.5, lmbda, n) == 1 - 0.5 * (lmbda / n)


def test_cs231n_l2_reg_loss_gradient_is_reg_times_w():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 3))
    dw_num = eval_numerical_gradient(lambda w: costs.l2_reg_loss([w], 0.3), w.copy())
    assert rel_error(dw_num, 0.3 * w) < 1e-7


def test_cross_entropy_is_finite_without_warnings_at_saturation():
    z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    a = layers.sigmoid(z)  # exactly 0 and 1
    y = np.array([[1.0, 0.0], [1.0, 0.0]])
    value = costs.CrossEntropyCost.fn(a, y)
    # row 0 is right (cost 0); row 1 has ln 0 twice: nan_to_num makes each the largest float
    assert value == np.finfo(np.float64).max
    assert costs.CrossEntropyCost.fn(a[:1], y[:1]) == 0.0
    assert costs.CrossEntropyCost.fn(np.array([[0.5]]), np.array([[1.0]])) == np.log(2.0)


def test_get_cost_by_name_and_unknown_name():
    assert costs.get_cost("quadratic") is costs.QuadraticCost
    assert costs.get_cost("cross_entropy") is costs.CrossEntropyCost
    assert costs.get_cost(costs.CrossEntropyCost) is costs.CrossEntropyCost
    with pytest.raises(ValueError, match="allowed values"):
        costs.get_cost("hinge")
    assert costs.cost_name(costs.QuadraticCost) == "quadratic"
