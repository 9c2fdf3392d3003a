"""What the digital nodes of a :class:`~memsim.mapping.description.NetworkDescription` cost,
and which rows of their inputs a range of output rows needs (for streaming).

Operation counts are memsim estimates per output element (a piecewise or table
approximation of tanh/sigmoid/GELU/softmax takes about 4 operations); a node's own
``digital_ops`` count, when its producer gives one, replaces the estimate.
"""

from __future__ import annotations

import math
from typing import Any

from memsim.mapping.description import LayerDesc, NodeDesc

__all__ = ["ELEMENTWISE", "FUSABLE", "GATE_OPS", "RECURRENT", "node_ops", "rows_needed"]

RECURRENT = ("lstm", "gru")
# global-unit ops per hidden unit and time step (gate bias adds, sigmoid/tanh as 4-op
# piecewise approximations, state update): a memsim estimate
GATE_OPS = {"lstm": 28, "gru": 24}
# applied to a weight layer's outputs inside the local unit's per-output pass
FUSABLE = ("relu", "tanh", "sigmoid", "gelu", "identity", "batchnorm")
ELEMENTWISE = (*FUSABLE, "add")
_PER_ELEMENT = {"relu": 1.0, "tanh": 4.0, "sigmoid": 4.0, "gelu": 4.0, "softmax": 4.0,
                "batchnorm": 2.0, "add": 1.0, "external": 1.0}
_VIEWS = ("identity", "flatten", "last_step", "input")


def _size(shape: tuple[int, ...]) -> float:
    return float(math.prod(shape)) if shape else 1.0


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int | float):
        return int(v), int(v)
    return int(v[0]), int(v[-1])


def node_ops(node: NodeDesc, shapes: dict[str, tuple[int, ...]]) -> float:
    """Digital operations of one non-weight node per inference."""
    if node.digital_ops is not None:
        return float(node.digital_ops)
    out = _size(shapes[node.name])
    op = node.op
    if op in _PER_ELEMENT:
        return _PER_ELEMENT[op] * out
    if op in ("maxpool2d", "avgpool2d"):
        kh, kw = _pair(node.attrs.get("kernel", 1))
        return out * (kh * kw - (1 if op == "maxpool2d" else 0))
    if op == "global_avgpool":
        return _size(shapes[node.inputs[0]]) + out
    if op in _VIEWS:
        return 0.0
    return out  # an op memsim does not know: 1 per output element (reported by the plan)


def is_view(node: NodeDesc) -> bool:
    """A node that only re-labels its input (no digital work, no data movement)."""
    return node.op in _VIEWS


def ldpu_items(node: NodeDesc, shapes: dict[str, tuple[int, ...]]) -> float:
    """Elements a local digital unit handles for ``node`` (one per output slot): the
    elements it reads, or the ``ldpu_items`` its producer states (a node that writes more
    values than it reads, e.g. a B-spline basis: G + k values per input)."""
    if is_view(node):
        return 0.0
    if "ldpu_items" in node.attrs:
        return float(node.attrs["ldpu_items"])
    return sum(_size(shapes[i]) for i in node.inputs)


def _conv_rows(node: LayerDesc, shapes: dict[str, tuple[int, ...]], lo: int, hi: int,
               axis_index: int) -> tuple[int, int] | None:
    """Input rows of a convolution (stride, padding, dilation in attrs) for out rows
    [lo, hi); the kernel height comes from attrs["kernel_size"] or, failing that, the
    largest one consistent with the shapes (conservative)."""
    attrs = node.attrs
    if "stride" not in attrs or "padding" not in attrs:
        return None  # cannot tell which rows a vector needs: wait for the whole input
    in_shape = shapes[node.inputs[0]]
    out_shape = node.out_shape
    if len(in_shape) < 2 or len(out_shape) < 2:
        return None
    s = _pair(attrs.get("stride", 1))[axis_index]
    p = _pair(attrs.get("padding", 0))[axis_index]
    d = _pair(attrs.get("dilation", 1))[axis_index]
    h_in, h_out = in_shape[1], out_shape[1]
    if "kernel_size" in attrs:
        k = _pair(attrs["kernel_size"])[axis_index]
    else:
        k = (h_in + 2 * p - 1 - (h_out - 1) * s) // d + 1
        if k < 1:
            return None
    a = lo * s - p
    b = (hi - 1) * s - p + d * (k - 1) + 1
    return max(0, a), min(h_in, b)


def rows_needed(node: NodeDesc, shapes: dict[str, tuple[int, ...]], lo: int,
                hi: int) -> dict[str, tuple[int, int]] | None:
    """Rows (axis 1 of a (C, H, ...) value) of each input that output rows [lo, hi) of
    ``node`` need; None when they need the whole inputs (or memsim cannot tell)."""
    op = node.op
    out = node.out_shape
    if len(out) < 2:
        return None
    if op == "conv2d":
        r = _conv_rows(node, shapes, lo, hi, 0)
        return None if r is None else {node.inputs[0]: r}
    if op == "conv1d":
        r = _conv_rows(node, shapes, lo, hi, 1)
        return None if r is None else {node.inputs[0]: r}
    if op in ("maxpool2d", "avgpool2d"):
        if "kernel" not in node.attrs:
            return None
        in_shape = shapes[node.inputs[0]]
        k = _pair(node.attrs.get("kernel", 1))[0]
        stride = node.attrs.get("stride")
        s = k if stride is None else _pair(stride)[0]
        p = _pair(node.attrs.get("padding", 0))[0]
        return {node.inputs[0]: (max(0, lo * s - p), min(in_shape[1], (hi - 1) * s - p + k))}
    if op in ELEMENTWISE:
        res = {}
        for i in node.inputs:
            shp = shapes[i]
            if len(shp) < 2 or shp[1] != out[1]:
                return None
            res[i] = (lo, hi)
        return res
    return None
