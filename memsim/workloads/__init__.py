"""Workloads: built-in digits and MNIST models, layer-shape definitions of known networks."""

from __future__ import annotations

import numpy as np

from memsim.errors import ConfigError
from memsim.mapping.graph import Graph

__all__ = ["list_workloads", "load_workload", "workload_names"]

_DIGITS = ("digits-mlp", "digits-cnn")
_MNIST = ("mnist-mlp", "mnist-mlp-relu", "mnist-lenet5")


def list_workloads() -> list[str]:
    """Names accepted by :func:`load_workload`."""
    from memsim.workloads.shapes import NETWORKS

    return [*_DIGITS, *_MNIST, *sorted(NETWORKS)]


def workload_names() -> list[str]:
    """Every workload name: those of :func:`load_workload` (Graphs), then the trained torch
    workloads without a Graph (:mod:`memsim.workloads.trained`; the chip path records them
    with :func:`~memsim.workloads.trained.describe_trained`)."""
    from memsim.workloads.trained import list_trained

    graphs = list_workloads()
    return [*graphs, *(t for t in list_trained() if t not in graphs)]


def load_workload(name: str, rng: np.random.Generator | None = None) -> Graph:
    """A network by name: trained digits and MNIST models, or layer shapes with random
    weights."""
    if name in _DIGITS:
        from memsim.workloads.digits import digits_model

        return digits_model(name.split("-")[1])
    if name in _MNIST:
        from memsim.workloads.mnist import mnist_model

        return mnist_model(name.removeprefix("mnist-"))
    from memsim.workloads.shapes import NETWORKS, load_network

    if name not in NETWORKS:
        raise ConfigError(f"unknown network {name!r}; known: {', '.join(list_workloads())}")
    return load_network(name, rng if rng is not None else np.random.default_rng(0))
