"""Update rules against the published CS231n notebook values and PyTorch."""

import numpy as np
import pytest

from nnflow.nn import optim
from nnflow.nn.gradcheck import rel_error

N, D = 4, 5
TOL = 1e-6


@pytest.fixture(autouse=True, params=["numpy", "numba"])
def update_kernels(request, monkeypatch):
    """Every test here runs on both implementations of the rules (nnflow.nn.kernels)."""
    if request.param == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv("NNFLOW_KERNELS", request.param)
    return request.param


def _inputs():
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


def test_sgd_momentum_matches_cs231n_notebook():
    w, dw = _inputs()
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-3, "velocity": v}
    next_w, config = optim.sgd_momentum(w, dw, config=config)
    expected_next_w = np.asarray([
        [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
        [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
        [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
        [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096]])
    expected_velocity = np.asarray([
        [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
        [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
        [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
        [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096]])
    assert rel_error(expected_next_w, next_w) < TOL
    assert rel_error(expected_velocity, config["velocity"]) < TOL


def test_rmsprop_matches_cs231n_notebook():
    w, dw = _inputs()
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-2, "cache": cache}
    next_w, config = optim.rmsprop(w, dw, config=config)
    expected_next_w = np.asarray([
        [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
        [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
        [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
        [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]])
    expected_cache = np.asarray([
        [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
        [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
        [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
        [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]])
    assert rel_error(expected_next_w, next_w) < TOL
    assert rel_error(expected_cache, config["cache"]) < TOL


def test_adam_matches_cs231n_notebook():
    w, dw = _inputs()
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-2, "m": m, "v": v, "t": 5}
    next_w, config = optim.adam(w, dw, config=config)
    expected_next_w = np.asarray([
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]])
    expected_v = np.asarray([
        [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
        [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
        [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
        [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]])
    expected_m = np.asarray([
        [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
        [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
        [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
        [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]])
    assert config["t"] == 6
    assert rel_error(expected_next_w, next_w) < TOL
    assert rel_error(expected_v, config["v"]) < TOL
    assert rel_error(expected_m, config["m"]) < TOL


def test_sgd_is_w_minus_lr_times_dw():
    w, dw = _inputs()
    expected = w - 0.05 * dw  # computed before the in-place step
    next_w, config = optim.sgd(w, dw, {"learning_rate": 0.05})
    assert rel_error(expected, next_w) < 1e-12


def test_adam_first_steps_follow_scalar_formula():
    """Defaults (t starting at 0, zero moments) against a scalar re-derivation."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(7)
    grads = [rng.standard_normal(7) for _ in range(3)]
    w, config = w0.copy(), {"learning_rate": 0.1}
    for g in grads:
        w, config = optim.adam(w, g, config)
    for i in range(7):
        wi, mi, vi = w0[i], 0.0, 0.0
        for t, g in enumerate(grads, start=1):
            mi = 0.9 * mi + 0.1 * g[i]
            vi = 0.999 * vi + 0.001 * g[i] ** 2
            wi -= 0.1 * (mi / (1 - 0.9**t)) / (np.sqrt(vi / (1 - 0.999**t)) + 1e-8)
        assert abs(w[i] - wi) < 1e-12


def test_update_is_in_place_and_keeps_dtype():
    for rule in (optim.sgd, optim.sgd_momentum, optim.rmsprop, optim.adam):
        w = np.ones((3, 2), dtype=np.float32)
        dw = np.full((3, 2), 0.5, dtype=np.float32)
        next_w, config = rule(w, dw)
        assert next_w is w
        assert next_w.dtype == np.float32
        for key, val in config.items():
            if isinstance(val, np.ndarray):
                assert val.dtype == np.float32, (rule.__name__, key)
        assert not np.allclose(next_w, 1.0)


def test_shape_mismatch_raises_value_error():
    with pytest.raises(ValueError, match="dw must have the shape"):
        optim.adam(np.zeros((2, 3)), np.zeros((3, 2)))


def test_get_update_rule_knows_names_and_rejects_unknown():
    assert optim.get_update_rule("adam") is optim.adam
    with pytest.raises(ValueError, match="allowed values"):
        optim.get_update_rule("adagrad")


@pytest.mark.torch
def test_update_rules_follow_torch_optimizers_step_by_step():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((6, 4))
    grads = [rng.standard_normal((6, 4)) for _ in range(5)]

    def run_torch(make_opt):
        p = torch.nn.Parameter(torch.tensor(w0.copy()))
        opt = make_opt([p])
        for g in grads:
            opt.zero_grad()
            p.grad = torch.tensor(g)
            opt.step()
        return p.detach().numpy()

    def run_nnflow(rule, config):
        w = w0.copy()
        for g in grads:
            w, config = rule(w, g, config)
        return w

    lr = 0.01
    # CS231n v = mu v - lr g equals -lr * (torch's b = mu b + g) for constant lr.
    cases = [
        (lambda ps: torch.optim.SGD(ps, lr=lr), optim.sgd, {"learning_rate": lr}),
        (lambda ps: torch.optim.SGD(ps, lr=lr, momentum=0.9), optim.sgd_momentum,
         {"learning_rate": lr, "momentum": 0.9}),
        (lambda ps: torch.optim.RMSprop(ps, lr=lr, alpha=0.99, eps=1e-8), optim.rmsprop,
         {"learning_rate": lr, "decay_rate": 0.99, "epsilon": 1e-8}),
        (lambda ps: torch.optim.Adam(ps, lr=lr, betas=(0.9, 0.999), eps=1e-8), optim.adam,
         {"learning_rate": lr}),
    ]
    for make_opt, rule, config in cases:
        expected = run_torch(make_opt)
        got = run_nnflow(rule, config)
        assert rel_error(expected, got) < 1e-10, rule.__name__
