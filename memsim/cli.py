"""The ``memsim`` command line."""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

import memsim
from memsim import schema
from memsim._format import engineering
from memsim._format import table as _table
from memsim._io import atomic_write_text, check_writable_dir, os_error_advice
from memsim.errors import ConfigError, MemsimError
from memsim.timegrid import time_points
from memsim.workloads.trained import TRAINED

__all__ = ["main"]

#: Devices tried, in this order, when ``memsim tile NAME`` is given no --device.
_PREFERRED_DEVICES = ("pcm-hermes-2dev", "pcm-hermes-1dev", "pcm-generic", "rram-cmo",
                      "ideal")


# --- option types: each bad value is an argparse error that names the option -----------------

def _integer(lo: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected "
                                             f"{what}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {what}")
        return value

    parse.__name__ = what
    return parse


positive_int = _integer(1, "an integer >= 1")
nonneg_int = _integer(0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0 (e.g. seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is out of range; expected a number > 0")
    return value


def _name_list(choices: Sequence[str] | None = None) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list of names (each one of ``choices`` when given)."""
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(x.strip() for x in text.split(",") if x.strip())
        if not names:
            raise argparse.ArgumentTypeError("expected a comma-separated list of names")
        if len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(f"{text!r} lists a name twice")
        if choices is not None:
            bad = [n for n in names if n not in choices]
            if bad:
                raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, bad))}; "
                                                 f"allowed: {', '.join(choices)}")
        return names

    parse.__name__ = "list"
    return parse


def _out_dir(path: str | Path, option: str = "--out") -> Path:
    """The output folder, created and checked writable before any long computation."""
    return check_writable_dir(path, option=option)


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
    out = Path(args.out) if args.out else Path("memsim-out") / f"device-{device.name}"
    if figures:
        _out_dir(out)
    with tqdm(total=study_steps(figures), delay=2.0, desc=f"device {device.name}",
              file=sys.stderr, unit="step", leave=False) as bar:
        study = run_device_study(device, n_devices=args.devices, seed=args.seed,
                                 figures=figures, progress=bar.update)
        paths = []
        if figures:
            from memsim.devices.figures import write_study_figures

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


def tile_accuracy(tile_name: str, device: str, *, seed: int = 0, batch: int = 256,
                  overrides: dict | None = None) -> dict:
    """Relative MVM error ‖Y − XW‖/‖XW‖ at 1 s, 1 day, 1 year, with/without compensation.

    W is Gaussian, X uniform in [−1, 1]; both fill the tile. One programming, one seed.
    """
    import numpy as np

    for name, value, lo in (("seed", seed, 0), ("batch", batch, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(f"{name} = {value!r} must be an integer >= {lo}")

    from memsim.crossbar import load_tile

    rng = np.random.default_rng(seed)
    base = load_tile(tile_name, device=device, **(overrides or {}))
    cfg = base.config
    w = rng.standard_normal((cfg.rows, cfg.cols))
    x = rng.uniform(-1.0, 1.0, size=(batch, cfg.rows))
    exact = x @ w
    rows = []
    for comp in ("none", "global", "per_column"):
        tile = load_tile(cfg, device=base.device, drift_compensation=comp)
        tile.program(w, np.random.default_rng(seed + 1))
        for label, t in time_points("1 s", "1 day", "1 year"):
            y = tile.matvec(x, t, np.random.default_rng(seed + 2))
            rows.append({"drift_compensation": comp, "time": label, "t_s": t,
                         "relative_error": float(np.linalg.norm(y - exact)
                                                 / np.linalg.norm(exact)),
                         "adc_saturation_rate": tile.saturation_.rate})
    return {"tile": cfg.name, "device": base.device.name, "batch": batch, "seed": seed,
            "accuracy": rows}


def _tile_parameters(cfg) -> list[tuple[str, str, str]]:
    from dataclasses import fields

    out = []
    for f in fields(cfg):
        if f.name in ("sources", "name", "description"):
            continue
        value = getattr(cfg, f.name)
        units = {"_s": "s", "_j": "J", "_v": "V", "_ohm": "Ω"}
        unit = next((u for suffix, u in units.items() if f.name.endswith(suffix)), None)
        if value is None:
            text = "None (unquantized)" if "bits" in f.name else "—"
        elif unit and isinstance(value, int | float):
            text = engineering(float(value), unit)
        else:
            text = str(value)
        out.append((f.name, text, cfg.sources.get(f.name, "")))
    return out


def tile_cards() -> list[str]:
    """Names of the shipped tile cards (``card.kind = "tile"``; not chips or digital engines)."""
    from memsim.chip import list_chips

    return list_chips("tile")


def fitting_device(cfg) -> str:
    """The first shipped device (HERMES PCM first) whose model fits the tile's unit cell."""
    from memsim.crossbar import Tile

    names = [*_PREFERRED_DEVICES, *(d for d in memsim.list_devices()
                                    if d not in _PREFERRED_DEVICES)]
    reasons = []
    for name in names:
        if name not in memsim.list_devices():
            continue
        try:
            Tile(cfg, memsim.load_device(name))
        except ValueError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        return name
    raise ConfigError(f"tile {cfg.name!r}: no shipped device fits its unit cell; give "
                      f"--device. Tried: {'; '.join(reasons)}")


def _cmd_tile(args: argparse.Namespace) -> int:
    from memsim.crossbar import load_tile_config

    if args.list or not args.name:
        for name in tile_cards():
            print(name)
        return 0
    cfg = load_tile_config(args.name)
    device = args.device
    if device is None:
        device = fitting_device(cfg)
        if not args.json:
            print(f"(no --device given: using {device}, the first shipped device that fits "
                  "this tile's unit cell)", file=sys.stderr)
    result = tile_accuracy(cfg.name if Path(str(args.name)).suffix != ".toml" else args.name,
                           device, seed=args.seed, batch=args.batch)
    result["parameters"] = {k: v for k, v, _ in _tile_parameters(cfg)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"memsim tile {cfg.name}: {cfg.description}")
    print(f"device {result['device']}\n")
    rows = [[k, v, (src[:70] + "…") if len(src) > 71 else src]
            for k, v, src in _tile_parameters(cfg)]
    print(_table(["parameter", "value", "source"], rows, left=3))
    print(f"\nRelative MVM error ‖Y − XW‖/‖XW‖ (W Gaussian, X uniform in [−1, 1], "
          f"batch {result['batch']}, seed {result['seed']})")
    table = {}
    for r in result["accuracy"]:
        table.setdefault(r["time"], {})[r["drift_compensation"]] = r["relative_error"]
    print(_table(["time", "no compensation", "global", "per column"],
                 [[t, *(f"{100 * v[c]:.2f} %" for c in ("none", "global", "per_column"))]
                  for t, v in table.items()], left=1))
    return 0


def _cmd_drift(args: argparse.Namespace) -> int:
    from memsim.crossbar import Tile, load_tile_config
    from memsim.studies.drift import (
        DRIFT_TIMES,
        format_drift_table,
        plot_drift_study,
        run_drift_study,
    )

    devices, trainings, comps = args.devices, args.training, args.compensation
    cfg = load_tile_config(args.tile)
    for name in devices:  # a typo or a misfit fails now, not after the first devices ran
        device = memsim.load_device(name)
        try:
            Tile(cfg, device)
        except ValueError as exc:
            raise ConfigError(f"--devices: {name} does not fit tile {cfg.name!r} "
                              f"(--tile): {exc}") from None
    out = _out_dir(Path(args.out) if args.out else Path("memsim-out") / "drift")
    times = DRIFT_TIMES
    if args.quick:
        times = tuple(x for x in DRIFT_TIMES if x[0] in ("1 s", "1 day", "1 year"))
    steps = len(devices) * len(trainings) * len(comps) * args.seeds
    with tqdm(total=steps, delay=2.0, desc="drift study", file=sys.stderr, unit="run",
              leave=False) as bar:
        result = run_drift_study(model=args.model, tile=args.tile, devices=devices,
                                 compensations=comps, trainings=trainings, times=times,
                                 seeds=args.seeds, seed=args.seed, progress=bar.update)
    fig = plot_drift_study(result, out / f"drift-{result['workload']}.png")
    result["figure"] = str(fig)
    atomic_write_text(out / f"drift-{result['workload']}.json", json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_drift_table(result))
        print(f"figure: {fig}")
    return 0


def format_mapping_report(rep: dict) -> str:
    lines = [f"memsim map {rep['network']}: tile {rep['tile']} ({rep['tile_rows']}x"
             f"{rep['tile_cols']}), device {rep['device']}", ""]
    rows = [[layer["name"], layer["op"], " + ".join(f"{r}x{c}" for r, c in layer["matrices"]),
             str(layer["tiles"]), f"{100 * layer['utilization']:.1f} %",
             str(layer["mvms_per_inference"]), str(layer["tile_mvms_per_inference"])]
            for layer in rep["layers"]]
    lines.append(_table(["layer", "op", "matrix", "tiles", "utilization", "MVMs/inf",
                         "tile MVMs/inf"], rows, left=3))
    lines += ["", f"total: {rep['total_weights']} weights on {rep['total_tiles']} tiles "
                  f"({100 * rep['utilization']:.1f} % of their cells), "
                  f"{rep['total_tile_mvms_per_inference']} tile MVMs per inference"]
    digital = ", ".join(f"{d['name']} ({d['op']})" for d in rep["digital"])
    lines.append(f"runs digitally: {digital or 'nothing'}")
    return "\n".join(lines)


def _cmd_map(args: argparse.Namespace) -> int:
    import numpy as np

    from memsim.mapping import map_network
    from memsim.workloads import list_workloads, load_workload

    if args.list or not args.network:
        print("\n".join(list_workloads()))
        return 0
    from memsim.crossbar import load_tile_config

    device = args.device
    if device is None:
        device = fitting_device(load_tile_config(args.tile))
    graph = load_workload(args.network, np.random.default_rng(args.seed))
    rep = map_network(graph, tile=args.tile, device=device).report()
    print(json.dumps(rep, indent=2) if args.json else format_mapping_report(rep))
    return 0


def _study_dir(args: argparse.Namespace, name: str) -> Path:
    return Path(args.out) if args.out else Path("memsim-out") / "studies" / name


def _study_frame(spec, store, quick: bool):
    keys = [p.key for p in spec.points(quick=quick)]
    df = store.to_dataframe(keys)
    if df.empty:
        raise memsim.StudyError(f"study {spec.name!r} has no results in {store.path} yet: "
                                "run it first (memsim study run)")
    return df


def _study_report(spec, store, out: Path, quick: bool, extra: dict | None = None) -> dict:
    from memsim.studies.report import write_report

    df = _study_frame(spec, store, quick)
    info = {"size": "quick" if quick else "full", "seeds per point": df["seed_index"].nunique(),
            "results store": str(store.path)}
    info.update(extra or {})
    return write_report(df, study=spec.name + ("-quick" if quick else ""),
                        description=spec.description, params=list(spec.grid), out_dir=out,
                        extra=info, metrics=list(spec.metrics))


def _cmd_study(args: argparse.Namespace) -> int:
    import memsim.studies.evaluate  # noqa: F401  (registers the evaluators)
    from memsim.studies.report import study_table
    from memsim.studies.runner import run_study
    from memsim.studies.spec import load_study
    from memsim.studies.store import ResultStore

    spec = load_study(args.file)  # checked against its evaluator before anything runs
    out = _study_dir(args, spec.name)
    if args.action != "run":
        for option in ("restart", "scheduler", "workers"):
            if getattr(args, option) not in (None, False):
                raise ConfigError(f"--{option} applies to 'memsim study run', not to "
                                  f"'{args.action}'")
    if args.action == "run":
        _out_dir(out)
        summary = run_study(spec, out_dir=out, quick=args.quick, scheduler=args.scheduler,
                            workers=args.workers, progress=True, restart=args.restart,
                            connect_timeout_s=args.connect_timeout)
        print(summary)
        if summary.computed or summary.already_done or summary.done_elsewhere:
            with ResultStore.for_study(out, spec.name, readonly=True) as store:
                rep = _study_report(spec, store, out, args.quick,
                                    {"wall time of this run (s)": f"{summary.wall_s:.1f}"})
            print(f"report: {rep['markdown']} and {rep['html']}")
        if summary.interrupted:
            return 130
        return 1 if summary.failed else 0
    # show and report only read the store (they work on read-only media)
    with ResultStore.for_study(out, spec.name, readonly=True) as store:
        if args.action == "show":
            head, body, agg = study_table(_study_frame(spec, store, args.quick),
                                          params=list(spec.grid), metrics=list(spec.metrics))
            if args.json:
                print(agg.to_json(orient="records", indent=2))
            else:
                print(f"study {spec.name}: {spec.description}")
                print(_table(head, body, left=len(spec.grid)))
            return 0
        rep = _study_report(spec, store, out, args.quick)
    print(f"report: {rep['markdown']} and {rep['html']}")
    for f in rep["figures"]:
        print(f"figure: {f}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from memsim.studies.demo import format_demo, run_demo

    result = run_demo(_out_dir(args.out), seeds=args.seeds)
    print(json.dumps(result, indent=2) if args.json else format_demo(result))
    return 0


def _cmd_card(args: argparse.Namespace) -> int:
    print(schema.card_text(args.kind, markdown_=args.markdown, example=args.example,
                           full=args.full), end="")
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
    p.add_argument("--devices", type=positive_int, default=20000,
                   help="devices per level (default 20000)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.set_defaults(func=_cmd_device)

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
    p.set_defaults(func=_cmd_tile)

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
    p.set_defaults(func=_cmd_map)

    p = sub.add_parser("demo", help="the digits CNN on the HERMES chip: accuracy, latency, "
                       "energy", description="Map the digits CNN onto the HERMES 64-core chip; "
                       "report accuracy at 1 s, 1 day and 1 year, latency and energy per "
                       "inference (with digital baselines), and write an energy/accuracy "
                       "figure over ADC resolution.")
    p.add_argument("--out", default="memsim-out/demo", help="output folder")
    p.add_argument("--seeds", type=positive_int, default=3,
                   help="programming seeds (default 3)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("card", help="card reference: the fields of a kind of card",
                       description="Print the fields of a kind of card (every field's allowed "
                       "values with unit, default, whether it is required, Python keyword), "
                       "the whole reference (docs/cards.md) or a card that loads.")
    p.add_argument("action", choices=["schema"])
    p.add_argument("kind", nargs="?", choices=[*schema.card_kinds(), *schema.GROUPS],
                   help="card kind (default: every kind, in Markdown)")
    p.add_argument("--markdown", action="store_true", help="Markdown, as in docs/cards.md")
    p.add_argument("--example", action="store_true", help="a card of KIND that loads")
    p.add_argument("--full", action="store_true", help="with --example: every field")
    p.set_defaults(func=_cmd_card)

    from memsim.chip.cli import add_parser as add_chip_parser
    from memsim.chip.wall import add_parser as add_wall_parser

    add_chip_parser(sub)
    add_wall_parser(sub)

    p = sub.add_parser("study", help="parameter studies: run, show, report",
                       description="Run a study file (studies/*.toml or a path): every grid "
                       "point and seed, resumable, serially or on Dask; show its table; write "
                       "its figures and report.")
    p.add_argument("action", choices=["run", "show", "report"])
    p.add_argument("file", help="study name (studies/NAME.toml) or path")
    p.add_argument("--quick", action="store_true", help="the study's [quick] size")
    p.add_argument("--workers", type=nonneg_int, default=None,
                   help="worker processes of a local Dask cluster (default: one per core; "
                   "0 = serial in this process)")
    p.add_argument("--scheduler", default=None,
                   help="address of an existing Dask scheduler (tcp://host:port)")
    p.add_argument("--connect-timeout", type=positive_float, default=30.0, metavar="SECONDS",
                   help="give up connecting to --scheduler after this long (default 30)")
    p.add_argument("--restart", action="store_true",
                   help="with run: move the existing results store aside "
                   "(NAME.sqlite.TIME.old, nothing is deleted) and start afresh")
    p.add_argument("--out", help="folder for the results store and report "
                   "(default memsim-out/studies/NAME)")
    p.add_argument("--json", action="store_true", help="with show: the table as JSON")
    p.set_defaults(func=_cmd_study)

    p = sub.add_parser("drift", help="accuracy from 1 s to 10 years after programming",
                       description="Map a trained model (digits, MNIST) on a tile and "
                       "measure its test accuracy from 1 s to 10 years after programming for "
                       "several devices, with and without drift compensation, plainly and "
                       "hardware-aware trained, with the spread over programming seeds; "
                       "writes a figure.")
    p.add_argument("--model", default="cnn", choices=["cnn", "mlp", *TRAINED],
                   help="digits cnn or mlp, or a trained workload (default cnn)")
    p.add_argument("--tile", default="hermes-core")
    p.add_argument("--devices", type=_name_list(),
                   default=("pcm-generic", "pcm-hermes-2dev", "rram-cmo"),
                   help="comma-separated device cards")
    p.add_argument("--compensation", type=_name_list(("none", "global", "per_column")),
                   default=("none", "global"), help="comma-separated: none, global, per_column")
    p.add_argument("--training", type=_name_list(("plain", "hwa")), default=("plain", "hwa"),
                   help="comma-separated: plain, hwa")
    p.add_argument("--seeds", type=positive_int, default=5, help="programming seeds (default 5)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--quick", action="store_true", help="only 1 s, 1 day and 1 year")
    p.add_argument("--out", help="folder for the figure and JSON (default memsim-out/drift)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=_cmd_drift)

    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full traceback")
    for sub_parser in sub.choices.values():  # --debug after the command works too
        sub_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                help="on an error, show the full traceback")
    return parser


def _error_line(exc: BaseException) -> tuple[str, int]:
    """(one line for stderr, exit code) for an exception that ends a command."""
    if isinstance(exc, MemsimError):
        return f"memsim: error: {exc}", 2
    if isinstance(exc, sqlite3.Error):
        return (f"memsim: error: results store: {exc} (run with --debug for the traceback)",
                1)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"memsim: error: cannot use{where}: {os_error_advice(exc)}", 1
    if isinstance(exc, ValueError):
        return f"memsim: error: {exc}", 2
    return (f"memsim: internal error: {type(exc).__name__}: {exc}. This is a bug in memsim; "
            "please report it with the output of the same command with --debug", 1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``memsim`` command; returns the exit code.

    Every error ends in one line on stderr (the full traceback with ``--debug``) and an
    exit code ≠ 0: 2 for a bad value or card, 1 for a file, store or internal error, 130
    for Ctrl-C. Bad options are refused by argparse, naming the option (exit code 2).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False))
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("memsim: interrupted (Ctrl-C); finished work is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except Exception as exc:
        if debug:
            traceback.print_exc()
        line, code = _error_line(exc)
        print(line, file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
