"""The card reference: every field of every kind of card, read from the one declaration.

Each card kind (tile, chip, digital engine, the two device families) has one
:class:`~memsim.cards.Schema`, built from the fields its config classes declare with
:func:`memsim.cards.card_field` (and from the plug-ins registered for its plug-in sections:
drift and read-noise laws, ADC models, topologies). This module turns it into a reference::

    python -m memsim.schema --markdown > docs/cards.md   # every kind, Markdown
    python -m memsim.schema tile                         # one kind, as text
    python -m memsim.schema --example chip               # a minimal card that loads

:func:`card_text` is what ``memsim card schema [KIND]`` prints, :func:`describe` the text
of one kind, :func:`markdown` the whole reference, :func:`field_rows` the rows as data and
:func:`example_card` a card written from the reference alone (the tests load it).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from memsim.cards import MISSING, Field, Schema, Section
from memsim.errors import ConfigError

__all__ = ["GROUPS", "KINDS", "FieldRow", "card_kinds", "card_text", "describe",
           "example_card", "field_rows", "get_schema", "main", "markdown"]

#: Card kinds and where their declaration lives (imported on first use).
KINDS: dict[str, str] = {
    "tile": "memsim.crossbar.config:TILE_SCHEMA",
    "chip": "memsim.chip.card:CHIP_SCHEMA",
    "digital": "memsim.chip.digital:DIGITAL_SCHEMA",
    "statistical": "memsim.devices.statistical:STATISTICAL_SCHEMA",
    "vteam": "memsim.devices.physical:VTEAM_SCHEMA",
}


#: Names that stand for several kinds: a device card is of one of the device families.
GROUPS: dict[str, tuple[str, ...]] = {"device": ("statistical", "vteam")}


def card_kinds() -> list[str]:
    """The card kinds with a declaration: tile, chip, digital, statistical, vteam."""
    return list(KINDS)


def _expand(kind: str) -> tuple[str, ...]:
    """The kinds ``kind`` stands for (itself, or a group such as "device")."""
    if kind in GROUPS:
        return GROUPS[kind]
    get_schema(kind)  # ConfigError naming the known kinds
    return (kind,)


def get_schema(kind: str) -> Schema:
    """The declaration of the card kind ``kind`` (:class:`ConfigError` if unknown)."""
    if kind not in KINDS:
        known = ", ".join([*KINDS, *GROUPS])
        raise ConfigError(f"card kind {kind!r} is unknown; known: {known}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class FieldRow:
    """One field of a card kind, as the reference shows it."""

    section: str
    key: str
    keyword: str  # the Python keyword (config attribute); "" for header fields
    allowed: str  # in words, with the SI unit
    unit: str  # SI unit of a number ("" otherwise); cards may use any unit of its dimension
    units: str  # the units a card may write it in
    default: str
    required: str  # "yes", "no" or "with <choice> = ..."
    help: str


def _plugin_name(section: Section, f: Field) -> str:
    """The plug-in a field belongs to ("" for the section's own fields)."""
    if not section.plugin:
        return ""
    for name in section.field(section.plugin).options:
        if f in section.plugin_fields(name):
            return name
    return ""


def _when_text(section: Section, f: Field) -> str:
    if f.when is None:
        return ""
    key = f.when[0]
    chooser = section.field(key)
    ok = [v for v in chooser.options if f.applies({key: v})]
    return f"{key} = " + " or ".join(f'"{v}"' for v in ok)


def _default_text(f: Field) -> str:
    d = f.default
    if d is MISSING:
        return "—"
    if d is None:
        return '"none"'
    if isinstance(d, bool):
        return "true" if d else "false"
    if isinstance(d, str):
        return f'"{d}"' if d else '""'
    if isinstance(d, int | float):
        unit = f" {f.unit}" if f.unit and f.unit != "1" else ""
        return f"{d:g}{unit}"
    if isinstance(d, tuple | list):
        return _toml(list(d))
    return str(d)


def _units(f: Field) -> str:
    from memsim.cards import _UNITS

    return ", ".join(_UNITS[f.dimension]) if f.kind == "number" else ""


def field_rows(kind: str) -> list[FieldRow]:
    """Every field of the card kind ``kind``, section by section; a plug-in's fields
    follow its section's fields, marked with the plug-in they belong to."""
    rows = []
    for section in get_schema(kind).sections:
        for f in section.every_field():
            plugin = _plugin_name(section, f)
            if plugin:
                required = f'with {section.plugin} = "{plugin}"' + ("" if f.required
                                                                   else ", optional")
            elif f.when is not None:
                required = f"with {_when_text(section, f)}" + ("" if f.required
                                                               else ", optional")
            else:
                required = "yes" if f.required else "no"
            keyword = f.attr if f.attr and section.name != "card" else ""
            if plugin and kind == "tile":
                keyword = f"adc_options[{f.attr!r}]"
            rows.append(FieldRow(section.name, f.key, keyword, f.allowed(), f.unit,
                                 _units(f), _default_text(f), required, f.help))
    return rows


def _header(schema: Schema) -> list[str]:
    key = "family" if schema.folder == "devices" else "kind"
    return [f"{schema.title}: {schema.folder}/<name>.toml with [card] {key} = "
            f'"{schema.kind}"', "", schema.help]


def describe(kind: str) -> str:
    """The reference of one card kind as plain text (what ``memsim card schema KIND``
    prints): its sections and, for each field, key, allowed values with unit, default,
    whether a card must give it, the Python keyword and what it is. ``kind`` "device"
    describes every device family, one after the other."""
    kinds = _expand(kind)
    if len(kinds) > 1:
        return "\n".join(describe(k) for k in kinds)
    schema = get_schema(kind)
    lines = _header(schema)
    rows = field_rows(kind)
    for section in schema.sections:
        lines += ["", f"[{section.name}{'.<name>' if section.each else ''}]  {section.help}"
                  + ("" if section.required else " (optional section)")]
        for r in (r for r in rows if r.section == section.name):
            kw = f"  keyword {r.keyword}" if r.keyword else ""
            lines.append(f"  {r.key}: {r.allowed}; default {r.default}; required: "
                         f"{r.required}{kw}")
            if r.help:
                lines.append(f"      {r.help}")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(kinds: Sequence[str] | None = None) -> str:
    """The card reference in Markdown (``docs/cards.md``): every field of every kind."""
    out = ["# Card reference", "",
           "Generated from the field declarations in the code by "
           "`python -m memsim.schema --markdown > docs/cards.md`; do not edit by hand "
           "(a test checks that this file is up to date).", "",
           "A number is written as `{ value = ..., unit = \"...\", source = \"...\" }`: the "
           "value in any unit of its dimension (converted to SI; the allowed range is in "
           "SI units) and the source it comes from (a paper, or \"memsim assumption\"). "
           "Modes are plain strings, switches `true`/`false`. `\"none\"` stands for an "
           "unquantized converter or a continuous quantity where the field allows it. "
           "A field of a plug-in (drift and read-noise law, ADC model, topology) belongs "
           "to its section only with that plug-in chosen (adding one: docs/extending.md). "
           "The Python keyword is the "
           "argument of the config class (TileConfig, ChipConfig, …) and of the overrides "
           "of `memsim.load_tile` / `memsim.load_chip`: the same declaration checks it "
           "(a `ConfigError`; a card gets a `CardError` naming the card and the field).", ""]
    for kind in kinds or card_kinds():
        schema = get_schema(kind)
        head = _header(schema)
        out += [f"## {schema.title}", "", f"`{head[0].split(': ', 1)[1]}`", "", head[2], ""]
        rows = field_rows(kind)
        for section in schema.sections:
            suffix = ".<name>" if section.each else ""
            optional = "" if section.required else " (optional)"
            out += [f"### [{section.name}{suffix}]{optional}", "", section.help, "",
                    "| field | allowed (SI) | default | required | Python keyword | units | "
                    "what it is |",
                    "|---|---|---|---|---|---|---|"]
            for r in (r for r in rows if r.section == section.name):
                kw = f"`{r.keyword}`" if r.keyword else ""
                out.append(f"| `{r.key}` | {_cell(r.allowed)} | {_cell(r.default)} | "
                           f"{_cell(r.required)} | {kw} | {_cell(r.units)} | "
                           f"{_cell(r.help)} |")
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# -- a card written from the reference ----------------------------------------------------------
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else json.dumps(str(value))
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")  # pragma: no cover


def _key(k: Any) -> str:
    k = str(k)
    return k if k.replace("_", "").isalnum() and not k.isdigit() else json.dumps(k)


def _example(f: Field) -> Any:
    value = f.example_value()
    kind = f.kind
    if kind == "number":
        if value is None:
            return "none"
        return {"value": value, "unit": f.unit, "source": "example"}
    if kind == "custom":
        if isinstance(value, Mapping) and all(isinstance(v, int | float) for v in
                                              value.values()):  # a table of quantities
            return {k: {"value": v, "unit": "J", "source": "example"} for k, v in
                    value.items()}
        return {**value, "source": "example"}
    return list(value) if kind == "texts" else value


def example_card(kind: str, *, full: bool = False,
                 choices: Mapping[str, str] | None = None) -> str:
    """A card of ``kind`` written from the declaration alone: the required sections and
    fields (``full``: every section and every field that applies), each with its example
    value (the declaration's ``example``, else its default, else a value in range), unit
    and source "example". ``choices``: {"section.key": option} picks a mode or plug-in
    (e.g. ``{"drift.model": "power_law"}``); otherwise the default or the first option."""
    schema = get_schema(kind)
    choices = dict(choices or {})
    lines = [f"# A {kind} card written from the card reference (memsim.schema)."]
    for section in schema.sections:
        if not (section.required or full or any(k.startswith(f"{section.name}.")
                                                for k in choices)):
            continue
        chosen: dict[str, Any] = {}
        for f in section.fields:
            if f.kind == "choice":
                pick = choices.get(f"{section.name}.{f.key}")
                chosen[f.key] = pick if pick is not None else (
                    f.example if f.example is not MISSING else
                    f.default if f.default is not MISSING else f.options[0])
        fields = [f for f in section.fields if f.applies(chosen)]
        if section.plugin:
            fields += section.plugin_fields(chosen[section.plugin])
        body = []
        for f in fields:
            if not (f.required or full or f.key in chosen):
                continue
            if section.name == "card" and f.key in ("kind", "family"):
                body.append(f"{f.key} = {_toml(schema.kind)}")
                continue
            value = chosen[f.key] if f.key in chosen else _example(f)
            body.append(f"{_key(f.key)} = {_toml(value)}")
        header = f"[{section.name}.example]" if section.each else f"[{section.name}]"
        lines += ["", header, *body]
    return "\n".join(lines) + "\n"


def card_text(kind: str | None = None, *, markdown_: bool = False, example: bool = False,
              full: bool = False) -> str:
    """What ``memsim card schema [KIND]`` prints: the reference of ``kind`` as text (a group
    such as "device": each of its kinds), in Markdown with ``markdown_`` or with no kind (the
    whole ``docs/cards.md``), or with ``example`` a card of ``kind`` written from the
    reference (``full``: every field)."""
    if example:
        if kind is None:
            raise ConfigError("an example card needs a card kind: "
                              + ", ".join(card_kinds()))
        return "\n".join(example_card(k, full=full) for k in _expand(kind))
    if kind is None:
        return markdown()
    if markdown_:
        return markdown(list(_expand(kind)))
    return describe(kind)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m memsim.schema [KIND] [--markdown] [--example [--full]]``."""
    parser = argparse.ArgumentParser(prog="python -m memsim.schema",
                                     description="The card reference, from the declarations.")
    parser.add_argument("kind", nargs="?", choices=[*card_kinds(), *GROUPS],
                        help="one card kind")
    parser.add_argument("--markdown", action="store_true",
                        help="Markdown (default for all kinds: the docs/cards.md text)")
    parser.add_argument("--example", action="store_true",
                        help="print a card of KIND written from the reference")
    parser.add_argument("--full", action="store_true", help="with --example: every field")
    args = parser.parse_args(argv)
    if args.example and args.kind is None:
        parser.error("--example needs a KIND")
    sys.stdout.write(card_text(args.kind, markdown_=args.markdown, example=args.example,
                               full=args.full))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
