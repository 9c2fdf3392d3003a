"""The description of a mapped network: what the timing path (the chip) needs, and nothing else.

A description lists, in dataflow order, every node of a network as run for one inference:

- **weight layers** (``linear``, ``conv1d``, ``conv2d``, ``lstm``, ``gru``): their matrices
  (rows = inputs, cols = outputs), how the matrices are cut into blocks and which physical
  array (one crossbar, one core) holds each block, and how many input vectors each array
  processes per inference;
- **digital nodes** (activations, pooling, normalisation, residual additions, attention,
  anything else): their operation, output shape and, where known, their digital operation
  count per inference.

It holds no weights and no conductances: timing does not depend on them. Two producers feed
it, so that the chip sees one format:

- :func:`describe_graph` for a memsim :class:`~memsim.mapping.graph.Graph` (numpy, no torch);
- the analog torch layers (:mod:`memsim.analog`), which record one batch of the user's model.

Cutting a matrix into blocks (:func:`cut_matrix`), as the tile engine cuts it
(:func:`memsim._layout.balanced_cuts`): as few row blocks of at most ``tile.rows`` rows as
whole units allow, as equal as possible, cut at multiples of ``row_unit``: for a
convolution, ``row_unit`` = kernel positions per input channel (k·k), so that every block
holds whole input channels, as HERMES maps its 2016-row ResNet-9 layers as 8 blocks of
252 rows = 28 channels × 3×3 (Le Gallo et al., Nat. Electron. 6, 680, 2023, Methods).
Columns likewise, at most ``tile.cols`` per block.
Grouped and depthwise convolutions (:func:`pack_groups`) put several groups in one array
along its diagonal when a group's matrix is smaller than the array: a depthwise 3×3 layer
fits 28 channels (9 rows × 1 column each) in one 256×256 array instead of using one array
per channel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memsim._format import Report, table
from memsim._layout import balanced_cuts
from memsim.errors import ConfigError

__all__ = [
    "WEIGHT_OPS",
    "Block",
    "LayerDesc",
    "NetworkDescription",
    "NodeDesc",
    "as_description",
    "cut_matrix",
    "describe_graph",
    "format_mapping_report",
    "pack_groups",
]

WEIGHT_OPS = ("linear", "conv1d", "conv2d", "lstm", "gru")


@dataclass(frozen=True)
class Block:
    """Rows [r0, r1) × columns [c0, c1) of matrix ``key`` of a layer, held by the layer's
    physical array number ``array`` with its top-left cell at (row_offset, col_offset)."""

    key: str
    r0: int
    r1: int
    c0: int
    c1: int
    array: int
    row_offset: int = 0
    col_offset: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.r1 - self.r0, self.c1 - self.c0

    @property
    def cells(self) -> int:
        return (self.r1 - self.r0) * (self.c1 - self.c0)


@dataclass(frozen=True)
class NodeDesc:
    """One node of the network as run for one inference.

    Attributes:
        name: unique name (a module path for torch models).
        op: operation; weight ops are in :data:`WEIGHT_OPS`, digital ops are names such as
            ``relu``, ``maxpool2d``, ``add``, ``softmax`` or ``external``.
        inputs: names of the nodes it reads ("input" is the network input).
        out_shape: its output shape per inference (no batch dimension).
        attrs: plain settings (pooling kernel, hidden size of a recurrent layer, ...).
        digital_ops: digital operations per inference, where the producer knows them (None:
            the chip estimates them from ``op`` and the shapes).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    out_shape: tuple[int, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    digital_ops: float | None = None


@dataclass(frozen=True)
class LayerDesc(NodeDesc):
    """A weight layer: its matrices on physical arrays.

    Besides :class:`NodeDesc`'s attributes:

    Attributes:
        matrices: (key, (rows, cols)) of each weight matrix; rows are inputs, cols outputs.
        blocks: where each piece of each matrix sits.
        arrays: number of physical arrays (crossbars, cores) the layer uses.
        mvms_per_inference: input vectors each array processes per inference (output
            positions of a convolution, tokens of a linear layer, time steps of an LSTM).
        array_rows, array_cols: the size of one physical array.
    """

    matrices: tuple[tuple[str, tuple[int, int]], ...] = ()
    blocks: tuple[Block, ...] = ()
    arrays: int = 0
    mvms_per_inference: int = 0
    array_rows: int = 0
    array_cols: int = 0

    @property
    def weights(self) -> int:
        """Weights of the layer (matrix entries), not counting the packing's empty cells."""
        return sum(r * c for _, (r, c) in self.matrices)

    @property
    def tiles(self) -> int:
        """Physical arrays of the layer (alias of ``arrays``)."""
        return self.arrays

    @property
    def utilization(self) -> float:
        """Used cells / cells of the layer's arrays."""
        total = self.arrays * self.array_rows * self.array_cols
        return self.weights / total if total else 0.0

    @property
    def tile_mvms(self) -> int:
        """Array MVMs per inference (each array, for every input vector)."""
        return self.mvms_per_inference * self.arrays

    def blocks_of(self, array: int) -> list[Block]:
        return [b for b in self.blocks if b.array == array]


@dataclass
class NetworkDescription:
    """A network as the chip sees it: nodes in dataflow order, weight layers on arrays.

    Attributes:
        name: network name.
        input_shape: per-inference input shape (no batch dimension).
        nodes: every node by name, in dataflow order; the first is the ``input`` node.
        output: name of the output node.
        tile: the tile configuration the arrays were cut for (``memsim.TileConfig``).
        notes: what the producer wants the report to say (e.g. ops it could not count).
    """

    name: str
    input_shape: tuple[int, ...]
    nodes: dict[str, NodeDesc]
    output: str
    tile: Any
    notes: list[str] = field(default_factory=list)

    @property
    def layers(self) -> list[LayerDesc]:
        """The weight layers, in dataflow order."""
        return [n for n in self.nodes.values() if isinstance(n, LayerDesc)]

    @property
    def digital(self) -> list[NodeDesc]:
        """The nodes that run digitally (everything but the input and the weight layers)."""
        return [n for n in self.nodes.values()
                if not isinstance(n, LayerDesc) and n.op != "input"]

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape per inference of every node."""
        return {n.name: n.out_shape for n in self.nodes.values()}

    @property
    def total_weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def total_arrays(self) -> int:
        return sum(layer.arrays for layer in self.layers)

    def report(self) -> Report:
        """What is analog (matrices, arrays, utilisation, MVMs) and what stays digital
        (a :class:`~memsim.Report`; printed, the mapping table)."""
        cells = self.tile.rows * self.tile.cols
        layers = [{
            "name": la.name, "op": la.op,
            "matrices": [list(shape) for _, shape in la.matrices],
            "tiles": la.arrays, "utilization": la.utilization,
            "mvms_per_inference": la.mvms_per_inference,
            "tile_mvms_per_inference": la.tile_mvms,
        } for la in self.layers]
        arrays = self.total_arrays
        return Report("mapping", {
            "network": self.name, "tile": self.tile.name, "tile_rows": self.tile.rows,
            "tile_cols": self.tile.cols, "layers": layers,
            "digital": [{"name": n.name, "op": n.op} for n in self.digital],
            "total_weights": self.total_weights, "total_tiles": arrays,
            "utilization": self.total_weights / (arrays * cells) if arrays else 0.0,
            "total_tile_mvms_per_inference": sum(la.tile_mvms for la in self.layers),
            "notes": list(self.notes),
        }, format_mapping_report)


def format_mapping_report(rep: Mapping[str, Any]) -> str:
    """The text of a mapping report (:meth:`NetworkDescription.report`): per layer its
    matrices, tiles, utilisation and MVMs per inference; totals; what runs digitally."""
    device = f", device {rep['device']}" if rep.get("device") else ""
    lines = [f"memsim map {rep['network']}: tile {rep['tile']} ({rep['tile_rows']}x"
             f"{rep['tile_cols']}){device}", ""]
    rows = [[layer["name"], layer["op"], " + ".join(f"{r}x{c}" for r, c in layer["matrices"]),
             str(layer["tiles"]), f"{100 * layer['utilization']:.1f} %",
             str(layer["mvms_per_inference"]), str(layer["tile_mvms_per_inference"])]
            for layer in rep["layers"]]
    lines.append(table(["layer", "op", "matrix", "tiles", "utilization", "MVMs/inf",
                        "tile MVMs/inf"], rows, left=3))
    lines += ["", f"total: {rep['total_weights']} weights on {rep['total_tiles']} tiles "
                  f"({100 * rep['utilization']:.1f} % of their cells), "
                  f"{rep['total_tile_mvms_per_inference']} tile MVMs per inference"]
    digital = ", ".join(f"{d['name']} ({d['op']})" for d in rep["digital"])
    lines.append(f"runs digitally: {digital or 'nothing'}")
    lines += [f"note: {n}" for n in rep.get("notes", [])]
    return "\n".join(lines)


# -- cutting matrices into blocks ---------------------------------------------------------------
def cut_matrix(shape: tuple[int, int], rows: int, cols: int, *, row_unit: int = 1,
               key: str = "w", first_array: int = 0) -> list[Block]:
    """Blocks of a (R, C) matrix on rows × cols arrays, one block per array; row cuts at
    multiples of ``row_unit`` (see the module docstring)."""
    r_total, c_total = int(shape[0]), int(shape[1])
    if r_total <= 0 or c_total <= 0:
        raise ConfigError(f"matrix {key!r} of shape {shape} has no weights")
    out = []
    k = first_array
    for r0, r1 in balanced_cuts(r_total, rows, max(1, int(row_unit))):
        for c0, c1 in balanced_cuts(c_total, cols):
            out.append(Block(key, r0, r1, c0, c1, k))
            k += 1
    return out


def pack_groups(groups: int, group_shape: tuple[int, int], rows: int, cols: int, *,
                row_unit: int = 1, first_array: int = 0) -> list[Block]:
    """Blocks of a grouped layer's ``groups`` matrices (keys g0, g1, ...), each of
    ``group_shape``. Groups that fit an array are packed block-diagonally, as many per array
    as both dimensions allow; larger groups are cut on their own (:func:`cut_matrix`)."""
    r, c = int(group_shape[0]), int(group_shape[1])
    if r <= rows and c <= cols:
        per = min(rows // r, cols // c)
        out = []
        for g in range(groups):
            a, slot = divmod(g, per)
            out.append(Block(f"g{g}", 0, r, 0, c, first_array + a, slot * r, slot * c))
        return out
    out = []
    k = first_array
    for g in range(groups):
        blocks = cut_matrix((r, c), rows, cols, row_unit=row_unit, key=f"g{g}", first_array=k)
        out.extend(blocks)
        k = blocks[-1].array + 1
    return out


def layer_blocks(op: str, matrices: Sequence[tuple[str, tuple[int, int]]], rows: int, cols: int,
                 *, kernel_positions: int = 1) -> list[Block]:
    """The blocks of a weight layer's matrices: grouped convolutions packed, other matrices
    cut one after the other (recurrent layers: their matrices side by side, each cut)."""
    if op in ("conv1d", "conv2d") and len(matrices) > 1:
        return pack_groups(len(matrices), matrices[0][1], rows, cols,
                           row_unit=kernel_positions)
    out: list[Block] = []
    for key, shape in matrices:
        first = out[-1].array + 1 if out else 0
        out.extend(cut_matrix(shape, rows, cols, row_unit=kernel_positions, key=key,
                              first_array=first))
    return out


def mvms_per_inference(op: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """Input vectors a weight layer's arrays process per inference."""
    if op == "conv2d":
        return int(out_shape[1] * out_shape[2])
    if op == "conv1d":
        return int(out_shape[1])
    if op in ("lstm", "gru"):
        return int(in_shape[0])  # one MVM per time step
    return int(np.prod(in_shape[:-1])) if len(in_shape) > 1 else 1


def make_layer(name: str, op: str, inputs: tuple[str, ...], in_shape: tuple[int, ...],
               out_shape: tuple[int, ...], matrices: Sequence[tuple[str, tuple[int, int]]],
               tile: Any, *, kernel_positions: int = 1, attrs: Mapping[str, Any] | None = None,
               mvms: int | None = None) -> LayerDesc:
    """A :class:`LayerDesc` with its blocks cut for ``tile`` (a TileConfig)."""
    blocks = layer_blocks(op, matrices, tile.rows, tile.cols, kernel_positions=kernel_positions)
    return LayerDesc(
        name=name, op=op, inputs=tuple(inputs), out_shape=tuple(int(s) for s in out_shape),
        attrs=dict(attrs or {}), matrices=tuple((k, (int(s[0]), int(s[1])))
                                                for k, s in matrices),
        blocks=tuple(blocks), arrays=(blocks[-1].array + 1) if blocks else 0,
        mvms_per_inference=int(mvms if mvms is not None else
                               mvms_per_inference(op, in_shape, out_shape)),
        array_rows=tile.rows, array_cols=tile.cols)


def describe_graph(graph: Any, tile: Any) -> NetworkDescription:
    """The description of a memsim :class:`~memsim.mapping.graph.Graph` cut for ``tile``."""
    if graph.output is None:
        raise ConfigError(f"{graph.name}: no output set (call set_output)")
    shapes = graph.shapes()
    shapes["input"] = tuple(graph.input_shape)
    nodes: dict[str, NodeDesc] = {}
    for n in graph.nodes.values():
        out_shape = tuple(shapes[n.name])
        attrs = {k: v for k, v in n.attrs.items() if k != "fn"}
        if n.op in WEIGHT_OPS:
            mats = [(k, m.shape) for k, m in n.matrices()]
            kp = 1
            if n.op in ("conv1d", "conv2d"):
                w = n.params["weight"]
                kp = int(math.prod(w.shape[2:]))
                attrs["kernel_size"] = tuple(int(k) for k in w.shape[2:])
            if n.op in ("lstm", "gru"):
                attrs["hidden_size"] = int(n.params["weight_hh"].shape[1])
                attrs["input_size"] = int(n.params["weight_ih"].shape[1])
            nodes[n.name] = make_layer(n.name, n.op, n.inputs, shapes[n.inputs[0]], out_shape,
                                       mats, tile, kernel_positions=kp, attrs=attrs)
        else:
            nodes[n.name] = NodeDesc(n.name, n.op, tuple(n.inputs), out_shape, attrs)
    return NetworkDescription(graph.name, tuple(graph.input_shape), nodes, graph.output, tile)


def as_description(obj: Any, tile: Any = None) -> NetworkDescription:
    """The :class:`NetworkDescription` of ``obj``.

    Accepted: a NetworkDescription (returned as is); a memsim Graph (cut for ``tile``, a
    TileConfig, which is then required); a MappedNetwork (its description); any object with
    a ``memsim_description()`` method (the analog torch models of :mod:`memsim.analog`,
    after one recorded batch).
    """
    if isinstance(obj, NetworkDescription):
        return obj
    ctx = getattr(obj, "_memsim", None)  # a model converted by memsim.analog
    if ctx is not None and hasattr(ctx, "description"):
        if ctx.description is None:
            raise ConfigError("this analog model has no recorded description yet: call "
                              "memsim.describe(model, x) with one batch of inputs first")
        return ctx.description
    describe = getattr(obj, "memsim_description", None)
    if callable(describe):
        return describe()
    desc = getattr(obj, "description", None)
    if isinstance(desc, NetworkDescription):
        return desc
    from memsim.mapping.graph import Graph

    if isinstance(obj, Graph):
        if tile is None:
            raise ConfigError(f"describing graph {obj.name!r} needs the tile it is cut for")
        return describe_graph(obj, tile)
    raise ConfigError(
        f"cannot describe a {type(obj).__name__} for the chip: pass a memsim Graph, a "
        "MappedNetwork, a NetworkDescription or an analog torch model (memsim.analog)")
