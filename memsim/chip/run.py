"""The result of a chip run: times, action counts, energy = counts × table, area, per layer."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Any

from memsim._format import Report
from memsim.chip.energy import ANALOG, EnergyTable

__all__ = ["ChipRun", "steady_inferences", "steady_state"]


#: Fewest completions that make a steady-state window (three intervals).
STEADY_MIN = 4


def steady_inferences(in_flight: int) -> int:
    """Inferences a run needs for a steady-state window (:func:`steady_state`) with
    ``in_flight`` of them admitted at once."""
    return 3 * in_flight + 2 * STEADY_MIN


def steady_state(t_start: list[float], t_done: list[float], latency_s: float
                 ) -> tuple[float, str | None]:
    """(inferences per second in steady state, warning or None).

    The slope (least squares) of the completion count over time, in a window that leaves
    out the fill and the drain. Fill: the first half of the completions while inferences
    are being admitted, and at least as many as were admitted at once at the start. Drain:
    the completions after the last admission, which can come faster than the steady state,
    for example when the inputs of new inferences no longer share the off-chip port. The
    window holds at least as many completions as were admitted at once (one turn of the
    admission loop: completions can come in bursts of that period). A shorter run (fewer
    than about three times the inferences in flight) has no steady state: the rate is
    then the run's mean, inferences / (last completion − first admission), which counts
    fill and drain, and the warning says so. One inference: 1 / latency.
    """
    t = sorted(t_done)
    n = len(t)
    first = min(t_start)
    if n == 1:
        return 1.0 / latency_s, None
    fed = bisect.bisect_right(t, max(t_start))  # completions while still admitting
    initial = sum(1 for s in t_start if s == first)  # admitted at once, at the start
    k0 = max(fed // 2, initial)
    win = t[k0:fed]
    if len(win) >= max(STEADY_MIN, initial) and win[-1] > win[0]:
        tm = sum(win) / len(win)
        im = (len(win) - 1) / 2.0
        sxx = sum((x - tm) ** 2 for x in win)
        return sum((x - tm) * (i - im) for i, x in enumerate(win)) / sxx, None
    return n / (t[-1] - first), (
        f"throughput_per_s: {n} inferences with {initial} admitted at once reach no steady "
        f"state; it is the run's mean rate ({n} / makespan, fill and drain included); "
        f"simulate at least {steady_inferences(initial)} inferences for the steady rate")


@dataclass
class ChipRun:
    """What a simulated run reports. Energy numbers are per inference unless named total.

    ``counts`` are the action counts of the whole run (all inferences), static block-seconds
    (``static:<block>``: every block of every chip powered for the whole run) included;
    energy is ``counts × table`` and :meth:`recost` swaps the table without simulating
    again. ``counts_by_layer`` splits the dynamic counts by the layer (or digital node)
    that caused them.
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
    counts_by_layer: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    layer_spans: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    layer_cells: dict[str, float] = field(default_factory=dict, repr=False)
    bands: dict[str, int] = field(default_factory=dict, repr=False)
    area_breakdown_m2: dict[str, float] = field(default_factory=dict, repr=False)
    options: dict[str, Any] = field(default_factory=dict)
    #: whether ``throughput_per_s`` is a steady-state rate (False: the run's mean rate, the
    #: run too short for a steady state; :func:`steady_state`)
    steady: bool = True

    # -- energy -----------------------------------------------------------------------------
    @property
    def total_energy_breakdown(self) -> dict[str, float]:
        """Energy of the whole run per component (J)."""
        return self.table.cost(self.counts)

    @property
    def energy_breakdown(self) -> dict[str, float]:
        """Energy per inference per component (J); static blocks as "<block> (static)"."""
        return {k: v / self.inferences for k, v in self.total_energy_breakdown.items()}

    @property
    def total_energy_j(self) -> float:
        return sum(self.total_energy_breakdown.values())

    @property
    def energy_j(self) -> float:
        """Energy per inference (J), all components."""
        return self.total_energy_j / self.inferences

    @property
    def static_energy_j(self) -> float:
        """Static energy per inference (J)."""
        return sum(v for k, v in self.energy_breakdown.items() if k.endswith("(static)"))

    @property
    def analog_energy_j(self) -> float:
        """Energy per inference of the arrays, converters and drivers (J)."""
        return sum(v for k, v in self.energy_breakdown.items() if k in ANALOG)

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

    # -- area -------------------------------------------------------------------------------
    @property
    def area_mm2(self) -> float:
        """Silicon area of all chips of the run (mm²)."""
        return sum(self.area_breakdown_m2.values()) * 1e6 * self.chips

    @property
    def tops_per_mm2(self) -> float:
        return self.tops / self.area_mm2 if self.area_mm2 else float("nan")

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

    def layers(self) -> list[dict[str, Any]]:
        """Per layer (and digital node on the global unit or host): cores, copies, bands,
        its span in the first inference (start, end, latency), its cores' busy share, the
        share of its arrays' cells it uses, and its dynamic energy per inference by
        component."""
        util = self.utilization
        out = []
        names = list(self.placement) + [n for n in self.counts_by_layer
                                        if n not in self.placement]
        for name in names:
            cores = self.placement.get(name, [])
            u = [util.get(c, 0.0) for c in cores]
            energy = {k: v / self.inferences
                      for k, v in self.table.cost(self.counts_by_layer.get(name, {})).items()}
            span = self.layer_spans.get(name)
            if not cores and not energy and span is None:
                continue  # nothing to show (e.g. the input node)
            t0, t1 = span if span is not None else (None, None)
            out.append({"name": name, "cores": len(cores),
                        "copies": self.replicas.get(name, 1), "bands": self.bands.get(name, 1),
                        "start_s": t0, "end_s": t1,
                        "latency_s": None if span is None else t1 - t0,
                        "core_utilization": sum(u) / len(u) if u else None,
                        "cell_utilization": self.layer_cells.get(name),
                        "energy_j": sum(energy.values()), "energy_breakdown_j": energy})
        return out

    # -- output -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        util = self.utilization
        area = self.area_mm2
        return {
            "chip": self.chip, "network": self.network, "inferences": self.inferences,
            "granularity": self.granularity, "fit": self.fit, "chips": self.chips,
            "options": self.options,
            "latency_s": self.latency_s, "latency_loaded_s": self.latency_loaded_s,
            "throughput_per_s": self.throughput_per_s, "throughput_steady": self.steady,
            "makespan_s": self.makespan_s,
            "ops_per_inference": self.ops_per_inference,
            "energy_j": self.energy_j, "energy_breakdown_j": self.energy_breakdown,
            "static_energy_j": self.static_energy_j,
            "power_w": self.power_w, "tops": self.tops, "tops_per_w": self.tops_per_w,
            "area_mm2": area, "tops_per_mm2": self.tops_per_mm2,
            "gops_per_mm2": 1e3 * self.tops_per_mm2,
            "area_breakdown_mm2": {k: v * 1e6 * self.chips
                                   for k, v in self.area_breakdown_m2.items()},
            "cores_used": len(self.core_busy_s), "cores_available": self.cores_available,
            "mean_utilization": self.mean_utilization,
            "core_utilization": {str(c): u for c, u in util.items()},
            "global_unit_utilization": (self.gdu_busy_s / self.makespan_s
                                        if self.makespan_s else 0.0),
            "placement": self.placement, "replicas": self.replicas,
            "layers": self.layers(),
            "action_counts_per_inference": {k: v / self.inferences
                                            for k, v in sorted(self.counts.items()) if v},
            "energy_table_j": self.table.to_dict(), "energy_table": self.table.name,
            "events": self.events, "wall_s": self.wall_s,
            "events_per_s": self.events / self.wall_s if self.wall_s else None,
            "warnings": self.warnings, "notes": self.notes, "segments": self.segments,
        }

    def report(self) -> Report:
        """The run's numbers (:meth:`to_dict`) as a :class:`~memsim.Report`; printed, the
        text report in engineering units."""
        from memsim.chip.format import format_run

        return Report("chip-run", self.to_dict(), format_run)
