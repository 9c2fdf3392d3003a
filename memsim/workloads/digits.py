"""The built-in real workload: scikit-learn's ``digits`` (1797 8×8 images, 10 classes).

Nothing is downloaded: scikit-learn ships the data. Two torch models, trained at first use
with a fixed seed and cached as numpy arrays:

- ``mlp``: 64-100-10 with ReLU, in the spirit of the classic 784-100-10 MNIST MLP;
- ``cnn``: conv 3×3 (1→8) · ReLU · max-pool 2 · conv 3×3 (8→16) · ReLU · max-pool 2 ·
  linear 64→10.

Hardware-aware (HWA) training converts the model with :func:`memsim.analog` and trains it
in ``train()`` mode: the noise injected is the one the chosen tile and device add
(:class:`memsim.analog.HWANoise`, measured on the tile engine). :func:`digits_model` gives
the same trained weights as a memsim :class:`~memsim.mapping.Graph` for the numpy and
chip paths.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from memsim.analog.hwa import HWANoise
from memsim.errors import ConfigError
from memsim.mapping.graph import Graph
from memsim.workloads.training import accuracy, cache_dir, cached_weights, train

__all__ = ["MODELS", "HWANoise", "accuracy", "cache_dir", "digits_model", "digits_torch",
           "hwa_noise", "load_digits_split", "workload_cnn", "workload_mlp"]

MODELS = ("mlp", "cnn")
_VERSION = 2


@functools.lru_cache(maxsize=4)
def load_digits_split(seed: int = 0, test_fraction: float = 0.3):
    """(x_train, y_train, x_test, y_test); x is (N, 1, 8, 8) in [0, 1], stratified split.

    Cached per process; the arrays are read-only."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float64)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target, test_size=test_fraction,
                                              random_state=seed, stratify=data.target)
    out = (x_tr, y_tr, x_te, y_te)
    for a in out:
        a.flags.writeable = False
    return out


class DigitsMLP(nn.Module):
    """64-100-10, ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 100)
        self.fc2 = nn.Linear(100, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class DigitsCNN(nn.Module):
    """conv 3×3 1→8, ReLU, max-pool 2, conv 3×3 8→16, ReLU, max-pool 2, linear 64→10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
        return self.fc(h.flatten(1))


_CLASSES = {"mlp": DigitsMLP, "cnn": DigitsCNN}


def hwa_noise(tile: Any = "hermes-core", device: Any = "pcm-hermes-2dev", *,
              t_s: float = 86400.0, seed: int = 0) -> HWANoise:
    """The noise a tile adds at ``t_s`` (measured on the tile engine; see HWANoise)."""
    return HWANoise.from_cards(tile, device, t_s=t_s, seed=seed)


def _weights(kind: str, hwa: HWANoise | None, seed: int, epochs: int,
             retrain: bool) -> dict[str, np.ndarray]:
    if kind not in MODELS:
        raise ConfigError(f"unknown digits model {kind!r}; known: {list(MODELS)}")
    tag = "plain" if hwa is None else f"hwa-{hwa.tag()}"
    path = cache_dir() / f"digits-{kind}-{tag}-seed{seed}-e{epochs}-v{_VERSION}.npz"

    def make() -> dict[str, np.ndarray]:
        x_tr, y_tr, _, _ = load_digits_split()
        torch.manual_seed(seed)
        return train(_CLASSES[kind](), x_tr, y_tr, epochs=epochs, seed=seed, hwa=hwa)

    return cached_weights(path, make, retrain=retrain)


def digits_torch(kind: str = "cnn", *, hwa: HWANoise | None = None, seed: int = 0,
                 epochs: int = 60, retrain: bool = False) -> nn.Module:
    """A trained digits model as a torch module in eval mode (trained once, then cached)."""
    params = _weights(kind, hwa, seed, epochs, retrain)
    model = _CLASSES[kind]()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    return model.eval()


def digits_model(kind: str = "cnn", *, hwa: HWANoise | None = None, seed: int = 0,
                 epochs: int = 60, retrain: bool = False) -> Graph:
    """The same trained model as a memsim :class:`Graph` (numpy; no torch at run time)."""
    p = {k: v.astype(np.float64) for k, v in _weights(kind, hwa, seed, epochs, retrain).items()}
    g = Graph((1, 8, 8), f"digits-{kind}")
    if kind == "mlp":
        h = g.relu(g.linear(g.flatten(g.input), p["fc1.weight"], p["fc1.bias"], name="fc1"))
        g.set_output(g.linear(h, p["fc2.weight"], p["fc2.bias"], name="fc2"))
        return g
    h = g.conv2d(g.input, p["conv1.weight"], p["conv1.bias"], padding=1, name="conv1")
    h = g.maxpool2d(g.relu(h), 2)
    h = g.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1, name="conv2")
    h = g.flatten(g.maxpool2d(g.relu(h), 2))
    g.set_output(g.linear(h, p["fc.weight"], p["fc.bias"], name="fc"))
    return g


def _workload(kind: str):
    from memsim.workloads.trained import TrainedWorkload

    return TrainedWorkload(
        name=f"digits-{kind}", data=load_digits_split,
        model=lambda hwa=None: digits_torch(kind, hwa=hwa),
        description=f"scikit-learn digits (8x8), {kind.upper()} of the digits module")


def workload_mlp():
    """digits-mlp as a trained workload."""
    return _workload("mlp")


def workload_cnn():
    """digits-cnn as a trained workload."""
    return _workload("cnn")
