"""The built-in real workload: scikit-learn's ``digits`` (1797 8×8 images, 10 classes).

Nothing is downloaded: scikit-learn ships the data. Two models, trained at first use with
a fixed seed (PyTorch, CPU) and cached as numpy arrays:

- ``mlp``: 64-100-10 with ReLU, in the spirit of the classic 784-100-10 MNIST MLP;
- ``cnn``: conv 3×3 (1→8) · ReLU · max-pool 2 · conv 3×3 (8→16) · ReLU · max-pool 2 ·
  linear 64→10.

Hardware-aware (HWA) training injects, at every training step, the noise the chosen
device and tile will add (:func:`hwa_noise`): Gaussian weight noise with the relative σ of
the programmed, drifted and compensated conductances plus per-MVM read noise, measured on
the tile itself; DAC quantization of each input vector (per-vector abs-max scaling, straight-
through gradient); and output noise of the ADC's quantization (LSB/√12) and converter noise.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memsim._io import atomic_path
from memsim.mapping.graph import Graph

__all__ = ["HWANoise", "accuracy", "cache_dir", "digits_model", "hwa_noise", "load_digits_split"]

MODELS = ("mlp", "cnn")
_VERSION = 1


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


@dataclass(frozen=True)
class HWANoise:
    """Noise injected during hardware-aware training (all relative, dimensionless).

    weight_sigma: σ of weight noise relative to each output's max |w|.
    dac_bits: input quantization (None: off).
    out_sigma: σ of output noise relative to the ADC full scale of one tile
        (output_range in normalised units; see memsim.crossbar.config).
    output_range: that full scale, in units of (max|x| · max|w|) per output.
    """

    weight_sigma: float
    dac_bits: int | None
    out_sigma: float
    output_range: float

    def tag(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


def hwa_noise(tile: Any = "hermes-core", device: Any = "pcm-hermes-2dev", *,
              t_s: float = 86400.0, seed: int = 0) -> HWANoise:
    """Measure the noise a tile adds: program a random matrix, read it at ``t_s`` (with the
    tile's drift compensation reference at calibration time), compare with the targets."""
    from memsim.crossbar import load_tile

    t = load_tile(tile, device=device)
    cfg = t.config
    rng = np.random.default_rng(seed)
    w = rng.uniform(-1, 1, (cfg.rows, cfg.cols))
    t.program(w, rng)
    read = t._read(t_s, rng)
    g = (read.gp - read.gn).astype(np.float64)
    ref = t._read(cfg.calibration_time_s, rng)
    g_ref = (ref.gp - ref.gn).astype(np.float64)
    alpha = (g_ref * g_ref).sum() / (g * g_ref).sum() if cfg.drift_compensation != "none" \
        else 1.0
    err = alpha * g - w / t.weight_scale_
    per_mvm = alpha**2 * (read.sp + read.sn).astype(np.float64)
    weight_sigma = float(np.sqrt(np.mean(err**2) + np.mean(per_mvm)))
    out_sigma = 0.0
    if cfg.adc_bits is not None:
        lsb = cfg.output_range / 2 ** (cfg.adc_bits - 1)
        out_sigma = float(np.hypot(lsb / np.sqrt(12), cfg.adc_noise) / cfg.output_range)
    return HWANoise(weight_sigma=weight_sigma, dac_bits=cfg.dac_bits, out_sigma=out_sigma,
                    output_range=cfg.output_range)


def cache_dir() -> Path:
    """Where trained models are cached: $MEMSIM_CACHE, else ~/.cache/memsim."""
    root = os.environ.get("MEMSIM_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "memsim"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _graph(kind: str, p: dict[str, np.ndarray]) -> Graph:
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


def _train(kind: str, noise: HWANoise | None, seed: int, epochs: int) -> dict[str, np.ndarray]:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("training the built-in digits models needs PyTorch "
                           "(pip install 'memsim[torch]'); a cached model needs nothing") from exc
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_tr, y_tr, _, _ = load_digits_split()
    x = torch.tensor(x_tr, dtype=torch.float32)
    y = torch.tensor(y_tr)

    def param(*shape, fan_in):
        return torch.nn.Parameter(torch.randn(*shape, generator=gen) * (2.0 / fan_in) ** 0.5)

    if kind == "mlp":
        p = {"fc1.weight": param(100, 64, fan_in=64), "fc1.bias": torch.nn.Parameter(
            torch.zeros(100)), "fc2.weight": param(10, 100, fan_in=100),
             "fc2.bias": torch.nn.Parameter(torch.zeros(10))}
    else:
        p = {"conv1.weight": param(8, 1, 3, 3, fan_in=9),
             "conv1.bias": torch.nn.Parameter(torch.zeros(8)),
             "conv2.weight": param(16, 8, 3, 3, fan_in=72),
             "conv2.bias": torch.nn.Parameter(torch.zeros(16)),
             "fc.weight": param(10, 64, fan_in=64), "fc.bias": torch.nn.Parameter(torch.zeros(10))}

    def mvm(a, w, train):
        """a (N, in) @ w.T (out, in) with the tile's noise during HWA training."""
        if noise is None or not train:
            return a @ w.t()
        sx = a.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        if noise.dac_bits is not None:
            n = 2 ** (noise.dac_bits - 1) - 1
            aq = torch.round(a / sx * n) / n * sx
            a = a + (aq - a).detach()  # straight-through
        sw = w.detach().abs().amax(dim=1).clamp_min(1e-12)
        wn = w + noise.weight_sigma * sw[:, None] * torch.randn(w.shape, generator=gen)
        out = a @ wn.t()
        scale = sx * sw[None, :] * noise.output_range
        return out + noise.out_sigma * scale * torch.randn(out.shape, generator=gen)

    def conv(a, w, b, train):
        n, _, h, wd = a.shape
        cols = F.unfold(a, 3, padding=1).transpose(1, 2).reshape(-1, w.shape[1] * 9)
        out = mvm(cols, w.reshape(w.shape[0], -1), train) + b
        return out.reshape(n, h * wd, -1).transpose(1, 2).reshape(n, -1, h, wd)

    def forward(a, train):
        if kind == "mlp":
            h = torch.relu(mvm(a.flatten(1), p["fc1.weight"], train) + p["fc1.bias"])
            return mvm(h, p["fc2.weight"], train) + p["fc2.bias"]
        h = F.max_pool2d(torch.relu(conv(a, p["conv1.weight"], p["conv1.bias"], train)), 2)
        h = F.max_pool2d(torch.relu(conv(h, p["conv2.weight"], p["conv2.bias"], train)), 2)
        return mvm(h.flatten(1), p["fc.weight"], train) + p["fc.bias"]

    opt = torch.optim.Adam(p.values(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for k in range(0, len(x), 32):
            idx = order[k:k + 32]
            loss = F.cross_entropy(forward(x[idx], True), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return {k: v.detach().double().numpy() for k, v in p.items()}


def digits_model(kind: str = "cnn", *, hwa: HWANoise | None = None, seed: int = 0,
                 epochs: int = 60, retrain: bool = False) -> Graph:
    """A trained digits model as a memsim :class:`Graph` (trained once, then cached)."""
    if kind not in MODELS:
        raise ValueError(f"unknown digits model {kind!r}; known: {list(MODELS)}")
    tag = "plain" if hwa is None else f"hwa-{hwa.tag()}"
    path = cache_dir() / f"digits-{kind}-{tag}-seed{seed}-e{epochs}-v{_VERSION}.npz"
    if path.exists() and not retrain:
        with np.load(path) as f:
            params = {k: f[k] for k in f.files}
    else:
        params = _train(kind, hwa, seed, epochs)
        # a temporary file of its own (several workers may train on a cold cache at once),
        # then an atomic rename: no reader ever sees a half-written model
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **params)
    return _graph(kind, params)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose largest logit is the label."""
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(labels)))
