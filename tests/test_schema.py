"""One declaration per card field: it parses cards, checks Python keywords and writes the
reference (docs/cards.md); a card written from the reference alone loads."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import memsim
from memsim import schema
from memsim.cards import MISSING, fields_of
from memsim.chip import load_chip_config, load_digital_config
from memsim.chip.card import ChipConfig
from memsim.chip.digital import DigitalConfig
from memsim.crossbar.config import TileConfig
from memsim.errors import CardError, ConfigError

ROOT = Path(__file__).resolve().parent.parent
LOADERS = {"tile": memsim.load_tile_config, "chip": load_chip_config,
           "digital": load_digital_config, "statistical": memsim.load_device,
           "vteam": memsim.load_device}


def test_the_committed_reference_is_up_to_date():
    """docs/cards.md is what `python -m memsim.schema --markdown` writes now."""
    committed = (ROOT / "docs" / "cards.md").read_text(encoding="utf-8")
    assert committed == schema.markdown(), (
        "docs/cards.md is out of date: run python -m memsim.schema --markdown > docs/cards.md")


@pytest.mark.parametrize("kind", schema.card_kinds())
def test_every_field_is_in_the_reference(kind):
    text = schema.markdown([kind])
    described = schema.describe(kind)
    for section in schema.get_schema(kind).sections:
        assert f"### [{section.name}" in text and f"[{section.name}" in described
        for f in section.every_field():
            assert f"| `{f.key}` |" in text, (section.name, f.key)
            assert f.help, f"{kind}: {section.name}.{f.key} has no help text"


def _variants(kind: str) -> list[dict[str, str]]:
    """Every mode and plug-in choice of a card kind, one at a time."""
    out: list[dict[str, str]] = [{}]
    for section in schema.get_schema(kind).sections:
        for f in section.fields:
            if f.kind == "choice" and section.name != "card":
                out += [{f"{section.name}.{f.key}": o} for o in f.options]
    return out


@pytest.mark.parametrize("kind", schema.card_kinds())
def test_a_card_written_from_the_reference_alone_loads(kind, tmp_path):
    """Every field (full card) with every choice and plug-in, and the required fields only
    (minimal card): the example values of the declaration load."""
    path = tmp_path / f"from-reference-{kind}.toml"
    minimal_ok = {"array.ir_drop": ("none",)}  # "approx"/"exact" need wire_resistance > 0
    for choice in _variants(kind):
        for full in (True, False):
            picks = dict(choice)
            if kind == "statistical" and "read_noise.model" in picks:
                picks["drift.model"] = "power_law"  # its t0 is the read noise's default
            key = next(iter(choice), None)
            if not full and key in minimal_ok and choice[key] not in minimal_ok[key]:
                continue
            path.write_text(schema.example_card(kind, full=full, choices=picks))
            loaded = LOADERS[kind](path)
            assert loaded.name == path.stem


def test_the_minimal_cards_are_small_and_say_what_they_are():
    tile = schema.example_card("tile")
    assert tile.strip().endswith('kind = "tile"')  # every tile field has a default
    dev = schema.example_card("statistical")
    assert 'family = "statistical"' in dev and 'model = "none"' in dev
    assert 'source = "example"' in dev


_OWNERS = {"tile": TileConfig, "chip": ChipConfig, "digital": DigitalConfig}


def _bad_value(f):
    """A value just outside the field's declared range (None when it has no finite bound)."""
    if math.isfinite(f.hi):
        return f.hi * 2 + 1 if f.hi > 0 else f.hi + 1
    if math.isfinite(f.lo):
        return f.lo - 1
    return None


@pytest.mark.parametrize("kind", ["tile", "chip", "digital"])
def test_one_range_for_cards_and_python(kind, tmp_path):
    """Every number field: a value out of its range is a ConfigError naming the keyword
    from Python and a CardError naming the card field from a card."""
    base = {"tile": lambda **kw: TileConfig().with_(**kw),
            "chip": lambda **kw: load_chip_config("hermes-64core").with_(**kw),
            "digital": None}[kind]
    checked = 0
    for f in fields_of(_OWNERS[kind]):
        if f.kind != "number" or not f.section or f.when is not None:
            continue
        bad = _bad_value(f)
        if bad is None:
            continue
        value = int(bad) if f.integer else float(bad)
        if base is not None:
            with pytest.raises(ConfigError, match=rf"{f.attr} = {re.escape(repr(value))} is out "
                                                  r"of range; allowed"):
                base(**{f.attr: value})
        unit = f.unit
        text = schema.example_card(kind, full=True)
        line = f"\n{f.key} = {{ value = "
        start = text.index(f"[{f.section}]")
        at = text.index(line, start) + 1
        end = text.index("\n", at)
        text = text[:at] + f'{f.key} = {{ value = {value!r}, unit = "{unit}", source = "x" }}' \
            + text[end:]
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(CardError, match=rf"'bad': {f.section}\.{f.key} = .* out of range"):
            LOADERS[kind](path)
        checked += 1
    assert checked >= 10


def test_python_configs_raise_config_errors_not_card_errors():
    with pytest.raises(ConfigError) as err:
        load_chip_config("hermes-64core").with_(ldpu_clock_hz=-1.0)
    assert not isinstance(err.value, CardError)
    with pytest.raises(ConfigError, match=r"digital engine 'x': efficiency = 1\.5 is out of "
                                          r"range; allowed \(0, 1\]"):
        DigitalConfig(name="x", peak_flops=1e12, efficiency=1.5, bytes_per_value=1,
                      memory_bandwidth_Bps=1e9, energy_per_flop_j=0.0,
                      energy_per_flop_arithmetic_j=0.0, energy_per_sram_byte_j=0.0,
                      energy_per_dram_byte_j=0.0, static_power_w=0.0, per_layer_overhead_s=0.0)
    with pytest.raises(ConfigError, match=r"rows = 2\.0 must be an integer"):
        TileConfig(rows=2.0)
    with pytest.raises(ConfigError, match=r"adc_mode = 'ceil' is out of range; allowed one of"):
        TileConfig(adc_mode="ceil")
    dev = memsim.load_device("pcm-generic")
    with pytest.raises(ConfigError, match=r"g_max_S = -1\.0 is out of range"):
        type(dev)(name="x", g_min_S=0.0, g_max_S=-1.0, programming_sigma=dev.programming_sigma,
                  drift=dev.drift, read_noise=dev.read_noise)
    with pytest.raises(ConfigError, match=r"drift = 'power_law' must be a DriftLaw"):
        type(dev)(name="x", g_min_S=0.0, g_max_S=1e-5, programming_sigma=dev.programming_sigma,
                  drift="power_law", read_noise=dev.read_noise)


def test_fields_of_another_model_are_named_in_the_error(tmp_path):
    text = (ROOT / "crossbars" / "hermes-64core.toml").read_text()
    p = tmp_path / "bad-topo.toml"
    p.write_text(text.replace('kind = "prism"\n', 'kind = "prism"\nrows = { value = 8, unit = "1", '
                                                  'source = "x" }\n', 1))
    with pytest.raises(CardError, match=r"topology\.rows does not apply with kind = 'prism'"):
        load_chip_config(p)


def test_describe_is_print_ready_and_unknown_kinds_are_named():
    text = schema.describe("tile")
    assert text.startswith("Tile card: crossbars/<name>.toml")
    assert "keyword read_voltage_v" in text and "(0, 10] V" in text
    with pytest.raises(ConfigError, match=r"card kind .tiles. is unknown; known: tile, .*, device"):
        schema.describe("tiles")
    rows = schema.field_rows("chip")
    row = next(r for r in rows if r.key == "prism_size")
    assert row.required == 'with kind = "prism"' and row.keyword == "prism_size"


def test_schema_main_writes_markdown_text_and_examples(capsys):
    assert schema.main(["tile"]) == 0
    assert "[adc]" in capsys.readouterr().out
    assert schema.main(["--example", "vteam"]) == 0
    assert 'family = "vteam"' in capsys.readouterr().out
    assert schema.main([]) == 0
    assert capsys.readouterr().out == schema.markdown()


def test_declared_defaults_are_the_dataclass_defaults():
    """The declaration is the default: a config built without keywords has them."""
    cfg = TileConfig()
    for f in fields_of(TileConfig):
        if f.default is not MISSING:
            assert getattr(cfg, f.attr) == f.default


def test_memsim_card_schema_prints_the_reference(capsys):
    """`memsim card schema KIND` prints the library's text; "device" every device family;
    `--example` a card that loads (checked above); an unknown kind is refused (exit 2)."""
    from memsim.cli import main

    assert main(["card", "schema", "chip"]) == 0
    assert capsys.readouterr().out == schema.describe("chip")
    assert main(["card", "schema", "device"]) == 0
    out = capsys.readouterr().out
    assert out == schema.describe("statistical") + "\n" + schema.describe("vteam")
    assert main(["card", "schema", "digital", "--example"]) == 0
    assert capsys.readouterr().out == schema.example_card("digital")
    assert main(["card", "schema"]) == 0
    assert capsys.readouterr().out == schema.markdown()
    with pytest.raises(SystemExit) as stop:
        main(["card", "schema", "tiles"])
    assert stop.value.code == 2
    assert "invalid choice: 'tiles'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="an example card needs a card kind"):
        schema.card_text(None, example=True)


def test_load_digital_is_the_deprecated_name_of_load_digital_config():
    """A load_* without _config returns an engine; the digital engine's loader returns its
    config, so it is load_digital_config; the old name warns and loads the same config."""
    with pytest.warns(DeprecationWarning, match="load_digital_config"):
        old = memsim.chip.load_digital("digital-gpu")
    assert old == load_digital_config("digital-gpu")
