"""``memsim chip``: simulate a network on a chip card, print the report, draw the figures;
``--validate`` and ``--calibrate`` hold the card against its paper."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from memsim.cli._common import emit
from memsim.errors import ConfigError

__all__ = ["add_parser", "chip_overrides", "run"]

# CLI flag -> load_chip override (item: overrides without copying cards)
_OVERRIDES = {"cores": "cores", "rows": "rows", "cols": "cols", "adc_bits": "adc_bits",
              "dac_bits": "dac_bits", "encoding": "encoding", "clock": "mvm_clock_hz",
              "ldpu_clock": "ldpu_clock_hz", "gdu_clock": "gdu_clock_hz"}


def chip_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The chip overrides given on the command line."""
    return {key: getattr(args, flag) for flag, key in _OVERRIDES.items()
            if getattr(args, flag, None) is not None}


def run(args: argparse.Namespace) -> int:
    import numpy as np

    import memsim.chip as mc
    from memsim.chip.plan import count_cores
    from memsim.chip.run import steady_inferences
    from memsim.chip.sim import default_in_flight
    from memsim.workloads import list_workloads, load_workload, workload_names
    from memsim.workloads.shapes import SETUPS
    from memsim.workloads.trained import describe_trained

    networks = list_workloads()
    if args.list:
        print("networks: " + ", ".join(workload_names()))
        print("chips:    " + ", ".join(mc.list_chips("chip")))
        print("digital:  " + ", ".join(mc.list_chips("digital")))
        return 0
    overrides = chip_overrides(args)
    setup = SETUPS.get(args.network or "", {})
    if setup and "encoding" not in overrides and args.chip == setup.get("chip"):
        overrides["encoding"] = setup["encoding"]
        print(f"note: {args.network} runs in {setup['encoding']} as in its paper "
              f"({setup['source']}); --encoding changes it", file=sys.stderr)
    chip = mc.load_chip(args.chip, **overrides)
    if args.validate:
        emit(mc.validation_table(chip, granularity=args.granularity), args.json)
        return 0
    if args.calibrate:
        emit(mc.calibration_table(chip, mvms_per_core=args.mvms, granularity=args.granularity),
             args.json)
        return 0
    if not args.network:
        raise ConfigError("give --network NAME (see --list), --validate or --calibrate")
    if args.network in networks or args.network not in workload_names():
        graph = load_workload(args.network, np.random.default_rng(args.seed))
    else:  # a trained torch workload without a Graph (transformer): recorded on one input
        graph = describe_trained(args.network, chip.config.tile)
    desc = chip.describe(graph)
    replicate = None if args.replicate == "none" else args.replicate
    fit = args.fit
    if fit == "auto":  # the CLI's default: say so, never silently
        need, have = count_cores(desc), chip.config.cores
        fit = "error" if need <= have else "multi-chip"
        if fit == "multi-chip":
            print(f"note: {args.network} needs {need} cores but {chip.name} has {have}: "
                  f"simulating {-(-need // have)} chips (--fit error refuses, --fit reprogram "
                  "re-programs one chip)", file=sys.stderr)
    inferences = args.inferences
    if inferences is None:  # enough for a steady state with the default inferences in flight
        inferences = max(100, steady_inferences(default_in_flight(len(desc.layers))))
    run = chip.simulate(desc, inferences=inferences, granularity=args.granularity,
                        fit=fit, replicate=replicate, placement=args.placement,
                        streaming=not args.layer_by_layer, activations=args.activations)
    digital = []
    names = [] if args.digital in ("", "none") else args.digital.split(",")
    for name in names:
        digital.append(mc.load_digital_config(name.strip()).estimate(desc, batch=args.batch))
    paths: list[Path] = []
    if not args.no_figures:
        from memsim.chip.figures import write_chip_figures

        out = Path(args.out) if args.out else Path("memsim-out") / f"chip-{args.network}-" \
            f"{chip.name}"
        paths = write_chip_figures(run, out, digital=digital)
    report = run.report()
    report["digital"] = [x.to_dict() for x in digital]
    report["figures"] = [str(p) for p in paths]
    emit(report, args.json, paths)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "chip", help="simulate a network on a multi-core chip: latency, throughput, energy",
        description="Map a known network onto a chip card's cores and simulate pipelined "
        "inferences on a discrete-event scheduler (SimPy). Prints latency, throughput, energy "
        "per inference with its breakdown, TOPS, TOPS/W, area and TOPS/mm², and a per-layer "
        "breakdown, next to digital GPU/CPU baselines; writes a Gantt chart of core activity, "
        "an energy chart and a per-layer chart. --validate fits the HERMES card on the first "
        "row of its paper's Table I and compares the other rows; --calibrate runs the peak "
        "workload against the card's paper.")
    p.add_argument("--network", help="network name (see --list), e.g. resnet9-hermes")
    p.add_argument("--chip", default="hermes-64core",
                   help="chip card name or path (default hermes-64core)")
    p.add_argument("--list", action="store_true", help="list networks, chips and digital "
                   "engines and exit")
    p.add_argument("--inferences", type=int, default=None,
                   help="pipelined inferences to simulate (default 100, or three times the "
                        "inferences in flight and 8 more where that is more: enough for a "
                        "steady-state throughput)")
    p.add_argument("--granularity", choices=("burst", "mvm"), default="burst",
                   help="one event per burst of MVMs (default) or per MVM (exact, slow)")
    p.add_argument("--fit", choices=("auto", "error", "multi-chip", "reprogram"),
                   default="auto",
                   help="when the network needs more cores than the chip has: auto (default: "
                   "several chips, with a note), error, multi-chip, or re-programming between "
                   "layer groups")
    p.add_argument("--replicate", choices=("none", "auto"), default="none",
                   help="copy bottleneck layers into spare cores (default none)")
    p.add_argument("--placement", choices=("greedy", "snake", "row-major"), default="greedy",
                   help="placement of the layers' arrays on the cores (default greedy)")
    p.add_argument("--layer-by-layer", action="store_true",
                   help="run each layer of an image after all its inputs exist (default: "
                   "input vectors stream through the layer pipeline)")
    p.add_argument("--activations", choices=("on-chip", "off-chip"), default="on-chip",
                   help="off-chip: every value between layers goes through the host, as in "
                   "the HERMES paper's measurements (default on-chip); the host's digital "
                   "work is not timed, so off-chip can be faster: on hermes-64core, "
                   "ResNet-9's first max-pool (112x32x32 values at one per 2.5 ns) leaves "
                   "its home core's local unit, 287 us of its 828 us per inference")
    g = p.add_argument_group("chip overrides (no card copy needed)")
    g.add_argument("--cores", type=int, help="cores per chip")
    g.add_argument("--rows", type=int, help="array rows per core")
    g.add_argument("--cols", type=int, help="array columns per core")
    g.add_argument("--adc-bits", type=int, help="ADC resolution")
    g.add_argument("--dac-bits", type=int, help="DAC (input) resolution")
    g.add_argument("--encoding", choices=("pwm_1phase", "pwm_4phase", "amplitude"),
                   help="input encoding of the cores (default: the tile card's, or the "
                   "network's paper setup)")
    g.add_argument("--clock", type=float, help="MVM clock in Hz (one PWM LSB per clock)")
    g.add_argument("--ldpu-clock", type=float, help="local digital unit clock in Hz")
    g.add_argument("--gdu-clock", type=float, help="global digital unit clock in Hz")
    p.add_argument("--digital", default="digital-gpu,digital-cpu",
                   help="comma-separated digital engine cards to compare with, or 'none'")
    p.add_argument("--batch", type=int, default=1, help="batch size of the digital engines "
                   "(default 1)")
    p.add_argument("--validate", action="store_true",
                   help="fit the card on its paper's first measured row, print memsim vs "
                   "paper for the other rows, and exit")
    p.add_argument("--calibrate", action="store_true",
                   help="peak MVMs on all cores vs the card's paper, and exit")
    p.add_argument("--mvms", type=int, default=1000,
                   help="MVMs per core of the --calibrate run (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (timing "
                   "does not depend on them)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--out", help="folder for figures (default memsim-out/chip-NETWORK-CHIP)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(func=run)
    return p
