"""The ``memsim`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

import memsim
from memsim.cards import CardError

__all__ = ["main"]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def format_device_study(d: dict) -> str:
    """The text table of a device study (the JSON dict of :class:`DeviceStudy`)."""
    lines = [
        f"memsim device {d['device']}: {d['description']}",
        f"g range {d['g_min_uS']:.4g}–{d['g_max_uS']:.4g} µS; "
        f"{d['n_devices_per_level']} devices per level; seed {d['seed']}",
        "",
        "Programming error (G_prog − G_target), measured",
    ]
    rows = []
    for p in d["programming"]:
        model = "—" if p["sigma_model_uS"] is None else f"{p['sigma_model_uS']:.4f}"
        rows.append([f"{p['g_target_uS']:.3f}", f"{p['mean_error_uS']:+.4f}",
                     f"{p['sigma_uS']:.4f} ± {p['sigma_stderr_uS']:.4f}", model])
    lines.append(_table(["target µS", "mean µS", "σ µS (± s.e.)", "model σ µS"], rows))
    lines += ["", f"Drift factor G_drift(t)/G_prog and relative read noise, devices at "
                  f"{d['reference_level_uS']:.3f} µS"]
    rows = [[r["time"], f"{r['drift_factor_median']:.4f}",
             f"{r['drift_factor_p01']:.4f} – {r['drift_factor_p99']:.4f}",
             f"{100 * r['read_noise_rel']:.3f} %"] for r in d["drift"]]
    lines.append(_table(["time", "median", "1 % – 99 %", "read noise σ/G"], rows))
    return "\n".join(lines)


def _cmd_device(args: argparse.Namespace) -> int:
    from memsim.devices.study import run_device_study, study_steps

    if args.list or not args.name:
        for name in memsim.list_devices():
            print(name)
        return 0
    device = memsim.load_device(args.name)
    figures = not args.no_figures
    with tqdm(total=study_steps(figures), delay=2.0, desc=f"device {device.name}",
              file=sys.stderr, unit="step", leave=False) as bar:
        study = run_device_study(device, n_devices=args.devices, seed=args.seed,
                                 figures=figures, progress=bar.update)
        paths = []
        if figures:
            from memsim.devices.figures import write_study_figures

            out = Path(args.out) if args.out else Path("memsim-out") / f"device-{device.name}"
            paths = write_study_figures(study, device, out)
    result = study.to_dict()
    if args.json:
        result["figures"] = [str(p) for p in paths]
        print(json.dumps(result, indent=2))
    else:
        print(format_device_study(result))
        for p in paths:
            print(f"figure: {p}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memsim",
        description="memsim: analog in-memory computing with memristive devices.",
    )
    parser.add_argument("--version", action="version", version=f"memsim {memsim.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("device", help="device study: programming error, drift, read noise",
                       description="Monte-Carlo study of one device card: programming error σ "
                       "at 5 target levels, drift factor and read noise from 1 s to 10 years, "
                       "and figures (PNG).")
    p.add_argument("name", nargs="?", help="device card name (see --list) or path to a .toml card")
    p.add_argument("--list", action="store_true", help="list the device cards and exit")
    p.add_argument("--out", help="folder for figures (default memsim-out/device-NAME)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--devices", type=int, default=20000, help="devices per level (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(func=_cmd_device)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (CardError, ValueError) as exc:
        print(f"memsim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
