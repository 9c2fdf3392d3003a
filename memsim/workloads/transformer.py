"""A small transformer encoder on the digits: each 8×8 image is a sequence of its 8 rows.

The model (:class:`DigitsTransformer`) reads the rows of a scikit-learn ``digits`` image as 8
tokens of 8 pixels: a linear embedding to ``d_model`` = 32, a learned position embedding,
two post-norm ``nn.TransformerEncoderLayer`` (4 heads, feed-forward 64, ReLU; Vaswani et
al., NeurIPS 2017), a mean over the tokens and a linear head to 10 classes. Written with
torch's own layers, so that :func:`memsim.analog` converts it as any user's transformer:

- on tiles (analog): the embedding, every attention's input projection (Q, K, V in one
  32×96 matrix) and output projection (32×32), both feed-forward layers and the head;
- digital (the user's torch code, counted by the recorder): the attention itself — scores
  Q·Kᵀ, softmax, the weighted sum of V — the layer norms, residual additions, ReLUs, the
  position embedding and the mean over tokens.

Trained at first use with a fixed seed, plainly or hardware-aware
(:func:`memsim.workloads.training.train`), and cached; registered as the trained workload
``digits-transformer`` (:mod:`memsim.workloads.trained`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from memsim.analog.hwa import HWANoise
from memsim.workloads.digits import load_digits_split
from memsim.workloads.training import cache_dir, cached_weights, train

__all__ = ["DigitsTransformer", "transformer_torch", "workload_transformer"]

_VERSION = 1
EPOCHS = 40


class DigitsTransformer(nn.Module):
    """Rows of an image as tokens → embedding + position → encoder layers → mean → head."""

    def __init__(self, rows: int = 8, features: int = 8, d_model: int = 32, heads: int = 4,
                 ff: int = 64, layers: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Linear(features, d_model)
        self.position = nn.Parameter(torch.zeros(rows, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.reshape(x.shape[0], x.shape[-2], x.shape[-1])  # (N, 1, 8, 8) -> (N, 8, 8)
        h = self.encoder(self.embed(tokens) + self.position)
        return self.head(h.mean(dim=1))


def _weights(hwa: HWANoise | None, seed: int, epochs: int, retrain: bool
             ) -> dict[str, np.ndarray]:
    tag = "plain" if hwa is None else f"hwa-{hwa.tag()}"
    path = cache_dir() / f"digits-transformer-{tag}-seed{seed}-e{epochs}-v{_VERSION}.npz"

    def make() -> dict[str, np.ndarray]:
        x_tr, y_tr, _, _ = load_digits_split()
        torch.manual_seed(seed)
        return train(DigitsTransformer(), x_tr, y_tr, epochs=epochs, seed=seed, hwa=hwa,
                     lr=2e-3)

    return cached_weights(path, make, retrain=retrain)


def transformer_torch(*, hwa: HWANoise | None = None, seed: int = 0, epochs: int = EPOCHS,
                      retrain: bool = False) -> DigitsTransformer:
    """The trained digits transformer in eval mode (trained once, then cached)."""
    params = _weights(hwa, seed, epochs, retrain)
    model = DigitsTransformer()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    return model.eval()


def workload_transformer() -> Any:
    """``digits-transformer`` as a trained workload."""
    from memsim.workloads.trained import TrainedWorkload

    return TrainedWorkload(
        name="digits-transformer", data=load_digits_split,
        model=lambda hwa=None: transformer_torch(hwa=hwa),
        description="scikit-learn digits (8x8) as 8 row tokens, 2-layer transformer encoder "
                    "(d 32, 4 heads, ff 64): projections analog, attention digital")
