"""Pages written at build time from what they describe, so they cannot drift from it: the
shipped cards (``devices/``, ``crossbars/``; every card with its description and each value
with unit and source, read from the TOML files) and the command line (every command's
``--help``, from the parser)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def _cell(text: Any) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def _values(table: dict[str, Any], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(field, value, unit, source) of every ``{value, unit, source}`` entry, recursively."""
    out = []
    for key, v in table.items():
        name = f"{prefix}{key}"
        if isinstance(v, dict) and ("value" in v or "source" in v):
            value = v["value"] if "value" in v else ", ".join(
                f"{k} = {x}" for k, x in v.items() if k not in ("unit", "source"))
            out.append((name, _cell(value), _cell(v.get("unit", "")),
                        _cell(v.get("source", ""))))
        elif isinstance(v, dict):
            out += _values(v, prefix=f"{name}.")
        elif key not in ("name", "description", "kind"):
            out.append((name, _cell(v), "", ""))
    return out


def _card_section(path: Path) -> list[str]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    card = data.get("card", {})
    desc = card.get("description", data.get("description", ""))
    lines = [f"### `{path.stem}`", "", _cell(desc) if desc else "", "",
             f"File: `{path.parent.name}/{path.name}`", ""]
    rows = _values({k: v for k, v in data.items() if k != "card"})
    if rows:
        lines += ["| field | value | unit | source |", "|---|---|---|---|"]
        lines += [f"| `{f}` | {v} | {u} | {s} |" for f, v, u, s in rows]
        lines.append("")
    return lines


def write_card_pages(root: Path, out: Path) -> None:
    """Write ``shipped-cards.md`` (every shipped card) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for folder, title in (("devices", "Device cards"), ("crossbars", "Tile, chip and digital "
                                                                     "engine cards")):
        lines += [f"## {title}", ""]
        for path in sorted((root / folder).glob("*.toml")):
            lines += _card_section(path)
    text = "\n".join(lines) + "\n"
    target = out / "shipped-cards.md"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def write_cli_page(out: Path) -> None:
    """Write ``cli.md``: ``memsim --help`` and every command's ``--help``, from the parser."""
    import argparse

    from memsim.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lines = ["```text", parser.format_help().rstrip(), "```", ""]
    for name in COMMANDS:
        lines += [f"## `memsim {name}`", "", "```text",
                  sub.choices[name].format_help().rstrip(), "```", ""]
    text = "\n".join(lines) + "\n"
    target = out / "cli.md"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def write_card_fields(docs: Path, out: Path) -> None:
    """Write ``card-fields.md``: the field-by-field reference of every card kind, which
    ``docs/cards.md`` holds when it has been generated from memsim's card schema; without
    it, the section says where the fields are declared."""
    source = docs / "cards.md"
    if source.exists():
        text = ("## Fields of every card kind\n\n```{include} ../cards.md\n:start-line: 1\n```\n")
    else:
        text = ("## Fields of every card kind\n\nEach kind's fields, with their units, "
                "ranges and defaults, are declared in memsim's code: devices in "
                "{mod}`memsim.devices`, tiles in {class}`memsim.crossbar.TileConfig`, chips "
                "in {mod}`memsim.chip`. The shipped cards below use every field.\n")
    target = out / "card-fields.md"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
