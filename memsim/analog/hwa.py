"""Hardware-aware (HWA) training: the noise the tiles will add, injected while training.

In ``train()`` mode an analog module computes with its float weights plus (Joshi et al., Nat.
Commun. 11, 2473, 2020; Rasch et al., Nat. Commun. 14, 5282, 2023):

- DAC quantization of each input vector (abs-max scaling, straight-through gradient);
- Gaussian weight noise with the relative σ of the programmed, drifted and compensated
  conductances plus their per-MVM read noise, measured on the tile engine itself for the
  chosen tile card, device card and time (:meth:`HWANoise.from_cards`);
- output noise of the ADC: quantization (LSB/√12) and converter noise, relative to the
  full scale;
- optionally, weights clipped to ±``clip_sigma`` standard deviations of their output
  (straight-through), the same clipping being applied when the model is programmed.

The noise comes from a ``torch.Generator`` of the converted model (seeded when it is
converted), never from torch's global generator.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from memsim.errors import ConfigError

__all__ = ["PLAIN", "HWANoise"]


def _ste(x: torch.Tensor, xq: torch.Tensor) -> torch.Tensor:
    """xq forward, identity gradient."""
    return x + (xq - x).detach()


@dataclass(frozen=True)
class HWANoise:
    """Noise injected during hardware-aware training (all relative, dimensionless).

    Attributes:
        weight_sigma: σ of weight noise relative to each output's largest absolute weight.
        dac_bits: input quantization (None: off).
        out_sigma: σ of output noise relative to the ADC full scale of one tile.
        output_range: that full scale, in units of (max abs(x) · max abs(w)) per output.
        clip_sigma: clip each output's weights to ±clip_sigma standard deviations (None:
            off).
    """

    weight_sigma: float
    dac_bits: int | None
    out_sigma: float
    output_range: float
    clip_sigma: float | None = None

    def __post_init__(self) -> None:
        for name in ("weight_sigma", "out_sigma", "output_range"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                raise ConfigError(f"HWANoise.{name} = {v!r} must be a number >= 0")
        if self.clip_sigma is not None and not self.clip_sigma > 0:
            raise ConfigError(f"HWANoise.clip_sigma = {self.clip_sigma!r} must be > 0 or None")

    def tag(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    @classmethod
    def from_cards(cls, tile: Any = "hermes-core", device: Any = "pcm-hermes-2dev", *,
                   t_s: float = 86400.0, seed: int = 0, clip_sigma: float | None = None,
                   **overrides: Any) -> HWANoise:
        """Measure the noise a tile adds: program a random matrix on the tile engine, read it
        at ``t_s`` (with the tile's drift compensation), compare with the targets scaled by
        their common gain (the mean drift decay when nothing compensates it)."""
        from memsim.crossbar import TileConfig, load_tile_config
        from memsim.crossbar.engine import TileArray
        from memsim.devices import Device, load_device

        cfg = tile if isinstance(tile, TileConfig) else load_tile_config(tile)
        if overrides:
            cfg = cfg.with_(**overrides)
        dev = device if isinstance(device, Device) else load_device(device)
        rng = np.random.default_rng(seed)
        w = rng.uniform(-1, 1, (cfg.rows, cfg.cols))
        arr = TileArray(cfg, dev, w.shape, name="hwa-probe").program(w, rng)
        st = arr.state_at(t_s, rng)
        alpha = st.alpha.double().numpy()[0, 0]
        g = st.w.double().numpy()[0, 0] * alpha[None, :]
        target = arr.w_chunk(0, 0)
        # Without drift compensation the conductances also decay together, a systematic
        # gain that no random weight noise can stand for; counted as noise it quadrupled the
        # training noise of uncompensated PCM (0.198 against 0.048 of a column's largest
        # weight). Only the spread around the best common gain is noise, relative to it.
        gain = float(np.sum(g * target) / np.sum(target * target))
        err = g / gain - target
        per_mvm = 0.0 if st.var is None else float(np.mean(st.var.double().numpy()[0, 0]
                                                          * alpha[None, :] ** 2)) / gain**2
        weight_sigma = float(np.sqrt(np.mean(err**2) + per_mvm))
        fs = cfg.output_range
        lsb = 0.0 if cfg.adc_bits is None else fs / 2 ** (cfg.adc_bits - 1)
        out_sigma = float(np.hypot(lsb / np.sqrt(12), cfg.adc_noise_sigma()) / fs)
        return cls(weight_sigma=weight_sigma, dac_bits=cfg.dac_bits, out_sigma=out_sigma,
                   output_range=fs, clip_sigma=clip_sigma)

    # -- the training forward ------------------------------------------------------------------
    def _randn(self, shape, like: torch.Tensor, ctx: Any) -> torch.Tensor:
        gens = ctx.generators
        key = str(like.device)
        if key not in gens:
            gen = torch.Generator(device=like.device)
            gen.manual_seed(ctx.hwa_seed)
            gens[key] = gen
        return torch.randn(shape, generator=gens[key], device=like.device, dtype=like.dtype)

    def clip_weight(self, w: torch.Tensor, out_dim: int = 0) -> torch.Tensor:
        """Weights clipped per output to ±clip_sigma σ (straight-through)."""
        if self.clip_sigma is None:
            return w
        dims = [d for d in range(w.ndim) if d != out_dim]
        lim = self.clip_sigma * w.detach().std(dim=dims, keepdim=True)
        return _ste(w, torch.maximum(torch.minimum(w, lim), -lim))

    def clip_matrices(self, mats: torch.Tensor) -> torch.Tensor:
        """The same clipping on (G, R, C) matrices (outputs are columns), at programming."""
        if self.clip_sigma is None:
            return mats
        lim = self.clip_sigma * mats.std(dim=1, keepdim=True)
        return torch.maximum(torch.minimum(mats, lim), -lim)

    def _quantize(self, x: torch.Tensor, sx: torch.Tensor) -> torch.Tensor:
        if self.dac_bits is None:
            return x
        n = 2 ** (self.dac_bits - 1) - 1
        safe = torch.where(sx > 0, sx, torch.ones_like(sx))
        return _ste(x, torch.round(x / safe * n) / n * safe)

    def linear(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
               ctx: Any) -> torch.Tensor:
        """y = x wᵀ + b with the tile's noise (w: (out, in))."""
        w = self.clip_weight(w, 0)
        sx = x.detach().abs().amax(dim=-1, keepdim=True)
        xq = self._quantize(x, sx)
        sw = w.detach().abs().amax(dim=1)
        wn = w + self.weight_sigma * sw[:, None] * self._randn(w.shape, w, ctx)
        y = F.linear(xq, wn, b)
        if self.out_sigma:
            scale = sx * sw * self.output_range
            y = y + self.out_sigma * scale * self._randn(y.shape, y, ctx)
        return y

    def conv(self, x: torch.Tensor, mod: Any, ctx: Any) -> torch.Tensor:
        """The module's convolution with the tile's noise (per-sample input scale)."""
        w = self.clip_weight(mod.weight, 0)
        dims = tuple(range(1, x.ndim))
        sx = x.detach().abs().amax(dim=dims, keepdim=True)
        xq = self._quantize(x, sx)
        sw = w.detach().abs().flatten(1).amax(dim=1)
        wn = w + self.weight_sigma * sw.reshape(-1, *([1] * (w.ndim - 1))) * self._randn(
            w.shape, w, ctx)
        fn = F.conv2d if mod.dims == 2 else F.conv1d
        if mod.padding_mode != "zeros":
            xq = F.pad(xq, mod._reversed_padding, mode=mod.padding_mode)
            padding: Any = 0
        else:
            padding = mod.padding
        y = fn(xq, wn, mod.bias, mod.stride, padding, mod.dilation, mod.groups)
        if self.out_sigma:
            shape = (1, -1) + (1,) * mod.dims
            scale = sx.reshape(-1, *([1] * (y.ndim - 1))) * sw.reshape(shape)
            y = y + self.out_sigma * self.output_range * scale * self._randn(y.shape, y, ctx)
        return y


class _Plain:
    """train() without hardware noise (``memsim.analog(..., hwa=None)``): the float layers."""

    def linear(self, x, w, b, ctx):
        return F.linear(x, w, b)

    def conv(self, x, mod, ctx):
        fn = F.conv2d if mod.dims == 2 else F.conv1d
        if mod.padding_mode != "zeros":
            return fn(F.pad(x, mod._reversed_padding, mode=mod.padding_mode), mod.weight,
                      mod.bias, mod.stride, 0, mod.dilation, mod.groups)
        return fn(x, mod.weight, mod.bias, mod.stride, mod.padding, mod.dilation, mod.groups)

    def clip_matrices(self, mats):
        return mats


PLAIN = _Plain()
