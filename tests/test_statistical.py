"""Statistical device models: exact formulas with noise off, seeded statistics with noise on.

Tolerances are derived from the sample size: a sample mean is within 5 standard errors
(σ/√N) of its expectation and a sample standard deviation within 5 standard errors
(σ/√(2(N−1)), Gaussian case) of σ. With 5 s.e. a correct model fails with probability
below 1e-6 per check; the seeds are fixed, so the suite is deterministic anyway.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import memsim
from memsim.timegrid import YEAR
from tests import naive

N = 40000
Z = 5.0
TIMES = [0.0, 1.0, 3600.0, 86400.0, YEAR, 10 * YEAR]
LEVELS = [0.05, 0.1, 0.3, 0.5, 0.7, 0.95]

PCM_CARDS = {
    "pcm-generic": dict(
        g_max_uS=25.0, t0=20.0, t_read=250e-9,
        sigma=naive.pcm_generic_sigma_prog_uS, nu_mean=naive.pcm_generic_nu_mean,
        nu_std=naive.pcm_generic_nu_std, q_s=naive.pcm_generic_q_s),
    "pcm-hermes-2dev": dict(
        g_max_uS=20.7, t0=300.0, t_read=512e-9,
        sigma=lambda g: naive.hermes_sigma_prog_uS(g, 2), nu_mean=naive.hermes_nu_mean,
        nu_std=lambda g: naive.hermes_nu_std(g, 2), q_s=lambda g: naive.hermes_q_s(g, 2)),
    "pcm-hermes-1dev": dict(
        g_max_uS=10.35, t0=200.0, t_read=512e-9,
        sigma=lambda g: naive.hermes_sigma_prog_uS(g, 1), nu_mean=naive.hermes_nu_mean,
        nu_std=lambda g: naive.hermes_nu_std(g, 1), q_s=lambda g: naive.hermes_q_s(g, 1)),
}


def sd_tol(sigma: float, n: int) -> float:
    return Z * sigma / math.sqrt(2 * (n - 1))


# -- the laws in the cards equal the published formulas ----------------------------------
@pytest.mark.parametrize("card", sorted(PCM_CARDS))
def test_card_laws_equal_published_formulas(card):
    ref = PCM_CARDS[card]
    dev = memsim.load_device(card)
    assert dev.g_max_S == pytest.approx(ref["g_max_uS"] * 1e-6, rel=1e-12)
    assert dev.drift.t0_s == ref["t0"]
    assert dev.read_noise.t_read_s == pytest.approx(ref["t_read"], rel=1e-12)
    gh = np.concatenate([np.geomspace(1e-3, 1.0, 400), [0.0945, 0.16, 0.1591, 0.3039, 0.3055]])
    g = gh * dev.g_max_S
    np.testing.assert_allclose(dev.sigma_prog_S(g) * 1e6, [ref["sigma"](x) for x in gh],
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dev.drift.nu_mean(gh), [ref["nu_mean"](x) for x in gh],
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dev.drift.nu_std(gh), [ref["nu_std"](x) for x in gh],
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dev.read_noise.amplitude(gh), [ref["q_s"](x) for x in gh],
                               rtol=1e-12, atol=1e-15)


# -- noise off: the exact formulas hold, t = 0 included ------------------------------------
@pytest.mark.parametrize("card", sorted(PCM_CARDS))
def test_pcm_noise_free_is_exact_drift_formula(card):
    ref = PCM_CARDS[card]
    dev = memsim.load_device(card).noise_free()
    gh = np.array(LEVELS)
    g_t = gh * dev.g_max_S
    rng = np.random.default_rng(1)
    state = dev.program(g_t, rng)
    np.testing.assert_array_equal(state.g_prog_S, g_t)
    np.testing.assert_allclose(state.drift_nu, [ref["nu_mean"](x) for x in gh], rtol=1e-12)
    for t in TIMES:
        expect = [naive.pcm_drift(g, ref["nu_mean"](x), t, ref["t0"])
                  for g, x in zip(g_t, gh, strict=True)]
        np.testing.assert_allclose(dev.read(state, t, rng), expect, rtol=1e-12)
    np.testing.assert_array_equal(dev.read(state, 0.0, rng), g_t)  # t = 0: no drift yet


def test_rram_cmo_noise_free_is_exact_relaxation_formula():
    dev = memsim.load_device("rram-cmo").noise_free()
    g_t = np.array([10e-6, 30e-6, 50e-6, 88e-6])
    rng = np.random.default_rng(2)
    state = dev.program(g_t, rng)
    np.testing.assert_array_equal(state.g_prog_S, g_t)
    for t in TIMES:
        expect = g_t + naive.rram_cmo_mean_shift_uS(t) * 1e-6
        np.testing.assert_allclose(dev.read(state, t, rng), expect, rtol=1e-12)


def test_ideal_device_is_exact():
    dev = memsim.load_device("ideal")
    rng = np.random.default_rng(3)
    g_t = rng.uniform(0, dev.g_max_S, size=(7, 5, 3))
    state = dev.program(g_t, rng)
    for t in TIMES:
        np.testing.assert_array_equal(dev.read(state, t, rng), g_t)
        np.testing.assert_array_equal(dev.read_noise_std(state, t, window_s=1e-3), 0.0)


# -- seeded statistics ----------------------------------------------------------------------
@pytest.mark.parametrize("card", sorted(PCM_CARDS))
@pytest.mark.parametrize("gh", [0.1, 0.3, 0.6, 0.9])
def test_pcm_programming_sigma(card, gh):
    ref = PCM_CARDS[card]
    dev = memsim.load_device(card)
    g_t = gh * dev.g_max_S
    state = dev.program(np.full(N, g_t), np.random.default_rng(10))
    err = (state.g_prog_S - g_t) * 1e6
    # G_prog = max(0, G_T + σ ξ): a rectified normal, whose moments are exact
    mean, sigma = naive.rectified_normal_moments(g_t * 1e6, ref["sigma"](gh))
    assert abs(err.mean() - (mean - g_t * 1e6)) < Z * sigma / math.sqrt(N)
    assert abs(err.std(ddof=1) - sigma) < sd_tol(sigma, N)


@pytest.mark.parametrize("card", sorted(PCM_CARDS))
@pytest.mark.parametrize("gh", [0.02, 0.1, 0.3, 0.6, 0.95])
def test_pcm_drift_exponent_mean_and_spread(card, gh):
    """ν = |μ + σ ξ| follows the folded normal; its sample moments match within 5 s.e."""
    ref = PCM_CARDS[card]
    dev = memsim.load_device(card)
    state = dev.program(np.full(N, gh * dev.g_max_S), np.random.default_rng(11))
    mean, sd = naive.folded_normal_moments(ref["nu_mean"](gh), ref["nu_std"](gh))
    nu = state.drift_nu
    assert abs(nu.mean() - mean) < Z * sd / math.sqrt(N)
    # the folded normal has near-Gaussian kurtosis here; allow 6 s.e. for its spread
    assert abs(nu.std(ddof=1) - sd) < 1.2 * sd_tol(sd, N)


@pytest.mark.parametrize("card", sorted(PCM_CARDS))
@pytest.mark.parametrize("gh", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("t", [0.0, 1.0, 86400.0, 10 * YEAR])
def test_pcm_read_noise(card, gh, t):
    ref = PCM_CARDS[card]
    dev = memsim.load_device(card).with_noise(programming=0.0)
    state = dev.program(np.full(N, gh * dev.g_max_S), np.random.default_rng(12))
    g_drift = dev.with_noise(programming=0.0, read=0.0).read(state, t, np.random.default_rng(0))
    g = dev.read(state, t, np.random.default_rng(13))
    rel = g / g_drift - 1.0
    sigma = naive.pcm_read_sigma_rel(ref["q_s"](gh), t, ref["t0"], ref["t_read"])
    assert abs(rel.mean()) < Z * sigma / math.sqrt(N)
    assert abs(rel.std(ddof=1) - sigma) < sd_tol(sigma, N)


@pytest.mark.parametrize("card", sorted(PCM_CARDS))
def test_read_noise_window_split_adds_up(card):
    """Slow part (read with window) + fast part (read_noise_std) = total variance."""
    dev = memsim.load_device(card).with_noise(programming=0.0, drift_spread=0.0)
    g_t = 0.5 * dev.g_max_S
    state = dev.program(np.full(N, g_t), np.random.default_rng(14))
    t, w = 3600.0, 1e-3
    g_drift = dev.with_noise(programming=0, drift_spread=0, read=0).read(
        state, t, np.random.default_rng(0))
    slow = dev.read(state, t, np.random.default_rng(15), window_s=w) / g_drift - 1
    fast = dev.read_noise_std(state, t, window_s=w) / g_drift
    total = naive.pcm_read_sigma_rel(dev.read_noise.amplitude(np.array([0.5]))[0], t,
                                     dev.drift.t0_s, dev.read_noise.t_read_s)
    np.testing.assert_allclose(fast, fast[0])  # the same for identical devices
    sd_slow = slow.std(ddof=1)
    expect_slow = math.sqrt(total**2 - fast[0] ** 2)
    assert abs(sd_slow - expect_slow) < sd_tol(expect_slow, N)
    assert 0 < fast[0] < total


@pytest.mark.parametrize("g_uS", [10.0, 50.0, 85.0])
@pytest.mark.parametrize("t", [1.0, 3600.0, 86400.0, YEAR])
def test_rram_cmo_statistics(g_uS, t):
    dev = memsim.load_device("rram-cmo")
    state = dev.program(np.full(N, g_uS * 1e-6), np.random.default_rng(16))
    err = (state.g_prog_S * 1e6 - g_uS)
    s_prog = naive.rram_cmo_sigma_prog_uS(g_uS)
    assert abs(err.std(ddof=1) - s_prog) < sd_tol(s_prog, N)
    # relaxation only (read noise off): mean shift and spread around G_prog
    quiet = dev.with_noise(read=0.0)
    d = (quiet.read(state, t, np.random.default_rng(17)) - state.g_prog_S) * 1e6
    s_rel = naive.rram_cmo_spread_uS(t)
    assert abs(d.mean() - naive.rram_cmo_mean_shift_uS(t)) < Z * s_rel / math.sqrt(N)
    assert abs(d.std(ddof=1) - s_rel) < sd_tol(s_rel, N)
    # read noise: the relaxation path belongs to the state, so the difference is read noise
    g_quiet = quiet.read(state, t, np.random.default_rng(18))
    g_full = dev.read(state, t, np.random.default_rng(18))
    r = (g_full - g_quiet) * 1e6
    s_read = np.array([naive.rram_cmo_read_sigma_uS(x, t) for x in g_quiet * 1e6])
    z = r / s_read
    assert abs(z.mean()) < Z / math.sqrt(N)
    assert abs(z.std(ddof=1) - 1.0) < sd_tol(1.0, N)


def test_neurram_spread_matches_published_fit_at_one_day():
    """Total σ at 1 day reproduces the 1-day polynomial of Wan 2022 Ext. Data Fig. 3d."""
    dev = memsim.load_device("rram-neurram")
    c1d = [0.701, 22.086, -50.773, 47.095, -16.458]
    for x in (0.2, 0.5, 0.8):
        g_t = x * dev.g_max_S
        state = dev.program(np.full(N, g_t), np.random.default_rng(19))
        g = dev.read(state, 86400.0, np.random.default_rng(20))
        expect = float(np.polynomial.polynomial.polyval(x, c1d))
        # the card's fit reproduces the 1-day curve to 0.4 %; sampling adds 5 s.e.
        assert abs((g - g_t).std(ddof=1) * 1e6 - expect) < sd_tol(expect, N) + 0.004 * expect


# -- reproducibility --------------------------------------------------------------------------
@pytest.mark.parametrize("card", ["pcm-generic", "pcm-hermes-2dev", "rram-cmo", "rram-neurram"])
def test_same_seed_same_result_other_seed_differs(card):
    dev = memsim.load_device(card)
    g = np.linspace(dev.g_min_S, dev.g_max_S, 101)

    def run(seed):
        rng = np.random.default_rng(seed)
        s = dev.program(g, rng)
        return s.g_prog_S, dev.read(s, 86400.0, rng)

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_state_is_immutable_and_shape_preserved():
    dev = memsim.load_device("pcm-generic")
    g = np.full((4, 3, 2), 10e-6)
    state = dev.program(g, np.random.default_rng(0))
    assert state.shape == (4, 3, 2)
    assert dev.read(state, 10.0, np.random.default_rng(0)).shape == (4, 3, 2)
    with pytest.raises(ValueError):
        state.g_prog_S[0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        state.g_prog_S = g  # frozen dataclass
    g[0, 0, 0] = 0.0  # the caller's array is not shared with the state
    assert state.g_target_S[0, 0, 0] == 10e-6


@pytest.mark.parametrize("card", ["pcm-generic", "pcm-hermes-2dev", "rram-cmo", "rram-neurram"])
@pytest.mark.parametrize("t", [0.0, 1e-7, 1.0, 86400.0])
@pytest.mark.parametrize("window_s", [1e-9, 1e-6, 1e-3, 1.0, 1e9])
def test_read_noise_std_finite_at_any_time_and_window(card, t, window_s):
    """Regression: with t0 = 0 (rram-cmo) the fast band was negative at t = 0."""
    dev = memsim.load_device(card)
    state = dev.program(np.linspace(dev.g_min_S, dev.g_max_S, 11), np.random.default_rng(0))
    with np.errstate(all="raise"):
        sd = dev.read_noise_std(state, t, window_s=window_s)
        g = dev.read(state, t, np.random.default_rng(1), window_s=window_s)
    assert np.all(np.isfinite(sd)) and np.all(sd >= 0)
    assert np.all(np.isfinite(g)) and np.all(g >= 0)
