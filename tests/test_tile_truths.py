"""Issue "No wrong number without a warning": zero and extreme inputs, the exact limit of
every shipped card, converter units, and the cell I–V that tells the encodings apart.

Each test here failed on the engine before the fix (see the issue's reproductions)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import memsim
from memsim.cards import list_cards
from memsim.crossbar import Tile, load_tile, load_tile_config
from memsim.crossbar.cell import CellModel

TILE_CARDS = [c for c in list_cards("crossbars")
              if load_tile_config.__module__ and c in ("hermes-core", "generic-256",
                                                       "isaac-xbar")]
DEVICES = ["ideal", "pcm-generic", "pcm-hermes-1dev", "pcm-hermes-2dev", "rram-cmo",
           "rram-neurram"]


def fitting(card: str, device: str) -> dict:
    """Overrides that let ``device`` populate ``card``'s cell (devices per polarity)."""
    dev = memsim.load_device(device)
    n = load_tile_config(card).devices_per_polarity
    return {} if n % dev.devices_per_polarity == 0 else {"devices_per_polarity": 2}


# -- 1. zero inputs ----------------------------------------------------------------------------
@pytest.mark.parametrize("card", ["hermes-core", "generic-256"])
def test_all_zero_input_rows_give_zero_not_full_scale_noise(card):
    """Before: an all-zero row on hermes-core gave outputs of rms 0.36 (abs-max scale fell
    back to 1, so converter noise and offsets came out at full size)."""
    rng = np.random.default_rng(0)
    device = "pcm-hermes-2dev" if card == "hermes-core" else "pcm-generic"
    tile = load_tile(card, device=device, input_scaling="absmax").program(
        rng.standard_normal((256, 128)), rng)
    x = rng.uniform(-1, 1, (6, 256))
    x[1] = 0.0
    x[4] = 0.0
    y = tile.matvec(x, 86400.0, rng)
    assert np.all(y[[1, 4]] == 0.0)
    assert np.all(np.abs(y[[0, 2, 3, 5]]).max(1) > 0.0)
    # a tiny input is a scaled input (abs-max scaling): the relative error is as for 1.0
    tiny = tile.matvec(x[:1] * 1e-9, 86400.0, np.random.default_rng(1), redraw=True) / 1e-9
    one = tile.matvec(x[:1], 86400.0, np.random.default_rng(1), redraw=True)
    np.testing.assert_allclose(tiny, one, rtol=1e-5)


def test_zero_rows_with_a_per_layer_input_range_keep_only_the_converter_offsets():
    """With one input range per layer (HERMES), an all-zero row drives no pulses: the
    output is what the converter shows at zero input, in real units (offset residue after
    the affine correction, and the converter noise), far below the signal."""
    rng = np.random.default_rng(12)
    tile = load_tile("hermes-core", device="pcm-hermes-2dev").program(
        rng.standard_normal((256, 64)), rng)
    x = rng.uniform(-1, 1, (200, 256))
    tile.calibrate_inputs(x)
    x[::2] = 0.0
    y = tile.matvec(x, 86400.0, rng)
    signal = np.abs(y[1::2]).mean()
    assert np.abs(y[::2]).mean() < 0.05 * signal


def test_zero_channels_of_a_depthwise_layer_stay_zero():
    """Before: a depthwise MobileNet-v2 came out with a relative error of 4.8e6: channels
    with all-zero inputs got full-scale noise."""
    conv = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16).eval()
    x = torch.randn(2, 16, 6, 6)
    x[:, ::2] = 0.0
    a = memsim.analog(conv, "hermes-core", "pcm-hermes-2dev", input_scaling="absmax")
    memsim.program(a, seed=0)
    with torch.no_grad():
        y = a(x) - conv.bias[None, :, None, None]
    assert torch.all(y[:, ::2] == 0)
    assert (y - (conv(x) - conv.bias[None, :, None, None])).norm() < 0.5 * y.norm()


# -- 2. extreme magnitudes -----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e45, 1e-45, 1e300, 3e-39])
def test_finite_inputs_of_any_magnitude_give_finite_outputs(scale):
    """Before: a float32 tile returned NaN rows for inputs above ~1e45 or below ~3e-39."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((64, 16))
    x = rng.uniform(-1, 1, (5, 64))
    tile = load_tile("hermes-core", device="pcm-hermes-2dev", input_scaling="absmax").program(
        w, rng)
    y = tile.matvec(x * scale, 3600.0, np.random.default_rng(3), redraw=True)
    ref = tile.matvec(x, 3600.0, np.random.default_rng(3), redraw=True)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y / scale, ref, rtol=1e-5, atol=1e-12 * np.abs(ref).max())
    exact = tile.noise_free().program(w, rng).matvec(x * scale, 1.0, rng)
    np.testing.assert_allclose(exact, (x * scale) @ w, rtol=1e-10)


def test_overflowing_results_are_an_error_naming_the_tile():
    """Weights 1e200 × inputs 1e200: the exact product is not a float64; before, the
    mapped network returned NaN silently."""
    rng = np.random.default_rng(4)
    tile = load_tile("hermes-core", device="pcm-hermes-2dev").program(
        rng.standard_normal((8, 4)) * 1e200, rng)
    with pytest.raises(memsim.NumericalError, match=r"tile 'hermes-core'.*not finite"):
        tile.matvec(rng.uniform(-1, 1, (2, 8)) * 1e200, 1.0, rng)
    g = memsim.Graph((8,), "big")
    g.set_output(g.linear(g.input, rng.standard_normal((4, 8)) * 1e200))
    net = memsim.map_network(g, "hermes-core", "pcm-hermes-2dev").program(rng)
    with pytest.raises(memsim.NumericalError, match=r"big/linear0"):
        net.forward(rng.uniform(-1, 1, (2, 8)) * 1e200, 1.0, rng)


def test_float32_model_overflow_is_an_error_naming_the_layer():
    lin = torch.nn.Linear(8, 2).eval()
    with torch.no_grad():
        lin.weight.fill_(1.0)  # 8 × 3e38 exceeds float32's 3.4e38
    a = memsim.analog(lin, "hermes-core", "pcm-hermes-2dev")
    memsim.program(a, seed=0)
    with torch.no_grad(), pytest.raises(memsim.NumericalError, match="layer 'model'"):
        a(torch.full((1, 8), 3e38))


@pytest.mark.parametrize("bad", [np.array([[1 + 2j, 0]]), np.array([["a", "b"]], dtype=object)])
def test_complex_and_object_inputs_are_refused(bad):
    rng = np.random.default_rng(5)
    tile = load_tile("generic-256", device="ideal").program(np.ones((2, 2)), rng)
    with pytest.raises(memsim.InputError, match=r"complex|numbers"):
        tile.matvec(bad, 1.0, rng)


def test_empty_batch_gives_an_empty_output():
    rng = np.random.default_rng(6)
    tile = load_tile("generic-256", device="ideal").program(np.ones((3, 2)), rng)
    assert tile.matvec(np.zeros((0, 3)), 1.0, rng).shape == (0, 2)


# -- 4. the exact limit on every shipped card ------------------------------------------------------
@pytest.mark.parametrize("card", TILE_CARDS)
@pytest.mark.parametrize("device", DEVICES)
def test_noise_free_tile_equals_matmul_on_every_card_and_device(card, device):
    """Before: device='ideal', adc_bits=None, dac_bits=None on hermes-core still gave 3.1 %
    error per MVM (ADC noise and gain spread stayed on)."""
    rng = np.random.default_rng(7)
    tile = load_tile(card, device=device, **fitting(card, device)).noise_free()
    cfg = tile.config
    w = rng.standard_normal((min(cfg.rows, 100), min(cfg.cols, 60)))
    x = rng.standard_normal((20, w.shape[0]))
    y = tile.program(w, rng).matvec(x, 3.15e7, rng)
    np.testing.assert_allclose(y, x @ w, rtol=1e-10, atol=1e-10 * np.abs(x @ w).max())


def test_noise_free_is_all_off_and_overrides_documented_as_unquantized_only():
    cfg = load_tile_config("hermes-core")
    free = cfg.noise_free()
    assert (free.adc_bits, free.dac_bits, free.adc_noise_fs, free.adc_gain_sigma,
            free.adc_offset_fs, free.ir_drop, free.read_asymmetry) == (None, None, 0.0, 0.0,
                                                                       0.0, "none", 1.0)
    # adc_bits=None alone is "unquantized", not "ideal": the analog noise stays
    assert cfg.with_(adc_bits=None).adc_noise_sigma() > 0


# -- 6. cell I–V ---------------------------------------------------------------------------------
def _asym_tile(encoding: str, polarity: str, a: float, **kw) -> Tile:
    cfg = load_tile_config("hermes-core").noise_free().with_(
        encoding=encoding, read_polarity=polarity, read_asymmetry=a, **kw)
    return Tile(cfg, memsim.load_device("pcm-hermes-2dev"), exact=True)


def test_one_phase_with_opposite_read_polarity_adds_the_common_mode_error():
    """HERMES 1-phase: a positive input reads G+ at V− and G− at V+ (LG24 Fig. 1c); with
    |I(V+)| = a·|I(V−)| the column gives ((1+a)/2)·x·W + ((1−a)/2)·|x|·(G+ + G−)."""
    rng = np.random.default_rng(8)
    w = rng.standard_normal((40, 12))
    x = rng.uniform(-1, 1, (9, 40))
    a = 0.9
    y = _asym_tile("pwm_1phase", "opposite", a).program(w, rng).matvec(x, 1.0, rng)
    s = np.abs(x).max(1, keepdims=True)
    ws = np.abs(w).max(0)
    wn = w / ws
    expect = (((1 + a) / 2) * (x / s) @ wn + ((1 - a) / 2) * np.abs(x / s) @ np.abs(wn)) * s * ws
    np.testing.assert_allclose(y, expect, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(y - x @ w) > 0.02 * np.linalg.norm(x @ w)


@pytest.mark.parametrize("conversion", ["accumulate", "separate"])
def test_four_phase_cancels_the_polarity_asymmetry(conversion):
    """4-phase reads every device at one polarity (V−, LG24 Fig. 1a): exact whatever a."""
    rng = np.random.default_rng(9)
    w = rng.standard_normal((40, 12))
    x = rng.uniform(-1, 1, (9, 40))
    y = _asym_tile("pwm_4phase", "opposite", 0.8, phase_conversion=conversion).program(
        w, rng).matvec(x, 1.0, rng)
    np.testing.assert_allclose(y, x @ w, rtol=1e-10, atol=1e-10)


def test_same_polarity_reads_scale_negative_inputs():
    rng = np.random.default_rng(10)
    w = rng.standard_normal((30, 5))
    x = rng.uniform(-1, 1, (7, 30))
    a = 0.9
    y = _asym_tile("pwm_1phase", "same", a).program(w, rng).matvec(x, 1.0, rng)
    np.testing.assert_allclose(y, np.where(x < 0, a * x, x) @ w, rtol=1e-10, atol=1e-12)


def test_amplitude_encoding_follows_the_sinh_iv_and_pwm_does_not():
    """Amplitude encoding drives x·V_read: I ∝ sinh(x·V/V0) (normalised at V_read); PWM keeps
    one amplitude, so the curvature cancels (only the polarity asymmetry could remain)."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((30, 5))
    x = rng.uniform(-1, 1, (7, 30))
    kw = dict(iv_model="sinh", iv_v0_v=0.1, read_voltage_v=0.2)
    amp = _asym_tile("amplitude", "same", 1.0, **kw).program(w, rng).matvec(x, 1.0, rng)
    s = np.abs(x).max(1, keepdims=True)
    drive = np.sinh(x / s * 2.0) / math.sinh(2.0) * s
    np.testing.assert_allclose(amp, drive @ w, rtol=1e-10, atol=1e-12)
    pwm = _asym_tile("pwm_1phase", "same", 1.0, **kw).program(w, rng).matvec(x, 1.0, rng)
    np.testing.assert_allclose(pwm, x @ w, rtol=1e-10, atol=1e-12)


def test_four_phase_accumulation_has_four_integrations_of_analog_noise():
    """One conversion integrating four phases: quantization once, analog noise variance
    4 σ_fs² FS² (four integrations)."""
    one = load_tile_config("hermes-core").with_(encoding="pwm_1phase")
    four = one.with_(encoding="pwm_4phase")
    dev = memsim.load_device("pcm-hermes-2dev")
    from memsim.crossbar.engine import TileArray

    s2 = {}
    for cfg in (one, four):
        arr = TileArray(cfg, dev, (8, 4)).program(np.ones((8, 4)), np.random.default_rng(0))
        s2[cfg.encoding] = arr._converter()[1]
    np.testing.assert_allclose(s2["pwm_4phase"], 4 * s2["pwm_1phase"])


def test_cell_model_refuses_a_device_that_does_not_fit():
    with pytest.raises(memsim.ConfigError, match="models 2 devices at once"):
        CellModel(load_tile_config("generic-256"), memsim.load_device("pcm-hermes-2dev"))


def test_four_phase_separate_conversions_are_calibrated_as_they_are_read():
    """4-phase with four separate floor conversions: each phase's code is biased by −½ LSB,
    and the signs (+, −, −, +) of the combination cancel that bias. The per-column affine
    correction must be fitted on the same four conversions it corrects; fitted on one
    conversion it added a +½ LSB bias per column (MVM error 4.7 % instead of 3.6 % on
    hermes-core with only quantization left)."""
    cfg = load_tile_config("hermes-core").with_(
        encoding="pwm_4phase", phase_conversion="separate", dac_bits=None,
        adc_noise_fs=0.0, adc_offset_fs=0.0, adc_gain_sigma=0.0, input_scaling="absmax",
        dtype="float64")
    rng = np.random.default_rng(13)
    w = rng.standard_normal((256, 64))
    w /= np.abs(w).max(0)  # column scales 1: normalised units are real units
    x = rng.uniform(-1, 1, (2000, 256))
    x[:, 0] = 1.0  # abs-max 1 per vector
    lsb = cfg.output_range / 2 ** (cfg.adc_bits - 1)
    err = {}
    for affine in (False, True):
        tile = load_tile(cfg.with_(affine_calibration=affine), device="ideal").program(w, rng)
        err[affine] = (tile.matvec(x, 1.0, rng) - x @ w) / lsb
    # four uniform quantization errors, signed: σ = √(4/12) LSB; the column means over the
    # 2000 vectors have a standard error σ/√2000, the fitted offset one of σ/√256 (its
    # reference MVMs)
    sigma = math.sqrt(4 / 12)
    se = sigma / math.sqrt(len(x))
    se_fit = sigma / math.sqrt(cfg.calibration_vectors)
    assert np.abs(err[False].mean(0)).max() < 5 * se
    assert np.abs(err[True].mean(0)).max() < 5 * (se + se_fit)  # 0.24 LSB; the bug gave 0.5


@pytest.mark.parametrize("make", [lambda: torch.nn.Conv2d(3, 8, 3, padding=1),
                                  lambda: torch.nn.Linear(12, 8)])
def test_calibration_of_an_asymmetric_cell_uses_exact_products(make):
    """memsim.calibrate sets the converter ranges from exact products (float weights),
    whatever the cell's I–V: before, a convolution on a 1-phase cell with read asymmetry
    (G− read at the opposite polarity) raised a TypeError (no G+/G− maps in the
    calibration's device state), which failed the phases study's asymmetric points."""
    torch.manual_seed(0)
    layer = make().eval()
    x = torch.randn(4, 3, 8, 8) if isinstance(layer, torch.nn.Conv2d) else torch.randn(16, 12)
    ranges = {}
    for a in (1.0, 0.9):
        m = memsim.analog(layer, "hermes-core", "pcm-hermes-2dev", read_asymmetry=a)
        memsim.program(m, seed=0)
        ranges[a] = memsim.calibrate(m, x)
        with torch.no_grad():
            assert torch.all(torch.isfinite(m(x)))
    assert ranges[0.9] == ranges[1.0]


def test_mapped_network_calibration_sets_the_per_layer_input_ranges():
    """MappedNetwork.calibrate_adc(x) fits the ADC full scales with the inputs scaled by the
    abs-max of x; with input_scaling = "layer" it must also set that range. Before, the
    forward pass then took the range from its own first batch (with a CalibrationWarning),
    so the converters were calibrated for one input scale and run at another."""
    rng = np.random.default_rng(14)
    g = memsim.Graph((12,), "two")
    g.set_output(g.linear(g.relu(g.linear(g.input, rng.standard_normal((20, 12)))),
                          rng.standard_normal((5, 20))))
    net = memsim.map_network(g, "hermes-core", "pcm-hermes-2dev").program(rng)
    x_cal = rng.uniform(-1, 1, (64, 12))
    net.calibrate_adc(x_cal)
    inputs = {"linear0": x_cal,
              "linear1": np.maximum(x_cal @ dict(g.nodes["linear0"].matrices())["w"], 0.0)}
    for (node, _), arr in net.arrays.items():
        np.testing.assert_allclose(arr.input_range_.numpy().ravel(),
                                   np.abs(inputs[node]).max(), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", memsim.CalibrationWarning)
        y = net.forward(rng.uniform(-2, 2, (8, 12)), 1.0, rng)  # larger inputs: clipped
    assert np.all(np.isfinite(y))
