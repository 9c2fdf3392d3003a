"""Tile cards: array, unit cell, DAC, ADC and digital post-processing, as one flat config.

A tile card (``crossbars/<name>.toml``) has the sections ``[card]``, ``[array]``, ``[cell]``,
``[dac]``, ``[adc]`` and ``[digital]``. Numbers are
``{value, unit, source}`` tables; modes are plain strings. ``bits = "none"`` means an
unquantized converter. The same fields, with the same units, are the keyword arguments of
:class:`TileConfig` (and the overrides of ``memsim.load_tile``): each is declared once, on
the dataclass (:data:`TILE_SCHEMA`; the reference is ``docs/cards.md``).

Normalised units. Inputs are scaled to x in [−1, 1] before the DAC; weights to w in
[−1, 1] before mapping to conductances; a column's ideal analog output is y = Σ_i x_i w_ij,
so ``|y| <= rows``. The ADC converts [−output_range, +output_range] (its full scale, FS, in these
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
from types import MappingProxyType
from typing import Any

from memsim.cards import (
    Schema,
    Section,
    card_field,
    card_header,
    check_fields,
    check_kind,
    declared_sections,
)
from memsim.cards import merged as _merged
from memsim.cards import read_card as _read_card
from memsim.crossbar.adc import ADC_MODELS, ADCModel, make_adc
from memsim.errors import CardError, ConfigError

__all__ = ["IDEAL_CONVERTERS", "TILE_SCHEMA", "TileConfig", "load_tile_config"]

#: Overrides that make the converters ideal (no quantization, mismatch or noise; float64).
#: :meth:`TileConfig.noise_free` goes further: it also turns off IR drop and the cell's
#: I–V non-idealities, and a tile built from it ignores device noise and drift.
IDEAL_CONVERTERS = {"dac_bits": None, "adc_bits": None, "dac_noise": 0.0, "adc_noise_fs": 0.0,
                    "adc_noise_lsb": 0.0, "adc_gain_sigma": 0.0, "adc_offset_fs": 0.0,
                    "dtype": "float64"}

ENCODINGS = ("pwm_1phase", "pwm_4phase", "amplitude")
INPUT_SCALINGS = ("fixed", "absmax", "clip_retry", "layer")
WEIGHT_SCALINGS = ("per_tile", "per_column")
DRIFT_COMPENSATIONS = ("none", "global", "per_column")
IR_DROP_MODES = ("none", "approx", "exact")
BITLINES = ("separate", "shared")
IV_MODELS = ("linear", "sinh")
READ_POLARITIES = ("same", "opposite")
PHASE_CONVERSIONS = ("accumulate", "separate")

_INT = {"integer": True, "required": False}
_FRACTION = {"lo": 0.0, "hi": 1.0, "required": False}


def _tile(section: str, key: str = "", **spec: Any) -> Any:
    """A tile-card field: optional in a card (the default applies)."""
    spec.setdefault("required", False)
    return card_field(section, key, **spec)


@dataclass(frozen=True, kw_only=True)
class TileConfig:
    """Every parameter of a tile. Build it from a card or directly (keyword-only).

    Each field is declared once below (:func:`memsim.cards.card_field`: card section and key,
    unit, range, default, help); the same declaration parses tile cards and checks these
    keywords (:class:`~memsim.errors.ConfigError`), and ``docs/cards.md`` lists it. SI units;
    normalised units as in the module docstring.

    The ADC model (``adc_mode``, a plug-in of :mod:`memsim.crossbar.adc`) may declare
    fields of its own; ``adc_options`` holds their values ({field: value}), and
    :attr:`adc` is the model.

    Timing and energy belong to the chip card (``crossbars/hermes-64core.toml``), not here.
    """

    name: str = "custom"
    description: str = ""
    rows: int = _tile("array", lo=1, hi=65536, default=256, **_INT,
                      help="crossbar rows (inputs)")
    cols: int = _tile("array", lo=1, hi=65536, default=256, **_INT,
                      help="crossbar columns (outputs)")
    devices_per_polarity: int = _tile(
        "cell", lo=1, hi=2, default=1, **_INT,
        help="devices per polarity in the unit cell (HERMES 8T4R: 2)")
    significance: float = _tile(
        "cell", lo=1.0, hi=1e3, default=1.0,
        help="factor F between the two devices of a polarity (1: equal weight; F > 1: the "
             "first carries F/(F+1) of the weight, the second programs the signed residual "
             "error of the first)")
    weight_scaling: str = _tile("array", choices=WEIGHT_SCALINGS, default="per_column",
                                help="weight→conductance scale per column or per tile")
    read_voltage_v: float = _tile(
        "cell", "read_voltage", dimension="voltage", lo=0.0, hi=10.0, lo_open=True,
        default=0.2, help="voltage of a full-scale input (IR drop, cell I–V, energy)")
    wire_resistance_ohm: float = _tile(
        "array", "wire_resistance", dimension="resistance", lo=0.0, hi=1e4, default=0.0,
        example=1.0, help="wire resistance per cell segment (IR drop)")
    ir_drop: str = _tile("array", choices=IR_DROP_MODES, default="none",
                         help='IR drop: "none", "approx" (input-independent attenuation) or '
                              '"exact" (nodal solve); not "none" needs wire_resistance > 0')
    bitline: str = _tile(
        "array", choices=BITLINES, default="separate",
        help='wiring of the IR-drop solve: "separate" (G+ and G− columns on their own bit '
             'lines, combined at the converter) or "shared" (one bit line per cell)')
    read_polarity: str = _tile(
        "cell", choices=READ_POLARITIES, default="same",
        help='G− devices read at the input\'s polarity ("same", currents subtracted) or the '
             'opposite one ("opposite": HERMES 1-phase; Le Gallo et al., npj Unconv. Comput. '
             '1, 11, 2024, Fig. 1c)')
    iv_model: str = _tile("cell", choices=IV_MODELS, default="linear",
                          help='cell I–V: "linear" (I = G·V) or "sinh" '
                               '(I = G·V0·sinh(V/V0), normalised to G·V at the read voltage)')
    iv_v0_v: float = _tile("cell", "iv_v0", dimension="voltage", lo=0.0, hi=100.0,
                           lo_open=True, default=0.25, help="V0 of the sinh I–V relation")
    read_asymmetry: float = _tile(
        "cell", lo=0.0, hi=10.0, lo_open=True, default=1.0,
        help="|I(−V)| / I(+V) of a device read with reversed polarity (1: symmetric)")
    dac_bits: int | None = _tile("dac", "bits", lo=2, hi=24, none=True, default=8, **_INT,
                                 help="signed input resolution (none: unquantized)")
    encoding: str = _tile(
        "dac", choices=ENCODINGS, default="pwm_1phase",
        help='"pwm_1phase" (both input signs in one cycle), "pwm_4phase" (each input sign × '
             'weight polarity in its own phase) or "amplitude" (a voltage level)')
    phase_conversion: str = _tile(
        "dac", choices=PHASE_CONVERSIONS, default="accumulate",
        help='4-phase mode: "accumulate" (one conversion integrating the four phases) or '
             '"separate" (four conversions, combined digitally)')
    input_scaling: str = _tile(
        "dac", choices=INPUT_SCALINGS, default="absmax",
        help='"absmax" (per input vector), "fixed" (divide by input_range), "layer" (a '
             'per-layer range from calibration data) or "clip_retry" (abs-max, then halve the '
             'scale of vectors whose ADC saturated, up to max_retries times)')
    input_range: float = _tile("dac", lo=0.0, hi=1e12, lo_open=True, default=1.0,
                               help='the fixed input range (input units) of "fixed"')
    dac_noise: float = _tile("dac", "noise", **_FRACTION, default=0.0,
                             help="σ of additive input noise, fraction of the full-scale input")
    adc_bits: int | None = _tile("adc", "bits", lo=1, hi=24, none=True, default=8, **_INT,
                                 help="output resolution (none: unquantized, no clipping)")
    adc_mode: str = _tile(
        "adc", "mode", choices=ADC_MODELS, default="round",
        help="ADC model (memsim.crossbar.adc): \"round\" (nearest code), \"floor\" (CCO "
             "counting), \"sar\" (SAR with capacitor mismatch) or a registered plug-in")
    output_range: float = _tile("adc", lo=0.0, hi=65536.0, lo_open=True, default=16.0,
                                help="ADC full scale in normalised column-sum units")
    adc_gain_sigma: float = _tile("adc", "gain_sigma", **_FRACTION, default=0.0,
                                  help="σ of the per-column relative gain mismatch")
    adc_offset_fs: float = _tile("adc", "offset_fs", **_FRACTION, default=0.0,
                                 help="σ of the per-column offset, fraction of the full scale")
    adc_noise_fs: float = _tile(
        "adc", "noise_fs", **_FRACTION, default=0.0,
        help="σ of analog noise per conversion, fraction of the full scale (kept when the "
             "bits change)")
    adc_noise_lsb: float = _tile("adc", "noise_lsb", dimension="lsb", lo=0.0, hi=1e3,
                                 default=0.0, help="σ of quantizer noise per conversion, LSB")
    affine_calibration: bool = _tile(
        "digital", boolean=True, default=False,
        help="fit a per-column digital affine correction from reference MVMs")
    calibration_vectors: int = _tile("digital", lo=2, hi=1 << 20, default=256, **_INT,
                                     help="reference input vectors of that fit")
    drift_compensation: str = _tile(
        "digital", choices=DRIFT_COMPENSATIONS, default="none",
        help='"none", "global" or "per_column" (reference readout / readout now)')
    calibration_time_s: float = _tile(
        "digital", "calibration_time", dimension="time", lo=0.0, hi=1e9, default=0.0,
        help="time after programming of the reference readouts")
    noise_window_s: float = _tile(
        "digital", "noise_window", dimension="time", lo=0.0, hi=1e9, lo_open=True,
        default=1e-3,
        help="1/f noise faster than 1/window is drawn per MVM, slower once per read time")
    max_retries: int = _tile("dac", lo=0, hi=16, default=3, **_INT,
                             help='re-scalings per sample in "clip_retry"')
    dtype: str = card_field("", choices=("float32", "float64"), default="float32",
                            help='"float32" (fast) or "float64" arithmetic of the analog path '
                                 "(Python only)")
    adc_options: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        owner = f"tile {self.name!r}"
        check_fields(self, owner)
        if not isinstance(self.adc_options, Mapping):
            raise ConfigError(f"{owner}: adc_options = {self.adc_options!r} must be a mapping "
                              "of the ADC model's own fields")
        object.__setattr__(self, "adc_options", MappingProxyType(dict(self.adc_options)))
        object.__setattr__(self, "_adc", make_adc(self.adc_mode, self.adc_options, owner))
        if self.ir_drop != "none" and self.wire_resistance_ohm == 0:
            raise ConfigError(f"{owner}: ir_drop = {self.ir_drop!r} needs "
                              "wire_resistance_ohm > 0")

    @property
    def adc(self) -> ADCModel:
        """The ADC model (:mod:`memsim.crossbar.adc`) of ``adc_mode`` and ``adc_options``."""
        return self._adc

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f.name) for f in fields(self)
                          if f.compare and f.name != "adc_options")
                    + tuple(sorted(self.adc_options.items())))

    def with_(self, **changes: Any) -> TileConfig:
        """A copy with some fields changed (validated again)."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ConfigError(f"tile {self.name!r}: unknown tile parameters {sorted(unknown)}; "
                              f"known: {sorted(names - {'sources'})}")
        if changes.get("adc_mode", self.adc_mode) != self.adc_mode \
                and "adc_options" not in changes:
            changes["adc_options"] = {}  # the options belong to the model they were given for
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
def _sections() -> tuple[Section, ...]:
    helps = {"array": "the crossbar: size, weight scaling, wires",
             "cell": "the unit cell: devices per polarity, read voltage and I–V",
             "dac": "inputs: resolution, encoding, scaling",
             "adc": "the column converters: resolution, model, full scale, mismatch, noise",
             "digital": "the local digital unit: affine calibration, drift compensation"}
    return (card_header("tile", "tile"),
            *declared_sections(TileConfig, helps, required=False, plugins={"adc": "mode"}))


#: The declaration of tile cards (``crossbars/<name>.toml``, ``[card] kind = "tile"``).
TILE_SCHEMA = Schema(
    kind="tile", title="Tile card", folder="crossbars", sections=_sections(),
    help="One crossbar with its converters and local digital unit "
         "(memsim.load_tile, memsim.analog). Every field may be left out: the default "
         "applies. The keyword arguments of TileConfig and the overrides of load_tile are "
         "the Python names.",
    renamed={
        ("adc", "noise"): "adc.noise_fs (analog noise, fraction of full scale) and/or "
                          "adc.noise_lsb (quantizer noise, LSB)",
        ("adc", "offset_sigma"): "adc.offset_fs (fraction of full scale)",
        ("array", "devices_per_polarity"): "cell.devices_per_polarity",
        ("array", "significance"): "cell.significance",
        ("array", "read_voltage"): "cell.read_voltage",
        ("timing", "mvm_time"): "the chip card (timing and energy are the chip's)",
        ("timing", "mvm_energy"): "the chip card (timing and energy are the chip's)",
    })


def load_tile_config(name_or_path: Any, **overrides: Any) -> TileConfig:
    """Read a tile card (name in ``crossbars/`` or a path) into a :class:`TileConfig`."""
    name, data = _read_card(name_or_path, "crossbars")
    where = f"tile card {name!r}"
    check_kind(data, "kind", "tile", where,
               " (chip and digital-engine cards are loaded with load_chip)")
    parts = TILE_SCHEMA.parse(data, where)
    body = _merged(parts, *(s.name for s in TILE_SCHEMA.sections[1:]))
    try:
        cfg = TileConfig(name=name, description=parts["card"].values.get("description", ""),
                         adc_options=body.plugin, sources=body.sources, **body.values)
    except ConfigError as exc:
        raise CardError(f"{where}: {exc}") from None
    return cfg.with_(**overrides) if overrides else cfg
