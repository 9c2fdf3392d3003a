"""Declared parameters of study evaluators: each value typed, checked and compared once.

An evaluator declares the parameters it understands (:class:`Param`: booleans, integers
and reals with ranges and units, choices, card names) and the metrics it returns. The
declaration checks every value of a study file when the study is loaded, before any point
runs, and names the file, the table and the key of a bad value::

    PARAMS = {
        "time_s": Param.real(lo=0.0, hi=1e10, unit="s", default=1.0,
                             help="time after programming of the measurement"),
        "measure_accuracy": Param.boolean(default=True),
        "test_samples": Param.integer(lo=1, help="test images used"),
        "device": Param.card("devices", required=True),
    }

Values are never converted: ``measure_accuracy = "false"`` is refused (not read as true),
``test_samples = -5`` is refused (not read as "all but 5"). Two grid values that are the
same number (``1`` and ``1.0``) are duplicates (:func:`normal_form`).
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from memsim.errors import StudyError

__all__ = ["Param", "normal_form", "suggest"]


def normal_form(value: Any) -> Any:
    """A value with every number as a float (booleans and strings kept): equal numbers
    written differently (``1``, ``1.0``, ``1e0``) get one normal form."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return [normal_form(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): normal_form(v) for k, v in value.items()}
    return value


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a close known name, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _card_names(kind: str) -> list[str]:
    """Shipped card names of a study card kind."""
    if kind == "workload":
        from memsim.workloads import workload_names

        return workload_names()
    if kind == "devices":
        from memsim.cards import list_cards

        return list_cards("devices")
    from memsim.chip import list_chips

    return list_chips(kind)


@functools.lru_cache(maxsize=256)
def _card_problem(name: str, kind: str) -> str | None:
    """Why ``name`` is not a card of ``kind`` (None when it is); cached per process."""
    if kind == "workload":
        known = _card_names(kind)
        if name not in known:
            return f"is not a known workload{suggest(name, known)}; known: {', '.join(known)}"
        return None
    from memsim.cards import find_card, read_card

    folder = "devices" if kind == "devices" else "crossbars"
    try:
        path = find_card(name, folder)
        if kind != "devices":
            _, data = read_card(path, folder)
            card = data.get("card")
            got = card.get("kind") if isinstance(card, Mapping) else None
            if got != kind:
                return (f"is a {got or 'unknown'} card, not a {kind} card; {kind} cards: "
                        f"{', '.join(_card_names(kind))}")
    except ValueError as exc:
        return f"{exc}{suggest(name, _card_names(kind))}"
    return None


def _check_card(name: str, kind: str, where: str) -> None:
    """A card name (or path) of the given kind exists and is of that kind."""
    problem = _card_problem(name, kind)
    if problem is not None:
        sep = " " if problem.startswith("is ") else ": "
        raise StudyError(f"{where} = {name!r}{sep}{problem}")


@dataclass(frozen=True, kw_only=True)
class Param:
    """One declared parameter of an evaluator.

    ``kind``: "bool", "int", "real", "choice", "card" (a card name of ``card_kind``:
    "devices", "tile", "chip", "digital", "workload"), "cards" (a list of such names),
    "field" (a field of the ``card_kind`` card, checked by that card's own declaration).
    ``lo``/``hi``: inclusive range of numbers (``None``: unbounded); ``unit`` is shown in
    messages; ``none``: the string "none" is also accepted (e.g. an unquantized ADC);
    ``required``: the study must set it (top level, [fixed] or [grid]).
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    unit: str = ""
    choices: tuple[str, ...] = ()
    card_kind: str = ""
    none: bool = False
    required: bool = False
    default: Any = None
    help: str = ""
    extra: Callable[[Any, str], None] | None = field(default=None, compare=False)

    # --- constructors --------------------------------------------------------------------

    @classmethod
    def boolean(cls, *, default: bool | None = None, help: str = "") -> Param:
        return cls(kind="bool", default=default, help=help)

    @classmethod
    def integer(cls, *, lo: int | None = None, hi: int | None = None, none: bool = False,
                default: int | None = None, help: str = "") -> Param:
        return cls(kind="int", lo=lo, hi=hi, none=none, default=default, help=help)

    @classmethod
    def real(cls, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
             unit: str = "", default: float | None = None, help: str = "") -> Param:
        return cls(kind="real", lo=lo, hi=hi, lo_open=lo_open, unit=unit, default=default,
                   help=help)

    @classmethod
    def choice(cls, *choices: str, default: str | None = None, help: str = "") -> Param:
        return cls(kind="choice", choices=tuple(choices), default=default, help=help)

    @classmethod
    def card(cls, card_kind: str, *, required: bool = False, help: str = "") -> Param:
        return cls(kind="card", card_kind=card_kind, required=required, help=help)

    @classmethod
    def cards(cls, card_kind: str, *, help: str = "") -> Param:
        return cls(kind="cards", card_kind=card_kind, help=help)

    @classmethod
    def field(cls, owner: str, *, help: str = "") -> Param:
        """A field of another declaration (a tile or chip card field): its value is checked
        by that declaration, with the study's cards (the evaluator's ``check``)."""
        return cls(kind="field", card_kind=owner, help=help)

    # --- checking ------------------------------------------------------------------------

    def describe(self) -> str:
        """The allowed values, in words."""
        if self.kind == "bool":
            return "true or false"
        if self.kind in ("int", "real"):
            what = "an integer" if self.kind == "int" else "a number"
            lo = "-inf" if self.lo is None else f"{self.lo:g}"
            hi = "inf" if self.hi is None else f"{self.hi:g}"
            left = "(" if self.lo_open or self.lo is None else "["
            right = ")" if self.hi is None else "]"
            unit = f" {self.unit}" if self.unit else ""
            text = f"{what} in {left}{lo}, {hi}{right}{unit}"
            return text + (' or "none"' if self.none else "")
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "card":
            return f"a {self.card_kind} card name"
        if self.kind == "cards":
            return f"a list of {self.card_kind} card names"
        if self.kind == "field":
            return f"a value of the {self.card_kind} card field of that name"
        return "any value"

    def check(self, value: Any, where: str) -> None:
        """Raise :class:`StudyError` naming ``where`` unless ``value`` is allowed."""
        def bad(reason: str = "") -> StudyError:
            got = f" ({reason})" if reason else ""
            return StudyError(f"{where} = {value!r}{got} is not allowed; expected "
                              f"{self.describe()}")

        if self.kind == "bool":
            if not isinstance(value, bool):
                hint = " (write true or false without quotes)" if isinstance(value, str) \
                    else ""
                raise StudyError(f"{where} = {value!r} is not a boolean; expected true or "
                                 f"false{hint}")
        elif self.kind in ("int", "real"):
            if self.none and value == "none":
                return
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise bad(f"a {type(value).__name__}")
            if self.kind == "int" and (isinstance(value, float) and not value.is_integer()):
                raise bad("not an integer")
            if self.kind == "int" and isinstance(value, float):
                raise bad("write integers without a decimal point")
            if not math.isfinite(value):
                raise bad("not a finite number")
            if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
                raise bad("out of range")
            if self.hi is not None and value > self.hi:
                raise bad("out of range")
        elif self.kind == "choice":
            if value not in self.choices:
                raise StudyError(f"{where} = {value!r} is unknown"
                                 f"{suggest(str(value), self.choices)}; allowed: "
                                 f"{', '.join(repr(c) for c in self.choices)}")
        elif self.kind == "card":
            if not isinstance(value, str) or not value:
                raise bad("not a card name")
            _check_card(value, self.card_kind, where)
        elif self.kind == "cards":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise bad("not a list of card names")
            if len(set(value)) != len(value):
                raise bad("a name is listed twice")
            for k, v in enumerate(value):
                _check_card(v, self.card_kind, f"{where}[{k}]")
        if self.extra is not None:
            self.extra(value, where)
