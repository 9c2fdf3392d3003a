"""Map a network's weight matrices onto crossbar tiles and run it through the tile engine.

Every weight layer becomes one or more matrices (:meth:`Node.matrices`): a linear layer
Wᵀ, a convolution its im2col matrix (k·k·C_in/g rows × C_out/g columns per group), an LSTM
its concatenated [W_ih; W_hh]ᵀ. A matrix larger than the crossbar is cut into blocks of at
most rows × cols; each block is one tile. Partial sums of row blocks are added digitally,
column blocks are concatenated, the bias is added digitally. Everything else (activations,
pooling, normalisation that could not be folded, residual additions, recurrent gates) runs
digitally and is listed in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memsim.crossbar import Tile, TileConfig, load_tile_config
from memsim.devices import Device, load_device
from memsim.devices.base import check_generator, check_time
from memsim.mapping.description import NetworkDescription, describe_graph
from memsim.mapping.graph import Graph, Node

__all__ = ["Block", "LayerMap", "MappedNetwork", "MatrixMap", "map_network"]


@dataclass
class Block:
    """One tile holding rows [r0, r1) × cols [c0, c1) of a layer matrix."""

    r0: int
    r1: int
    c0: int
    c1: int
    tile: Tile

    @property
    def shape(self) -> tuple[int, int]:
        return self.r1 - self.r0, self.c1 - self.c0


@dataclass
class MatrixMap:
    key: str
    shape: tuple[int, int]
    blocks: list[Block]


@dataclass
class LayerMap:
    """A weight layer on crossbars: its matrices, tiles and MVMs per inference."""

    name: str
    op: str
    matrices: list[MatrixMap]
    mvms_per_inference: int  # input vectors each of its matrices processes per inference
    inputs: tuple[str, ...] = ()
    out_elements: int = 0

    @property
    def tiles(self) -> int:
        return sum(len(m.blocks) for m in self.matrices)

    @property
    def weights(self) -> int:
        return sum(m.shape[0] * m.shape[1] for m in self.matrices)

    @property
    def tile_mvms(self) -> int:
        """Tile MVMs per inference (each block of each matrix, for every input vector)."""
        return self.mvms_per_inference * self.tiles


def _mvms(node: Node, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    if node.op in ("conv2d",):
        return int(out_shape[1] * out_shape[2])
    if node.op == "conv1d":
        return int(out_shape[1])
    if node.op in ("lstm", "gru"):
        return int(in_shape[0])  # one MVM per time step
    return int(np.prod(in_shape[:-1])) if len(in_shape) > 1 else 1


@dataclass
class MappedNetwork:
    """A network whose weight layers live on tiles. Program once, then read at any time."""

    graph: Graph
    tile_config: TileConfig
    device: Device
    layers: list[LayerMap]
    digital: list[tuple[str, str]]  # (node name, op or description) run digitally
    shapes: dict[str, tuple[int, ...]]
    description: NetworkDescription | None = None  # what the chip simulates (no weights)
    programmed_: bool = field(default=False, init=False)

    # -- programming and inference --------------------------------------------------------------
    def all_blocks(self) -> list[Block]:
        return [b for layer in self.layers for m in layer.matrices for b in m.blocks]

    def program(self, rng: np.random.Generator, *, at_s: float = 0.0,
                per_tile_s: float = 0.0) -> MappedNetwork:
        """Program every tile (independent random streams); tile k at ``at_s + k·per_tile_s``."""
        rng = check_generator(rng)
        at_s = check_time(at_s)
        per_tile_s = check_time(per_tile_s)
        blocks = self.all_blocks()
        streams = np.random.SeedSequence(int(rng.integers(2**63))).spawn(len(blocks))
        k = 0
        for layer in self.layers:
            node = self.graph.nodes[layer.name]
            mats = dict(node.matrices())
            for m in layer.matrices:
                w = mats[m.key]
                for b in m.blocks:
                    b.tile.program(w[b.r0:b.r1, b.c0:b.c1], np.random.default_rng(streams[k]),
                                   at_s=at_s + k * per_tile_s)
                    k += 1
        self.programmed_ = True
        return self

    def forward(self, x: Any, t: float, rng: np.random.Generator) -> np.ndarray:
        """Outputs for the batch ``x`` at time ``t`` (s on the programming clock)."""
        if not self.programmed_:
            raise RuntimeError("the mapped network is not programmed: call program(rng)")
        rng = check_generator(rng)
        t = check_time(t)
        by_name = {layer.name: {m.key: m for m in layer.matrices} for layer in self.layers}
        base = np.random.SeedSequence(int(rng.integers(2**63)))

        def matmul(node: str, key: str, a: np.ndarray) -> np.ndarray:
            # every tile call gets its own stream: base.spawn advances deterministically
            m = by_name[node][key]
            out = np.zeros((a.shape[0], m.shape[1]))
            for b in m.blocks:
                sub = np.random.default_rng(base.spawn(1)[0])
                out[:, b.c0:b.c1] += b.tile.matvec(a[:, b.r0:b.r1], t, sub)
            return out

        return self.graph.forward(x, matmul)

    def calibrate_adc(self, x: Any, *, quantile: float = 0.999, margin: float = 1.2
                      ) -> dict[str, float]:
        """Set every tile's ADC full scale from calibration data, as a chip's per-layer ADC
        gain calibration does: the ``quantile`` of |normalised column output| (per phase in
        4-phase mode) over the batch ``x``, times ``margin``. Converter noise and offsets
        given in LSB keep their size in LSB. Call it before :meth:`program` (the tiles' affine
        calibration at programming uses the ADC). Returns the new range of each tile."""
        if self.programmed_:
            raise RuntimeError("calibrate_adc() must come before program(): the affine "
                               "calibration done at programming time uses the ADC range")
        if not 0 < quantile <= 1 or margin <= 0:
            raise ValueError(f"quantile = {quantile} must be in (0, 1] and margin = {margin} > 0")
        inputs: dict[tuple[str, str], np.ndarray] = {}

        def capture(node: str, key: str, a: np.ndarray) -> np.ndarray:
            inputs[(node, key)] = a if (node, key) not in inputs else \
                np.concatenate([inputs[(node, key)], a])
            return a @ dict(self.graph.nodes[node].matrices())[key]

        self.graph.forward(x, capture)
        ranges = {}
        for layer in self.layers:
            mats = dict(self.graph.nodes[layer.name].matrices())
            for m in layer.matrices:
                a = inputs[(layer.name, m.key)]
                w = mats[m.key]
                for b in m.blocks:
                    tile = b.tile
                    cfg = tile.config
                    xb = a[:, b.r0:b.r1]
                    if cfg.input_scaling == "fixed":
                        xn = np.clip(xb / cfg.input_range, -1, 1)
                    else:
                        s = np.max(np.abs(xb), axis=1, keepdims=True)
                        xn = xb / np.where(s > 0, s, 1.0)
                    wb = w[b.r0:b.r1, b.c0:b.c1]
                    sw = np.max(np.abs(wb), axis=0) if cfg.weight_scaling == "per_column" \
                        else np.full(wb.shape[1], np.max(np.abs(wb)))
                    wn = wb / np.where(sw > 0, sw, 1.0)
                    if cfg.encoding == "pwm_4phase":
                        xp, xm = np.maximum(xn, 0), np.maximum(-xn, 0)
                        wp, wm = np.maximum(wn, 0), np.maximum(-wn, 0)
                        ys = np.concatenate([xp @ wp, xp @ wm, xm @ wp, xm @ wm])
                    else:
                        ys = xn @ wn
                    full = float(np.quantile(np.abs(ys), quantile)) * margin
                    full = max(full, 1e-6)
                    k = full / cfg.output_range
                    tile.config = cfg.with_(output_range=full, adc_noise=cfg.adc_noise * k,
                                            adc_offset_sigma=cfg.adc_offset_sigma * k)
                    ranges[f"{layer.name}/{m.key}/{b.r0}:{b.c0}"] = full
        self.adc_calibrated_ = True
        return ranges

    def reference(self, x: Any) -> np.ndarray:
        """The exact (float64) output of the same graph, weights as trained."""
        return self.graph.forward(x)

    # -- reporting -------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        cfg = self.tile_config
        cells = cfg.rows * cfg.cols
        layers = []
        for layer in self.layers:
            used = layer.weights
            layers.append({
                "name": layer.name, "op": layer.op,
                "matrices": [list(m.shape) for m in layer.matrices],
                "tiles": layer.tiles,
                "utilization": used / (layer.tiles * cells),
                "mvms_per_inference": layer.mvms_per_inference,
                "tile_mvms_per_inference": layer.tile_mvms,
            })
        tiles = sum(x["tiles"] for x in layers)
        weights = sum(layer.weights for layer in self.layers)
        return {
            "network": self.graph.name,
            "tile": cfg.name, "tile_rows": cfg.rows, "tile_cols": cfg.cols,
            "device": self.device.name,
            "layers": layers,
            "digital": [{"name": n, "op": op} for n, op in self.digital],
            "total_weights": weights,
            "total_tiles": tiles,
            "utilization": weights / (tiles * cells) if tiles else 0.0,
            "total_tile_mvms_per_inference": sum(x["tile_mvms_per_inference"] for x in layers),
        }

    def saturation_rate(self) -> float:
        conv = sum(b.tile.saturation_.conversions for b in self.all_blocks())
        sat = sum(b.tile.saturation_.saturated for b in self.all_blocks())
        return sat / conv if conv else 0.0


def _split(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def map_network(model: Any, tile: str | Path | TileConfig = "hermes-core",
                device: str | Path | Device = "pcm-hermes-2dev", *,
                input_shape: tuple[int, ...] | None = None,
                fold_batchnorm: bool = True, **tile_overrides: Any) -> MappedNetwork:
    """Map ``model`` (a :class:`Graph` or a ``torch.nn.Module``) onto tiles.

    For a torch module, ``input_shape`` (per sample, without the batch) is needed to trace
    the shapes. ``tile_overrides`` change tile parameters by name (e.g. ``adc_bits=None``).
    """
    if isinstance(model, Graph):
        graph = model
    else:
        from memsim.mapping.torch_import import from_torch

        if input_shape is None:
            raise ValueError("map_network(torch module) needs input_shape=(per-sample shape)")
        graph = from_torch(model, input_shape)
    if fold_batchnorm:
        graph = graph.fold_batchnorm()
    if graph.output is None:
        raise ValueError(f"{graph.name}: no output set (call set_output)")
    cfg = tile if isinstance(tile, TileConfig) else load_tile_config(tile)
    if tile_overrides:
        cfg = cfg.with_(**tile_overrides)
    dev = device if isinstance(device, Device) else load_device(device)
    Tile(cfg, dev)  # validates the device/cell combination once, with a clear error
    shapes = graph.shapes()
    shapes["input"] = graph.input_shape
    layers = []
    for node in graph.weight_nodes():
        in_shape = shapes[node.inputs[0]]
        mats = []
        for key, w in node.matrices():
            blocks = [Block(r0, r1, c0, c1, Tile(cfg, dev))
                      for r0, r1 in _split(w.shape[0], cfg.rows)
                      for c0, c1 in _split(w.shape[1], cfg.cols)]
            mats.append(MatrixMap(key, w.shape, blocks))
        layers.append(LayerMap(node.name, node.op, mats, _mvms(node, in_shape,
                                                               shapes[node.name]),
                               node.inputs, int(np.prod(shapes[node.name]))))
    digital = [(n.name, n.attrs.get("description", n.op)) for n in graph.digital_nodes()]
    return MappedNetwork(graph, cfg, dev, layers, digital, shapes, describe_graph(graph, cfg))
