"""Statistical device models: PCM (Nandakumar 2019 / Le Gallo 2023), RRAM, ideal.

One model family, assembled from the card: a programming-error law, a drift law and a
read-noise law, plus the composable non-idealities of :mod:`memsim.devices.base`.

Drift and read-noise laws are plug-ins (:class:`DriftLaw`, :class:`ReadNoiseLaw`), chosen by
``[drift] model`` and ``[read_noise] model`` from :data:`DRIFT_LAWS` and
:data:`READ_NOISE_LAWS`. A new law is one class in one file (``memsim/devices/drift_*.py``
or ``read_noise_*.py``, imported with this module, or a module of your own imported before
the card is loaded) registered with ``@DRIFT_LAWS.register``; its card fields are its
dataclass fields declared with :func:`memsim.cards.card_field` (section "drift" or
"read_noise"). Every registered law passes the contract tests of ``tests/test_plugins.py``.

Programming (all families)
    G_prog = max(0, G_T + σ_prog(x) ξ),  ξ ~ N(0, 1), x = ĝ_T = G_T/g_max or G_T in µS.

Drift, ``power_law``
    (PCM; Nandakumar et al., ICECS 2019; Le Gallo et al., Nat. Electron. 6, 680, 2023)
    ``ν = |μ_ν(ĝ_T) + σ_ν(ĝ_T) ξ|`` drawn once at programming;
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

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from memsim._random import draw_seed, standard_normal
from memsim.cards import (
    REFERENCES_FIELD,
    CardError,
    Field,
    Registry,
    Schema,
    Section,
    card_field,
    card_header,
    check_fields,
    declared_sections,
    fields_of,
)
from memsim.devices._relaxation import relaxation_walk
from memsim.devices.base import (
    NONIDEALITIES_SECTION,
    Device,
    DeviceState,
    NonIdealities,
    check_generator,
    check_time,
)
from memsim.devices.laws import LawSpec, law_field
from memsim.errors import ConfigError, StateError

__all__ = ["DRIFT_LAWS", "READ_NOISE_LAWS", "STATISTICAL_SCHEMA", "AccumulatedOneOverF",
           "AccumulatedOneOverFAbsolute", "DriftLaw", "LogRelaxation", "NoDrift",
           "NoReadNoise", "PowerLawDrift", "ReadNoiseLaw", "StatisticalDevice"]

#: Drift laws by the name a device card gives in ``[drift] model``.
DRIFT_LAWS = Registry("drift law")
#: Read-noise laws by the name a device card gives in ``[read_noise] model``.
READ_NOISE_LAWS = Registry("read-noise law")


def _x(law: LawSpec, g_S: np.ndarray, g_max_S: float) -> np.ndarray:
    """The variable a law is written in: ĝ = G/g_max or G in µS."""
    return g_S / g_max_S if law.variable == "g_norm" else g_S * 1e6


_T_POS = {"dimension": "time", "lo": 0.0, "hi": 1e9, "lo_open": True}


# -- the protocols ----------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class DriftLaw:
    """How the conductance of a programmed device moves with the time since programming.

    A law is a frozen dataclass whose fields are its ``[drift]`` card fields. Class
    attributes: ``name`` (the card's ``model``); ``state_keys`` (the per-device arrays
    :meth:`program` keeps in ``DeviceState.extra``); ``tile_cache``: a tile may cache
    (mean, slow σ, fast σ) per read time for it (:meth:`StatisticalDevice.mvm_read_parts`).
    """

    name: ClassVar[str] = ""
    state_keys: ClassVar[tuple[str, ...]] = ()
    tile_cache: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_fields(self, f"drift law {self.name!r}")

    @property
    def reference_time_s(self) -> float | None:
        """The law's time offset t0 (s), the read-noise law's default; None: it has none."""
        return None

    def program(self, g_target_S: np.ndarray, g_max_S: float, rng: np.random.Generator,
                spread_scale: float) -> dict[str, np.ndarray]:
        """What is drawn per device at programming (``state_keys``); ``spread_scale``
        scales the device-to-device spread (0: none, no draws)."""
        return {}

    def drifted(self, state: DeviceState, t: float, g_max_S: float, spread_scale: float
                ) -> np.ndarray:
        """G_drift(t) per device (S), before stuck faults; a function of the state and t."""
        raise NotImplementedError

    def parameters(self) -> list[tuple[str, str, str]]:
        """(name, value with unit, source) rows for ``memsim device``."""
        return []


@dataclass(frozen=True, kw_only=True)
class ReadNoiseLaw:
    """The noise of a read: a separable law σ²(t, window) = factor(t, window) · σ_unit(G)².

    ``slow_variance_factor(t, window)`` is the part slower than 1/window (a state of the
    devices at t, drawn once per read time), ``fast_variance_factor`` the faster part (drawn
    per MVM); without a window (``None``) the slow factor is the whole noise. Class
    attributes as for :class:`DriftLaw`.
    """

    name: ClassVar[str] = ""
    state_keys: ClassVar[tuple[str, ...]] = ()
    tile_cache: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_fields(self, f"read-noise law {self.name!r}")

    def program(self, g_prog_S: np.ndarray, g_max_S: float) -> dict[str, np.ndarray]:
        """Per-device quantities fixed by the programmed conductances (``state_keys``)."""
        return {}

    def sigma_unit_S(self, state: DeviceState, g_drift_S: np.ndarray,
                     g_max_S: float) -> np.ndarray:
        """σ per unit of √factor, per device, in siemens."""
        raise NotImplementedError

    def slow_variance_factor(self, t: float, window_s: float | None) -> float:
        raise NotImplementedError

    def fast_variance_factor(self, t: float, window_s: float) -> float:
        raise NotImplementedError

    def parameters(self) -> list[tuple[str, str, str]]:
        return []


# -- drift laws ---------------------------------------------------------------------------------
@DRIFT_LAWS.register
@dataclass(frozen=True, kw_only=True)
class NoDrift(DriftLaw):
    """No drift: G(t) = G_prog."""

    name: ClassVar[str] = "none"

    def drifted(self, state, t, g_max_S, spread_scale):
        return np.array(state.g_prog_S, dtype=np.float64)


@DRIFT_LAWS.register
@dataclass(frozen=True, kw_only=True)
class PowerLawDrift(DriftLaw):
    """PCM drift: G(t) = G_prog ((t + t0)/t0)^(−ν), ``ν = |μ_ν(ĝ_T) + σ_ν(ĝ_T) ξ|`` drawn once per
    device at programming (kept as ``state.extra["drift_nu"]``)."""

    name: ClassVar[str] = "power_law"
    state_keys: ClassVar[tuple[str, ...]] = ("drift_nu",)

    t0_s: float = card_field("drift", "t0", **_T_POS, example=20.0,
                             help="t0 of the power law: drift counted from t0 after programming")
    nu_mean: LawSpec = law_field("drift", dimension="dimensionless",
                                 help="mean μ_ν of the drift exponent versus the target")
    nu_std: LawSpec = law_field("drift", dimension="dimensionless",
                                help="device-to-device σ_ν of the drift exponent")

    @property
    def reference_time_s(self) -> float:
        return self.t0_s

    def program(self, g_target_S, g_max_S, rng, spread_scale):
        mu = self.nu_mean(_x(self.nu_mean, g_target_S, g_max_S))
        if spread_scale == 0.0:
            return {"drift_nu": np.abs(mu)}
        sd = self.nu_std(_x(self.nu_std, g_target_S, g_max_S)) * spread_scale
        return {"drift_nu": np.abs(mu + sd * rng.standard_normal(g_target_S.shape))}

    def drifted(self, state, t, g_max_S, spread_scale):
        log_ratio = np.log((t + self.t0_s) / self.t0_s)  # a scalar: one exp per device
        return state.g_prog_S * np.exp(-log_ratio * state.extra["drift_nu"])

    def parameters(self):
        return [("drift t0", f"{self.t0_s:g} s", ""),
                ("drift ν mean", "law", self.nu_mean.source),
                ("drift ν spread", "law", self.nu_std.source)]


@DRIFT_LAWS.register
@dataclass(frozen=True, kw_only=True)
class LogRelaxation(DriftLaw):
    """Conductance relaxation of filamentary RRAM after programming: one persistent random
    path per device, whose one-time statistics are the card's log-time law.

    The card (a fit of the population observed at each time t after programming) gives, with
    τ = ln(max(t, t_ref)/t_ref), u = τ^p and x the target (ĝ_T or G_T in µS)::

        mean shift m·τ,   spread σ(t) = σ_0(x) + σ_1(x)·u   for t > 0;   G(0) = G_prog.

    A fit of one-time marginals says nothing about how one device moves between two reads,
    but a device is one physical state that evolves: reading it at 1 day and at 2 days must
    give two points of the same trajectory, not two independent draws. memsim models it as
    the Gaussian process with exactly those marginals whose changes over disjoint time
    intervals are independent — a Brownian motion in the variance variable s = σ(t)² (a
    random walk in log-time, time-changed so that Var matches the card at every t). This
    correlation structure is memsim's assumption: the cards' sources report one-time
    statistics only. ::

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

    name: ClassVar[str] = "log_relaxation"
    state_keys: ClassVar[tuple[str, ...]] = ("relax_seed",)
    tile_cache: ClassVar[bool] = False  # read per time (the split would be exact; not used)

    t_ref_s: float = card_field("drift", "t_ref", **_T_POS, example=1.0,
                                help="t_ref: the fits hold from t_ref on (τ = ln(t/t_ref))")
    g_shift_S: float = card_field("drift", "mean_shift", dimension="conductance", lo=-1e-3,
                                  hi=1e-3, example=-8.9e-8,
                                  help="mean conductance shift m per unit of τ (S)")
    spread_offset: LawSpec = law_field("drift", dimension="conductance",
                                       help="σ_0: the spread present at t_ref (S)")
    spread_slope: LawSpec = law_field("drift", dimension="conductance",
                                      help="σ_1: the spread's growth per unit of τ^p (S)")
    exponent: float = card_field("drift", lo=0.0, hi=4.0, example=1.0,
                                 help="p of σ(t) = σ_0 + σ_1 τ^p")

    def program(self, g_target_S, g_max_S, rng, spread_scale):
        # the device's relaxation path, fixed now: one 64-bit seed
        return {"relax_seed": np.array(draw_seed(rng), dtype=np.uint64)}

    def tau(self, t: float) -> float:
        return float(np.log(max(t, self.t_ref_s) / self.t_ref_s))

    def g_spread_parts_S(self, g_target_S: np.ndarray,
                         g_max_S: float) -> tuple[np.ndarray, np.ndarray]:
        """(σ_0, σ_1) per device in S, from the laws at the targets."""
        off = np.asarray(self.spread_offset(_x(self.spread_offset, g_target_S, g_max_S)),
                         dtype=np.float64)
        slope = np.asarray(self.spread_slope(_x(self.spread_slope, g_target_S, g_max_S)),
                           dtype=np.float64)
        off = np.broadcast_to(off, np.shape(g_target_S))
        slope = np.broadcast_to(slope, np.shape(g_target_S))
        if (off.size and off.min() < 0) or (slope.size and slope.min() < 0):
            raise CardError(
                f"drift.spread_offset / drift.spread_slope give a negative σ at these targets "
                f"(σ_0 min {off.min():.3g} S, σ_1 min {slope.min():.3g} S); a spread must be >= 0")
        return off, slope

    def g_spread_S(self, g_target_S: np.ndarray, t: float, g_max_S: float) -> np.ndarray:
        """σ(t) in S per device: the spread of the population at time t (the card's law)."""
        if t == 0.0:
            return np.zeros(np.shape(g_target_S))
        off, slope = self.g_spread_parts_S(g_target_S, g_max_S)
        return off + slope * self.tau(t) ** self.exponent

    def g_walk_S(self, state: DeviceState, t: float, g_max_S: float) -> np.ndarray:
        """W(σ(t)²) per device in S: the relaxation path of ``state`` at t (0 at t = 0)."""
        seed = state.extra.get("relax_seed")
        if seed is None:
            raise StateError(
                "this device state has no relaxation seed (extra['relax_seed']): program it "
                "with the RRAM device's program(), which draws the relaxation path once")
        out = np.zeros(state.shape)
        if t == 0.0 or out.size == 0:
            return out
        off, slope = self.g_spread_parts_S(state.g_target_S, g_max_S)
        u = self.tau(t) ** self.exponent
        relaxation_walk(np.uint64(seed), float(u), np.ascontiguousarray(off).ravel(),
                        np.ascontiguousarray(slope).ravel(), out.reshape(-1))
        return out

    def drifted(self, state, t, g_max_S, spread_scale):
        """G(t) = max(0, G_prog + m·τ + spread_scale·W(σ(t)²))."""
        if t == 0.0:
            return np.array(state.g_prog_S, dtype=np.float64)
        g = state.g_prog_S + self.g_shift_S * self.tau(t)
        if spread_scale:
            g = g + spread_scale * self.g_walk_S(state, t, g_max_S)
        return np.maximum(g, 0.0)

    def parameters(self):
        return [("relaxation t_ref", f"{self.t_ref_s:g} s", ""),
                ("relaxation mean shift", f"{self.g_shift_S * 1e6:.4g} µS/ln t", ""),
                ("relaxation spread", "law", self.spread_slope.source)]


# -- read-noise laws ----------------------------------------------------------------------------
@READ_NOISE_LAWS.register
@dataclass(frozen=True, kw_only=True)
class NoReadNoise(ReadNoiseLaw):
    """No read noise."""

    name: ClassVar[str] = "none"

    def sigma_unit_S(self, state, g_drift_S, g_max_S):
        return np.zeros(state.shape)

    def slow_variance_factor(self, t, window_s):
        return 0.0

    def fast_variance_factor(self, t, window_s):
        return 0.0


def _t_read() -> Any:
    return card_field("read_noise", "t_read", **_T_POS, example=250e-9,
                      help="t_read: the duration of one read (the band's upper end "
                           "1/(2 t_read))")


def _t0() -> Any:
    return card_field("read_noise", "t0", dimension="time", lo=0.0, hi=1e9, required=False,
                      example=20.0,
                      help="t0 of the band's lower end 1/(t + t0 + t_read); default: the "
                           "drift law's t0")


@dataclass(frozen=True, kw_only=True)
class _OneOverF(ReadNoiseLaw):
    """Accumulated 1/f read noise over the band 1/(t + t0 + t_read) … 1/(2 t_read).

    Relative form (PCM; Nandakumar 2019): σ(t) = Q_s(x_prog) · G_drift · √L(t).
    Absolute form (CMO RRAM; Lombardo et al., DRC 2024): σ(t) = A(x_drift) · √L(t) with A in S.
    L(t) = ln((t + t0 + t_read)/(2 t_read)).
    """

    def slow_variance_factor(self, t: float, window_s: float | None) -> float:
        top = t + self.t0_s + self.t_read_s
        bottom = 2.0 * self.t_read_s if window_s is None else max(window_s, 2 * self.t_read_s)
        return float(np.log(max(top, bottom) / bottom))

    def fast_variance_factor(self, t: float, window_s: float) -> float:
        floor = 2.0 * self.t_read_s
        top = max(t + self.t0_s + self.t_read_s, floor)
        w = min(max(window_s, floor), top)
        return float(np.log(w / floor))

    def parameters(self):
        return [("t_read", f"{self.t_read_s * 1e9:g} ns", ""),
                ("read noise amplitude", "law", self.amplitude.source)]


@READ_NOISE_LAWS.register
@dataclass(frozen=True, kw_only=True)
class AccumulatedOneOverF(_OneOverF):
    """Relative form (PCM; Nandakumar 2019): σ(t) = Q_s(x_prog) · G_drift · √L(t); Q_s depends
    on G_prog only and is evaluated once, at programming (``state.extra["q_s"]``)."""

    name: ClassVar[str] = "accumulated_1f"
    state_keys: ClassVar[tuple[str, ...]] = ("q_s",)

    t_read_s: float = _t_read()
    t0_s: float = _t0()
    amplitude: LawSpec = law_field("read_noise", "q_s", dimension="dimensionless",
                                   help="Q_s: relative 1/f noise amplitude versus G_prog")

    def program(self, g_prog_S, g_max_S):
        return {"q_s": self.amplitude(_x(self.amplitude, g_prog_S, g_max_S))}

    def sigma_unit_S(self, state, g_drift_S, g_max_S):
        q = state.extra.get("q_s")
        if q is None:
            q = self.amplitude(_x(self.amplitude, state.g_prog_S, g_max_S))
        return q * g_drift_S


@READ_NOISE_LAWS.register
@dataclass(frozen=True, kw_only=True)
class AccumulatedOneOverFAbsolute(_OneOverF):
    """Absolute form (CMO RRAM; Lombardo et al., DRC 2024): σ(t) = A(x_drift) · √L(t), A in S."""

    name: ClassVar[str] = "accumulated_1f_absolute"
    tile_cache: ClassVar[bool] = False  # read per time (as before the plug-ins)

    t_read_s: float = _t_read()
    t0_s: float = _t0()
    amplitude: LawSpec = law_field("read_noise", "sigma", dimension="conductance",
                                   help="A: absolute 1/f noise amplitude versus G_drift (S)")

    def sigma_unit_S(self, state, g_drift_S, g_max_S):
        return self.amplitude(_x(self.amplitude, g_drift_S, g_max_S))


def _load_laws() -> None:
    """Import the law modules shipped with memsim (``memsim/devices/drift_*.py`` and
    ``read_noise_*.py``)."""
    import memsim.devices as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith(("drift_", "read_noise_")):
            importlib.import_module(f"memsim.devices.{info.name}")


@dataclass(frozen=True, kw_only=True)
class StatisticalDevice(Device):
    """A device whose programming, drift and read noise follow fitted statistics.

    Card fields are declared once, here and on the laws (:data:`STATISTICAL_SCHEMA`).
    ``drift`` and ``read_noise`` are law objects (:data:`DRIFT_LAWS`,
    :data:`READ_NOISE_LAWS`; :class:`NoDrift` and :class:`NoReadNoise` for none).
    """

    name: str
    description: str = ""
    g_min_S: float = card_field("conductance", "g_min", dimension="conductance", lo=0.0,
                                hi=1.0, help="the lowest conductance a device is programmed to")
    g_max_S: float = card_field("conductance", "g_max", dimension="conductance", lo=0.0,
                                hi=1.0, lo_open=True, example=25e-6,
                                help="the highest conductance; ĝ = G/g_max in the laws")
    programming_sigma: LawSpec = law_field("programming", "sigma", dimension="conductance",
                                           help="σ_prog of the programming error (S)")
    drift: DriftLaw = card_field("", python_type=DriftLaw, help="the drift law")
    read_noise: ReadNoiseLaw = card_field("", python_type=ReadNoiseLaw,
                                          help="the read-noise law")
    nonideal: NonIdealities = field(default_factory=NonIdealities)
    references: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    devices_per_polarity: int = card_field(
        "conductance", lo=1, hi=16, integer=True, default=1, required=False,
        help="physical devices one modelled device stands for (a card fitted on the sum of "
             "a pair says 2)")
    programming_scale: float = 1.0
    drift_spread_scale: float = 1.0
    read_scale: float = 1.0

    def __post_init__(self) -> None:
        for k in ("programming_scale", "drift_spread_scale", "read_scale"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int | float) \
                    or not (np.isfinite(v) and v >= 0):
                raise ConfigError(f"{self.name}: noise scale {k} = {v!r} must be >= 0")
        check_fields(self, f"device {self.name!r}")
        if not self.g_min_S < self.g_max_S:
            raise ConfigError(f"device {self.name!r}: need g_min < g_max, got "
                              f"{self.g_min_S:g}, {self.g_max_S:g} S")

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_card(cls, name: str, data: Mapping[str, Any]) -> StatisticalDevice:
        """Build the device from a parsed TOML card (``[card] family = "statistical"``)."""
        where = f"device card {name!r}"

        def context(parts: dict) -> dict[str, float]:
            if "conductance" not in parts:
                return {}
            g = parts["conductance"].values
            if g["g_min_S"] >= g["g_max_S"]:
                raise CardError(f"{where}: conductance.g_min = {g['g_min_S']:g} S must be "
                                f"below g_max = {g['g_max_S']:g} S")
            return {"g_min_S": g["g_min_S"], "g_max_S": g["g_max_S"]}

        parts = STATISTICAL_SCHEMA.parse(data, where, context)
        drift_part, noise_part = parts["drift"], parts["read_noise"]
        noise_values = dict(noise_part.plugin)
        try:
            drift = DRIFT_LAWS[drift_part.values["model"]](**drift_part.plugin)
            noise_cls = READ_NOISE_LAWS[noise_part.values["model"]]
            if "t0_s" in {f.attr for f in fields_of(noise_cls)} and "t0_s" not in noise_values:
                if drift.reference_time_s is None:
                    raise CardError(f"{where}: [read_noise] needs t0 when the drift model has "
                                    "none")
                noise_values["t0_s"] = drift.reference_time_s
            read_noise = noise_cls(**noise_values)
            nonideal = NonIdealities(**parts["nonidealities"].values,
                                     sources=parts["nonidealities"].sources) \
                if "nonidealities" in parts else NonIdealities()
            head = parts["card"].values
            sources = {}
            for part in ("conductance", "programming", "drift", "read_noise"):
                sources |= {f"{part}.{k}": v for k, v in parts[part].sources.items()}
            return cls(name=name, description=head.get("description", ""),
                       references=tuple(head.get("references", ())), drift=drift,
                       read_noise=read_noise, nonideal=nonideal, sources=sources,
                       programming_sigma=parts["programming"].values["programming_sigma"],
                       **parts["conductance"].values)
        except ConfigError as exc:
            raise CardError(f"{where}: {exc}") from None

    # -- the model ---------------------------------------------------------------------
    def with_noise(self, *, programming: float = 1.0, drift_spread: float = 1.0,
                   read: float = 1.0) -> StatisticalDevice:
        return replace(self, programming_scale=float(programming),
                       drift_spread_scale=float(drift_spread), read_scale=float(read))

    def sigma_prog_S(self, g_target_S: np.ndarray) -> np.ndarray:
        """Programming σ (S) at the given targets, before noise scaling."""
        g = np.asarray(g_target_S, dtype=np.float64)
        return self.programming_sigma(_x(self.programming_sigma, g, self.g_max_S))

    def program(self, g_target_S: Any, rng: np.random.Generator) -> DeviceState:
        rng = check_generator(rng)
        g_t = self.check_targets(g_target_S)
        shape = g_t.shape
        ni = self.nonideal
        g_eff = ni.quantize(g_t, self.g_min_S, self.g_max_S) * ni.draw_gmax_scale(shape, rng)
        g_prog = g_eff
        if self.programming_scale:
            sigma = self.programming_scale * self.sigma_prog_S(g_eff)
            g_prog = np.maximum(g_eff + sigma * rng.standard_normal(shape), 0.0)
        extra = self.drift.program(g_eff, self.g_max_S, rng, self.drift_spread_scale)
        stuck = ni.draw_stuck(shape, rng)
        g_prog = self._apply_stuck(g_prog, stuck)
        extra |= self.read_noise.program(g_prog, self.g_max_S)
        return DeviceState(g_target_S=g_t, g_prog_S=g_prog, stuck=stuck, extra=extra)

    def drifted(self, state: DeviceState, t: float, rng: np.random.Generator) -> np.ndarray:
        """G_drift(t): drift or relaxation only, no read noise (S).

        A function of the state and t only (the drift law's per-device draws were made at
        programming); ``rng`` is accepted and not used."""
        t = check_time(t)
        g = self.drift.drifted(state, t, self.g_max_S, self.drift_spread_scale)
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
        if not (self.drift.tile_cache and self.read_noise.tile_cache):
            return None  # the tile then reads per time with read_for_mvm
        t = check_time(t)
        g = self.drifted(state, t, None)  # a function of the state and t
        fast = self._fast_sd(state, t, g, window_s)
        if self.read_scale == 0.0:
            return g, np.zeros_like(g), fast
        var = self.read_noise.slow_variance_factor(t, window_s)
        slow = self.read_scale * np.sqrt(var) * self.read_noise.sigma_unit_S(state, g, self.g_max_S)
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
        if self.read_scale == 0.0:
            return g, sd
        var = self.read_noise.slow_variance_factor(t, window_s)
        if var <= 0.0:
            return g, sd
        unit_S = self.read_noise.sigma_unit_S(state, g, self.g_max_S)
        sigma = self.read_scale * np.sqrt(var) * unit_S
        g = np.maximum(g + sigma * standard_normal(rng, g.shape), 0.0)
        return self._apply_stuck(g, state.stuck), sd

    def _fast_sd(self, state: DeviceState, t: float, g_mean: np.ndarray,
                 window_s: float) -> np.ndarray:
        var = self.read_noise.fast_variance_factor(t, window_s)
        if self.read_scale == 0.0 or var <= 0.0:
            return np.zeros(state.shape)
        unit_S = self.read_noise.sigma_unit_S(state, g_mean, self.g_max_S)
        sd = self.read_scale * np.sqrt(var) * unit_S
        if state.stuck is not None:
            sd = np.where(state.stuck != 0, 0.0, sd)
        return sd

    def _mean_drifted(self, state: DeviceState, t: float) -> np.ndarray:
        """G_drift(t) of each device, around which its reads scatter (S)."""
        return self.drifted(state, t, None)

    def parameters(self) -> list[tuple[str, str, str]]:
        src = self.sources
        return [
            ("g_min", f"{self.g_min_S * 1e6:.4g} µS", src.get("conductance.g_min_S", "")),
            ("g_max", f"{self.g_max_S * 1e6:.4g} µS", src.get("conductance.g_max_S", "")),
            ("programming σ", f"law in {self.programming_sigma.unit}",
             self.programming_sigma.source),
            *self.drift.parameters(),
            *self.read_noise.parameters(),
        ]


def _sections() -> tuple[Section, ...]:
    return (
        card_header("statistical", "device", REFERENCES_FIELD, key="family"),
        *declared_sections(StatisticalDevice, {
            "conductance": "the programmable conductance range",
            "programming": "the programming error: G_prog = max(0, G_T + σ_prog ξ)"}),
        Section("drift", (Field(section="drift", key="model", choices=DRIFT_LAWS, example="none",
                                help="the drift law (a plug-in): its fields follow"),),
                plugin="model", help="drift or relaxation after programming"),
        Section("read_noise", (Field(section="read_noise", key="model",
                                     choices=READ_NOISE_LAWS, example="none",
                                     help="the read-noise law (a plug-in): its fields "
                                          "follow"),),
                plugin="model", help="noise of a read"),
        NONIDEALITIES_SECTION,
    )


_load_laws()

#: The declaration of statistical device cards (``devices/<name>.toml``,
#: ``[card] family = "statistical"``).
STATISTICAL_SCHEMA = Schema(
    kind="statistical", title="Device card, family statistical", folder="devices",
    sections=_sections(),
    help="A device whose programming error, drift and read noise follow fitted statistics "
         "(PCM, RRAM, ideal; memsim.load_device). Laws of a statistic versus conductance are "
         "tables: law (poly, log_clip, log10, power_clip, piecewise, constant) with its "
         "coefficients, variable (g_norm = G/g_max, or g_uS = G in µS), unit and source.")
