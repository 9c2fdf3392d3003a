"""memsim: analog in-memory computing with memristive devices, from device to chip."""

import os as _os

# Up to three thread pools share the cores: torch's OpenMP, numba's (the tile engine's
# converter kernels) and BLAS. An OpenMP runtime's idle threads spin by default, starving the
# next pool's work: measured on 2 cores, ResNet-32 through memsim ran at 58 img/s with
# spinning pools and 250 img/s with passive ones (benchmarks/bench_network.py). A runtime
# reads the setting when it loads, so it covers torch only when memsim is imported first;
# numba's pool always starts later. A user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
