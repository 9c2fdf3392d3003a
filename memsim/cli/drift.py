"""``memsim drift``: a trained model's accuracy from 1 s to 10 years after programming."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from memsim.cli._common import emit, name_list, nonneg_int, out_dir, positive_int

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    import memsim
    from memsim._io import atomic_write_text
    from memsim._progress import progress
    from memsim.crossbar import Tile, load_tile_config
    from memsim.errors import ConfigError
    from memsim.studies.drift import DRIFT_TIMES, plot_drift_study, run_drift_study

    devices, trainings, comps = args.devices, args.training, args.compensation
    cfg = load_tile_config(args.tile)
    for name in devices:  # a typo or a misfit fails now, not after the first devices ran
        device = memsim.load_device(name)
        try:
            Tile(cfg, device)
        except ValueError as exc:
            raise ConfigError(f"--devices: {name} does not fit tile {cfg.name!r} "
                              f"(--tile): {exc}") from None
    out = out_dir(Path(args.out) if args.out else Path("memsim-out") / "drift")
    times = DRIFT_TIMES
    if args.quick:
        times = tuple(x for x in DRIFT_TIMES if x[0] in ("1 s", "1 day", "1 year"))
    steps = len(devices) * len(trainings) * len(comps) * args.seeds
    with progress(steps, "drift study", "run") as bar:
        result = run_drift_study(model=args.model, tile=args.tile, devices=devices,
                                 compensations=comps, trainings=trainings, times=times,
                                 seeds=args.seeds, seed=args.seed, progress=bar.update)
    fig = plot_drift_study(result, out / f"drift-{result['workload']}.png")
    result["figure"] = str(fig)
    atomic_write_text(out / f"drift-{result['workload']}.json", json.dumps(result, indent=2))
    emit(result, args.json, [fig])
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from memsim.workloads.trained import TRAINED

    p = sub.add_parser("drift", help="accuracy from 1 s to 10 years after programming",
                       description="Map a trained model (digits, MNIST) on a tile and "
                       "measure its test accuracy from 1 s to 10 years after programming for "
                       "several devices, with and without drift compensation, plainly and "
                       "hardware-aware trained, with the spread over programming seeds; "
                       "writes a figure.")
    p.add_argument("--model", default="cnn", choices=["cnn", "mlp", *TRAINED],
                   help="digits cnn or mlp, or a trained workload (default cnn)")
    p.add_argument("--tile", default="hermes-core")
    p.add_argument("--devices", type=name_list(),
                   default=("pcm-generic", "pcm-hermes-2dev", "rram-cmo"),
                   help="comma-separated device cards")
    p.add_argument("--compensation", type=name_list(("none", "global", "per_column")),
                   default=("none", "global"), help="comma-separated: none, global, per_column")
    p.add_argument("--training", type=name_list(("plain", "hwa")), default=("plain", "hwa"),
                   help="comma-separated: plain, hwa")
    p.add_argument("--seeds", type=positive_int, default=5, help="programming seeds (default 5)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--quick", action="store_true", help="only 1 s, 1 day and 1 year")
    p.add_argument("--out", help="folder for the figure and JSON (default memsim-out/drift)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=run)
    return p
