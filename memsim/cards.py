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

**One declaration per field.** Each config dataclass declares its fields once, with
:func:`card_field` (a :class:`Field`: card section and key, attribute, unit dimension,
range, default, whether a card must give it, help). The same declaration parses cards
(:class:`Section`, :class:`Schema`: a :class:`CardError` naming the card, the section and
the field), checks Python keyword arguments (:func:`check_fields`: a
:class:`~memsim.errors.ConfigError` naming the config and the keyword) and writes the card
reference (:mod:`memsim.schema`, ``docs/cards.md``). Plug-ins (drift and read-noise laws,
ADC models, network topologies) are chosen by a string in the card from a
:class:`Registry`; each declares its own fields the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from memsim.errors import CardError, ConfigError  # CardError re-exported: memsim.cards

__all__ = [
    "MISSING",
    "CardError",
    "Field",
    "Parsed",
    "Quantity",
    "Registry",
    "Schema",
    "Section",
    "card_dir",
    "card_field",
    "card_header",
    "check_fields",
    "check_kind",
    "declared_sections",
    "fields_of",
    "find_card",
    "list_cards",
    "merged",
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


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: No default: the Python keyword must be given (a card must give the field too).
MISSING: Any = _Missing()


class Registry(dict):
    """Plug-in classes by the name a card chooses them with (``model = "power_law"``).

    A plug-in class has a class attribute ``name`` (or ``key``); ``@REGISTRY.register``
    adds it. The card
    field that chooses one declares the registry as its ``choices``, so a new plug-in is
    accepted by the cards, listed in the card reference and run by the contract tests
    without any other edit.
    """

    def __init__(self, what: str, *, key: str = "name") -> None:
        super().__init__()
        self.what = what
        self.key = key

    def register(self, cls: type) -> type:
        """Class decorator: add ``cls`` under its ``name`` (or the registry's ``key``)."""
        name = getattr(cls, self.key, None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.what} needs a class attribute {self.key!r} (the card's "
                              f"string for it); {cls.__name__} has {name!r}")
        if name in self and self[name] is not cls:
            raise ConfigError(f"{self.what} {name!r} is already registered "
                              f"({self[name].__module__}.{self[name].__qualname__})")
        self[name] = cls
        return cls

    def lookup(self, name: Any, owner: str) -> type:
        """The class registered as ``name``; a :class:`ConfigError` naming ``owner`` and
        the known names otherwise."""
        if not isinstance(name, str) or name not in self:
            raise ConfigError(f"{owner}: {self.what} {name!r} is unknown; known: {sorted(self)}")
        return self[name]


@dataclass(frozen=True, kw_only=True)
class Field:
    """The one declaration of a card field: it parses cards and checks Python keywords.

    Where it stands: ``[section] key = ...`` in a card; ``attr`` is the attribute and
    keyword argument it sets (the key, or the key with its unit where a bare float would be
    ambiguous: card ``read_voltage`` is ``read_voltage_v``).

    What it holds (one of):

    - a number (the default): ``{value, unit, source}`` in a card, converted to SI; in
      Python an SI number. ``dimension`` (a key of the unit table), the allowed SI range
      ``lo``/``hi`` (``lo_open``/``hi_open``: excluded), ``integer``; ``none``: the card
      string ``"none"`` and Python ``None`` are accepted too (e.g. an unquantized ADC).
    - ``choices``: one of these strings (a mode); a :class:`Registry` makes it a plug-in
      choice (a drift law, an ADC model), open to new entries.
    - ``boolean``: true or false. ``text``: a string. ``texts``: a list of strings.
    - ``parser``: a table of its own form (a law of a device statistic):
      ``parser(raw, place, context)`` returns (value, source); ``python_type`` is what a
      Python keyword must be an instance of; ``form`` says in words what the card holds.

    ``default``: the value when the keyword (or an optional card field) is left out
    (:data:`MISSING`: none). ``required``: a card must give it. ``when = (key, values)``:
    the field belongs to its section only while the choice field ``key`` of that section is
    one of ``values`` (or ``values(choice)`` is true, for choices open to plug-ins).
    ``example``: a value for a card written from the reference (else the default, else a
    value in range). ``help``: what it is, with its source where it has one.
    """

    section: str = ""
    key: str = ""
    attr: str = ""
    dimension: str = "dimensionless"
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    none: bool = False
    choices: tuple[str, ...] | Registry | None = None
    boolean: bool = False
    text: bool = False
    texts: bool = False
    parser: Callable[[Any, str, Mapping[str, Any]], tuple[Any, str | None]] | None = None
    python_type: type | tuple[type, ...] | None = None
    form: str = ""
    default: Any = MISSING
    required: bool = True
    when: tuple[str, tuple[str, ...] | Callable[[Any], bool]] | None = None
    example: Any = MISSING
    help: str = ""

    # -- what it is ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.attr or self.key

    @property
    def kind(self) -> str:
        """"number", "choice", "bool", "text", "texts" or "custom"."""
        if self.choices is not None:
            return "choice"
        if self.boolean:
            return "bool"
        if self.text:
            return "text"
        if self.texts:
            return "texts"
        if self.parser is not None or self.python_type is not None:
            return "custom"
        return "number"

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(self.choices or ())

    @property
    def unit(self) -> str:
        """The SI unit of a number ("" for other kinds)."""
        return si_unit(self.dimension) if self.kind == "number" else ""

    def range_text(self) -> str:
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right} {si_unit(self.dimension)}"

    def allowed(self, *, python: bool = False) -> str:
        """The allowed values in words (Python keywords: ``python=True``)."""
        kind = self.kind
        if kind == "choice":
            return f"one of {list(self.options)}"
        if kind == "bool":
            return "True or False" if python else "true or false"
        if kind == "text":
            return "a string"
        if kind == "texts":
            return "a list of strings"
        if kind == "custom":
            return self.form or "a table"
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        unit = "" if self.dimension == "dimensionless" else f" {si_unit(self.dimension)}"
        text = f"{left}{self.lo:g}, {self.hi:g}{right}{unit}"
        if self.integer:
            text = f"an integer in {text}"
        if self.none:
            text += " or None" if python else ' or "none"'
        return text

    def applies(self, chosen: Mapping[str, Any]) -> bool:
        """Whether the field belongs to its section, given the section's choices by key."""
        if self.when is None:
            return True
        key, values = self.when
        value = chosen.get(key)
        return bool(values(value)) if callable(values) else value in values

    def in_range(self, value: float) -> bool:
        below = value < self.lo or (self.lo_open and value == self.lo)
        above = value > self.hi or (self.hi_open and value == self.hi)
        return not (below or above)

    # -- a card ---------------------------------------------------------------------------------
    def check(self, value: float, where: str) -> float:
        """A card number in SI units: finite, in range, an integer where declared."""
        if not math.isfinite(value):
            raise CardError(f"{where} = {value!r} is not a finite number")
        if not self.in_range(value):
            raise CardError(f"{where} = {value:g} is out of range; allowed {self.range_text()}")
        if self.integer and value != int(value):
            raise CardError(f"{where} = {value!r} must be an integer")
        return value

    def parse(self, raw: Any, place: str, context: Mapping[str, Any] | None = None
              ) -> tuple[Any, str | None]:
        """The value of this field in a card (``place`` names card and field in messages):
        (value in SI units, its source or None); raises :class:`CardError`."""
        kind = self.kind
        if kind == "bool":
            if not isinstance(raw, bool):
                raise CardError(f"{place} = {raw!r} must be true or false")
            return raw, None
        if kind == "choice":
            if not isinstance(raw, str) or raw not in self.options:
                raise CardError(f"{place} = {raw!r} is unknown; allowed: {list(self.options)}")
            return raw, None
        if kind == "text":
            if not isinstance(raw, str):
                raise CardError(f"{place} must be a string, got {raw!r}")
            return raw, None
        if kind == "texts":
            if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
                raise CardError(f"{place} must be a list of strings")
            return tuple(raw), None
        if kind == "custom":
            return self.parser(raw, place, context or {})
        if self.none and raw == "none":
            return None, None
        q = take_quantity(raw, self, place)
        return (int(q.value) if self.integer else q.value), q.source

    # -- Python ---------------------------------------------------------------------------------
    def validate(self, value: Any, owner: str) -> None:
        """Check a Python value of this field; raises :class:`ConfigError` naming ``owner``
        (e.g. ``"tile 'hermes-core'"``), the keyword, the value and what is allowed."""
        name = self.name
        kind = self.kind
        if value is None and self.none:
            return
        if kind == "number":
            what = "an integer" if self.integer else "a finite number"
            if self.none:
                what += " or None"
            if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
                raise ConfigError(f"{owner}: {name} = {value!r} must be {what}")
            if self.integer and not isinstance(value, numbers.Integral):
                raise ConfigError(f"{owner}: {name} = {value!r} must be {what}, not "
                                  f"{type(value).__name__}")
            if not math.isfinite(value):
                raise ConfigError(f"{owner}: {name} = {value!r} must be {what}")
            if not self.in_range(float(value)):
                raise ConfigError(f"{owner}: {name} = {value!r} is out of range; allowed "
                                  f"{self.allowed(python=True)}")
        elif kind == "choice":
            if not isinstance(value, str) or value not in self.options:
                raise ConfigError(f"{owner}: {name} = {value!r} is out of range; allowed "
                                  f"{self.allowed(python=True)}")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{owner}: {name} = {value!r} must be True or False")
        elif kind == "text":
            if not isinstance(value, str):
                raise ConfigError(f"{owner}: {name} = {value!r} must be a string")
        elif kind == "texts":
            if not isinstance(value, tuple | list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{owner}: {name} = {value!r} must be a list of strings")
        elif self.python_type is not None and not isinstance(value, self.python_type):
            types = self.python_type if isinstance(self.python_type, tuple) \
                else (self.python_type,)
            raise ConfigError(f"{owner}: {name} = {value!r} must be a "
                              f"{' or '.join(t.__name__ for t in types)}")

    def example_value(self) -> Any:
        """A value for a card written from this declaration (SI units for numbers)."""
        if self.example is not MISSING:
            return self.example
        if self.default is not MISSING and self.default is not None and (
                self.kind != "number" or self.in_range(float(self.default))):
            return self.default
        kind = self.kind
        if kind == "choice":
            return self.options[0]
        if kind == "bool":
            return False
        if kind == "text":
            return ""
        if kind == "texts":
            return []
        lo, hi = self.lo, self.hi
        if math.isfinite(lo) and not self.lo_open:
            v = lo
        elif math.isfinite(lo) and math.isfinite(hi):
            v = (lo + hi) / 2
        elif math.isfinite(lo):
            v = lo + 1.0
        else:
            v = 0.0 if self.in_range(0.0) else (hi - 1.0 if math.isfinite(hi) else 1.0)
        return math.ceil(v) if self.integer else v


def card_field(section: str, key: str = "", *, default: Any = MISSING, **spec: Any) -> Any:
    """A dataclass field declared as a card field (see :class:`Field` for ``spec``)::

        rows: int = card_field("array", integer=True, lo=1, hi=65536, default=256,
                               help="crossbar rows")

    The declaration travels in the field's metadata; :func:`fields_of` collects it,
    :func:`check_fields` checks an instance with it, :class:`Section` parses cards with it.
    """
    declared = Field(section=section, key=key, default=default, **spec)
    meta = {"card": declared}
    if default is MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@functools.cache
def fields_of(cls: type) -> tuple[Field, ...]:
    """The card fields a dataclass declares (with :func:`card_field`), in order."""
    out = []
    for f in dataclasses.fields(cls):
        declared = f.metadata.get("card")
        if declared is not None:
            out.append(replace(declared, attr=f.name, key=declared.key or f.name))
    return tuple(out)


def check_fields(obj: Any, owner: str) -> None:
    """Check every declared field of the dataclass instance ``obj``
    (:class:`ConfigError` naming ``owner``); a field that does not apply (``when``) to the
    object's choices is not checked."""
    declared = fields_of(type(obj))
    for f in declared:
        if f.when is not None:
            chooser = next((c for c in declared if c.section == f.section
                            and c.key == f.when[0]), None)
            if chooser is not None and not f.applies({chooser.key: getattr(obj, chooser.attr)}):
                continue
        f.validate(getattr(obj, f.attr), owner)


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


@dataclass
class Parsed:
    """What a card section gave: ``values`` (by attribute, SI units), ``plugin`` (the
    fields of the plug-in its choice field names), ``sources`` (by attribute)."""

    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    plugin: dict[str, Any] = dataclasses.field(default_factory=dict)
    sources: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One ``[section]`` of a card: its declared fields.

    ``plugin``: the key of a choice field whose value names a plug-in class (its
    ``choices`` is a :class:`Registry`); the fields that class declares for this section
    join it. ``each``: the section is a table of named sub-tables, each with these fields
    (``[components.<name>]``). ``required``: a card must have it. ``noun``: what its
    entries are called in messages.
    """

    name: str
    fields: tuple[Field, ...]
    required: bool = True
    plugin: str = ""
    each: bool = False
    noun: str = "fields"
    help: str = ""

    def field(self, key: str) -> Field:
        return next(f for f in self.fields if f.key == key)

    def plugin_fields(self, name: str) -> tuple[Field, ...]:
        """The fields of the plug-in registered as ``name`` (none for an unknown name)."""
        registry = self.field(self.plugin).choices
        cls = registry.get(name) if isinstance(registry, Registry) else None
        if cls is None or not dataclasses.is_dataclass(cls):
            return ()
        return tuple(f for f in fields_of(cls) if f.section == self.name)

    def parse(self, table: Any, where: str, context: Mapping[str, Any] | None = None,
              *, label: str = "") -> Parsed:
        """Validate one table of a card against the declaration (:class:`CardError` naming
        ``where``, the section and the field); ``label`` names it in messages (default the
        section's name)."""
        label = label or self.name
        if not isinstance(table, Mapping):
            raise CardError(f"{where}: [{label}] must be a table")
        chosen: dict[str, Any] = {}
        for f in self.fields:
            if f.kind == "choice":
                if f.key in table:
                    chosen[f.key] = f.parse(table[f.key], f"{where}: {label}.{f.key}")[0]
                elif f.default is not MISSING:
                    chosen[f.key] = f.default
        own = [f for f in self.fields if f.applies(chosen)]
        extra = list(self.plugin_fields(chosen[self.plugin])) \
            if self.plugin and self.plugin in chosen else []
        active = {f.key: f for f in own + extra}
        unknown = set(table) - set(active)
        for f in self.fields:
            if f.key in unknown and not f.applies(chosen):
                key = f.when[0]
                raise CardError(f"{where}: {label}.{f.key} does not apply with {key} = "
                                f"{chosen.get(key)!r}")
        if unknown:
            why = ""
            if self.plugin and self.plugin in chosen:
                why = f" with {self.plugin} = {chosen[self.plugin]!r}"
            raise CardError(f"{where}: [{label}] has unknown {self.noun} {sorted(unknown)}{why}; "
                            f"allowed: {sorted(active)}")
        missing = [f for f in active.values() if f.required and f.key not in table]
        if missing:
            what = "; ".join(f"{f.key} in {f.range_text()}" if f.kind == "number"
                             else f"{f.key}: {f.allowed()}" for f in missing)
            raise CardError(f"{where}: [{label}] is missing {sorted(f.key for f in missing)} "
                            f"({what})")
        out = Parsed()
        for key, raw in table.items():
            f = active[key]
            value, source = f.parse(raw, f"{where}: {label}.{key}", context)
            (out.plugin if f in extra else out.values)[f.name] = value
            if isinstance(source, Mapping):  # a table of several quantities (one each)
                out.sources.update(source)
            elif source is not None:
                out.sources[f.name] = source
        return out

    def every_field(self) -> tuple[Field, ...]:
        """Its own fields and those of every registered plug-in."""
        out = list(self.fields)
        if self.plugin:
            for name in self.field(self.plugin).options:
                out += self.plugin_fields(name)
        return tuple(out)


@dataclass(frozen=True)
class Schema:
    """The declaration of one kind of card: its sections, in order.

    ``kind`` names it (``memsim.schema``: "tile", "chip", ...); ``folder``: where its
    cards live ("devices" or "crossbars"); ``renamed``: fields of an older card format,
    (section, key) -> what to write now (a card that uses one is refused with that hint).
    """

    kind: str
    title: str
    folder: str
    sections: tuple[Section, ...]
    help: str = ""
    renamed: Mapping[tuple[str, str], str] = dataclasses.field(default_factory=dict)

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def parse(self, data: Mapping[str, Any], where: str,
              context: Mapping[str, Any] | Callable[[dict[str, Parsed]], Mapping[str, Any]]
              | None = None, *, skip: tuple[str, ...] = ()) -> dict[str, Parsed]:
        """Every section of a card, in order (``skip``: sections the caller parses itself);
        unknown and missing sections raise :class:`CardError`. ``context`` (passed to the
        fields' parsers) may be a function of the sections parsed so far (e.g. the
        conductance range a law of a later section is checked over)."""
        for (section, key), now in self.renamed.items():
            table = data.get(section)
            if isinstance(table, Mapping) and key in table:
                raise CardError(f"{where}: {section}.{key} is no longer a field of a "
                                f"{self.kind} card; use {now}")
        names = [s.name for s in self.sections]
        unknown = set(data) - set(names)
        if unknown:
            raise CardError(f"{where}: unknown sections {sorted(unknown)}; allowed: "
                            f"{sorted(names)}")
        out: dict[str, Parsed] = {}
        for s in self.sections:
            if s.name in skip:
                continue
            if s.name not in data:
                if s.required:
                    raise CardError(f"{where}: missing section [{s.name}]")
                continue
            ctx = context(out) if callable(context) else context
            if s.each:
                table = data[s.name]
                if not isinstance(table, Mapping) or not table:
                    raise CardError(f"{where}: [{s.name}] must be a table of named tables, "
                                    f"e.g. [{s.name}.<name>]")
                for name, sub in table.items():
                    out[f"{s.name}.{name}"] = s.parse(sub, where, ctx, label=f"{s.name}.{name}")
            else:
                out[s.name] = s.parse(data[s.name], where, ctx)
        return out


def card_header(kind: str, what: str, *extra: Field, key: str = "kind") -> Section:
    """The ``[card]`` section of a card kind: ``key`` (``kind``, or ``family`` for device
    cards) = ``kind``, an optional one-line description of the ``what``, then ``extra``."""
    return Section("card", (
        Field(section="card", key=key, choices=(kind,), help=f'"{kind}"'),
        Field(section="card", key="description", text=True, default="", required=False,
              help=f"one line on what the {what} is"),
        *extra,
    ), help="what the card is")


#: The ``references`` field of a device card's ``[card]`` section.
REFERENCES_FIELD = Field(section="card", key="references", texts=True, default=(),
                         required=False, help="the papers the numbers come from")


def declared_sections(owner: type, helps: Mapping[str, str], *, required: bool = True,
                      plugins: Mapping[str, str] | None = None) -> tuple[Section, ...]:
    """One section per entry of ``helps`` ({name: help}), in its order, holding the fields
    ``owner`` declares for it; ``plugins``: {section: key of the choice naming its
    plug-in}."""
    declared = fields_of(owner)
    plugins = plugins or {}
    return tuple(Section(name, tuple(f for f in declared if f.section == name),
                         required=required, plugin=plugins.get(name, ""), help=text)
                 for name, text in helps.items())


def merged(parts: Mapping[str, Parsed], *names: str) -> Parsed:
    """The values and sources of several parsed sections together (default: all)."""
    out = Parsed()
    for name in names or parts:
        if name in parts:
            out.values.update(parts[name].values)
            out.plugin.update(parts[name].plugin)
            out.sources.update(parts[name].sources)
    return out


def check_kind(data: Mapping[str, Any], key: str, expected: str, where: str, hint: str = ""
               ) -> None:
    """The card's ``[card] key`` (kind or family) is ``expected``; else :class:`CardError`."""
    card = data.get("card", {})
    got = card.get(key) if isinstance(card, Mapping) else None
    if got != expected:
        raise CardError(f"{where}: card.{key} = {got!r}; a {expected} card needs "
                        f"'{expected}'{hint}")
