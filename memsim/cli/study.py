"""``memsim study run|show|report|export FILE``: parameter studies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from memsim.cli._common import figure_lines, nonneg_int, out_dir, positive_float

__all__ = ["add_parser", "run"]

_RUN_ONLY = ("restart", "scheduler", "workers")


def _study_dir(args: argparse.Namespace, name: str) -> Path:
    return Path(args.out) if args.out else Path("memsim-out") / "studies" / name


def run(args: argparse.Namespace) -> int:
    from memsim._format import table
    from memsim.errors import ConfigError
    from memsim.studies.report import report_study, study_frame, study_table
    from memsim.studies.runner import run_study
    from memsim.studies.spec import load_study
    from memsim.studies.store import ResultStore

    spec = load_study(args.file)  # checked against its evaluator before anything runs
    if args.action != "run":
        for option in _RUN_ONLY:
            if getattr(args, option) not in (None, False):
                raise ConfigError(f"--{option} applies to 'memsim study run', not to "
                                  f"'{args.action}'")
    if args.action != "export" and args.format is not None:
        raise ConfigError(f"--format applies to 'memsim study export', not to '{args.action}'")
    out = _study_dir(args, spec.name)
    if args.action == "export":
        return _export(args, spec, out)
    if args.action == "run":
        out_dir(out)
        summary = run_study(spec, out_dir=out, quick=args.quick, scheduler=args.scheduler,
                            workers=args.workers, progress=not getattr(args, "quiet", False),
                            restart=args.restart, connect_timeout_s=args.connect_timeout)
        print(summary)
        if summary.computed or summary.already_done or summary.done_elsewhere:
            with ResultStore.for_study(out, spec.name, readonly=True) as store:
                rep = report_study(spec, store, out, quick=args.quick,
                                   extra={"wall time of this run (s)": f"{summary.wall_s:.1f}"})
            print(f"report: {rep['markdown']} and {rep['html']}")
        if summary.interrupted:
            return 130
        return 1 if summary.failed else 0
    # show and report only read the store (they work on read-only media)
    with ResultStore.for_study(out, spec.name, readonly=True) as store:
        if args.action == "show":
            head, body, agg = study_table(study_frame(spec, store, args.quick),
                                          params=list(spec.grid), metrics=list(spec.metrics))
            if args.json:
                print(agg.to_json(orient="records", indent=2))
            else:
                print(f"study {spec.name}: {spec.description}")
                print(table(head, body, left=len(spec.grid)))
            return 0
        rep = report_study(spec, store, out, quick=args.quick)
    print(f"report: {rep['markdown']} and {rep['html']}")
    for line in figure_lines(rep["figures"]):
        print(line)
    return 0


def _export(args: argparse.Namespace, spec: Any, out: Path) -> int:
    from memsim.studies.export import export_study
    from memsim.studies.store import ResultStore

    fmt = args.format or "csv"
    target = Path(args.file_out) if args.file_out else \
        out / f"{spec.name}{'-quick' if args.quick else ''}.{fmt}"
    with ResultStore.for_study(out, spec.name, readonly=True) as store:
        path = export_study(spec, store, target, fmt, quick=args.quick)
    print(f"results: {path}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("study", help="parameter studies: run, show, report, export",
                       description="Run a study file (studies/*.toml or a path): every grid "
                       "point and seed, resumable, serially or on Dask; show its table; write "
                       "its figures and report; export its results as CSV or Parquet.")
    p.add_argument("action", choices=["run", "show", "report", "export"])
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
    p.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="with export: csv (default) or parquet (needs pyarrow: "
                   "pip install \"memsim[parquet]\")")
    p.add_argument("--to", dest="file_out", metavar="PATH", default=None,
                   help="with export: the file to write (default: NAME.FORMAT in the study's "
                   "folder)")
    p.set_defaults(func=run)
    return p
