"""memsim's own exception types: every error the library or the CLI reports is one of these.

All derive from :class:`MemsimError`; each also derives from the built-in type a caller would
expect (``ValueError`` for bad values, ``ArithmeticError`` for numbers that cannot be
represented, ``OSError`` for files), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "CalibrationWarning",
    "CardError",
    "ClusterError",
    "ConfigError",
    "InputError",
    "MemsimError",
    "NumericalError",
    "StateError",
    "StoreError",
    "StudyError",
]


class MemsimError(Exception):
    """Base of every error memsim raises on purpose; the message names the problem."""


class CardError(MemsimError, ValueError):
    """A card that cannot be used; the message names the card and the field."""


class ClusterError(MemsimError, ConnectionError):
    """A Dask cluster that cannot be reached or started; the message names the address."""


class ConfigError(MemsimError, ValueError):
    """A parameter given in Python (a keyword argument, an override) that cannot be used."""


class InputError(MemsimError, ValueError):
    """Data passed to memsim (weights, inputs, targets) that it cannot use as given."""


class NumericalError(MemsimError, ArithmeticError):
    """A value that is not a finite number appeared inside a computation; the message names
    the layer or tile and what to change."""


class StateError(MemsimError, RuntimeError):
    """A call made in the wrong order (e.g. reading a tile that was never programmed)."""


class StoreError(MemsimError, OSError):
    """A results store that cannot be opened, read or written; the message names the file."""


class StudyError(MemsimError, ValueError):
    """A study file or study value that cannot be used."""


class CalibrationWarning(UserWarning):
    """A converter range was chosen from data the user did not choose (e.g. the first batch
    a layer saw): results depend on that batch. Calibrate on data of your choice instead."""
