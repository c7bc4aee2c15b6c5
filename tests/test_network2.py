"""network2 facade: equivalence with Nielsen's per-example algorithm, gradients, API."""

import numpy as np
import pytest

from nnflow.nn import network2
from nnflow.nn.gradcheck import eval_numerical_gradient, rel_error
from nnflow.nn.network2 import CrossEntropyCost, Network, QuadraticCost

SIZES = [6, 5, 4, 3]


# --------------------------------------------------------------------------- reference
# Nielsen's network2 algorithm, written independently of nnflow: column vectors,
# one example at a time, nabla sums, then the L2-decayed update.

def _ref_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _ref_delta(cost_name, z, a, y):
    if cost_name == "quadratic":
        return (a - y) * _ref_sigmoid(z) * (1 - _ref_sigmoid(z))
    return a - y


def _ref_backprop(weights, biases, cost_name, x, y):
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    activation, activations, zs = x, [x], []
    for b, w in zip(biases, weights, strict=True):
        z = np.dot(w, activation) + b
        zs.append(z)
        activation = _ref_sigmoid(z)
        activations.append(activation)
    delta = _ref_delta(cost_name, zs[-1], activations[-1], y)
    nabla_b[-1] = delta
    nabla_w[-1] = np.dot(delta, activations[-2].transpose())
    for layer in range(2, len(weights) + 1):
        sp = _ref_sigmoid(zs[-layer]) * (1 - _ref_sigmoid(zs[-layer]))
        delta = np.dot(weights[-layer + 1].transpose(), delta) * sp
        nabla_b[-layer] = delta
        nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
    return nabla_b, nabla_w


def _ref_update_mini_batch(weights, biases, cost_name, mini_batch, eta, lmbda, n):
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    for x, y in mini_batch:
        dnb, dnw = _ref_backprop(weights, biases, cost_name, x, y)
        nabla_b = [nb + d for nb, d in zip(nabla_b, dnb, strict=True)]
        nabla_w = [nw + d for nw, d in zip(nabla_w, dnw, strict=True)]
    m = len(mini_batch)
    weights = [(1 - eta * (lmbda / n)) * w - (eta / m) * nw
               for w, nw in zip(weights, nabla_w, strict=True)]
    biases = [b - (eta / m) * nb for b, nb in zip(biases, nabla_b, strict=True)]
    return weights, biases


def _ref_sgd(weights, biases, cost_name, training_data, epochs, m, eta, lmbda, rng):
    n = len(training_data)
    for _ in range(epochs):
        perm = rng.permutation(n)
        shuffled = [training_data[i] for i in perm]
        for k in range(0, n, m):
            weights, biases = _ref_update_mini_batch(
                weights, biases, cost_name, shuffled[k:k + m], eta, lmbda, n)
    return weights, biases


def _ref_feedforward(weights, biases, a):
    for b, w in zip(biases, weights, strict=True):
        a = _ref_sigmoid(np.dot(w, a) + b)
    return a


def _rel(a_list, b_list):
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(a_list, b_list,
                                                                                  strict=True))


# --------------------------------------------------------------------------- data

def _data(n, seed=0, sizes=SIZES):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0]))
    labels = rng.integers(0, sizes[-1], size=n)
    return X, labels


def _nielsen_training(X, labels, k):
    return [(x.reshape(-1, 1), network2.vectorized_result(j, k)) for x, j in zip(X, labels,
                                                                                strict=True)]


def _nielsen_eval(X, labels):
    return [(x.reshape(-1, 1), int(j)) for x, j in zip(X, labels, strict=True)]


# --------------------------------------------------------------------------- equivalence

@pytest.mark.parametrize("cost", [QuadraticCost, CrossEntropyCost])
@pytest.mark.parametrize("lmbda", [0.0, 2.5])
def test_update_mini_batch_equals_per_example_network2(cost, lmbda):
    X, labels = _data(7, seed=1)
    batch = _nielsen_training(X, labels, SIZES[-1])
    net = Network(SIZES, cost=cost, seed=3)
    w0 = [w.copy() for w in net.weights]
    b0 = [b.copy() for b in net.biases]
    ref_w, ref_b = _ref_update_mini_batch(w0, b0, cost.name, batch, 0.7, lmbda, 50)
    net.update_mini_batch(batch, 0.7, lmbda, 50)
    assert _rel(net.weights, ref_w) < 1e-12
    assert _rel(net.biases, ref_b) < 1e-12
    assert _rel(net.weights, w0) > 1e-6  # the step did something


@pytest.mark.parametrize("cost", [QuadraticCost, CrossEntropyCost])
def test_sgd_epochs_equal_per_example_network2_with_shared_shuffle(cost):
    X, labels = _data(53, seed=2)  # 53 = 5 full mini-batches of 10 + one of 3
    training = _nielsen_training(X, labels, SIZES[-1])
    net = Network(SIZES, cost=cost, seed=4)
    w0 = [w.copy() for w in net.weights]
    b0 = [b.copy() for b in net.biases]
    ref_w, ref_b = _ref_sgd(w0, b0, cost.name, training, 3, 10, 0.5, 1.0,
                            np.random.default_rng(11))
    net.SGD(training, 3, 10, 0.5, lmbda=1.0, rng=np.random.default_rng(11))
    assert _rel(net.weights, ref_w) < 1e-10
    assert _rel(net.biases, ref_b) < 1e-10


def test_array_and_nielsen_formats_train_identically():
    X, labels = _data(40, seed=3)
    a = Network(SIZES, seed=5)
    b = Network(SIZES, seed=5)
    a.SGD(_nielsen_training(X, labels, SIZES[-1]), 2, 8, 0.3, seed=9)
    b.SGD((X, labels), 2, 8, 0.3, seed=9)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases, strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_monitoring_matches_network2_definitions():
    X, labels = _data(30, seed=4)
    Xe, le = _data(20, seed=5)
    training = _nielsen_training(X, labels, SIZES[-1])
    evaluation = _nielsen_eval(Xe, le)
    lmbda = 3.0
    net = Network(SIZES, cost=CrossEntropyCost, seed=6)
    ec, ea, tc, ta = net.SGD(training, 2, 10, 0.4, lmbda=lmbda, evaluation_data=evaluation,
                             monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                             monitor_training_cost=True, monitor_training_accuracy=True, seed=0)
    assert len(ec) == len(ea) == len(tc) == len(ta) == 2
    w, b = net.weights, net.biases

    def ref_cost(data, onehot):
        total = 0.0
        for x, y in data:
            a = _ref_feedforward(w, b, x)
            y = y if onehot else network2.vectorized_result(y, SIZES[-1])
            total += np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a))) / len(data)
        return total + 0.5 * (lmbda / len(data)) * sum(np.linalg.norm(x) ** 2 for x in w)

    def ref_accuracy(data, onehot):
        return sum(int(np.argmax(_ref_feedforward(w, b, x)) == (np.argmax(y) if onehot else y))
                   for x, y in data)

    assert tc[-1] == pytest.approx(ref_cost(training, True), rel=1e-12)
    assert ec[-1] == pytest.approx(ref_cost(evaluation, False), rel=1e-12)
    assert ta[-1] == ref_accuracy(training, True)
    assert ea[-1] == ref_accuracy(evaluation, False)
    assert isinstance(ta[-1], int)
    assert net.total_cost(evaluation, lmbda, convert=True) == pytest.approx(ec[-1], rel=1e-14)
    assert net.accuracy(training, convert=True) == ta[-1]


def test_monitoring_makes_one_forward_pass_per_data_set_and_epoch(monkeypatch):
    """Cost and accuracy of a data set come from one forward pass (it was two: the
    evaluation of a short epoch cost as much as its training), with the same values as
    the public total_cost/accuracy, which make their own pass."""
    X, labels = _data(30, seed=4)
    Xe, le = _data(20, seed=5)
    net = Network(SIZES, cost=CrossEntropyCost, seed=6)
    passes = []
    original = Network._outputs

    def counted(self, inputs, sparse=None):
        passes.append(inputs.shape[0])
        return original(self, inputs, sparse)

    monkeypatch.setattr(Network, "_outputs", counted)
    ec, ea, tc, ta = net.SGD((X, labels), 3, 10, 0.4, lmbda=2.0, evaluation_data=(Xe, le),
                             monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                             monitor_training_cost=True, monitor_training_accuracy=True, seed=0)
    assert passes == [30, 20] * 3
    assert net.total_cost((Xe, le), 2.0) == ec[-1] and net.accuracy((Xe, le)) == ea[-1]
    assert net.total_cost((X, labels), 2.0) == tc[-1] and net.accuracy((X, labels)) == ta[-1]


# --------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("cost", [QuadraticCost, CrossEntropyCost])
def test_backprop_matches_numerical_gradient_of_regularised_total_cost(cost):
    X, labels = _data(5, seed=6)
    data = (X, labels)
    lmbda = 0.8
    net = Network(SIZES, cost=cost, seed=7)
    nabla_b, nabla_w = net.backprop(X, labels)
    n = X.shape[0]
    for layer in range(len(SIZES) - 1):
        def f_w(_, layer=layer):
            return net.total_cost(data, lmbda)

        num_w = eval_numerical_gradient(f_w, net.weights[layer])  # perturbs the live view
        num_b = eval_numerical_gradient(f_w, net.biases[layer])
        expected_w = nabla_w[layer] / n + (lmbda / n) * net.weights[layer]
        assert rel_error(num_w, expected_w) < 1e-7
        assert rel_error(num_b, nabla_b[layer] / n) < 1e-7


def test_backprop_single_column_example_matches_reference():
    X, labels = _data(1, seed=8)
    net = Network(SIZES, cost=QuadraticCost, seed=8)
    x = X[0].reshape(-1, 1)
    y = network2.vectorized_result(labels[0], SIZES[-1])
    nb, nw = net.backprop(x, y)
    rb, rw = _ref_backprop(list(net.weights), list(net.biases), "quadratic", x, y)
    assert _rel(nb, rb) < 1e-13 and _rel(nw, rw) < 1e-13
    assert nw[0].shape == (SIZES[1], SIZES[0]) and nb[0].shape == (SIZES[1], 1)


# --------------------------------------------------------------------------- API

def test_weights_and_biases_have_network2_shapes_and_write_through():
    net = Network([4, 3, 2], seed=0)
    assert [w.shape for w in net.weights] == [(3, 4), (2, 3)]
    assert [b.shape for b in net.biases] == [(3, 1), (2, 1)]
    net.weights[0] = np.ones((3, 4))
    net.biases = [np.zeros((3, 1)), np.full((2, 1), 2.0)]
    x = np.arange(4.0).reshape(4, 1)
    expected = _ref_sigmoid(net.weights[1] @ _ref_sigmoid(np.ones((3, 4)) @ x) + 2.0)
    assert net.feedforward(x).shape == (2, 1)
    assert rel_error(net.feedforward(x), expected) < 1e-14
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape \(3, 4\)"):
        net.weights[0] = np.ones((4, 3))


def test_initializers_have_network2_scales():
    net = Network([400, 300, 2], seed=0)
    assert np.std(net.weights[0]) == pytest.approx(1 / np.sqrt(400), rel=0.02)
    assert np.std(net.biases[0]) == pytest.approx(1.0, rel=0.15)
    net.large_weight_initializer()
    assert np.std(net.weights[0]) == pytest.approx(1.0, rel=0.02)


def test_same_seed_gives_bit_identical_training():
    X, labels = _data(60, seed=9)
    runs = []
    for _ in range(2):
        net = Network(SIZES, seed=21)
        out = net.SGD((X, labels), 2, 7, 0.5, lmbda=0.1, monitor_training_cost=True)
        runs.append((out[2], [w.copy() for w in net.weights]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_load_round_trip(tmp_path):
    net = Network(SIZES, cost=QuadraticCost, seed=1)
    npz, js = net.save(tmp_path / "net")
    assert npz.exists() and js.exists()
    loaded = network2.load(tmp_path / "net")
    assert loaded.sizes == SIZES and loaded.cost is QuadraticCost
    for a, b in zip(net.weights + net.biases, loaded.weights + loaded.biases, strict=True):
        np.testing.assert_array_equal(a, b)


def test_float32_network_stays_float32():
    X, labels = _data(20, seed=10)
    net = Network(SIZES, seed=1, dtype=np.float32)
    net.SGD((X.astype(np.float32), labels), 1, 5, 0.5)
    assert all(w.dtype == np.float32 for w in net.weights)
    assert net.feedforward(X.astype(np.float32)).dtype == np.float32


def test_divergence_stops_and_reports_epoch():
    X, labels = _data(30, seed=11)
    net = Network(SIZES, cost=QuadraticCost, seed=2)
    net.large_weight_initializer()
    out = net.SGD((X * 1e3, labels), 5, 10, 1e306, lmbda=1e3, return_status=True,
                  monitor_training_cost=True)
    status = out[4]
    assert status["status"] == "diverged"
    assert status["diverged_epoch"] == 0
    assert net.status == status


def test_callback_can_stop_training():
    X, labels = _data(20, seed=12)
    net = Network(SIZES, seed=2)
    seen = []
    out = net.SGD((X, labels), 5, 10, 0.1, monitor_training_accuracy=True,
                  callback=lambda epoch, n, rec: seen.append(epoch) or epoch == 1)
    assert seen == [0, 1]
    assert len(out[3]) == 2
    assert net.status["status"] == "stopped"


def test_extreme_inputs_give_finite_outputs_and_costs():
    net = Network([2, 3, 2], seed=0)
    net.large_weight_initializer()
    X = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    out = net.feedforward(X)
    assert np.all(np.isfinite(out))
    assert np.isfinite(net.total_cost((X, np.array([0, 1])), 0.0))
    net.SGD((X, np.array([0, 1])), 1, 2, 1.0)
    assert np.all(np.isfinite(net.weights[0]))


def test_clear_errors_for_bad_shapes_labels_and_names():
    net = Network([4, 3, 2], seed=0)
    with pytest.raises(ValueError, match=r"shape \(4, 1\), \(4,\) or \(N, 4\)"):
        net.feedforward(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"inputs must have shape \(N, 4\)"):
        net.SGD((np.zeros((5, 3)), np.zeros(5, dtype=int)), 1, 2, 0.1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        net.accuracy((np.zeros((2, 4)), np.array([0, 2])))
    with pytest.raises(ValueError, match="allowed values"):
        Network([4, 3, 2], cost="hinge")
    with pytest.raises(ValueError, match="sizes"):
        Network([4])


def test_training_gives_the_same_bits_with_one_and_two_blas_threads():
    """The README says so (unlike a Solver run's float32 products, which OpenBLAS sums in
    another order with another thread count): the step's and the monitoring's products."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    rng = np.random.default_rng(0)
    X, y = rng.random((3000, 784)), rng.integers(0, 10, 3000)
    Xt, yt = rng.random((2500, 784)), rng.integers(0, 10, 2500)  # > one evaluation chunk
    runs = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads, user_api="blas"):
            net = Network([784, 30, 10], seed=1)
            monitored = net.SGD((X, y), 2, 10, 0.5, lmbda=5.0, evaluation_data=(Xt, yt),
                                monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                                monitor_training_cost=True, monitor_training_accuracy=True, seed=3)
        runs.append((net.weights, net.biases, monitored))
    (w1, b1, m1), (w2, b2, m2) = runs
    assert all(np.array_equal(a, b) for a, b in zip(w1 + b1, w2 + b2, strict=True))
    assert m1 == m2
