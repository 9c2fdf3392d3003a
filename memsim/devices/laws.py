"""Parametric laws of a device statistic versus conductance, declared in cards.

Statistical device models (Nandakumar 2019, Le Gallo 2023, the IBM CMO-RRAM fits) give
each statistic (programming sigma, drift-exponent mean and spread, 1/f noise amplitude) as
a short closed-form expression of the normalised target conductance ĝ = G/g_max or of the
conductance in µS. A card names the form and its coefficients; this module evaluates it.

Forms (``x`` is the law's variable):

- ``poly``:       c0 + c1 x + c2 x² + ...
- ``log_clip``:   clip(a ln x + b, lo, hi)
- ``log10``:      a log10(x) + b
- ``power_clip``: min(a / max(x^p, floor), cap)
- ``piecewise``:  ``below`` law for x < threshold, ``above`` law otherwise
- ``constant``:   value
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from memsim.cards import CardError, card_field, si_unit, to_si

__all__ = ["Law", "LawSpec", "law_field", "parse_law"]

VARIABLES = ("g_norm", "g_uS")


class Law(Protocol):
    def __call__(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Poly:
    coefficients: tuple[float, ...]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # Horner's rule; coefficients are in ascending powers.
        out = np.full_like(np.asarray(x, dtype=np.float64), self.coefficients[-1])
        for c in self.coefficients[-2::-1]:
            out = out * x + c
        return out


@dataclass(frozen=True)
class LogClip:
    a: float
    b: float
    lo: float
    hi: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            lnx = np.log(np.maximum(x, 1e-300))
        return np.clip(self.a * lnx + self.b, self.lo, self.hi)


@dataclass(frozen=True)
class Log10:
    a: float
    b: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.a * np.log10(np.maximum(x, 1e-300)) + self.b


@dataclass(frozen=True)
class PowerClip:
    a: float
    p: float
    floor: float
    cap: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.minimum(self.a / np.maximum(np.power(np.maximum(x, 0.0), self.p), self.floor),
                          self.cap)


@dataclass(frozen=True)
class Piecewise:
    threshold: float
    below: Law
    above: Law

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.where(x < self.threshold, self.below(x), self.above(x))


@dataclass(frozen=True)
class Constant:
    value: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.full_like(np.asarray(x, dtype=np.float64), self.value)


@dataclass(frozen=True)
class LawSpec:
    """A law with its variable, the SI scale of its output and its source."""

    law: Law
    variable: str
    scale: float  # multiply the law's output by this to get SI units
    source: str
    unit: str

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.law(x) * self.scale


_FORM_KEYS = {
    "poly": {"coefficients"},
    "log_clip": {"a", "b", "lo", "hi"},
    "log10": {"a", "b"},
    "power_clip": {"a", "p", "floor", "cap"},
    "piecewise": {"threshold", "below", "above"},
    "constant": {"value"},
}


def _number(table: Mapping[str, Any], key: str, where: str) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CardError(f"{where}.{key} = {value!r} is not a finite number")
    return float(value)


def _parse_form(table: Mapping[str, Any], where: str) -> Law:
    if not isinstance(table, Mapping) or "law" not in table:
        raise CardError(f"{where} must be a table with a 'law' key, one of {sorted(_FORM_KEYS)}")
    form = table["law"]
    if not isinstance(form, str) or form not in _FORM_KEYS:
        raise CardError(f"{where}.law = {form!r} is unknown; allowed: {sorted(_FORM_KEYS)}")
    given = set(table) - {"law"}
    missing = _FORM_KEYS[form] - given
    if missing:
        raise CardError(f"{where} (law {form!r}) is missing {sorted(missing)}")
    unknown = given - _FORM_KEYS[form]
    if unknown:
        raise CardError(
            f"{where} (law {form!r}) has unknown keys {sorted(unknown)}; "
            f"allowed: {sorted(_FORM_KEYS[form])}"
        )
    if form == "poly":
        coeffs = table["coefficients"]
        if not isinstance(coeffs, list) or not coeffs:
            raise CardError(f"{where}.coefficients must be a non-empty list of numbers")
        return Poly(tuple(_number({"c": c}, "c", f"{where}.coefficients") for c in coeffs))
    if form == "log_clip":
        lo, hi = _number(table, "lo", where), _number(table, "hi", where)
        if lo > hi:
            raise CardError(f"{where}: lo = {lo:g} is above hi = {hi:g}")
        return LogClip(_number(table, "a", where), _number(table, "b", where), lo, hi)
    if form == "log10":
        return Log10(_number(table, "a", where), _number(table, "b", where))
    if form == "power_clip":
        floor = _number(table, "floor", where)
        if floor <= 0:
            raise CardError(f"{where}.floor = {floor:g} is out of range; allowed (0, inf)")
        return PowerClip(_number(table, "a", where), _number(table, "p", where), floor,
                         _number(table, "cap", where))
    if form == "piecewise":
        return Piecewise(
            _number(table, "threshold", where),
            _parse_form(table["below"], f"{where}.below"),
            _parse_form(table["above"], f"{where}.above"),
        )
    return Constant(_number(table, "value", where))


def parse_law(
    table: Mapping[str, Any],
    where: str,
    *,
    dimension: str,
    variable_range: tuple[float, float],
    nonnegative: bool = True,
    variables: tuple[str, ...] = VARIABLES,
) -> LawSpec:
    """Parse a law table (``law``, its coefficients, ``variable``, ``unit``, ``source``).

    The law is evaluated on a fine grid over ``variable_range``; a law that would give a
    negative spread or a non-finite value there is rejected with the place it fails.
    """
    if not isinstance(table, Mapping):
        raise CardError(f"{where} must be a table describing a law")
    for key in ("unit", "source", "variable"):
        if key not in table:
            raise CardError(f"{where} is missing '{key}'")
    source = table["source"]
    if not isinstance(source, str) or not source.strip():
        raise CardError(f"{where}.source must be a non-empty string naming the source")
    variable = table["variable"]
    if not isinstance(variable, str) or variable not in variables:
        raise CardError(f"{where}.variable = {variable!r} is unknown; allowed: {list(variables)}")
    unit = str(table["unit"])
    scale = to_si(1.0, unit, dimension, where=f"{where}: ")
    form_table = {k: v for k, v in table.items() if k not in ("unit", "source", "variable")}
    law = _parse_form(form_table, where)
    lo, hi = variable_range
    grid = np.concatenate([np.geomspace(max(lo, 1e-6), hi, 2001), np.linspace(lo, hi, 2001)])
    values = law(grid)
    if not np.all(np.isfinite(values)):
        raise CardError(f"{where} gives non-finite values for {variable} in [{lo:g}, {hi:g}]")
    if nonnegative and np.any(values < 0):
        bad = grid[np.argmax(values < 0)]
        raise CardError(
            f"{where} is negative at {variable} = {bad:.4g} "
            f"(a spread must be >= 0 over [{lo:g}, {hi:g}])"
        )
    return LawSpec(law=law, variable=variable, scale=scale, source=source, unit=unit)


def law_field(section: str, key: str = "", *, dimension: str, help: str,
              nonnegative: bool = True, **spec: Any) -> Any:
    """A card field holding a law (:func:`memsim.cards.card_field`): a table with ``law``
    (one of the forms above) and its coefficients, ``variable`` ("g_norm" = G/g_max or
    "g_uS" = G in µS), ``unit`` (of the law's output, a unit of ``dimension``) and
    ``source``. The card's conductance range (``context`` keys ``g_min_S``, ``g_max_S``)
    bounds the check that the law is finite (and >= 0 when ``nonnegative``)."""

    def parse(raw: Any, place: str, context: Mapping[str, Any]) -> tuple[LawSpec, str]:
        g_min, g_max = context["g_min_S"], context["g_max_S"]
        variable = raw.get("variable") if isinstance(raw, Mapping) else None
        span = (g_min * 1e6, g_max * 1e6) if variable == "g_uS" \
            else (max(g_min / g_max, 1e-4), 1.0)
        law = parse_law(raw, place, dimension=dimension, variable_range=span,
                        nonnegative=nonnegative)
        return law, law.source

    unit = "uS" if dimension == "conductance" else si_unit(dimension)
    example = {"law": "constant", "variable": "g_norm", "unit": unit, "value": 0.0}
    return card_field(section, key, parser=parse, python_type=LawSpec, example=example,
                      form=f"a law table in {unit} (law, variable, unit, source and the "
                           "law's coefficients; see memsim.devices.laws)",
                      help=help, **spec)
