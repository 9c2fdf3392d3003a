"""VTEAM physical device: compiled kernels against slow references, loop shape, P&V, errors.

The slow references below are plain Python, one device and one step at a time. Two kinds:

- ``ref_advance`` / ``ref_program_verify``: the same algorithm as the compiled kernels
  (same RK4 step rule, same SplitMix64 noise stream), so they must agree to rounding;
- ``euler_advance`` and closed-form solutions: an independent integration of the VTEAM
  state equation, so the step rule itself is checked for accuracy.

Statistical checks use a fixed seed and a tolerance of 5 standard errors of the sample size.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

import memsim
from memsim.cards import CardError
from memsim.devices import physical
from memsim.devices.physical import (
    PhysicalDevice,
    iv_drive,
    iv_loop,
    loop_area,
    program_and_verify,
)

CARD = Path(__file__).resolve().parents[1] / "devices" / "vteam.toml"


def card_data() -> dict:
    with CARD.open("rb") as fh:
        return tomllib.load(fh)


def variant(**sections) -> PhysicalDevice:
    """The vteam card with some fields replaced: variant(window={"model": "none"})."""
    data = card_data()
    for section, fields in sections.items():
        if fields is None:
            data.pop(section, None)
            continue
        table = dict(data.get(section, {}))
        if section == "window" and "model" in fields:
            table = {}
        table.update(fields)
        data[section] = table
    return PhysicalDevice.from_card("vteam-variant", data)


def q(value, unit, source="test"):
    return {"value": value, "unit": unit, "source": source}


@pytest.fixture(scope="module")
def dev() -> PhysicalDevice:
    d = memsim.load_device("vteam")
    assert isinstance(d, PhysicalDevice)
    return d


# ------------------------------------------------------------------------------------------
# Slow, obvious references.
# ------------------------------------------------------------------------------------------
MASK64 = (1 << 64) - 1


def ref_splitmix(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def ref_normal(state: int) -> tuple[int, float]:
    state, a = ref_splitmix(state)
    state, b = ref_splitmix(state)
    u1 = 1.0 - (a >> 11) * 2.0**-53
    u2 = (b >> 11) * 2.0**-53
    return state, math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def ref_rate(d: PhysicalDevice, v: float) -> float:
    if v > d.v_off_v:
        return d.k_off_m_per_s * (v / d.v_off_v - 1.0) ** d.alpha_off
    if v < d.v_on_v:
        return d.k_on_m_per_s * (v / d.v_on_v - 1.0) ** d.alpha_on
    return 0.0


def ref_window(d: PhysicalDevice, w: float, towards_off: bool) -> float:
    x = (w - d.w_on_m) / (d.w_off_m - d.w_on_m)
    if d.window == "biolek":
        return 1.0 - x ** (2 * d.window_p) if towards_off else 1.0 - (1.0 - x) ** (2 * d.window_p)
    if d.window == "kvatinsky":
        if towards_off:
            return math.exp(-math.exp((w - d.a_off_m) / d.w_c_m))
        return math.exp(-math.exp(-(w - d.a_on_m) / d.w_c_m))
    return 1.0


def ref_g(d: PhysicalDevice, w: float) -> float:
    x = min(max((w - d.w_on_m) / (d.w_off_m - d.w_on_m), 0.0), 1.0)
    if d.iv == "exponential":
        return 1.0 / (d.r_on_ohm * math.exp(math.log(d.r_off_ohm / d.r_on_ohm) * x))
    return 1.0 / (d.r_on_ohm + (d.r_off_ohm - d.r_on_ohm) * x)


def ref_advance(d: PhysicalDevice, w: float, v: float, duration: float, scale: float = 1.0):
    """The kernel's step rule, written out: RK4, move <= span/50 (w_c/4) per step, clamp."""
    lo, hi = d.w_on_m, d.w_off_m
    r = ref_rate(d, v) * scale
    g0 = ref_g(d, w)
    if r == 0.0 or duration <= 0.0 or (r > 0 and w >= hi) or (r < 0 and w <= lo):
        return w, v * v * g0 * duration
    step_len = (hi - lo) / 50.0
    if d.window == "kvatinsky":
        step_len = min(step_len, d.w_c_m / 4.0)
    moves = abs(r) * duration / step_len
    n = 4096 if moves >= 4096 else max(math.ceil(moves), 1)
    h = duration / n
    towards_off = r > 0
    bound = hi if towards_off else lo

    def clamp(x):
        return min(max(x, lo), hi)

    def f(x):
        return r * ref_window(d, clamp(x), towards_off)

    energy = 0.0
    for step in range(n):
        k1 = f(w)
        k2 = f(clamp(w + 0.5 * h * k1))
        k3 = f(clamp(w + 0.5 * h * k2))
        k4 = f(clamp(w + h * k3))
        w = clamp(w + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))
        if abs(bound - w) <= (hi - lo) * 1e-12:
            w = bound
        g1 = ref_g(d, w)
        energy += v * v * 0.5 * (g0 + g1) * h
        g0 = g1
        if w == bound:
            energy += v * v * g1 * (duration - (step + 1) * h)
            break
    return w, energy


def euler_advance(d: PhysicalDevice, w: float, v: float, duration: float, n: int = 20000):
    """Independent check: forward Euler with n tiny steps, rectangle-rule energy."""
    h = duration / n
    energy = 0.0
    r = ref_rate(d, v)
    for _ in range(n):
        energy += v * v * ref_g(d, w) * h
        if r != 0.0:
            w = min(max(w + h * r * ref_window(d, w, r > 0), d.w_on_m), d.w_off_m)
    return w, energy


def ref_program_verify(d: PhysicalDevice, g_target: np.ndarray, seed: int):
    """Program-and-verify, one device and one pulse at a time (no non-idealities)."""
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, np.iinfo(np.uint64).max, size=g_target.shape, dtype=np.uint64,
                         endpoint=True)
    pv = d.program_verify
    tol = pv.tolerance * d.g_max_S
    c2c = d.cycle_to_cycle * d.programming_scale
    rsig = d.read_noise_rel * d.read_scale
    out = []
    for gt, s0 in zip(g_target.ravel(), seeds.ravel(), strict=True):
        state = int(s0)
        w = d.w_init_m
        g = ref_g(d, w)
        state, xi = ref_normal(state)
        g_meas = g * (1 + rsig * xi)
        energy = pv.read_voltage_v**2 * g * pv.read_time_s
        pulses, polarity, level = 0, 0, 0
        while abs(g_meas - gt) > tol and pulses < pv.max_pulses:
            pol = -1 if g_meas < gt else 1
            if pol != polarity:
                polarity, level = pol, 0
            if pol < 0:
                v = -min(pv.set_v_start + level * pv.set_v_step, pv.set_v_max)
            else:
                v = min(pv.reset_v_start + level * pv.reset_v_step, pv.reset_v_max)
            level += 1
            state, xi = ref_normal(state)
            w, e = ref_advance(d, w, v, pv.pulse_width_s, max(0.0, 1 + c2c * xi))
            energy += e
            pulses += 1
            g = ref_g(d, w)
            state, xi = ref_normal(state)
            g_meas = g * (1 + rsig * xi)
            energy += pv.read_voltage_v**2 * g * pv.read_time_s
        out.append((w, g, pulses, energy, abs(g_meas - gt) <= tol))
    return out


# ------------------------------------------------------------------------------------------
# Card and basic model.
# ------------------------------------------------------------------------------------------
def test_card_loads_with_published_defaults(dev):
    assert dev.name == "vteam"
    assert dev.g_min_S == pytest.approx(1e-3)  # 1/R_off, R_off = 1 kΩ
    assert dev.g_max_S == pytest.approx(2e-2)  # 1/R_on, R_on = 50 Ω
    assert dev.k_on_m_per_s == -10.0 and dev.k_off_m_per_s == 5e-4
    assert (dev.alpha_on, dev.alpha_off, dev.v_on_v, dev.v_off_v) == (3, 1, -0.2, 0.02)
    assert dev.w_off_m == pytest.approx(3e-9) and dev.w_on_m == 0.0
    rows = dev.parameters()
    assert rows and all(len(r) == 3 and r[2] for r in rows)


def test_conductance_and_inverse(dev):
    w = np.linspace(dev.w_on_m, dev.w_off_m, 7)
    assert dev.conductance(dev.w_on_m) == pytest.approx(dev.g_max_S)
    assert dev.conductance(dev.w_off_m) == pytest.approx(dev.g_min_S)
    np.testing.assert_allclose(dev.state_for(dev.conductance(w)), w, atol=1e-21)
    exp_dev = variant(iv={"model": "exponential"})
    assert exp_dev.conductance(exp_dev.w_on_m) == pytest.approx(exp_dev.g_max_S)
    assert exp_dev.conductance(exp_dev.w_off_m) == pytest.approx(exp_dev.g_min_S)
    np.testing.assert_allclose(exp_dev.state_for(exp_dev.conductance(w)), w, atol=1e-21)
    # R(w) = R_on exp(λ x): the middle is the geometric mean of R_on and R_off
    assert 1 / exp_dev.conductance(1.5e-9) == pytest.approx(math.sqrt(50.0 * 1000.0))


def test_no_state_change_between_thresholds(dev):
    volts = np.linspace(dev.v_on_v, dev.v_off_v, 41)
    w = np.linspace(dev.w_on_m, dev.w_off_m, 5)[:, None]
    assert np.all(dev.state_velocity(w, volts) == 0.0)
    prm = dev.params_array()
    for v in volts:
        w_new, e = physical._advance(1.2e-9, float(v), 1e-3, 1.0, prm)
        assert w_new == 1.2e-9
        assert e == pytest.approx(v * v * ref_g(dev, 1.2e-9) * 1e-3, rel=1e-12, abs=0)
    # a sine that never leaves (v_on, v_off) leaves the state where it was
    loop = iv_loop(dev, amplitude_v=0.019, frequency_hz=1e3, cycles=3, steps_per_cycle=400)
    assert np.all(loop["w"] == loop["w"][0])
    # just outside the thresholds the state moves, in the documented directions
    assert dev.state_velocity(1.5e-9, 1.01 * dev.v_off_v) > 0
    assert dev.state_velocity(1.5e-9, 1.01 * dev.v_on_v) < 0


# ------------------------------------------------------------------------------------------
# Kernels against references.
# ------------------------------------------------------------------------------------------
def test_noise_stream_matches_reference():
    state_k = np.uint64(12345678901234567890)
    state_r = 12345678901234567890
    for _ in range(50):
        state_k, xk = physical._normal(np.uint64(state_k))
        state_r, xr = ref_normal(state_r)
        assert int(state_k) == state_r
        assert xk == pytest.approx(xr, rel=1e-14, abs=1e-14)


def test_advance_matches_closed_forms():
    # no window: w moves linearly at the VTEAM rate until clamped
    d = variant(window={"model": "none"})
    prm = d.params_array()
    v, t = 0.1, 20e-9
    rate = 5e-4 * (0.1 / 0.02 - 1)
    w, _ = physical._advance(1e-9, v, t, 1.0, prm)
    assert w == pytest.approx(1e-9 + rate * t, rel=1e-12)
    w, _ = physical._advance(1e-9, -0.3, 1e-6, 1.0, prm)
    assert w == d.w_on_m  # clamped
    # Biolek p = 1: dx/dt = (r/D)(1 − x²) towards OFF, so x(t) = tanh(artanh(x0) + r t/D)
    d = variant(window={"model": "biolek", "p": q(1, "1")})
    prm = d.params_array()
    span = d.w_off_m - d.w_on_m
    for v, t, x0 in [(0.5, 50e-9, 0.2), (1.0, 30e-9, 0.6), (0.05, 1e-6, 0.0)]:
        r = ref_rate(d, v)
        w, _ = physical._advance(x0 * span, v, t, 1.0, prm)
        assert w / span == pytest.approx(math.tanh(math.atanh(x0) + r * t / span), rel=1e-8)
    # towards ON: y = 1 − x obeys the same law with |r|
    for v, t, x0 in [(-0.25, 5e-9, 0.9), (-0.22, 20e-9, 0.5)]:
        r = abs(ref_rate(d, v))
        w, _ = physical._advance(x0 * span, v, t, 1.0, prm)
        y = math.tanh(math.atanh(1 - x0) + r * t / span)
        assert 1 - w / span == pytest.approx(y, rel=1e-8)


@pytest.mark.parametrize("window", [
    {"model": "biolek", "p": q(2, "1")},
    {"model": "biolek", "p": q(5, "1")},
    {"model": "kvatinsky", "a_on": q(0.3, "nm"), "a_off": q(2.7, "nm"), "w_c": q(0.1, "nm")},
])
@pytest.mark.parametrize("iv", ["linear", "exponential"])
def test_advance_matches_fine_euler_and_step_reference(window, iv):
    d = variant(window=window, iv={"model": iv})
    prm = d.params_array()
    cases = [(0.6e-9, 0.3, 100e-9), (2.4e-9, -0.22, 20e-9), (1.5e-9, 1.0, 40e-9),
             (2.9e-9, -0.21, 10e-9), (0.1e-9, 0.05, 1e-6)]
    for w0, v, t in cases:
        w_k, e_k = physical._advance(w0, v, t, 1.0, prm)
        w_r, e_r = ref_advance(d, w0, v, t)
        assert w_k == pytest.approx(w_r, rel=1e-12, abs=1e-24)
        assert e_k == pytest.approx(e_r, rel=1e-12)
        w_e, e_e = euler_advance(d, w0, v, t)
        assert w_k == pytest.approx(w_e, abs=2e-3 * (d.w_off_m - d.w_on_m))
        assert e_k == pytest.approx(e_e, rel=2e-3)


@pytest.mark.parametrize("window", [
    {"model": "none"},
    {"model": "biolek", "p": q(3, "1")},
    {"model": "kvatinsky", "a_on": q(0.3, "nm"), "a_off": q(2.7, "nm"), "w_c": q(0.1, "nm")},
])
def test_state_velocity_matches_reference(window):
    d = variant(window=window)
    w = np.linspace(d.w_on_m, d.w_off_m, 9)
    volts = np.linspace(-0.6, 0.6, 49)
    got = d.state_velocity(w[:, None], volts[None, :])
    for a, wa in enumerate(w):
        for b, vb in enumerate(volts):
            r = ref_rate(d, vb)
            want = 0.0 if r == 0.0 else r * ref_window(d, wa, r > 0)
            assert got[a, b] == pytest.approx(want, rel=1e-12, abs=1e-30)


def test_waveform_kernel_matches_reference(dev):
    steps = 300
    loop = iv_loop(dev, amplitude_v=0.5, frequency_hz=2e7, cycles=1, steps_per_cycle=steps,
                   w0=[1.5e-9, 0.3e-9])
    v, dt = loop["v"], loop["t"][1]
    for j, w in enumerate([1.5e-9, 0.3e-9]):
        ref = [w]
        for k in range(1, len(v)):
            w, _ = ref_advance(dev, w, 0.5 * (v[k - 1] + v[k]), dt)
            ref.append(w)
        np.testing.assert_allclose(loop["w"][:, j], ref, rtol=1e-12, atol=1e-24)
        np.testing.assert_allclose(loop["i"][:, j], v * dev.conductance(np.array(ref)),
                                   rtol=1e-12)


@pytest.mark.parametrize("noise", [(0.0, 0.0), (0.1, 0.0), (0.2, 0.01)])
def test_program_verify_kernel_matches_reference(noise):
    c2c, read_noise = noise
    d = variant(variability={"cycle_to_cycle": q(c2c, "1"), "read_noise": q(read_noise, "1")})
    g = np.linspace(d.g_min_S, d.g_max_S, 12)
    state = program_and_verify(d, g, np.random.default_rng(7))
    ref = ref_program_verify(d, g, 7)
    x = state.extra
    for k, (w, gk, pulses, energy, conv) in enumerate(ref):
        assert x["pulses"][k] == pulses
        assert x["converged"][k] == conv
        assert x["w"][k] == pytest.approx(w, rel=1e-9, abs=1e-22)
        assert state.g_prog_S[k] == pytest.approx(gk, rel=1e-9)
        assert x["energy_j"][k] == pytest.approx(energy, rel=1e-9)


# ------------------------------------------------------------------------------------------
# The pinched hysteresis loop.
# ------------------------------------------------------------------------------------------
def lobe_areas(loop: dict, steps_per_cycle: int) -> tuple[float, float]:
    """|∮ i dv| of the positive and of the negative half-cycle of the last cycle (V·A)."""
    v, i = loop["v"][-steps_per_cycle - 1:], loop["i"][-steps_per_cycle - 1:]
    h = steps_per_cycle // 2

    def area(a, b):
        return abs(np.sum(0.5 * (i[a + 1:b + 1] + i[a:b]) * np.diff(v[a:b + 1])))

    return area(0, h), area(h, steps_per_cycle)


def test_pinched_hysteresis_loop(dev):
    spc = 2000
    loops = {f: iv_loop(dev, amplitude_v=0.5, frequency_hz=f, cycles=2, steps_per_cycle=spc)
             for f in (1e7, 1e8, 1e9)}
    for loop in loops.values():
        v, i = loop["v"], loop["i"]
        assert len(v) == len(i) == len(loop["t"]) == len(loop["w"]) == 2 * spc + 1
        # pinched: at every sign change of v the interpolated current is ~0
        k = np.nonzero(np.sign(v[:-1]) * np.sign(v[1:]) < 0)[0]
        assert len(k) >= 3
        frac = v[k] / (v[k] - v[k + 1])
        i_cross = i[k] + frac * (i[k + 1] - i[k])
        assert np.max(np.abs(i_cross)) < 1e-3 * np.max(np.abs(i))
        assert np.all(i[np.abs(v) < 1e-15] == pytest.approx(0.0, abs=1e-15))
        # and a real loop: the same voltage gives two currents on the way up and down
        assert sum(lobe_areas(loop, spc)) > 1e-5
        assert np.all((loop["w"] >= dev.w_on_m) & (loop["w"] <= dev.w_off_m))
    areas = [sum(lobe_areas(loops[f], spc)) for f in (1e7, 1e8, 1e9)]
    assert areas[1] < areas[0] and areas[2] < areas[1]
    assert areas[2] < 0.2 * areas[1]  # the loop collapses to a line as f grows
    assert loop_area(loops[1e8], spc) == pytest.approx(areas[1], rel=1e-12)


def test_suggested_drive_shows_a_shrinking_loop(dev):
    amplitude, freq = iv_drive(dev)
    assert amplitude > max(-dev.v_on_v, dev.v_off_v)
    base, fast = (loop_area(iv_loop(dev, amplitude_v=amplitude, frequency_hz=f), 2000)
                  for f in (freq, 10 * freq))
    assert base > 0 and fast < base


# ------------------------------------------------------------------------------------------
# Program-and-verify.
# ------------------------------------------------------------------------------------------
def test_program_verify_reaches_targets(dev):
    levels = np.linspace(dev.g_min_S, dev.g_max_S, 5)
    g = np.repeat(levels, 500).reshape(50, 50)
    state = dev.program(g, np.random.default_rng(0))
    x = state.extra
    pv = dev.program_verify
    tol = pv.tolerance * dev.g_max_S
    assert state.shape == g.shape and state.g_prog_S.shape == g.shape
    within = np.abs(state.g_prog_S - g) <= tol
    assert within.mean() >= 0.99
    assert np.array_equal(within, x["converged"])  # no read noise: verify sees the truth
    assert x["pulses"].dtype.kind == "i" and np.all(x["pulses"] >= 0)
    assert np.all(x["pulses"] <= pv.max_pulses)
    moved = g > dev.g_min_S + tol  # the start state (w_init = w_off) already meets g_min
    assert np.all(x["pulses"][moved] > 0) and np.all(x["pulses"][~moved] == 0)
    np.testing.assert_allclose(
        x["time_s"], pv.read_time_s + x["pulses"] * (pv.pulse_width_s + pv.read_time_s))
    assert np.all(x["energy_j"] > 0) and np.all(x["time_s"] > 0)
    # devices that needed no pulse spent exactly one verify read: v_read² G t_read
    e_read = pv.read_voltage_v**2 * dev.g_min_S * pv.read_time_s
    np.testing.assert_allclose(x["energy_j"][~moved], e_read, rtol=1e-12)
    assert np.all(x["energy_j"][moved] > e_read)
    np.testing.assert_allclose(dev.conductance(x["w"]), state.g_prog_S, rtol=1e-12)
    # read back: no drift, no read noise in this card
    for t in (0.0, 1.0, 86400.0, 3.15e8):
        assert np.array_equal(dev.read(state, t, np.random.default_rng(1)), state.g_prog_S)


def test_program_verify_is_seeded(dev):
    g = np.linspace(dev.g_min_S, dev.g_max_S, 200)
    a = dev.program(g, np.random.default_rng(11))
    b = dev.program(g, np.random.default_rng(11))
    c = dev.program(g, np.random.default_rng(12))
    for key in ("pulses", "energy_j", "w"):
        assert np.array_equal(a.extra[key], b.extra[key])
    assert np.array_equal(a.g_prog_S, b.g_prog_S)
    assert not np.array_equal(a.g_prog_S, c.g_prog_S)
    assert not np.array_equal(a.extra["pulses"], c.extra["pulses"])
    # with cycle-to-cycle variability off the result does not depend on the seed
    quiet = dev.noise_free()
    d1 = quiet.program(g, np.random.default_rng(11))
    d2 = quiet.program(g, np.random.default_rng(12))
    assert np.array_equal(d1.g_prog_S, d2.g_prog_S)
    assert np.array_equal(d1.extra["pulses"], d2.extra["pulses"])


def test_program_verify_from_given_state(dev):
    g = np.full(50, 0.5 * (dev.g_min_S + dev.g_max_S))
    first = program_and_verify(dev, g, np.random.default_rng(3))
    again = program_and_verify(dev, g, np.random.default_rng(4), w0=first.extra["w"])
    assert np.all(again.extra["pulses"] == 0)
    assert np.array_equal(again.extra["w"], first.extra["w"])
    with pytest.raises(ValueError, match="w0"):
        program_and_verify(dev, g, np.random.default_rng(4), w0=5e-9)


def test_read_noise_and_no_drift():
    sigma = 0.02
    d = variant(variability={"cycle_to_cycle": q(0.1, "1"), "read_noise": q(sigma, "1")})
    g_t = np.full(20000, 0.5 * (d.g_min_S + d.g_max_S))
    state = d.program(g_t, np.random.default_rng(5))
    rel = d.read(state, 3600.0, np.random.default_rng(6)) / state.g_prog_S - 1.0
    n = rel.size
    assert abs(rel.mean()) < 5 * sigma / math.sqrt(n)
    assert abs(rel.std(ddof=1) - sigma) < 5 * sigma / math.sqrt(2 * (n - 1))
    np.testing.assert_allclose(d.read_noise_std(state, 10.0), sigma * state.g_prog_S)
    # a tile that draws per-read noise itself gets the noise-free value here
    assert np.array_equal(d.read(state, 10.0, np.random.default_rng(1), window_s=1e-6),
                          state.g_prog_S)
    assert np.all(d.with_noise(read=0.0).read_noise_std(state, 0.0) == 0.0)
    # verify reads are noisy too: a device stops when the *measured* G is within the
    # tolerance, so the true error is bounded by the tolerance plus the read noise
    tol = d.program_verify.tolerance * d.g_max_S
    conv = state.extra["converged"]
    assert conv.mean() > 0.99
    err = np.abs(state.g_prog_S - g_t)[conv]
    assert np.all(err <= tol + 5 * sigma * state.g_prog_S[conv])
    assert np.mean(err > tol) > 0.1  # ... and it does exceed the tolerance for some


def test_nonidealities_compose():
    d = variant(nonidealities={"stuck_at_gmin_rate": q(5, "%"), "stuck_at_gmax_rate": q(5, "%"),
                               "levels": q(5, "1"), "gmax_variation": q(2, "%")})
    rng = np.random.default_rng(8)
    g = rng.uniform(d.g_min_S, d.g_max_S, 4000)
    state = d.program(g, rng)
    stuck = state.stuck
    assert stuck is not None
    assert abs(np.mean(stuck == -1) - 0.05) < 5 * math.sqrt(0.05 * 0.95 / g.size)
    assert np.all(state.g_prog_S[stuck == -1] == d.g_min_S)
    assert np.all(state.g_prog_S[stuck == 1] == d.g_max_S)
    # stuck devices are pulsed to the limit unless they happen to sit on their target
    levels = np.linspace(d.g_min_S, d.g_max_S, 5)
    goal = levels[np.argmin(np.abs(g[:, None] - levels), axis=1)]
    tol = d.program_verify.tolerance * d.g_max_S
    far = (stuck != 0) & (np.abs(goal - np.where(stuck < 0, d.g_min_S, d.g_max_S)) > tol)
    assert np.all(state.extra["pulses"][far] == d.program_verify.max_pulses)
    assert not np.any(state.extra["converged"][far])
    # free devices at inner levels reach the quantized target despite the g_max spread
    inner = (stuck == 0) & (goal > levels[0]) & (goal < levels[-1])
    assert np.mean(np.abs(state.g_prog_S[inner] - goal[inner]) <= tol) >= 0.99
    np.testing.assert_allclose(state.g_target_S, g)  # the request is kept as asked


def test_with_noise_is_a_frozen_copy(dev):
    quiet = dev.with_noise(programming=0.0, read=0.5)
    assert quiet.programming_scale == 0.0 and quiet.read_scale == 0.5
    assert dev.programming_scale == 1.0
    assert quiet.g_max_S == dev.g_max_S
    with pytest.raises(dataclasses.FrozenInstanceError):
        dev.read_scale = 2.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read_scale"):
        dev.with_noise(read=-1.0)


# ------------------------------------------------------------------------------------------
# Bad input.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, message", [
    ([1e-3, float("nan")], "NaN"),
    ([-1e-3], "negative"),
    ([0.03], "out of range"),
    ([0.5e-3], "out of range"),
])
def test_bad_targets_raise(dev, bad, message):
    with pytest.raises(ValueError, match=message):
        dev.program(np.array(bad), np.random.default_rng(0))


def test_bad_rng_and_time(dev):
    with pytest.raises(TypeError, match="Generator"):
        dev.program([dev.g_min_S], 0)
    state = dev.program([dev.g_min_S], np.random.default_rng(0))
    with pytest.raises(ValueError, match="t ="):
        dev.read(state, -1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="frequency_hz"):
        iv_loop(dev, amplitude_v=0.5, frequency_hz=0.0)
    with pytest.raises(TypeError, match="PhysicalDevice"):
        program_and_verify(memsim.load_device("pcm-generic"), [1e-6], np.random.default_rng(0))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad-vteam.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("old, new, words", [
    ('k_on = { value = -10.0,', 'k_on = { value = 10.0,', ["switching.k_on", "out of range"]),
    ('v_off = { value = 0.02,', 'v_off = { value = -0.02,', ["switching.v_off", "allowed"]),
    ('r_off = { value = 1.0, unit = "kohm"', 'r_off = { value = 10.0, unit = "ohm"',
     ["r_off", "r_on"]),
    ('unit = "m/s", source = "Technion ASIC² VTEAM Verilog-A defaults (K_off',
     'unit = "V", source = "Technion ASIC² VTEAM Verilog-A defaults (K_off',
     ["switching.k_off", "unit 'V'"]),
    ('read_voltage = { value = 0.01,', 'read_voltage = { value = 0.05,',
     ["read_voltage", "allowed"]),
    ('set_v_start = { value = 0.21,', 'set_v_start = { value = 0.15,',
     ["set_v_start", "threshold"]),
    ('model = "biolek"', 'model = "joglekar"', ["window.model", "allowed"]),
    ('max_pulses = { value = 100,', 'max_pulses = { value = 10.5,', ["max_pulses", "integer"]),
    ('w_init = { value = 3.0,', 'w_init = { value = 4.0,', ["w_init", "allowed"]),
    ('tolerance = { value = 1.0,', 'tolerance = { value = 100.0,',
     ["program_verify.tolerance", "allowed"]),
])
def test_bad_card_field_raises(tmp_path, old, new, words):
    text = CARD.read_text(encoding="utf-8")
    assert old in text
    path = _write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(CardError) as err:
        memsim.load_device(path)
    msg = str(err.value)
    assert "bad-vteam" in msg
    for word in words:
        assert word in msg


def test_unknown_and_missing_fields_raise(tmp_path):
    text = CARD.read_text(encoding="utf-8")
    path = _write(tmp_path, text.replace("[switching]\n", "[switching]\nk_middle = 3\n"))
    with pytest.raises(ValueError, match=r"bad-vteam.*unknown fields \['k_middle'\]"):
        memsim.load_device(path)
    lines = [ln for ln in text.splitlines() if not ln.startswith("alpha_on")]
    path = _write(tmp_path, "\n".join(lines))
    with pytest.raises(ValueError, match=r"bad-vteam.*missing \['alpha_on'\].*alpha_on in"):
        memsim.load_device(path)
    path = _write(tmp_path, text.replace("[program_verify]", "[program_verif]"))
    with pytest.raises(ValueError, match="unknown sections"):
        memsim.load_device(path)
    data = card_data()
    del data["variability"]
    with pytest.raises(ValueError, match=r"missing section \[variability\]"):
        PhysicalDevice.from_card("vteam-x", data)
