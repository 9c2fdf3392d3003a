"""The chip level: cores, on-chip network, digital units and I/O on a discrete-event scheduler.

::

    chip = memsim.load_chip("hermes-64core")        # crossbars/<name>.toml or a path
    run = chip.simulate(net, inferences=100)         # net: a MappedNetwork (or a Graph)
    run.latency_s, run.throughput_per_s, run.energy_j, run.tops, run.tops_per_w
    run.energy_breakdown                             # J per inference per component
    run.recost(other_table)                          # same counts, another energy table

The scheduler knows timing and counts, not conductances: timing does not depend on the data,
so a mapping is simulated once. See :mod:`memsim.chip.plan` (where work and data go),
:mod:`memsim.chip.sim` (the SimPy processes) and :mod:`memsim.chip.card` (chip cards).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from memsim.chip.card import (
    ChipConfig,
    EnergyTable,
    load_chip_config,
    load_energy_table,
)
from memsim.chip.digital import DigitalConfig, DigitalEstimate, load_digital
from memsim.chip.plan import FIT_MODES, Plan, build_plan, count_cores, peak_plan
from memsim.chip.run import ChipRun, steady_throughput
from memsim.chip.sim import GRANULARITIES, simulate_plan

__all__ = [
    "HERMES_REFERENCE",
    "Chip",
    "ChipConfig",
    "ChipRun",
    "DigitalConfig",
    "DigitalEstimate",
    "EnergyTable",
    "calibration_table",
    "list_chips",
    "load_chip",
    "load_digital",
    "load_energy_table",
]

# Le Gallo et al., Nat. Electron. 6, 680 (2023): 8-bit MVMs on all 64 cores.
HERMES_REFERENCE = {"pwm_1phase": {"tops": 63.1, "tops_per_w": 9.76},
                    "pwm_4phase": {"tops": 16.1, "tops_per_w": 2.48}}


def list_chips(kind: str = "chip") -> list[str]:
    """Names of the shipped cards of ``kind`` ("chip" or "digital") in ``crossbars/``."""
    import tomllib

    from memsim.cards import card_dir, list_cards

    out = []
    for name in list_cards("crossbars"):
        for folder in card_dir("crossbars"):
            p = folder / f"{name}.toml"
            if p.is_file():
                with p.open("rb") as fh:
                    if tomllib.load(fh).get("card", {}).get("kind") == kind:
                        out.append(name)
                break
    return out


class Chip:
    """A chip built from a card. Constructors store; :meth:`simulate` computes."""

    def __init__(self, config: ChipConfig) -> None:
        self.config = config

    def __repr__(self) -> str:
        c = self.config
        return (f"Chip({c.name!r}, {c.cores} cores {c.grid_rows}x{c.grid_cols}, tile "
                f"{c.tile.name!r} {c.tile.rows}x{c.tile.cols}, {c.tile.encoding})")

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def energy_table(self) -> EnergyTable:
        return self.config.energy

    # -- networks ---------------------------------------------------------------------------
    def map(self, graph: Any, device: str | None = None, **tile_overrides: Any):
        """Map a Graph (or torch module, with ``input_shape=``) onto this chip's tile."""
        from memsim.mapping import map_network

        return map_network(graph, tile=self.config.tile, device=device or self.config.device,
                           **tile_overrides)

    def plan(self, net: Any, *, chips: int = 1, replicate: Any = None,
             placement: str = "greedy") -> Plan:
        """The placement and work plan of ``net`` on ``chips`` chips (no simulation)."""
        net = self._mapped(net)
        return build_plan(net, self.config, chips=chips, replicate=replicate,
                          placement=placement)

    def _mapped(self, net: Any):
        from memsim.mapping import Graph, MappedNetwork

        if isinstance(net, Graph):
            net = self.map(net)
        if not isinstance(net, MappedNetwork):
            raise TypeError(f"simulate() needs a MappedNetwork (memsim.map_network) or a "
                            f"Graph, got {type(net).__name__}")
        t, c = net.tile_config, self.config.tile
        if (t.rows, t.cols) != (c.rows, c.cols):
            raise ValueError(f"the network was mapped on {t.rows}x{t.cols} tiles but the cores "
                             f"of chip {self.name!r} have {c.rows}x{c.cols} arrays; map it "
                             f"with tile={c.name!r}")
        return net

    def simulate(self, net: Any, inferences: int = 100, *, granularity: str = "burst",
                 fit: str = "error", replicate: Any = None, placement: str = "greedy",
                 in_flight: int | None = None, record: bool = True) -> ChipRun:
        """Simulate ``inferences`` pipelined inferences of ``net``.

        Args:
            net: a MappedNetwork mapped on this chip's tile geometry (its tile config gives
                the operating mode: encoding, DAC and ADC bits), or a Graph (mapped here).
            granularity: "burst" (one event per job of MVMs) or "mvm" (exact, per MVM).
            fit: what to do when the network needs more cores than the chip has: "error"
                (ValueError), "multi-chip" (as many chips as needed, linked through their
                off-chip ports) or "reprogram" (run layer groups one after the other and
                re-program the cores in between; time and energy of programming counted).
            replicate: None, "auto" (copy bottleneck layers into spare cores) or
                {layer: copies}; copies share a layer's MVMs of each inference.
            placement: "greedy" (next to the producers), "snake" or "row-major".
            in_flight: inferences admitted at once (default: weight layers + 2).
            record: keep the per-core timeline and the transfers (for figures).
        """
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity = {granularity!r}; allowed: {list(GRANULARITIES)}")
        if fit not in FIT_MODES:
            raise ValueError(f"fit = {fit!r}; allowed: {list(FIT_MODES)}")
        net = self._mapped(net)
        cfg = self.config
        need = count_cores(net)
        if fit == "reprogram" and need > cfg.cores:
            return self._reprogram(net, inferences, granularity, replicate, placement,
                                   in_flight, record)
        chips = 1
        if need > cfg.cores:
            if fit == "error":
                raise ValueError(
                    f"network {net.graph.name!r} needs {need} cores (one {cfg.tile.rows}x"
                    f"{cfg.tile.cols} array per core) but chip {cfg.name!r} has {cfg.cores}; "
                    f"pass fit='multi-chip' ({math.ceil(need / cfg.cores)} chips) or "
                    f"fit='reprogram'")
            chips = math.ceil(need / cfg.cores)
        plan = build_plan(net, cfg, chips=chips, replicate=replicate, placement=placement)
        run = self._run(plan, inferences, granularity, in_flight, record, fit, net.tile_config)
        if chips > 1:
            run.notes.append(f"fit='multi-chip': {chips} chips of {cfg.cores} cores, linked "
                             "through their off-chip ports")
        return run

    def _run(self, plan: Plan, inferences: int, granularity: str, in_flight: int | None,
             record: bool, fit: str, tile: Any) -> ChipRun:
        cfg = self.config
        res = simulate_plan(plan, cfg, inferences, granularity=granularity,
                            in_flight=in_flight, record=record)
        alone = simulate_plan(plan, cfg, 1, granularity=granularity, record=False) \
            if inferences > 1 else res
        latency = alone.t_done[0] - alone.t_start[0]
        counts = dict(res.counts)
        powered = plan.chips * cfg.cores
        counts["core_static_s"] = powered * res.makespan_s
        loaded = sum(d - s for d, s in zip(res.t_done, res.t_start, strict=True)) / inferences
        return ChipRun(
            chip=cfg.name, network=plan.name, inferences=inferences, granularity=granularity,
            fit=fit, chips=plan.chips, latency_s=latency, latency_loaded_s=loaded,
            throughput_per_s=steady_throughput(res.t_done, latency),
            makespan_s=res.makespan_s, ops_per_inference=plan.ops_per_inference,
            counts=counts, table=cfg.energy, core_busy_s=res.busy_s,
            gdu_busy_s=res.gdu_busy_s, placement=plan.placement, replicas=plan.replicas,
            events=res.events + alone.events * (alone is not res),
            wall_s=res.wall_s + alone.wall_s * (alone is not res), timeline=res.timeline,
            transfers=res.transfers, warnings=list(plan.warnings), notes=list(plan.notes),
            cores_available=powered)

    def _reprogram(self, net: Any, inferences: int, granularity: str, replicate: Any,
                   placement: str, in_flight: int | None, record: bool) -> ChipRun:
        """Layer groups that fit, one after the other; cores re-programmed in between."""
        cfg = self.config
        segments: list[list[str]] = [[]]
        used = 0
        for lm in net.layers:
            if lm.tiles > cfg.cores:
                raise ValueError(f"layer {lm.name!r} alone needs {lm.tiles} cores but chip "
                                 f"{cfg.name!r} has {cfg.cores}: it cannot be re-programmed "
                                 "in pieces; use fit='multi-chip'")
            if used + lm.tiles > cfg.cores:
                segments.append([])
                used = 0
            segments[-1].append(lm.name)
            used += lm.tiles
        by_name = {lm.name: lm for lm in net.layers}
        t_cfg = net.tile_config
        cells_per_weight = 2 * t_cfg.devices_per_polarity * cfg.weight_slices
        offset = 0.0
        counts: dict[str, float] = {}
        busy: dict[int, float] = {}
        timeline: list[tuple[str, float, float, str]] = []
        seg_info = []
        events, wall, gdu_busy = 0, 0.0, 0.0
        latency = 0.0
        ops = 0.0
        placement_out: dict[str, list[int]] = {}
        reps: dict[str, int] = {}
        warnings: list[str] = []
        for k, seg in enumerate(segments):
            plan = build_plan(net, cfg, layers=seg, replicate=replicate, placement=placement)
            # programming: every block of the segment, cores in parallel, after the upload
            per_core: dict[int, float] = {}
            weight_bytes = 0.0
            devices = 0.0
            for name in seg:
                for m in by_name[name].matrices:
                    for b in m.blocks:
                        n_dev = b.shape[0] * b.shape[1] * cells_per_weight
                        devices += n_dev * plan.replicas[name]
                        weight_bytes += b.shape[0] * b.shape[1] * plan.replicas[name] \
                            * cfg.activation_bytes
            for name, cs in plan.placement.items():
                lm = by_name[name]
                blocks = [b for m in lm.matrices for b in m.blocks] * plan.replicas[name]
                for c, b in zip(cs, blocks, strict=True):
                    n_dev = b.shape[0] * b.shape[1] * cells_per_weight
                    per_core[c] = math.ceil(n_dev / cfg.program_parallel_devices) \
                        * cfg.program_time_per_device_s
            upload = weight_bytes / cfg.io_bandwidth_Bps
            prog = upload + max(per_core.values())
            counts["program_device"] = counts.get("program_device", 0.0) + devices
            counts["offchip_byte"] = counts.get("offchip_byte", 0.0) + weight_bytes
            res = simulate_plan(plan, cfg, inferences, granularity=granularity,
                                in_flight=in_flight, record=record)
            alone = simulate_plan(plan, cfg, 1, granularity=granularity, record=False)
            for c, t in per_core.items():
                timeline.append((f"core{c}", offset + upload, offset + upload + t,
                                 f"program seg{k}"))
                busy[c] = busy.get(c, 0.0) + t
            for key, v in res.counts.items():
                counts[key] = counts.get(key, 0.0) + v
            for c, b in res.busy_s.items():
                busy[c] = busy.get(c, 0.0) + b
            timeline += [(r, offset + prog + a, offset + prog + b, lab)
                         for r, a, b, lab in res.timeline]
            last = k == len(segments) - 1
            latency = offset + prog + (alone.t_done[0] if last else res.makespan_s)
            seg_info.append({"layers": seg, "cores": len(plan.cores_used),
                             "program_time_s": prog, "run_time_s": res.makespan_s,
                             "program_devices": devices})
            offset += prog + res.makespan_s
            events += res.events + alone.events
            wall += res.wall_s + alone.wall_s
            gdu_busy += res.gdu_busy_s
            ops += plan.ops_per_inference
            placement_out.update(plan.placement)
            reps.update(plan.replicas)
            warnings += plan.warnings
        counts["core_static_s"] = cfg.cores * offset
        return ChipRun(
            chip=cfg.name, network=net.graph.name, inferences=inferences,
            granularity=granularity, fit="reprogram", chips=1, latency_s=latency,
            latency_loaded_s=latency, throughput_per_s=inferences / offset, makespan_s=offset,
            ops_per_inference=ops, counts=counts, table=cfg.energy, core_busy_s=busy,
            gdu_busy_s=gdu_busy, placement=placement_out, replicas=reps, events=events,
            wall_s=wall, timeline=sorted(timeline, key=lambda x: (x[1], x[0])),
            warnings=warnings,
            notes=[f"fit='reprogram': {len(segments)} layer groups run one after the other "
                   f"on {cfg.cores} cores, re-programmed in between; the batch of "
                   f"{inferences} inferences amortises the programming, latency_s is the "
                   "first inference's completion"],
            segments=seg_info, cores_available=cfg.cores)

    # -- calibration ---------------------------------------------------------------------------
    def peak(self, mvms_per_core: int = 1000, *, encoding: str | None = None,
             granularity: str = "burst", cores: int | None = None) -> ChipRun:
        """Back-to-back full-array MVMs on all cores (the peak-throughput workload), run on
        the simulator; ``run.tops`` and ``run.tops_per_w`` are the chip's peak figures."""
        cfg = self.config.with_(encoding=encoding) if encoding else self.config
        plan = peak_plan(cfg, mvms_per_core, cores=cores)
        chip = Chip(cfg)
        run = chip._run(plan, 1, granularity, None, False, "error", cfg.tile)
        run.network = f"peak: {mvms_per_core} MVMs x {len(plan.cores_used)} cores, " \
                      f"{cfg.tile.encoding}"
        return run


def load_chip(name_or_path: str | Path, **overrides: Any) -> Chip:
    """A chip from its card (``crossbars/<name>.toml`` or a path). ``overrides`` change card
    fields by name (e.g. ``encoding="pwm_4phase"``, ``hop_latency_s=1e-9``)."""
    return Chip(load_chip_config(name_or_path, **overrides))


def calibration_table(chip: Chip | str = "hermes-64core", mvms_per_core: int = 1000,
                      granularity: str = "burst") -> list[dict[str, Any]]:
    """Simulated peak TOPS and TOPS/W in 1- and 4-phase mode against the HERMES paper."""
    chip = load_chip(chip) if isinstance(chip, str | Path) else chip
    rows = []
    for enc, ref in HERMES_REFERENCE.items():
        run = chip.peak(mvms_per_core, encoding=enc, granularity=granularity)
        rows.append({"mode": enc, "tops": run.tops, "tops_paper": ref["tops"],
                     "tops_error": run.tops / ref["tops"] - 1,
                     "tops_per_w": run.tops_per_w, "tops_per_w_paper": ref["tops_per_w"],
                     "tops_per_w_error": run.tops_per_w / ref["tops_per_w"] - 1,
                     "mvm_time_s": chip.config.with_(encoding=enc).mvm_time_s(),
                     "mvm_energy_j": run.energy_j / (mvms_per_core * chip.config.cores),
                     "energy_breakdown_j": {k: v / (mvms_per_core * chip.config.cores)
                                            for k, v in run.energy_breakdown.items()},
                     "events": run.events})
    return rows


