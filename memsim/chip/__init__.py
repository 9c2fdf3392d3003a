"""The chip level: cores, on-chip network, digital units and I/O on a discrete-event scheduler.

::

    chip = memsim.load_chip("hermes-64core")        # crossbars/<name>.toml or a path
    run = chip.simulate(net, inferences=100)         # a NetworkDescription, MappedNetwork,
                                                     # memsim Graph or analog torch model
    run.latency_s, run.throughput_per_s, run.energy_j, run.tops, run.tops_per_w
    run.energy_breakdown                             # J per inference per component
    run.layers()                                     # latency, energy, utilisation per layer
    run.recost(other_table)                          # same counts, another energy table

The chip reads a network only through its :class:`~memsim.mapping.description.
NetworkDescription` (:func:`~memsim.mapping.description.as_description`): timing does not
depend on the weights, so a mapping is simulated once. Modules, in the order of the data
flow: :mod:`~memsim.chip.card` (chip cards), :mod:`~memsim.chip.topology` (the on-chip
network used by placement and routing), :mod:`~memsim.chip.plan` (where work and data go),
:mod:`~memsim.chip.hardware` (SimPy classes of cores, links and units),
:mod:`~memsim.chip.sim` (the scheduler), :mod:`~memsim.chip.run` (results),
:mod:`~memsim.chip.energy` (energy and area tables), :mod:`~memsim.chip.validate` (the
cards against their papers), :mod:`~memsim.chip.digital` (GPU/CPU baselines).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from memsim.chip.card import ChipConfig, load_chip_config, load_energy_table
from memsim.chip.digital import (
    DigitalConfig,
    DigitalEstimate,
    load_digital,
    load_digital_config,
)
from memsim.chip.energy import Component, EnergyTable
from memsim.chip.plan import ACTIVATION_MODES, FIT_MODES, Plan, build_plan, count_cores, peak_plan
from memsim.chip.run import ChipRun, steady_state
from memsim.chip.sim import GRANULARITIES, simulate_plan
from memsim.chip.topology import TOPOLOGIES, Topology
from memsim.errors import ConfigError, InputError

__all__ = [
    "TOPOLOGIES",
    "Chip",
    "ChipConfig",
    "ChipRun",
    "Component",
    "DigitalConfig",
    "DigitalEstimate",
    "EnergyTable",
    "Topology",
    "calibration_table",
    "list_chips",
    "load_chip",
    "load_digital",
    "load_digital_config",
    "load_energy_table",
    "validation_table",
]


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
        return (f"Chip({c.name!r}, {c.cores} cores, {c.topo.describe()}, tile "
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

    def describe(self, net: Any):
        """The :class:`~memsim.mapping.description.NetworkDescription` of ``net`` (a
        description, MappedNetwork, memsim Graph — cut for this chip's tile — or analog
        torch model), checked against this chip's array size."""
        from memsim.mapping.description import as_description

        desc = as_description(net, self.config.tile)
        c = self.config.tile
        for layer in desc.layers:
            if (layer.array_rows, layer.array_cols) != (c.rows, c.cols):
                raise ConfigError(
                    f"the network was mapped on {layer.array_rows}x{layer.array_cols} arrays "
                    f"but the cores of chip {self.name!r} have {c.rows}x{c.cols} arrays; map "
                    f"it with tile={c.name!r} (or load the chip with rows=, cols=)")
        return desc

    def _mode(self, desc: Any) -> tuple[Any, list[str]]:
        """The operating mode (encoding, converter bits) of the run: the network's tile."""
        from memsim.crossbar.config import TileConfig

        t = desc.tile if isinstance(desc.tile, TileConfig) else self.config.tile
        c = self.config.tile
        notes = []
        diff = [f"{k} {getattr(t, k)!r} (chip card: {getattr(c, k)!r})"
                for k in ("encoding", "dac_bits", "adc_bits") if getattr(t, k) != getattr(c, k)]
        if diff:
            notes.append("operating mode from the network's tile: " + ", ".join(diff))
        return t, notes

    def plan(self, net: Any, *, chips: int = 1, replicate: Any = None,
             placement: str = "greedy", streaming: bool = True,
             activations: str = "on-chip", preloaded: bool = False) -> Plan:
        """The placement and work plan of ``net`` on ``chips`` chips (no simulation)."""
        desc = self.describe(net)
        tile, _ = self._mode(desc)
        return build_plan(desc, self.config, tile=tile, chips=chips, replicate=replicate,
                          placement=placement, streaming=streaming, activations=activations,
                          preloaded=preloaded)

    def simulate(self, net: Any, inferences: int = 100, *, granularity: str = "burst",
                 fit: str = "error", replicate: Any = None, placement: str = "greedy",
                 in_flight: int | None = None, record: bool = True, streaming: bool = True,
                 activations: str = "on-chip", preloaded: bool = False) -> ChipRun:
        """Simulate ``inferences`` pipelined inferences of ``net``.

        Args:
            net: a NetworkDescription, MappedNetwork, memsim Graph (cut here for this chip's
                tile) or analog torch model; its tile gives the operating mode (encoding,
                DAC and ADC bits).
            granularity: "burst" (one event per job of MVMs) or "mvm" (exact, per MVM).
            fit: what to do when the network needs more cores than the chip has: "error",
                "multi-chip" (as many chips as needed, linked through their off-chip ports)
                or "reprogram" (layer groups one after the other, cores re-programmed in
                between; time and energy of programming counted).
            replicate: None, "auto" (copy bottleneck layers into spare cores) or
                {layer: copies}; copies share a layer's MVMs of each inference.
            placement: "greedy" (next to the producers), "snake" or "row-major".
            in_flight: inferences admitted at once (default: weight layers + 2).
            record: keep the per-core timeline and the transfers (for figures).
            streaming: input vectors flow through the layer pipeline within an image (bands
                of output rows); False runs each layer of an image after its inputs are
                complete.
            activations: "on-chip", or "off-chip" (every value between layers through the
                host, digital nodes on the host, as in the HERMES paper's measurements).
                The host's work is not timed and on chip a layer's producer-side nodes
                (pooling) run on its home core after its MVMs, so off-chip can be faster:
                on hermes-64core ResNet-9's first max-pool (112·32·32 values, one per
                2.5 ns local-unit cycle) adds 287 µs to its home core's 541 µs of MVMs.
            preloaded: the network's inputs are already in the cores' buffers and its
                outputs stay in the cores (no off-chip transfers of inputs and outputs).
        """
        if granularity not in GRANULARITIES:
            raise ConfigError(f"granularity = {granularity!r}; allowed: {list(GRANULARITIES)}")
        if fit not in FIT_MODES:
            raise ConfigError(f"fit = {fit!r}; allowed: {list(FIT_MODES)}")
        if activations not in ACTIVATION_MODES:
            raise ConfigError(f"activations = {activations!r}; allowed: "
                              f"{list(ACTIVATION_MODES)}")
        desc = self.describe(net)
        tile, notes = self._mode(desc)
        cfg = self.config
        opts = {"streaming": streaming, "activations": activations, "preloaded": preloaded,
                "placement": placement, "encoding": tile.encoding, "dac_bits": tile.dac_bits,
                "adc_bits": tile.adc_bits}
        need = count_cores(desc)
        if need == 0:  # nothing for the arrays: TOPS and TOPS/W would be 0/0 and x/0
            raise InputError(f"network {desc.name!r} has no weight layers, so nothing of it "
                             f"runs on the arrays of chip {cfg.name!r}; its digital "
                             "operations alone are not an analog-chip workload")
        if fit == "reprogram" and need > cfg.cores:
            return self._reprogram(desc, tile, inferences, granularity, replicate, placement,
                                   in_flight, record, opts, notes)
        chips = 1
        if need > cfg.cores:
            if fit == "error":
                raise ConfigError(
                    f"network {desc.name!r} needs {need} cores (one {cfg.tile.rows}x"
                    f"{cfg.tile.cols} array per core) but chip {cfg.name!r} has {cfg.cores}; "
                    f"pass fit='multi-chip' ({math.ceil(need / cfg.cores)} chips) or "
                    f"fit='reprogram'")
            chips = math.ceil(need / cfg.cores)
        plan = build_plan(desc, cfg, tile=tile, chips=chips, replicate=replicate,
                          placement=placement, streaming=streaming, activations=activations,
                          preloaded=preloaded)
        run = self._run(plan, inferences, granularity, in_flight, record, fit, opts)
        run.notes += notes
        if chips > 1:
            run.notes.append(f"fit='multi-chip': {chips} chips of {cfg.cores} cores, linked "
                             "through their off-chip ports")
        return run

    def _run(self, plan: Plan, inferences: int, granularity: str, in_flight: int | None,
             record: bool, fit: str, opts: dict[str, Any]) -> ChipRun:
        cfg = self.config
        res = simulate_plan(plan, cfg, inferences, granularity=granularity,
                            in_flight=in_flight, record=record)
        alone = simulate_plan(plan, cfg, 1, granularity=granularity, record=False) \
            if inferences > 1 else res
        latency = alone.t_done[0] - alone.t_start[0]
        counts = dict(res.counts)
        counts.update(cfg.static_counts(res.makespan_s, plan.chips))
        loaded = sum(d - s for d, s in zip(res.t_done, res.t_start, strict=True)) / inferences
        throughput, short = steady_state(res.t_start, res.t_done, latency)
        return ChipRun(
            chip=cfg.name, network=plan.name, inferences=inferences, granularity=granularity,
            fit=fit, chips=plan.chips, latency_s=latency, latency_loaded_s=loaded,
            throughput_per_s=throughput,
            makespan_s=res.makespan_s, ops_per_inference=plan.ops_per_inference,
            counts=counts, table=cfg.energy, core_busy_s=res.busy_s,
            gdu_busy_s=res.gdu_busy_s, placement=plan.placement, replicas=plan.replicas,
            events=res.events + alone.events * (alone is not res),
            wall_s=res.wall_s + alone.wall_s * (alone is not res), timeline=res.timeline,
            transfers=res.transfers, warnings=[*plan.warnings, *([short] if short else [])],
            notes=list(plan.notes),
            cores_available=plan.chips * cfg.cores, counts_by_layer=res.counts_by_layer,
            layer_spans=alone.layer_spans, layer_cells=dict(plan.utilization),
            bands=dict(plan.bands), area_breakdown_m2=cfg.area_breakdown_m2(),
            options=dict(opts), steady=short is None)

    def _reprogram(self, desc: Any, tile: Any, inferences: int, granularity: str,
                   replicate: Any, placement: str, in_flight: int | None, record: bool,
                   opts: dict[str, Any], notes: list[str]) -> ChipRun:
        """Layer groups that fit, one after the other; cores re-programmed in between."""
        cfg = self.config
        segments: list[list[str]] = [[]]
        used = 0
        for layer in desc.layers:
            if layer.arrays > cfg.cores:
                raise ConfigError(f"layer {layer.name!r} alone needs {layer.arrays} cores but "
                                  f"chip {cfg.name!r} has {cfg.cores}: it cannot be "
                                  "re-programmed in pieces; use fit='multi-chip'")
            if used + layer.arrays > cfg.cores:
                segments.append([])
                used = 0
            segments[-1].append(layer.name)
            used += layer.arrays
        cells_per_weight = 2 * tile.devices_per_polarity * cfg.weight_slices
        offset = 0.0
        counts: dict[str, float] = {}
        by_layer: dict[str, dict[str, float]] = {}
        busy: dict[int, float] = {}
        timeline: list[tuple[str, float, float, str]] = []
        seg_info = []
        events, wall, gdu_busy, latency, ops = 0, 0.0, 0.0, 0.0, 0.0
        placement_out: dict[str, list[int]] = {}
        reps: dict[str, int] = {}
        spans: dict[str, tuple[float, float]] = {}
        cells: dict[str, float] = {}
        bands: dict[str, int] = {}
        warnings: list[str] = []
        for k, seg in enumerate(segments):
            plan = build_plan(desc, cfg, tile=tile, layers=seg, replicate=replicate,
                              placement=placement, streaming=opts["streaming"],
                              activations=opts["activations"])
            per_core: dict[int, float] = {}
            weight_bytes = devices = 0.0
            for name, cores in plan.placement.items():
                layer = desc.nodes[name]
                arrays: dict[int, int] = {}
                for b in layer.blocks:
                    arrays[b.array] = arrays.get(b.array, 0) + b.cells
                copies = plan.replicas[name]
                for c, n_cells in zip(cores, list(arrays.values()) * copies, strict=True):
                    n_dev = n_cells * cells_per_weight
                    devices += n_dev
                    weight_bytes += n_cells * cfg.activation_bytes
                    per_core[c] = (math.ceil(n_dev / cfg.program_parallel_devices)
                                   * cfg.program_iterations * cfg.program_iteration_s)
            upload = weight_bytes / cfg.io_bandwidth_Bps
            prog = upload + max(per_core.values())
            counts["program_device"] = counts.get("program_device", 0.0) + devices
            counts["offchip_byte"] = counts.get("offchip_byte", 0.0) + weight_bytes
            prog_layer = by_layer.setdefault("programming", {})
            prog_layer["program_device"] = prog_layer.get("program_device", 0.0) + devices
            prog_layer["offchip_byte"] = prog_layer.get("offchip_byte", 0.0) + weight_bytes
            res = simulate_plan(plan, cfg, inferences, granularity=granularity,
                                in_flight=in_flight, record=record)
            alone = simulate_plan(plan, cfg, 1, granularity=granularity, record=False)
            for c, t in per_core.items():
                timeline.append((f"core{c}", offset + upload, offset + upload + t,
                                 f"program seg{k}"))
                busy[c] = busy.get(c, 0.0) + t
            for key, v in res.counts.items():
                counts[key] = counts.get(key, 0.0) + v
            for layer, lc in res.counts_by_layer.items():
                mine = by_layer.setdefault(layer, {})
                for key, v in lc.items():
                    mine[key] = mine.get(key, 0.0) + v
            for c, b in res.busy_s.items():
                busy[c] = busy.get(c, 0.0) + b
            timeline += [(r, offset + prog + a, offset + prog + b, lab)
                         for r, a, b, lab in res.timeline]
            for layer, (a, b) in alone.layer_spans.items():
                spans[layer] = (offset + prog + a, offset + prog + b)
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
            cells.update(plan.utilization)
            bands.update(plan.bands)
            warnings += plan.warnings
        counts.update(cfg.static_counts(offset, 1))
        return ChipRun(
            chip=cfg.name, network=desc.name, inferences=inferences,
            granularity=granularity, fit="reprogram", chips=1, latency_s=latency,
            latency_loaded_s=latency, throughput_per_s=inferences / offset, makespan_s=offset,
            ops_per_inference=ops, counts=counts, table=cfg.energy, core_busy_s=busy,
            gdu_busy_s=gdu_busy, placement=placement_out, replicas=reps, events=events,
            wall_s=wall, timeline=sorted(timeline, key=lambda x: (x[1], x[0])),
            warnings=warnings,
            notes=[*notes, f"fit='reprogram': {len(segments)} layer groups run one after the "
                   f"other on {cfg.cores} cores, re-programmed in between; the batch of "
                   f"{inferences} inferences amortises the programming, latency_s is the "
                   "first inference's completion"],
            segments=seg_info, cores_available=cfg.cores, counts_by_layer=by_layer,
            layer_spans=spans, layer_cells=cells, bands=bands,
            area_breakdown_m2=cfg.area_breakdown_m2(), options=dict(opts))

    # -- peak workload -------------------------------------------------------------------------
    def peak(self, mvms_per_core: int = 1000, *, encoding: str | None = None,
             granularity: str = "burst", cores: int | None = None,
             post_process: bool = True) -> ChipRun:
        """Back-to-back full-array MVMs on all cores, inputs in the cores' buffers (the
        peak-throughput workload), run on the simulator. ``post_process=False`` leaves the
        outputs as ADC values (no local digital work), as HERMES' Table I MVM row."""
        cfg = self.config.with_(encoding=encoding) if encoding else self.config
        plan = peak_plan(cfg, mvms_per_core, cores=cores, post_process=post_process)
        chip = Chip(cfg)
        run = chip._run(plan, 1, granularity, None, False, "error",
                        {"encoding": cfg.tile.encoding, "post_process": post_process,
                         "preloaded": True})
        run.network = (f"peak: {mvms_per_core} MVMs x {len(plan.cores_used)} cores, "
                       f"{cfg.tile.encoding}")
        return run


def load_chip(name_or_path: str | Path, **overrides: Any) -> Chip:
    """A chip from its card (``crossbars/<name>.toml`` or a path). ``overrides`` change card
    fields by name (e.g. ``encoding="pwm_4phase"``, ``cores=32``, ``adc_bits=6``,
    ``mvm_clock_hz=2e9``; see :meth:`ChipConfig.with_`)."""
    return Chip(load_chip_config(name_or_path, **overrides))


def calibration_table(chip: Chip | str = "hermes-64core", **kwargs: Any) -> dict[str, Any]:
    """The chip's peak figures against its own paper (see :mod:`memsim.chip.validate`)."""
    from memsim.chip.validate import calibrate

    return calibrate(load_chip(chip) if isinstance(chip, str | Path) else chip, **kwargs)


def validation_table(chip: Chip | str = "hermes-64core", **kwargs: Any) -> dict[str, Any]:
    """Fit on the paper's first measured row, validate on the others (see
    :mod:`memsim.chip.validate`)."""
    from memsim.chip.validate import validate

    return validate(load_chip(chip) if isinstance(chip, str | Path) else chip, **kwargs)
