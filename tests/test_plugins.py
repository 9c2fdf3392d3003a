"""Plug-in points: every registered drift law, read-noise law, ADC model and topology passes
the same contract; the example plug-ins (exponential drift, SAR ADC) do what they say."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import memsim
from memsim import schema
from memsim.cards import fields_of
from memsim.chip.topology import TOPOLOGIES, square_grid
from memsim.crossbar import load_tile
from memsim.crossbar.adc import ADC_MODELS, make_adc
from memsim.crossbar.config import TileConfig
from memsim.crossbar.tile import Tile
from memsim.devices.statistical import DRIFT_LAWS, READ_NOISE_LAWS
from memsim.errors import ConfigError
from memsim.timegrid import YEAR
from tests.test_chip_units import test_topology_contract as topology_contract

Z = 5.0  # standard errors


def _device(tmp_path, drift: str, read_noise: str = "none", extra: str = ""):
    """A statistical device written from the card reference with the chosen laws."""
    picks = {"drift.model": drift, "read_noise.model": read_noise}
    text = schema.example_card("statistical", full=True, choices=picks) + extra
    path = tmp_path / f"dev-{drift}-{read_noise}.toml"
    path.write_text(text)
    return memsim.load_device(path)


# -- drift laws ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(DRIFT_LAWS))
def test_drift_law_contract(name, tmp_path):
    """A drift law keeps exactly its state_keys, is the identity at t = 0, gives finite
    conductances >= 0 that depend on the state and t only (any read order, any rng), and
    what a tile caches for it is its mean."""
    dev = _device(tmp_path, name, "accumulated_1f")
    law = dev.drift
    assert DRIFT_LAWS[law.name] is type(law) and law.name == name
    g = np.linspace(dev.g_min_S, dev.g_max_S, 2000)
    state = dev.program(g, np.random.default_rng(0))
    drawn = law.program(g, dev.g_max_S, np.random.default_rng(0), 1.0)
    assert set(drawn) == set(law.state_keys) and set(law.state_keys) <= set(state.extra)
    np.testing.assert_allclose(dev.drifted(state, 0.0, None), state.g_prog_S, rtol=1e-12)
    times = [1.0, 3600.0, 86400.0, YEAR]
    first = {t: dev.drifted(state, t, np.random.default_rng(1)) for t in times}
    for t in reversed(times):
        again = dev.drifted(state, t, np.random.default_rng(99))
        assert np.array_equal(again, first[t])
        assert np.all(np.isfinite(again)) and again.min() >= 0
    parts = dev.mvm_read_parts(state, 86400.0, window_s=1e-3)
    if law.tile_cache and dev.read_noise.tile_cache:
        assert np.array_equal(parts[0], first[86400.0])
    else:
        assert parts is None
    assert all(len(row) == 3 and all(isinstance(x, str) for x in row)
               for row in law.parameters())


@pytest.mark.parametrize("name", sorted(READ_NOISE_LAWS))
def test_read_noise_law_contract(name, tmp_path):
    """The slow and fast variance of a window add up to the whole; σ >= 0; reads scatter
    around G_drift with the law's σ (N = 20000 devices, 5 standard errors)."""
    dev = _device(tmp_path, "power_law", name)
    law = dev.read_noise
    assert READ_NOISE_LAWS[law.name] is type(law)
    for t in (0.0, 1.0, 86400.0, 10 * YEAR):
        whole = law.slow_variance_factor(t, None)
        assert whole >= 0
        for window in (1e-9, 1e-3, 1.0, 1e12):
            slow, fast = law.slow_variance_factor(t, window), law.fast_variance_factor(t, window)
            assert slow >= 0 and fast >= 0
            assert slow + fast == pytest.approx(whole, rel=1e-12, abs=1e-15)
    n, t = 20000, 86400.0
    g = np.full(n, 0.5 * dev.g_max_S)
    state = dev.program(g, np.random.default_rng(2))
    mean = dev.drifted(state, t, None)
    unit = law.sigma_unit_S(state, mean, dev.g_max_S)
    assert np.all(np.isfinite(unit)) and unit.min() >= 0
    expect = float(np.sqrt(law.slow_variance_factor(t, None) * np.mean(unit**2)))
    spread = dev.read(state, t, np.random.default_rng(3)) - mean
    if expect == 0:
        assert np.all(spread == 0)
    else:
        assert abs(spread.std() / expect - 1) < Z / math.sqrt(2 * n)


def test_a_new_drift_law_is_one_file_and_one_card_field(tmp_path):
    """memsim/devices/drift_exponential.py: registered by its module alone; a card chooses it
    with model = "exponential_decay" and its three fields. Statistics: ln τ ~ N(ln τ_0, σ²)
    (N = 20000, 5 standard errors); G(t)/G_prog = f + (1 − f) exp(−t/τ_i) exactly."""
    card = schema.example_card("statistical", choices={"drift.model": "none"})
    card = card.replace('[drift]\nmodel = "none"', '[drift]\nmodel = "exponential_decay"\n'
                        'tau = { value = 10.0, unit = "ms", source = "test" }\n'
                        'tau_sigma = { value = 0.4, unit = "1", source = "test" }\n'
                        'retained = { value = 0.7, unit = "1", source = "test" }')
    path = tmp_path / "decaying.toml"
    path.write_text(card)
    dev = memsim.load_device(path)
    assert dev.drift.name == "exponential_decay" and dev.drift.tau_s == pytest.approx(0.01)
    n = 20000
    state = dev.program(np.full(n, 20e-6), np.random.default_rng(4))
    log_tau = np.log(state.extra["drift_tau_s"])
    assert abs(log_tau.mean() - math.log(0.01)) < Z * 0.4 / math.sqrt(n)
    assert abs(log_tau.std() / 0.4 - 1) < Z / math.sqrt(2 * n)
    for t in (0.0, 0.01, 1.0):
        ratio = dev.drifted(state, t, None) / state.g_prog_S
        expect = 0.7 + 0.3 * np.exp(-t / state.extra["drift_tau_s"])
        np.testing.assert_allclose(ratio, expect, rtol=1e-12)
    quiet = dev.with_noise(drift_spread=0.0).program(np.full(3, 20e-6), np.random.default_rng(5))
    assert np.all(quiet.extra["drift_tau_s"] == 0.01)
    assert ("decay τ", "0.01 s (σ ln τ = 0.4)", "") in dev.parameters()
    with pytest.raises(memsim.CardError, match=r"drift\.retained = 1\.5 is out of range"):
        path.write_text(card.replace("value = 0.7,", "value = 1.5,"))
        memsim.load_device(path)


# -- ADC models ----------------------------------------------------------------------------------
def _adc(name: str):
    own = {f.attr: f.example_value() for f in fields_of(ADC_MODELS[name])}
    return make_adc(name, own, "test")


def _codes(model, u: torch.Tensor, bits: int, columns: int = 16, seed: int = 0):
    state = model.draw((1, 1, columns), bits, np.random.default_rng(seed))
    st = {k: torch.as_tensor(v[:, 0], dtype=torch.float64) for k, v in state.items()}
    return model.code(u[:, None, None, None].expand(-1, 1, 1, columns), bits, st)[:, 0, 0, :]


@pytest.mark.parametrize("name", sorted(ADC_MODELS))
@pytest.mark.parametrize("bits", [1, 4, 8])
def test_adc_model_contract(name, bits):
    """Integer codes, monotonic in the input for every converter, beyond the code range
    exactly where the input is beyond the full scale (saturation), and with its own
    non-idealities off equal to its ideal model."""
    model = _adc(name)
    half = 2.0 ** (bits - 1)
    u = torch.linspace(-half - 3.0, half + 3.0, 20001, dtype=torch.float64)
    c = _codes(model, u, bits)
    assert torch.equal(c, torch.round(c))
    assert torch.all(c[1:] >= c[:-1])
    inside = (u >= -half + 1) & (u <= half - 2)
    assert torch.all(c[inside] >= -half) and torch.all(c[inside] <= half - 1)
    assert torch.all(c[u < -half - 1] < -half) and torch.all(c[u > half + 1] > half - 1)
    ideal = ADC_MODELS[model.ideal]()
    assert torch.equal(_codes(model.without_nonidealities(), u, bits), _codes(ideal, u, bits))


@pytest.mark.parametrize("name", sorted(ADC_MODELS))
def test_adc_model_in_a_tile(name):
    """Unquantized, every model is the identity (exact limit X @ W); quantized, a tile with a
    full scale far below its outputs counts every conversion as saturated."""
    opts = {f.attr: f.example_value() for f in fields_of(ADC_MODELS[name])}
    rng = np.random.default_rng(6)
    w, x = rng.uniform(-1, 1, (24, 10)), rng.uniform(-1, 1, (5, 24))
    exact = Tile(TileConfig(rows=24, cols=10, adc_mode=name, adc_options=opts).noise_free(),
                 memsim.load_device("ideal"))
    assert exact.config.adc.name == name
    y = exact.program(w, np.random.default_rng(7)).matvec(x, 1.0, np.random.default_rng(8))
    np.testing.assert_allclose(y, x @ w, rtol=1e-12, atol=1e-12)
    tile = load_tile("generic-256", device="ideal", rows=24, cols=10, adc_mode=name,
                     adc_options=opts, output_range=0.5, input_scaling="absmax")
    tile.program(np.ones((24, 10)), np.random.default_rng(9))
    tile.matvec(np.ones((5, 24)), 1.0, np.random.default_rng(10))
    assert tile.saturation_.saturated == 5 * 10


def test_sar_adc_differential_nonlinearity_is_its_capacitor_mismatch():
    """The mid-scale code (offset binary 0111…1) spans w_(b−1) − Σ_(i<b−1) w_i: its DNL is
    the mismatch of the MSB capacitor against the rest of the array (McCreary and Gray
    1975); with no mismatch the SAR is the floor quantizer."""
    bits = 6
    sar = make_adc("sar", {"cap_mismatch": 0.05}, "test")
    state = sar.draw((1, 1, 1), bits, np.random.default_rng(11))
    wts = state["weights"][0, 0, 0]
    u = torch.linspace(-2.0, 2.0, 400001, dtype=torch.float64)
    c = _codes(sar, u, bits, columns=1, seed=11)[:, 0]
    below = u[c == -1]  # offset-binary code 2^(b−1) − 1
    width = float(below.max() - below.min())
    assert width == pytest.approx(wts[-1] - wts[:-1].sum(), abs=2e-5)
    assert abs(width - 1.0) > 1e-3  # mismatch changes the code width
    with pytest.raises(ConfigError, match=r"ADC model 'round' has no options \['cap_mismatch'\]"):
        TileConfig(adc_mode="round", adc_options={"cap_mismatch": 0.1})
    with pytest.raises(ConfigError, match=r"cap_mismatch = 0\.9 is out of range"):
        TileConfig(adc_mode="sar", adc_options={"cap_mismatch": 0.9})
    assert TileConfig(adc_mode="sar", adc_options={"cap_mismatch": 0.1}).with_(
        adc_mode="round").adc_options == {}


def test_a_new_adc_model_is_one_file_and_one_card_field(tmp_path):
    """memsim/crossbar/adc_sar.py: a tile card chooses it with mode = "sar" and gives its
    own field; a tile with it runs (torch back-end on CPU), its conversions keep the
    mismatch drawn at programming (two reads with the same stream agree), and with no
    mismatch and no converter noise it gives the floor model's outputs (the fused numba
    kernel)."""
    text = (memsim.cards.find_card("hermes-core", "crossbars")).read_text()
    assert 'mode = "floor"' in text
    text = text.replace('mode = "floor"', 'mode = "sar"\ncap_mismatch = { value = 0.02, '
                        'unit = "1", source = "test" }')
    path = tmp_path / "hermes-sar.toml"
    path.write_text(text)
    cfg = memsim.load_tile_config(path)
    assert cfg.adc.name == "sar" and cfg.adc_options == {"cap_mismatch": 0.02}
    assert cfg.sources["cap_mismatch"] == "test"
    rng = np.random.default_rng(12)
    w, x = rng.uniform(-1, 1, (64, 32)), rng.uniform(-1, 1, (8, 64))

    def outputs(**kw):
        quiet = dict(adc_gain_sigma=0.0, adc_offset_fs=0.0, adc_noise_fs=0.0,
                     affine_calibration=False, drift_compensation="none")
        tile = load_tile(path, device="ideal", rows=64, cols=32, input_scaling="absmax",
                         **quiet, **kw)
        tile.program(w, np.random.default_rng(13))
        return tile, [tile.matvec(x, 1.0, np.random.default_rng(14)) for _ in range(2)]

    tile, (y1, y1_again) = outputs()
    assert tile.array_.adc_state_["weights"].shape == (1, 1, 32, 8)
    assert np.array_equal(y1, y1_again)
    _, (y0, _) = outputs(adc_mode="floor")
    _, (y_ideal_sar, _) = outputs(adc_options={"cap_mismatch": 0.0})
    np.testing.assert_allclose(y_ideal_sar, y0, rtol=1e-12, atol=1e-12)
    assert not np.array_equal(y1, y0)  # the drawn mismatch moves some codes


# -- topologies ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(TOPOLOGIES))
@pytest.mark.parametrize("cores", [1, 12, 64])
def test_every_registered_topology_passes_the_contract(kind, cores):
    rows, cols = square_grid(cores)
    topo = TOPOLOGIES[kind].for_chip(cores, rows=rows, cols=cols, prism_size=5)
    assert topo.n == cores and TOPOLOGIES[topo.kind] is type(topo)
    assert set(topo.uses) <= {"rows", "cols", "prism_size"}
    topology_contract(topo)
