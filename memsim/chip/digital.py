"""Digital baseline: the same network on a GPU- or CPU-class engine described by a card.

A roofline per layer: each weight layer and digital node takes
``max(FLOPs / (peak · efficiency), bytes / memory bandwidth) + per-layer overhead``; FLOPs are
2 per MAC of the weights (plus the element-wise ops of digital nodes, counted as in the chip
model); bytes are the weights (read once per batch) and the layer's input and output
activations, all from DRAM (a pessimistic bound for activations that would stay in cache).
Energy = FLOPs · pJ/FLOP + bytes · pJ/byte + static power · time.

Card (``crossbars/<name>.toml``, ``[card] kind = "digital"``)::

    [compute]  peak (FLOP/s), efficiency (fraction of peak reached), bytes_per_value
    [memory]   bandwidth (B/s)
    [energy]   per_flop (J), per_dram_byte (J), static_power (W)
    [overhead] per_layer (s)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memsim.cards import As, CardError, Field, parse_section, read_card
from memsim.chip.plan import node_ops
from memsim.mapping.graph import WEIGHT_OPS, Graph

__all__ = ["DigitalConfig", "DigitalEstimate", "load_digital"]


@dataclass(frozen=True, kw_only=True)
class DigitalConfig:
    """A digital engine (SI units)."""

    name: str = "custom"
    description: str = ""
    peak_flops: float
    efficiency: float
    bytes_per_value: int
    memory_bandwidth_Bps: float
    energy_per_flop_j: float
    energy_per_dram_byte_j: float
    static_power_w: float
    per_layer_overhead_s: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("peak_flops", "memory_bandwidth_Bps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise CardError(f"digital engine {self.name!r}: {name} = {v!r} is out of "
                                "range; allowed (0, inf)")
        if not 0 < self.efficiency <= 1:
            raise CardError(f"digital engine {self.name!r}: efficiency = {self.efficiency!r} "
                            "is out of range; allowed (0, 1]")
        for name in ("energy_per_flop_j", "energy_per_dram_byte_j", "static_power_w",
                     "per_layer_overhead_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise CardError(f"digital engine {self.name!r}: {name} = {v!r} is out of "
                                "range; allowed [0, inf)")

    def estimate(self, net: Any, batch: int = 1) -> DigitalEstimate:
        """Time and energy per inference of ``net`` (a Graph or MappedNetwork)."""
        if not (isinstance(batch, int) and batch >= 1):
            raise ValueError(f"batch = {batch!r} must be an integer >= 1")
        graph: Graph = net if isinstance(net, Graph) else net.graph
        shapes = graph.shapes() if isinstance(net, Graph) else dict(net.shapes)
        shapes.setdefault("input", graph.input_shape)
        bpv = self.bytes_per_value
        rate = self.peak_flops * self.efficiency
        t_batch = 0.0
        flops = 0.0
        nbytes = 0.0
        layers = []
        for node in graph.nodes.values():
            if node.op == "input":
                continue
            out = float(np.prod(shapes[node.name]))
            inp = sum(float(np.prod(shapes[i])) for i in node.inputs)
            if node.op in WEIGHT_OPS:
                weights = sum(m.size for _, m in node.matrices())
                in_shape = shapes[node.inputs[0]]
                if node.op == "conv2d":
                    reps = shapes[node.name][1] * shapes[node.name][2]
                elif node.op == "conv1d":
                    reps = shapes[node.name][1]
                elif node.op in ("lstm", "gru"):
                    reps = in_shape[0]
                else:
                    reps = int(np.prod(in_shape[:-1])) if len(in_shape) > 1 else 1
                f = 2.0 * weights * reps * batch
                b = weights * bpv + (inp + out) * bpv * batch
            else:
                if node.op in ("flatten", "identity", "last_step"):
                    continue  # a view: no work, no traffic
                f = node_ops(node, shapes) * batch
                b = (inp + out) * bpv * batch
            t = max(f / rate, b / self.memory_bandwidth_Bps) + self.per_layer_overhead_s
            layers.append({"name": node.name, "op": node.op, "flops": f / batch,
                           "bytes": b / batch, "time_s": t,
                           "bound": "compute" if f / rate >= b / self.memory_bandwidth_Bps
                           else "memory"})
            t_batch += t
            flops += f
            nbytes += b
        e_compute = flops * self.energy_per_flop_j / batch
        e_memory = nbytes * self.energy_per_dram_byte_j / batch
        e_static = self.static_power_w * t_batch / batch
        return DigitalEstimate(self.name, graph.name, batch, t_batch, batch / t_batch,
                               {"compute": e_compute, "DRAM": e_memory, "static": e_static},
                               flops / batch, nbytes / batch, layers)


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
                "tops_per_w": self.tops_per_w}


_SCHEMA: dict[str, dict[str, As]] = {
    "compute": {
        "peak": As("peak_flops", Field(dimension="op_rate", lo=0, hi=1e18, lo_open=True)),
        "efficiency": As("efficiency", Field(dimension="dimensionless", lo=0, hi=1,
                                           lo_open=True)),
        "bytes_per_value": As("bytes_per_value", Field(dimension="dimensionless", lo=1, hi=8,
                                                     integer=True)),
    },
    "memory": {
        "bandwidth": As("memory_bandwidth_Bps", Field(dimension="data_rate", lo=0, hi=1e15,
                                                    lo_open=True)),
    },
    "energy": {
        "per_flop": As("energy_per_flop_j", Field(dimension="energy", lo=0, hi=1e-6)),
        "per_dram_byte": As("energy_per_dram_byte_j", Field(dimension="energy", lo=0, hi=1e-6)),
        "static_power": As("static_power_w", Field(dimension="power", lo=0, hi=1e5)),
    },
    "overhead": {
        "per_layer": As("per_layer_overhead_s", Field(dimension="time", lo=0, hi=1.0)),
    },
}


def load_digital(name_or_path: str | Path) -> DigitalConfig:
    """A digital engine from its card (``crossbars/<name>.toml`` or a path)."""
    name, data = read_card(name_or_path, "crossbars")
    where = f"digital card {name!r}"
    card = data.get("card", {})
    if card.get("kind") != "digital":
        raise CardError(f"{where}: card.kind = {card.get('kind')!r}; a digital engine card "
                        "needs 'digital'")
    if set(card) - {"kind", "description"}:
        raise CardError(f"{where}: [card] has unknown fields "
                        f"{sorted(set(card) - {'kind', 'description'})}; allowed: "
                        "['description', 'kind']")
    unknown = set(data) - {"card", *_SCHEMA}
    if unknown:
        raise CardError(f"{where}: unknown sections {sorted(unknown)}; allowed: "
                        f"{sorted({'card', *_SCHEMA})}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for section, schema in _SCHEMA.items():
        if not isinstance(data.get(section), Mapping):
            raise CardError(f"{where}: section [{section}] is missing")
        v, src = parse_section(data[section], section, schema, where)
        missing = set(schema) - set(data[section])
        if missing:
            raise CardError(f"{where}: {section}.{sorted(missing)[0]} is missing")
        values.update(v)
        sources.update(src)
    return DigitalConfig(name=name, description=str(card.get("description", "")),
                         sources=sources, **values)
