"""The ``memsim`` command line (also ``python -m memsim``).

One module per command, each with ``add_parser(subparsers)`` and ``run(args) -> int``:
it parses, calls the library, prints. No physics lives here. :data:`COMMANDS` lists them
in the order ``memsim --help`` shows; a new command is one module and one entry.

Every error ends in one line on stderr (the full traceback with ``--debug``) and an exit
code ≠ 0: 2 for a bad value or card, 1 for a file, store or internal error, 130 for
Ctrl-C. Bad options are refused by argparse, naming the option (exit code 2). Progress
bars go to stderr, only on a terminal; ``--quiet`` turns them off.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

import memsim
from memsim.cli._common import error_line

__all__ = ["COMMANDS", "build_parser", "main"]

#: The commands, by module of :mod:`memsim.cli`, in the order of ``memsim --help``.
COMMANDS = ("device", "tile", "map", "demo", "chip", "wall", "study", "drift", "card")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``memsim`` with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="memsim",
        description="memsim: analog in-memory computing with memristive devices.",
    )
    parser.add_argument("--version", action="version", version=f"memsim {memsim.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"memsim.cli.{name}").add_parser(sub)
    for flag, text in (("--debug", "on an error, show the full traceback"),
                       ("--quiet", "no progress bars")):
        parser.add_argument(flag, action="store_true", help=text)
        for sub_parser in sub.choices.values():  # after the command works too
            sub_parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS,
                                    help=text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``memsim`` command; returns the exit code (see the module docstring)."""
    from memsim._progress import set_progress

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False))
    quiet = bool(getattr(args, "quiet", False))
    previous = set_progress(False) if quiet else None
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
        line, code = error_line(exc)
        print(line, file=sys.stderr)
        return code
    finally:
        if quiet:
            set_progress(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
