"""RRAM relaxation as a persistent per-device process (issue 10, item 8).

A device is one physical state that evolves: reads of one programmed state at increasing
times are points of one path W(σ(t)²) (a Brownian motion in the variance variable), so
Var at every t is the card's σ(t)² and Cov(t1, t2) = σ(min(t1, t2))², corr = σ(t1)/σ(t2).

Tolerances come from the sample size (5 standard errors; see test_statistical.py):
sample mean σ/√N, sample σ σ/√(2(N−1)), sample correlation (1 − ρ²)/√N (Gaussian pairs),
sample covariance √((σ_a²σ_b² + c²)/N).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import memsim
from memsim.devices import _relaxation as R
from memsim.devices.base import DeviceState
from memsim.errors import StateError
from memsim.timegrid import DAY, YEAR
from tests import naive

N = 40000
Z = 5.0


def corr_tol(rho: float, n: int = N) -> float:
    return Z * (1 - rho * rho) / math.sqrt(n)


def sd_tol(sigma: float, n: int = N) -> float:
    return Z * sigma / math.sqrt(2 * (n - 1))


def relaxation_only(card: str, g_S: float, seed: int = 0):
    """Device with programming and read noise off, N devices at one target: the reads minus
    G_prog minus the mean shift are the relaxation path W alone."""
    dev = memsim.load_device(card).with_noise(programming=0.0, read=0.0)
    state = dev.program(np.full(N, g_S), np.random.default_rng(seed))

    def walk(t: float) -> np.ndarray:
        g = dev.read(state, t, np.random.default_rng(12345))
        return g - state.g_prog_S - dev.drift.g_shift_S * dev.drift.tau(t)

    return dev, state, walk


def card_sigma(dev, g_S: float, t: float) -> float:
    return float(dev.drift.g_spread_S(np.array([g_S]), t, dev.g_max_S)[0])


# -- the kernel against the slow reference ------------------------------------------------------
@pytest.mark.parametrize("u", [1e-300, 3.1e-7, 0.25, 0.3, 0.999999, 1.0, 1.5, 2.0, 2.75,
                               11.37, 129.3, 1000.0, 2.0**40 + 3.0, 1e22])
def test_brownian_kernel_matches_reference_construction(u):
    for device in (0, 1, 77):
        key = np.uint64(R._stream_key(np.uint64(0xDEADBEEF12345), device, 2))

        def normal(k, level, n, key=key):
            return float(R._normal_at(key, R._code(k, level, n)))

        want = naive.brownian_path_reference(normal, u, R.LEVELS)
        got = R.brownian_at(key, u)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12 * math.sqrt(u))


def test_brownian_at_zero_and_continuity():
    key = np.uint64(R._stream_key(np.uint64(5), 3, 1))
    assert R.brownian_at(key, 0.0) == 0.0
    # the path is continuous: a tiny step moves it by O(√step)
    for u in (0.37, 1.0, 6.2, 500.0):
        step = 1e-9 * u
        assert abs(R.brownian_at(key, u + step) - R.brownian_at(key, u)) < 50 * math.sqrt(step)


def test_brownian_statistics_of_the_kernel():
    """σ1 = 1, σ0 = 0 gives Z(u) = β(u²): variances u², covariances min(u_a², u_b²) and
    independent increments, over N independent devices (streams)."""
    us = [0.4, 1.0, 3.0, 3.3, 20.0]
    zs = []
    for u in us:
        out = np.empty(N)
        R.relaxation_walk(np.uint64(99), u, np.zeros(N), np.ones(N), out)
        zs.append(out)
    zs = np.array(zs)
    for a, ua in enumerate(us):
        assert abs(zs[a].mean()) < Z * ua / math.sqrt(N)
        assert abs(zs[a].std(ddof=1) - ua) < sd_tol(ua)
        for b in range(a + 1, len(us)):
            c = ua * ua  # = min(u_a², u_b²)
            got = np.mean(zs[a] * zs[b])
            tol = Z * math.sqrt((ua**2 * us[b] ** 2 + c * c) / N)
            assert abs(got - c) < tol, (ua, us[b], got, c)
    # increments over disjoint intervals are uncorrelated
    d1, d2 = zs[1] - zs[0], zs[3] - zs[2]
    assert abs(np.corrcoef(d1, d2)[0, 1]) < Z / math.sqrt(N)


def test_offset_is_one_fixed_draw_with_the_card_spread():
    """σ0 alone: Z = σ0 ξ, the same at every u, N(0, σ0²) across devices."""
    out_a, out_b = np.empty(N), np.empty(N)
    R.relaxation_walk(np.uint64(7), 0.5, np.full(N, 2.0), np.zeros(N), out_a)
    R.relaxation_walk(np.uint64(7), 9.0, np.full(N, 2.0), np.zeros(N), out_b)
    np.testing.assert_array_equal(out_a, out_b)
    assert abs(out_a.std(ddof=1) - 2.0) < sd_tol(2.0)


# -- the device: marginals as the card, correlation as the walk --------------------------------
@pytest.mark.parametrize("t", [0.5, 1.0, 10.0, 3600.0, DAY, YEAR])
def test_cmo_marginals_match_the_card(t):
    g = 50e-6
    dev, _, walk = relaxation_only("rram-cmo", g)
    w = walk(t) * 1e6
    s = naive.rram_cmo_spread_uS(t)  # the card's source: 0.042 ln t + 0.41 µS
    assert card_sigma(dev, g, t) * 1e6 == pytest.approx(s, rel=1e-12)
    assert abs(w.mean()) < Z * s / math.sqrt(N)
    assert abs(w.std(ddof=1) - s) < sd_tol(s)


@pytest.mark.parametrize("t1, t2", [(DAY, 2 * DAY), (1.0, DAY), (3600.0, YEAR),
                                    (10.0, 20.0)])
def test_cmo_reads_of_one_state_are_correlated_as_the_walk(t1, t2):
    """Fails before the fix: the relaxation term was redrawn at each read, corr ≈ 0."""
    g = 50e-6
    dev, _, walk = relaxation_only("rram-cmo", g)
    w1, w2 = walk(t1), walk(t2)
    rho = card_sigma(dev, g, t1) / card_sigma(dev, g, t2)
    got = np.corrcoef(w1, w2)[0, 1]
    assert abs(got - rho) < corr_tol(rho), (got, rho)
    # independent increments: what happens after t1 does not depend on the state at t1
    assert abs(np.corrcoef(w1, w2 - w1)[0, 1]) < Z / math.sqrt(N)
    # and the increment has the variance σ(t2)² − σ(t1)²
    s1, s2 = card_sigma(dev, g, t1), card_sigma(dev, g, t2)
    sd_inc = math.sqrt(s2 * s2 - s1 * s1)
    assert abs((w2 - w1).std(ddof=1) - sd_inc) < sd_tol(sd_inc)


def test_cmo_offset_is_fixed_before_t_ref():
    """Up to t_ref the card's spread is its offset σ_0: one draw per device, not per read."""
    _, _, walk = relaxation_only("rram-cmo", 50e-6)
    np.testing.assert_array_equal(walk(0.25), walk(1.0))
    np.testing.assert_array_equal(walk(0.0), 0.0)  # G(0) = G_prog


def test_neurram_relaxation_is_a_random_walk_in_log_time():
    """σ_0 = 0, p = 1/2: Var W = k(x)² ln t, so corr(t1, t2) = √(ln t1 / ln t2)."""
    dev, _, walk = relaxation_only("rram-neurram", 20e-6)
    for t1, t2 in ((60.0, 3600.0), (3600.0, DAY)):
        rho = math.sqrt(math.log(t1) / math.log(t2))
        got = np.corrcoef(walk(t1), walk(t2))[0, 1]
        assert abs(got - rho) < corr_tol(rho), (t1, t2, got, rho)
    s = card_sigma(dev, 20e-6, DAY)
    assert abs(walk(DAY).std(ddof=1) - s) < sd_tol(s)


# -- reproducible, order-independent, program once ---------------------------------------------
@pytest.mark.parametrize("card", ["rram-cmo", "rram-neurram"])
def test_path_is_reproducible_and_order_independent(card):
    dev = memsim.load_device(card).with_noise(read=0.0)
    g = np.linspace(dev.g_min_S, dev.g_max_S, 300).reshape(20, 15)
    state = dev.program(g, np.random.default_rng(3))
    times = [1.0, 17.0, 3600.0, DAY, 2 * DAY, 10 * YEAR]
    forward = {t: dev.read(state, t, np.random.default_rng(i)) for i, t in enumerate(times)}
    backward = {t: dev.read(state, t, np.random.default_rng(100 + i))
                for i, t in enumerate(reversed(times))}
    for t in times:
        np.testing.assert_array_equal(forward[t], backward[t])
    # the same device read alone, or inside a larger batch, is the same device
    assert np.array_equal(dev.drifted(state, DAY, None), forward[DAY])
    # another programming is another path
    other = dev.program(g, np.random.default_rng(4))
    assert not np.array_equal(dev.read(other, DAY, np.random.default_rng(0)) - other.g_prog_S,
                              forward[DAY] - state.g_prog_S)


def test_read_noise_is_still_drawn_per_read():
    dev = memsim.load_device("rram-cmo").with_noise(programming=0.0)
    state = dev.program(np.full(N, 50e-6), np.random.default_rng(0))
    a = dev.read(state, DAY, np.random.default_rng(1))
    b = dev.read(state, DAY, np.random.default_rng(2))
    quiet = dev.with_noise(programming=0.0, read=0.0).drifted(state, DAY, None)
    s_read = naive.rram_cmo_read_sigma_uS(float(np.mean(quiet)) * 1e6, DAY)
    diff = (a - b) * 1e6
    assert abs(diff.std(ddof=1) - math.sqrt(2) * s_read) < sd_tol(math.sqrt(2) * s_read) \
        + 0.01 * s_read  # σ_read varies by < 1 % over the spread of G_drift here


def test_noise_free_relaxation_draws_nothing():
    dev = memsim.load_device("rram-cmo").noise_free()
    state = dev.program(np.full(5, 50e-6), np.random.default_rng(0))
    expect = 50e-6 + naive.rram_cmo_mean_shift_uS(DAY) * 1e-6
    np.testing.assert_allclose(dev.read(state, DAY, np.random.default_rng(1)), expect,
                               rtol=1e-12)


def test_state_without_relaxation_seed_is_an_error():
    dev = memsim.load_device("rram-cmo")
    state = dev.program(np.full(4, 50e-6), np.random.default_rng(0))
    bare = DeviceState(g_target_S=state.g_target_S, g_prog_S=state.g_prog_S)
    with pytest.raises(StateError, match="relaxation seed"):
        dev.read(bare, DAY, np.random.default_rng(0))
    assert state.extra["relax_seed"].dtype == np.uint64 and state.extra["relax_seed"].ndim == 0


def test_pcm_programming_draws_are_unchanged():
    """Only relaxation models draw a path seed: PCM states carry none."""
    dev = memsim.load_device("pcm-hermes-2dev")
    state = dev.program(np.full(4, 10e-6), np.random.default_rng(0))
    assert "relax_seed" not in state.extra


# -- the tile's read paths -----------------------------------------------------------------------
def test_read_for_mvm_is_read_plus_its_noise_sigma():
    dev = memsim.load_device("rram-cmo")
    state = dev.program(np.full((8, 6), 40e-6), np.random.default_rng(0))
    g, sd = dev.read_for_mvm(state, DAY, np.random.default_rng(5), window_s=1e-3)
    np.testing.assert_array_equal(g, dev.read(state, DAY, np.random.default_rng(5),
                                              window_s=1e-3))
    np.testing.assert_array_equal(sd, dev.read_noise_std(state, DAY, window_s=1e-3))
    assert np.all(sd > 0)
    assert dev.mvm_read_parts(state, DAY, window_s=1e-3) is None  # the tile reads per time


def test_tile_with_rram_runs_at_increasing_times():
    rng = np.random.default_rng(0)
    tile = memsim.load_tile("generic-256", device="rram-cmo")
    w = rng.uniform(-1, 1, (32, 16))
    tile.program(w, rng)
    x = rng.uniform(-1, 1, (8, 32))
    for t in (1.0, DAY, 2 * DAY):
        y = tile.matvec(x, t, rng)
        assert y.shape == (8, 16) and np.all(np.isfinite(y))
