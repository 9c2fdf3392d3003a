"""``memsim tile NAME``: a tile card's parameters and its MVM error under noise and drift."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from memsim.cli._common import emit, nonneg_int, positive_int

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    from memsim.crossbar import load_tile_config
    from memsim.studies.tile_error import fitting_device, tile_cards, tile_error

    if args.list or not args.name:
        print("\n".join(tile_cards()))
        return 0
    cfg = load_tile_config(args.name)
    device = args.device
    if device is None:
        device = fitting_device(cfg)
        if not args.json:
            print(f"(no --device given: using {device}, the first shipped device that fits "
                  "this tile's unit cell)", file=sys.stderr)
    card = args.name if Path(str(args.name)).suffix == ".toml" else cfg.name
    emit(tile_error(card, device, seed=args.seed, batch=args.batch), args.json)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("tile", help="tile parameters and MVM accuracy under noise and drift",
                       description="Print a tile card's parameters and its relative MVM error "
                       "against exact arithmetic at 1 s, 1 day and 1 year after programming, "
                       "with and without drift compensation.")
    p.add_argument("name", nargs="?", help="tile card name (see --list) or path to a .toml card")
    p.add_argument("--device", default=None,
                   help="device card (default: the first of pcm-hermes-2dev, "
                   "pcm-hermes-1dev, pcm-generic, … that fits the tile's unit cell)")
    p.add_argument("--list", action="store_true", help="list the tile cards and exit")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--batch", type=positive_int, default=256,
                   help="input vectors (default 256)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    p.set_defaults(func=run)
    return p
