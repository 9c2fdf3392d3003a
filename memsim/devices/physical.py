"""Physical, voltage-driven memristor: the VTEAM model with program-and-verify.

VTEAM (Kvatinsky, Ramadan, Friedman, Kolodny, "VTEAM: A General Model for Voltage-Controlled
Memristors", IEEE TCAS-II 62(8), 786-790, 2015, doi:10.1109/TCSII.2015.2433536). The state is
a length w in [w_on, w_off] (m); w_on is the low-resistance (ON) end, w_off the high-resistance
(OFF) end. With a voltage v across the device::

    dw/dt = k_off (v/v_off − 1)^α_off · f_off(w)   for v > v_off > 0      (RESET, w grows)
          = 0                                        for v_on <= v <= v_off
          = k_on  (v/v_on  − 1)^α_on  · f_on(w)    for v < v_on < 0       (SET, k_on < 0)

Window functions f (named in the card's ``[window]`` table):

- ``biolek`` (Biolek, Biolek, Biolková, Radioengineering 18(2), 210, 2009), with
  x = (w − w_on)/(w_off − w_on): f_off = 1 − x^(2p), f_on = 1 − (1 − x)^(2p). The window is
  zero only at the edge the state moves towards, so a device never sticks at a bound.
- ``kvatinsky`` (TEAM/VTEAM): f_off = exp(−exp((w − a_off)/w_c)), f_on = exp(−exp(−(w − a_on)/w_c)).
- ``none``: f = 1 (the state is only clamped to its bounds).

Current-voltage relation (``[iv]``), i = v/R(w) with x as above:

- ``linear``:      R(w) = R_on + (R_off − R_on) x
- ``exponential``: R(w) = R_on exp(λ x), λ = ln(R_off/R_on)

so that g_min = 1/R_off and g_max = 1/R_on in both forms.

Numerics. The state equation is integrated by the private ``numba`` kernels below with
classical fixed-step Runge-Kutta (RK4). Within one constant-voltage interval the step count
is fixed in advance: the state may move at most (w_off − w_on)/50 per step (and at most
w_c/4 with the Kvatinsky window; at most 4096 steps per interval). After every step w is
clamped to [w_on, w_off]; a state within 1e-12·(w_off − w_on) of the bound it moves towards
is put on that bound, where it stays for the rest of the interval (a saturated pulse).
Energy is ∫ v·i dt = ∫ v² G(w(t)) dt by the trapezoidal rule on the same steps. The kernels
loop over devices and pulses inside compiled code; the pure-Python reference in
``tests/test_physical.py`` checks them.

Program-and-verify (:func:`program_and_verify`) is the incremental-step write-verify of
Wan et al. (Nature 608, 504, 2022) and Alibart et al. (Nanotechnology 23, 075201, 2012),
adapted to the device thresholds in the card's ``[program_verify]`` table: read at a small
voltage between the thresholds; while ``|G − G_target| > tolerance``, apply a SET pulse
(polarity of v_on) if G is too low or a RESET pulse (polarity of v_off) if G is too high;
the amplitude starts at ``*_v_start`` and grows by ``*_v_step`` with every further pulse of
the same polarity (up to ``*_v_max``) and restarts when the polarity flips. Cycle-to-cycle
variability scales the state change of each pulse by max(0, 1 + σ_c2c ξ), ξ ~ N(0, 1).

Random numbers inside the kernel come from one SplitMix64 stream per device, seeded from the
caller's ``numpy.random.Generator``; the same generator state gives identical results.
This model has no drift: the conductance stays where programming left it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numba
import numpy as np

from memsim.cards import (
    REFERENCES_FIELD,
    CardError,
    Schema,
    Section,
    card_field,
    card_header,
    check_fields,
    declared_sections,
    fields_of,
)
from memsim.devices.base import (
    NONIDEALITIES_SECTION,
    Device,
    DeviceState,
    NonIdealities,
    check_generator,
    check_time,
)
from memsim.errors import ConfigError

__all__ = ["VTEAM_SCHEMA", "PhysicalDevice", "ProgramVerify", "iv_drive", "iv_loop",
           "loop_area", "program_and_verify"]

# ----------------------------------------------------------------------------------------
# Compiled kernels. Parameters travel as one float64 array; these are its indices.
# ----------------------------------------------------------------------------------------
_W_ON, _W_OFF, _K_ON, _K_OFF, _A_ON, _A_OFF, _V_ON, _V_OFF = 0, 1, 2, 3, 4, 5, 6, 7
_R_ON, _R_OFF, _WINDOW, _P, _AW_ON, _AW_OFF, _W_C, _IV = 8, 9, 10, 11, 12, 13, 14, 15
_STEP_LEN = 16
_N_PRM = 17

# program-and-verify array
_PW, _TREAD, _VREAD, _SET0, _SETD, _SETMAX, _RST0, _RSTD, _RSTMAX, _TOL, _NMAX = range(11)
_N_PV = 11

_WINDOWS = {"none": 0, "biolek": 1, "kvatinsky": 2}
_IVS = {"linear": 0, "exponential": 1}

# Largest state move per RK4 step: this fraction of w_off − w_on (and, for the Kvatinsky
# window, at most w_c/4, the length over which that window changes).
_MAX_STEP_FRACTION = 1.0 / 50.0
_MAX_STEPS = 4096  # largest number of RK4 steps per constant-voltage interval
_SNAP_FRACTION = 1e-12  # closer than this (× w_off − w_on) to the bound it moves to: at the bound

_SM_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SM_M1 = np.uint64(0xBF58476D1CE4E5B9)
_SM_M2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31, _U11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0

_jit = numba.njit(cache=True)


@_jit
def _splitmix(state):
    """One SplitMix64 step: (new state, 64 random bits), all uint64 (wrapping arithmetic)."""
    state = np.uint64(state) + _SM_GAMMA
    z = state
    z = (z ^ (z >> _U30)) * _SM_M1
    z = (z ^ (z >> _U27)) * _SM_M2
    return state, z ^ (z >> _U31)


@_jit
def _normal(state):
    """A standard normal deviate by Box-Muller from two SplitMix64 draws."""
    state, a = _splitmix(state)
    state, b = _splitmix(state)
    u1 = 1.0 - np.float64(a >> _U11) * _TWO_M53  # (0, 1]
    u2 = np.float64(b >> _U11) * _TWO_M53  # [0, 1)
    return state, math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@_jit
def _rate(v, prm):
    """dw/dt without the window (m/s) at voltage v."""
    if v > prm[_V_OFF]:
        return prm[_K_OFF] * (v / prm[_V_OFF] - 1.0) ** prm[_A_OFF]
    if v < prm[_V_ON]:
        return prm[_K_ON] * (v / prm[_V_ON] - 1.0) ** prm[_A_ON]
    return 0.0


@_jit
def _window(w, off_direction, prm):
    """Window f(w) for motion towards w_off (RESET) or towards w_on (SET)."""
    code = prm[_WINDOW]
    if code == 1.0:
        x = (w - prm[_W_ON]) / (prm[_W_OFF] - prm[_W_ON])
        k = 2 * int(prm[_P])  # integer power: exponentiation by squaring
        if off_direction:
            return 1.0 - x**k
        return 1.0 - (1.0 - x) ** k
    if code == 2.0:
        if off_direction:
            return math.exp(-math.exp((w - prm[_AW_OFF]) / prm[_W_C]))
        return math.exp(-math.exp(-(w - prm[_AW_ON]) / prm[_W_C]))
    return 1.0


@_jit
def _conductance(w, prm):
    """G(w) in siemens, linear or exponential R(w)."""
    x = (w - prm[_W_ON]) / (prm[_W_OFF] - prm[_W_ON])
    x = min(max(x, 0.0), 1.0)
    if prm[_IV] == 1.0:
        return 1.0 / (prm[_R_ON] * math.exp(math.log(prm[_R_OFF] / prm[_R_ON]) * x))
    return 1.0 / (prm[_R_ON] + (prm[_R_OFF] - prm[_R_ON]) * x)


@_jit
def _clamp(w, prm):
    return min(max(w, prm[_W_ON]), prm[_W_OFF])


@_jit
def _advance(w, v, duration, scale, prm):
    """Hold v for ``duration`` seconds: (new w, energy ∫ v² G dt in J at unit G scale).

    ``scale`` multiplies the state velocity (cycle-to-cycle variability of one pulse).
    """
    r = _rate(v, prm) * scale
    g0 = _conductance(w, prm)
    at_bound = (r > 0.0 and w >= prm[_W_OFF]) or (r < 0.0 and w <= prm[_W_ON])
    if r == 0.0 or duration <= 0.0 or at_bound:  # no motion: w stays, current still flows
        return w, v * v * g0 * duration
    moves = abs(r) * duration / prm[_STEP_LEN]  # number of maximal steps needed
    n = _MAX_STEPS if moves >= _MAX_STEPS else max(math.ceil(moves), 1)
    h = duration / n
    off = r > 0.0
    bound = prm[_W_OFF] if off else prm[_W_ON]
    snap = (prm[_W_OFF] - prm[_W_ON]) * _SNAP_FRACTION
    energy = 0.0
    for step in range(n):
        k1 = r * _window(w, off, prm)
        k2 = r * _window(_clamp(w + 0.5 * h * k1, prm), off, prm)
        k3 = r * _window(_clamp(w + 0.5 * h * k2, prm), off, prm)
        k4 = r * _window(_clamp(w + h * k3, prm), off, prm)
        w = _clamp(w + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4), prm)
        if abs(bound - w) <= snap:
            w = bound
        g1 = _conductance(w, prm)
        energy += v * v * 0.5 * (g0 + g1) * h
        g0 = g1
        if w == bound:  # saturated: the rest of the interval at the bound
            energy += v * v * g1 * (duration - (step + 1) * h)
            break
    return w, energy


@_jit
def _waveform_kernel(w0, v, dt, prm):
    """States of all devices along a sampled voltage waveform, shape (len(v), len(w0)).

    Between samples k−1 and k the voltage is held at the mean of the two samples.
    """
    n_t = v.shape[0]
    n_dev = w0.shape[0]
    out = np.empty((n_t, n_dev))
    for d in range(n_dev):
        w = w0[d]
        out[0, d] = w
        for k in range(1, n_t):
            w, _ = _advance(w, 0.5 * (v[k - 1] + v[k]), dt, 1.0, prm)
            out[k, d] = w
    return out


@_jit
def _pv_kernel(w0, g_target, g_scale, frozen, seeds, prm, pv, c2c_sigma, read_sigma):
    """Program-and-verify every device; see :func:`program_and_verify` for the algorithm.

    Returns (w, true conductance, pulses, energy J, converged). ``g_scale`` multiplies a
    device's conductance (device-to-device g_max variation); ``frozen`` devices (stuck-at
    faults) are read and pulsed but their state does not move.
    """
    n = w0.shape[0]
    w_out = np.empty(n)
    g_out = np.empty(n)
    pulses = np.zeros(n, dtype=np.int64)
    energy = np.zeros(n)
    converged = np.zeros(n, dtype=np.bool_)
    tol = pv[_TOL]
    n_max = int(pv[_NMAX])
    v_read2_t = pv[_VREAD] * pv[_VREAD] * pv[_TREAD]
    set_sign = -1.0 if prm[_V_ON] < 0.0 else 1.0
    for d in range(n):
        state = seeds[d]
        w = w0[d]
        s = g_scale[d]
        gt = g_target[d]
        g = s * _conductance(w, prm)
        state, xi = _normal(state)
        g_meas = g * (1.0 + read_sigma * xi)
        e = v_read2_t * g
        count = 0
        polarity = 0
        level = 0
        while abs(g_meas - gt) > tol and count < n_max:
            pol = -1 if g_meas < gt else 1  # -1: SET (raise G), +1: RESET (lower G)
            if pol != polarity:
                polarity = pol
                level = 0
            if pol < 0:
                amp = min(pv[_SET0] + level * pv[_SETD], pv[_SETMAX])
                v = set_sign * amp
            else:
                amp = min(pv[_RST0] + level * pv[_RSTD], pv[_RSTMAX])
                v = -set_sign * amp
            level += 1
            state, xi = _normal(state)
            factor = max(0.0, 1.0 + c2c_sigma * xi)
            if frozen[d]:
                e += v * v * g * pv[_PW]
            else:
                w, de = _advance(w, v, pv[_PW], factor, prm)
                e += s * de
            count += 1
            g = s * _conductance(w, prm)
            state, xi = _normal(state)
            g_meas = g * (1.0 + read_sigma * xi)
            e += v_read2_t * g
        w_out[d] = w
        g_out[d] = g
        pulses[d] = count
        energy[d] = e
        converged[d] = abs(g_meas - gt) <= tol
    return w_out, g_out, pulses, energy, converged


_LEN = {"dimension": "length", "lo": -1e-6, "hi": 1e-6}
_T_PULSE = {"dimension": "time", "lo": 0.0, "hi": 1.0, "lo_open": True}
_AMP = {"dimension": "voltage", "lo": 0.0, "hi": 100.0, "lo_open": True}
_STEP = {"dimension": "voltage", "lo": 0.0, "hi": 100.0}
_RES = {"dimension": "resistance", "lo": 0.0, "hi": 1e12, "lo_open": True}


def _siemens(g: float) -> str:
    return f"{g * 1e3:.4g} mS" if g >= 1e-3 else f"{g * 1e6:.4g} µS"


# ----------------------------------------------------------------------------------------
# Configuration dataclasses.
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ProgramVerify:
    """Incremental-step program-and-verify settings (the card's ``[program_verify]``).

    Amplitudes are magnitudes: SET pulses take the polarity of v_on, RESET that of v_off.
    ``tolerance`` is a fraction of g_max: a device is done when
    ``|G − G_target| <= tol·g_max``.
    """

    pulse_width_s: float = card_field("program_verify", "pulse_width", **_T_PULSE, example=1e-8,
                                      help="width of one SET or RESET pulse")
    read_time_s: float = card_field("program_verify", "read_time", **_T_PULSE, example=1e-6,
                                    help="duration of one verify read")
    read_voltage_v: float = card_field("program_verify", "read_voltage", dimension="voltage",
                                       example=0.01,
                                       lo=-100.0, hi=100.0,
                                       help="verify read voltage, between v_on and v_off, not 0")
    set_v_start: float = card_field("program_verify", **_AMP, example=0.21,
                                    help="first SET amplitude, above |v_on|")
    set_v_step: float = card_field("program_verify", **_STEP, example=0.01,
                                   help="SET amplitude increase per further pulse")
    set_v_max: float = card_field("program_verify", **_AMP,
                                  example=0.4, help="largest SET amplitude")
    reset_v_start: float = card_field("program_verify", **_AMP, example=0.03,
                                      help="first RESET amplitude, above v_off")
    reset_v_step: float = card_field("program_verify", **_STEP, example=0.01,
                                     help="RESET amplitude increase per further pulse")
    reset_v_max: float = card_field("program_verify", **_AMP,
                                    example=0.5, help="largest RESET amplitude")
    tolerance: float = card_field("program_verify", example=0.01, lo=0.0, hi=1.0, lo_open=True,
                                  hi_open=True,
                                  help="done when |G − G_target| <= tolerance·g_max")
    max_pulses: int = card_field("program_verify", example=100, lo=1, hi=1e6, integer=True,
                                 help="pulses before giving up on a device")

    def __post_init__(self) -> None:
        check_fields(self, "program_verify")

    def as_array(self, g_max_S: float) -> np.ndarray:
        a = np.empty(_N_PV)
        a[_PW], a[_TREAD], a[_VREAD] = self.pulse_width_s, self.read_time_s, self.read_voltage_v
        a[_SET0], a[_SETD], a[_SETMAX] = self.set_v_start, self.set_v_step, self.set_v_max
        a[_RST0], a[_RSTD], a[_RSTMAX] = self.reset_v_start, self.reset_v_step, self.reset_v_max
        a[_TOL] = self.tolerance * g_max_S
        a[_NMAX] = self.max_pulses
        return a


@dataclass(frozen=True, kw_only=True)
class PhysicalDevice(Device):
    """A VTEAM memristor programmed by incremental-step program-and-verify.

    Lengths in m, velocities in m/s, voltages in V, resistances in Ω (see the module
    docstring for the equations). ``programming_scale`` multiplies the cycle-to-cycle
    spread, ``read_scale`` the read noise; ``drift_spread_scale`` is kept for the common
    interface and has no effect (the model has no drift).
    """

    name: str
    description: str = ""
    w_on_m: float = card_field("state", "w_on", **_LEN,
                               example=0.0, help="w_on: the ON (low-resistance) end")
    w_off_m: float = card_field("state", "w_off", **_LEN, example=3e-9,
                                help="w_off: the OFF (high-resistance) end")
    w_init_m: float = card_field("state", "w_init", **_LEN, example=3e-9,
                                 help="the state of a device before its first programming")
    k_on_m_per_s: float = card_field("switching", "k_on", dimension="velocity", lo=-1e6,
                                     example=-10.0,
                                     hi=0.0, hi_open=True, help="k_on < 0 (SET)")
    k_off_m_per_s: float = card_field("switching", "k_off", dimension="velocity", lo=0.0,
                                      example=5e-4,
                                      hi=1e6, lo_open=True, help="k_off > 0 (RESET)")
    alpha_on: float = card_field("switching", example=3.0, lo=0.0, hi=20.0, lo_open=True,
                                 help="α_on of the SET rate")
    alpha_off: float = card_field("switching", example=1.0, lo=0.0, hi=20.0, lo_open=True,
                                  help="α_off of the RESET rate")
    v_on_v: float = card_field("switching", "v_on", dimension="voltage",
                               example=-0.2, lo=-100.0, hi=0.0,
                               hi_open=True, help="SET threshold v_on < 0")
    v_off_v: float = card_field("switching", "v_off", dimension="voltage",
                                example=0.02, lo=0.0, hi=100.0,
                                lo_open=True, help="RESET threshold v_off > 0")
    window: str = card_field("window", "model", choices=tuple(_WINDOWS), default="biolek",
                             help="window function: biolek, kvatinsky or none")
    window_p: int = card_field("window", "p", lo=1, hi=100, example=2, integer=True, default=1,
                               when=("model", ("biolek",)), help="exponent p of Biolek's window")
    a_on_m: float = card_field("window", "a_on", **_LEN, default=0.0, example=1e-9,
                               when=("model", ("kvatinsky",)), help="a_on of Kvatinsky's window")
    a_off_m: float = card_field("window", "a_off", **_LEN, default=0.0, example=2e-9,
                                when=("model", ("kvatinsky",)),
                                help="a_off of Kvatinsky's window")
    w_c_m: float = card_field("window", "w_c", dimension="length", lo=0.0, hi=1e-6,
                              lo_open=True, default=1e-10, when=("model", ("kvatinsky",)),
                              help="w_c of Kvatinsky's window")
    iv: str = card_field("iv", "model", choices=tuple(_IVS), default="linear",
                         help="I–V relation: linear or exponential R(w)")
    r_on_ohm: float = card_field("iv", "r_on", **_RES, example=50.0, help="R_on = 1/g_max")
    r_off_ohm: float = card_field("iv", "r_off", **_RES, example=1000.0, help="R_off = 1/g_min")
    cycle_to_cycle: float = card_field("variability", lo=0.0, hi=1.0, default=0.0,
                                       help="relative σ of the state change of each pulse")
    read_noise_rel: float = card_field("variability", "read_noise", lo=0.0, hi=0.5,
                                       default=0.0, help="relative σ of a read")
    program_verify: ProgramVerify = card_field("", python_type=ProgramVerify,
                                               help="program-and-verify settings")
    nonideal: NonIdealities = field(default_factory=NonIdealities)
    references: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    programming_scale: float = 1.0
    drift_spread_scale: float = 1.0
    read_scale: float = 1.0
    g_min_S: float = field(init=False)
    g_max_S: float = field(init=False)

    def __post_init__(self) -> None:
        def bad(what: str) -> ConfigError:
            return ConfigError(f"{self.name}: {what}")

        for k in ("programming_scale", "drift_spread_scale", "read_scale"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int | float) \
                    or not (np.isfinite(v) and v >= 0):
                raise bad(f"noise scale {k} = {v!r} must be >= 0")
        check_fields(self, f"device {self.name!r}")

        if not self.w_off_m > self.w_on_m:
            raise bad(f"w_off = {self.w_off_m:g} m must be above w_on = {self.w_on_m:g} m")
        if not self.w_on_m <= self.w_init_m <= self.w_off_m:
            raise bad(f"w_init = {self.w_init_m:g} m is out of range; allowed "
                      f"[{self.w_on_m:g}, {self.w_off_m:g}] m (w_on to w_off)")
        if not (self.k_on_m_per_s < 0 < self.k_off_m_per_s):
            raise bad(f"need k_on < 0 < k_off, got k_on = {self.k_on_m_per_s:g} m/s, "
                      f"k_off = {self.k_off_m_per_s:g} m/s")
        if not (self.v_on_v < 0 < self.v_off_v):
            raise bad(f"need v_on < 0 < v_off, got v_on = {self.v_on_v:g} V, "
                      f"v_off = {self.v_off_v:g} V")
        if not 0 < self.r_on_ohm < self.r_off_ohm:
            raise bad(f"need 0 < r_on < r_off, got r_on = {self.r_on_ohm:g} Ω, "
                      f"r_off = {self.r_off_ohm:g} Ω")
        pv = self.program_verify
        if not self.v_on_v < pv.read_voltage_v < self.v_off_v or pv.read_voltage_v == 0:
            raise bad(f"program_verify.read_voltage = {pv.read_voltage_v:g} V is out of range; "
                      f"allowed ({self.v_on_v:g}, {self.v_off_v:g}) V without 0 (a read must "
                      "not switch the device)")
        for kind, start, vmax, threshold in (
            ("set", pv.set_v_start, pv.set_v_max, -self.v_on_v),
            ("reset", pv.reset_v_start, pv.reset_v_max, self.v_off_v),
        ):
            if not start > threshold:
                raise bad(f"program_verify.{kind}_v_start = {start:g} V is out of range; "
                          f"allowed ({threshold:g}, inf) V (above the switching threshold)")
            if vmax < start:
                raise bad(f"program_verify.{kind}_v_max = {vmax:g} V is out of range; "
                          f"allowed [{start:g}, inf) V ({kind}_v_start and above)")
        object.__setattr__(self, "g_min_S", 1.0 / self.r_off_ohm)
        object.__setattr__(self, "g_max_S", 1.0 / self.r_on_ohm)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_card(cls, name: str, data: Mapping[str, Any]) -> PhysicalDevice:
        """Build the device from a parsed TOML card (``[card] family = "vteam"``)."""
        where = f"device card {name!r}"
        parts = VTEAM_SCHEMA.parse(data, where)
        head = parts["card"].values
        if head.get("family") != "vteam":  # pragma: no cover - load_device dispatches
            raise CardError(f"{where}: card.family = {head.get('family')!r}; this loader "
                            "reads family 'vteam'")
        pv = parts["program_verify"]
        own = {k: v for k, p in parts.items() if k not in ("card", "program_verify",
                                                          "nonidealities")
               for k, v in p.values.items()}
        sources = {k: v for p in parts.values() for k, v in p.sources.items()}
        try:
            nonideal = NonIdealities(**parts["nonidealities"].values,
                                     sources=parts["nonidealities"].sources) \
                if "nonidealities" in parts else NonIdealities()
            return cls(name=name, description=head.get("description", ""),
                       references=tuple(head.get("references", ())),
                       program_verify=ProgramVerify(**pv.values), nonideal=nonideal,
                       sources=sources, **own)
        except ConfigError as exc:
            raise CardError(f"{where}: {exc}") from None

    # -- model pieces ------------------------------------------------------------------
    def params_array(self) -> np.ndarray:
        """The model parameters in the layout the compiled kernels read (SI units)."""
        p = np.zeros(_N_PRM)
        p[_W_ON], p[_W_OFF] = self.w_on_m, self.w_off_m
        p[_K_ON], p[_K_OFF] = self.k_on_m_per_s, self.k_off_m_per_s
        p[_A_ON], p[_A_OFF] = self.alpha_on, self.alpha_off
        p[_V_ON], p[_V_OFF] = self.v_on_v, self.v_off_v
        p[_R_ON], p[_R_OFF] = self.r_on_ohm, self.r_off_ohm
        p[_WINDOW], p[_P] = _WINDOWS[self.window], self.window_p
        p[_AW_ON], p[_AW_OFF], p[_W_C] = self.a_on_m, self.a_off_m, self.w_c_m
        p[_IV] = _IVS[self.iv]
        p[_STEP_LEN] = (self.w_off_m - self.w_on_m) * _MAX_STEP_FRACTION
        if self.window == "kvatinsky":
            p[_STEP_LEN] = min(p[_STEP_LEN], 0.25 * self.w_c_m)
        return p

    def conductance(self, w_m: Any) -> np.ndarray:
        """G(w) in S for states w in m (clamped to [w_on, w_off])."""
        x = np.clip((np.asarray(w_m, dtype=np.float64) - self.w_on_m)
                    / (self.w_off_m - self.w_on_m), 0.0, 1.0)
        if self.iv == "exponential":
            return 1.0 / (self.r_on_ohm * np.exp(np.log(self.r_off_ohm / self.r_on_ohm) * x))
        return 1.0 / (self.r_on_ohm + (self.r_off_ohm - self.r_on_ohm) * x)

    def state_for(self, g_S: Any) -> np.ndarray:
        """The state w (m) at which G(w) = g (g clipped to [g_min, g_max])."""
        r = 1.0 / np.clip(np.asarray(g_S, dtype=np.float64), self.g_min_S, self.g_max_S)
        if self.iv == "exponential":
            x = np.log(r / self.r_on_ohm) / np.log(self.r_off_ohm / self.r_on_ohm)
        else:
            x = (r - self.r_on_ohm) / (self.r_off_ohm - self.r_on_ohm)
        return self.w_on_m + np.clip(x, 0.0, 1.0) * (self.w_off_m - self.w_on_m)

    def state_velocity(self, w_m: Any, v: Any) -> np.ndarray:
        """dw/dt (m/s) at states w (m) and voltages v (V), broadcast; window included."""
        w, volts = np.broadcast_arrays(np.asarray(w_m, dtype=np.float64),
                                       np.asarray(v, dtype=np.float64))
        off, on = volts > self.v_off_v, volts < self.v_on_v
        with np.errstate(invalid="ignore"):
            rate = np.where(off, self.k_off_m_per_s
                            * np.abs(volts / self.v_off_v - 1.0) ** self.alpha_off, 0.0)
            rate = np.where(on, self.k_on_m_per_s
                            * np.abs(volts / self.v_on_v - 1.0) ** self.alpha_on, rate)
        x = (w - self.w_on_m) / (self.w_off_m - self.w_on_m)
        if self.window == "biolek":
            k = 2 * self.window_p
            f = np.where(off, 1.0 - x**k, 1.0 - (1.0 - x) ** k)
        elif self.window == "kvatinsky":
            f = np.where(off, np.exp(-np.exp((w - self.a_off_m) / self.w_c_m)),
                         np.exp(-np.exp(-(w - self.a_on_m) / self.w_c_m)))
        else:
            f = np.ones(w.shape)
        return rate * f

    # -- Device interface --------------------------------------------------------------
    def with_noise(self, *, programming: float = 1.0, drift_spread: float = 1.0,
                   read: float = 1.0) -> PhysicalDevice:
        """A copy with cycle-to-cycle spread (``programming``) and read noise scaled."""
        return replace(self, programming_scale=float(programming),
                       drift_spread_scale=float(drift_spread), read_scale=float(read))

    def program(self, g_target_S: Any, rng: np.random.Generator) -> DeviceState:
        """Program-and-verify every device to ``g_target_S``; see :func:`program_and_verify`."""
        return program_and_verify(self, g_target_S, rng)

    def read(self, state: DeviceState, t: float, rng: np.random.Generator,
             *, window_s: float | None = None) -> np.ndarray:
        """Conductance read back at ``t`` s after programming (S).

        VTEAM has no drift or relaxation: G(t) = G_prog for every t. Read noise is white,
        relative and Gaussian, σ = read_noise · read_scale · G_prog, drawn fresh per read.
        With ``window_s`` given (a tile drawing its per-read noise from
        :meth:`read_noise_std`) no noise is added here: white noise has no slow part.
        """
        rng = check_generator(rng)
        check_time(t)
        g = np.array(state.g_prog_S, dtype=np.float64)
        sigma = self.read_noise_rel * self.read_scale
        if window_s is None and sigma > 0.0:
            g = np.maximum(g * (1.0 + sigma * rng.standard_normal(g.shape)), 0.0)
        return self._apply_stuck(g, state.stuck)

    def read_noise_std(self, state: DeviceState, t: float, *, window_s: float = 1.0
                       ) -> np.ndarray:
        """σ (S) of one read: read_noise · read_scale · G_prog (0 for stuck devices)."""
        check_time(t)
        sd = self.read_noise_rel * self.read_scale * np.asarray(state.g_prog_S, dtype=np.float64)
        if state.stuck is not None:
            sd = np.where(state.stuck != 0, 0.0, sd)
        return sd

    def parameters(self) -> list[tuple[str, str, str]]:
        s = self.sources
        pv = self.program_verify
        rows = [
            ("model", f"VTEAM, {self.window} window, {self.iv} I-V", "Kvatinsky et al. 2015"),
            ("w_on", f"{self.w_on_m * 1e9:g} nm", s.get("w_on_m", "")),
            ("w_off", f"{self.w_off_m * 1e9:g} nm", s.get("w_off_m", "")),
            ("w_init", f"{self.w_init_m * 1e9:g} nm", s.get("w_init_m", "")),
            ("k_on", f"{self.k_on_m_per_s:g} m/s", s.get("k_on_m_per_s", "")),
            ("k_off", f"{self.k_off_m_per_s:g} m/s", s.get("k_off_m_per_s", "")),
            ("alpha_on", f"{self.alpha_on:g}", s.get("alpha_on", "")),
            ("alpha_off", f"{self.alpha_off:g}", s.get("alpha_off", "")),
            ("v_on", f"{self.v_on_v:g} V", s.get("v_on_v", "")),
            ("v_off", f"{self.v_off_v:g} V", s.get("v_off_v", "")),
        ]
        if self.window == "biolek":
            rows.append(("window p", f"{self.window_p}", s.get("window_p", "")))
        elif self.window == "kvatinsky":
            rows += [("a_on", f"{self.a_on_m * 1e9:g} nm", s.get("a_on_m", "")),
                     ("a_off", f"{self.a_off_m * 1e9:g} nm", s.get("a_off_m", "")),
                     ("w_c", f"{self.w_c_m * 1e9:g} nm", s.get("w_c_m", ""))]
        rows += [
            ("R_on", f"{self.r_on_ohm:g} Ω", s.get("r_on_ohm", "")),
            ("R_off", f"{self.r_off_ohm:g} Ω", s.get("r_off_ohm", "")),
            ("g_min", _siemens(self.g_min_S), "1/R_off"),
            ("g_max", _siemens(self.g_max_S), "1/R_on"),
            ("cycle-to-cycle σ", f"{self.cycle_to_cycle * self.programming_scale:g}",
             s.get("cycle_to_cycle", "")),
            ("read noise σ_rel", f"{self.read_noise_rel * self.read_scale:g}",
             s.get("read_noise_rel", "")),
            ("P&V pulse width", f"{pv.pulse_width_s * 1e9:g} ns",
             s.get("pulse_width_s", "")),
            ("P&V read time", f"{pv.read_time_s * 1e9:g} ns",
             s.get("read_time_s", "")),
            ("P&V read voltage", f"{pv.read_voltage_v:g} V",
             s.get("read_voltage_v", "")),
            ("P&V SET amplitude", f"{pv.set_v_start:g} V + {pv.set_v_step:g} V/pulse, "
             f"max {pv.set_v_max:g} V", s.get("set_v_start", "")),
            ("P&V RESET amplitude", f"{pv.reset_v_start:g} V + {pv.reset_v_step:g} V/pulse, "
             f"max {pv.reset_v_max:g} V", s.get("reset_v_start", "")),
            ("P&V tolerance", f"{pv.tolerance:g} g_max = {_siemens(pv.tolerance * self.g_max_S)}",
             s.get("tolerance", "")),
            ("P&V max pulses", f"{pv.max_pulses}", s.get("max_pulses", "")),
        ]
        return rows


# ----------------------------------------------------------------------------------------
# Public functions.
# ----------------------------------------------------------------------------------------
def _vteam_sections() -> tuple[Section, ...]:
    helps = {"state": "the state variable w (m)", "switching": "the VTEAM rate equation",
             "window": "the window function (model and its parameters)",
             "iv": "the current-voltage relation", "variability": "cycle-to-cycle and read noise"}
    return (
        card_header("vteam", "device", REFERENCES_FIELD, key="family"),
        *declared_sections(PhysicalDevice, helps),
        Section("program_verify", fields_of(ProgramVerify),
                help="incremental-step program-and-verify"),
        NONIDEALITIES_SECTION,
    )


#: The declaration of VTEAM device cards (``devices/<name>.toml``, ``[card] family =
#: "vteam"``).
VTEAM_SCHEMA = Schema(
    kind="vteam", title="Device card, family vteam", folder="devices",
    sections=_vteam_sections(),
    help="A voltage-controlled memristor (VTEAM, Kvatinsky et al. 2015) programmed by "
         "incremental-step program-and-verify (memsim.load_device). Every field is required "
         "(window parameters only for their window model).")


def _check_physical(device: Any) -> PhysicalDevice:
    if not isinstance(device, PhysicalDevice):
        raise TypeError(f"device must be a PhysicalDevice (a VTEAM card), got "
                        f"{type(device).__name__}")
    return device


def program_and_verify(device: PhysicalDevice, g_target_S: Any, rng: np.random.Generator,
                       *, w0: Any = None) -> DeviceState:
    """Iterative program-and-verify of every device to ``g_target_S`` (S, any shape).

    Per device, starting from state ``w0`` (m; default the card's w_init): read at the
    read voltage; while ``|G − G_target| > tolerance·g_max`` and fewer than max_pulses pulses
    were applied, apply one SET or RESET pulse (incremental amplitude, see the module
    docstring) and read again. Targets first go through the card's non-idealities:
    quantized to ``levels``; a per-device conductance scale (``gmax_variation``) multiplies
    the device's G(w), so verify compensates it where the target stays reachable; stuck
    devices never move (they are pulsed max_pulses times unless already within tolerance)
    and read exactly g_min or g_max.

    Returns a :class:`DeviceState` whose ``extra`` holds per device ``pulses`` (int),
    ``time_s`` = read_time + pulses·(pulse_width + read_time) (the first verify read
    included), ``energy_j`` = ∫ v·i dt over all pulses and verify reads, ``converged``
    (bool, judged on the last verify read) and ``w`` (final state, m).
    """
    device = _check_physical(device)
    rng = check_generator(rng)
    g_t = device.check_targets(g_target_S)
    shape = g_t.shape
    ni = device.nonideal
    g_goal = ni.quantize(g_t, device.g_min_S, device.g_max_S)
    scale = ni.draw_gmax_scale(shape, rng)
    stuck = ni.draw_stuck(shape, rng)
    if w0 is None:
        w_start = np.full(shape, device.w_init_m)
    else:
        w_start = np.array(np.broadcast_to(np.asarray(w0, dtype=np.float64), shape))
        if not np.all(np.isfinite(w_start)):
            raise ValueError(f"{device.name}: w0 contains NaN or infinite values")
        if w_start.size and (w_start.min() < device.w_on_m or w_start.max() > device.w_off_m):
            raise ValueError(f"{device.name}: w0 is out of range; allowed "
                             f"[{device.w_on_m:g}, {device.w_off_m:g}] m")
    frozen = np.zeros(shape, dtype=np.bool_)
    if stuck is not None:
        frozen = stuck != 0
        w_start = np.where(stuck < 0, device.w_off_m, np.where(stuck > 0, device.w_on_m,
                                                                  w_start))
        scale = np.where(frozen, 1.0, scale)
    seeds = rng.integers(0, np.iinfo(np.uint64).max, size=shape, dtype=np.uint64,
                         endpoint=True)
    pv = device.program_verify
    w, g, pulses, energy, converged = _pv_kernel(
        w_start.ravel(), g_goal.ravel(), np.ascontiguousarray(scale, dtype=np.float64).ravel(),
        frozen.ravel(), seeds.ravel(), device.params_array(), pv.as_array(device.g_max_S),
        device.cycle_to_cycle * device.programming_scale,
        device.read_noise_rel * device.read_scale,
    )
    g_prog = device._apply_stuck(g.reshape(shape), stuck)
    pulses = pulses.reshape(shape)
    extra = {
        "pulses": pulses,
        "time_s": pv.read_time_s + pulses * (pv.pulse_width_s + pv.read_time_s),
        "energy_j": energy.reshape(shape),
        "converged": converged.reshape(shape),
        "w": w.reshape(shape),
    }
    return DeviceState(g_target_S=g_t, g_prog_S=g_prog, stuck=stuck, extra=extra)


def iv_loop(device: PhysicalDevice, *, amplitude_v: float, frequency_hz: float,
            cycles: int = 2, steps_per_cycle: int = 2000, w0: Any = None
            ) -> dict[str, np.ndarray]:
    """Drive with v(t) = amplitude·sin(2π f t) and record t, v, i, w (the pinched loop).

    ``w0`` (m): start state, a number or an array of several devices (default: middle of
    [w_on, w_off]). Returns arrays ``t`` and ``v`` of length cycles·steps_per_cycle + 1 and
    ``i`` (A), ``w`` (m) of that length (one device) or of shape (len(t), n_devices).
    The current is i = v·G(w): zero whenever v = 0, the pinch of a memristor's loop.
    """
    device = _check_physical(device)
    for label, value in (("amplitude_v", amplitude_v), ("frequency_hz", frequency_hz)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{label} = {value!r} is out of range; allowed (0, inf)")
    if int(cycles) != cycles or cycles < 1:
        raise ValueError(f"cycles = {cycles!r} must be an integer >= 1")
    if int(steps_per_cycle) != steps_per_cycle or steps_per_cycle < 8:
        raise ValueError(f"steps_per_cycle = {steps_per_cycle!r} must be an integer >= 8")
    if w0 is None:
        w0 = 0.5 * (device.w_on_m + device.w_off_m)
    w0_arr = np.asarray(w0, dtype=np.float64)
    if not np.all(np.isfinite(w0_arr)) or w0_arr.min() < device.w_on_m \
            or w0_arr.max() > device.w_off_m:
        raise ValueError(f"w0 is out of range; allowed [{device.w_on_m:g}, "
                         f"{device.w_off_m:g}] m")
    n = int(cycles) * int(steps_per_cycle)
    dt = 1.0 / (frequency_hz * steps_per_cycle)
    t = np.arange(n + 1) * dt
    v = amplitude_v * np.sin(2.0 * np.pi * np.arange(n + 1) / steps_per_cycle)
    w = _waveform_kernel(np.atleast_1d(w0_arr).ravel(), v, dt, device.params_array())
    i = v[:, None] * device.conductance(w)
    if w0_arr.ndim == 0:
        w, i = w[:, 0], i[:, 0]
    return {"t": t, "v": v, "i": i, "w": w}


def loop_area(loop: Mapping[str, np.ndarray], steps_per_cycle: int) -> float:
    """Area (V·A) of the pinched loop in the last drive cycle of an :func:`iv_loop` result.

    The two lobes (v > 0 and v < 0 half-cycles) are closed curves through the origin and
    turn in opposite senses, so their areas ``|∮ i dv|`` are added, not their signed integrals.
    For several devices, the mean over devices.
    """
    v = np.asarray(loop["v"])[-steps_per_cycle - 1:]
    i = np.asarray(loop["i"])[-steps_per_cycle - 1:]
    if i.ndim == 1:
        i = i[:, None]
    half = steps_per_cycle // 2
    total = np.zeros(i.shape[1])
    for a, b in ((0, half), (half, steps_per_cycle)):
        dv = np.diff(v[a:b + 1])[:, None]
        total += np.abs(np.sum(0.5 * (i[a + 1:b + 1] + i[a:b]) * dv, axis=0))
    return float(total.mean())


def iv_drive(device: PhysicalDevice, *, steps_per_cycle: int = 2000) -> tuple[float, float]:
    """A sine drive (amplitude V, frequency Hz) that shows the device's pinched loop well.

    Amplitude: 2.5 times the larger threshold magnitude, ``max(|v_on|, v_off)``. Frequency: of
    a log grid from 1e-2/τ to 1e2/τ (τ: time for the slower switching direction to cross
    the state range at that amplitude, window ignored), the one with the largest loop
    area; above it the loop shrinks with frequency (a memristor's fingerprint).
    """
    device = _check_physical(device)
    amplitude = 2.5 * max(-device.v_on_v, device.v_off_v)
    span = device.w_off_m - device.w_on_m
    prm = device.params_array()
    speeds = [abs(_rate(amplitude, prm)), abs(_rate(-amplitude, prm))]
    tau = span / min(s for s in speeds if s > 0)
    grid = np.geomspace(1e-2 / tau, 1e2 / tau, 17)
    areas = [loop_area(iv_loop(device, amplitude_v=amplitude, frequency_hz=f,
                               steps_per_cycle=steps_per_cycle), steps_per_cycle)
             for f in grid]
    return amplitude, float(grid[int(np.argmax(areas))])
