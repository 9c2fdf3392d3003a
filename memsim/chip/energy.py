"""Energy and area tables of a chip (Accelergy style): per-action energies, per-block area and
static power.

A run records *counts*: actions (a DAC line driven for one phase, a cell read, an ADC
conversion, a local or global digital operation, a byte over one link hop, a byte through a
buffer, a byte off chip, a device programmed) and, for every block of the chip, the seconds
it was powered (``static:<block>``: instances × run time). Energy is counts × table, so
:meth:`EnergyTable.cost` re-costs a run with another table without simulating it again.

Blocks (:class:`Component`) are the chip's parts with an area and a static power: per core
(e.g. the analog array with its converters, the local digital unit, a router) or per chip
(global digital units, I/O); a per-core block may be shared by several cores (ISAAC's eDRAM
serves the 12 IMAs of a tile). Their areas add up to the core and chip area.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from memsim.cards import card_field, check_fields
from memsim.errors import CardError, ConfigError

__all__ = ["ACTIONS", "COMPONENTS", "Component", "EnergyTable", "component_of"]

# dynamic action -> component of the breakdown
COMPONENTS: dict[str, str] = {
    "dac_conversion": "DAC",
    "array_cell_read": "array",
    "adc_conversion": "ADC",
    "mvm_overhead": "MVM overhead",
    "local_digital_op": "local digital",
    "global_digital_op": "global digital",
    "noc_byte_hop": "links",
    "buffer_byte": "buffers",
    "offchip_byte": "off-chip I/O",
    "program_device": "programming",
}
ACTIONS = tuple(COMPONENTS)
ANALOG = ("DAC", "array", "ADC", "MVM overhead")  # what HERMES' Table I MVM row measures


def component_of(action: str) -> str:
    """Breakdown component of an action key."""
    if action.startswith("adc_conversion_"):
        return "ADC"
    if action.startswith("static:"):
        return f"{action[7:]} (static)"
    try:
        return COMPONENTS[action]
    except KeyError:
        raise CardError(f"unknown action {action!r}") from None


def _known(action: str) -> bool:
    return (action in ACTIONS or action.startswith("static:")
            or (action.startswith("adc_conversion_") and action.endswith("b")
                and action[15:-1].isdigit()))


@dataclass(frozen=True)
class Component:
    """A block of the chip with an area and a static power.

    ``per`` is "core" or "chip". Instances per chip: ``count`` per chip, or
    ``count · cores / shared_by`` for a per-core block shared by ``shared_by`` cores.
    """

    name: str
    per: str = card_field("components", choices=("core", "chip"),
                          help="one instance per core or per chip")
    area_m2: float = card_field("components", "area", dimension="area", lo=0.0, hi=1.0,
                                help="area of one instance")
    static_power_w: float = card_field("components", "static_power", dimension="power",
                                       lo=0.0, hi=1e4, help="static power of one instance")
    count: float = card_field("components", lo=0.0, hi=1e9, default=1.0, required=False,
                              help="instances per core or per chip")
    shared_by: int = card_field("components", lo=1, hi=1 << 20, integer=True, default=1,
                                required=False, when=("per", ("core",)),
                                help="cores that share one instance of a per-core block")
    description: str = card_field("components", text=True, default="", required=False,
                                  help="what the block is")
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_fields(self, f"component {self.name!r}")

    def instances(self, cores: int) -> float:
        """Instances on one chip of ``cores`` cores."""
        if self.per == "chip":
            return self.count
        return self.count * cores / self.shared_by


@dataclass(frozen=True)
class EnergyTable:
    """Energy of one action, in joules; ``static:<block>`` entries are static powers in W
    (joules per block-second).

    Keys: ``dac_conversion`` (one input line driven for one phase/cycle), ``array_cell_read``
    (one unit cell read for one phase/cycle), ``adc_conversion_<b>b`` (one conversion at b
    bits), ``mvm_overhead`` (the part of one array MVM's analog energy that does not scale
    with phases), ``local_digital_op``, ``global_digital_op``, ``noc_byte_hop`` (one byte over
    one link), ``buffer_byte`` (one byte read or written in a core buffer), ``offchip_byte``,
    ``program_device`` (programming one device), ``static:<block>``.
    """

    name: str
    energy_j: Mapping[str, float]
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key, value in self.energy_j.items():
            if not _known(key):
                raise ConfigError(f"energy table {self.name!r}: unknown action {key!r}; known: "
                                f"{[*ACTIONS[:2], 'adc_conversion_<bits>b', *ACTIONS[3:]]} "
                                "and static:<block>")
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"energy table {self.name!r}: {key} = {value!r} is out of "
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

    def __contains__(self, action: str) -> bool:
        return action in self.energy_j

    def with_(self, **changes: float) -> EnergyTable:
        """A copy with some per-action energies changed (J)."""
        return EnergyTable(f"{self.name}*", {**self.energy_j, **changes}, self.sources)

    def cost(self, counts: Mapping[str, float]) -> dict[str, float]:
        """Energy per component (J) of the action ``counts``."""
        out: dict[str, float] = {}
        for action, n in counts.items():
            if n:
                e = n * self[action]
                if e:
                    comp = component_of(action)
                    out[comp] = out.get(comp, 0.0) + e
        return out

    def to_dict(self) -> dict[str, float]:
        return dict(self.energy_j)
