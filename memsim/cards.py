"""Cards: TOML files of parameters, each value with its unit and its source.

A card is data, not code. Every numeric parameter is a table::

    [g_max]
    value = 25.0
    unit = "uS"
    source = "Nandakumar et al., ICECS 2019, doi:10.1109/ICECS46596.2019.8964852"

The loader converts values to SI units, checks them against the range that the code
declares for that field and raises a ``ValueError`` that names the card, the field, the
value and the allowed range when anything is missing, unknown, of the wrong unit or out
of range. Nothing is silently changed.

Beyond each field's own range, a value far outside what any device, tile or chip has is
refused as a likely unit slip (a conductance above 10 mS, e.g. ``0.9`` with unit ``"S"``
meant as µS; see :data:`PLAUSIBLE`), naming the field and the unit to check.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memsim.errors import CardError  # re-exported here: memsim.cards.CardError

__all__ = [
    "As",
    "CardError",
    "Field",
    "Quantity",
    "card_dir",
    "find_card",
    "list_cards",
    "parse_section",
    "read_card",
    "take_quantity",
    "to_si",
]


# Units by dimension: factor to SI. "1" is dimensionless.
_UNITS: dict[str, dict[str, float]] = {
    "conductance": {"S": 1.0, "mS": 1e-3, "uS": 1e-6, "µS": 1e-6, "nS": 1e-9},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12},
    "voltage": {"V": 1.0, "mV": 1e-3},
    "current": {"A": 1.0, "mA": 1e-3, "uA": 1e-6, "µA": 1e-6, "nA": 1e-9},
    "resistance": {"ohm": 1.0, "kohm": 1e3, "Mohm": 1e6},
    "length": {"m": 1.0, "um": 1e-6, "µm": 1e-6, "nm": 1e-9},
    "velocity": {"m/s": 1.0, "nm/s": 1e-9},
    "energy": {"J": 1.0, "pJ": 1e-12, "nJ": 1e-9, "fJ": 1e-15},
    "dimensionless": {"1": 1.0, "%": 1e-2},
    "lsb": {"LSB": 1.0},  # least significant bits of a converter at its own resolution
    "frequency": {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
    "data_rate": {"B/s": 1.0, "kB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12},
    "op_rate": {"FLOP/s": 1.0, "GFLOP/s": 1e9, "TFLOP/s": 1e12, "OP/s": 1.0,
                "GOP/s": 1e9, "TOP/s": 1e12},
    "power": {"W": 1.0, "mW": 1e-3, "uW": 1e-6, "µW": 1e-6},
    "data_size": {"B": 1.0, "kB": 1e3, "KiB": 1024.0, "MB": 1e6, "MiB": 1024.0**2},
    "area": {"m2": 1.0, "mm2": 1e-6, "um2": 1e-12, "µm2": 1e-12},
}


#: Largest plausible magnitude (SI) per dimension, and what it means: larger card values are
#: refused as unit slips. Conductances of memristive devices in crossbars are µS to a few mS.
PLAUSIBLE: dict[str, tuple[float, str]] = {
    "conductance": (10e-3, "10 mS: memristive devices in crossbars conduct µS to a few mS"),
    "current": (1.0, "1 A: a crossbar line carries µA to mA"),
    "voltage": (100.0, "100 V: memristive devices switch and are read below a few volts"),
    "resistance": (1e12, "1 TΩ"),
    "time": (1e10, "1e10 s (about 300 years)"),
    "energy": (1e-3, "1 mJ for one action (an MVM, a conversion, a pulse)"),
    "power": (1e4, "10 kW"),
    "length": (1e-3, "1 mm for a device dimension"),
    "frequency": (1e11, "100 GHz"),
}


def to_si(value: float, unit: str, dimension: str, *, where: str = "") -> float:
    """Convert ``value`` given in ``unit`` to SI; ``unit`` must belong to ``dimension``."""
    table = _UNITS[dimension]
    if unit not in table:
        raise CardError(
            f"{where}unit {unit!r} is not a unit of {dimension}; allowed: {sorted(table)}"
        )
    return float(value) * table[unit]


def si_unit(dimension: str) -> str:
    """The SI unit name of ``dimension``."""
    for name, factor in _UNITS[dimension].items():
        if factor == 1.0:
            return name
    raise KeyError(dimension)  # pragma: no cover - every dimension has an SI unit


@dataclass(frozen=True, kw_only=True)
class Field:
    """Declaration of one numeric card field: dimension and allowed SI range."""

    dimension: str
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    required: bool = True
    default: float | None = None
    integer: bool = False
    none: bool = False  # the string "none" is accepted and means None (e.g. unquantized)

    def range_text(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right} {si_unit(self.dimension)}"

    def check(self, value: float, where: str) -> float:
        if not math.isfinite(value):
            raise CardError(f"{where} = {value!r} is not a finite number")
        below = value < self.lo or (self.lo_open and value == self.lo)
        above = value > self.hi or (self.hi_open and value == self.hi)
        if below or above:
            raise CardError(f"{where} = {value:g} is out of range; allowed {self.range_text()}")
        if self.integer and value != int(value):
            raise CardError(f"{where} = {value!r} must be an integer")
        return value


@dataclass(frozen=True)
class Quantity:
    """A value in SI units with the source that the card gave for it."""

    value: float
    source: str


def _root() -> Path:
    return Path(__file__).resolve().parent


def card_dir(kind: str) -> list[Path]:
    """Folders searched for cards of ``kind`` ("devices", "crossbars", "studies").

    A wheel carries the cards in ``memsim/_cards/<kind>``; a source checkout keeps them
    at the top level of the repository.
    """
    return [p for p in (_root() / "_cards" / kind, _root().parent / kind) if p.is_dir()]


def list_cards(kind: str) -> list[str]:
    """Names of the cards of ``kind`` that ship with memsim."""
    names: set[str] = set()
    for folder in card_dir(kind):
        names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def find_card(name_or_path: str | Path, kind: str) -> Path:
    """Resolve a card name (``devices/<name>.toml``) or a path to an existing file."""
    if not isinstance(name_or_path, str | Path) or not str(name_or_path).strip():
        raise CardError(f"a {kind} card is a name or the path of a .toml file, got "
                        f"{name_or_path!r}")
    text = str(name_or_path)
    if "\x00" in text:
        raise CardError(f"card name {text!r} contains a NUL character")
    path = Path(text).expanduser()
    looks_like_path = path.suffix == ".toml" or "/" in text or "\\" in text
    try:
        if looks_like_path:
            if path.is_file():
                return path
            if path.exists():
                raise CardError(f"card file {text!r} is not a file")
            raise CardError(f"card file {text!r} does not exist")
        for folder in card_dir(kind):
            candidate = folder / f"{text}.toml"
            if candidate.is_file():
                return candidate
    except OSError as exc:  # e.g. a name too long for the file system
        raise CardError(f"card {text!r} cannot be looked up: {exc.strerror or exc}") from None
    raise CardError(
        f"unknown {kind} card {text!r}; known cards: {', '.join(list_cards(kind)) or 'none'}"
        " (or pass the path of a .toml card)"
    )


def read_card(name_or_path: str | Path, kind: str) -> tuple[str, dict[str, Any]]:
    """Read a card; returns its name (the file stem) and the parsed TOML document."""
    path = find_card(name_or_path, kind)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"card {path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CardError(f"card {path}: not a text (UTF-8) file: {exc}") from exc
    except OSError as exc:
        raise CardError(f"card {path} cannot be read: {exc.strerror or exc}") from exc
    if "card" in data and not isinstance(data["card"], dict):
        raise CardError(f"card {path}: [card] must be a table (kind, description, …), got "
                        f"{data['card']!r}")
    return path.stem, data


def take_quantity(table: Mapping[str, Any], field: Field, where: str) -> Quantity:
    """Validate one ``{value, unit, source}`` table and return it in SI units."""
    if not isinstance(table, Mapping):
        raise CardError(
            f"{where} must be a table with 'value', 'unit' and 'source', got {table!r}"
        )
    extra = set(table) - {"value", "unit", "source"}
    if extra:
        raise CardError(f"{where} has unknown keys {sorted(extra)}; allowed: value, unit, source")
    for key in ("value", "unit", "source"):
        if key not in table:
            raise CardError(f"{where} is missing '{key}'")
    value = table["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CardError(f"{where}.value = {value!r} is not a number")
    source = table["source"]
    if not isinstance(source, str) or not source.strip():
        raise CardError(f"{where}.source must be a non-empty string naming the source")
    si = to_si(value, str(table["unit"]), field.dimension, where=f"{where}: ")
    checked = field.check(si, where)
    limit = PLAUSIBLE.get(field.dimension)
    if limit is not None and abs(checked) > limit[0]:
        in_si = f" ({checked:g} {si_unit(field.dimension)})" \
            if table["unit"] != si_unit(field.dimension) else ""
        raise CardError(f"{where} = {value!r} {table['unit']}{in_si} is implausibly large: "
                        f"above {limit[1]}. "
                        f"Is the unit right (allowed: {', '.join(_UNITS[field.dimension])})?")
    return Quantity(checked, source)


@dataclass(frozen=True)
class As:
    """A schema entry stored under another attribute name than its card key."""

    attr: str
    spec: Any


def parse_section(table: Any, section: str, schema: Mapping[str, Any],
                  where: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate one card section against ``schema`` (key -> spec).

    A spec is a :class:`Field` (a ``{value, unit, source}`` quantity, converted to SI), a
    tuple of allowed strings (a mode), ``bool`` (true/false), or :class:`As` wrapping one of
    those with the attribute name to store it under. Returns (values, sources).
    """
    if not isinstance(table, Mapping):
        raise CardError(f"{where}: [{section}] must be a table")
    unknown = set(table) - set(schema)
    if unknown:
        raise CardError(f"{where}: [{section}] has unknown fields {sorted(unknown)}; allowed: "
                        f"{sorted(schema)}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, raw in table.items():
        spec = schema[key]
        attr = key
        if isinstance(spec, As):
            attr, spec = spec.attr, spec.spec
        place = f"{where}: {section}.{key}"
        if spec is bool:
            if not isinstance(raw, bool):
                raise CardError(f"{place} = {raw!r} must be true or false")
            values[attr] = raw
        elif isinstance(spec, tuple):
            if raw not in spec:
                raise CardError(f"{place} = {raw!r} is unknown; allowed: {list(spec)}")
            values[attr] = raw
        elif spec.none and raw == "none":
            values[attr] = None
        else:
            q = take_quantity(raw, spec, place)
            values[attr] = int(q.value) if spec.integer else q.value
            sources[attr] = q.source
    return values, sources
