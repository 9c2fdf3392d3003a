"""The result of a chip run: times, action counts, energy = counts × table, utilization."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from memsim.chip.card import EnergyTable

__all__ = ["ChipRun", "steady_throughput"]


def steady_throughput(t_done: list[float], latency_s: float) -> float:
    """Inferences per second in steady state: completions of the second half of the run
    (the first half fills the pipeline); one inference: 1 / latency."""
    t = sorted(t_done)
    n = len(t)
    if n == 1:
        return 1.0 / latency_s
    k0 = n // 2 if n >= 4 else 0
    span = t[-1] - t[k0]
    return (n - 1 - k0) / span if span > 0 else float("inf")


@dataclass
class ChipRun:
    """What a simulated run reports. Energy numbers are per inference unless named total.

    ``counts`` are the action counts of the whole run (all inferences); energy is
    ``counts × table`` and :meth:`recost` swaps the table without simulating again.
    """

    chip: str
    network: str
    inferences: int
    granularity: str
    fit: str
    chips: int
    latency_s: float  # one inference through the empty chip
    latency_loaded_s: float  # mean latency of the inferences of the pipelined run
    throughput_per_s: float
    makespan_s: float
    ops_per_inference: float
    counts: dict[str, float]
    table: EnergyTable
    core_busy_s: dict[int, float]
    gdu_busy_s: float
    placement: dict[str, list[int]]
    replicas: dict[str, int]
    events: int
    wall_s: float
    timeline: list[tuple[str, float, float, str]] = field(default_factory=list, repr=False)
    transfers: list[tuple] = field(default_factory=list, repr=False)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    cores_available: int = 0

    # -- energy -----------------------------------------------------------------------------
    @property
    def total_energy_breakdown(self) -> dict[str, float]:
        """Energy of the whole run per component (J)."""
        return self.table.cost(self.counts)

    @property
    def energy_breakdown(self) -> dict[str, float]:
        """Energy per inference per component (J)."""
        return {k: v / self.inferences for k, v in self.total_energy_breakdown.items()}

    @property
    def total_energy_j(self) -> float:
        return sum(self.total_energy_breakdown.values())

    @property
    def energy_j(self) -> float:
        """Energy per inference (J), all components."""
        return self.total_energy_j / self.inferences

    @property
    def tops(self) -> float:
        """Useful operations (2 per MAC of the weights) per second, in TOPS, steady state."""
        return self.ops_per_inference * self.throughput_per_s / 1e12

    @property
    def tops_per_w(self) -> float:
        return self.ops_per_inference / self.energy_j / 1e12 if self.energy_j else float("inf")

    @property
    def power_w(self) -> float:
        return self.energy_j * self.throughput_per_s

    def recost(self, table: EnergyTable) -> ChipRun:
        """The same run costed with another per-action energy table (no re-simulation)."""
        for action, n in self.counts.items():
            if n:
                table[action]  # a clear error if the new table lacks an action of the run
        return replace(self, table=table)

    # -- utilization -------------------------------------------------------------------------
    @property
    def utilization(self) -> dict[int, float]:
        """Busy fraction of every used core over the run."""
        if self.makespan_s <= 0:
            return dict.fromkeys(self.core_busy_s, 0.0)
        return {c: b / self.makespan_s for c, b in sorted(self.core_busy_s.items())}

    @property
    def mean_utilization(self) -> float:
        """Mean busy fraction over all cores of the chip(s), idle ones included."""
        total = self.cores_available or len(self.core_busy_s)
        return sum(self.utilization.values()) / total if total else 0.0

    # -- output -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        util = self.utilization
        return {
            "chip": self.chip, "network": self.network, "inferences": self.inferences,
            "granularity": self.granularity, "fit": self.fit, "chips": self.chips,
            "latency_s": self.latency_s, "latency_loaded_s": self.latency_loaded_s,
            "throughput_per_s": self.throughput_per_s, "makespan_s": self.makespan_s,
            "ops_per_inference": self.ops_per_inference,
            "energy_j": self.energy_j, "energy_breakdown_j": self.energy_breakdown,
            "power_w": self.power_w, "tops": self.tops, "tops_per_w": self.tops_per_w,
            "cores_used": len(self.core_busy_s), "cores_available": self.cores_available,
            "mean_utilization": self.mean_utilization,
            "core_utilization": {str(c): u for c, u in util.items()},
            "global_unit_utilization": (self.gdu_busy_s / self.makespan_s
                                        if self.makespan_s else 0.0),
            "placement": self.placement, "replicas": self.replicas,
            "action_counts_per_inference": {k: v / self.inferences
                                            for k, v in sorted(self.counts.items()) if v},
            "energy_table_j": self.table.to_dict(), "energy_table": self.table.name,
            "events": self.events, "wall_s": self.wall_s,
            "events_per_s": self.events / self.wall_s if self.wall_s else None,
            "warnings": self.warnings, "notes": self.notes, "segments": self.segments,
        }

    def report(self) -> str:
        """A plain-text report (engineering units)."""
        from memsim.chip.format import format_run

        return format_run(self.to_dict())
