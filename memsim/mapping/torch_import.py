"""Import a PyTorch ``nn.Module`` into a memsim :class:`Graph` by tracing it with torch.fx.

Mapped to crossbars: ``nn.Linear``, ``nn.Conv1d``/``nn.Conv2d`` (stride, padding, dilation,
groups), the weight matrices of ``nn.LSTM``/``nn.GRU`` (batch_first, unidirectional, any
number of layers). BatchNorm becomes a graph node that the mapping folds into the
preceding layer. Activations, pooling, flatten/view, residual additions run digitally in
numpy. Anything else runs digitally through torch itself and is listed in the mapping
report as ``torch: <what>`` — never dropped silently.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from memsim.mapping.graph import Graph

__all__ = ["from_torch"]


def _np(t: Any) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().double().numpy()


def from_torch(model: Any, input_shape: tuple[int, ...], name: str | None = None) -> Graph:
    """Trace ``model`` (in eval mode) and build the equivalent :class:`Graph`."""
    import torch
    import torch.nn.functional as F
    from torch import fx, nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module or a memsim Graph, got {type(model)}")
    model = model.eval()
    try:
        traced = fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many kinds of errors on dynamic control flow
        raise ValueError(f"torch.fx could not trace {type(model).__name__}: {exc}") from exc
    modules = dict(traced.named_modules())
    g = Graph(tuple(input_shape), name or type(model).__name__)
    env: dict[str, Any] = {}  # fx node name -> graph node name, or ("tuple", node) markers

    def nm(node: fx.Node) -> str:
        return node.name.replace(".", "_")

    def arg(a: Any) -> str:
        v = env[a.name]
        if isinstance(v, tuple):
            raise ValueError(f"{g.name}: {a.name} ({v[0]}) is used by a later layer; only the "
                             "output sequence of a recurrent layer (out, _ = lstm(x)) and "
                             "x.view(x.size(0), -1) are supported")
        return v

    def external(node: fx.Node, what: str, fn) -> str:
        ins = [a for a in node.all_input_nodes]
        return g.external(tuple(arg(a) for a in ins), fn, f"torch: {what}", name=nm(node))

    def torch_fn(node: fx.Node, target):
        """Run an fx node's target in torch on numpy arrays (digital fallback)."""
        ins = list(node.all_input_nodes)

        def run(*arrays):
            vals = {a.name: torch.from_numpy(np.ascontiguousarray(x)).float()
                    for a, x in zip(ins, arrays, strict=True)}
            args = fx.node.map_arg(node.args, lambda a: vals[a.name])
            kwargs = fx.node.map_arg(node.kwargs, lambda a: vals[a.name])
            with torch.no_grad():
                out = target(*args, **kwargs)
            return out.double().numpy()

        return run

    act_modules = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.GELU: "gelu",
                   nn.Identity: "identity", nn.Dropout: "identity"}
    act_functions = {torch.relu: "relu", F.relu: "relu", torch.tanh: "tanh",
                     torch.sigmoid: "sigmoid", F.gelu: "gelu", F.dropout: "identity"}

    for node in traced.graph.nodes:
        op = node.op
        if op == "placeholder":
            if "input" in env.values():
                raise ValueError(f"{g.name}: models with more than one input are not supported")
            env[node.name] = "input"
            continue
        if op == "output":
            g.set_output(arg(node.args[0]))
            continue
        if op == "get_attr":
            raise ValueError(f"{g.name}: parameter access {node.target!r} inside forward is not "
                             "supported; use modules")
        if op == "call_module":
            m = modules[node.target]
            x = arg(node.args[0]) if node.args else None
            t = type(m)
            if t is nn.Linear:
                env[node.name] = g.linear(x, _np(m.weight), _np(m.bias), name=nm(node))
            elif t in (nn.Conv2d, nn.Conv1d) and m.padding_mode == "zeros" \
                    and not isinstance(m.padding, str):
                if t is nn.Conv2d:
                    env[node.name] = g.conv2d(x, _np(m.weight), _np(m.bias), stride=m.stride,
                                              padding=m.padding, dilation=m.dilation,
                                              groups=m.groups, name=nm(node))
                else:
                    env[node.name] = g.conv1d(x, _np(m.weight), _np(m.bias), stride=m.stride[0],
                                              padding=m.padding[0], dilation=m.dilation[0],
                                              groups=m.groups, name=nm(node))
            elif t in (nn.BatchNorm1d, nn.BatchNorm2d) and m.track_running_stats:
                env[node.name] = g.batchnorm(x, _np(m.running_mean), _np(m.running_var),
                                             _np(m.weight), _np(m.bias), eps=m.eps,
                                             name=nm(node))
            elif t in act_modules:
                env[node.name] = g.activation(x, act_modules[t], name=nm(node))
            elif t is nn.MaxPool2d and m.dilation == 1 and not m.ceil_mode:
                env[node.name] = g.maxpool2d(x, m.kernel_size, m.stride, m.padding, name=nm(node))
            elif t is nn.AvgPool2d and not m.ceil_mode and m.count_include_pad:
                env[node.name] = g.avgpool2d(x, m.kernel_size, m.stride, m.padding, name=nm(node))
            elif t is nn.AdaptiveAvgPool2d and m.output_size in (1, (1, 1)):
                env[node.name] = g.global_avgpool(x, name=nm(node))
            elif t is nn.Flatten and m.start_dim == 1 and m.end_dim == -1:
                env[node.name] = g.flatten(x, name=nm(node))
            elif t is nn.Softmax and m.dim in (-1, 1):
                env[node.name] = g.activation(x, "softmax", name=nm(node))
            elif t in (nn.LSTM, nn.GRU) and m.batch_first and not m.bidirectional \
                    and not getattr(m, "proj_size", 0):
                h = x
                for layer in range(m.num_layers):
                    build = g.lstm if t is nn.LSTM else g.gru
                    h = build(h, _np(getattr(m, f"weight_ih_l{layer}")),
                              _np(getattr(m, f"weight_hh_l{layer}")),
                              _np(getattr(m, f"bias_ih_l{layer}", None)),
                              _np(getattr(m, f"bias_hh_l{layer}", None)),
                              name=f"{nm(node)}_l{layer}")
                env[node.name] = ("tuple", h)
            else:
                env[node.name] = external(node, f"{t.__name__} ({node.target})",
                                          torch_fn(node, m))
            continue
        if op == "call_function" or op == "call_method":
            target = node.target
            ins = list(node.all_input_nodes)
            if target is operator.getitem and isinstance(env.get(ins[0].name), tuple):
                seq = env[ins[0].name][1]
                # index 0 is the output sequence; the final states are kept as a marker and
                # are an error only if something uses them
                env[node.name] = seq if node.args[1] == 0 else ("final states", None)
                continue
            if target is operator.getitem and len(ins) == 1 and \
                    node.args[1] == (slice(None, None, None), -1):
                env[node.name] = g.last_step(arg(ins[0]), name=nm(node))
                continue
            if target in (operator.add, torch.add) and len(ins) == 2 and not node.kwargs:
                env[node.name] = g.add(arg(node.args[0]), arg(node.args[1]), name=nm(node))
                continue
            if target in act_functions and len(ins) == 1:
                env[node.name] = g.activation(arg(ins[0]), act_functions[target], name=nm(node))
                continue
            if op == "call_method" and target in ("relu", "tanh", "sigmoid") and len(ins) == 1:
                env[node.name] = g.activation(arg(ins[0]), target, name=nm(node))
                continue
            if op == "call_method" and target == "size":
                env[node.name] = ("size", None)  # only used by view(x.size(0), -1) below
                continue
            flat = (target is torch.flatten and node.args[1:] == (1,) and not node.kwargs) \
                or (op == "call_method" and target == "flatten" and node.args[1:] == (1,)) \
                or (op == "call_method" and target in ("view", "reshape")
                    and len(node.args) == 3 and node.args[2] == -1)
            if flat:
                env[node.name] = g.flatten(arg(node.args[0]), name=nm(node))
                continue
            if target is F.adaptive_avg_pool2d and node.args[1:] in ((1,), ((1, 1),)):
                env[node.name] = g.global_avgpool(arg(ins[0]), name=nm(node))
                continue
            if target is F.max_pool2d and not node.kwargs and len(node.args) == 2:
                env[node.name] = g.maxpool2d(arg(ins[0]), node.args[1], name=nm(node))
                continue
            what = getattr(target, "__name__", str(target))
            if op == "call_method":
                fn = (lambda meth: lambda x, *a, **k: getattr(x, meth)(*a, **k))(target)
            else:
                fn = target
            env[node.name] = external(node, what, torch_fn(node, fn))
            continue
        raise ValueError(f"{g.name}: unsupported fx node {node.op} {node.target}")
    return g
