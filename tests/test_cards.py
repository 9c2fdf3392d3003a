"""Cards: every shipped card loads and cites; every bad card or input fails clearly."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

import memsim
from memsim.cards import list_cards

ROOT = Path(__file__).resolve().parent.parent
GOOD = (ROOT / "devices" / "pcm-generic.toml").read_text()


def write(tmp_path: Path, text: str, name: str = "custom") -> Path:
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("name", list_cards("devices"))
def test_every_shipped_card_loads(name):
    dev = memsim.load_device(name)
    assert dev.name == name
    assert 0 <= dev.g_min_S < dev.g_max_S


def _numbers_without_source(node, path=""):
    """Paths of numbers that do not sit in a table carrying a non-empty 'source'."""
    bad = []
    if isinstance(node, dict):
        has_source = isinstance(node.get("source"), str) and node["source"].strip()
        for k, v in node.items():
            p = f"{path}.{k}" if path else k
            if isinstance(v, int | float) and not isinstance(v, bool) and not has_source:
                bad.append(p)
            elif isinstance(v, list) and any(isinstance(x, int | float) for x in v) \
                    and not has_source:
                bad.append(p)
            elif isinstance(v, dict):
                inner = _numbers_without_source(v, p)
                # a law's sub-forms (piecewise below/above) inherit the law's source
                bad += [] if has_source else inner
    return bad


@pytest.mark.parametrize("name", list_cards("devices"))
def test_every_number_in_a_card_has_unit_and_source(name):
    path = next(p for p in (ROOT / "devices").glob(f"{name}.toml"))
    data = tomllib.loads(path.read_text())
    assert _numbers_without_source(data) == []
    for table in _tables_with_value(data):
        assert "unit" in table, table


def _tables_with_value(node):
    if isinstance(node, dict):
        if "value" in node or "law" in node:
            yield node  # a law's sub-forms (piecewise below/above) share its unit
            return
        for v in node.values():
            yield from _tables_with_value(v)


def test_user_card_by_path(tmp_path):
    p = write(tmp_path, GOOD.replace("value = 25.0, unit", "value = 30.0, unit"), "mypcm")
    dev = memsim.load_device(p)
    assert dev.g_max_S == pytest.approx(30e-6)
    assert dev.name == "mypcm"


@pytest.mark.parametrize(
    "edit, message",
    [
        # out of range: negative g_max
        (("value = 25.0, unit", "value = -25.0, unit"),
         r"conductance\.g_max = -2\.5e-05 .*out of range"),
        # wrong unit for the dimension
        (('unit = "s", source = "Joshi 2020: drift', 'unit = "V", source = "Joshi 2020: drift'),
         r"drift\.t0: unit 'V' is not a unit of time"),
        # missing source
        ((', source = "Joshi 2020: read duration t_read = 250 ns"', ""),
         r"read_noise\.t_read is missing 'source'"),
        # unknown field
        (("[programming]\n", "[programming]\nsigma_typo = 3\n"),
         r"unknown fields \['sigma_typo'\]"),
        # unknown law
        (('law = "power_clip"', 'law = "power"'), r"read_noise\.q_s\.law = 'power' is unknown"),
        # a spread law that goes negative
        (("coefficients = [0.26348, 1.9650, -1.1731]", "coefficients = [0.26348, 1.9650, -3.0]"),
         r"programming\.sigma is negative at g_norm"),
        # clip bounds reversed
        (("lo = 0.049, hi = 0.1", "lo = 0.2, hi = 0.1"), r"drift\.nu_mean: lo = 0\.2 is above hi"),
        # unknown drift model
        (('model = "power_law"', 'model = "exponential"'), r"drift\.model = 'exponential'"),
        # unknown family
        (('family = "statistical"', 'family = "magic"'), r"card\.family = 'magic' is unknown"),
        # value not a number
        (("value = 20.0, unit", 'value = "twenty", unit'), r"drift\.t0\.value = 'twenty'"),
        # missing section
        (("[read_noise]", "[read_noise_x]"), r"unknown sections \['read_noise_x'\]"),
    ],
)
def test_bad_card_names_card_and_field(tmp_path, edit, message):
    old, new = edit
    assert old in GOOD, old
    p = write(tmp_path, GOOD.replace(old, new, 1), "badcard")
    with pytest.raises(ValueError, match=message) as info:
        memsim.load_device(p)
    assert "badcard" in str(info.value)


def test_bad_nonideality(tmp_path):
    text = GOOD + '\n[nonidealities]\nstuck_at_gmin_rate = { value = 1.5, unit = "1", ' \
                  'source = "x" }\n'
    with pytest.raises(ValueError, match=r"stuck_at_gmin_rate = 1\.5 is out of range; "
                                         r"allowed \[0, 1\]"):
        memsim.load_device(write(tmp_path, text))
    text = GOOD + '\n[nonidealities]\nstuck_rate = { value = 0.1, unit = "1", source = "x" }\n'
    with pytest.raises(ValueError, match=r"unknown non-idealities \['stuck_rate'\]"):
        memsim.load_device(write(tmp_path, text))
    text = GOOD + '\n[nonidealities]\nlevels = { value = 4.5, unit = "1", source = "x" }\n'
    with pytest.raises(ValueError, match=r"levels = 4\.5 must be an integer"):
        memsim.load_device(write(tmp_path, text))


def test_unknown_card_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown devices card 'pcm-genric'.*pcm-generic"):
        memsim.load_device("pcm-genric")
    with pytest.raises(ValueError, match=r"card file .*nothere\.toml' does not exist"):
        memsim.load_device("/tmp/nothere.toml")


def test_invalid_toml(tmp_path):
    with pytest.raises(ValueError, match=r"not valid TOML"):
        memsim.load_device(write(tmp_path, "[card\nfamily = 1"))


@pytest.mark.parametrize("name", ["pcm-generic", "rram-cmo"])
def test_bad_targets(name):
    dev = memsim.load_device(name)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"g_target contains 1 NaN or infinite"):
        dev.program(np.array([1e-6, np.nan]), rng)
    with pytest.raises(ValueError, match=r"negative target conductance"):
        dev.program(np.array([-1e-6]), rng)
    with pytest.raises(ValueError, match=r"out of range; allowed"):
        dev.program(np.array([2 * dev.g_max_S]), rng)
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        dev.program(np.array([dev.g_max_S]), 42)
    state = dev.program(np.array([dev.g_max_S]), rng)
    for t in (-1.0, float("nan"), "soon"):
        with pytest.raises(ValueError, match=re.escape("t = ")):
            dev.read(state, t, rng)


def test_rram_target_below_gmin_is_an_error_not_a_clip():
    dev = memsim.load_device("rram-cmo")
    with pytest.raises(ValueError, match=r"out of range; allowed \[9e-06"):
        dev.program(np.array([1e-6]), np.random.default_rng(0))


def test_negative_noise_scale():
    dev = memsim.load_device("pcm-generic")
    with pytest.raises(ValueError, match=r"noise scale programming_scale = -1\.0 must be >= 0"):
        dev.with_noise(programming=-1.0)


@pytest.mark.parametrize("name", list_cards("crossbars"))
def test_every_number_in_a_tile_chip_or_digital_card_has_unit_and_source(name):
    data = tomllib.loads((ROOT / "crossbars" / f"{name}.toml").read_text())
    assert _numbers_without_source(data) == []
    for table in _tables_with_value(data):
        assert "unit" in table, table
