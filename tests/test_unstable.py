"""Tests for nnflow.theory.unstable (Blatt 10 Aufgabe 26 / Tutoraufgabe 6)."""

import math

import numpy as np
import pytest

from nnflow.theory import unstable as u
from nnflow.theory.unstable_job import mean_note


def test_sigmoid_prime_matches_definition_and_is_stable():
    z = np.linspace(-30, 30, 1001)
    s = 1.0 / (1.0 + np.exp(-z))
    # exact reference 1/(4 cosh^2(z/2)); the naive s(1-s) cancels for z >> 0
    np.testing.assert_allclose(u.sigmoid_prime(z), 0.25 / np.cosh(z / 2) ** 2, rtol=1e-12)
    np.testing.assert_allclose(u.sigmoid_prime(z), s * (1 - s), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(u.sigmoid(z), s, rtol=1e-14)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow for huge |z|
        big = u.sigmoid_prime(np.array([-1e6, -800.0, 800.0, 1e6]))
    assert np.all(big >= 0) and np.all(big < 1e-300)


def test_sigmoid_prime_bound():
    res = u.check_sigmoid_prime_bound()
    assert res["max"] == pytest.approx(0.25, abs=1e-15)
    assert res["argmax"] == 0.0
    assert res["min"] >= 0.0
    assert res["bound_holds"]
    assert res["z_min"] <= -1000 and res["z_max"] >= 1000


def test_interval_length_rejects_small_w():
    with pytest.raises(ValueError, match=r"\|w\| >= 4"):
        u.interval_length(3.9)
    with pytest.raises(ValueError):
        u.interval_length(np.array([5.0, 2.0]))
    assert u.interval_length(4.0) == 0.0
    assert u.interval_length(-5.0) == pytest.approx(u.interval_length(5.0))


@pytest.mark.parametrize("w", [4.5, 6.9, 10.0, 25.0])
@pytest.mark.parametrize("a_center", [0.0, 0.37])
def test_interval_length_brute_force(w, a_center):
    da = 1e-5
    a = np.arange(a_center - 1.5, a_center + 1.5, da)
    for sign in (1.0, -1.0):
        ww = sign * w
        bf = u.brute_force_interval(ww, -ww * a_center, a)
        assert bf["length"] == pytest.approx(u.interval_length(w), abs=3 * da)
        assert bf["center"] == pytest.approx(a_center, abs=2 * da)


def test_golden_section_simple():
    x, fx = u.golden_section_max(lambda t: -((t - 1.234) ** 2) + 2.0, 0.0, 5.0)
    assert x == pytest.approx(1.234, abs=1e-6)  # ~sqrt(eps) limit for a flat max
    assert fx == pytest.approx(2.0)


def test_maximise_interval_length():
    w_star, L_star = u.maximise_interval_length()
    assert w_star == pytest.approx(6.9, abs=0.05)
    assert L_star == pytest.approx(0.45, abs=0.005)
    # it is a maximum: neighbours and a dense grid are not larger
    grid = np.linspace(4, 100, 20001)
    assert np.max(u.interval_length(grid)) <= L_star + 1e-12
    # derivative ~ 0 at the optimum (central difference)
    h = 1e-4
    d = (u.interval_length(w_star + h) - u.interval_length(w_star - h)) / (2 * h)
    assert abs(d) < 1e-6


def test_lognormal_moments_formula():
    m, v = u.lognormal_moments(-0.1, 0.2, 3)
    assert m == pytest.approx(math.exp(-0.3 + 0.3))
    assert v == pytest.approx((math.exp(0.6) - 1) * math.exp(-0.6 + 0.6))
    m_arr, v_arr = u.lognormal_moments(0.0, 0.1, np.array([1, 2]))
    assert m_arr.shape == (2,) and v_arr.shape == (2,)
    q = u.lognormal_quantiles(0.2, 0.5, 4)
    assert q[1] == pytest.approx(math.exp(0.8))
    assert q[2] == pytest.approx(math.exp(0.8 + math.sqrt(2.0)), rel=1e-3)


def test_lognormal_monte_carlo_agrees():
    # moderate n s^2 = 0.3 keeps all moments up to the 4th well behaved, so the
    # sample mean/variance are asymptotically normal with the computed SEs;
    # 5 standard errors -> false-failure probability ~ 6e-7 per check.
    rng = np.random.default_rng(20240610)
    mu, s2, n = -0.05, 0.06, 5
    x = u.monte_carlo_Q(mu, s2, n, 200_000, rng)
    res = u.mc_moments_with_errors(mu, s2, n, x)
    assert abs(res["z_mean"]) < 5
    assert abs(res["z_var"]) < 5
    assert res["se_mean"] / res["mean_formula"] < 0.01


def test_sheet_scenario_stats_and_growth():
    rng = np.random.default_rng(7)
    st = u.estimate_log_q_stats(depth=30, n_chains=4000, rng=rng)
    # |w sigma'| <= |w|/4 and E log|w| = -(gamma + ln 2)/2 ~ -0.635 for w ~ N(0,1)
    assert st["mu"] < -0.635 - math.log(4)
    assert 0.5 < st["s2"] < 3.0
    assert st["frac_q_ge_1"] < 0.01
    tab = u.lognormal_growth_table(st["mu"], st["s2"], [1, 2, 4, 8], rng, 20_000, st["q"])
    # E[Q] shrinks exponentially (mu + s2/2 < 0) while the relative spread grows
    assert np.all(np.diff(np.log(tab["mean_formula"])) < 0)
    assert np.all(np.diff(tab["cv_formula"]) > 0)
    # MC medians agree with the formula median (robust statistic)
    np.testing.assert_allclose(tab["median_mc"], tab["median_formula"], rtol=0.1)
    assert "chain_median" in tab and tab["chain_median"].shape == (4,)


def test_plots_unstable(tmp_path):
    from nnflow.theory import figures as pt

    z = np.linspace(-10, 10, 401)
    fig = pt.plot_sigmoid_prime(z, u.sigmoid_prime(z), u.check_sigmoid_prime_bound(z), out=tmp_path / "sp")
    w = np.linspace(4, 30, 300)
    ws, Ls = u.maximise_interval_length()
    pt.plot_interval_length(w, u.interval_length(w), ws, Ls, out=tmp_path / "il.png")
    rng = np.random.default_rng(0)
    tab = u.lognormal_growth_table(-1.0, 0.5, [1, 2, 3], rng, 2000)
    pt.plot_lognormal(tab, -1.0, 0.5, out=tmp_path / "ln")
    for stem in ("sp", "il", "ln"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
        assert (tmp_path / f"{stem}.pdf").stat().st_size > 0
    assert fig.axes[0].get_xlabel()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_run_unstable_theory_small():
    params = {
        "seed": 1,
        "z_max": 1000.0,
        "z_points": 2001,
        "z_plot_max": 10.0,
        "w_search_max": 50.0,
        "w_plot_max": 30.0,
        "brute_force_w": [6.9],
        "brute_force_da": 1e-4,
        "chain_depth": 5,
        "n_chains": 500,
        "weight_std": 1.0,
        "bias_std": 1.0,
        "n_factors": [1, 5],
        "mc_samples": 2000,
        "check_mu": -0.05,
        "check_s2": 0.06,
        "check_n": 5,
    }
    res = u.run_unstable_theory(params)
    assert res["sigma_prime"]["max"] == 0.25
    assert res["interval"]["max_length"] == pytest.approx(0.4477, abs=1e-4)
    assert res["interval"]["brute_force"][0]["abs_diff"] < 3e-4
    assert res["interval"]["p_abs_w_ge_4"] == pytest.approx(6.334e-5, rel=1e-3)
    assert list(res["growth"]["n"]) == [1, 5]
    with pytest.raises(ValueError, match="chain_depth"):
        u.run_unstable_theory({**params, "n_factors": [6]})


def test_mean_tail_draws_counts_the_draws_that_carry_half_of_the_mean():
    """Half of E[Q] lies above exp(nμ + ns²), which a fraction ½·erfc(√(ns²/2)) of draws reach."""
    mu, s2, n, draws = -0.3, 0.25, 4, 400_000
    v = n * s2
    q = u.monte_carlo_Q(mu, s2, n, draws, np.random.default_rng(5))
    above = q > np.exp(n * mu + v)
    assert above.sum() == pytest.approx(u.mean_tail_draws(s2, n, draws), rel=0.02)
    assert q[above].sum() / q.sum() == pytest.approx(0.5, abs=0.01)
    assert u.mean_tail_draws(1.5, np.array([4, 8]), 2000) == pytest.approx(
        [2000 * 0.5 * math.erfc(math.sqrt(3.0)), 2000 * 0.5 * math.erfc(math.sqrt(6.0))])


def test_lognormal_caption_explains_a_sample_mean_below_the_formula():
    growth = u.lognormal_growth_table(-2.0, 1.5, [1, 4, 8, 15], np.random.default_rng(0), 2000)
    note = mean_note(growth, 2000)
    assert "fewer than one of them from n = 8 on" in note
    assert "the formula is right" in note
    median_f, median_mc = growth["median_formula"][-1], growth["median_mc"][-1]
    assert f"exp(nμ) = {median_f:.3g} and Monte Carlo {median_mc:.3g}" in note
    light = u.lognormal_growth_table(-0.05, 0.06, [1, 5], np.random.default_rng(0), 2000)
    assert "for no n shown here" in mean_note(light, 2000)
