"""``memsim chip``: simulate a network on a chip card, print the report, draw the figures.

Registered by :func:`add_parser` on the subparsers of ``memsim`` (see :mod:`memsim.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from memsim.chip.plan import count_cores

__all__ = ["add_parser", "format_calibration", "format_run", "run_chip_command"]


def _helpers():
    from memsim._format import engineering
    from memsim._format import table as _table

    return _table, engineering


def format_run(d: dict[str, Any], digital: list[dict[str, Any]] | None = None) -> str:
    """The text report of a chip run (the dict of :meth:`ChipRun.to_dict`)."""
    table, eng = _helpers()
    lines = [f"memsim chip {d['chip']}: {d['network']}, {d['inferences']} pipelined "
             f"inferences ({d['granularity']} events, fit {d['fit']}, {d['chips']} chip(s))",
             ""]
    rows = [
        ["latency (one inference, empty chip)", eng(d["latency_s"], "s")],
        ["latency (mean, pipelined)", eng(d["latency_loaded_s"], "s")],
        ["throughput (steady state)", f"{d['throughput_per_s']:.5g} inferences/s"],
        ["energy per inference", eng(d["energy_j"], "J")],
        ["average power", eng(d["power_w"], "W")],
        ["ops per inference (2 per MAC)", f"{d['ops_per_inference']:.4g}"],
        ["throughput", f"{d['tops']:.4g} TOPS"],
        ["energy efficiency", f"{d['tops_per_w']:.4g} TOPS/W"],
        ["cores used / available", f"{d['cores_used']} / {d['cores_available']}"],
        ["mean core utilization (all cores)", f"{100 * d['mean_utilization']:.1f} %"],
        ["global digital unit utilization", f"{100 * d['global_unit_utilization']:.1f} %"],
        ["simulated events / wall time", f"{d['events']} / {d['wall_s']:.3g} s"],
    ]
    lines.append(table(["quantity", "value"], rows, left=1))
    total = d["energy_j"] or 1.0
    comp = sorted(d["energy_breakdown_j"].items(), key=lambda kv: -kv[1])
    lines += ["", "Energy per inference by component (counts × per-action table "
                  f"{d['energy_table']!r})"]
    lines.append(table(["component", "energy", "share"],
                       [[c, eng(v, "J"), f"{100 * v / total:.1f} %"] for c, v in comp],
                       left=1))
    util = {int(k): v for k, v in d["core_utilization"].items()}
    lrows = []
    for layer, cores in d["placement"].items():
        u = [util.get(c, 0.0) for c in cores]
        lrows.append([layer, str(len(cores)), str(d["replicas"].get(layer, 1)),
                      f"{100 * sum(u) / len(u):.1f} %" if u else "—",
                      _cores_text(cores)])
    lines += ["", "Placement (one array per core) and utilization"]
    lines.append(table(["layer", "cores", "copies", "mean util.", "cores (index)"], lrows,
                       left=1))
    if d.get("segments"):
        lines += ["", "Re-programming segments"]
        lines.append(table(["segment", "layers", "cores", "program time", "run time"],
                           [[str(k), f"{s['layers'][0]} … {s['layers'][-1]}",
                             str(s["cores"]), eng(s["program_time_s"], "s"),
                             eng(s["run_time_s"], "s")]
                            for k, s in enumerate(d["segments"])], left=2))
    if digital:
        lines += ["", "Analog chip vs digital engines (per inference)"]
        rows = [[d["chip"], eng(d["latency_s"], "s"), f"{d['throughput_per_s']:.4g}/s",
                 eng(d["energy_j"], "J"), "1"]]
        for x in digital:
            rows.append([x["engine"] + (f" (batch {x['batch']})" if x["batch"] > 1 else ""),
                         eng(x["latency_s"], "s"), f"{x['throughput_per_s']:.4g}/s",
                         eng(x["energy_j"], "J"), f"{x['energy_j'] / total:.3g}"])
        lines.append(table(["engine", "latency", "throughput", "energy", "× chip energy"],
                           rows, left=1))
    for w in d.get("warnings", [])[:10]:
        lines.append(f"warning: {w}")
    if len(d.get("warnings", [])) > 10:
        lines.append(f"warning: … and {len(d['warnings']) - 10} more (see --json)")
    for n in d.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _cores_text(cores: list[int]) -> str:
    s = sorted(cores)
    if not s:
        return ""
    parts, start, prev = [], s[0], s[0]
    for c in [*s[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    text = ",".join(parts)
    return text if len(text) <= 40 else text[:39] + "…"


def format_calibration(rows: list[dict[str, Any]]) -> str:
    table, eng = _helpers()
    out = ["Peak 8-bit MVMs on all cores, simulated vs Le Gallo et al. 2023 (HERMES)"]
    out.append(table(
        ["mode", "MVM time", "MVM energy", "TOPS", "paper", "error", "TOPS/W", "paper",
         "error"],
        [[r["mode"], eng(r["mvm_time_s"], "s"), eng(r["mvm_energy_j"], "J"),
          f"{r['tops']:.2f}", f"{r['tops_paper']:.2f}", f"{100 * r['tops_error']:+.2f} %",
          f"{r['tops_per_w']:.3f}", f"{r['tops_per_w_paper']:.2f}",
          f"{100 * r['tops_per_w_error']:+.2f} %"] for r in rows], left=1))
    comps = list(rows[0]["energy_breakdown_j"])
    out += ["", "Energy of one MVM by component"]
    out.append(table(["mode", *comps],
                     [[r["mode"], *(eng(r["energy_breakdown_j"][c], "J") for c in comps)]
                      for r in rows], left=1))
    return "\n".join(out)


def run_chip_command(args: argparse.Namespace) -> int:
    import numpy as np

    import memsim.chip as mc
    from memsim.workloads import list_workloads, load_workload

    if args.list:
        print("networks: " + ", ".join(list_workloads()))
        print("chips:    " + ", ".join(mc.list_chips("chip")))
        print("digital:  " + ", ".join(mc.list_chips("digital")))
        return 0
    chip = mc.load_chip(args.chip)
    if args.calibrate:
        rows = mc.calibration_table(chip, mvms_per_core=args.mvms, granularity=args.granularity)
        if args.json:
            print(json.dumps({"chip": chip.name, "calibration": rows}, indent=2))
        else:
            print(format_calibration(rows))
        return 0
    if not args.network:
        raise ValueError("give --network NAME (see --list) or --calibrate")
    graph = load_workload(args.network, np.random.default_rng(args.seed))
    overrides = {"encoding": args.encoding} if args.encoding else {}
    net = chip.map(graph, device=args.device, **overrides)
    replicate = None if args.replicate == "none" else args.replicate
    fit = args.fit
    if fit == "auto":  # the CLI's default: say so, never silently
        need, have = count_cores(net), chip.config.cores
        fit = "error" if need <= have else "multi-chip"
        if fit == "multi-chip":
            print(f"note: {args.network} needs {need} cores but {chip.name} has {have}: "
                  f"simulating {-(-need // have)} chips (--fit error refuses, --fit reprogram "
                  "re-programs one chip)", file=sys.stderr)
    run = chip.simulate(net, inferences=args.inferences, granularity=args.granularity,
                        fit=fit, replicate=replicate, placement=args.placement)
    digital = []
    names = [] if args.digital in ("", "none") else args.digital.split(",")
    for name in names:
        digital.append(mc.load_digital(name.strip()).estimate(net, batch=args.batch))
    paths: list[Path] = []
    if not args.no_figures:
        from memsim.chip.figures import write_chip_figures

        out = Path(args.out) if args.out else Path("memsim-out") / f"chip-{args.network}-" \
            f"{chip.name}"
        paths = write_chip_figures(run, out, digital=digital)
    result = run.to_dict()
    result["digital"] = [x.to_dict() for x in digital]
    result["figures"] = [str(p) for p in paths]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_run(result, result["digital"]))
        for p in paths:
            print(f"figure: {p}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``memsim chip`` on the ``argparse`` subparsers object ``sub``."""
    p = sub.add_parser(
        "chip", help="simulate a network on a multi-core chip: latency, throughput, energy",
        description="Map a known network onto a chip card's cores and simulate pipelined "
        "inferences on a discrete-event scheduler (SimPy). Prints latency, throughput, energy "
        "per inference with its breakdown, TOPS, TOPS/W and core utilization, next to "
        "digital GPU/CPU baselines; writes a Gantt chart of core activity and an energy "
        "chart. --calibrate runs the peak-MVM benchmark against the HERMES paper.")
    p.add_argument("--network", help="network name (see --list), e.g. resnet9-cifar10")
    p.add_argument("--chip", default="hermes-64core",
                   help="chip card name or path (default hermes-64core)")
    p.add_argument("--list", action="store_true", help="list networks, chips and digital "
                   "engines and exit")
    p.add_argument("--inferences", type=int, default=100,
                   help="pipelined inferences to simulate (default 100)")
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
                   help="placement of the layers' tiles on the cores (default greedy)")
    p.add_argument("--encoding", choices=("pwm_1phase", "pwm_4phase", "amplitude"),
                   help="input encoding of the cores (default: the tile card's)")
    p.add_argument("--device", help="device card used for the mapping (default: the chip "
                   "card's)")
    p.add_argument("--digital", default="digital-gpu,digital-cpu",
                   help="comma-separated digital engine cards to compare with, or 'none'")
    p.add_argument("--batch", type=int, default=1, help="batch size of the digital engines "
                   "(default 1)")
    p.add_argument("--calibrate", action="store_true",
                   help="peak 8-bit MVMs on all cores in 1- and 4-phase mode vs the HERMES "
                   "paper, and exit")
    p.add_argument("--mvms", type=int, default=1000,
                   help="MVMs per core of the --calibrate run (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights (timing "
                   "does not depend on them)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--out", help="folder for figures (default memsim-out/chip-NETWORK-CHIP)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(func=run_chip_command)
    return p
