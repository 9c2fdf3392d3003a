"""One crossbar tile with numpy in and out: DAC → array of differential unit cells → ADC →
local digital unit.

This is the numpy face of the tile engine (:mod:`memsim.crossbar.engine`): a
:class:`Tile` holds one :class:`~memsim.crossbar.engine.TileArray` of a single matrix of at
most rows × cols, and its :meth:`Tile.matvec` wraps numpy arrays as torch tensors without
copying them. The physics (and its documentation) lives in the engine and in
:mod:`memsim.crossbar.cell`; there is no second copy of it here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from memsim.crossbar.config import TileConfig
from memsim.crossbar.engine import Saturation, TileArray
from memsim.devices.base import Device, check_generator, check_time
from memsim.errors import InputError, StateError

__all__ = ["Saturation", "Tile"]


def _as_float_array(x: Any, what: str, where: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "c":
        raise InputError(f"{where}: {what} are complex; the imaginary part would be lost")
    if a.dtype.kind not in "fiub":
        raise InputError(f"{where}: {what} must be numbers, got an array of {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return a


class Tile:
    """One crossbar tile with its converters and digital unit.

    Attributes set by :meth:`program` (scikit-learn style, trailing underscore):
        ``shape_``, ``weights_``, ``weight_scale_``, ``programmed_at_s_``, ``states_``
        (device states per device instance), ``adc_gain_``, ``adc_offset_``, ``affine_``
        (a, b per column), ``reference_readout_``, ``array_`` (the engine's TileArray);
        by :meth:`matvec`: ``saturation_``.
    """

    def __init__(self, config: TileConfig, device: Device, *, exact: bool = False) -> None:
        self.config = config
        self.device = device
        self.exact = exact
        from memsim.crossbar.cell import CellModel

        CellModel(config, device)  # validates the device/cell combination now
        self.saturation_ = Saturation()

    def __repr__(self) -> str:
        c = self.config
        return (f"Tile({c.name!r}, device={self.device.name!r}, {c.rows}x{c.cols}, "
                f"DAC {c.dac_bits} b, ADC {c.adc_bits} b {c.adc_mode}, {c.encoding}"
                f"{', exact' if self.exact else ''})")

    def noise_free(self) -> Tile:
        """The exact limit of this tile: every non-ideality off (device noise and drift,
        converter noise, mismatch, quantization, IR drop, cell I–V); then ``matvec`` equals
        ``X @ W`` to float tolerance. Program it like any tile."""
        return Tile(self.config.noise_free(), self.device, exact=True)

    # -- programming ------------------------------------------------------------------------
    def program(self, weights: Any, rng: np.random.Generator, *, at_s: float = 0.0) -> Tile:
        """Program ``weights`` (rows', cols') <= (rows, cols) at time ``at_s`` (s)."""
        rng = check_generator(rng)
        cfg = self.config
        w = _as_float_array(weights, "weights", f"tile {cfg.name!r}").astype(np.float64)
        if w.ndim != 2:
            raise InputError(f"tile {cfg.name!r}: weights must be a 2-D matrix, got shape "
                             f"{w.shape}")
        if w.shape[0] > cfg.rows or w.shape[1] > cfg.cols or 0 in w.shape:
            raise InputError(f"tile {cfg.name!r}: a {w.shape[0]}x{w.shape[1]} matrix does not "
                             f"fit a {cfg.rows}x{cfg.cols} crossbar")
        arr = TileArray(cfg, self.device, w.shape, name=f"tile {cfg.name!r}",
                        exact=self.exact)
        arr.program(w, rng, at_s=check_time(at_s))
        self.array_ = arr
        self.shape_ = w.shape
        self.weights_ = w
        self.weight_scale_ = arr.weight_scale_[0, 0]
        self.programmed_at_s_ = arr.programmed_at_s_
        self.adc_gain_ = arr.adc_gain_[0, 0]
        self.adc_offset_ = arr._converter()[2][0, 0]  # normalised output units
        self.affine_ = (arr.affine_[0][0, 0], arr.affine_[1][0, 0])
        ref = arr.reference_readout_
        self.reference_readout_ = None if ref is None else ref[0, 0]
        return self

    @property
    def states_(self) -> list:
        """The device states of the tile, one per device instance, (2, rows, cols) each."""
        self._require_programmed()
        return self.array_.states_

    def _require_programmed(self) -> None:
        if not hasattr(self, "array_"):
            raise StateError(f"tile {self.config.name!r} is not programmed: call program()")

    # -- reading ------------------------------------------------------------------------------
    def matvec(self, x: Any, t: float, rng: np.random.Generator, *,
               redraw: bool = False) -> np.ndarray:
        """Y = X @ W through the tile at time ``t`` (s; the tile was programmed at ``at_s``).

        X has shape (batch, rows') or (rows',); returns (batch, cols') or (cols',), float64.
        Every MVM draws its own fast read noise and converter noise. The read noise slower
        than the card's noise window is part of the devices' state at ``t``: drawn at the
        first call at ``t`` and shared by later calls at the same ``t`` (``redraw=True``
        draws a new realization).
        """
        self._require_programmed()
        rng = check_generator(rng)
        cfg = self.config
        x = _as_float_array(x, "inputs", f"tile {cfg.name!r}")
        one = x.ndim == 1
        if one:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.shape_[0]:
            raise InputError(f"tile {cfg.name!r}: input of shape {np.shape(x)} does not match "
                             f"the {self.shape_[0]} programmed rows (expected (batch, "
                             f"{self.shape_[0]}))")
        t = check_time(t)
        if t < self.programmed_at_s_:
            raise InputError(f"tile {cfg.name!r}: t = {t:g} s is before the tile was "
                             f"programmed (at {self.programmed_at_s_:g} s)")
        xt = torch.from_numpy(np.ascontiguousarray(x))
        y = self.array_.matvec(xt, t - self.programmed_at_s_, rng, redraw=redraw)
        self.saturation_ = self.array_.saturation_
        out = y.numpy().astype(np.float64)
        return out[0] if one else out

    def calibrate_inputs(self, x: Any) -> None:
        """Set the input range of input_scaling = "layer" from the abs-max of ``x``
        (batch, rows'), as a chip's per-layer calibration does."""
        self._require_programmed()
        xt = torch.from_numpy(np.ascontiguousarray(_as_float_array(x, "inputs",
                                                                   f"tile {self.config.name!r}")))
        self.array_.set_input_range_from(self.array_._to_tiles(xt.reshape(-1, self.shape_[0]))
                                         .abs().amax(dim=(0, 3)))

    def set_output_range(self, full_scale: float) -> None:
        """Set the ADC full scale (normalised units), as a per-layer ADC calibration does.
        Converter noise referred to the full scale follows it; noise in LSB keeps its size
        in LSB."""
        self._require_programmed()
        if not (np.isfinite(full_scale) and full_scale > 0):
            raise InputError(f"tile {self.config.name!r}: full scale {full_scale!r} must be > 0")
        self.array_.output_range_ = np.full((1, 1), float(full_scale))
