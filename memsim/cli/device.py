"""``memsim device NAME``: Monte-Carlo study of one device card, a table and figures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from memsim.cli._common import emit, nonneg_int, out_dir, positive_int

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    import memsim
    from memsim._format import Report, format_device_study
    from memsim._progress import progress
    from memsim.devices.study import run_device_study, study_steps

    if args.list or not args.name:
        print("\n".join(memsim.list_devices()))
        return 0
    device = memsim.load_device(args.name)
    figures = not args.no_figures
    out = Path(args.out) if args.out else Path("memsim-out") / f"device-{device.name}"
    if figures:
        out_dir(out)
    with progress(study_steps(figures), f"device {device.name}", "step") as bar:
        study = run_device_study(device, n_devices=args.devices, seed=args.seed,
                                 figures=figures, progress=bar.update)
        paths = []
        if figures:
            from memsim.devices.figures import write_study_figures

            paths = write_study_figures(study, device, out)
    report = Report("device-study", study.to_dict(), format_device_study)
    if args.json:
        report["figures"] = [str(p) for p in paths]
    emit(report, args.json, paths)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("device", help="device study: programming error, drift, read noise",
                       description="Monte-Carlo study of one device card: programming error σ "
                       "at 5 target levels, drift factor and read noise from 1 s to 10 years, "
                       "and figures (PNG and PDF).")
    p.add_argument("name", nargs="?", help="device card name (see --list) or path to a .toml card")
    p.add_argument("--list", action="store_true", help="list the device cards and exit")
    p.add_argument("--out", help="folder for figures (default memsim-out/device-NAME)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--devices", type=positive_int, default=20000,
                   help="devices per level (default 20000)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(func=run)
    return p
