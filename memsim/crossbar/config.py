"""Tile cards: array, unit cell, DAC, ADC and digital post-processing, as one flat config.

A tile card (``crossbars/<name>.toml``) has the sections ``[card]``, ``[array]``, ``[cell]``,
``[dac]``, ``[adc]`` and ``[digital]``. Numbers are
``{value, unit, source}`` tables; modes are plain strings. ``bits = "none"`` means an
unquantized converter. The same fields, with the same units, are the keyword arguments of
:class:`TileConfig` (and the overrides of ``memsim.load_tile``).

Normalised units. Inputs are scaled to x in [−1, 1] before the DAC; weights to w in
[−1, 1] before mapping to conductances; a column's ideal analog output is y = Σ_i x_i w_ij,
so |y| <= rows. The ADC converts [−output_range, +output_range] (its full scale, FS, in these
units) into its signed codes; one LSB is FS / 2^(bits−1).

Converter non-idealities have one physical model and one unit each:

- ``adc_noise_fs``: analog noise at the ADC input (integrator, comparator, oscillator jitter),
  σ as a fraction of the full scale. A property of the analog front end: changing
  ``adc_bits`` does not change it.
- ``adc_noise_lsb``: noise of the quantizer design, σ in LSB of the ADC at its bits: it
  scales with the LSB when the bits change. An unquantized ADC (``adc_bits=None``) has none.
- ``adc_offset_fs``: per-column offset, σ as a fraction of the full scale (analog).
- ``adc_gain_sigma``: per-column relative gain mismatch.
- ``dac_noise``: input noise, σ as a fraction of the full-scale input.

So a sweep over ``adc_bits`` keeps the analog noise and offset and changes the quantization
(and the LSB-referred noise), whatever card it starts from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from memsim.cards import As, Field, parse_section, read_card
from memsim.errors import CardError, ConfigError

__all__ = ["IDEAL_CONVERTERS", "TileConfig", "load_tile_config"]

#: Overrides that make the converters ideal (no quantization, mismatch or noise; float64).
#: :meth:`TileConfig.noise_free` goes further: it also turns off IR drop and the cell's
#: I–V non-idealities, and a tile built from it ignores device noise and drift.
IDEAL_CONVERTERS = {"dac_bits": None, "adc_bits": None, "dac_noise": 0.0, "adc_noise_fs": 0.0,
                    "adc_noise_lsb": 0.0, "adc_gain_sigma": 0.0, "adc_offset_fs": 0.0,
                    "dtype": "float64"}

ENCODINGS = ("pwm_1phase", "pwm_4phase", "amplitude")
ADC_MODES = ("round", "floor")
INPUT_SCALINGS = ("fixed", "absmax", "clip_retry", "layer")
WEIGHT_SCALINGS = ("per_tile", "per_column")
DRIFT_COMPENSATIONS = ("none", "global", "per_column")
IR_DROP_MODES = ("none", "approx", "exact")
BITLINES = ("separate", "shared")
IV_MODELS = ("linear", "sinh")
READ_POLARITIES = ("same", "opposite")
PHASE_CONVERSIONS = ("accumulate", "separate")

_INT_FIELDS = ("rows", "cols", "devices_per_polarity", "calibration_vectors", "max_retries")
_OPT_INT_FIELDS = ("dac_bits", "adc_bits")
_BOOL_FIELDS = ("affine_calibration",)
_FLOAT_FIELDS = ("significance", "read_voltage_v", "wire_resistance_ohm", "input_range",
                 "dac_noise", "output_range", "adc_gain_sigma", "adc_offset_fs",
                 "adc_noise_fs", "adc_noise_lsb", "calibration_time_s", "noise_window_s",
                 "iv_v0_v", "read_asymmetry")


@dataclass(frozen=True, kw_only=True)
class TileConfig:
    """Every parameter of a tile. Build it from a card or directly (keyword-only).

    Attributes (SI units; normalised units as in the module docstring):
        rows, cols: crossbar size.
        devices_per_polarity: devices per polarity in the unit cell (HERMES 8T4R: 2).
        significance: factor F between the two devices of a polarity (1 = equal weight;
            F > 1: the first device carries F/(F+1) of the weight and the second, read with
            weight 1/(F+1), programs the signed residual error of the first on the polarity
            that corrects it).
        weight_scaling: "per_column" or "per_tile" weight→conductance scale.
        read_voltage_v: voltage of a full-scale input (IR drop, cell I–V, energy).
        wire_resistance_ohm: wire resistance per cell segment (IR drop).
        ir_drop: "none", "approx" (input-independent attenuation) or "exact" (nodal solve).
        bitline: the wiring the IR-drop solve uses: "separate" (the G+ and G− devices of a
            column on their own bit lines, the currents combined at the converter) or
            "shared" (both polarities of a cell on one bit line into one converter).
        read_polarity: how the G− devices are read in one phase: "same" (at the input's
            polarity, like the G+ devices; the currents are subtracted) or "opposite" (at the
            opposite polarity, so that their current subtracts by itself: HERMES's 1-phase
            mode, where a positive input reads G+ at V− and G− at V+; Le Gallo et al., npj
            Unconv. Comput. 1, 11, 2024, Fig. 1c).
        iv_model: cell current–voltage relation, "linear" (I = G·V) or "sinh"
            (I = G·V0·sinh(V/V0), normalised to G·V at the read voltage).
        iv_v0_v: V0 of the sinh relation (V).
        read_asymmetry: |I(−V)| / I(+V) of a device read with reversed polarity at the read
            voltage (1 = symmetric).
        dac_bits: signed input resolution (None = unquantized).
        encoding: "pwm_1phase" (both input signs in one cycle: a negative input is a pulse
            of reversed polarity), "pwm_4phase" (each input sign × weight polarity in its own
            phase, all at positive polarity) or "amplitude" (input as a voltage level).
        phase_conversion: in 4-phase mode, "accumulate" (one conversion whose counter
            integrates the four phases) or "separate" (four conversions, combined digitally).
        input_scaling: "absmax" (per input vector), "fixed" (divide by input_range),
            "layer" (a per-layer range set by calibration data, or from the first batch) or
            "clip_retry" (per-vector abs-max, then halve the input scale and convert again
            the vectors whose ADC saturated, up to max_retries times).
        input_range: the fixed input range (input units) for "fixed".
        dac_noise: σ of additive input noise, relative to the full-scale input.
        adc_bits: output resolution (None = unquantized, no clipping).
        adc_mode: "round" (nearest code) or "floor" (CCO counting: floor of the charge).
        output_range: ADC full scale in normalised output units.
        adc_gain_sigma: σ of the per-column relative gain mismatch.
        adc_offset_fs: σ of the per-column offset, fraction of the full scale.
        adc_noise_fs: σ of analog noise per conversion, fraction of the full scale.
        adc_noise_lsb: σ of quantizer noise per conversion, in LSB.
        affine_calibration: fit a per-column digital affine correction from reference MVMs.
        calibration_vectors: number of reference input vectors for that fit.
        drift_compensation: "none", "global" or "per_column".
        calibration_time_s: time after programming of the reference readouts.
        noise_window_s: 1/f noise faster than 1/window is drawn per MVM, slower once per read
            time (kept for later reads at that time).
        max_retries: re-scalings per sample in "clip_retry".
        dtype: "float32" (fast) or "float64" arithmetic of the analog path.

    Timing and energy belong to the chip card (``crossbars/hermes-64core.toml``), not here.
    """

    name: str = "custom"
    description: str = ""
    rows: int = 256
    cols: int = 256
    devices_per_polarity: int = 1
    significance: float = 1.0
    weight_scaling: str = "per_column"
    read_voltage_v: float = 0.2
    wire_resistance_ohm: float = 0.0
    ir_drop: str = "none"
    bitline: str = "separate"
    read_polarity: str = "same"
    iv_model: str = "linear"
    iv_v0_v: float = 0.25
    read_asymmetry: float = 1.0
    dac_bits: int | None = 8
    encoding: str = "pwm_1phase"
    phase_conversion: str = "accumulate"
    input_scaling: str = "absmax"
    input_range: float = 1.0
    dac_noise: float = 0.0
    adc_bits: int | None = 8
    adc_mode: str = "round"
    output_range: float = 16.0
    adc_gain_sigma: float = 0.0
    adc_offset_fs: float = 0.0
    adc_noise_fs: float = 0.0
    adc_noise_lsb: float = 0.0
    affine_calibration: bool = False
    calibration_vectors: int = 256
    drift_compensation: str = "none"
    calibration_time_s: float = 0.0
    noise_window_s: float = 1e-3
    max_retries: int = 3
    dtype: str = "float32"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, allowed: str) -> ConfigError:
            return ConfigError(f"tile {self.name!r}: {name} = {value!r} is out of range; "
                               f"allowed {allowed}")

        for name in _INT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"tile {self.name!r}: {name} = {v!r} must be an integer, "
                                  f"not {type(v).__name__}")
        for name in _OPT_INT_FIELDS:
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ConfigError(f"tile {self.name!r}: {name} = {v!r} must be an integer "
                                  "or None (unquantized)")
        for name in _BOOL_FIELDS:
            v = getattr(self, name)
            if not isinstance(v, bool):
                raise ConfigError(f"tile {self.name!r}: {name} = {v!r} must be True or False")
        for name in _FLOAT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"tile {self.name!r}: {name} = {v!r} must be a finite number")
        for name in ("rows", "cols"):
            v = getattr(self, name)
            if not 1 <= v <= 1 << 16:
                raise bad(name, v, "an integer in [1, 65536]")
        if self.devices_per_polarity not in (1, 2):
            raise bad("devices_per_polarity", self.devices_per_polarity, "1 or 2")
        if not self.significance >= 1.0:
            raise bad("significance", self.significance, "[1, inf)")
        for name, allowed in (("weight_scaling", WEIGHT_SCALINGS), ("ir_drop", IR_DROP_MODES),
                              ("encoding", ENCODINGS), ("input_scaling", INPUT_SCALINGS),
                              ("adc_mode", ADC_MODES), ("dtype", ("float32", "float64")),
                              ("drift_compensation", DRIFT_COMPENSATIONS),
                              ("bitline", BITLINES), ("iv_model", IV_MODELS),
                              ("read_polarity", READ_POLARITIES),
                              ("phase_conversion", PHASE_CONVERSIONS)):
            if getattr(self, name) not in allowed:
                raise bad(name, getattr(self, name), f"one of {list(allowed)}")
        for name in ("dac_bits", "adc_bits"):
            v = getattr(self, name)
            if v is not None and not 1 <= v <= 24:
                raise bad(name, v, "an integer in [1, 24] or None (unquantized)")
        if self.dac_bits == 1:
            raise bad("dac_bits", 1, "[2, 24] for signed inputs, or None")
        for name in ("read_voltage_v", "input_range", "output_range", "noise_window_s",
                     "iv_v0_v"):
            if not getattr(self, name) > 0:
                raise bad(name, getattr(self, name), "(0, inf)")
        for name in ("wire_resistance_ohm", "dac_noise", "adc_gain_sigma", "adc_offset_fs",
                     "adc_noise_fs", "adc_noise_lsb", "calibration_time_s"):
            if not getattr(self, name) >= 0:
                raise bad(name, getattr(self, name), "[0, inf)")
        if not 0 < self.read_asymmetry <= 10:
            raise bad("read_asymmetry", self.read_asymmetry, "(0, 10]")
        if self.calibration_vectors < 2:
            raise bad("calibration_vectors", self.calibration_vectors, "an integer >= 2")
        if not 0 <= self.max_retries <= 16:
            raise bad("max_retries", self.max_retries, "an integer in [0, 16]")
        if self.ir_drop != "none" and self.wire_resistance_ohm == 0:
            raise ConfigError(f"tile {self.name!r}: ir_drop = {self.ir_drop!r} needs "
                              "wire_resistance_ohm > 0")

    def with_(self, **changes: Any) -> TileConfig:
        """A copy with some fields changed (validated again)."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ConfigError(f"tile {self.name!r}: unknown tile parameters {sorted(unknown)}; "
                              f"known: {sorted(names - {'sources'})}")
        return replace(self, **changes)

    def noise_free(self) -> TileConfig:
        """The exact limit of this tile: unquantized converters without noise, offset or
        gain mismatch, no IR drop, a linear symmetric cell, no calibration or compensation
        (nothing left to correct), per-vector input scaling (a fixed range could clip),
        float64. A :class:`~memsim.crossbar.Tile` built on it
        (``Tile.noise_free()``) also reads its devices at their targets (no programming
        error, drift or read noise), so that ``matvec`` equals ``X @ W``."""
        return self.with_(**IDEAL_CONVERTERS, ir_drop="none", iv_model="linear",
                          read_asymmetry=1.0, affine_calibration=False,
                          drift_compensation="none", input_scaling="absmax")

    @property
    def phases(self) -> int:
        return 4 if self.encoding == "pwm_4phase" else 1

    @property
    def adc_lsb(self) -> float | None:
        """One LSB of the ADC in normalised output units (None: unquantized)."""
        return None if self.adc_bits is None else self.output_range / 2 ** (self.adc_bits - 1)

    def adc_noise_sigma(self, output_range: float | None = None) -> float:
        """σ of the converter noise per conversion, normalised output units, for a full
        scale ``output_range`` (default the card's): the analog part (fraction of full
        scale) and the quantizer part (LSB) add in quadrature."""
        fs = self.output_range if output_range is None else output_range
        lsb = 0.0 if self.adc_bits is None else fs / 2 ** (self.adc_bits - 1)
        return math.hypot(self.adc_noise_fs * fs, self.adc_noise_lsb * lsb)

    def assumptions(self) -> str:
        """One line stating the converter physics this config assumes (for study reports)."""
        return (f"ADC noise: {100 * self.adc_noise_fs:.3g} % of full scale (analog, kept when "
                f"the bits change) + {self.adc_noise_lsb:.3g} LSB (quantizer); offset "
                f"{100 * self.adc_offset_fs:.3g} % FS; gain spread "
                f"{100 * self.adc_gain_sigma:.3g} %")


# -- card parsing ----------------------------------------------------------------------------
_INT = {"dimension": "dimensionless", "integer": True}
_FRACTION = {"dimension": "dimensionless", "lo": 0, "hi": 1}
_SCHEMA: dict[str, dict[str, Any]] = {
    "array": {
        "rows": Field(lo=1, hi=65536, **_INT),
        "cols": Field(lo=1, hi=65536, **_INT),
        "weight_scaling": WEIGHT_SCALINGS,
        "wire_resistance": As("wire_resistance_ohm",
                               Field(dimension="resistance", lo=0, hi=1e4)),
        "ir_drop": IR_DROP_MODES,
        "bitline": BITLINES,
    },
    "cell": {
        "devices_per_polarity": Field(lo=1, hi=2, **_INT),
        "significance": Field(dimension="dimensionless", lo=1.0, hi=1e3),
        "read_voltage": As("read_voltage_v",
                            Field(dimension="voltage", lo=0, hi=10, lo_open=True)),
        "read_polarity": READ_POLARITIES,
        "iv_model": IV_MODELS,
        "iv_v0": As("iv_v0_v", Field(dimension="voltage", lo=0, hi=100, lo_open=True)),
        "read_asymmetry": Field(dimension="dimensionless", lo=0, hi=10, lo_open=True),
    },
    "dac": {
        "bits": As("dac_bits", Field(lo=2, hi=24, none=True, **_INT)),
        "encoding": ENCODINGS,
        "phase_conversion": PHASE_CONVERSIONS,
        "input_scaling": INPUT_SCALINGS,
        "input_range": Field(dimension="dimensionless", lo=0, hi=1e12, lo_open=True),
        "noise": As("dac_noise", Field(**_FRACTION)),
        "max_retries": Field(lo=0, hi=16, **_INT),
    },
    "adc": {
        "bits": As("adc_bits", Field(lo=1, hi=24, none=True, **_INT)),
        "mode": As("adc_mode", ADC_MODES),
        "output_range": Field(dimension="dimensionless", lo=0, hi=1 << 16, lo_open=True),
        "gain_sigma": As("adc_gain_sigma", Field(**_FRACTION)),
        "offset_fs": As("adc_offset_fs", Field(**_FRACTION)),
        "noise_fs": As("adc_noise_fs", Field(**_FRACTION)),
        "noise_lsb": As("adc_noise_lsb", Field(dimension="lsb", lo=0, hi=1e3)),
    },
    "digital": {
        "affine_calibration": bool,
        "calibration_vectors": Field(lo=2, hi=1 << 20, **_INT),
        "drift_compensation": DRIFT_COMPENSATIONS,
        "calibration_time": As("calibration_time_s", Field(dimension="time", lo=0, hi=1e9)),
        "noise_window": As("noise_window_s",
                            Field(dimension="time", lo=0, hi=1e9, lo_open=True)),
    },
}

#: Fields of the card format of memsim 0.1 that are now named or measured differently.
_RENAMED = {
    ("adc", "noise"): "adc.noise_fs (analog noise, fraction of full scale) and/or "
                      "adc.noise_lsb (quantizer noise, LSB)",
    ("adc", "offset_sigma"): "adc.offset_fs (fraction of full scale)",
    ("array", "devices_per_polarity"): "cell.devices_per_polarity",
    ("array", "significance"): "cell.significance",
    ("array", "read_voltage"): "cell.read_voltage",
    ("timing", "mvm_time"): "the chip card (timing and energy are the chip's)",
    ("timing", "mvm_energy"): "the chip card (timing and energy are the chip's)",
}


def load_tile_config(name_or_path: Any, **overrides: Any) -> TileConfig:
    """Read a tile card (name in ``crossbars/`` or a path) into a :class:`TileConfig`."""
    name, data = read_card(name_or_path, "crossbars")
    where = f"tile card {name!r}"
    card = data.get("card", {})
    if not isinstance(card, Mapping) or set(card) - {"kind", "description"} \
            or not isinstance(card.get("description", ""), str):
        raise CardError(f"{where}: [card] must be a table of kind = \"tile\" and a "
                        f"description string; got {card!r}")
    if card.get("kind") != "tile":
        raise CardError(f"{where}: card.kind = {card.get('kind')!r}; a tile card needs "
                        "'tile' (chip and digital-engine cards are loaded with load_chip)")
    allowed = {"card", *_SCHEMA}
    unknown = set(data) - allowed - {"timing"}
    if unknown:
        raise CardError(f"{where}: unknown sections {sorted(unknown)}; allowed: {sorted(allowed)}")
    for (section, key), now in _RENAMED.items():
        if key in data.get(section, {}):
            raise CardError(f"{where}: {section}.{key} is no longer a tile field; use {now}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for section in _SCHEMA:
        if section in data:
            v, s = parse_section(data[section], section, _SCHEMA[section], where)
            values.update(v)
            sources.update(s)
    try:
        cfg = TileConfig(name=name, description=str(card.get("description", "")),
                         sources=sources, **values)
    except ConfigError as exc:
        raise CardError(f"{where}: {exc}") from None
    return cfg.with_(**overrides) if overrides else cfg
