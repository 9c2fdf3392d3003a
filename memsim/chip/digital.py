"""Digital baseline: the same network on a GPU- or CPU-class engine described by a card.

A roofline per layer: each weight layer and digital node takes
``max(FLOPs / (peak · efficiency), bytes / memory bandwidth) + per-layer overhead``; FLOPs are
2 per MAC of the weights (plus the element-wise ops of digital nodes, counted as in the chip
model); bytes are the weights (read once per batch) and the layer's input and output
activations, all from DRAM (a pessimistic bound for activations that would stay in cache).
Energy = FLOPs · pJ/FLOP + bytes · pJ/byte + static power · time.

The memory wall (:attr:`DigitalEstimate.wall_breakdown`): the same energy split into
arithmetic (FLOPs × the arithmetic energy of one operation at the engine's precision,
Horowitz ISSCC 2014), on-chip SRAM traffic (every weight and activation byte through
on-chip SRAM once, × pJ per SRAM byte), DRAM traffic of weights and of activations (as the
roofline counts them), the rest of the per-FLOP energy (register files, control, clocks:
the card's per-FLOP energy minus arithmetic and SRAM) and static power.

Card (``crossbars/<name>.toml``, ``[card] kind = "digital"``)::

    [compute]  peak (FLOP/s), efficiency (fraction of peak reached), bytes_per_value
    [memory]   bandwidth (B/s)
    [energy]   per_flop (J), per_flop_arithmetic (J), per_sram_byte (J), per_dram_byte (J),
               static_power (W)
    [overhead] per_layer (s)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memsim.cards import (
    CardError,
    Schema,
    Section,
    card_field,
    card_header,
    check_fields,
    check_kind,
    declared_sections,
    merged,
    read_card,
)
from memsim.chip.ops import is_view, node_ops
from memsim.errors import ConfigError
from memsim.mapping.description import LayerDesc, as_description

__all__ = ["DIGITAL_SCHEMA", "DigitalConfig", "DigitalEstimate", "load_digital",
           "load_digital_config"]


@dataclass(frozen=True, kw_only=True)
class DigitalConfig:
    """A digital engine (SI units)."""

    name: str = "custom"
    description: str = ""
    peak_flops: float = card_field("compute", "peak", dimension="op_rate", lo=0.0, hi=1e18,
                                   lo_open=True, help="peak arithmetic rate")
    efficiency: float = card_field("compute", lo=0.0, hi=1.0, lo_open=True,
                                   help="fraction of the peak reached on network layers")
    bytes_per_value: int = card_field("compute", lo=1, hi=8, integer=True,
                                      help="bytes of one weight or activation")
    memory_bandwidth_Bps: float = card_field("memory", "bandwidth", dimension="data_rate",
                                             lo=0.0, hi=1e15, lo_open=True,
                                             help="DRAM bandwidth")
    energy_per_flop_j: float = card_field("energy", "per_flop", dimension="energy", lo=0.0,
                                          hi=1e-6, help="energy of one operation, all in")
    energy_per_flop_arithmetic_j: float = card_field(
        "energy", "per_flop_arithmetic", dimension="energy", lo=0.0, hi=1e-6,
        help="the arithmetic part of it (Horowitz, ISSCC 2014)")
    energy_per_sram_byte_j: float = card_field("energy", "per_sram_byte", dimension="energy",
                                               lo=0.0, hi=1e-6,
                                               help="one byte through on-chip SRAM")
    energy_per_dram_byte_j: float = card_field("energy", "per_dram_byte", dimension="energy",
                                               lo=0.0, hi=1e-6, help="one byte from DRAM")
    static_power_w: float = card_field("energy", "static_power", dimension="power", lo=0.0,
                                       hi=1e5, help="static power of the engine")
    per_layer_overhead_s: float = card_field("overhead", "per_layer", dimension="time",
                                             lo=0.0, hi=1.0, help="fixed time per layer")
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_fields(self, f"digital engine {self.name!r}")

    def estimate(self, net: Any, batch: int = 1) -> DigitalEstimate:
        """Time and energy per inference of ``net`` (anything
        :func:`~memsim.mapping.description.as_description` accepts)."""
        if not (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1):
            raise ConfigError(f"batch = {batch!r} must be an integer >= 1")
        desc = _describe(net)
        shapes = desc.shapes
        bpv = self.bytes_per_value
        rate = self.peak_flops * self.efficiency
        t_batch = 0.0
        flops = 0.0
        nbytes = 0.0
        w_total = 0.0
        layers = []
        consumers: dict[str, int] = {}
        for node in desc.nodes.values():
            for i in node.inputs:
                consumers[i] = consumers.get(i, 0) + 1
        for node in desc.nodes.values():
            if node.op == "input" or _folded(node, desc.nodes, consumers):
                continue
            out = _size(shapes[node.name])
            inp = sum(_size(shapes[i]) for i in node.inputs)
            if isinstance(node, LayerDesc):
                weights = node.weights
                # its products, plus its own digital work (an attention's scores, softmax
                # and weighted sum) where the description counts it
                f = (2.0 * weights * node.mvms_per_inference + (node.digital_ops or 0.0)) \
                    * batch
                w_bytes = weights * bpv
                a_bytes = (inp + out) * bpv * batch
            else:
                if is_view(node):
                    continue  # a view: no work, no traffic
                f = node_ops(node, shapes) * batch
                w_bytes = 0.0
                a_bytes = (inp + out) * bpv * batch
            b = w_bytes + a_bytes
            t = max(f / rate, b / self.memory_bandwidth_Bps) + self.per_layer_overhead_s
            layers.append({"name": node.name, "op": node.op, "flops": f / batch,
                           "bytes": b / batch, "weight_bytes": w_bytes / batch,
                           "activation_bytes": a_bytes / batch, "time_s": t,
                           "bound": "compute" if f / rate >= b / self.memory_bandwidth_Bps
                           else "memory"})
            t_batch += t
            flops += f
            nbytes += b
            w_total += w_bytes
        e_compute = flops * self.energy_per_flop_j / batch
        e_memory = nbytes * self.energy_per_dram_byte_j / batch
        e_static = self.static_power_w * t_batch / batch
        traffic = {"dram_weight_bytes": w_total / batch,
                   "dram_activation_bytes": (nbytes - w_total) / batch,
                   "sram_bytes": nbytes / batch}
        arith = flops / batch * self.energy_per_flop_arithmetic_j
        sram = traffic["sram_bytes"] * self.energy_per_sram_byte_j
        wall = {"arithmetic": arith, "SRAM": sram,
                "DRAM weights": traffic["dram_weight_bytes"] * self.energy_per_dram_byte_j,
                "DRAM activations": (traffic["dram_activation_bytes"]
                                     * self.energy_per_dram_byte_j),
                "other per-FLOP": e_compute - arith - sram, "static": e_static}
        return DigitalEstimate(self.name, desc.name, batch, t_batch, batch / t_batch,
                               {"compute": e_compute, "DRAM": e_memory, "static": e_static},
                               flops / batch, nbytes / batch, layers, wall, traffic)


def _size(shape: tuple[int, ...]) -> float:
    return float(math.prod(shape)) if shape else 1.0


def _folded(node: Any, nodes: dict[str, Any], consumers: dict[str, int]) -> bool:
    """A batch norm right after a linear or convolution layer (its only consumer): folded
    into that layer's weights and bias, as an inference deployment runs it and as
    :meth:`~memsim.mapping.graph.Graph.fold_batchnorm` (and so :func:`memsim.map_network`)
    folds it. It then costs no work and no traffic of its own, whichever path described the
    network."""
    if node.op != "batchnorm" or len(node.inputs) != 1:
        return False
    src = nodes.get(node.inputs[0])
    return (isinstance(src, LayerDesc) and src.op in ("linear", "conv1d", "conv2d")
            and consumers.get(src.name, 0) == 1)


def _describe(net: Any):
    """The description of ``net``; a Graph is cut for a default tile (the digital engine
    needs only the matrices and the MVMs per inference, not the cut)."""
    from memsim.crossbar.config import TileConfig

    return as_description(net, TileConfig())


@dataclass
class DigitalEstimate:
    """Time and energy per inference on a digital engine."""

    engine: str
    network: str
    batch: int
    latency_s: float  # one batch
    throughput_per_s: float
    energy_breakdown: dict[str, float]  # J per inference
    flops_per_inference: float
    bytes_per_inference: float
    layers: list[dict[str, Any]] = field(repr=False, default_factory=list)
    wall_breakdown: dict[str, float] = field(default_factory=dict)  # J per inference
    traffic: dict[str, float] = field(default_factory=dict)  # bytes per inference

    @property
    def energy_j(self) -> float:
        return sum(self.energy_breakdown.values())

    @property
    def tops(self) -> float:
        return self.flops_per_inference * self.throughput_per_s / 1e12

    @property
    def tops_per_w(self) -> float:
        return self.flops_per_inference / self.energy_j / 1e12

    def to_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "network": self.network, "batch": self.batch,
                "latency_s": self.latency_s, "throughput_per_s": self.throughput_per_s,
                "energy_j": self.energy_j, "energy_breakdown_j": self.energy_breakdown,
                "flops_per_inference": self.flops_per_inference,
                "bytes_per_inference": self.bytes_per_inference, "tops": self.tops,
                "tops_per_w": self.tops_per_w, "wall_breakdown_j": self.wall_breakdown,
                "traffic_bytes": self.traffic}


def _sections() -> tuple[Section, ...]:
    helps = {"compute": "the arithmetic", "memory": "DRAM",
             "energy": "energy per operation and per byte, static power",
             "overhead": "fixed costs"}
    return (card_header("digital", "engine"), *declared_sections(DigitalConfig, helps))


#: The declaration of digital-engine cards (``[card] kind = "digital"``).
DIGITAL_SCHEMA = Schema(
    kind="digital", title="Digital-engine card", folder="crossbars", sections=_sections(),
    help="A GPU- or CPU-class engine for the digital baselines: a roofline per layer "
         "(memsim.chip.load_digital_config). Every field is required.")


def load_digital_config(name_or_path: str | Path) -> DigitalConfig:
    """The config of a digital engine from its card (``crossbars/<name>.toml`` or a path),
    as :func:`~memsim.crossbar.load_tile_config` and :func:`~memsim.chip.load_chip_config`
    return theirs; its :meth:`DigitalConfig.estimate` computes (the engine is a roofline
    with no state of its own, so there is no separate engine object)."""
    name, data = read_card(name_or_path, "crossbars")
    where = f"digital card {name!r}"
    check_kind(data, "kind", "digital", where)
    parts = DIGITAL_SCHEMA.parse(data, where)
    body = merged(parts, *(s.name for s in DIGITAL_SCHEMA.sections[1:]))
    try:
        return DigitalConfig(name=name, description=parts["card"].values.get("description", ""),
                             sources=body.sources, **body.values)
    except ConfigError as exc:  # pragma: no cover - the card's ranges are the same
        raise CardError(f"{where}: {exc}") from None


def load_digital(name_or_path: str | Path) -> DigitalConfig:
    """Deprecated name of :func:`load_digital_config` (a ``load_*`` without ``_config``
    returns an engine; this returns a config). Warns, then loads the same config."""
    warnings.warn("memsim.chip.load_digital is now load_digital_config (it returns the "
                  "DigitalConfig)", DeprecationWarning, stacklevel=2)
    return load_digital_config(name_or_path)
