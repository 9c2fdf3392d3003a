"""ADC models: how a converter turns a column's analog value into a code, chosen by name.

A tile card chooses its ADC model with ``[adc] mode = "..."`` (``TileConfig.adc_mode``).
Every model shares the analog front end of the tile engine (:mod:`memsim.crossbar.engine`):
the column value v = y·(1 + γ_j) + δ_j + noise, with the per-column gain and offset mismatch
and the converter noise of the card's ``gain_sigma``, ``offset_fs``, ``noise_fs`` and
``noise_lsb``. The model decides only the code of v, in LSB units u = v / LSB::

    code = model.code(u, bits, state)      (an integer per value; any integer)
    q    = clip(code, −2^(bits−1), 2^(bits−1) − 1) · LSB

The engine clips and counts the saturated conversions (codes beyond the range), the same for
every model, and an unquantized ADC (``adc_bits = None``) passes v through whatever the
model. A model may draw, at programming, a state per converter (one converter per column of
each row tile: its own mismatch, e.g. a capacitor array's weights) with :meth:`ADCModel.draw`.

The built-in models:

- ``round``: the nearest code, code = round(u).
- ``floor``: the code of a counting converter (HERMES's current-controlled oscillators count
  whole periods of the integrated charge; Khaddam-Aljameh et al., IEEE JSSC 57, 1027, 2022):
  code = floor(u).
- ``sar`` (:mod:`memsim.crossbar.adc_sar`): a successive-approximation converter whose
  capacitor array has mismatch: differential non-linearity.

Adding a model is one class in one file (``memsim/crossbar/adc_<name>.py``, imported with
this module, or any module of your own imported before the card is loaded), registered with
``@ADC_MODELS.register``, plus ``mode = "<name>"`` (and its own fields) in the ``[adc]``
section of a tile card. Its own card fields are declared with
:func:`memsim.cards.card_field` in section "adc"; ``TileConfig.adc_options`` holds their
values. Every registered model must pass the contract test in ``tests/test_plugins.py``
(integer codes, monotonic, the ideal limit, saturation counted, unquantized = identity).

The built-in ``round`` and ``floor`` run in the fused numba kernel of the engine on CPU
(:func:`memsim.crossbar._kernels.adc_stage`, ``fused`` = 0 or 1); any other model runs its
:meth:`ADCModel.code` on torch tensors (the engine's torch back-end, on CPU too).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch

from memsim.cards import Registry, check_fields, fields_of

__all__ = ["ADC_MODELS", "ADCModel", "Floor", "Round", "make_adc"]

#: ADC models by the name a tile card gives in ``[adc] mode``.
ADC_MODELS = Registry("ADC model")


@dataclass(frozen=True)
class ADCModel:
    """Base of ADC models (a frozen dataclass; its fields are its own card fields).

    Class attributes: ``name`` (the card's ``mode``), ``fused`` (0: round, 1: floor — the
    quantizer of the engine's fused numba kernel; None: the model runs on torch tensors),
    ``ideal`` (the name of the model it equals with its own non-idealities switched off).
    """

    name: ClassVar[str] = ""
    fused: ClassVar[int | None] = None
    ideal: ClassVar[str] = ""

    def __post_init__(self) -> None:
        check_fields(self, f"ADC model {self.name!r}")

    def code(self, u: torch.Tensor, bits: int, state: Mapping[str, torch.Tensor]
             ) -> torch.Tensor:
        """Integer codes (as floats of u's dtype) of the values u in LSB units, shape (B, P,
        U, C); ``state``: the arrays of :meth:`draw` of this row tile, each (U, C, ...)."""
        raise NotImplementedError

    def draw(self, shape: tuple[int, ...], bits: int | None, rng: np.random.Generator
             ) -> dict[str, np.ndarray]:
        """Per-converter state drawn when a tile is programmed, each array of shape
        ``shape`` (groups, row tiles, columns) + its own; none by default (draws nothing)."""
        return {}

    def without_nonidealities(self) -> ADCModel:
        """This model with its own non-idealities off (equal to the model ``ideal``)."""
        return replace(self, **{f.attr: 0.0 for f in fields_of(type(self))
                                if f.kind == "number"})

    def describe(self) -> str:
        """One line for reports: the model and its own fields."""
        own = ", ".join(f"{f.key} = {getattr(self, f.attr):g}" for f in fields_of(type(self)))
        return self.name + (f" ({own})" if own else "")


@ADC_MODELS.register
@dataclass(frozen=True)
class Round(ADCModel):
    """The nearest code: code = round(u) (half to even)."""

    name: ClassVar[str] = "round"
    fused: ClassVar[int | None] = 0
    ideal: ClassVar[str] = "round"

    def code(self, u, bits, state):
        return torch.round(u)


@ADC_MODELS.register
@dataclass(frozen=True)
class Floor(ADCModel):
    """A counting converter (CCO): code = floor(u), the whole periods counted."""

    name: ClassVar[str] = "floor"
    fused: ClassVar[int | None] = 1
    ideal: ClassVar[str] = "floor"

    def code(self, u, bits, state):
        return torch.floor(u)


def make_adc(mode: str, options: Mapping[str, Any], owner: str) -> ADCModel:
    """The ADC model ``mode`` with its own fields ``options`` (ConfigError naming
    ``owner`` for an unknown mode or option)."""
    from memsim.errors import ConfigError

    cls = ADC_MODELS.lookup(mode, owner)
    known = {f.attr for f in fields_of(cls)}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"{owner}: ADC model {mode!r} has no options {sorted(unknown)}; "
                          f"known: {sorted(known)}")
    return cls(**dict(options))


def _load_models() -> None:
    """Import the ADC model modules shipped with memsim (``memsim/crossbar/adc_*.py``)."""
    import memsim.crossbar as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("adc_"):
            importlib.import_module(f"memsim.crossbar.{info.name}")


_load_models()
