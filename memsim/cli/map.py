"""``memsim map NETWORK``: the mapping report of a network on tiles."""

from __future__ import annotations

import argparse
from typing import Any

from memsim.cli._common import emit, nonneg_int

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from memsim.crossbar import load_tile_config
    from memsim.mapping import map_network
    from memsim.studies.tile_error import fitting_device
    from memsim.workloads import list_workloads, load_workload

    if args.list or not args.network:
        print("\n".join(list_workloads()))
        return 0
    device = args.device or fitting_device(load_tile_config(args.tile))
    graph = load_workload(args.network, np.random.default_rng(args.seed))
    emit(map_network(graph, tile=args.tile, device=device).report(), args.json)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("map", help="mapping report of a network on tiles",
                       description="Map a network onto crossbar tiles and print, per layer, the "
                       "matrix shape, tiles, utilization and MVMs per inference, with totals and "
                       "the layers that run digitally.")
    p.add_argument("network", nargs="?", help="network name (see --list)")
    p.add_argument("--list", action="store_true", help="list the built-in networks and exit")
    p.add_argument("--tile", default="hermes-core", help="tile card (default hermes-core)")
    p.add_argument("--device", default=None,
                   help="device card (default: the first of pcm-hermes-2dev, "
                   "pcm-hermes-1dev, pcm-generic, … that fits the tile's unit cell)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of random weights")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)
    return p
