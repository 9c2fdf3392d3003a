"""Map a memsim Graph's weight matrices onto crossbar tiles and run it through the tile engine.

This is the numpy path, for users without a torch model: every weight node's matrices
(:meth:`Node.matrices`: a linear layer Wᵀ, a convolution its im2col matrix per group, an
LSTM its concatenated [W_ih; W_hh]ᵀ) become one :class:`~memsim.crossbar.engine.TileArray`
each — the same engine the analog torch layers use — cut into tiles at input-channel
boundaries. Partial sums of row tiles are added digitally, column tiles concatenated, the
bias added digitally. Everything else runs as the Graph's own numpy code and is listed in the
report. A torch model is converted with :func:`memsim.analog` instead, which keeps the
user's module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memsim._format import Report
from memsim._progress import progress
from memsim.crossbar import TileConfig, load_tile_config
from memsim.crossbar.cell import CellModel
from memsim.crossbar.engine import Saturation, TileArray
from memsim.devices import Device, load_device
from memsim.devices.base import check_generator, check_time
from memsim.errors import ConfigError, InputError, StateError
from memsim.mapping.description import LayerDesc, NetworkDescription, describe_graph
from memsim.mapping.graph import Graph

__all__ = ["MappedNetwork", "map_network"]


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``a`` when it is writable and contiguous, else a copy (cached,
    read-only arrays would make torch warn about writes it never does)."""
    if not (a.flags.writeable and a.flags.c_contiguous):
        a = np.array(a, order="C")
    return torch.from_numpy(a)


def _kernel_positions(node) -> int:
    if node.op in ("conv1d", "conv2d"):
        return int(np.prod(node.params["weight"].shape[2:]))
    return 1


@dataclass
class MappedNetwork:
    """A network whose weight layers live on tiles. Program once, then read at any time."""

    graph: Graph
    tile_config: TileConfig
    device: Device
    description: NetworkDescription
    arrays: dict[tuple[str, str], TileArray] = field(default_factory=dict)
    programmed_: bool = field(default=False, init=False)

    @property
    def layers(self) -> list[LayerDesc]:
        return self.description.layers

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.description.shapes

    # -- programming and inference --------------------------------------------------------------
    def program(self, rng: np.random.Generator, *, at_s: float = 0.0,
                per_layer_s: float = 0.0) -> MappedNetwork:
        """Program every layer matrix (independent random streams); matrix k at
        ``at_s + k·per_layer_s``."""
        rng = check_generator(rng)
        at_s = check_time(at_s)
        per_layer_s = check_time(per_layer_s)
        streams = np.random.SeedSequence(int(rng.integers(2**63))).spawn(len(self.arrays))
        with progress(len(self.arrays), f"programming {self.graph.name}", "matrix") as bar:
            for k, ((node, key), arr) in enumerate(self.arrays.items()):
                w = dict(self.graph.nodes[node].matrices())[key]
                arr.program(w, np.random.default_rng(streams[k]), at_s=at_s + k * per_layer_s)
                bar.update(1)
        self.programmed_ = True
        return self

    def forward(self, x: Any, t: float, rng: np.random.Generator) -> np.ndarray:
        """Outputs for the batch ``x`` at time ``t`` (s on the programming clock)."""
        if not self.programmed_:
            raise StateError("the mapped network is not programmed: call program(rng)")
        rng = check_generator(rng)
        t = check_time(t)
        base = np.random.SeedSequence(int(rng.integers(2**63)))

        def matmul(node: str, key: str, a: np.ndarray) -> np.ndarray:
            arr = self.arrays[(node, key)]
            if t < arr.programmed_at_s_:
                raise InputError(f"t = {t:g} s is before layer {node!r} was programmed "
                                 f"(at {arr.programmed_at_s_:g} s)")
            sub = np.random.default_rng(base.spawn(1)[0])
            y = arr.matvec(_tensor(a),
                           t - arr.programmed_at_s_, sub)
            return y.numpy().astype(np.float64)

        return self.graph.forward(x, matmul)

    def calibrate_adc(self, x: Any, *, quantile: float = 0.999, margin: float = 1.2
                      ) -> dict[str, list]:
        """Set every row tile's ADC full scale from calibration data, as a chip's per-layer
        ADC calibration does: the ``quantile`` of the absolute normalised column output over
        the batch ``x``, times ``margin`` (noise referred to the full scale follows it). Call
        it after
        :meth:`program`; tiles with an affine correction or drift compensation are
        re-calibrated. Returns the new full scales per matrix."""
        if not self.programmed_:
            raise StateError("calibrate_adc() needs a programmed network: call program(rng)")
        if not 0 < quantile <= 1 or margin <= 0:
            raise InputError(f"quantile = {quantile} must be in (0, 1] and margin = {margin} > 0")
        inputs: dict[tuple[str, str], list[np.ndarray]] = {}

        def capture(node: str, key: str, a: np.ndarray) -> np.ndarray:
            inputs.setdefault((node, key), []).append(a)
            return a @ dict(self.graph.nodes[node].matrices())[key]

        self.graph.forward(x, capture)
        out = {}
        for (node, key), arr in self.arrays.items():
            a = _tensor(np.concatenate(inputs[(node, key)]))
            xt = arr._to_tiles(a)
            if arr.config.input_scaling in ("fixed", "layer"):
                s = (arr.layer_range() if arr.input_range_ is not None or
                     arr.config.input_scaling == "fixed" else xt.abs().amax(dim=(0, 3)))
                s = s.to(xt)[None, :, :, None]
            else:
                s = xt.abs().amax(dim=3, keepdim=True)
            s = torch.where(s > 0, s, torch.ones_like(s))
            xn = (xt / s).clamp(-1, 1)
            y = torch.einsum("ngkr,gkrc->gkcn", xn, arr.w_norm().to(xn))
            q = torch.quantile(y.abs().reshape(y.shape[0], y.shape[1], -1).double(), quantile,
                               dim=-1)
            arr.output_range_ = np.maximum(q.numpy() * margin, 1e-6)
            if arr.config.affine_calibration or arr.config.drift_compensation != "none":
                arr._calibrate(np.random.default_rng(0))
                arr._times = {}
            out[f"{node}/{key}"] = arr.output_range_.tolist()
        return out

    def reference(self, x: Any) -> np.ndarray:
        """The exact (float64) output of the same graph, weights as trained."""
        return self.graph.forward(x)

    # -- reporting -------------------------------------------------------------------------------
    def report(self) -> Report:
        """The mapping report (:meth:`NetworkDescription.report`) with the device's name."""
        rep = self.description.report()
        rep["device"] = self.device.name
        return rep

    def saturation(self) -> Saturation:
        total = Saturation()
        for arr in self.arrays.values():
            total.add(arr.saturation_)
        return total

    def saturation_rate(self) -> float:
        return self.saturation().rate


def map_network(model: Any, tile: str | Path | TileConfig = "hermes-core",
                device: str | Path | Device = "pcm-hermes-2dev", *,
                fold_batchnorm: bool = True, exact: bool = False,
                **tile_overrides: Any) -> MappedNetwork:
    """Map a memsim :class:`Graph` onto tiles (``tile_overrides`` change tile parameters by
    name, e.g. ``adc_bits=None``; ``exact=True`` is the tile's noise-free limit). A torch
    module is converted with :func:`memsim.analog` instead."""
    if not isinstance(model, Graph):
        if type(model).__module__.startswith("torch") or hasattr(model, "named_modules"):
            raise ConfigError("map_network takes a memsim Graph; convert a torch model with "
                              "memsim.analog(model, tile=..., device=...), which keeps your "
                              "module and runs every op as torch does")
        raise ConfigError(f"map_network needs a memsim Graph, got {type(model).__name__}")
    graph = model.fold_batchnorm() if fold_batchnorm else model
    if graph.output is None:
        raise ConfigError(f"{graph.name}: no output set (call set_output)")
    cfg = tile if isinstance(tile, TileConfig) else load_tile_config(tile)
    if tile_overrides:
        cfg = cfg.with_(**tile_overrides)
    if exact:
        cfg = cfg.noise_free()
    dev = device if isinstance(device, Device) else load_device(device)
    CellModel(cfg, dev)  # validates the device/cell combination once, with a clear error
    description = describe_graph(graph, cfg)
    arrays = {}
    for node in graph.weight_nodes():
        for key, w in node.matrices():
            arrays[(node.name, key)] = TileArray(
                cfg, dev, w.shape, row_unit=_kernel_positions(node),
                name=f"{graph.name}/{node.name}" + (f"[{key}]" if key != "w" else ""),
                exact=exact)
    return MappedNetwork(graph, cfg, dev, description, arrays)
