"""Recording one batch of a converted model: the description the chip simulates.

While :func:`record` runs a forward, a ``TorchFunctionMode`` sees every torch function the
user's code calls and which tensors flow into and out of it; the analog modules report their
tile products themselves. The result is a :class:`~memsim.mapping.description.NetworkDescription`
in dataflow order: analog layers (matrices, tiles, MVMs per inference) and digital nodes
(operation, output size, operation count). Because the record is of what actually ran, in-place
ops, Python control flow and any layer type are seen as torch executed them.

Digital operation counts are estimates per element (stated in :data:`OP_COSTS`); views and
reshapes cost nothing and are removed; nodes that do not lead to the output (shape arithmetic)
are dropped. Unknown functions count one operation per output element and are listed in the
description's notes.

A user's module that knows its own digital cost says so with a method
``memsim_digital_cost(inputs, output, batch) -> {"op", "ops", "ldpu_items", "attrs"}`` (ops
and values written per inference; e.g. the B-spline basis of
:class:`memsim.workloads.kan.BSplineBasis`): it is recorded as one digital node with that
count, and the torch functions inside it are not recorded one by one.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from memsim.mapping.description import NetworkDescription, NodeDesc, make_layer

__all__ = ["OP_COSTS", "record"]

#: function name -> (description op, digital operations per output element). An estimate:
#: one op per element for comparisons and additions, four for a piecewise-polynomial
#: transcendental (sigmoid, tanh, GELU, exp), five for a softmax or a normalisation.
OP_COSTS: dict[str, tuple[str, float]] = {}
for _n in ("relu", "relu_", "relu6", "clamp", "clamp_", "clamp_min", "clamp_min_", "hardtanh",
           "hardtanh_", "leaky_relu", "leaky_relu_", "threshold", "threshold_", "abs", "neg"):
    OP_COSTS[_n] = ("relu", 1.0)
for _n in ("sigmoid", "sigmoid_", "tanh", "tanh_", "gelu", "silu", "silu_", "softplus",
           "exp", "log", "erf", "hardswish", "hardsigmoid", "mish", "elu", "selu", "sqrt",
           "rsqrt", "pow", "__pow__"):
    OP_COSTS[_n] = ("sigmoid" if "sig" in _n else "tanh" if "tanh" in _n else
                    "gelu" if _n == "gelu" else "nonlinear", 4.0)
for _n in ("softmax", "log_softmax", "_softmax"):
    OP_COSTS[_n] = ("softmax", 5.0)
for _n in ("batch_norm",):
    OP_COSTS[_n] = ("batchnorm", 2.0)
for _n in ("layer_norm", "group_norm", "instance_norm", "rms_norm"):
    OP_COSTS[_n] = ("layernorm", 5.0)
for _n in ("add", "add_", "__add__", "__iadd__", "__radd__", "sub", "sub_", "__sub__",
           "__isub__", "__rsub__", "mul", "mul_", "__mul__", "__imul__", "__rmul__", "div",
           "div_", "__truediv__", "__itruediv__", "__rtruediv__", "addcmul", "lerp", "where",
           "maximum", "minimum"):
    OP_COSTS[_n] = ("add", 1.0)
_ZERO = {"view", "reshape", "flatten", "unflatten", "transpose", "permute", "contiguous",
         "__getitem__", "squeeze", "unsqueeze", "expand", "expand_as", "split", "chunk",
         "unbind", "detach", "to", "clone", "float", "double", "half", "type", "view_as",
         "reshape_as", "t", "narrow", "select", "dropout", "dropout_", "alpha_dropout",
         "feature_alpha_dropout", "dropout1d", "dropout2d", "identity", "movedim",
         "swapaxes", "repeat", "tile", "pad", "flip", "roll", "stack", "cat", "concat",
         "__setitem__", "copy_", "zero_", "fill_", "masked_fill", "masked_fill_",
         "requires_grad_", "cpu", "cuda", "new_zeros", "new_ones", "zeros_like",
         "ones_like", "full_like", "empty_like"}
_POOL = {"max_pool1d": "maxpool1d", "max_pool2d": "maxpool2d", "avg_pool1d": "avgpool1d",
         "avg_pool2d": "avgpool2d", "max_pool1d_with_indices": "maxpool1d",
         "max_pool2d_with_indices": "maxpool2d"}
_GLOBAL = {"adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d", "mean", "sum", "amax", "max", "logsumexp"}
_MATMUL = {"matmul", "bmm", "mm", "baddbmm", "__matmul__", "einsum",
           "scaled_dot_product_attention"}


def _pool2d_attrs(fname: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Kernel, stride and padding of a recorded 2-d pooling call, as a memsim Graph records
    them (the chip streams input rows through the pooling with them); {} when they cannot be
    read or the pooling is dilated (the chip then waits for the whole input)."""
    def arg(i: int, name: str, default: Any = None) -> Any:
        return args[i] if len(args) > i else kwargs.get(name, default)

    def pair(v: Any) -> tuple[int, int] | None:
        v = v.tolist() if isinstance(v, torch.Tensor) else v
        if isinstance(v, int):
            return (v, v)
        if isinstance(v, list | tuple) and len(v) in (1, 2) and all(isinstance(e, int)
                                                                      for e in v):
            return (v[0], v[-1])
        return None

    kernel = pair(arg(1, "kernel_size"))
    stride_arg = arg(2, "stride")
    stride = kernel if stride_arg is None or stride_arg == [] or stride_arg == () \
        else pair(stride_arg)
    padding = pair(arg(3, "padding", 0))
    dilation = pair(arg(4, "dilation", 1)) if fname.startswith("max") else (1, 1)
    if kernel is None or stride is None or padding is None or dilation != (1, 1):
        return {}
    return {"kernel": kernel, "stride": stride, "padding": padding}


def _tensors(obj: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, list | tuple):
        for o in obj:
            out.extend(_tensors(o))
    elif isinstance(obj, dict):
        for o in obj.values():
            out.extend(_tensors(o))
    return out


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str]
    shape: tuple[int, ...]
    ops: float = 0.0
    attrs: dict[str, Any] = field(default_factory=dict)
    layer: Any = None  # (module, key) of an analog product
    mvms: int = 0


class Recorder(TorchFunctionMode):
    """Sees every torch function of one forward (see the module docstring)."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch
        self.nodes: dict[str, _Node] = {}
        self.producer: dict[int, str] = {}
        self.keep: list[torch.Tensor] = []  # keeps ids unique while recording
        self.paused = 0
        self.counter: dict[str, int] = {}
        self.layer_nodes: dict[tuple[int, str], str] = {}
        self.unknown: set[str] = set()

    # -- bookkeeping ------------------------------------------------------------------------
    def _name(self, base: str) -> str:
        k = self.counter.get(base, 0)
        self.counter[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def _inputs(self, tensors: list[torch.Tensor]) -> list[str]:
        out = []
        for t in tensors:
            p = self.producer.get(id(t))
            if p is not None and p not in out:
                out.append(p)
        return out

    def _produce(self, tensors: list[torch.Tensor], name: str) -> None:
        for t in tensors:
            self.producer[id(t)] = name
            self.keep.append(t)

    def _per_inference_shape(self, t: torch.Tensor) -> tuple[int, ...]:
        shape = tuple(int(s) for s in t.shape)
        if shape and shape[0] == self.batch:
            return shape[1:]
        return (int(t.numel()) // max(1, self.batch),)

    def mark_input(self, tensors: list[torch.Tensor]) -> None:
        self.nodes["input"] = _Node("input", "input", [], self._per_inference_shape(tensors[0]))
        self._produce(tensors, "input")

    # -- analog layers ------------------------------------------------------------------------
    @contextlib.contextmanager
    def paused_section(self) -> Iterator[None]:
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    def enter(self, module: Any, args: Any) -> None:
        self.paused += 1

    def leave(self, module: Any, args: Any, output: Any) -> None:
        self.paused -= 1

    def leave_digital(self, module: Any, args: Any, output: Any) -> None:
        """A module with its own ``memsim_digital_cost`` finished: one digital node."""
        self.paused -= 1
        if self.paused:
            return
        ins = self._inputs(_tensors(args))
        outs = _tensors(output)
        if not ins or not outs:
            return
        cost = module.memsim_digital_cost(args, output, self.batch)
        attrs = dict(cost.get("attrs", {}))
        if "ldpu_items" in cost:
            attrs["ldpu_items"] = float(cost["ldpu_items"])
        op = str(cost["op"])
        name = self._name(op)
        self.nodes[name] = _Node(name, op, ins, self._per_inference_shape(outs[0]),
                                 ops=float(cost["ops"]), attrs=attrs)
        self._produce(outs, name)

    def layer(self, module: Any, op: str, inputs: tuple, output: torch.Tensor,
              **attrs: Any) -> None:
        """An analog module finished: one node for the module (its products merged)."""
        if self.paused > 1:  # inside another analog module
            return
        name = module.layer_name
        node_name = self.layer_nodes.get((id(module), op))
        ins = self._inputs(_tensors(inputs))
        if node_name is None:
            node_name = self._name(name)
            self.layer_nodes[(id(module), op)] = node_name
            first = _tensors(inputs)[0]
            attrs["in_shape"] = self._per_inference_shape(first)
            self.nodes[node_name] = _Node(node_name, op, ins, self._per_inference_shape(output),
                                          attrs=dict(attrs), layer=module)
        else:
            node = self.nodes[node_name]
            node.inputs += [i for i in ins if i not in node.inputs]
        self._produce(_tensors(output), node_name)

    # -- digital functions ------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.paused:
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        outs = _tensors(out)
        if not outs:
            return out
        fname = getattr(func, "__name__", str(func))
        attrs: dict[str, Any] = {}
        ins_t = _tensors(args) + _tensors(kwargs)
        ins = self._inputs(ins_t)
        if not ins:  # constants (parameters, new tensors): not part of the dataflow
            return out
        if fname in _ZERO or (fname.endswith("_") and fname[:-1] in _ZERO):
            op, ops = ("identity", 0.0)
        elif fname in OP_COSTS:
            op, per = OP_COSTS[fname]
            ops = per * float(outs[0].numel())
        elif fname in _POOL:
            op = _POOL[fname]
            k = args[1] if len(args) > 1 else kwargs.get("kernel_size")
            kk = int(np.prod(k)) if k is not None else 1
            ops = float(outs[0].numel()) * kk
            if op.endswith("2d"):
                attrs = _pool2d_attrs(fname, args, kwargs)
        elif fname in _GLOBAL:
            op, ops = "global_avgpool", float(ins_t[0].numel())
        elif fname in _MATMUL:
            op = "matmul"
            if fname == "scaled_dot_product_attention":
                q, k = ins_t[0], ins_t[1]
                ops = 4.0 * q.numel() * k.shape[-2] + 5.0 * q.numel() / q.shape[-1] \
                    * k.shape[-2]
            else:
                inner = ins_t[0].shape[-1] if ins_t else 1
                ops = 2.0 * float(outs[0].numel()) * inner
        else:
            op, ops = "external", float(outs[0].numel())
            self.unknown.add(fname)
        name = self._name(fname.strip("_") or "op")
        self.nodes[name] = _Node(name, op, ins, self._per_inference_shape(outs[0]),
                                 ops=ops / max(1, self.batch), attrs=attrs)
        self._produce(outs, name)
        return out

    # -- the description -------------------------------------------------------------------------
    def describe(self, output: Any, tile: Any, name: str) -> NetworkDescription:
        outs = _tensors(output)
        if not outs or id(outs[0]) not in self.producer:
            raise ValueError("the recorded model returned no tensor computed from its input")
        out_name = self.producer[id(outs[0])]
        nodes = self.nodes
        # views and reshapes: consumers read the view's input directly
        alias: dict[str, str] = {}

        def resolve(n: str) -> str:
            while n in alias:
                n = alias[n]
            return n

        for n in list(nodes):
            node = nodes[n]
            if node.op == "identity" and len(node.inputs) == 1:
                alias[n] = node.inputs[0]
        out_name = resolve(out_name)
        for node in nodes.values():
            node.inputs = list(dict.fromkeys(resolve(i) for i in node.inputs))
        # keep what leads to the output
        live = {out_name}
        for n in reversed(list(nodes)):
            if n in live:
                live.update(nodes[n].inputs)
        order = [n for n in nodes if n in live and n not in alias]
        desc_nodes: dict[str, NodeDesc] = {}
        shapes = {n: nodes[n].shape for n in order}
        for n in order:
            node = nodes[n]
            if node.layer is not None:
                desc_nodes[n] = _layer_desc(node, shapes, tile)
            else:
                op = "concat" if node.op == "identity" else node.op
                desc_nodes[n] = NodeDesc(n, op if n != "input" else "input",
                                         tuple(node.inputs), node.shape, dict(node.attrs),
                                         None if n == "input" else node.ops)
        notes = []
        if self.unknown:
            notes.append("digital work of functions memsim does not know "
                         f"({', '.join(sorted(self.unknown))}) estimated as 1 op per output "
                         "element")
        return NetworkDescription(name, nodes["input"].shape, desc_nodes, out_name, tile, notes)


def _layer_desc(node: _Node, shapes: dict[str, tuple[int, ...]], tile: Any):
    module = node.layer
    mats = []
    unit = 1
    for key, (m, u) in module.weight_matrices().items():
        g, r, c = m.shape
        unit = u
        if g == 1:
            mats.append((key, (r, c)))
        else:
            mats.extend((f"{key}.g{i}", (r, c)) for i in range(g))
    op = node.op
    attrs = dict(node.attrs)
    in_shape = tuple(attrs.pop("in_shape", ()))
    mvms = None
    if op in ("lstm", "gru"):
        mvms = int(attrs.get("steps", 1))
    elif op == "attention":  # projections on tiles; scores, softmax, weighted sum digital
        op = "linear"
        L, S, E = (int(attrs.get(k, 1)) for k in ("tgt_len", "src_len", "embed_dim"))
        mvms = L
        digital = 4.0 * L * S * E + 5.0 * int(attrs.get("heads", 1)) * L * S
        desc = make_layer(node.name, op, tuple(node.inputs), in_shape, node.shape, mats, tile,
                          kernel_positions=unit, attrs=attrs, mvms=mvms)
        return dataclasses.replace(desc, digital_ops=digital)
    elif op.startswith("conv"):
        mvms = int(np.prod(node.shape[1:])) if len(node.shape) > 1 else 1
    else:
        mvms = int(np.prod(in_shape[:-1])) if len(in_shape) > 1 else 1
    return make_layer(node.name, op, tuple(node.inputs), in_shape, node.shape, mats, tile,
                      kernel_positions=unit, attrs=attrs, mvms=mvms)


def record(model: torch.nn.Module, x: Any, ctx: Any, name: str) -> NetworkDescription:
    """Run ``x`` (one batch) through ``model`` and describe what ran."""
    inputs = _tensors(x)
    if not inputs:
        raise ValueError("record(model, x): x must be a tensor (or a tuple of tensors)")
    batch = int(inputs[0].shape[0]) if inputs[0].ndim else 1
    rec = Recorder(batch)
    rec.mark_input(inputs)
    ctx.recorder = rec
    from memsim.analog.layers import AnalogModule

    hooks = []
    for m in model.modules():
        if isinstance(m, AnalogModule):
            hooks.append(m.register_forward_pre_hook(rec.enter))
            hooks.append(m.register_forward_hook(rec.leave))
        elif callable(getattr(m, "memsim_digital_cost", None)):
            hooks.append(m.register_forward_pre_hook(rec.enter))
            hooks.append(m.register_forward_hook(rec.leave_digital))
    try:
        with torch.no_grad(), rec:
            out = model(*x) if isinstance(x, tuple) else model(x)
    finally:
        ctx.recorder = None
        for h in hooks:
            h.remove()
    return rec.describe(out, ctx.config, name)
