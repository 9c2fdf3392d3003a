"""Checks of values where they enter memsim: arrays of real numbers, integer settings.

Each raises memsim's own error type with a message that names the value (``what``) and
says what is expected, instead of numpy's message (or a silent ComplexWarning that drops
an imaginary part).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from memsim.errors import ConfigError, InputError

__all__ = ["check_int", "real_array"]

_KINDS = {"c": "complex numbers", "O": "Python objects", "U": "text", "S": "bytes",
          "V": "records", "M": "dates", "m": "time spans"}


def real_array(value: Any, what: str, *, dtype: Any = np.float64) -> np.ndarray:
    """``value`` as an array of real numbers (float64 by default).

    Refuses, with :class:`memsim.InputError` naming ``what``: complex values (their
    imaginary part would be dropped), objects, text, dates and ragged nested lists.
    Booleans and integers are converted. NaN and infinity are left to the caller.
    """
    if isinstance(value, np.ndarray):
        a = value
    else:
        try:
            a = np.asarray(value)
        except (ValueError, TypeError) as exc:  # ragged lists, unconvertible objects
            raise InputError(f"{what} is not an array of numbers: {exc}") from None
    kind = a.dtype.kind
    if kind == "c":
        raise InputError(f"{what} holds complex numbers ({a.dtype}); memsim computes with "
                         "real numbers: pass the real part (x.real) or map the real and "
                         "imaginary parts as separate real inputs")
    if kind not in "biuf":
        raise InputError(f"{what} holds {_KINDS.get(kind, str(a.dtype))} (dtype {a.dtype}); "
                         "expected an array of real numbers (int or float)")
    try:
        return a.astype(dtype, copy=False)
    except (TypeError, ValueError) as exc:  # pragma: no cover - kinds above convert
        raise InputError(f"{what} cannot be converted to {np.dtype(dtype)}: {exc}") from None


def check_int(value: Any, what: str, *, lo: int | None = None) -> int:
    """An integer setting (not a bool, not a float such as 2.0 or 2.5), at least ``lo``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{what} = {value!r} must be an integer"
                          + (f" >= {lo}" if lo is not None else ""))
    value = int(value)
    if lo is not None and value < lo:
        raise ConfigError(f"{what} = {value} is out of range; allowed >= {lo}")
    return value
