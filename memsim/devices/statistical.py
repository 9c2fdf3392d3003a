"""Statistical device models: PCM (Nandakumar 2019 / Le Gallo 2023), RRAM, ideal.

One model family, assembled from the card: a programming-error law, a drift model and a
read-noise model, plus the composable non-idealities of :mod:`memsim.devices.base`.

Programming (all families)
    G_prog = max(0, G_T + σ_prog(x) ξ),  ξ ~ N(0, 1), x = ĝ_T = G_T/g_max or G_T in µS.

Drift, ``power_law`` (PCM; Nandakumar et al., ICECS 2019; Le Gallo et al., Nat. Electron.
6, 680, 2023)
    ν = |μ_ν(ĝ_T) + σ_ν(ĝ_T) ξ| drawn once at programming;
    G_drift(t) = G_prog ((t + t0)/t0)^(−ν),  t in seconds since programming.

Drift, ``log_relaxation`` (filamentary RRAM; IBM CMO/HfOx and NeuRRAM fits, see the cards)
    G_drift(t) = G_prog + m τ + W(σ(t)²),  τ = ln(max(t, t_ref)/t_ref),  σ(t) = σ_0 + σ_1 τ^p;
    W is one Brownian path per device, drawn at programming: reads of one state at several
    times are points of one trajectory (see :class:`LogRelaxation`).

Read noise, ``accumulated_1f`` (same PCM papers)
    σ_rel(t) = Q_s(ĝ_prog) √(ln((t + t0 + t_read)/(2 t_read)));  G = max(0, G_drift (1 + σ_rel ξ)).
    The 1/f band runs from 1/(t + t0 + t_read) to 1/(2 t_read). A tile that draws noise per
    MVM splits it at 1/window: ``read(..., window_s=w)`` keeps the slow part
    (ln((t + t0 + t_read)/w)) and ``read_noise_std(..., window_s=w)`` gives the fast part
    (ln(w/(2 t_read))), so that the two variances add up to the total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from memsim._random import draw_seed, standard_normal
from memsim.cards import CardError, Field, take_quantity
from memsim.devices._relaxation import relaxation_walk
from memsim.devices.base import (
    Device,
    DeviceState,
    NonIdealities,
    check_generator,
    check_time,
)
from memsim.devices.laws import LawSpec, parse_law
from memsim.errors import StateError

__all__ = ["AccumulatedOneOverF", "LogRelaxation", "PowerLawDrift", "StatisticalDevice"]


def _x(law: LawSpec, g_s: np.ndarray, g_max_s: float) -> np.ndarray:
    """The variable a law is written in: ĝ = G/g_max or G in µS."""
    return g_s / g_max_s if law.variable == "g_norm" else g_s * 1e6


@dataclass(frozen=True, kw_only=True)
class PowerLawDrift:
    """PCM drift: G(t) = G_prog ((t + t0)/t0)^(−ν), ν = |μ_ν(ĝ_T) + σ_ν(ĝ_T) ξ|."""

    t0_s: float
    nu_mean: LawSpec
    nu_std: LawSpec

    def draw(self, g_target_s, g_max_s, rng, spread_scale):
        mu = self.nu_mean(_x(self.nu_mean, g_target_s, g_max_s))
        if spread_scale == 0.0:
            return np.abs(mu)
        sd = self.nu_std(_x(self.nu_std, g_target_s, g_max_s)) * spread_scale
        return np.abs(mu + sd * rng.standard_normal(g_target_s.shape))

    def apply(self, state, t, g_max_s, rng, spread_scale):
        log_ratio = np.log((t + self.t0_s) / self.t0_s)  # a scalar: one exp per device
        return state.g_prog_s * np.exp(-log_ratio * state.drift_nu)


@dataclass(frozen=True, kw_only=True)
class LogRelaxation:
    """Conductance relaxation of filamentary RRAM after programming: one persistent random
    path per device, whose one-time statistics are the card's log-time law.

    The card (a fit of the population observed at each time t after programming) gives, with
    τ = ln(max(t, t_ref)/t_ref), u = τ^p and x the target (ĝ_T or G_T in µS):

        mean shift m·τ,   spread σ(t) = σ_0(x) + σ_1(x)·u   for t > 0;   G(0) = G_prog.

    A fit of one-time marginals says nothing about how one device moves between two reads,
    but a device is one physical state that evolves: reading it at 1 day and at 2 days must
    give two points of the same trajectory, not two independent draws. memsim models it as
    the Gaussian process with exactly those marginals whose changes over disjoint time
    intervals are independent — a Brownian motion in the variance variable s = σ(t)² (a
    random walk in log-time, time-changed so that Var matches the card at every t). This
    correlation structure is memsim's assumption: the cards' sources report one-time
    statistics only.

        G(t) = G_prog + m·τ + W(σ(t)²),   W a standard Brownian motion per device,
        Cov(W(σ(t1)²), W(σ(t2)²)) = σ(min(t1, t2))²,  corr = σ(t1)/σ(t2) for t1 <= t2.

    Written with independent standard parts, W(σ²) = σ_0 ξ + √(2σ_0σ_1) β_1(u) + σ_1 β_2(u²)
    (ξ ~ N(0, 1), β_1, β_2 standard Brownian motions; the variances add to (σ_0 + σ_1 u)²).

    The offset σ_0 (the card's spread already present at t_ref, the first time its fit
    covers) is the jump W(σ_0²) = σ_0 ξ: drawn once per device, present at every t > 0 and
    constant up to t_ref (nothing is extrapolated below t_ref, as before); the growth beyond
    is the walk. For the CMO/HfOx card (σ = 0.41 µS + 0.042 µS·ln t) this is a fixed 0.41 µS
    offset plus a walk; for the NeuRRAM card (σ_0 = 0, p = 1/2) σ² = k² ln t, a plain random
    walk in ln t.

    Sampling: programming stores one 64-bit seed in ``state.extra["relax_seed"]``; the path
    is evaluated at any t from that seed with counter-based Brownian motions
    (:mod:`memsim.devices._relaxation`): any set of read times, in any order, gives the same
    path, and the ``rng`` of a read does not drive this term (read noise is still drawn per
    read). The spread scale of :meth:`StatisticalDevice.with_noise` (``drift_spread``)
    scales W.
    """

    t_ref_s: float
    mean_shift_s: float  # m, S per unit of ln-time
    spread_offset: LawSpec  # σ_0, S
    spread_slope: LawSpec  # σ_1, S per unit of τ^p
    exponent: float  # p

    def draw(self, g_target_s, g_max_s, rng, spread_scale):
        return None

    def tau(self, t: float) -> float:
        return float(np.log(max(t, self.t_ref_s) / self.t_ref_s))

    def spread_parts_s(self, g_target_s: np.ndarray,
                       g_max_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(σ_0, σ_1) per device in S, from the laws at the targets."""
        off = np.asarray(self.spread_offset(_x(self.spread_offset, g_target_s, g_max_s)),
                         dtype=np.float64)
        slope = np.asarray(self.spread_slope(_x(self.spread_slope, g_target_s, g_max_s)),
                           dtype=np.float64)
        off = np.broadcast_to(off, np.shape(g_target_s))
        slope = np.broadcast_to(slope, np.shape(g_target_s))
        if (off.size and off.min() < 0) or (slope.size and slope.min() < 0):
            raise CardError(
                f"drift.spread_offset / drift.spread_slope give a negative σ at these targets "
                f"(σ_0 min {off.min():.3g} S, σ_1 min {slope.min():.3g} S); a spread must be >= 0")
        return off, slope

    def spread_s(self, g_target_s: np.ndarray, t: float, g_max_s: float) -> np.ndarray:
        """σ(t) in S per device: the spread of the population at time t (the card's law)."""
        if t == 0.0:
            return np.zeros(np.shape(g_target_s))
        off, slope = self.spread_parts_s(g_target_s, g_max_s)
        return off + slope * self.tau(t) ** self.exponent

    def walk_s(self, state: DeviceState, t: float, g_max_s: float) -> np.ndarray:
        """W(σ(t)²) per device in S: the relaxation path of ``state`` at t (0 at t = 0)."""
        seed = state.extra.get("relax_seed")
        if seed is None:
            raise StateError(
                "this device state has no relaxation seed (extra['relax_seed']): program it "
                "with the RRAM device's program(), which draws the relaxation path once")
        out = np.zeros(state.shape)
        if t == 0.0 or out.size == 0:
            return out
        off, slope = self.spread_parts_s(state.g_target_s, g_max_s)
        u = self.tau(t) ** self.exponent
        relaxation_walk(np.uint64(seed), float(u), np.ascontiguousarray(off).ravel(),
                        np.ascontiguousarray(slope).ravel(), out.reshape(-1))
        return out

    def apply(self, state, t, g_max_s, rng, spread_scale):
        """G(t) = max(0, G_prog + m·τ + spread_scale·W(σ(t)²)); ``rng`` is not used."""
        if t == 0.0:
            return np.array(state.g_prog_s, dtype=np.float64)
        g = state.g_prog_s + self.mean_shift_s * self.tau(t)
        if spread_scale:
            g = g + spread_scale * self.walk_s(state, t, g_max_s)
        return np.maximum(g, 0.0)


@dataclass(frozen=True, kw_only=True)
class AccumulatedOneOverF:
    """Accumulated 1/f read noise over the band 1/(t + t0 + t_read) … 1/(2 t_read).

    Relative form (PCM; Nandakumar 2019): σ(t) = Q_s(x_prog) · G_drift · √L(t).
    Absolute form (CMO RRAM; Lombardo et al., DRC 2024): σ(t) = A(x_drift) · √L(t) with A in S.
    L(t) = ln((t + t0 + t_read)/(2 t_read)).
    """

    t_read_s: float
    t0_s: float
    amplitude: LawSpec
    relative: bool

    def sigma_unit_s(self, state: DeviceState, g_drift_s: np.ndarray, g_max_s: float):
        """σ per unit √(ln-band) in S."""
        if self.relative:
            q = state.extra.get("q_s")
            if q is None:
                q = self.amplitude(_x(self.amplitude, state.g_prog_s, g_max_s))
            return q * g_drift_s
        return self.amplitude(_x(self.amplitude, g_drift_s, g_max_s))

    def slow_variance_factor(self, t: float, window_s: float | None) -> float:
        top = t + self.t0_s + self.t_read_s
        bottom = 2.0 * self.t_read_s if window_s is None else max(window_s, 2 * self.t_read_s)
        return float(np.log(max(top, bottom) / bottom))

    def fast_variance_factor(self, t: float, window_s: float) -> float:
        floor = 2.0 * self.t_read_s
        top = max(t + self.t0_s + self.t_read_s, floor)
        w = min(max(window_s, floor), top)
        return float(np.log(w / floor))


_SECTIONS = {"card", "conductance", "programming", "drift", "read_noise", "nonidealities"}
_G = Field(dimension="conductance", lo=0.0, hi=1.0)
_T_POS = Field(dimension="time", lo=0.0, hi=1e9, lo_open=True)


def _section(data: Mapping[str, Any], key: str, where: str, allowed: set[str]) -> Mapping:
    table = data.get(key)
    if not isinstance(table, Mapping):
        raise CardError(f"{where}: missing section [{key}]")
    unknown = set(table) - allowed
    if unknown:
        raise CardError(f"{where}: [{key}] has unknown fields {sorted(unknown)}; allowed: "
                        f"{sorted(allowed)}")
    return table


def _require(table: Mapping, key: str, where: str) -> Any:
    if key not in table:
        raise CardError(f"{where}: missing field '{key}'")
    return table[key]


_DRIFT_FIELDS = {
    "power_law": {"t0", "nu_mean", "nu_std"},
    "log_relaxation": {"t_ref", "mean_shift", "spread_offset", "spread_slope", "exponent"},
    "none": set(),
}
_READ_FIELDS = {
    "accumulated_1f": {"t_read", "t0", "q_s"},
    "accumulated_1f_absolute": {"t_read", "t0", "sigma"},
    "none": set(),
}


def _model_section(data, key, where, models):
    allowed = {"model"} | set().union(*models.values())
    table = _section(data, key, where, allowed)
    model = _require(table, "model", f"{where} [{key}]")
    if not isinstance(model, str) or model not in models:
        raise CardError(f"{where}: {key}.model = {model!r} is unknown; allowed: {sorted(models)}")
    extra = set(table) - {"model"} - models[model]
    if extra:
        raise CardError(f"{where}: [{key}] model {model!r} takes {sorted(models[model])}; "
                        f"unknown {sorted(extra)}")
    missing = {k for k in models[model] if k != "t0" or key == "drift"} - set(table)
    if missing:
        raise CardError(f"{where}: [{key}] model {model!r} is missing {sorted(missing)}")
    return model, table


def _parse_drift(data, where, law):
    model, tab = _model_section(data, "drift", where, _DRIFT_FIELDS)
    if model == "power_law":
        t0 = take_quantity(tab["t0"], _T_POS, f"{where}: drift.t0").value
        return PowerLawDrift(
            t0_s=t0,
            nu_mean=law(tab["nu_mean"], "drift.nu_mean", "dimensionless"),
            nu_std=law(tab["nu_std"], "drift.nu_std", "dimensionless"),
        ), t0
    if model == "log_relaxation":
        t_ref = take_quantity(tab["t_ref"], _T_POS, f"{where}: drift.t_ref").value
        return LogRelaxation(
            t_ref_s=t_ref,
            mean_shift_s=take_quantity(tab["mean_shift"],
                                       Field(dimension="conductance", lo=-1e-3, hi=1e-3),
                                       f"{where}: drift.mean_shift").value,
            spread_offset=law(tab["spread_offset"], "drift.spread_offset", "conductance"),
            spread_slope=law(tab["spread_slope"], "drift.spread_slope", "conductance"),
            exponent=take_quantity(tab["exponent"],
                                   Field(dimension="dimensionless", lo=0.0, hi=4.0),
                                   f"{where}: drift.exponent").value,
        ), None
    return None, None


def _parse_read_noise(data, where, law, drift_t0_s):
    model, tab = _model_section(data, "read_noise", where, _READ_FIELDS)
    if model == "none":
        return None
    t_read = take_quantity(tab["t_read"], _T_POS, f"{where}: read_noise.t_read").value
    if "t0" in tab:
        t0 = take_quantity(tab["t0"], Field(dimension="time", lo=0.0, hi=1e9),
                           f"{where}: read_noise.t0").value
    elif drift_t0_s is not None:
        t0 = drift_t0_s
    else:
        raise CardError(f"{where}: [read_noise] needs t0 when the drift model has none")
    if model == "accumulated_1f":
        amp = law(tab["q_s"], "read_noise.q_s", "dimensionless")
    else:
        amp = law(tab["sigma"], "read_noise.sigma", "conductance")
    return AccumulatedOneOverF(t_read_s=t_read, t0_s=t0, amplitude=amp,
                               relative=model == "accumulated_1f")


@dataclass(frozen=True, kw_only=True)
class StatisticalDevice(Device):
    """A device whose programming, drift and read noise follow fitted statistics."""

    name: str
    description: str
    g_min_s: float
    g_max_s: float
    programming_sigma: LawSpec
    drift: PowerLawDrift | LogRelaxation | None
    read_noise: AccumulatedOneOverF | None
    nonideal: NonIdealities = field(default_factory=NonIdealities)
    references: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    devices_per_polarity: int = 1
    programming_scale: float = 1.0
    drift_spread_scale: float = 1.0
    read_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.g_min_s < self.g_max_s:
            raise ValueError(f"{self.name}: need 0 <= g_min < g_max, got "
                             f"{self.g_min_s:g}, {self.g_max_s:g} S")
        for k in ("programming_scale", "drift_spread_scale", "read_scale"):
            v = getattr(self, k)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{self.name}: noise scale {k} = {v!r} must be >= 0")

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_card(cls, name: str, data: Mapping[str, Any]) -> StatisticalDevice:
        where = f"device card {name!r}"
        unknown = set(data) - _SECTIONS
        if unknown:
            raise CardError(f"{where}: unknown sections {sorted(unknown)}; allowed: "
                            f"{sorted(_SECTIONS)}")
        card = _section(data, "card", where, {"family", "description", "references"})
        cond = _section(data, "conductance", where, {"g_min", "g_max", "devices_per_polarity"})
        n_dev = 1
        if "devices_per_polarity" in cond:
            n_dev = int(take_quantity(cond["devices_per_polarity"],
                                      Field(dimension="dimensionless", lo=1, hi=16, integer=True),
                                      f"{where}: conductance.devices_per_polarity").value)
        g_min = take_quantity(_require(cond, "g_min", f"{where} [conductance]"), _G,
                              f"{where}: conductance.g_min")
        g_max = take_quantity(_require(cond, "g_max", f"{where} [conductance]"),
                              Field(dimension="conductance", lo=0.0, hi=1.0, lo_open=True),
                              f"{where}: conductance.g_max")
        if g_min.value >= g_max.value:
            raise CardError(f"{where}: conductance.g_min = {g_min.value:g} S must be below "
                            f"g_max = {g_max.value:g} S")
        g_range_norm = (g_min.value / g_max.value, 1.0)
        g_range_us = (g_min.value * 1e6, g_max.value * 1e6)

        def law(table: Any, w: str, dimension: str, nonneg: bool = True) -> LawSpec:
            variable = table.get("variable") if isinstance(table, Mapping) else None
            rng_ = g_range_us if variable == "g_uS" else (max(g_range_norm[0], 1e-4), 1.0)
            return parse_law(table, f"{where}: {w}", dimension=dimension,
                             variable_range=rng_, nonnegative=nonneg)

        prog = _section(data, "programming", where, {"sigma"})
        sigma = law(_require(prog, "sigma", f"{where} [programming]"), "programming.sigma",
                    "conductance")

        drift, t0_s = _parse_drift(data, where, law)
        read_noise = _parse_read_noise(data, where, law, t0_s)

        refs = card.get("references", [])
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise CardError(f"{where}: card.references must be a list of strings")
        nonideal = NonIdealities.from_card(data.get("nonidealities"), f"{where}: nonidealities")
        return cls(
            name=name,
            description=str(card.get("description", "")),
            g_min_s=g_min.value,
            g_max_s=g_max.value,
            programming_sigma=sigma,
            drift=drift,
            read_noise=read_noise,
            nonideal=nonideal,
            references=tuple(refs),
            sources={"g_min": g_min.source, "g_max": g_max.source},
            devices_per_polarity=n_dev,
        )

    # -- the model ---------------------------------------------------------------------
    def with_noise(self, *, programming: float = 1.0, drift_spread: float = 1.0,
                   read: float = 1.0) -> StatisticalDevice:
        return replace(self, programming_scale=float(programming),
                       drift_spread_scale=float(drift_spread), read_scale=float(read))

    def sigma_prog_s(self, g_target_s: np.ndarray) -> np.ndarray:
        """Programming σ (S) at the given targets, before noise scaling."""
        g = np.asarray(g_target_s, dtype=np.float64)
        return self.programming_sigma(_x(self.programming_sigma, g, self.g_max_s))

    def program(self, g_target_s: Any, rng: np.random.Generator) -> DeviceState:
        rng = check_generator(rng)
        g_t = self.check_targets(g_target_s)
        shape = g_t.shape
        ni = self.nonideal
        g_eff = ni.quantize(g_t, self.g_min_s, self.g_max_s) * ni.draw_gmax_scale(shape, rng)
        g_prog = g_eff
        if self.programming_scale:
            sigma = self.programming_scale * self.sigma_prog_s(g_eff)
            g_prog = np.maximum(g_eff + sigma * rng.standard_normal(shape), 0.0)
        nu = None
        if self.drift is not None:
            nu = self.drift.draw(g_eff, self.g_max_s, rng, self.drift_spread_scale)
        stuck = ni.draw_stuck(shape, rng)
        g_prog = self._apply_stuck(g_prog, stuck)
        extra = {}
        if isinstance(self.drift, LogRelaxation):
            # the device's relaxation path, fixed now (drawn last: the draws above unchanged)
            extra["relax_seed"] = np.array(draw_seed(rng), dtype=np.uint64)
        if self.read_noise is not None and self.read_noise.relative:
            # Q_s depends on G_prog only: evaluate the law once, not at every read
            amp = self.read_noise.amplitude
            extra["q_s"] = amp(_x(amp, g_prog, self.g_max_s))
        return DeviceState(g_target_s=g_t, g_prog_s=g_prog, drift_nu=nu, stuck=stuck,
                           extra=extra)

    def drifted(self, state: DeviceState, t: float, rng: np.random.Generator) -> np.ndarray:
        """G_drift(t): drift or relaxation only, no read noise (S).

        A function of the state and t only: power-law drift is deterministic given ν, and the
        relaxation path was fixed at programming (``rng`` is accepted and not used)."""
        t = check_time(t)
        if self.drift is None:
            return np.array(state.g_prog_s, dtype=np.float64)
        g = self.drift.apply(state, t, self.g_max_s, rng, self.drift_spread_scale)
        return self._apply_stuck(g, state.stuck)

    def read(self, state: DeviceState, t: float, rng: np.random.Generator,
             *, window_s: float | None = None) -> np.ndarray:
        return self._read(state, t, check_generator(rng), window_s, None)[0]

    def read_noise_std(self, state: DeviceState, t: float, *, window_s: float = 1.0) -> np.ndarray:
        t = check_time(t)
        return self._fast_sd(state, t, self._mean_drifted(state, t), window_s)

    def read_for_mvm(self, state: DeviceState, t: float, rng: np.random.Generator,
                     *, window_s: float) -> tuple[np.ndarray, np.ndarray]:
        g, sd = self._read(state, t, check_generator(rng), window_s, window_s)
        return g, sd

    def mvm_read_parts(self, state: DeviceState, t: float, *, window_s: float):
        if isinstance(self.drift, LogRelaxation) or (
                self.read_noise is not None and not self.read_noise.relative):
            # not split here (the tile then reads per time with read_for_mvm). Relaxation is a
            # deterministic path of the state now, so a split would be exact; left to the tile.
            return None
        t = check_time(t)
        g = self.drifted(state, t, None)  # deterministic for power-law drift
        fast = self._fast_sd(state, t, g, window_s)
        if self.read_noise is None or self.read_scale == 0.0:
            return g, np.zeros_like(g), fast
        var = self.read_noise.slow_variance_factor(t, window_s)
        slow = self.read_scale * np.sqrt(var) * self.read_noise.sigma_unit_s(state, g, self.g_max_s)
        if state.stuck is not None:
            slow = np.where(state.stuck != 0, 0.0, slow)
        return g, slow, fast

    def _read(self, state, t, rng, window_s, sd_window_s):
        """(read conductances, fast read-noise σ or None); drift computed once."""
        t = check_time(t)
        # drift and relaxation are states of the device at t (no draw): the read noise is
        # around this value, and its amplitude is that of this conductance
        g = self.drifted(state, t, rng)
        sd = None if sd_window_s is None else self._fast_sd(state, t, g, sd_window_s)
        if self.read_noise is None or self.read_scale == 0.0:
            return g, sd
        var = self.read_noise.slow_variance_factor(t, window_s)
        if var <= 0.0:
            return g, sd
        unit_s = self.read_noise.sigma_unit_s(state, g, self.g_max_s)
        sigma = self.read_scale * np.sqrt(var) * unit_s
        g = np.maximum(g + sigma * standard_normal(rng, g.shape), 0.0)
        return self._apply_stuck(g, state.stuck), sd

    def _fast_sd(self, state: DeviceState, t: float, g_mean: np.ndarray,
                 window_s: float) -> np.ndarray:
        if self.read_noise is None or self.read_scale == 0.0:
            return np.zeros(state.shape)
        var = self.read_noise.fast_variance_factor(t, window_s)
        unit_s = self.read_noise.sigma_unit_s(state, g_mean, self.g_max_s)
        sd = self.read_scale * np.sqrt(var) * unit_s
        if state.stuck is not None:
            sd = np.where(state.stuck != 0, 0.0, sd)
        return sd

    def _mean_drifted(self, state: DeviceState, t: float) -> np.ndarray:
        """G_drift(t) of each device, around which its reads scatter (S)."""
        return self.drifted(state, t, None)

    def parameters(self) -> list[tuple[str, str, str]]:
        rows = [
            ("g_min", f"{self.g_min_s * 1e6:.4g} µS", self.sources.get("g_min", "")),
            ("g_max", f"{self.g_max_s * 1e6:.4g} µS", self.sources.get("g_max", "")),
            ("programming σ", f"law in {self.programming_sigma.unit}",
             self.programming_sigma.source),
        ]
        if isinstance(self.drift, PowerLawDrift):
            rows += [("drift t0", f"{self.drift.t0_s:g} s", ""),
                     ("drift ν mean", "law", self.drift.nu_mean.source),
                     ("drift ν spread", "law", self.drift.nu_std.source)]
        elif isinstance(self.drift, LogRelaxation):
            rows += [("relaxation t_ref", f"{self.drift.t_ref_s:g} s", ""),
                     ("relaxation mean shift", f"{self.drift.mean_shift_s * 1e6:.4g} µS/ln t", ""),
                     ("relaxation spread", "law", self.drift.spread_slope.source)]
        if self.read_noise is not None:
            rows += [("t_read", f"{self.read_noise.t_read_s * 1e9:g} ns", ""),
                     ("read noise amplitude", "law", self.read_noise.amplitude.source)]
        return rows
