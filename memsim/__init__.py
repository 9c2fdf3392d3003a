"""memsim: analog in-memory computing with memristive devices, from device to chip."""

from memsim import analog
from memsim._format import Report
from memsim._progress import set_progress
from memsim.analog import at_time, calibrate, describe, program, report, set_time
from memsim.chip import load_chip
from memsim.crossbar import Tile, TileConfig, load_tile, load_tile_config
from memsim.devices import Device, DeviceState, list_devices, load_device
from memsim.errors import (
    CalibrationWarning,
    CardError,
    ClusterError,
    ConfigError,
    InputError,
    MemsimError,
    NumericalError,
    StateError,
    StoreError,
    StudyError,
)
from memsim.mapping import Graph, MappedNetwork, map_network

__version__ = "0.1.0"

__all__ = [
    "CalibrationWarning",
    "CardError",
    "ClusterError",
    "ConfigError",
    "Device",
    "DeviceState",
    "Graph",
    "InputError",
    "MappedNetwork",
    "MemsimError",
    "NumericalError",
    "Report",
    "StateError",
    "StoreError",
    "StudyError",
    "Tile",
    "TileConfig",
    "__version__",
    "analog",
    "at_time",
    "calibrate",
    "describe",
    "list_devices",
    "load_chip",
    "load_device",
    "load_tile",
    "load_tile_config",
    "map_network",
    "program",
    "report",
    "set_progress",
    "set_time",
]
