"""``memsim demo``: the digits CNN on the HERMES chip: accuracy, latency, energy."""

from __future__ import annotations

import argparse
from typing import Any

from memsim.cli._common import emit, out_dir, positive_int

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from memsim.studies.demo import run_demo

    emit(run_demo(out_dir(args.out), seeds=args.seeds), args.json)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="the digits CNN on the HERMES chip: accuracy, latency, "
                       "energy", description="Map the digits CNN onto the HERMES 64-core chip; "
                       "report accuracy at 1 s, 1 day and 1 year, latency and energy per "
                       "inference (with digital baselines), and write an energy/accuracy "
                       "figure over ADC resolution.")
    p.add_argument("--out", default="memsim-out/demo", help="output folder")
    p.add_argument("--seeds", type=positive_int, default=3,
                   help="programming seeds (default 3)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=run)
    return p
