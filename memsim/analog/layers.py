"""Analog torch modules: the weight layers of a user's model on memsim tiles.

Each module keeps the original layer's parameters under the original names (so the user's
``state_dict`` keys still match, and the float weights keep training) and adds the programmed
tile state. In ``eval()`` mode a forward runs the programmed tiles
(:class:`memsim.crossbar.engine.TileArray`) at the model's current time; in ``train()`` mode
it runs the float weights with the hardware-aware noise of :mod:`memsim.analog.hwa`, so that
torch optimizers train the model for the hardware.

Everything that is not a weight product (activations, normalisation, pooling, attention
softmax, recurrent gates, in-place ops) stays the user's own torch code; the modules here
only replace the products ``x @ W``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from memsim.crossbar.engine import Saturation, TileArray
from memsim.errors import ConfigError, InputError, StateError

__all__ = ["AnalogConv", "AnalogGRU", "AnalogLSTM", "AnalogLinear", "AnalogModule",
           "AnalogMultiheadAttention"]



_NP = "__numpy__"


def _portable(obj: Any) -> Any:
    """numpy arrays and scalars → tensors and Python numbers (tagged with their numpy dtype,
    uint64 stored bit for bit as int64), recursively through dicts, lists and tuples."""
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        raw = a.view(np.int64) if a.dtype == np.uint64 else a
        return {_NP: torch.from_numpy(raw.copy()), "dtype": str(a.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _portable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_portable(v) for v in obj)
    return obj


def _restored(obj: Any) -> Any:
    """The inverse of :func:`_portable`."""
    if isinstance(obj, dict):
        if _NP in obj:
            a = obj[_NP].numpy()
            return a.view(np.uint64) if obj["dtype"] == "uint64" else a.astype(obj["dtype"])
        return {k: _restored(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_restored(v) for v in obj)
    return obj

class _Context:
    """What every analog module of one converted model shares (not a torch module)."""

    def __init__(self, config: Any, device: Any, exact: bool, hwa: Any, hwa_seed: int = 0
                 ) -> None:
        self.config = config
        self.device = device
        self.exact = exact
        self._hwa = hwa
        self.hwa_time_s = 86400.0
        self.hwa_seed = int(hwa_seed)
        self.calibrating: Any = None  # per-layer statistics while memsim.calibrate runs
        self.calibrate_adc = True  # whether that run also samples the column outputs
        self.warned = False
        self.generators: dict[str, torch.Generator] = {}  # HWA noise, one per torch device
        self.t_s = 0.0  # the model's clock: seconds on the programming clock
        self.recorder: Any = None  # set while a batch is recorded for the chip
        self.description: Any = None  # the NetworkDescription of the last recorded batch
        self.unconverted: list[tuple[str, str]] = []

    @property
    def hwa(self) -> Any:
        """The training-mode noise (measured from the cards on first use for "auto")."""
        if isinstance(self._hwa, str):
            from memsim.analog.hwa import HWANoise

            self._hwa = HWANoise.from_cards(self.config, self.device, t_s=self.hwa_time_s)
        if self._hwa is None:
            from memsim.analog.hwa import PLAIN

            return PLAIN
        return self._hwa

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["generators"] = {}
        state["recorder"] = None
        state["calibrating"] = None
        return state


class AnalogModule(nn.Module):
    """Base of the analog modules: tile arrays, programming, time, reports."""

    _ctx: _Context
    layer_name: str

    def _setup(self, ctx: _Context, name: str) -> None:
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "_arrays", {})
        object.__setattr__(self, "_rng", None)
        self.layer_name = name
        # A (no-op) pre-hook keeps torch's fused transformer fast path off: it reads the
        # weights directly and would bypass the tiles.
        self.register_forward_pre_hook(_keep_off_fused_paths)

    # -- what subclasses declare ----------
    def weight_matrices(self) -> dict[str, tuple[torch.Tensor, int]]:
        """key -> (matrices (G, R, C) as a tensor view of the float weights, row_unit)."""
        raise NotImplementedError

    # -- programming ----------
    def program_tiles(self, rng: np.random.Generator, at_s: float) -> None:
        ctx = self._ctx
        dev = self._param_device()
        arrays = {}
        for key, (mats, unit) in self.weight_matrices().items():
            clip = getattr(ctx._hwa, "clip_sigma", None)  # the training clipping, if any
            clipped = ctx._hwa.clip_matrices(mats.detach()) if clip else mats
            keep = clipped is mats
            arr = TileArray(ctx.config, ctx.device, tuple(mats.shape[1:]), groups=mats.shape[0],
                            row_unit=unit, name=f"layer {self.layer_name!r}" + (
                                f" matrix {key!r}" if key != "w" else ""),
                            torch_device=dev, exact=ctx.exact)
            arr.program(mats if keep else clipped, rng, at_s=at_s, keep_reference=keep)
            arr.warn_first_batch = False  # the model warns once for all its layers
            old = self._arrays.get(key)
            if old is not None and old.input_range_ is not None:
                arr.input_range_ = old.input_range_
            if old is not None and old.output_range_ is not None:
                arr.output_range_ = old.output_range_
            arrays[key] = arr
        object.__setattr__(self, "_arrays", arrays)
        object.__setattr__(self, "_rng", np.random.default_rng(rng.integers(2**63)))

    @property
    def programmed(self) -> bool:
        return bool(self._arrays)

    def _param_device(self) -> torch.device:
        for p in self.parameters(recurse=False):
            return p.device
        return torch.device("cpu")

    def _array(self, key: str = "w") -> TileArray:
        if not self._arrays:
            raise StateError(f"analog layer {self.layer_name!r} is not programmed: call "
                             "memsim.program(model, seed=...) before running it in eval() mode "
                             "(train() mode runs the float weights with hardware-aware noise)")
        return self._arrays[key]

    def _t_since(self, arr: TileArray) -> float:
        t = self._ctx.t_s - arr.programmed_at_s_
        if t < 0:
            raise StateError(f"analog layer {self.layer_name!r}: the model's time "
                             f"{self._ctx.t_s:g} s is before the layer was programmed "
                             f"(at {arr.programmed_at_s_:g} s)")
        return t

    def saturation(self) -> Saturation:
        total = Saturation()
        for arr in self._arrays.values():
            total.add(arr.saturation_)
        return total

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        dev = self._param_device()
        for arr in self._arrays.values():
            if arr.torch_device != dev:
                arr.torch_device = dev
                arr._times = {}  # per-time tensors are rebuilt on the new device
        return out

    # -- programmed state in state_dict ----------
    def get_extra_state(self) -> Any:
        # Tensors and plain Python values only, so that torch.load's default safe
        # (weights_only) unpickler reads a saved state_dict.
        return _portable({"arrays": {k: a.export_state() for k, a in self._arrays.items()},
                          "rng": None if self._rng is None else self._rng.bit_generator.state})

    def set_extra_state(self, state: Any) -> None:
        if not state or not state.get("arrays"):
            return
        state = _restored(state)
        ctx = self._ctx
        arrays = {}
        for key, (mats, unit) in self.weight_matrices().items():
            arr = TileArray(ctx.config, ctx.device, tuple(mats.shape[1:]), groups=mats.shape[0],
                            row_unit=unit, name=f"layer {self.layer_name!r}" + (
                                f" matrix {key!r}" if key != "w" else ""),
                            torch_device=self._param_device(),
                            exact=ctx.exact)
            arr.import_state(state["arrays"][key], mats)
            arr.warn_first_batch = False
            arrays[key] = arr
        object.__setattr__(self, "_arrays", arrays)
        rng = np.random.default_rng()
        if state.get("rng") is not None:
            rng.bit_generator.state = state["rng"]
        object.__setattr__(self, "_rng", rng)

    # -- running a product ----------
    def _mvm(self, x: torch.Tensor, key: str = "w") -> torch.Tensor:
        """x (N, G·R) @ the programmed matrices → (N, G·C), in x's dtype."""
        arr = self._array(key)
        if self._ctx.calibrating is not None:
            return self._observe_linear(arr, x, key)
        with torch.no_grad():
            y = arr.matvec(x.detach(), self._t_since(arr), self._rng)
        return y.to(x.dtype)

    # -- calibration (memsim.calibrate) ----------
    def _stats(self, key: str) -> dict[str, list]:
        return self._ctx.calibrating.setdefault((id(self), key), {"absmax": [], "y": []})

    def _observe_linear(self, arr: TileArray, x: torch.Tensor, key: str) -> torch.Tensor:
        """Exact product, and the statistics memsim.calibrate needs: each row tile's input
        abs-max and (when ADC ranges are calibrated) a sample of |normalised column
        output|, one row tile at a time (bounded memory)."""
        st = self._stats(key)
        xt = arr._to_tiles(x.detach().to(arr.torch_device))
        st["absmax"].append(xt.abs().amax(dim=(0, 3)).double().cpu())
        if self._ctx.calibrate_adc:
            g = arr.geom
            if arr.config.input_scaling in ("fixed", "layer"):
                s = st["absmax"][-1].to(xt) if arr.config.input_scaling == "layer" \
                    else arr.layer_range().to(xt)
                s = torch.where(s > 0, s, torch.ones_like(s))[None, :, :, None]
            else:
                s = xt.abs().amax(dim=3, keepdim=True)
                s = torch.where(s > 0, s, torch.ones_like(s))
            xn = (xt / s).clamp(-1, 1).to(arr.dtype)
            parts = []
            for u in range(g.groups):
                row = []
                for k in range(g.K):
                    w = torch.from_numpy(arr.w_chunk(u, k)).to(xn)
                    row.append(_sample(torch.mm(xn[:, u, k], w).abs()))
                parts.append(torch.stack(row))
            ys = torch.stack(parts)
            st["y"].append(ys.cpu())
        mats = self.weight_matrices()[key][0].detach().to(x)  # views, never copies
        g = mats.shape[0]
        if g == 1:
            return torch.mm(x, mats[0])
        xg = x.reshape(x.shape[0], g, -1).transpose(0, 1)
        return torch.bmm(xg, mats).transpose(0, 1).reshape(x.shape[0], -1)


def _sample(y: torch.Tensor, most: int = 1 << 16) -> torch.Tensor:
    """At most ``most`` values of y, evenly strided (for quantiles of large outputs)."""
    flat = y.reshape(-1)
    step = max(1, -(-flat.numel() // most))
    return flat[::step][:most] if step > 1 else flat


def _keep_off_fused_paths(module, args):
    return None


def _record(module: AnalogModule, op: str, inputs: tuple, output: torch.Tensor,
            **attrs: Any) -> None:
    rec = module._ctx.recorder
    if rec is not None:
        rec.layer(module, op, inputs, output, **attrs)


# -- linear ----------------------------------------------------------------------------------------
class AnalogLinear(AnalogModule):
    """``nn.Linear`` on tiles: y = x Wᵀ + b with the product on the programmed tiles."""

    def __init__(self, src: nn.Linear, ctx: _Context, name: str) -> None:
        super().__init__()
        self.in_features = src.in_features
        self.out_features = src.out_features
        # the converted model is already a copy (or converted in place): take its parameters
        self.weight = src.weight
        self.bias = src.bias
        self._setup(ctx, name)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}, tile={self._ctx.config.name!r}"

    def weight_matrices(self):
        return {"w": (self.weight.t()[None], 1)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise InputError(f"analog layer {self.layer_name!r}: input has {x.shape[-1]} "
                             f"features, the layer expects {self.in_features}")
        if self.training:
            y = self._ctx.hwa.linear(x, self.weight, self.bias, self._ctx)
        else:
            lead = x.shape[:-1]
            y = self._mvm(x.reshape(-1, self.in_features)).reshape(*lead, self.out_features)
            if self.bias is not None:
                y = y + self.bias
        _record(self, "linear", (x,), y)
        return y


# -- convolution -----------------------------------------------------------------------------------
class AnalogConv(AnalogModule):
    """``nn.Conv1d``/``nn.Conv2d`` on tiles, grouped and depthwise included. Row tiles are cut
    at input-channel boundaries; with a per-layer input range the convolution runs as
    convolutions of the quantized input (see :mod:`memsim.crossbar.engine`)."""

    def __init__(self, src: nn.Conv1d | nn.Conv2d, ctx: _Context, name: str) -> None:
        super().__init__()
        self.dims = 2 if isinstance(src, nn.Conv2d) else 1
        for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                     "dilation", "groups", "padding_mode"):
            setattr(self, attr, getattr(src, attr))
        if isinstance(src.padding, str):
            self._reversed_padding = src._reversed_padding_repeated_twice
        else:
            self._reversed_padding = src._reversed_padding_repeated_twice
        self.weight = src.weight
        self.bias = src.bias
        self._setup(ctx, name)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
                f"tile={self._ctx.config.name!r}")

    def weight_matrices(self):
        g = self.groups
        cog = self.out_channels // g
        kk = int(np.prod(self.kernel_size))
        mats = self.weight.reshape(g, cog, -1).transpose(1, 2)  # (G, Cin/g·kk, Cout/g)
        return {"w": (mats, kk)}

    def _pre_pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Input padded as torch's convolution pads it; returns (x, remaining padding)."""
        zeros = (0,) * self.dims
        if self.padding_mode != "zeros":
            return F.pad(x, self._reversed_padding, mode=self.padding_mode), zeros
        if isinstance(self.padding, str):
            if self.padding == "valid":
                return x, zeros
            return F.pad(x, self._reversed_padding), zeros  # "same": possibly asymmetric
        return x, tuple(self.padding)

    def _observe_conv(self, arr: TileArray, x: torch.Tensor, conv: dict) -> torch.Tensor:
        """Exact convolution, and the statistics memsim.calibrate needs: each row tile's
        input abs-max and |normalised column output| with its range."""
        st = self._stats("w")
        kk = int(np.prod(self.kernel_size))
        cin_g = arr.geom.R // kk
        xd = x.detach().to(arr.torch_device)
        st["absmax"].append(arr._conv_absmax(xd, cin_g, kk))
        if self._ctx.calibrate_adc and arr.config.input_scaling in ("fixed", "layer") \
                and arr.conv_fast_path():
            s = st["absmax"][-1] if arr.config.input_scaling == "layer" \
                else arr.layer_range().double().cpu()
            s = torch.where(s > 0, s, torch.ones_like(s))
            c2 = conv
            x4 = xd
            if self.dims == 1:  # as the engine: a 1-D convolution is a 2-D one of height 1
                x4 = xd[:, :, None, :]
                c2 = dict(dims=2, kernel_size=(1, conv["kernel_size"][0]),
                          stride=(1, conv["stride"][0]), padding=(0, conv["padding"][0]),
                          dilation=(1, conv["dilation"][0]))
            xqs, _, _ = arr._conv_dac(x4, s.to(arr.torch_device), cin_g, kk, False)
            g = arr.geom
            w = arr.w_norm()
            # exact products per tile (B, G·C, H', W'), whatever the cell's I–V (as linear)
            ys = [F.conv2d(xq, arr._conv_weights(w, k, kk, c2["kernel_size"]),
                           stride=c2["stride"], padding=c2["padding"],
                           dilation=c2["dilation"], groups=g.groups)
                  for k, xq in enumerate(xqs)]
            st["y"].append(torch.stack([torch.stack([
                _sample(y.abs().reshape(y.shape[0], g.groups, g.C, -1)[:, u])
                for u in range(g.groups)]) for y in ys], dim=1).cpu())
        fn = torch.nn.functional.conv2d if self.dims == 2 else torch.nn.functional.conv1d
        return fn(x, self.weight, None, conv["stride"], conv["padding"], conv["dilation"],
                  self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xin = x
        unbatched = x.ndim == self.dims + 1
        if unbatched:
            x = x.unsqueeze(0)
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            raise InputError(f"analog layer {self.layer_name!r}: input of shape "
                             f"{tuple(x.shape)} does not match {self.in_channels} channels "
                             f"of a {self.dims}-D convolution")
        if self.training:
            y = self._ctx.hwa.conv(x, self, self._ctx)
        else:
            arr = self._array()
            xp, padding = self._pre_pad(x)
            conv = dict(dims=self.dims, kernel_size=tuple(self.kernel_size),
                        stride=tuple(self.stride), padding=padding,
                        dilation=tuple(self.dilation))
            if self._ctx.calibrating is not None:
                y = self._observe_conv(arr, xp, conv)
            else:
                with torch.no_grad():
                    y = arr.conv(xp.detach(), conv, self._t_since(arr), self._rng).to(x.dtype)
            if self.bias is not None:
                y = y + self.bias.reshape(1, -1, *([1] * self.dims))
        y = y[0] if unbatched else y
        pad = self.padding if not isinstance(self.padding, str) else (
            (0,) * self.dims if self.padding == "valid" else tuple(
                k // 2 for k in self.kernel_size))
        _record(self, f"conv{self.dims}d", (xin,), y, kernel_size=tuple(self.kernel_size),
                stride=tuple(self.stride), padding=tuple(pad), dilation=tuple(self.dilation),
                groups=self.groups)
        return y


# -- recurrent layers -----------------------------------------------------------------------------
class _AnalogRNNBase(AnalogModule):
    """LSTM/GRU on tiles, with torch's parameter names, layouts and return values."""

    mode = "lstm"
    gates = 4

    def __init__(self, src: nn.LSTM | nn.GRU, ctx: _Context, name: str) -> None:
        super().__init__()
        if getattr(src, "proj_size", 0):
            raise ConfigError(f"{name}: LSTM with proj_size > 0 is not supported on tiles yet")
        for attr in ("input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional"):
            setattr(self, attr, getattr(src, attr))
        self.dirs = 2 if self.bidirectional else 1
        for pname, p in src.named_parameters(recurse=False):
            setattr(self, pname, p)
        self._setup(ctx, name)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, bidirectional={self.bidirectional}, "
                f"tile={self._ctx.config.name!r}")

    def _suffix(self, layer: int, d: int) -> str:
        return f"l{layer}" + ("_reverse" if d else "")

    def weight_matrices(self):
        out = {}
        for layer in range(self.num_layers):
            for d in range(self.dirs):
                s = self._suffix(layer, d)
                w_ih, w_hh = getattr(self, f"weight_ih_{s}"), getattr(self, f"weight_hh_{s}")
                if self.mode == "lstm":  # one MVM of [x_t, h_{t-1}] per step
                    out[s] = (torch.cat([w_ih, w_hh], dim=1).t()[None], 1)
                else:  # GRU: the candidate gate needs W_hn h on its own
                    out[f"{s}_ih"] = (w_ih.t()[None], 1)
                    out[f"{s}_hh"] = (w_hh.t()[None], 1)
        return out

    def _products(self, s: str):
        """Functions computing the gate pre-activations of one layer and direction."""
        train = self.training
        ctx = self._ctx
        w_ih, w_hh = getattr(self, f"weight_ih_{s}"), getattr(self, f"weight_hh_{s}")
        b_ih = getattr(self, f"bias_ih_{s}") if self.bias else None
        b_hh = getattr(self, f"bias_hh_{s}") if self.bias else None
        if train:
            def ih(x):
                return ctx.hwa.linear(x, w_ih, b_ih, ctx)

            def hh(h):
                return ctx.hwa.linear(h, w_hh, b_hh, ctx)

            def both(x, h):
                return ctx.hwa.linear(torch.cat([x, h], 1), torch.cat([w_ih, w_hh], 1),
                                      None if b_ih is None else b_ih + b_hh, ctx)
        else:
            def ih(x):
                y = self._mvm(x, f"{s}_ih")
                return y if b_ih is None else y + b_ih

            def hh(h):
                y = self._mvm(h, f"{s}_hh")
                return y if b_hh is None else y + b_hh

            def both(x, h):
                y = self._mvm(torch.cat([x, h], 1), s)
                return y if b_ih is None else y + (b_ih + b_hh)
        return ih, hh, both

    def _run_direction(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None,
                       s: str, reverse: bool):
        ih, hh, both = self._products(s)
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outs = [None] * x.shape[0]
        H = self.hidden_size
        for t in steps:
            if self.mode == "lstm":
                gates = both(x[t], h)
                i, f, g, o = gates.split(H, dim=1)
                i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
                c = f * c + i * torch.tanh(g)
                h = o * torch.tanh(c)
            else:
                gi, gh = ih(x[t]), hh(h)
                ir, iz, inn = gi.split(H, dim=1)
                hr, hz, hn = gh.split(H, dim=1)
                r = torch.sigmoid(ir + hr)
                z = torch.sigmoid(iz + hz)
                n = torch.tanh(inn + r * hn)
                h = (1 - z) * n + z * h
            outs[t] = h
        return torch.stack(outs), h, c

    def forward(self, input: torch.Tensor, hx: Any = None):
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise InputError(f"analog layer {self.layer_name!r}: PackedSequence inputs are not "
                             "supported; pad the batch and pass a tensor")
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first
                                                  else input)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise InputError(f"analog layer {self.layer_name!r}: input of shape "
                             f"{tuple(input.shape)} does not match input_size "
                             f"{self.input_size}")
        T, B, _ = x.shape
        n = self.num_layers * self.dirs
        zeros = x.new_zeros((n, B, self.hidden_size))
        if self.mode == "lstm":
            if hx is None:
                h0, c0 = zeros, zeros
            else:
                h0, c0 = hx
                if unbatched:
                    h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        else:
            h0 = zeros if hx is None else (hx.unsqueeze(1) if unbatched else hx)
            c0 = None
        layer_in = x
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.dirs):
                k = layer * self.dirs + d
                out, h, c = self._run_direction(layer_in, h0[k], None if c0 is None else c0[k],
                                                self._suffix(layer, d), reverse=bool(d))
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            layer_in = outs[0] if self.dirs == 1 else torch.cat(outs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        output = layer_in
        h_n = torch.stack(h_n)
        if unbatched:
            output, h_n = output[:, 0], h_n[:, 0]
        elif self.batch_first:
            output = output.transpose(0, 1)
        if self.mode == "lstm":
            c_n = torch.stack(c_n)
            if unbatched:
                c_n = c_n[:, 0]
            result = (output, (h_n, c_n))
        else:
            result = (output, h_n)
        _record(self, self.mode, (input,), output, steps=T, hidden_size=self.hidden_size,
                input_size=self.input_size)
        return result


class AnalogLSTM(_AnalogRNNBase):
    """``nn.LSTM`` on tiles: per step one MVM of [x_t, h_{t−1}] on [W_ih W_hh]ᵀ; gates are
    digital (torch)."""

    mode = "lstm"
    gates = 4


class AnalogGRU(_AnalogRNNBase):
    """``nn.GRU`` on tiles: per step one MVM each of x_t on W_ihᵀ and h_{t−1} on W_hhᵀ (the
    candidate gate needs W_hn h on its own); gates are digital (torch)."""

    mode = "gru"
    gates = 3


# -- attention ------------------------------------------------------------------------------------
class AnalogMultiheadAttention(AnalogModule):
    """``nn.MultiheadAttention`` with its input and output projections on tiles; the
    attention itself (scores, masks, softmax, weighted sum) is digital, as torch computes it.

    Parameter names are torch's (``in_proj_weight`` or ``q/k/v_proj_weight``,
    ``in_proj_bias``, ``bias_k``/``bias_v``, ``out_proj.weight``/``out_proj.bias``)."""

    def __init__(self, src: nn.MultiheadAttention, ctx: _Context, name: str) -> None:
        super().__init__()
        for attr in ("embed_dim", "kdim", "vdim", "num_heads", "dropout", "batch_first",
                     "head_dim", "_qkv_same_embed_dim", "add_zero_attn"):
            setattr(self, attr, getattr(src, attr))
        for pname in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight",
                      "in_proj_bias", "bias_k", "bias_v"):
            p = getattr(src, pname)
            if p is None:
                self.register_parameter(pname, None)
            else:
                setattr(self, pname, p)
        self.out_proj = nn.Linear(1, 1, bias=src.out_proj.bias is not None)
        self.out_proj.weight = src.out_proj.weight
        self.out_proj.bias = src.out_proj.bias
        self.out_proj.in_features = self.out_proj.out_features = self.embed_dim
        self._setup(ctx, name)

    def weight_matrices(self):
        if self._qkv_same_embed_dim:
            mats = {"in_proj": (self.in_proj_weight.t()[None], 1)}
        else:
            mats = {"q": (self.q_proj_weight.t()[None], 1), "k": (self.k_proj_weight.t()[None], 1),
                    "v": (self.v_proj_weight.t()[None], 1)}
        mats["out_proj"] = (self.out_proj.weight.t()[None], 1)
        return mats

    def _project(self, x: torch.Tensor, key: str, w: torch.Tensor, b: torch.Tensor | None,
                 cols: slice | None = None) -> torch.Tensor:
        """x (L, N, E_in) through matrix ``key``; ``cols`` selects outputs of a packed one."""
        if self.training:
            ww = w if cols is None else w[cols]
            bb = b if (b is None or cols is None) else b[cols]
            return self._ctx.hwa.linear(x, ww, bb, self._ctx)
        flat = x.reshape(-1, x.shape[-1])
        y = self._mvm(flat, key)
        if cols is not None:
            y = y[:, cols]
        if b is not None:
            y = y + (b if cols is None else b[cols])
        return y.reshape(*x.shape[:-1], y.shape[-1])

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        inputs = (query, key, value)
        is_batched = query.dim() == 3
        if self.batch_first and is_batched:
            query, key, value = (t.transpose(1, 0) for t in (query, key, value))
        if not is_batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        tgt_len, bsz, E = query.shape
        key_padding_mask = F._canonical_mask(
            mask=key_padding_mask, mask_name="key_padding_mask",
            other_type=F._none_or_dtype(attn_mask), other_name="attn_mask",
            target_type=query.dtype)
        if is_causal and attn_mask is None:
            raise InputError(f"{self.layer_name}: is_causal needs attn_mask, as in torch")
        attn_mask = F._canonical_mask(mask=attn_mask, mask_name="attn_mask", other_type=None,
                                      other_name="", target_type=query.dtype, check_other=False)
        E = self.embed_dim
        b = self.in_proj_bias
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value and not self.training:
                qkv = self._project(query, "in_proj", w, b)
                q, k, v = qkv.split(E, dim=-1)
            else:
                q = self._project(query, "in_proj", w, b, slice(0, E))
                k = self._project(key, "in_proj", w, b, slice(E, 2 * E))
                v = self._project(value, "in_proj", w, b, slice(2 * E, 3 * E))
        else:
            bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
            q = self._project(query, "q", self.q_proj_weight, bq)
            k = self._project(key, "k", self.k_proj_weight, bk)
            v = self._project(value, "v", self.v_proj_weight, bv)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.repeat(1, bsz, 1)])
            v = torch.cat([v, self.bias_v.repeat(1, bsz, 1)])
            if attn_mask is not None:
                attn_mask = F.pad(attn_mask, (0, 1))
            if key_padding_mask is not None:
                key_padding_mask = F.pad(key_padding_mask, (0, 1))
        H, hd = self.num_heads, self.head_dim
        q = q.reshape(tgt_len, bsz * H, hd).transpose(0, 1)
        k = k.reshape(k.shape[0], bsz * H, hd).transpose(0, 1)
        v = v.reshape(v.shape[0], bsz * H, hd).transpose(0, 1)
        if self.add_zero_attn:
            zeros = (bsz * H, 1, hd)
            k = torch.cat([k, k.new_zeros(zeros)], dim=1)
            v = torch.cat([v, v.new_zeros(zeros)], dim=1)
            if attn_mask is not None:
                attn_mask = F.pad(attn_mask, (0, 1))
            if key_padding_mask is not None:
                key_padding_mask = F.pad(key_padding_mask, (0, 1))
        src_len = k.shape[1]
        if key_padding_mask is not None:
            kpm = key_padding_mask.view(bsz, 1, 1, src_len).expand(-1, H, -1, -1).reshape(
                bsz * H, 1, src_len)
            attn_mask = kpm if attn_mask is None else attn_mask + kpm
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            scores = torch.bmm(q * (1.0 / math.sqrt(hd)), k.transpose(-2, -1))
            if attn_mask is not None:
                scores = scores + attn_mask
            weights = torch.softmax(scores, dim=-1)
            if dropout_p > 0:
                weights = F.dropout(weights, p=dropout_p)
            out = torch.bmm(weights, v)
        else:
            if attn_mask is not None and attn_mask.dim() == 3:
                attn_mask = attn_mask.view(bsz, H, -1, src_len)
            elif attn_mask is not None and attn_mask.dim() == 2:
                attn_mask = attn_mask.unsqueeze(0).unsqueeze(0)
            out = F.scaled_dot_product_attention(
                q.view(bsz, H, tgt_len, hd), k.view(bsz, H, src_len, hd),
                v.view(bsz, H, src_len, hd), attn_mask, dropout_p, False)
            out = out.reshape(bsz * H, tgt_len, hd)
            weights = None
        out = out.transpose(0, 1).contiguous().view(tgt_len * bsz, E)
        out = self._project(out, "out_proj", self.out_proj.weight, self.out_proj.bias)
        out = out.view(tgt_len, bsz, E)
        if need_weights:
            weights = weights.view(bsz, H, tgt_len, src_len)
            if average_attn_weights:
                weights = weights.mean(dim=1)
            if not is_batched:
                weights = weights.squeeze(0)
        if not is_batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(1, 0)
        _record(self, "attention", inputs, out, heads=H, src_len=src_len, tgt_len=tgt_len,
                embed_dim=E)
        return out, weights
