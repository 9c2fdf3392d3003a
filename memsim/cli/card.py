"""``memsim card schema [KIND]``: the card reference (every field of a kind of card)."""

from __future__ import annotations

import argparse
from typing import Any

from memsim import schema

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    print(schema.card_text(args.kind, markdown_=args.markdown, example=args.example,
                           full=args.full), end="")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
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
    p.set_defaults(func=run)
    return p
