"""Chip cards: cores, converters' timing, digital units, network on chip, I/O and energy table.

A chip card (``crossbars/<name>.toml``, ``[card] kind = "chip"``) names the tile card of its
cores (``tile = "hermes-core"``) and adds what a chip has around the arrays. Every number is
a ``{value, unit, source}`` table (see :mod:`memsim.cards`); modes are plain strings.

Timing of one MVM on a core (the array is held for this long)::

    pwm:        t_mvm = P · (2^(b−1) · t_unit + t_phase) + t_mvm_overhead
    bit_serial: t_mvm = b · t_cycle + t_mvm_overhead

with P the phases of the tile's encoding (1, or 4 for ``pwm_4phase``: each input sign ×
weight sign in its own PWM window, each window converted by the ADCs) and b the tile's DAC
bits. The local digital unit post-processes each MVM's outputs (affine correction, fused
activation, and in 4-phase mode the sum of the four conversions) in a pipeline behind the
array: ops / (lanes · clock) per MVM.

Energy is counts × table (Accelergy style): the card's ``[energy]`` section gives the energy
of one action; :class:`EnergyTable` holds them and can be swapped to re-cost a run without
simulating it again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from memsim.cards import As, CardError, Field, parse_section, read_card, take_quantity
from memsim.crossbar.config import TileConfig, load_tile_config

__all__ = ["ACTIONS", "COMPONENTS", "ChipConfig", "EnergyTable", "load_chip_config",
           "load_energy_table", "take"]

def take(table: Any, spec: Field, where: str) -> tuple[float, str]:
    """Validate one ``{value, unit, source}`` table; returns (SI value, source)."""
    q = take_quantity(table, spec, where)
    return q.value, q.source


# -- energy table -------------------------------------------------------------------------------
# action -> component of the breakdown
COMPONENTS: dict[str, str] = {
    "dac_conversion": "DAC",
    "array_cell_read": "array",
    "adc_conversion": "ADC",
    "local_digital_op": "local digital",
    "global_digital_op": "global digital",
    "noc_byte_hop": "network on chip",
    "buffer_byte": "buffers",
    "offchip_byte": "off-chip I/O",
    "program_device": "programming",
    "core_static_s": "static",
}
ACTIONS = tuple(COMPONENTS)


def _component(action: str) -> str:
    if action.startswith("adc_conversion_"):
        return "ADC"
    return COMPONENTS[action]


@dataclass(frozen=True)
class EnergyTable:
    """Energy of one action, in joules (Accelergy-style per-action table).

    Keys: ``dac_conversion`` (one input line driven for one phase/cycle), ``array_cell_read``
    (one unit cell read for one phase/cycle), ``adc_conversion_<b>b`` (one conversion at b
    bits), ``local_digital_op``, ``global_digital_op``, ``noc_byte_hop`` (one byte over one
    link), ``buffer_byte`` (one byte read or written in a core buffer), ``offchip_byte``,
    ``program_device`` (programming one device), ``core_static_s`` (one core powered for one
    second, i.e. the static power in W).
    """

    name: str
    energy_j: Mapping[str, float]
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key, value in self.energy_j.items():
            if not (key in ACTIONS or (key.startswith("adc_conversion_") and key.endswith("b")
                                       and key[15:-1].isdigit())):
                raise CardError(f"energy table {self.name!r}: unknown action {key!r}; known: "
                                f"{[*ACTIONS[:2], 'adc_conversion_<bits>b', *ACTIONS[3:]]}")
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise CardError(f"energy table {self.name!r}: {key} = {value!r} is out of "
                                f"range; allowed [0, inf) J")

    def __getitem__(self, action: str) -> float:
        try:
            return self.energy_j[action]
        except KeyError:
            if action.startswith("adc_conversion_"):
                known = sorted(k for k in self.energy_j if k.startswith("adc_conversion_"))
                raise CardError(f"energy table {self.name!r} has no ADC energy for "
                                f"{action[15:]}; known: {known}") from None
            raise CardError(f"energy table {self.name!r} has no action {action!r}") from None

    def with_(self, **changes: float) -> EnergyTable:
        """A copy with some per-action energies changed (J)."""
        return EnergyTable(f"{self.name}*", {**self.energy_j, **changes}, self.sources)

    def cost(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Energy per component (J) of the action ``counts``."""
        out: dict[str, float] = {}
        for action, n in counts.items():
            if n:
                comp = _component(action)
                out[comp] = out.get(comp, 0.0) + n * self[action]
        return out

    def to_dict(self) -> dict[str, float]:
        return dict(self.energy_j)


# -- the chip config ------------------------------------------------------------------------------
INPUT_SCHEMES = ("pwm", "bit_serial")


@dataclass(frozen=True, kw_only=True)
class ChipConfig:
    """Every parameter of a chip (SI units). Build from a card (:func:`load_chip_config`).

    Attributes:
        tile: the TileConfig of one core's array (geometry, converters' bits, encoding).
        cores, grid_rows, grid_cols: core count and floor plan (cores = rows × cols).
        weight_slices: physical arrays per core that hold one weight block (bit slicing,
            ISAAC: 8 arrays of 2-bit cells for 16-bit weights); they compute in parallel.
        input_scheme: "pwm" or "bit_serial" (see the module docstring).
        pwm_unit_time_s, phase_overhead_s, cycle_time_s, mvm_overhead_s: MVM timing.
        ldpu_lanes, ldpu_clock_hz, affine_ops_per_output: local digital unit of each core.
        gdu_units, gdu_lanes, gdu_clock_hz, gdu_position: global digital units (one shared
            pool attached to the router of core position (row, col)).
        link_bandwidth_Bps, hop_latency_s: each directed mesh link; a message of n bytes over
            h links takes h · hop_latency + n / bandwidth and holds those links meanwhile.
        activation_bytes, partial_sum_bytes: sizes of one activation / one partial sum.
        io_bandwidth_Bps, io_latency_s, io_position: off-chip port (one in, one out).
        input_buffer_bytes, output_buffer_bytes: per-core buffers (capacity is checked).
        program_time_per_device_s, program_parallel_devices: programming time per core.
        energy: the per-action :class:`EnergyTable`.
        device: default device card for mapping networks onto this chip.
    """

    name: str = "custom"
    description: str = ""
    tile: TileConfig
    device: str = "pcm-hermes-2dev"
    cores: int
    grid_rows: int
    grid_cols: int
    weight_slices: int = 1
    input_scheme: str = "pwm"
    pwm_unit_time_s: float = 1e-9
    phase_overhead_s: float = 0.0
    cycle_time_s: float = 1e-7
    mvm_overhead_s: float = 0.0
    ldpu_lanes: int = 16
    ldpu_clock_hz: float = 1e9
    affine_ops_per_output: int = 2
    gdu_units: int = 1
    gdu_lanes: int = 64
    gdu_clock_hz: float = 1e9
    gdu_position: tuple[int, int] = (0, 0)
    link_bandwidth_Bps: float = 32e9
    hop_latency_s: float = 2e-9
    activation_bytes: int = 1
    partial_sum_bytes: int = 2
    io_bandwidth_Bps: float = 25.6e9
    io_latency_s: float = 100e-9
    io_position: tuple[int, int] = (0, 0)
    input_buffer_bytes: float = 64 * 1024
    output_buffer_bytes: float = 64 * 1024
    program_time_per_device_s: float = 20e-6
    program_parallel_devices: int = 256
    energy: EnergyTable
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, allowed: str) -> CardError:
            return CardError(f"chip {self.name!r}: {name} = {value!r} is out of range; "
                             f"allowed {allowed}")

        for name in ("cores", "grid_rows", "grid_cols", "weight_slices", "ldpu_lanes",
                     "gdu_units", "gdu_lanes", "activation_bytes", "partial_sum_bytes",
                     "program_parallel_devices", "affine_ops_per_output"):
            v = getattr(self, name)
            lo = 0 if name == "affine_ops_per_output" else 1
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= 1 << 20:
                raise bad(name, v, f"an integer in [{lo}, 1048576]")
        if self.grid_rows * self.grid_cols != self.cores:
            raise bad("grid_rows × grid_cols", self.grid_rows * self.grid_cols,
                      f"= cores ({self.cores})")
        if self.input_scheme not in INPUT_SCHEMES:
            raise bad("input_scheme", self.input_scheme, f"one of {list(INPUT_SCHEMES)}")
        for name in ("pwm_unit_time_s", "cycle_time_s", "ldpu_clock_hz", "gdu_clock_hz",
                     "link_bandwidth_Bps", "io_bandwidth_Bps", "input_buffer_bytes",
                     "output_buffer_bytes", "program_time_per_device_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise bad(name, v, "(0, inf)")
        for name in ("phase_overhead_s", "mvm_overhead_s", "hop_latency_s", "io_latency_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise bad(name, v, "[0, inf)")
        for name in ("gdu_position", "io_position"):
            r, c = getattr(self, name)
            if not (0 <= r < self.grid_rows and 0 <= c < self.grid_cols):
                raise bad(name, (r, c), f"a (row, col) inside the {self.grid_rows}x"
                          f"{self.grid_cols} grid")
        if self.tile.dac_bits is None:
            raise bad("tile.dac_bits", None, "an integer: the MVM time depends on the input bits")

    # -- derived timing ---------------------------------------------------------------------
    def phases(self, tile: TileConfig | None = None) -> int:
        """Array read cycles per MVM: PWM phases, or input bits when bit-serial."""
        t = tile or self.tile
        if self.input_scheme == "bit_serial":
            return int(t.dac_bits)
        return t.phases

    def mvm_time_s(self, tile: TileConfig | None = None) -> float:
        """Time one MVM holds the array (see the module docstring)."""
        t = tile or self.tile
        if t.dac_bits is None:
            raise CardError(f"chip {self.name!r}: tile {t.name!r} has unquantized inputs; the "
                            "MVM time needs dac_bits")
        if self.input_scheme == "bit_serial":
            return t.dac_bits * self.cycle_time_s + self.mvm_overhead_s
        window = 2 ** (t.dac_bits - 1) * self.pwm_unit_time_s
        return t.phases * (window + self.phase_overhead_s) + self.mvm_overhead_s

    def read_window_factor(self, tile: TileConfig | None = None) -> float:
        """Array read energy of an MVM with ``tile``'s inputs relative to the card's own tile.

        The array conducts while the inputs are applied: for PWM inputs that is the pulse
        window, 2^(b−1) unit times for b DAC bits; bit-serial inputs take b cycles. The
        card's ``array_cell_read`` energy is for its own tile's DAC bits, so reading with
        other DAC bits scales it by the ratio of the windows."""
        t = tile or self.tile
        ref, bits = self.tile.dac_bits, t.dac_bits
        if ref is None or bits is None:
            return 1.0
        if self.input_scheme == "bit_serial":
            return bits / ref
        return 2.0 ** (bits - 1) / 2.0 ** (ref - 1)

    def with_(self, **changes: Any) -> ChipConfig:
        """A copy with some fields changed (validated again). ``encoding``, ``dac_bits``,
        ``adc_bits``, ``rows`` and ``cols`` change the core's tile (an array-size study:
        per-cell, per-row and per-column energies of the card then apply to the new size)."""
        tile_keys = {"encoding", "dac_bits", "adc_bits", "rows", "cols"}
        tile_changes = {k: changes.pop(k) for k in list(changes) if k in tile_keys}
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise CardError(f"chip {self.name!r}: unknown chip parameters {sorted(unknown)}; "
                            f"known: {sorted(names - {'sources'})} and {sorted(tile_keys)}")
        if tile_changes:
            changes["tile"] = self.tile.with_(**tile_changes)
        return replace(self, **changes)


# -- card parsing ------------------------------------------------------------------------------
_INT = {"dimension": "dimensionless", "integer": True}


_SCHEMA: dict[str, dict[str, Any]] = {
    "cores": {
        "count": As("cores", Field(lo=1, hi=1 << 20, **_INT)),
        "grid_rows": Field(lo=1, hi=1 << 12, **_INT),
        "grid_cols": Field(lo=1, hi=1 << 12, **_INT),
        "weight_slices": Field(lo=1, hi=64, **_INT),
    },
    "timing": {
        "input_scheme": INPUT_SCHEMES,
        "pwm_unit_time": As("pwm_unit_time_s", Field(dimension="time", lo=0, hi=1e-3,
                                                      lo_open=True)),
        "phase_overhead": As("phase_overhead_s", Field(dimension="time", lo=0, hi=1e-3)),
        "cycle_time": As("cycle_time_s", Field(dimension="time", lo=0, hi=1e-3,
                                                lo_open=True)),
        "mvm_overhead": As("mvm_overhead_s", Field(dimension="time", lo=0, hi=1e-3)),
    },
    "local_digital": {
        "lanes": As("ldpu_lanes", Field(lo=1, hi=1 << 16, **_INT)),
        "clock": As("ldpu_clock_hz", Field(dimension="frequency", lo=0, hi=1e11,
                                            lo_open=True)),
        "affine_ops_per_output": Field(lo=0, hi=64, **_INT),
    },
    "global_digital": {
        "units": As("gdu_units", Field(lo=1, hi=1 << 12, **_INT)),
        "lanes": As("gdu_lanes", Field(lo=1, hi=1 << 16, **_INT)),
        "clock": As("gdu_clock_hz", Field(dimension="frequency", lo=0, hi=1e11,
                                           lo_open=True)),
        "row": As("gdu_row", Field(lo=0, hi=1 << 12, **_INT)),
        "col": As("gdu_col", Field(lo=0, hi=1 << 12, **_INT)),
    },
    "network": {
        "link_bandwidth": As("link_bandwidth_Bps", Field(dimension="data_rate", lo=0,
                                                          hi=1e15, lo_open=True)),
        "hop_latency": As("hop_latency_s", Field(dimension="time", lo=0, hi=1e-3)),
        "activation_bytes": Field(lo=1, hi=8, **_INT),
        "partial_sum_bytes": Field(lo=1, hi=8, **_INT),
    },
    "io": {
        "bandwidth": As("io_bandwidth_Bps", Field(dimension="data_rate", lo=0, hi=1e15,
                                                   lo_open=True)),
        "latency": As("io_latency_s", Field(dimension="time", lo=0, hi=1.0)),
        "row": As("io_row", Field(lo=0, hi=1 << 12, **_INT)),
        "col": As("io_col", Field(lo=0, hi=1 << 12, **_INT)),
    },
    "buffers": {
        "input_buffer": As("input_buffer_bytes", Field(dimension="data_size", lo=0, hi=1e12,
                                                        lo_open=True)),
        "output_buffer": As("output_buffer_bytes", Field(dimension="data_size", lo=0,
                                                          hi=1e12, lo_open=True)),
    },
    "programming": {
        "time_per_device": As("program_time_per_device_s",
                               Field(dimension="time", lo=0, hi=1.0, lo_open=True)),
        "parallel_devices": As("program_parallel_devices", Field(lo=1, hi=1 << 20, **_INT)),
    },
}
_ENERGY: dict[str, Field] = {
    "dac_conversion": Field(dimension="energy", lo=0, hi=1e-6),
    "array_cell_read": Field(dimension="energy", lo=0, hi=1e-6),
    "local_digital_op": Field(dimension="energy", lo=0, hi=1e-6),
    "global_digital_op": Field(dimension="energy", lo=0, hi=1e-6),
    "noc_byte_hop": Field(dimension="energy", lo=0, hi=1e-6),
    "buffer_byte": Field(dimension="energy", lo=0, hi=1e-6),
    "offchip_byte": Field(dimension="energy", lo=0, hi=1e-6),
    "program_device": Field(dimension="energy", lo=0, hi=1e-3),
    "static_power_per_core": Field(dimension="power", lo=0, hi=1e3),
}
_ADC_ENERGY = Field(dimension="energy", lo=0, hi=1e-6, lo_open=True)


_OPTIONAL = {"cores": {"weight_slices"}}
_SCHEME_FIELDS = {"pwm": {"pwm_unit_time", "phase_overhead", "mvm_overhead"},
                  "bit_serial": {"cycle_time", "mvm_overhead"}}


def _required(section: str, data: Mapping[str, Any]) -> list[str]:
    """Fields a card must give (nothing falls back to a silent default)."""
    if section == "timing":
        scheme = data["timing"].get("input_scheme", "pwm")
        return ["input_scheme", *sorted(_SCHEME_FIELDS.get(scheme, set()))]
    return [k for k in _SCHEMA[section] if k not in _OPTIONAL.get(section, set())]


def _parse_energy(table: Any, name: str, where: str) -> EnergyTable:
    if not isinstance(table, Mapping):
        raise CardError(f"{where}: [energy] must be a table")
    allowed = {*_ENERGY, "adc_conversion"}
    unknown = set(table) - allowed
    if unknown:
        raise CardError(f"{where}: [energy] has unknown fields {sorted(unknown)}; allowed: "
                        f"{sorted(allowed)}")
    missing = allowed - set(table)
    if missing:
        raise CardError(f"{where}: [energy] is missing {sorted(missing)}")
    energy, sources = {}, {}
    for key, spec in _ENERGY.items():
        value, source = take(table[key], spec, f"{where}: energy.{key}")
        action = "core_static_s" if key == "static_power_per_core" else key
        energy[action], sources[action] = value, source
    adc = table["adc_conversion"]
    if not isinstance(adc, Mapping) or not adc:
        raise CardError(f"{where}: energy.adc_conversion must be a table of bit widths, e.g. "
                        "'8' = {value, unit, source}")
    for bits, raw in adc.items():
        if not (str(bits).isdigit() and 1 <= int(bits) <= 24):
            raise CardError(f"{where}: energy.adc_conversion.{bits}: the key must be a bit "
                            "width in [1, 24]")
        value, source = take(raw, _ADC_ENERGY, f"{where}: energy.adc_conversion.{bits}")
        energy[f"adc_conversion_{int(bits)}b"] = value
        sources[f"adc_conversion_{int(bits)}b"] = source
    return EnergyTable(name, energy, sources)


def load_chip_config(name_or_path: str | Path, **overrides: Any) -> ChipConfig:
    """Read a chip card (name in ``crossbars/`` or a path) into a :class:`ChipConfig`.

    ``overrides`` change fields by name (``encoding="pwm_4phase"`` changes the cores' tile).
    """
    name, data = read_card(name_or_path, "crossbars")
    where = f"chip card {name!r}"
    card = data.get("card", {})
    if card.get("kind") != "chip":
        raise CardError(f"{where}: card.kind = {card.get('kind')!r}; a chip card needs 'chip'")
    allowed = {"card", "energy", *_SCHEMA}
    unknown = set(data) - allowed
    if unknown:
        raise CardError(f"{where}: unknown sections {sorted(unknown)}; allowed: {sorted(allowed)}")
    card_keys = {"kind", "description", "tile", "device"}
    if set(card) - card_keys:
        raise CardError(f"{where}: [card] has unknown fields {sorted(set(card) - card_keys)}; "
                        f"allowed: {sorted(card_keys)}")
    if not isinstance(card.get("tile"), str):
        raise CardError(f"{where}: card.tile must name the tile card of the cores "
                        "(e.g. tile = \"hermes-core\")")
    tile_ref = card["tile"]
    path = Path(str(name_or_path))
    if path.suffix == ".toml" and (path.parent / f"{tile_ref}.toml").is_file():
        tile_ref = str(path.parent / f"{tile_ref}.toml")
    try:
        tile = load_tile_config(tile_ref)
    except CardError as exc:
        raise CardError(f"{where}: card.tile = {card['tile']!r}: {exc}") from exc
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for section in _SCHEMA:
        if section not in data:
            raise CardError(f"{where}: section [{section}] is missing")
        v, s = parse_section(data[section], section, _SCHEMA[section], where)
        values.update(v)
        sources.update(s)
        for key in _required(section, data):
            if key not in data[section]:
                raise CardError(f"{where}: {section}.{key} is missing")
    for prefix in ("gdu", "io"):
        r, c = values.pop(f"{prefix}_row", 0), values.pop(f"{prefix}_col", 0)
        values[f"{prefix}_position"] = (r, c)
    if "energy" not in data:
        raise CardError(f"{where}: section [energy] is missing")
    energy = _parse_energy(data["energy"], name, where)
    cfg = ChipConfig(name=name, description=str(card.get("description", "")), tile=tile,
                     device=str(card.get("device", "pcm-hermes-2dev")), energy=energy,
                     sources=sources, **values)
    adc_key = f"adc_conversion_{cfg.tile.adc_bits}b"
    if cfg.tile.adc_bits is not None and adc_key not in energy.energy_j:
        raise CardError(f"{where}: energy.adc_conversion has no entry for the tile's "
                        f"{cfg.tile.adc_bits}-bit ADC")
    return cfg.with_(**overrides) if overrides else cfg


def load_energy_table(name_or_path: str | Path) -> EnergyTable:
    """The per-action energy table of a chip card (to re-cost a run with it)."""
    return load_chip_config(name_or_path).energy
