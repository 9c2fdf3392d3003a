"""Trained workloads: a data set and a torch model trained on it, plain or hardware-aware.

Each entry names a function (imported only when the workload is used) that returns a
:class:`TrainedWorkload`. Studies, the drift study and the demo measure accuracy through it:
the model is trained at first use and cached (:mod:`memsim.workloads.training`), converted
with :func:`memsim.analog` and programmed; the chip simulates the description recorded from
one batch (:func:`memsim.describe`). A new workload is one function and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from memsim.errors import ConfigError

__all__ = ["TRAINED", "TrainedWorkload", "describe_trained", "get_trained", "list_trained"]


@dataclass(frozen=True)
class TrainedWorkload:
    """A trained workload.

    Attributes:
        name: the workload's name ("digits-cnn").
        data: () -> (x_train, y_train, x_test, y_test), numpy, inputs as the model takes them.
        model: (hwa) -> the trained torch model in eval mode (``hwa``: an HWANoise for
            hardware-aware training, or None), trained at first use and cached.
        description: one line for reports.
        calibration_samples: training inputs used to calibrate the converter ranges.
    """

    name: str
    data: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    model: Callable[[Any], Any]
    description: str = ""
    calibration_samples: int = 256

    def test_size(self) -> int:
        return len(self.data()[3])


#: workload name -> "module:function" returning its TrainedWorkload
TRAINED: dict[str, str] = {
    "digits-mlp": "memsim.workloads.digits:workload_mlp",
    "digits-cnn": "memsim.workloads.digits:workload_cnn",
    "digits-kan": "memsim.workloads.kan:workload_digits_kan",
    "digits-mlp-eq": "memsim.workloads.kan:workload_digits_mlp_eq",
    "mnist-kan": "memsim.workloads.kan:workload_mnist_kan",
    "mnist-mlp-eq": "memsim.workloads.kan:workload_mnist_mlp_eq",
    "digits-transformer": "memsim.workloads.transformer:workload_transformer",
    "mnist-mlp": "memsim.workloads.mnist:workload_mlp",
    "mnist-mlp-relu": "memsim.workloads.mnist:workload_mlp_relu",
    "mnist-lenet5": "memsim.workloads.mnist:workload_lenet5",
}


def list_trained() -> list[str]:
    return sorted(TRAINED)


def get_trained(name: str) -> TrainedWorkload:
    """The trained workload ``name`` (ConfigError naming the known ones otherwise)."""
    if name not in TRAINED:
        raise ConfigError(f"unknown trained workload {name!r}; known: {', '.join(TRAINED)}")
    module, func = TRAINED[name].split(":")
    return getattr(importlib.import_module(module), func)()


def describe_trained(name: str, tile: Any = "hermes-core", **tile_overrides: Any) -> Any:
    """The chip's :class:`~memsim.mapping.description.NetworkDescription` of trained workload
    ``name``, for workloads that have no layer-shape Graph (a transformer): its plain model
    converted on ``tile`` (with ``tile_overrides``) with the ideal device — timing does not
    depend on the conductances — programmed, and one test input recorded
    (:func:`memsim.describe`)."""
    import torch

    import memsim

    work = get_trained(name)
    amodel = memsim.analog(work.model(None), tile, "ideal", hwa=None, **tile_overrides)
    memsim.program(amodel, 0)
    x = torch.tensor(np.asarray(work.data()[0][:1]), dtype=torch.float32)
    memsim.calibrate(amodel, x)  # converter ranges (timing does not depend on them)
    return memsim.describe(amodel, x, name=name)
