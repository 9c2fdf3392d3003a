"""``memsim wall [NETWORK ...]``: the memory wall, energy moving bytes vs arithmetic."""

from __future__ import annotations

import argparse
from typing import Any

from memsim.cli._common import emit

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from memsim.chip.wall import wall_table, write_wall_figure

    networks = args.network or None  # None: every shipped workload
    digital = tuple(x.strip() for x in args.digital.split(",") if x.strip())
    report = wall_table(networks, chip=args.chip, digital=digital, batch=args.batch,
                        inferences=args.inferences)
    paths = [] if args.no_figures else [write_wall_figure(report, args.out)]
    report["figures"] = [str(p) for p in paths]
    emit(report, args.json, paths)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("wall", help="the memory wall: energy moving bytes vs arithmetic, on "
                       "digital engines and the analog chip",
                       description="For each network, the digital engines' energy per "
                       "inference split into arithmetic, SRAM and DRAM traffic (weights, "
                       "activations), other per-FLOP energy and static power (Horowitz, "
                       "ISSCC 2014), beside the analog chip's split; a table and a figure, "
                       "with the assumptions printed.")
    p.add_argument("network", nargs="*", help="networks (default: every shipped workload, as "
                   "listed by memsim chip --list)")
    p.add_argument("--chip", default="hermes-64core", help="chip card (default hermes-64core)")
    p.add_argument("--digital", default="digital-gpu,digital-cpu",
                   help="comma-separated digital engine cards")
    p.add_argument("--batch", type=int, default=1, help="digital engines' batch (default 1)")
    p.add_argument("--inferences", type=int, default=3,
                   help="pipelined inferences simulated on the chip (default 3)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--out", default="memsim-out/wall", help="folder for the figure")
    p.add_argument("--no-figures", action="store_true", help="skip the figure")
    p.set_defaults(func=run)
    return p
