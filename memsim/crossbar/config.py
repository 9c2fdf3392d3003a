"""Tile cards: array, unit cell, DAC, ADC and digital post-processing, as one flat config.

A tile card (``crossbars/<name>.toml``) has the sections ``[card]``, ``[array]``, ``[dac]``,
``[adc]``, ``[digital]`` and optionally ``[timing]``. Numbers are ``{value, unit, source}``
tables; modes are plain strings. ``bits = "none"`` means an unquantized converter.

Normalised units. Inputs are scaled to x in [−1, 1] before the DAC; weights to w in
[−1, 1] before mapping to conductances; a column's ideal analog output is y = Σ_i x_i w_ij,
so |y| <= rows. The ADC's ``output_range`` is given in these units: the ADC converts
[−output_range, +output_range] into its codes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from memsim.cards import As, CardError, Field, parse_section, read_card

__all__ = ["IDEAL_CONVERTERS", "TileConfig", "load_tile_config"]

#: Overrides that make the converters ideal (no quantization, mismatch or noise; float64):
#: with the ``ideal`` device, a tile then computes X @ W exactly.
IDEAL_CONVERTERS = {"dac_bits": None, "adc_bits": None, "dac_noise": 0.0, "adc_noise": 0.0,
                    "adc_gain_sigma": 0.0, "adc_offset_sigma": 0.0, "dtype": "float64"}

ENCODINGS = ("pwm_1phase", "pwm_4phase", "amplitude")
ADC_MODES = ("round", "floor")
INPUT_SCALINGS = ("fixed", "absmax", "clip_retry")
WEIGHT_SCALINGS = ("per_tile", "per_column")
DRIFT_COMPENSATIONS = ("none", "global", "per_column")
IR_DROP_MODES = ("none", "approx", "exact")


@dataclass(frozen=True, kw_only=True)
class TileConfig:
    """Every parameter of a tile. Build it from a card or directly (keyword-only).

    Attributes (SI units; normalised units as in the module docstring):
        rows, cols: crossbar size.
        devices_per_polarity: devices per polarity in the unit cell (HERMES 8T4R: 2).
        significance: factor F between the two devices of a polarity (1 = equal weight;
            F > 1: the first device is F times more significant and the second programs the
            residual error of the first).
        weight_scaling: "per_column" or "per_tile" weight→conductance scale.
        read_voltage_v: voltage of a full-scale input (IR drop, energy).
        wire_resistance_ohm: wire resistance per cell segment (IR drop).
        ir_drop: "none", "approx" (input-independent attenuation) or "exact" (nodal solve).
        dac_bits: signed input resolution (None = unquantized).
        encoding: "pwm_1phase", "pwm_4phase" (each input sign × weight sign in its own
            phase, each phase converted by the ADC) or "amplitude".
        input_scaling: "fixed" (divide by input_range), "absmax" (per-sample abs-max) or
            "clip_retry" (per-sample abs-max, then halve the input scale and convert again
            the samples whose ADC saturated, up to max_retries times).
        input_range: the fixed input range (input units) for "fixed".
        dac_noise: σ of additive input noise, relative to the full-scale input.
        adc_bits: output resolution (None = unquantized, no clipping).
        adc_mode: "round" (nearest code) or "floor" (CCO counting: floor of the charge).
        output_range: ADC full scale in normalised output units.
        adc_gain_sigma: σ of the per-column relative gain mismatch.
        adc_offset_sigma: σ of the per-column offset, in normalised output units.
        adc_noise: σ of output noise per conversion, in normalised output units.
            Cards give both in LSB of the card's ADC; the loader converts them with the
            card's bits and range, so that overriding ``adc_bits`` (e.g. None for an
            unquantized ADC) keeps the same physical noise.
        affine_calibration: fit a per-column digital affine correction from reference MVMs.
        calibration_vectors: number of reference input vectors for that fit.
        drift_compensation: "none", "global" or "per_column".
        calibration_time_s: time after programming of the reference readouts.
        noise_window_s: 1/f noise faster than 1/window is drawn per MVM, slower once per read
            time (kept for later reads at that time).
        max_retries: re-scalings per sample in "clip_retry".
        dtype: "float32" (fast) or "float64" arithmetic of the analog path.
        mvm_time_s, mvm_energy_j: per-MVM time and energy of the tile (for the chip model).
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
    dac_bits: int | None = 8
    encoding: str = "pwm_1phase"
    input_scaling: str = "absmax"
    input_range: float = 1.0
    dac_noise: float = 0.0
    adc_bits: int | None = 8
    adc_mode: str = "round"
    output_range: float = 16.0
    adc_gain_sigma: float = 0.0
    adc_offset_sigma: float = 0.0
    adc_noise: float = 0.0
    affine_calibration: bool = False
    calibration_vectors: int = 256
    drift_compensation: str = "none"
    calibration_time_s: float = 0.0
    noise_window_s: float = 1e-3
    max_retries: int = 3
    dtype: str = "float32"
    mvm_time_s: float | None = None
    mvm_energy_j: float | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, allowed: str) -> CardError:
            return CardError(f"tile {self.name!r}: {name} = {value!r} is out of range; "
                             f"allowed {allowed}")

        for name in ("rows", "cols"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1 << 16:
                raise bad(name, v, "an integer in [1, 65536]")
        if self.devices_per_polarity not in (1, 2):
            raise bad("devices_per_polarity", self.devices_per_polarity, "1 or 2")
        if not (math.isfinite(self.significance) and self.significance >= 1.0):
            raise bad("significance", self.significance, "[1, inf)")
        for name, allowed in (("weight_scaling", WEIGHT_SCALINGS), ("ir_drop", IR_DROP_MODES),
                              ("encoding", ENCODINGS), ("input_scaling", INPUT_SCALINGS),
                              ("adc_mode", ADC_MODES), ("dtype", ("float32", "float64")),
                              ("drift_compensation", DRIFT_COMPENSATIONS)):
            if getattr(self, name) not in allowed:
                raise bad(name, getattr(self, name), f"one of {list(allowed)}")
        for name in ("dac_bits", "adc_bits"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)
                                  or not 1 <= v <= 24):
                raise bad(name, v, "an integer in [1, 24] or None (unquantized)")
        if self.dac_bits == 1:
            raise bad("dac_bits", 1, "[2, 24] for signed inputs, or None")
        positive = ("read_voltage_v", "input_range", "output_range", "noise_window_s")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise bad(name, v, "(0, inf)")
        nonneg = ("wire_resistance_ohm", "dac_noise", "adc_gain_sigma", "adc_offset_sigma",
                  "adc_noise", "calibration_time_s")
        for name in nonneg:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise bad(name, v, "[0, inf)")
        if not isinstance(self.calibration_vectors, int) or self.calibration_vectors < 2:
            raise bad("calibration_vectors", self.calibration_vectors, "an integer >= 2")
        if not isinstance(self.max_retries, int) or not 0 <= self.max_retries <= 16:
            raise bad("max_retries", self.max_retries, "an integer in [0, 16]")
        if self.ir_drop != "none" and self.wire_resistance_ohm == 0:
            raise CardError(f"tile {self.name!r}: ir_drop = {self.ir_drop!r} needs "
                            "wire_resistance_ohm > 0")

    def with_(self, **changes: Any) -> TileConfig:
        """A copy with some fields changed (validated again)."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise CardError(f"tile {self.name!r}: unknown tile parameters {sorted(unknown)}; "
                            f"known: {sorted(names - {'sources'})}")
        return replace(self, **changes)

    @property
    def phases(self) -> int:
        return 4 if self.encoding == "pwm_4phase" else 1


# -- card parsing ----------------------------------------------------------------------------
_INT = {"dimension": "dimensionless", "integer": True}
_SCHEMA: dict[str, dict[str, Any]] = {
    "array": {
        "rows": Field(lo=1, hi=65536, **_INT),
        "cols": Field(lo=1, hi=65536, **_INT),
        "devices_per_polarity": Field(lo=1, hi=2, **_INT),
        "significance": Field(dimension="dimensionless", lo=1.0, hi=1e3),
        "weight_scaling": WEIGHT_SCALINGS,
        "read_voltage": As("read_voltage_v",
                            Field(dimension="voltage", lo=0, hi=10, lo_open=True)),
        "wire_resistance": As("wire_resistance_ohm",
                               Field(dimension="resistance", lo=0, hi=1e4)),
        "ir_drop": IR_DROP_MODES,
    },
    "dac": {
        "bits": As("dac_bits", Field(lo=2, hi=24, none=True, **_INT)),
        "encoding": ENCODINGS,
        "input_scaling": INPUT_SCALINGS,
        "input_range": Field(dimension="dimensionless", lo=0, hi=1e12, lo_open=True),
        "noise": As("dac_noise", Field(dimension="dimensionless", lo=0, hi=1)),
        "max_retries": Field(lo=0, hi=16, **_INT),
    },
    "adc": {
        "bits": As("adc_bits", Field(lo=1, hi=24, none=True, **_INT)),
        "mode": As("adc_mode", ADC_MODES),
        "output_range": Field(dimension="dimensionless", lo=0, hi=1 << 16, lo_open=True),
        "gain_sigma": As("adc_gain_sigma", Field(dimension="dimensionless", lo=0, hi=1)),
        "offset_sigma": As("adc_offset_sigma",
                            Field(dimension="dimensionless", lo=0, hi=1e3)),
        "noise": As("adc_noise", Field(dimension="dimensionless", lo=0, hi=1e3)),
    },
    "digital": {
        "affine_calibration": bool,
        "calibration_vectors": Field(lo=2, hi=1 << 20, **_INT),
        "drift_compensation": DRIFT_COMPENSATIONS,
        "calibration_time": As("calibration_time_s", Field(dimension="time", lo=0, hi=1e9)),
        "noise_window": As("noise_window_s",
                            Field(dimension="time", lo=0, hi=1e9, lo_open=True)),
    },
    "timing": {
        "mvm_time": As("mvm_time_s", Field(dimension="time", lo=0, hi=1, lo_open=True)),
        "mvm_energy": As("mvm_energy_j", Field(dimension="energy", lo=0, hi=1, lo_open=True)),
    },
}


def load_tile_config(name_or_path: Any, **overrides: Any) -> TileConfig:
    """Read a tile card (name in ``crossbars/`` or a path) into a :class:`TileConfig`."""
    name, data = read_card(name_or_path, "crossbars")
    where = f"tile card {name!r}"
    allowed = {"card", *_SCHEMA}
    unknown = set(data) - allowed
    if unknown:
        raise CardError(f"{where}: unknown sections {sorted(unknown)}; allowed: {sorted(allowed)}")
    card = data.get("card", {})
    if not isinstance(card, Mapping) or set(card) - {"kind", "description"} \
            or not isinstance(card.get("description", ""), str):
        raise CardError(f"{where}: [card] must be a table of kind = \"tile\" and a "
                        f"description string; got {card!r}")
    if card.get("kind") != "tile":
        raise CardError(f"{where}: card.kind = {card.get('kind')!r}; a tile card needs 'tile'")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for section in _SCHEMA:
        if section in data:
            v, s = parse_section(data[section], section, _SCHEMA[section], where)
            values.update(v)
            sources.update(s)
    for key in ("adc_noise", "adc_offset_sigma"):  # LSB in the card -> normalised units
        if key in values:
            bits = values.get("adc_bits", TileConfig.adc_bits)
            if bits is None:
                raise CardError(f"{where}: adc.{'noise' if key == 'adc_noise' else 'offset_sigma'}"
                                " is given in LSB, which needs adc.bits (not 'none')")
            full = values.get("output_range", TileConfig.output_range)
            values[key] = values[key] * full / 2 ** (bits - 1)
    cfg = TileConfig(name=name, description=str(card.get("description", "")), sources=sources,
                     **values)
    return cfg.with_(**overrides) if overrides else cfg
