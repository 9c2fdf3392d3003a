"""Device state, the device interface and the composable non-idealities.

Program once, read many: ``program`` draws everything that is fixed when a device is
written (programming error, drift exponents, stuck-at faults, device-to-device g_max) and
returns an immutable :class:`DeviceState`; ``read`` applies what depends on the time since
programming (drift, relaxation, accumulated 1/f read noise) and draws fresh read noise.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from memsim._checks import real_array
from memsim.cards import CardError, Section, card_field, check_fields, fields_of
from memsim.errors import ConfigError, InputError

__all__ = ["NONIDEALITIES_SECTION", "Device", "DeviceState", "NonIdealities",
           "check_generator", "check_time"]


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class DeviceState:
    """What programming left in the devices; arrays are read-only.

    Attributes:
        g_target_S: the conductances asked for (S).
        g_prog_S: conductances right after programming, before any drift (S).
        stuck: int8 per device: 0 free, -1 stuck at g_min, +1 stuck at g_max; or None.
        extra: the model's per-device arrays fixed at programming, by name: what its laws
            drew or evaluated once (a power-law drift's exponents ``drift_nu``, a relaxation
            path's seed ``relax_seed``, the 1/f amplitude ``q_s``; the program-and-verify
            record of a physical model: ``pulses``, ``energy_j`` …).
    """

    g_target_S: np.ndarray
    g_prog_S: np.ndarray
    stuck: np.ndarray | None = None
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("g_target_S", "g_prog_S", "stuck"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(
            self, "extra", MappingProxyType({k: _frozen(v) for k, v in self.extra.items()})
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.g_target_S.shape

    @property
    def drift_nu(self) -> np.ndarray | None:
        """The per-device exponents of a power-law drift (``extra["drift_nu"]``), or None."""
        return self.extra.get("drift_nu")


def check_generator(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def check_time(t: Any) -> float:
    """A time since programming in seconds: a finite real number >= 0 (not a bool, not
    complex, not text); raises :class:`memsim.ConfigError`."""
    if isinstance(t, bool | np.bool_ | str | bytes | complex | np.complexfloating):
        raise ConfigError(f"t = {t!r} must be a time in seconds (a real number >= 0)")
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise ConfigError(f"t = {t!r} must be a time in seconds (a number >= 0)") from None
    if not np.isfinite(value) or value < 0:
        raise ConfigError(f"t = {t!r} s is out of range; allowed [0, inf) s after programming")
    return value


@dataclass(frozen=True, kw_only=True)
class NonIdealities:
    """Composable non-idealities any card may declare in its ``[nonidealities]`` table
    (fields declared once, below: they parse the card and check Python keywords)."""

    stuck_at_gmin_rate: float = card_field(
        "nonidealities", lo=0.0, hi=1.0, default=0.0, required=False,
        help="fraction of devices stuck at g_min (commonly 0.1 %–10 %)")
    stuck_at_gmax_rate: float = card_field(
        "nonidealities", lo=0.0, hi=1.0, default=0.0, required=False,
        help="fraction of devices stuck at g_max")
    levels: int | None = card_field(
        "nonidealities", lo=2, hi=1 << 16, integer=True, none=True, default=None,
        required=False,
        help="programmable conductance levels, evenly spaced over [g_min, g_max] (none: "
             "continuous); targets go to the nearest level")
    gmax_variation: float = card_field(
        "nonidealities", lo=0.0, hi=0.5, default=0.0, required=False,
        help="relative σ of a per-device g_max (device-to-device variation): a device with "
             "g_max·(1+δ) reaches G_target·(1+δ)")
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self, "non-idealities")
        if self.stuck_at_gmin_rate + self.stuck_at_gmax_rate > 1.0:
            raise ConfigError(
                "stuck_at_gmin_rate + stuck_at_gmax_rate = "
                f"{self.stuck_at_gmin_rate + self.stuck_at_gmax_rate:g} exceeds 1"
            )

    @classmethod
    def from_card(cls, table: Mapping[str, Any] | None, where: str) -> NonIdealities:
        """The ``[nonidealities]`` table of a card (``where`` names the card)."""
        if not table:
            return cls()
        parsed = NONIDEALITIES_SECTION.parse(table, where)
        try:
            return cls(**parsed.values, sources=parsed.sources)
        except ConfigError as exc:
            raise CardError(f"{where}: {exc}") from None

    @property
    def any(self) -> bool:
        return bool(
            self.stuck_at_gmin_rate or self.stuck_at_gmax_rate or self.levels
            or self.gmax_variation
        )

    def quantize(self, g: np.ndarray, g_min: float, g_max: float) -> np.ndarray:
        """Nearest of ``levels`` evenly spaced conductances in [g_min, g_max]."""
        if self.levels is None:
            return g
        step = (g_max - g_min) / (self.levels - 1)
        return g_min + np.rint((g - g_min) / step) * step

    def draw_gmax_scale(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        if self.gmax_variation == 0.0:
            return np.ones(shape)
        return np.maximum(1.0 + self.gmax_variation * rng.standard_normal(shape), 0.0)

    def draw_stuck(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray | None:
        if not (self.stuck_at_gmin_rate or self.stuck_at_gmax_rate):
            return None
        u = rng.random(shape)
        stuck = np.zeros(shape, dtype=np.int8)
        stuck[u < self.stuck_at_gmin_rate] = -1
        upper = self.stuck_at_gmin_rate + self.stuck_at_gmax_rate
        stuck[(u >= self.stuck_at_gmin_rate) & (u < upper)] = 1
        return stuck


#: The ``[nonidealities]`` section every device card may have.
NONIDEALITIES_SECTION = Section("nonidealities", fields_of(NonIdealities), required=False,
                                noun="non-idealities",
                                help="composable non-idealities (optional)")


class Device(abc.ABC):
    """A memristive device model: program conductances, read them back at time t."""

    name: str
    description: str
    g_min_S: float
    g_max_S: float
    nonideal: NonIdealities
    #: physical devices one modelled device stands for (a card fitted on the sum of a pair
    #: of devices says 2); a tile with n devices per polarity programs n / this many.
    devices_per_polarity: int = 1

    def check_targets(self, g_target_S: Any) -> np.ndarray:
        """Targets as a float64 array; complex, non-numeric, NaN, inf and out-of-range values
        raise :class:`memsim.InputError` naming the device."""
        g = real_array(g_target_S, f"{self.name}: g_target")
        if g.size and not np.all(np.isfinite(g)):
            n = int(np.count_nonzero(~np.isfinite(g)))
            raise InputError(f"{self.name}: g_target contains {n} NaN or infinite value(s)")
        if g.size and g.min() < 0:
            raise InputError(
                f"{self.name}: negative target conductance {g.min():.4g} S; "
                f"allowed [{self.g_min_S:.4g}, {self.g_max_S:.4g}] S"
            )
        tol = 1e-9 * self.g_max_S
        if g.size and (g.min() < self.g_min_S - tol or g.max() > self.g_max_S + tol):
            bad = g.min() if g.min() < self.g_min_S - tol else g.max()
            raise InputError(
                f"{self.name}: target conductance {bad:.4g} S is out of range; "
                f"allowed [{self.g_min_S:.4g}, {self.g_max_S:.4g}] S"
            )
        return g

    @abc.abstractmethod
    def program(self, g_target_S: Any, rng: np.random.Generator) -> DeviceState:
        """Program devices to ``g_target_S`` (S, any shape); returns the immutable state."""

    @abc.abstractmethod
    def read(
        self, state: DeviceState, t: float, rng: np.random.Generator,
        *, window_s: float | None = None,
    ) -> np.ndarray:
        """Conductances (S) at ``t`` seconds after programming."""

    @abc.abstractmethod
    def read_noise_std(
        self, state: DeviceState, t: float, *, window_s: float = 1.0
    ) -> np.ndarray:
        """σ (S) of the noise of one read, per device, at time ``t``."""

    def read_for_mvm(self, state: DeviceState, t: float, rng: np.random.Generator,
                     *, window_s: float) -> tuple[np.ndarray, np.ndarray]:
        """(conductances with the slow read noise, σ of each MVM's fast read noise), at t.

        What a tile needs once per read time; a model may compute both in one pass.
        """
        return (self.read(state, t, rng, window_s=window_s),
                self.read_noise_std(state, t, window_s=window_s))

    def mvm_read_parts(self, state: DeviceState, t: float, *, window_s: float):
        """(mean, slow σ, fast σ) per device when a read at t is exactly
        max(0, mean + slow σ·ξ) with Gaussian ξ (lets a tile cache them per time);
        None when the model cannot be split that way."""
        return None

    @abc.abstractmethod
    def with_noise(
        self, *, programming: float = 1.0, drift_spread: float = 1.0, read: float = 1.0
    ) -> Device:
        """A copy with noise sources scaled (0 switches a source off)."""

    def noise_free(self) -> Device:
        """A copy with programming noise, drift spread and read noise switched off."""
        return self.with_noise(programming=0.0, drift_spread=0.0, read=0.0)

    def _apply_stuck(self, g: np.ndarray, stuck: np.ndarray | None) -> np.ndarray:
        if stuck is None:
            return g
        return np.where(stuck < 0, self.g_min_S, np.where(stuck > 0, self.g_max_S, g))

    def parameters(self) -> list[tuple[str, str, str]]:
        """(name, value with unit, source) rows describing the card."""
        return []
