"""Chip cards: cores, topology, MVM timing, digital units, links, I/O, energy, area.

A chip card (``crossbars/<name>.toml``, ``[card] kind = "chip"``) names the tile card of its
cores (``tile = "hermes-core"``: array size, converters' bits, input encoding) and adds what a
chip has around the arrays. Every number is a ``{value, unit, source}`` table (see
:mod:`memsim.cards`); modes are plain strings; a value that is not from a paper says
"memsim assumption" in its source.

Timing of one MVM on a core (the array is held for this long)::

    pwm:        t_mvm = P · (2^(b−1) · t_unit + t_phase) + t_mvm_overhead
    bit_serial: t_mvm = b · t_cycle + t_mvm_overhead

with P the phases of the tile's encoding (1, or 4 for ``pwm_4phase``: each input sign ×
weight sign in its own PWM window, each window converted by the ADCs) and b the tile's DAC
bits. The local digital unit (LDPU) then handles the MVM's outputs at ``outputs_per_clock``
per clock, pipelined behind the array; with ``accumulates_conversions`` it handles every
conversion (ISAAC's shift-and-add of bit-serial and bit-sliced results), otherwise one value
per output column (HERMES: the phases add up in the ADC counters). The global digital unit
(GDPU) has ``slices`` working in parallel, each one output every ``cycles_per_output`` clocks.

Energy is counts × table (see :mod:`memsim.chip.energy`); static power and area come per
block from ``[components.<block>]``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from memsim.cards import As, Field, parse_section, read_card, take_quantity
from memsim.chip.energy import Component, EnergyTable
from memsim.chip.topology import Topology, make_topology, square_grid
from memsim.crossbar.config import TileConfig, load_tile_config
from memsim.errors import CardError, ConfigError

__all__ = ["ChipConfig", "load_chip_config", "load_energy_table"]

INPUT_SCHEMES = ("pwm", "bit_serial")
ATTACH = ("centre", "corner")
TILE_KEYS = ("encoding", "dac_bits", "adc_bits", "rows", "cols")


@functools.lru_cache(maxsize=64)
def _topology(kind: str, cores: int, rows: int, cols: int, size: int) -> Topology:
    return make_topology(kind, cores, rows=rows, cols=cols, prism_size=size)


@dataclass(frozen=True, kw_only=True)
class ChipConfig:
    """Every parameter of a chip (SI units). Build from a card (:func:`load_chip_config`).

    Attributes:
        tile: the TileConfig of one core's array (geometry, converters' bits, encoding).
        cores, weight_slices: cores per chip; arrays per core holding one weight block (bit
            slicing: ISAAC uses 8 arrays of 2-bit cells for 16-bit weights).
        gate_unused_lines: whether a core switches off the input lines and converters of the
            rows and columns its block does not use (False: every MVM drives the whole array).
        topology, grid_rows, grid_cols, prism_size: the on-chip network
            (:mod:`memsim.chip.topology`); global_unit_at / io_at: "centre" or "corner" core.
        input_scheme, pwm_unit_time_s, phase_overhead_s, cycle_time_s, mvm_overhead_s: MVM
            timing (module docstring).
        ldpu_outputs_per_clock, ldpu_clock_hz, affine_ops_per_output, ldpu_accumulates:
            the local digital unit of each core.
        gdu_slices, gdu_cycles_per_output, gdu_clock_hz: the global digital unit.
        link_bandwidth_Bps, hop_latency_s: each directed link; activation_bits,
            partial_sum_bits: the values they carry.
        io_bandwidth_Bps, io_latency_s: off-chip port (one in, one out).
        input_buffer_bytes, output_buffer_bytes: per core.
        program_parallel_devices, program_iterations, program_iteration_s: programming.
        energy: the per-action :class:`EnergyTable` (static powers included).
        components: the blocks with area and static power.
        reference: the published figures ``memsim chip --calibrate`` compares with.
    """

    name: str = "custom"
    description: str = ""
    reference: str = ""
    tile: TileConfig
    device: str = "pcm-hermes-2dev"
    cores: int
    weight_slices: int = 1
    gate_unused_lines: bool = False
    topology: str = "mesh"
    grid_rows: int = 0
    grid_cols: int = 0
    prism_size: int = 5
    global_unit_at: str = "centre"
    io_at: str = "corner"
    input_scheme: str = "pwm"
    pwm_unit_time_s: float = 1e-9
    phase_overhead_s: float = 0.0
    cycle_time_s: float = 1e-7
    mvm_overhead_s: float = 0.0
    ldpu_outputs_per_clock: float = 1.0
    ldpu_clock_hz: float = 1e9
    affine_ops_per_output: int = 2
    ldpu_accumulates: bool = False
    gdu_slices: int = 1
    gdu_cycles_per_output: float = 1.0
    gdu_clock_hz: float = 1e9
    link_bandwidth_Bps: float = 1e9
    hop_latency_s: float = 1e-9
    activation_bits: int = 8
    partial_sum_bits: int = 16
    io_bandwidth_Bps: float = 25.6e9
    io_latency_s: float = 100e-9
    input_buffer_bytes: float = 64 * 1024
    output_buffer_bytes: float = 64 * 1024
    program_parallel_devices: int = 32
    program_iterations: int = 30
    program_iteration_s: float = 1e-6
    energy: EnergyTable
    components: tuple[Component, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        def bad(name: str, value: Any, allowed: str) -> CardError:
            return CardError(f"chip {self.name!r}: {name} = {value!r} is out of range; "
                             f"allowed {allowed}")

        ints = ("cores", "weight_slices", "prism_size", "affine_ops_per_output", "gdu_slices",
                "activation_bits", "partial_sum_bits", "program_parallel_devices",
                "program_iterations")
        for name in ints:
            v = getattr(self, name)
            lo = 0 if name == "affine_ops_per_output" else 1
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= 1 << 20:
                raise bad(name, v, f"an integer in [{lo}, 1048576]")
        if self.input_scheme not in INPUT_SCHEMES:
            raise bad("input_scheme", self.input_scheme, f"one of {list(INPUT_SCHEMES)}")
        for name in ("global_unit_at", "io_at"):
            if getattr(self, name) not in ATTACH:
                raise bad(name, getattr(self, name), f"one of {list(ATTACH)}")
        positive = ("pwm_unit_time_s", "cycle_time_s", "ldpu_outputs_per_clock",
                    "ldpu_clock_hz", "gdu_cycles_per_output", "gdu_clock_hz",
                    "link_bandwidth_Bps", "io_bandwidth_Bps", "input_buffer_bytes",
                    "output_buffer_bytes", "program_iteration_s")
        for name in positive:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise bad(name, v, "(0, inf)")
        for name in ("phase_overhead_s", "mvm_overhead_s", "hop_latency_s", "io_latency_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise bad(name, v, "[0, inf)")
        if self.tile.dac_bits is None:
            raise bad("tile.dac_bits", None, "an integer: the MVM time depends on the input bits")
        try:
            self.topo  # noqa: B018 - builds and checks the topology
        except ConfigError as exc:
            raise CardError(f"chip {self.name!r}: {exc}") from None
        for comp in self.components:
            key = f"static:{comp.name}"
            if key not in self.energy:
                raise CardError(f"chip {self.name!r}: energy table lacks {key!r}")

    # -- derived ----------------------------------------------------------------------------
    @property
    def topo(self) -> Topology:
        """The on-chip network of one chip."""
        return _topology(self.topology, self.cores, self.grid_rows, self.grid_cols,
                         self.prism_size)

    def attach_node(self, where: str) -> int:
        return self.topo.centre() if where == "centre" else 0

    @property
    def gdu_node(self) -> int:
        return self.attach_node(self.global_unit_at)

    @property
    def io_node(self) -> int:
        return self.attach_node(self.io_at)

    @property
    def activation_bytes(self) -> float:
        return self.activation_bits / 8

    @property
    def partial_sum_bytes(self) -> float:
        return self.partial_sum_bits / 8

    @property
    def ldpu_item_s(self) -> float:
        """Time of one LDPU output (or conversion, when it accumulates them)."""
        return 1.0 / (self.ldpu_outputs_per_clock * self.ldpu_clock_hz)

    def gdu_time_s(self, outputs: float) -> float:
        """Time of the global unit for ``outputs`` outputs spread over its slices."""
        return outputs * self.gdu_cycles_per_output / (self.gdu_slices * self.gdu_clock_hz)

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
        """Array read energy of an MVM with ``tile``'s inputs relative to the card's own tile:
        PWM inputs conduct for 2^(b−1) unit times, bit-serial inputs for b cycles; the card's
        ``array_cell_read`` is for its own tile's DAC bits."""
        t = tile or self.tile
        ref, bits = self.tile.dac_bits, t.dac_bits
        if ref is None or bits is None:
            return 1.0
        if self.input_scheme == "bit_serial":
            return bits / ref
        return 2.0 ** (bits - 1) / 2.0 ** (ref - 1)

    def core_area_m2(self) -> float:
        """Area of one core with its share of shared per-core blocks."""
        return sum(c.area_m2 * c.count / c.shared_by for c in self.components if c.per == "core")

    def area_breakdown_m2(self) -> dict[str, float]:
        """Area of one chip by block."""
        return {c.name: c.area_m2 * c.instances(self.cores) for c in self.components}

    @property
    def area_m2(self) -> float:
        return sum(self.area_breakdown_m2().values())

    def static_power_w(self) -> float:
        """Static power of one chip (all blocks powered)."""
        return sum(self.energy[f"static:{c.name}"] * c.instances(self.cores)
                   for c in self.components)

    def static_counts(self, seconds: float, chips: int = 1) -> dict[str, float]:
        """Block-seconds of every block of ``chips`` chips powered for ``seconds``."""
        return {f"static:{c.name}": c.instances(self.cores) * chips * seconds
                for c in self.components if c.instances(self.cores)}

    def with_(self, **changes: Any) -> ChipConfig:
        """A copy with some fields changed (validated again).

        Besides the field names: ``encoding``, ``dac_bits``, ``adc_bits``, ``rows`` and
        ``cols`` change the core's tile; ``cores`` alone on a mesh picks the most square
        grid; ``mvm_clock_hz`` sets the PWM unit time to one clock period.
        """
        changes = dict(changes)
        tile_changes = {k: changes.pop(k) for k in list(changes) if k in TILE_KEYS}
        if "mvm_clock_hz" in changes:
            f = changes.pop("mvm_clock_hz")
            if not (isinstance(f, int | float) and math.isfinite(f) and f > 0):
                raise ConfigError(f"chip {self.name!r}: mvm_clock_hz = {f!r} must be > 0")
            if self.input_scheme != "pwm":
                raise ConfigError(f"chip {self.name!r}: mvm_clock_hz sets the PWM unit time; "
                                  "this chip's inputs are bit-serial (set cycle_time_s)")
            changes["pwm_unit_time_s"] = 1.0 / f
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ConfigError(f"chip {self.name!r}: unknown chip parameters {sorted(unknown)};"
                              f" known: {sorted(names - {'sources'})}, "
                              f"{sorted(TILE_KEYS)} and mvm_clock_hz")
        topo = changes.get("topology", self.topology)
        if "cores" in changes and topo == "mesh" and not {"grid_rows", "grid_cols"} & set(
                changes):
            changes["grid_rows"], changes["grid_cols"] = square_grid(int(changes["cores"]))
        if tile_changes:
            changes["tile"] = self.tile.with_(**tile_changes)
        try:
            return replace(self, **changes)
        except CardError as exc:
            raise ConfigError(str(exc)) from None


# -- card parsing ------------------------------------------------------------------------------
_INT = {"dimension": "dimensionless", "integer": True}

_SCHEMA: dict[str, dict[str, Any]] = {
    "cores": {
        "count": As("cores", Field(lo=1, hi=1 << 20, **_INT)),
        "weight_slices": Field(lo=1, hi=64, **_INT),
        "gate_unused_lines": bool,
    },
    "topology": {
        "kind": As("topology", ("mesh", "prism")),
        "rows": As("grid_rows", Field(lo=1, hi=1 << 12, **_INT)),
        "cols": As("grid_cols", Field(lo=1, hi=1 << 12, **_INT)),
        "prism_size": Field(lo=2, hi=64, **_INT),
        "global_unit_at": ATTACH,
        "io_at": ATTACH,
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
        "outputs_per_clock": As("ldpu_outputs_per_clock",
                                Field(dimension="dimensionless", lo=0, hi=1 << 16,
                                      lo_open=True)),
        "clock": As("ldpu_clock_hz", Field(dimension="frequency", lo=0, hi=1e11,
                                            lo_open=True)),
        "affine_ops_per_output": Field(lo=0, hi=64, **_INT),
        "accumulates_conversions": As("ldpu_accumulates", bool),
    },
    "global_digital": {
        "slices": As("gdu_slices", Field(lo=1, hi=1 << 12, **_INT)),
        "cycles_per_output": As("gdu_cycles_per_output",
                                Field(dimension="dimensionless", lo=0, hi=1 << 16,
                                      lo_open=True)),
        "clock": As("gdu_clock_hz", Field(dimension="frequency", lo=0, hi=1e11,
                                           lo_open=True)),
    },
    "links": {
        "bandwidth": As("link_bandwidth_Bps", Field(dimension="data_rate", lo=0, hi=1e15,
                                                     lo_open=True)),
        "hop_latency": As("hop_latency_s", Field(dimension="time", lo=0, hi=1e-3)),
        "activation_bits": Field(lo=1, hi=64, **_INT),
        "partial_sum_bits": Field(lo=1, hi=64, **_INT),
    },
    "io": {
        "bandwidth": As("io_bandwidth_Bps", Field(dimension="data_rate", lo=0, hi=1e15,
                                                   lo_open=True)),
        "latency": As("io_latency_s", Field(dimension="time", lo=0, hi=1.0)),
    },
    "buffers": {
        "input_buffer": As("input_buffer_bytes", Field(dimension="data_size", lo=0, hi=1e12,
                                                        lo_open=True)),
        "output_buffer": As("output_buffer_bytes", Field(dimension="data_size", lo=0,
                                                          hi=1e12, lo_open=True)),
    },
    "programming": {
        "parallel_devices": As("program_parallel_devices", Field(lo=1, hi=1 << 20, **_INT)),
        "iterations": As("program_iterations", Field(lo=1, hi=1 << 12, **_INT)),
        "iteration_time": As("program_iteration_s",
                              Field(dimension="time", lo=0, hi=1.0, lo_open=True)),
    },
}
_OPTIONAL = {"cores": {"weight_slices"}, "topology": {"rows", "cols", "prism_size"}}
_TOPOLOGY_FIELDS = {"mesh": {"rows", "cols"}, "prism": {"prism_size"}}
_SCHEME_FIELDS = {"pwm": {"pwm_unit_time", "phase_overhead", "mvm_overhead"},
                  "bit_serial": {"cycle_time", "mvm_overhead"}}

_ENERGY: dict[str, Field] = {
    "dac_conversion": Field(dimension="energy", lo=0, hi=1e-6),
    "array_cell_read": Field(dimension="energy", lo=0, hi=1e-6),
    "mvm_overhead": Field(dimension="energy", lo=0, hi=1e-3),
    "local_digital_op": Field(dimension="energy", lo=0, hi=1e-6),
    "global_digital_op": Field(dimension="energy", lo=0, hi=1e-6),
    "noc_byte_hop": Field(dimension="energy", lo=0, hi=1e-6),
    "buffer_byte": Field(dimension="energy", lo=0, hi=1e-6),
    "offchip_byte": Field(dimension="energy", lo=0, hi=1e-6),
    "program_device": Field(dimension="energy", lo=0, hi=1e-3),
}
_ADC_ENERGY = Field(dimension="energy", lo=0, hi=1e-6, lo_open=True)
_COMPONENT: dict[str, Any] = {
    "area": As("area_m2", Field(dimension="area", lo=0, hi=1.0)),
    "static_power": As("static_power_w", Field(dimension="power", lo=0, hi=1e4)),
    "count": Field(dimension="dimensionless", lo=0, hi=1e9),
    "shared_by": Field(lo=1, hi=1 << 20, **_INT),
}


def _required(section: str, data: Mapping[str, Any]) -> list[str]:
    """Fields a card must give (nothing falls back to a silent default)."""
    if section == "timing":
        scheme = data["timing"].get("input_scheme", "pwm")
        return ["input_scheme", *sorted(_SCHEME_FIELDS.get(scheme, set()))]
    if section == "topology":
        kind = data["topology"].get("kind", "mesh")
        return ["kind", "global_unit_at", "io_at", *sorted(_TOPOLOGY_FIELDS.get(kind, ()))]
    return [k for k in _SCHEMA[section] if k not in _OPTIONAL.get(section, set())]


def _take(table: Any, spec: Field, where: str) -> tuple[float, str]:
    q = take_quantity(table, spec, where)
    return q.value, q.source


def _parse_energy(table: Any, name: str, where: str) -> tuple[dict[str, float],
                                                              dict[str, str]]:
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
        energy[key], sources[key] = _take(table[key], spec, f"{where}: energy.{key}")
    adc = table["adc_conversion"]
    if not isinstance(adc, Mapping) or not adc:
        raise CardError(f"{where}: energy.adc_conversion must be a table of bit widths, e.g. "
                        "'8' = {value, unit, source}")
    for bits, raw in adc.items():
        if not (str(bits).isdigit() and 1 <= int(bits) <= 24):
            raise CardError(f"{where}: energy.adc_conversion.{bits}: the key must be a bit "
                            "width in [1, 24]")
        key = f"adc_conversion_{int(bits)}b"
        energy[key], sources[key] = _take(raw, _ADC_ENERGY,
                                          f"{where}: energy.adc_conversion.{bits}")
    return energy, sources


def _parse_components(table: Any, where: str) -> tuple[list[Component], dict[str, float],
                                                       dict[str, str]]:
    if not isinstance(table, Mapping) or not table:
        raise CardError(f"{where}: [components] must list the chip's blocks, e.g. "
                        "[components.ldpu] with per, area and static_power")
    out, static, sources = [], {}, {}
    for name, raw in table.items():
        place = f"{where}: components.{name}"
        if not isinstance(raw, Mapping):
            raise CardError(f"{place} must be a table")
        extra = set(raw) - {*_COMPONENT, "per", "description"}
        if extra:
            raise CardError(f"{place} has unknown fields {sorted(extra)}; allowed: "
                            f"{sorted({*_COMPONENT, 'per', 'description'})}")
        for key in ("per", "area", "static_power"):
            if key not in raw:
                raise CardError(f"{place}.{key} is missing")
        if raw["per"] not in ("core", "chip"):
            raise CardError(f"{place}.per = {raw['per']!r}; allowed: 'core', 'chip'")
        if "shared_by" in raw and raw["per"] != "core":
            raise CardError(f"{place}.shared_by is for per-core blocks only")
        quantities = {k: v for k, v in raw.items() if k in _COMPONENT}
        values, srcs = parse_section(quantities, f"components.{name}", _COMPONENT, where)
        comp = Component(name=str(name), per=str(raw["per"]),
                         area_m2=values["area_m2"], static_power_w=values["static_power_w"],
                         count=float(values.get("count", 1.0)),
                         shared_by=int(values.get("shared_by", 1)),
                         description=str(raw.get("description", "")), sources=srcs)
        out.append(comp)
        static[f"static:{name}"] = comp.static_power_w
        sources[f"static:{name}"] = srcs.get("static_power_w", "")
    return out, static, sources


def load_chip_config(name_or_path: str | Path, **overrides: Any) -> ChipConfig:
    """Read a chip card (name in ``crossbars/`` or a path) into a :class:`ChipConfig`.

    ``overrides`` change fields by name (see :meth:`ChipConfig.with_`).
    """
    name, data = read_card(name_or_path, "crossbars")
    where = f"chip card {name!r}"
    card = data.get("card", {})
    if card.get("kind") != "chip":
        raise CardError(f"{where}: card.kind = {card.get('kind')!r}; a chip card needs 'chip'")
    allowed = {"card", "energy", "components", *_SCHEMA}
    unknown = set(data) - allowed
    if unknown:
        raise CardError(f"{where}: unknown sections {sorted(unknown)}; allowed: {sorted(allowed)}")
    card_keys = {"kind", "description", "tile", "device", "reference"}
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
    for section in ("energy", "components"):
        if section not in data:
            raise CardError(f"{where}: section [{section}] is missing")
    energy, e_src = _parse_energy(data["energy"], name, where)
    components, static, s_src = _parse_components(data["components"], where)
    table = EnergyTable(name, {**energy, **static}, {**e_src, **s_src})
    try:
        cfg = ChipConfig(name=name, description=str(card.get("description", "")),
                         reference=str(card.get("reference", "")), tile=tile,
                         device=str(card.get("device", "pcm-hermes-2dev")), energy=table,
                         components=tuple(components), sources=sources, **values)
    except ConfigError as exc:  # pragma: no cover - the topology check re-raises CardError
        raise CardError(f"{where}: {exc}") from None
    adc_key = f"adc_conversion_{cfg.tile.adc_bits}b"
    if cfg.tile.adc_bits is not None and adc_key not in table:
        raise CardError(f"{where}: energy.adc_conversion has no entry for the tile's "
                        f"{cfg.tile.adc_bits}-bit ADC")
    return cfg.with_(**overrides) if overrides else cfg


def load_energy_table(name_or_path: str | Path) -> EnergyTable:
    """The per-action energy table of a chip card (to re-cost a run with it)."""
    return load_chip_config(name_or_path).energy
