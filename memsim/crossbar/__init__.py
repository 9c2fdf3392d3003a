"""Crossbar tiles: DAC → array of differential unit cells → ADC → local digital unit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memsim.crossbar.config import IDEAL_CONVERTERS, TileConfig, load_tile_config
from memsim.crossbar.engine import Saturation, TileArray
from memsim.crossbar.tile import Tile
from memsim.devices import Device, load_device

__all__ = ["IDEAL_CONVERTERS", "Saturation", "Tile", "TileArray", "TileConfig", "load_tile",
           "load_tile_config"]


def load_tile(name_or_path: str | Path | TileConfig, device: str | Path | Device = "ideal",
              **overrides: Any) -> Tile:
    """A tile from its card (``crossbars/<name>.toml`` or a path) and a device.

    ``overrides`` change tile parameters by name, e.g. ``adc_bits=None`` for an
    unquantized ADC; an unknown name is an error. ``load_tile(...).noise_free()`` is the
    tile's exact limit.
    """
    if isinstance(name_or_path, TileConfig):
        cfg = name_or_path.with_(**overrides) if overrides else name_or_path
    else:
        cfg = load_tile_config(name_or_path, **overrides)
    dev = device if isinstance(device, Device) else load_device(device)
    return Tile(cfg, dev)
