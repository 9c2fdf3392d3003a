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

from memsim.cards import (
    Field,
    Schema,
    Section,
    card_field,
    card_header,
    check_fields,
    check_kind,
    declared_sections,
    fields_of,
    merged,
    read_card,
)
from memsim.chip.energy import Component, EnergyTable
from memsim.chip.topology import TOPOLOGIES, Topology, make_topology, square_grid
from memsim.crossbar.config import TileConfig, load_tile_config
from memsim.errors import CardError, ConfigError

__all__ = ["CHIP_SCHEMA", "ChipConfig", "load_chip_config", "load_energy_table"]

INPUT_SCHEMES = ("pwm", "bit_serial")
ATTACH = ("centre", "corner")
TILE_KEYS = ("encoding", "dac_bits", "adc_bits", "rows", "cols")


@functools.lru_cache(maxsize=64)
def _topology(kind: str, cores: int, rows: int, cols: int, size: int) -> Topology:
    return make_topology(kind, cores, rows=rows, cols=cols, prism_size=size)


def _uses(key: str):
    """``when`` of a [topology] field: the topologies built from it."""
    return lambda kind: kind in TOPOLOGIES and key in TOPOLOGIES[kind].uses


_INT = {"integer": True}
_TIME = {"dimension": "time", "lo": 0.0}


@dataclass(frozen=True, kw_only=True)
class ChipConfig:
    """Every parameter of a chip (SI units). Build from a card (:func:`load_chip_config`).

    Each card field is declared once below (:func:`memsim.cards.card_field`); the same
    declaration parses chip cards and checks these keywords
    (:class:`~memsim.errors.ConfigError`); ``docs/cards.md`` lists them with their help.

    Besides the card fields: ``tile``, the TileConfig of one core's array (geometry,
    converters' bits, encoding; the card's ``card.tile``); ``device``, the device card of
    the cores; ``energy``, the per-action :class:`EnergyTable` (static powers included);
    ``components``, the blocks with area and static power; ``reference``, the published
    figures ``memsim chip --calibrate`` compares with.
    """

    name: str = "custom"
    description: str = ""
    reference: str = ""
    tile: TileConfig
    device: str = "pcm-hermes-2dev"
    cores: int = card_field("cores", "count", lo=1, hi=1 << 20, **_INT, example=64,
                            help="cores per chip")
    weight_slices: int = card_field(
        "cores", lo=1, hi=64, default=1, required=False, **_INT,
        help="arrays per core holding one weight block (bit slicing: ISAAC uses 8 arrays "
             "of 2-bit cells for 16-bit weights)")
    gate_unused_lines: bool = card_field(
        "cores", boolean=True, default=False,
        help="whether a core switches off the input lines and converters of the rows and "
             "columns its block does not use (false: every MVM drives the whole array)")
    topology: str = card_field("topology", "kind", choices=TOPOLOGIES, default="mesh",
                               help="the on-chip network (memsim.chip.topology): \"mesh\", "
                                    "\"prism\" or a registered plug-in")
    grid_rows: int = card_field("topology", "rows", lo=1, hi=1 << 12, default=0, **_INT,
                                example=8,
                                when=("kind", _uses("rows")),
                                help="rows of cores (mesh: rows x cols = cores)")
    grid_cols: int = card_field("topology", "cols", lo=1, hi=1 << 12, default=0, **_INT,
                                example=8,
                                when=("kind", _uses("cols")), help="columns of cores")
    prism_size: int = card_field("topology", lo=2, hi=64, default=5, **_INT,
                                 when=("kind", _uses("prism_size")),
                                 help="cores per ring of a prism (HERMES: 5)")
    global_unit_at: str = card_field("topology", choices=ATTACH, default="centre",
                                     help="the core the global digital unit attaches to")
    io_at: str = card_field("topology", choices=ATTACH, default="corner",
                            help="the core the off-chip port attaches to")
    input_scheme: str = card_field(
        "timing", choices=INPUT_SCHEMES, default="pwm",
        help="pwm: t_mvm = P·(2^(b−1)·pwm_unit_time + phase_overhead) + mvm_overhead; "
             "bit_serial: t_mvm = b·cycle_time + mvm_overhead (b: DAC bits, P: phases)")
    pwm_unit_time_s: float = card_field(
        "timing", "pwm_unit_time", **_TIME, hi=1e-3, lo_open=True, default=1e-9,
        when=("input_scheme", ("pwm",)), help="one LSB of a PWM input pulse")
    phase_overhead_s: float = card_field(
        "timing", "phase_overhead", **_TIME, hi=1e-3, default=0.0,
        when=("input_scheme", ("pwm",)), help="fixed time per PWM phase (conversion)")
    cycle_time_s: float = card_field(
        "timing", "cycle_time", **_TIME, hi=1e-3, lo_open=True, default=1e-7,
        when=("input_scheme", ("bit_serial",)), help="one input bit of a bit-serial MVM")
    mvm_overhead_s: float = card_field("timing", "mvm_overhead", **_TIME, hi=1e-3,
                                       default=0.0, help="fixed time per MVM")
    ldpu_outputs_per_clock: float = card_field(
        "local_digital", "outputs_per_clock", lo=0.0, hi=1 << 16, lo_open=True, default=1.0,
        help="outputs (or conversions, when it accumulates them) the local digital unit "
             "handles per clock")
    ldpu_clock_hz: float = card_field("local_digital", "clock", dimension="frequency",
                                      lo=0.0, hi=1e11, lo_open=True, default=1e9,
                                      help="clock of the local digital unit")
    affine_ops_per_output: int = card_field("local_digital", lo=0, hi=64, default=2, **_INT,
                                            help="digital operations per output (affine "
                                                 "correction)")
    ldpu_accumulates: bool = card_field(
        "local_digital", "accumulates_conversions", boolean=True, default=False,
        help="it handles every conversion (ISAAC's shift-and-add), not one value per column")
    gdu_slices: int = card_field("global_digital", "slices", lo=1, hi=1 << 12, default=1,
                                 **_INT, help="slices of the global digital unit, in parallel")
    gdu_cycles_per_output: float = card_field(
        "global_digital", "cycles_per_output", lo=0.0, hi=1 << 16, lo_open=True, default=1.0,
        help="clocks per output of one slice")
    gdu_clock_hz: float = card_field("global_digital", "clock", dimension="frequency",
                                     lo=0.0, hi=1e11, lo_open=True, default=1e9,
                                     help="clock of the global digital unit")
    link_bandwidth_Bps: float = card_field("links", "bandwidth", dimension="data_rate",
                                           lo=0.0, hi=1e15, lo_open=True, default=1e9,
                                           help="bandwidth of each directed link")
    hop_latency_s: float = card_field("links", "hop_latency", **_TIME, hi=1e-3, default=1e-9,
                                      help="latency of one hop")
    activation_bits: int = card_field("links", lo=1, hi=64, default=8, **_INT,
                                      help="bits of an activation sent over a link")
    partial_sum_bits: int = card_field("links", lo=1, hi=64, default=16, **_INT,
                                       help="bits of a partial sum sent over a link")
    io_bandwidth_Bps: float = card_field("io", "bandwidth", dimension="data_rate", lo=0.0,
                                         hi=1e15, lo_open=True, default=25.6e9,
                                         help="off-chip port bandwidth (one in, one out)")
    io_latency_s: float = card_field("io", "latency", **_TIME, hi=1.0, default=100e-9,
                                     help="off-chip port latency")
    input_buffer_bytes: float = card_field("buffers", "input_buffer", dimension="data_size",
                                           lo=0.0, hi=1e12, lo_open=True,
                                           default=64 * 1024, help="input buffer per core")
    output_buffer_bytes: float = card_field("buffers", "output_buffer",
                                            dimension="data_size", lo=0.0, hi=1e12,
                                            lo_open=True, default=64 * 1024,
                                            help="output buffer per core")
    program_parallel_devices: int = card_field(
        "programming", "parallel_devices", lo=1, hi=1 << 20, default=32, **_INT,
        help="devices programmed in parallel")
    program_iterations: int = card_field("programming", "iterations", lo=1, hi=1 << 12,
                                         default=30, **_INT,
                                         help="program-and-verify iterations per device")
    program_iteration_s: float = card_field("programming", "iteration_time", **_TIME, hi=1.0,
                                            lo_open=True, default=1e-6,
                                            help="time of one program-and-verify iteration")
    energy: EnergyTable
    components: tuple[Component, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        owner = f"chip {self.name!r}"
        check_fields(self, owner)
        if self.tile.dac_bits is None:
            raise ConfigError(f"{owner}: tile.dac_bits = None is out of range; allowed an "
                              "integer: the MVM time depends on the input bits")
        try:
            self.topo  # noqa: B018 - builds and checks the topology
        except ConfigError as exc:
            raise ConfigError(f"{owner}: {exc}") from None
        for comp in self.components:
            key = f"static:{comp.name}"
            if key not in self.energy:
                raise ConfigError(f"{owner}: energy table lacks {key!r}")

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
        return replace(self, **changes)


# -- card parsing ------------------------------------------------------------------------------
def _energy(key: str, hi: float, help: str) -> Field:
    return Field(section="energy", key=key, attr=key, dimension="energy", lo=0.0, hi=hi,
                 help=help)


def _parse_adc_energy(raw: Any, place: str, context: Mapping[str, Any]
                      ) -> tuple[dict[str, float], dict[str, str]]:
    """``[energy.adc_conversion]``: one {value, unit, source} per bit width."""
    if not isinstance(raw, Mapping) or not raw:
        raise CardError(f"{place} must be a table of bit widths, e.g. "
                        "'8' = {value, unit, source}")
    values, sources = {}, {}
    spec = Field(dimension="energy", lo=0.0, hi=1e-6, lo_open=True)
    for bits, quantity in raw.items():
        if not (str(bits).isdigit() and 1 <= int(bits) <= 24):
            raise CardError(f"{place}.{bits}: the key must be a bit width in [1, 24]")
        key = f"adc_conversion_{int(bits)}b"
        values[key], sources[key] = spec.parse(quantity, f"{place}.{bits}")
    return values, sources


_ENERGY = (
    _energy("dac_conversion", 1e-6, "one input line driven for one phase or cycle"),
    _energy("array_cell_read", 1e-6, "one unit cell read for one phase or cycle, at the "
                                     "card's own tile's DAC bits"),
    Field(section="energy", key="adc_conversion", attr="adc_conversion",
          parser=_parse_adc_energy, python_type=dict,
          form="a table: bit width -> {value, unit, source} (energy of one conversion)",
          example={"8": 1e-12},
          help="one conversion at each bit width; the tile's ADC bits must be listed"),
    _energy("mvm_overhead", 1e-3, "the part of one array MVM's analog energy that does not "
                                  "scale with phases"),
    _energy("local_digital_op", 1e-6, "one operation of a local digital unit"),
    _energy("global_digital_op", 1e-6, "one operation of the global digital unit"),
    _energy("noc_byte_hop", 1e-6, "one byte over one link"),
    _energy("buffer_byte", 1e-6, "one byte read or written in a core buffer"),
    _energy("offchip_byte", 1e-6, "one byte through the off-chip port"),
    _energy("program_device", 1e-3, "programming one device"),
)


def _sections() -> tuple[Section, ...]:
    header = card_header(
        "chip", "chip",
        Field(section="card", key="tile", text=True, example="generic-256",
              help="the tile card of the cores (a name in crossbars/, or a file next to "
                   "this card)"),
        Field(section="card", key="device", text=True, default="pcm-hermes-2dev",
              required=False, help="the device card the cores are used with by default"),
        Field(section="card", key="reference", text=True, default="", required=False,
              help="the published figures memsim chip --calibrate compares with"))
    helps = {"cores": "how many cores, and how their arrays hold a weight block",
             "topology": "the on-chip network (a plug-in chosen by kind)",
             "timing": "time of one MVM on a core",
             "local_digital": "the local digital unit of each core (LDPU)",
             "global_digital": "the global digital unit (GDPU)",
             "links": "each directed link of the on-chip network",
             "io": "the off-chip port",
             "buffers": "the buffers of each core",
             "programming": "programming the arrays"}
    out = [header, *declared_sections(ChipConfig, helps)]
    out.append(Section("energy", _ENERGY, help="energy of one action (Accelergy style: a run "
                                               "counts actions, energy = counts × table)"))
    out.append(Section("components", fields_of(Component), each=True,
                       help="the blocks of the chip, one table each ([components.<name>]): "
                            "area and static power"))
    return tuple(out)


#: The declaration of chip cards (``crossbars/<name>.toml``, ``[card] kind = "chip"``).
CHIP_SCHEMA = Schema(
    kind="chip", title="Chip card", folder="crossbars", sections=_sections(),
    help="Cores of one tile card on an on-chip network, with timing, digital units, links, "
         "I/O, energy per action and the area and static power of each block "
         "(memsim.load_chip). Every field is required unless marked optional; fields of one "
         "input scheme or topology only with it.")


def load_chip_config(name_or_path: str | Path, **overrides: Any) -> ChipConfig:
    """Read a chip card (name in ``crossbars/`` or a path) into a :class:`ChipConfig`.

    ``overrides`` change fields by name (see :meth:`ChipConfig.with_`).
    """
    name, data = read_card(name_or_path, "crossbars")
    where = f"chip card {name!r}"
    check_kind(data, "kind", "chip", where)
    parts = CHIP_SCHEMA.parse(data, where)
    head = parts["card"].values
    tile_ref = head["tile"]
    path = Path(str(name_or_path))
    if path.suffix == ".toml" and (path.parent / f"{tile_ref}.toml").is_file():
        tile_ref = str(path.parent / f"{tile_ref}.toml")
    try:
        tile = load_tile_config(tile_ref)
    except CardError as exc:
        raise CardError(f"{where}: card.tile = {head['tile']!r}: {exc}") from exc
    energy = parts["energy"]
    table: dict[str, float] = {k: v for k, v in energy.values.items() if k != "adc_conversion"}
    table |= energy.values["adc_conversion"]
    sources = dict(energy.sources)
    components = []
    for key, part in parts.items():
        if key.startswith("components."):
            comp_name = key.split(".", 1)[1]
            try:
                comp = Component(name=comp_name, sources=part.sources, **part.values)
            except ConfigError as exc:
                raise CardError(f"{where}: {exc}") from None
            components.append(comp)
            table[f"static:{comp_name}"] = comp.static_power_w
            sources[f"static:{comp_name}"] = part.sources.get("static_power_w", "")
    body = merged(parts, *(s.name for s in CHIP_SCHEMA.sections
                           if s.name not in ("card", "energy", "components")))
    try:
        cfg = ChipConfig(name=name, description=head.get("description", ""),
                         reference=head.get("reference", ""), tile=tile,
                         device=head.get("device", "pcm-hermes-2dev"),
                         energy=EnergyTable(name, table, sources),
                         components=tuple(components), sources=body.sources, **body.values)
    except ConfigError as exc:
        raise CardError(f"{where}: {exc}") from None
    adc_key = f"adc_conversion_{cfg.tile.adc_bits}b"
    if cfg.tile.adc_bits is not None and adc_key not in table:
        raise CardError(f"{where}: energy.adc_conversion has no entry for the tile's "
                        f"{cfg.tile.adc_bits}-bit ADC")
    return cfg.with_(**overrides) if overrides else cfg


def load_energy_table(name_or_path: str | Path) -> EnergyTable:
    """The per-action energy table of a chip card (to re-cost a run with it)."""
    return load_chip_config(name_or_path).energy
