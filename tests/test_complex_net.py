"""Tests for nnflow.theory.complex_net (Blatt 10 Tutoraufgabe, Wirtinger backprop)."""

import numpy as np
import pytest

from nnflow.theory import complex_net as cn

SIZES = (2, 5, 3, 2)


@pytest.fixture
def setup():
    rng = np.random.default_rng(12345)
    task = cn.make_teacher_task(rng, n_samples=16, sizes=SIZES)
    params = cn.init_params(SIZES, rng, scale=0.5)
    return params, task["X"], task["Y"]


def test_csigmoid_holomorphic_derivative():
    rng = np.random.default_rng(0)
    z = rng.normal(size=20) + 1j * rng.normal(size=20)
    h = 1e-6
    # complex derivative: same difference quotient along real and imaginary axis
    d_re = (cn.csigmoid(z + h) - cn.csigmoid(z - h)) / (2 * h)
    d_im = (cn.csigmoid(z + 1j * h) - cn.csigmoid(z - 1j * h)) / (2j * h)
    np.testing.assert_allclose(d_re, cn.csigmoid_prime(z), rtol=1e-8)
    np.testing.assert_allclose(d_im, cn.csigmoid_prime(z), rtol=1e-8)
    # matches 1/(1+exp(-z)) and is overflow-free for large |Re z|
    np.testing.assert_allclose(cn.csigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-14)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        big = cn.csigmoid(np.array([-1000 + 1j, 1000 - 2j]))
    np.testing.assert_allclose(big, [0, 1], atol=1e-300)


def test_shapes_and_real_cost(setup):
    params, X, Y = setup
    zs, acts = cn.forward(params, X)
    assert [a.shape for a in acts] == [(16, 2), (16, 5), (16, 3), (16, 2)]
    g = cn.gradients(params, X, Y)
    for key in ("w_re", "w_im"):
        assert [a.shape for a in g[key]] == [w.shape for w in params["w"]]
        assert all(a.dtype == np.float64 for a in g[key])
    for key in ("b_re", "b_im"):
        assert [a.shape for a in g[key]] == [b.shape for b in params["b"]]
    assert g["cost"] == pytest.approx(cn.cost(params, X, Y))
    assert g["cost"] > 0


def test_gradient_check_every_layer(setup):
    params, X, Y = setup
    rows = cn.gradient_check(params, X, Y)
    names = {r["name"] for r in rows}
    L = len(SIZES) - 1
    assert names == {f"{k}{layer}_{p}" for k in "wb" for layer in range(1, L + 1) for p in ("re", "im")}
    for r in rows:
        assert r["rel_error"] < 1e-7, r
        assert r["max_elem_rel_error"] < 1e-5, r
        assert r["norm"] > 0


def test_wrong_propagation_fails_gradcheck(setup):
    """Conjugating w in (BP2) (a plausible mistake) must be detected."""
    params, X, Y = setup
    zs, acts = cn.forward(params, X)
    delta = 0.5 * np.conj(acts[-1] - Y) * cn.csigmoid_prime(zs[-1])
    wrong = (delta @ np.conj(params["w"][-1])) * cn.csigmoid_prime(zs[-2])
    right = (delta @ params["w"][-1]) * cn.csigmoid_prime(zs[-2])
    good = cn.backprop_wirtinger(params, X, Y)["b"][-2]
    np.testing.assert_allclose(right.mean(axis=0), good, rtol=1e-12)
    assert not np.allclose(wrong.mean(axis=0), good, rtol=1e-3)


def test_descent_direction_is_2_conj_wirtinger(setup):
    """w - eta*2*conj(dC/dw) equals separate real/imag steps and lowers C to
    first order by eta * (|dC/du|^2 + |dC/dv|^2)."""
    params, X, Y = setup
    g = cn.gradients(params, X, Y)
    for layer in range(len(params["w"])):
        np.testing.assert_allclose(
            g["w_re"][layer] + 1j * g["w_im"][layer], 2 * np.conj(g["dC_dw"][layer]), rtol=1e-14
        )
    eta = 1e-4
    res = cn.train(params, X, Y, eta=eta, n_iter=1)
    sq = sum(np.sum(a**2) for k in ("w_re", "w_im", "b_re", "b_im") for a in g[k])
    dC = res["cost"][1] - res["cost"][0]
    assert dC == pytest.approx(-eta * sq, rel=1e-2)


def test_training_reduces_cost():
    rng = np.random.default_rng(2024)
    task = cn.make_teacher_task(rng, n_samples=64, sizes=(2, 6, 1))
    params = cn.init_params((2, 6, 1), rng, scale=0.3)
    w0 = params["w"][0].copy()
    res = cn.train(params, task["X"], task["Y"], eta=2.0, n_iter=800, record_every=50)
    assert res["cost"][-1] < 0.5 * res["cost"][0]
    assert np.all(np.diff(res["cost"]) < 0)
    # initialised and stayed away from the poles i*pi*(2k+1)
    assert res["min_pole_distance"].min() > 1.0
    # train works on a copy
    np.testing.assert_array_equal(params["w"][0], w0)


def test_plots_complex(tmp_path, setup):
    from nnflow.theory import figures as pt

    params, X, Y = setup
    rows = cn.gradient_check(params, X, Y)
    pt.plot_complex_gradcheck(rows, out=tmp_path / "gc")
    res = cn.train(params, X, Y, eta=1.0, n_iter=20, record_every=5)
    pt.plot_complex_training(res["iteration"], res["cost"], res["min_pole_distance"], out=tmp_path / "tr")
    for stem in ("gc", "tr"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
        assert (tmp_path / f"{stem}.pdf").stat().st_size > 0
    import matplotlib.pyplot as plt

    plt.close("all")


def test_run_complex_backprop_small():
    params = {
        "seed": 3,
        "gradcheck_sizes": [2, 3, 2],
        "gradcheck_samples": 8,
        "gradcheck_h": 1e-4,
        "sizes": [2, 6, 1],
        "target_coeffs": [0.5, 0.3, 0.2],
        "n_samples": 32,
        "input_radius": 1.0,
        "init_scale": 0.3,
        "eta": 2.0,
        "n_iter": 400,
        "record_every": 100,
    }
    res = cn.run_complex_backprop(params)
    s = res["summary"]
    assert s["gradcheck_max_rel_error"] < 1e-7
    assert len(res["gradcheck"]) == 2 * 2 * 2
    assert s["cost_final"] < 0.5 * s["cost_initial"]
    assert s["cost_final"] < s["cost_constant"]  # learnt more than the mean
    assert list(res["training"]["iteration"]) == [0, 100, 200, 300, 400]
