"""A small numpy-native layer graph: build a network without torch, run it exactly.

Nodes are kept in topological order. Weight nodes (linear, conv1d, conv2d, lstm, gru) own
matrices that a mapping puts on crossbars; every other node runs digitally. ``forward``
takes a ``matmul`` callback so that the same code runs the exact reference (``X @ W``) and
the mapped network (the tile engine): there is one implementation of every layer.

Layouts: inputs are (batch, ``*shape``) with channels first for convolutions ((C, H, W) or
(C, L)) and (T, features) for recurrent layers (batch first).

Values are checked where they enter: layer hyper-parameters (stride, padding, dilation,
groups, kernel sizes) and weight shapes when a layer is built, a negative batch-norm
variance, complex or non-numeric arrays; an empty batch gives an empty output. A layer that
turns finite inputs into NaN or infinity raises :class:`memsim.NumericalError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memsim._checks import check_int, real_array
from memsim.errors import ConfigError, InputError, NumericalError, StateError

__all__ = ["WEIGHT_OPS", "Graph", "Node", "im2col"]

WEIGHT_OPS = ("linear", "conv1d", "conv2d", "lstm", "gru")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity", "softmax", "gelu")
DIGITAL_OPS = (*ACTIVATIONS, "batchnorm", "maxpool2d", "avgpool2d", "global_avgpool",
               "flatten", "add", "last_step", "input", "external")

MatMul = Callable[[str, str, np.ndarray], np.ndarray]


@dataclass
class Node:
    """One layer. ``params`` are arrays (weights), ``attrs`` plain settings."""

    name: str
    op: str
    inputs: tuple[str, ...]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def matrices(self) -> list[tuple[str, np.ndarray]]:
        """The (key, matrix) pairs a mapping puts on crossbars: rows = inputs, cols = outputs.

        linear: Wᵀ (in × out). convolution: per group, (C_in/g · k…) × (C_out/g) in
        im2col order (channel, then kernel positions). LSTM: [W_ih; W_hh]ᵀ, one matrix for
        the concatenated [x_t, h_{t−1}] (in + H) × 4H. GRU: W_ihᵀ and W_hhᵀ separately
        (its candidate gate needs the hidden part on its own).
        """
        p = self.params
        if self.op == "linear":
            return [("w", p["weight"].T)]
        if self.op in ("conv1d", "conv2d"):
            w = p["weight"]
            g = self.attrs["groups"]
            per = w.shape[0] // g
            return [(f"g{k}", w[k * per:(k + 1) * per].reshape(per, -1).T) for k in range(g)]
        if self.op == "lstm":
            return [("w", np.concatenate([p["weight_ih"], p["weight_hh"]], axis=1).T)]
        if self.op == "gru":
            return [("ih", p["weight_ih"].T), ("hh", p["weight_hh"].T)]
        return []


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _checked_pair(v: Any, what: str, lo: int) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``lo`` (ConfigError naming ``what``)."""
    if isinstance(v, list | tuple):
        if len(v) != 2:
            raise ConfigError(f"{what} = {v!r} must be an integer or a pair of integers")
        return (check_int(v[0], what, lo=lo), check_int(v[1], what, lo=lo))
    k = check_int(v, what, lo=lo)
    return (k, k)


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """(B, C, H, W) → (B·OH·OW, C·KH·KW) patches in (channel, kh, kw) order, and OH, OW."""
    b, c, h, w = x.shape
    kh, kw = kernel
    ph, pw = padding
    sh, sw = stride
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    oh = (h + 2 * ph - eh) // sh + 1
    ow = (w + 2 * pw - ew) // sw + 1
    if oh <= 0 or ow <= 0:
        raise InputError(f"kernel {kernel} (dilation {dilation}) is larger than the padded "
                         f"input {h + 2 * ph}x{w + 2 * pw}")
    win = np.lib.stride_tricks.sliding_window_view(xp, (eh, ew), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :oh, :ow]  # (B, C, OH, OW, KH, KW)
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(b * oh * ow, c * kh * kw)
    return cols, oh, ow


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _pool(x: np.ndarray, kernel, stride, padding, mode: str) -> np.ndarray:
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride if stride is not None else kernel)
    ph, pw = _pair(padding)
    fill = -np.inf if mode == "max" else 0.0
    if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
        raise InputError(f"pooling kernel {(kh, kw)} is larger than the padded input "
                         f"{x.shape[2] + 2 * ph}x{x.shape[3] + 2 * pw}")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill) if ph or pw \
        else x
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return win.max(axis=(4, 5)) if mode == "max" else win.mean(axis=(4, 5))


class Graph:
    """A layer graph with one input and one output.

    Build with the methods below; each returns the new node's name::

        g = Graph(input_shape=(1, 8, 8))
        h = g.conv2d(g.input, weight, bias, padding=1)
        h = g.maxpool2d(g.relu(h), 2)
        g.set_output(g.linear(g.flatten(h), w_fc, b_fc))
    """

    input = "input"

    def __init__(self, input_shape: tuple[int, ...], name: str = "graph") -> None:
        if not isinstance(input_shape, list | tuple) or not input_shape:
            raise ConfigError(f"input_shape {input_shape!r} must be a tuple of positive sizes")
        self.name = name
        self.input_shape = tuple(check_int(d, f"{name}: input_shape entry", lo=1)
                                 for d in input_shape)
        self.nodes: dict[str, Node] = {"input": Node("input", "input", ())}
        self.output: str | None = None

    # -- building -----------------------------------------------------------------------------
    def _add(self, op: str, inputs: tuple[str, ...], name: str | None, params=None,
             attrs=None) -> str:
        for i in inputs:
            if i not in self.nodes:
                raise ConfigError(f"{self.name}: node {name or op!r} takes input {i!r}, which "
                                  f"is not in the graph")
        if name is None:
            k = sum(1 for n in self.nodes.values() if n.op == op)
            name = f"{op}{k}"
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.name}: node name {name!r} must be a non-empty string")
        if name in self.nodes:
            raise ConfigError(f"{self.name}: a node named {name!r} already exists")
        params = {k: real_array(v, f"{self.name}: {name}.{k}") for k, v in
                  (params or {}).items() if v is not None}
        for k, v in params.items():
            if not np.all(np.isfinite(v)):
                raise InputError(f"{self.name}: {name}.{k} contains NaN or infinite values")
        self.nodes[name] = Node(name, op, inputs, params, dict(attrs or {}))
        return name

    def _weight(self, weight: Any, ndim: int, what: str) -> np.ndarray:
        w = real_array(weight, f"{self.name}: {what}")
        if w.ndim != ndim or 0 in w.shape:
            raise InputError(f"{self.name}: {what} must be a non-empty {ndim}-D array, got "
                             f"shape {w.shape}")
        return w

    def _bias(self, bias: Any, size: int, what: str) -> np.ndarray | None:
        if bias is None:
            return None
        b = real_array(bias, f"{self.name}: {what}")
        if b.shape != (size,):
            raise InputError(f"{self.name}: {what} must have shape ({size},), got {b.shape}")
        return b

    def linear(self, x: str, weight, bias=None, *, name: str | None = None) -> str:
        label = f"linear {name}" if name else "linear"
        w = self._weight(weight, 2, f"{label} weight (out, in)")
        b = self._bias(bias, w.shape[0], f"{label} bias")
        return self._add("linear", (x,), name, {"weight": w, "bias": b})

    def _conv(self, op: str, x: str, weight, bias, stride, padding, dilation, groups,
              name: str | None) -> str:
        one_d = op == "conv1d"
        label = f"{op} {name}" if name else op
        g = check_int(groups, f"{self.name}: {label} groups", lo=1)
        w = self._weight(weight, 3 if one_d else 4,
                         f"{label} weight (C_out, C_in/groups, {'k' if one_d else 'kh, kw'})")
        if w.shape[0] % g:
            raise ConfigError(f"{self.name}: {label} has {w.shape[0]} output channels, not "
                              f"divisible by groups = {g}")
        b = self._bias(bias, w.shape[0], f"{label} bias")
        if one_d:
            attrs = {"stride": (1, check_int(stride, f"{self.name}: {label} stride", lo=1)),
                     "padding": (0, check_int(padding, f"{self.name}: {label} padding", lo=0)),
                     "dilation": (1, check_int(dilation, f"{self.name}: {label} dilation",
                                               lo=1))}
        else:
            attrs = {"stride": _checked_pair(stride, f"{self.name}: {label} stride", 1),
                     "padding": _checked_pair(padding, f"{self.name}: {label} padding", 0),
                     "dilation": _checked_pair(dilation, f"{self.name}: {label} dilation", 1)}
        return self._add(op, (x,), name, {"weight": w, "bias": b}, {**attrs, "groups": g})

    def conv2d(self, x: str, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
               name: str | None = None) -> str:
        return self._conv("conv2d", x, weight, bias, stride, padding, dilation, groups, name)

    def conv1d(self, x: str, weight, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
               name: str | None = None) -> str:
        return self._conv("conv1d", x, weight, bias, stride, padding, dilation, groups, name)

    def batchnorm(self, x: str, mean, var, weight=None, bias=None, *, eps: float = 1e-5,
                  name: str | None = None) -> str:
        label = f"batchnorm {name}" if name else "batchnorm"
        mean = real_array(mean, f"{self.name}: {label} mean")
        if mean.ndim != 1 or mean.size == 0:
            raise InputError(f"{self.name}: {label} mean must be a non-empty 1-D array, got "
                             f"shape {mean.shape}")
        n = mean.size
        var = self._bias(var, n, f"{label} var")
        if var is None:
            raise InputError(f"{self.name}: {label} needs the running variance")
        if np.any(var < 0):
            raise InputError(f"{self.name}: {label} var has {int(np.sum(var < 0))} negative "
                             f"value(s) (min {var.min():.4g}); a variance is >= 0")
        if isinstance(eps, bool) or not isinstance(eps, int | float) or \
                not np.isfinite(eps) or eps <= 0:
            raise ConfigError(f"{self.name}: {label} eps = {eps!r} must be a number > 0")
        weight = np.ones(n) if weight is None else self._bias(weight, n, f"{label} weight")
        bias = np.zeros(n) if bias is None else self._bias(bias, n, f"{label} bias")
        return self._add("batchnorm", (x,), name,
                         {"mean": mean, "var": var, "weight": weight, "bias": bias},
                         {"eps": float(eps)})

    def activation(self, x: str, kind: str, *, name: str | None = None) -> str:
        if kind not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {kind!r}; known: {list(ACTIVATIONS)}")
        return self._add(kind, (x,), name)

    def relu(self, x: str, *, name: str | None = None) -> str:
        return self.activation(x, "relu", name=name)

    def _pool(self, op: str, x: str, kernel, stride, padding, name) -> str:
        label = f"{op} {name}" if name else op
        k = _checked_pair(kernel, f"{self.name}: {label} kernel", 1)
        st = k if stride is None else _checked_pair(stride, f"{self.name}: {label} stride", 1)
        pad = _checked_pair(padding, f"{self.name}: {label} padding", 0)
        if pad[0] > k[0] // 2 or pad[1] > k[1] // 2:
            raise ConfigError(f"{self.name}: {label} padding = {padding!r} is more than half "
                              f"the kernel {k}; a window would see only padding")
        return self._add(op, (x,), name, attrs={"kernel": k, "stride": st, "padding": pad})

    def maxpool2d(self, x: str, kernel, stride=None, padding=0, *, name=None) -> str:
        return self._pool("maxpool2d", x, kernel, stride, padding, name)

    def avgpool2d(self, x: str, kernel, stride=None, padding=0, *, name=None) -> str:
        return self._pool("avgpool2d", x, kernel, stride, padding, name)

    def global_avgpool(self, x: str, *, name=None) -> str:
        return self._add("global_avgpool", (x,), name)

    def flatten(self, x: str, *, name=None) -> str:
        return self._add("flatten", (x,), name)

    def add(self, a: str, b: str, *, name=None) -> str:
        return self._add("add", (a, b), name)

    def lstm(self, x: str, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
             name=None) -> str:
        """One LSTM layer (PyTorch gate order i, f, g, o); returns the sequence (B, T, H)."""
        return self._recurrent("lstm", 4, x, weight_ih, weight_hh, bias_ih, bias_hh, name)

    def gru(self, x: str, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
            name=None) -> str:
        """One GRU layer (PyTorch gate order r, z, n); returns the sequence (B, T, H)."""
        return self._recurrent("gru", 3, x, weight_ih, weight_hh, bias_ih, bias_hh, name)

    def _recurrent(self, op: str, gates: int, x: str, weight_ih, weight_hh, bias_ih, bias_hh,
                   name) -> str:
        label = f"{op} {name}" if name else op
        w_ih = self._weight(weight_ih, 2, f"{label} weight_ih")
        w_hh = self._weight(weight_hh, 2, f"{label} weight_hh")
        if w_ih.shape[0] != gates * w_hh.shape[1] or w_hh.shape[0] != w_ih.shape[0]:
            raise InputError(f"{self.name}: {op.upper()} weights must be ({gates}H, in) and "
                             f"({gates}H, H), got {w_ih.shape} and {w_hh.shape}")
        b_ih = self._bias(bias_ih, w_ih.shape[0], f"{label} bias_ih")
        b_hh = self._bias(bias_hh, w_ih.shape[0], f"{label} bias_hh")
        return self._add(op, (x,), name, {"weight_ih": w_ih, "weight_hh": w_hh,
                                           "bias_ih": b_ih, "bias_hh": b_hh})

    def last_step(self, x: str, *, name=None) -> str:
        """(B, T, H) → (B, H): the last time step of a sequence."""
        return self._add("last_step", (x,), name)

    def external(self, inputs: tuple[str, ...], fn: Callable, description: str, *,
                 name=None) -> str:
        """A digital operation run by an outside function (e.g. an unmapped torch module)."""
        return self._add("external", tuple(inputs), name,
                         attrs={"fn": fn, "description": description})

    def set_output(self, node: str) -> None:
        if node not in self.nodes:
            raise ConfigError(f"{self.name}: output {node!r} is not a node of the graph")
        self.output = node

    # -- inspection -----------------------------------------------------------------------------
    def weight_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.op in WEIGHT_OPS]

    def digital_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.op not in WEIGHT_OPS and n.op != "input"]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample output shape of every node (from one exact forward of a zero input)."""
        out: dict[str, tuple[int, ...]] = {}
        self.forward(np.zeros((1, *self.input_shape)), record=out)
        return out

    def fold_batchnorm(self) -> Graph:
        """A copy where each batchnorm that follows a linear/conv layer (its only consumer) is
        folded into that layer's weights and bias: W' = W γ/√(σ²+ε), b' = (b − μ)γ/√(σ²+ε) + β.
        """
        consumers: dict[str, int] = {}
        for n in self.nodes.values():
            for i in n.inputs:
                consumers[i] = consumers.get(i, 0) + 1
        new = Graph(self.input_shape, self.name)
        rename: dict[str, str] = {}
        folded: set[str] = set()
        nodes = list(self.nodes.values())
        for k, n in enumerate(nodes):
            if n.op == "input" or n.name in folded:
                continue
            params = {key: v.copy() for key, v in n.params.items()}
            nxt = nodes[k + 1] if k + 1 < len(nodes) else None
            if (n.op in ("linear", "conv1d", "conv2d") and nxt is not None
                    and nxt.op == "batchnorm" and nxt.inputs == (n.name,)
                    and consumers.get(n.name, 0) == 1):
                bn = nxt.params
                s = bn["weight"] / np.sqrt(bn["var"] + nxt.attrs["eps"])
                w = params["weight"]
                params["weight"] = w * s.reshape(-1, *([1] * (w.ndim - 1)))
                b = params.get("bias", np.zeros(w.shape[0]))
                params["bias"] = (b - bn["mean"]) * s + bn["bias"]
                folded.add(nxt.name)
                rename[nxt.name] = n.name
            inputs = tuple(rename.get(i, i) for i in n.inputs)
            new.nodes[n.name] = Node(n.name, n.op, inputs, params, dict(n.attrs))
        new.output = rename.get(self.output, self.output) if self.output else None
        return new

    # -- running ----------------------------------------------------------------------------------
    def forward(self, x: np.ndarray, matmul: MatMul | None = None,
                record: dict | None = None) -> np.ndarray:
        """Run the graph on a batch. ``matmul(node, key, X) -> X @ M`` does every weight
        matrix product (default: exact float64); biases and all other layers are digital."""
        if self.output is None:
            raise StateError(f"{self.name}: no output set (call set_output)")
        x = real_array(x, f"{self.name}: input")
        if x.ndim == len(self.input_shape) and x.shape == self.input_shape:
            raise InputError(f"{self.name}: input of shape {x.shape} is one sample; inputs "
                             f"are batches (batch, *{self.input_shape}): use x[None]")
        if x.shape[1:] != self.input_shape:
            raise InputError(f"{self.name}: input of shape {x.shape} does not match the "
                             f"network's per-sample input shape {self.input_shape}")
        if not np.all(np.isfinite(x)):
            n = int(np.count_nonzero(~np.isfinite(x)))
            raise InputError(f"{self.name}: input contains {n} NaN or infinite value(s)")
        if x.shape[0] == 0:  # an empty batch: an empty output of the right shape
            out_shape = self._out_shape()
            if record is not None:
                record.update(self.shapes())
            return np.empty((0, *out_shape))
        mats = {}

        def exact(node: str, key: str, a: np.ndarray) -> np.ndarray:
            if (node, key) not in mats:
                mats[(node, key)] = dict(self.nodes[node].matrices())[key]
            return a @ mats[(node, key)]

        mm = matmul or exact
        values: dict[str, np.ndarray] = {"input": x}
        for n in self.nodes.values():
            if n.op == "input":
                continue
            args = [values[i] for i in n.inputs]
            values[n.name] = self._run(n, args, mm)
            self._check_finite(n, values[n.name])
            if record is not None:
                record[n.name] = values[n.name].shape[1:]
        return values[self.output]

    def _out_shape(self) -> tuple[int, ...]:
        assert self.output is not None
        return self.shapes()[self.output]

    def _check_finite(self, n: Node, value: np.ndarray) -> None:
        """Inputs were finite: a NaN or infinity now was made inside layer ``n``."""
        finite = np.isfinite(value)
        if finite.all():
            return
        bad = int(value.size - np.count_nonzero(finite))
        hint = ("; on crossbar tiles this means the simulated noise or drift is far too "
                "large for the arithmetic (check noise_scale and the device and tile cards)"
                if n.op in WEIGHT_OPS else "")
        raise NumericalError(f"{self.name}: layer {n.name!r} ({n.op}) produced {bad} NaN or "
                             f"infinite value(s) of {value.size} from finite inputs{hint}")

    @staticmethod
    def _run(n: Node, args: list[np.ndarray], mm: MatMul) -> np.ndarray:
        a = args[0]
        op, p = n.op, n.params
        if op == "linear":
            if a.shape[-1] != p["weight"].shape[1]:
                raise InputError(f"node {n.name!r}: input has {a.shape[-1]} features but the "
                                 f"weight {p['weight'].shape} expects {p['weight'].shape[1]}")
            lead = a.shape[:-1]
            y = mm(n.name, "w", a.reshape(-1, a.shape[-1]))
            y = y.reshape(*lead, -1)
            return y + p["bias"] if "bias" in p else y
        if op in ("conv1d", "conv2d"):
            one_d = op == "conv1d"
            x4 = a[:, :, None, :] if one_d else a
            b, c = x4.shape[:2]
            w = p["weight"]
            g = n.attrs["groups"]
            cin = c // g
            if c != w.shape[1] * g:
                raise InputError(f"node {n.name!r}: input has {c} channels but the weight "
                                 f"{w.shape} with groups={g} expects {w.shape[1] * g}")
            per = w.shape[0] // g
            k = (1, w.shape[2]) if one_d else (w.shape[2], w.shape[3])
            outs = []
            for gi in range(g):
                cols, oh, ow = im2col(x4[:, gi * cin:(gi + 1) * cin], k, n.attrs["stride"],
                                      n.attrs["padding"], n.attrs["dilation"])
                y = mm(n.name, f"g{gi}", cols).reshape(b, oh, ow, per)
                outs.append(y)
            y = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
            if "bias" in p:
                y = y + p["bias"].reshape(1, -1, 1, 1)
            return y[:, :, 0, :] if one_d else y
        if op == "batchnorm":
            shape = (1, -1) + (1,) * (a.ndim - 2)
            s = p["weight"] / np.sqrt(p["var"] + n.attrs["eps"])
            return (a - p["mean"].reshape(shape)) * s.reshape(shape) + p["bias"].reshape(shape)
        if op == "relu":
            return np.maximum(a, 0.0)
        if op == "tanh":
            return np.tanh(a)
        if op == "sigmoid":
            return _sigmoid(a)
        if op == "gelu":
            from scipy.special import erf

            return 0.5 * a * (1.0 + erf(a / np.sqrt(2.0)))
        if op == "softmax":
            e = np.exp(a - a.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if op == "identity":
            return a
        if op == "maxpool2d":
            return _pool(a, n.attrs["kernel"], n.attrs["stride"], n.attrs["padding"], "max")
        if op == "avgpool2d":
            return _pool(a, n.attrs["kernel"], n.attrs["stride"], n.attrs["padding"], "avg")
        if op == "global_avgpool":
            return a.mean(axis=tuple(range(2, a.ndim)), keepdims=True)
        if op == "flatten":
            return a.reshape(a.shape[0], -1)
        if op == "add":
            return a + args[1]
        if op == "last_step":
            return a[:, -1]
        if op == "lstm":
            return Graph._lstm(n, a, mm)
        if op == "gru":
            return Graph._gru(n, a, mm)
        if op == "external":
            return real_array(n.attrs["fn"](*args), f"output of layer {n.name!r}")
        raise ConfigError(f"node {n.name!r}: unknown op {op!r}")  # pragma: no cover

    @staticmethod
    def _lstm(n: Node, a: np.ndarray, mm: MatMul) -> np.ndarray:
        p = n.params
        b_sz, steps, _ = a.shape
        hidden = p["weight_hh"].shape[1]
        bias = p.get("bias_ih", 0.0) + p.get("bias_hh", 0.0)
        h = np.zeros((b_sz, hidden))
        c = np.zeros((b_sz, hidden))
        out = np.empty((b_sz, steps, hidden))
        for t in range(steps):  # a recurrence: one MVM per step for the whole batch
            z = mm(n.name, "w", np.concatenate([a[:, t], h], axis=1)) + bias
            i, f, g, o = np.split(z, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            out[:, t] = h
        return out

    @staticmethod
    def _gru(n: Node, a: np.ndarray, mm: MatMul) -> np.ndarray:
        p = n.params
        b_sz, steps, _ = a.shape
        hidden = p["weight_hh"].shape[1]
        b_ih = p.get("bias_ih", np.zeros(3 * hidden))
        b_hh = p.get("bias_hh", np.zeros(3 * hidden))
        h = np.zeros((b_sz, hidden))
        out = np.empty((b_sz, steps, hidden))
        for t in range(steps):
            gi = mm(n.name, "ih", a[:, t]) + b_ih
            gh = mm(n.name, "hh", h) + b_hh
            r = _sigmoid(gi[:, :hidden] + gh[:, :hidden])
            z = _sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
            cand = np.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
            h = (1 - z) * cand + z * h
            out[:, t] = h
        return out
