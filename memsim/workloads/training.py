"""Training and evaluating built-in models: plain, hardware-aware, and on the tiles.

- :func:`train` trains a torch model with Adam and a cosine schedule, plainly or
  hardware-aware: for HWA training the model is converted with :func:`memsim.analog` and
  trained in ``train()`` mode, so the noise is the tile engine's own (:mod:`memsim.analog.hwa`).
- :func:`cached_weights` trains at first use and keeps the weights as a ``.npz`` in the cache
  (written to a uniquely named temporary file, then renamed: two processes training at once
  never publish a half-written file).
- :func:`analog_accuracy` converts a trained model, programs it with several seeds,
  calibrates its converter ranges on training data, and measures the accuracy at several
  times after programming.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from memsim._progress import progress

__all__ = ["analog_accuracy", "cache_dir", "cached_weights", "train"]


def cache_dir() -> Path:
    """Where trained models are cached: $MEMSIM_CACHE, else ~/.cache/memsim."""
    root = os.environ.get("MEMSIM_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "memsim"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _float_state(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()
            if not k.endswith("_extra_state")}


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int = 60,
          batch: int = 32, lr: float = 3e-3, seed: int = 0, hwa: Any = None,
          tile: Any = "hermes-core", device: Any = "pcm-hermes-2dev") -> dict[str, np.ndarray]:
    """Train ``model`` (in place) on (x, y); returns its float weights. ``hwa``: an
    :class:`~memsim.analog.hwa.HWANoise` for hardware-aware training on ``tile``/``device``."""
    import memsim

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.tensor(np.asarray(x), dtype=torch.float32)
    yt = torch.tensor(np.asarray(y), dtype=torch.long)
    net = model if hwa is None else memsim.analog(model, tile, device, hwa=hwa, seed=seed)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    threads = torch.get_num_threads()
    # One thread: these small models train faster than with intra-op threads (see
    # benchmarks/README.md), and the weights do not depend on the machine's core count.
    torch.set_num_threads(1)
    try:
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=gen)
            for k in range(0, len(xt), batch):
                idx = order[k:k + batch]
                loss = F.cross_entropy(net(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    weights = _float_state(net)
    if net is not model:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()},
                              strict=False)
    model.eval()
    return weights


def cached_weights(path: Path, make: Callable[[], dict[str, np.ndarray]], *,
                   retrain: bool = False) -> dict[str, np.ndarray]:
    """Weights from ``path`` if it exists, else ``make()`` saved there atomically."""
    if path.exists() and not retrain:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    params = make()
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **params)
        os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return params


def accuracy(logits: Any, labels: Any) -> float:
    """Fraction of samples whose largest logit is the label."""
    logits = logits.detach().cpu().numpy() if isinstance(logits, torch.Tensor) else logits
    return float(np.mean(np.argmax(np.asarray(logits), axis=1) == np.asarray(labels)))


def analog_accuracy(model: nn.Module, x_test: np.ndarray, y_test: np.ndarray, *,
                    tile: Any = "hermes-core", device: Any = "pcm-hermes-2dev",
                    times: Sequence[float] = (1.0,), seeds: int = 1, seed: int = 2024,
                    x_calibrate: np.ndarray | None = None, **overrides: Any
                    ) -> dict[str, Any]:
    """Accuracy of ``model`` on the tiles at each time after programming, per seed.

    The model is converted once; every seed programs it anew (``SeedSequence(seed)``
    children), then (when ``x_calibrate`` is given) calibrates the converter ranges on it,
    as a chip calibrates per layer. Returns ``accuracy`` (seeds × times), the converter
    ``saturation_rate`` of the last forward, and the converted model.
    """
    import memsim

    amodel = memsim.analog(model, tile, device, **overrides).eval()
    xt = torch.tensor(np.asarray(x_test), dtype=torch.float32)
    xc = None if x_calibrate is None else torch.tensor(np.asarray(x_calibrate),
                                                       dtype=torch.float32)
    acc = np.empty((seeds, len(times)))
    sat = []
    with progress(seeds * len(times), "analog accuracy", "read") as bar:
        for s, child in enumerate(np.random.SeedSequence(seed).spawn(seeds)):
            memsim.program(amodel, np.random.default_rng(child))
            if xc is not None:
                memsim.calibrate(amodel, xc)
            for k, t in enumerate(times):
                memsim.set_time(amodel, float(t))
                with torch.no_grad():
                    acc[s, k] = accuracy(amodel(xt), y_test)
                rep = memsim.report(amodel)["layers"]
                conv = sum(r.get("conversions", 0) for r in rep)
                sat.append(sum(r.get("saturated", 0) for r in rep) / conv if conv else 0.0)
                bar.update(1)
    return {"accuracy": acc, "saturation_rate": float(np.mean(sat)), "model": amodel}
