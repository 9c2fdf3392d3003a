"""What every command shares: option types that name the bad option, the output folder
check, JSON or text output, and the one-line error of a failed command."""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from memsim._io import check_writable_dir, os_error_advice
from memsim.errors import MemsimError

__all__ = ["emit", "error_line", "figure_lines", "name_list", "nonneg_int", "out_dir",
           "positive_float", "positive_int"]


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


def name_list(choices: Sequence[str] | None = None) -> Callable[[str], tuple[str, ...]]:
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


def out_dir(path: str | Path, option: str = "--out") -> Path:
    """The output folder, created and checked writable before any long computation."""
    return check_writable_dir(path, option=option)


# --- output ------------------------------------------------------------------------------------

def figure_lines(paths: Sequence[str | Path]) -> list[str]:
    """``figure: X.png (+ X.pdf)`` for each figure written as PNG and vector file."""
    from memsim._figures import vector_path

    out = []
    for p in paths:
        vec = vector_path(p)
        out.append(f"figure: {p}" + (f" (+ {vec.name})" if Path(vec).exists() else ""))
    return out


def emit(report: Mapping[str, Any], as_json: bool, figures: Sequence[str | Path] = ()) -> None:
    """Print a report: its JSON (``--json``) or its text, then the figures written."""
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    print(str(report))
    for line in figure_lines(figures):
        print(line)


# --- errors --------------------------------------------------------------------------------------

def error_line(exc: BaseException) -> tuple[str, int]:
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
