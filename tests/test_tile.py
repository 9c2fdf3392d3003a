"""The tile engine: ideal limits, converters, noise statistics, saturation, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memsim
from memsim.crossbar import TileConfig, load_tile
from memsim.timegrid import YEAR
from tests import naive

Z = 5.0
IDEAL = dict(dac_bits=None, adc_bits=None, dtype="float64", affine_calibration=False,
             drift_compensation="none")


def ideal_tile(**kw) -> memsim.crossbar.Tile:
    device = kw.pop("device", "ideal")
    cfg = TileConfig(name="t", rows=kw.pop("rows", 64), cols=kw.pop("cols", 64), **IDEAL)
    return load_tile(cfg.with_(**kw), device=device)


# -- ideal limit = exact arithmetic -----------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    r=st.integers(1, 24), c=st.integers(1, 24), batch=st.integers(1, 6),
    w_scale=st.floats(1e-3, 1e3), x_scale=st.floats(1e-3, 1e3),
    encoding=st.sampled_from(["pwm_1phase", "pwm_4phase", "amplitude"]),
    weight_scaling=st.sampled_from(["per_column", "per_tile"]),
    cell=st.sampled_from([(1, 1.0), (2, 1.0), (2, 3.0)]),
    seed=st.integers(0, 2**31 - 1),
)
def test_ideal_tile_equals_matmul(r, c, batch, w_scale, x_scale, encoding, weight_scaling,
                                  cell, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((r, c)) * w_scale
    w[rng.random((r, c)) < 0.2] *= -3.0  # mixed signs and magnitudes
    x = rng.standard_normal((batch, r)) * x_scale
    tile = load_tile(TileConfig(name="t", rows=32, cols=32, encoding=encoding,
                                weight_scaling=weight_scaling, devices_per_polarity=cell[0],
                                significance=cell[1], **IDEAL), device="ideal")
    tile.program(w, rng)
    y = tile.matvec(x, 3600.0, rng)
    np.testing.assert_allclose(y, x @ w, rtol=1e-10, atol=1e-10 * np.abs(x).max()
                               * np.abs(w).max() * r)


def test_ideal_tile_float32_within_float_tolerance():
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((256, 256)), rng.standard_normal((64, 256))
    tile = ideal_tile(rows=256, cols=256, dtype="float32").program(w, rng)
    y = tile.matvec(x, 1.0, rng)
    assert np.linalg.norm(y - x @ w) / np.linalg.norm(x @ w) < 1e-6


def test_ideal_rram_like_offset_cancels(tmp_path):
    """g_min > 0 (RRAM-like): the differential pair cancels the offset exactly."""
    card = tmp_path / "ideal-offset.toml"
    text = open(memsim.cards.find_card("ideal", "devices")).read()
    card.write_text(text.replace('g_min = { value = 0.0', 'g_min = { value = 5.0'))
    rng = np.random.default_rng(1)
    w, x = rng.standard_normal((20, 10)), rng.standard_normal((5, 20))
    tile = ideal_tile(device=memsim.load_device(card), encoding="pwm_4phase").program(w, rng)
    np.testing.assert_allclose(tile.matvec(x, 0.0, rng), x @ w, rtol=1e-10, atol=1e-10)


def test_fixed_input_range_ideal():
    rng = np.random.default_rng(2)
    w, x = rng.standard_normal((16, 8)), rng.uniform(-3, 3, (10, 16))
    tile = ideal_tile(input_scaling="fixed", input_range=3.0).program(w, rng)
    np.testing.assert_allclose(tile.matvec(x, 1.0, rng), x @ w, rtol=1e-10, atol=1e-10)
    assert tile.saturation_.inputs_clipped == 0
    tile.matvec(x * 2, 1.0, rng)
    assert tile.saturation_.inputs_clipped == int(np.count_nonzero(np.abs(2 * x) > 3.0))


# -- converters ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [4, 6, 8])
def test_adc_round_error_within_half_lsb(bits):
    rng = np.random.default_rng(3)
    w, x = rng.uniform(-1, 1, (64, 32)), rng.uniform(-1, 1, (200, 64))
    out_range = 40.0
    tile = ideal_tile(adc_bits=bits, output_range=out_range, weight_scaling="per_tile",
                      input_scaling="fixed", input_range=1.0).program(w, rng)
    y = tile.matvec(x, 1.0, rng)
    scale = tile.weight_scale_[0]
    lsb = out_range / 2 ** (bits - 1)
    err = (y - x @ w) / scale  # normalised output units
    assert np.max(np.abs(err)) <= lsb / 2 * (1 + 1e-9)
    assert tile.saturation_.saturated == 0


@pytest.mark.parametrize("bits", [4, 8])
def test_dac_error_within_half_lsb(bits):
    rng = np.random.default_rng(4)
    w, x = rng.uniform(-1, 1, (64, 16)), rng.uniform(-1, 1, (100, 64))
    tile = ideal_tile(dac_bits=bits, weight_scaling="per_tile", input_scaling="fixed",
                      input_range=1.0).program(w, rng)
    y = tile.matvec(x, 1.0, rng)
    n = 2 ** (bits - 1) - 1
    bound = np.abs(w).sum(0) / (2 * n)  # each input off by at most half a step
    assert np.all(np.abs(y - x @ w) <= bound * (1 + 1e-9))


def test_cco_floor_versus_round():
    """Floor counting errs in [−1, 0) LSB with mean −½ LSB; rounding in [−½, ½] with mean 0."""
    rng = np.random.default_rng(5)
    w, x = rng.uniform(-1, 1, (64, 64)), rng.uniform(-1, 1, (500, 64))
    out_range, bits = 40.0, 6
    lsb = out_range / 2 ** (bits - 1)
    errs = {}
    for mode in ("floor", "round"):
        tile = ideal_tile(adc_bits=bits, adc_mode=mode, output_range=out_range,
                          weight_scaling="per_tile", input_scaling="fixed").program(w, rng)
        errs[mode] = ((tile.matvec(x, 1.0, rng) - x @ w) / tile.weight_scale_[0]).ravel() / lsb
    f, r = errs["floor"], errs["round"]
    assert f.min() >= -1 - 1e-9 and f.max() < 1e-9
    assert r.min() >= -0.5 - 1e-9 and r.max() <= 0.5 + 1e-9
    n = f.size  # the error is ~uniform: σ = 1/√12 LSB
    assert abs(f.mean() + 0.5) < Z / math.sqrt(12 * n)
    assert abs(r.mean()) < Z / math.sqrt(12 * n)


def test_affine_calibration_removes_floor_bias_and_mismatch():
    rng = np.random.default_rng(6)
    w, x = rng.uniform(-1, 1, (64, 64)), rng.uniform(-1, 1, (400, 64))
    kw = dict(adc_bits=8, adc_mode="floor", output_range=40.0, adc_gain_sigma=0.05,
              adc_offset_fs=3.0 / 40.0, weight_scaling="per_tile", input_scaling="fixed")
    raw = ideal_tile(**kw).program(w, np.random.default_rng(7))
    cal = ideal_tile(**kw, affine_calibration=True).program(w, np.random.default_rng(7))
    e_raw = np.linalg.norm(raw.matvec(x, 1.0, rng) - x @ w)
    e_cal = np.linalg.norm(cal.matvec(x, 1.0, rng) - x @ w)
    assert e_cal < e_raw / 5


def test_four_phase_accumulating_equals_one_phase_for_a_symmetric_cell():
    """One accumulated conversion of the four phases: for a linear symmetric cell and
    noise-free converters the 4-phase result equals the 1-phase one, quantization included;
    four separate conversions quantize four times and differ."""
    rng = np.random.default_rng(8)
    w, x = rng.standard_normal((48, 24)), rng.standard_normal((30, 48))
    ys = {}
    for enc, conv in (("pwm_1phase", "accumulate"), ("pwm_4phase", "accumulate"),
                      ("pwm_4phase", "separate")):
        ys[enc, conv] = ideal_tile(encoding=enc, phase_conversion=conv, adc_bits=5,
                                   adc_mode="floor").program(
            w, np.random.default_rng(9)).matvec(x, 1.0, np.random.default_rng(1))
    np.testing.assert_array_equal(ys["pwm_1phase", "accumulate"], ys["pwm_4phase", "accumulate"])
    assert not np.allclose(ys["pwm_1phase", "accumulate"], ys["pwm_4phase", "separate"])
    exact = {enc: ideal_tile(encoding=enc, phase_conversion="separate").program(
        w, np.random.default_rng(9)).matvec(x, 1.0, rng) for enc in ("pwm_1phase", "pwm_4phase")}
    np.testing.assert_allclose(exact["pwm_1phase"], exact["pwm_4phase"], rtol=1e-10, atol=1e-10)


# -- the fast path against the slow reference ---------------------------------------------------
@pytest.mark.parametrize("encoding, conversion", [("pwm_1phase", "accumulate"),
                                                  ("pwm_4phase", "accumulate"),
                                                  ("pwm_4phase", "separate")])
@pytest.mark.parametrize("mode", ["floor", "round"])
@pytest.mark.parametrize("comp", ["none", "global", "per_column"])
def test_tile_matches_slow_reference(encoding, conversion, mode, comp):
    """Noise-free PCM (drift only), quantized converters with mismatch, calibration, comp."""
    dev = memsim.load_device("pcm-hermes-1dev").with_noise(programming=1.0, drift_spread=1.0,
                                                              read=0.0)
    cfg = TileConfig(name="t", rows=12, cols=7, dac_bits=6, adc_bits=7, adc_mode=mode,
                     output_range=6.0, adc_gain_sigma=0.03, adc_offset_fs=0.7 / 6.0,
                     encoding=encoding, phase_conversion=conversion, affine_calibration=True,
                     drift_compensation=comp, calibration_time_s=20.0, dtype="float64")
    tile = load_tile(cfg, device=dev)
    rng = np.random.default_rng(10)
    w = rng.standard_normal((12, 7))
    tile.program(w, rng)
    x = rng.standard_normal((9, 12))
    t = 86400.0
    y = tile.matvec(x, t, np.random.default_rng(11))
    arr = tile.array_
    gp, gn, _, _ = arr.cell.read(arr.states_, t, np.random.default_rng(0))  # no read noise
    a, b = tile.affine_
    if comp == "none":
        alpha = 1.0
    else:
        now = gp.sum(0) + gn.sum(0)
        ref = tile.reference_readout_
        alpha = float(ref.sum() / now.sum()) if comp == "global" else list(ref / now)
    for k in range(x.shape[0]):
        expect = naive.tile_matvec_reference(
            list(x[k]), gp.tolist(), gn.tolist(), dac_bits=6, adc_bits=7,
            adc_mode=mode, output_range=6.0, gain=list(tile.adc_gain_),
            offset=list(tile.adc_offset_), four_phase=conversion == "separate",
            affine_a=list(a), affine_b=list(b), alpha=alpha,
            weight_scale=list(tile.weight_scale_))
        np.testing.assert_allclose(y[k], expect, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numba_and_torch_adc_stages_agree_on_the_same_normals(dtype):
    """The CPU kernel and the torch formula (CUDA's back-end) are one physics: same normals
    in, same outputs and saturation counts out (matrix products and convolutions). For a
    float32 tile the read-noise variances are bfloat16 (where native), which the kernel
    reads as bit patterns and torch by promotion."""
    import torch

    from memsim.crossbar import engine as E

    rng = np.random.default_rng(30)
    tile = load_tile("hermes-core", device="pcm-hermes-2dev", dtype=dtype, adc_bits=4,
                     input_scaling="absmax", output_range=4.0).program(
        rng.standard_normal((60, 40)), rng)
    arr = tile.array_
    assert arr.geom.K == 1
    st = arr.state_at(3600.0, rng)
    x = torch.from_numpy(rng.uniform(-1, 1, (50, 60)))
    xq, x2, s, _ = arr._dac_linear(x, True)
    y, var = arr._products_linear(xq, x2, st)
    if dtype == "float32" and E._native_bf16(torch.device("cpu")):
        assert x2.dtype == var.dtype == torch.bfloat16
    z = torch.from_numpy(rng.standard_normal(y.shape)).to(y.dtype)
    outs = []
    for backend in ("numba", "torch"):
        out = torch.empty((50, 40), dtype=torch.float64)
        sat, _ = arr._adc([y], [var], arr._linear_layout(50), s, st, rng, out, zs=[z],
                          backend=backend)
        outs.append((out, sat))
    tol = 1e-12 if dtype == "float64" else 1e-5
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=tol, atol=tol)
    np.testing.assert_array_equal(outs[0][1], outs[1][1])  # saturation counts
    assert outs[0][1].sum() > 0  # the comparison covers clipping too


def test_numba_dac_kernels_equal_the_torch_dac():
    import torch

    from memsim.crossbar.engine import TileArray

    rng = np.random.default_rng(31)
    cfg = load_tile("hermes-core", device="pcm-hermes-2dev", dtype="float64", rows=64,
                    input_scaling="absmax").config
    arr = TileArray(cfg, memsim.load_device("pcm-hermes-2dev"), (150, 8)).program(
        rng.standard_normal((150, 8)), rng)
    assert arr.geom.K == 3
    x = torch.from_numpy(rng.standard_normal((7, 150)))
    x[2] = 0.0
    xq, x2, _, _ = arr._dac_linear(x, True)
    xt = arr._to_tiles(x)
    ref = arr.dac(xt, xt.abs().amax(dim=3, keepdim=True)).permute(1, 2, 0, 3).reshape(
        arr.geom.K, 7, arr.geom.rpt)
    torch.testing.assert_close(xq, ref, rtol=0, atol=1e-15)
    torch.testing.assert_close(x2, ref * ref, rtol=0, atol=1e-15)


def test_kernels_use_torchs_thread_count():
    """torch.set_num_threads governs memsim's numba kernels too (a 1-thread figure is one
    thread), and small work runs on the calling thread."""
    import numba
    import torch

    from memsim.crossbar import _kernels as K

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert K.call(numba.get_num_threads, K.PARALLEL_MIN) == 1
        torch.set_num_threads(2)
        assert K.call(numba.get_num_threads, K.PARALLEL_MIN) == min(
            2, numba.config.NUMBA_NUM_THREADS)
        assert K.call(numba.get_num_threads, K.PARALLEL_MIN - 1) == 1
    finally:
        torch.set_num_threads(old)


def test_kernels_leave_the_users_torch_thread_count():
    """numba's OpenMP layer and torch share the runtime's thread-count setting: the first
    kernel launch of a process set torch's count back to numba's (1 → 2 here). A fresh
    process, as a user's script is."""
    import subprocess
    import sys

    code = ("import warnings, torch, memsim\n"
            "warnings.simplefilter('ignore')\n"
            "torch.set_num_threads(1)\n"
            "a = memsim.analog(torch.nn.Linear(300, 20), 'hermes-core', 'pcm-hermes-2dev')\n"
            "memsim.program(a, seed=0)\n"
            "a(torch.ones(3000, 300))\n"
            "print(torch.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-1] == "1"


@pytest.mark.parametrize("channels_last", [True, False])
def test_conv_dac_writes_the_squares_rounded_as_torch_rounds_to_bfloat16(channels_last):
    """The convolution DAC writes x² for the variance convolution as bfloat16 bit patterns
    itself (no conversion pass): they equal torch's float32 → bfloat16 conversion of the
    squared quantized inputs, bit for bit, ties included (unquantized inputs hit them)."""
    import torch

    from memsim.crossbar import engine as E
    from memsim.crossbar.engine import TileArray

    if not E._native_bf16(torch.device("cpu")):
        pytest.skip("no native bfloat16 on this CPU: the squares stay in float32")
    rng = np.random.default_rng(5)
    cfg = load_tile("hermes-core", device="pcm-hermes-2dev", rows=9 * 5,
                    input_scaling="layer", dac_bits=None).config
    arr = TileArray(cfg, memsim.load_device("pcm-hermes-2dev"), (9 * 12, 4)).program(
        rng.standard_normal((9 * 12, 4)), rng)
    assert arr.geom.K == 3 and arr.var_dtype == torch.bfloat16
    x = torch.from_numpy(rng.uniform(-2, 2, (3, 12, 5, 6)).astype(np.float32))
    # inputs whose squares (range 2) are exact float32 ties of bfloat16 rounding:
    # (1.0625 / 2)² = 2^-2 (1 + 2^-3 + 2^-8), (1.1875 / 2)² = 2^-2 (1 + 2^-2 + 2^-5 + 2^-8)
    x[0, 0, 0, :2] = torch.tensor([1.0625, -1.1875])
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    s = torch.full((1, 3), 2.0, dtype=torch.float64)
    xqs, x2s, _ = arr._conv_dac(x, s, 12, 9, True)
    assert all(t.dtype == torch.bfloat16 for t in x2s)
    sq = xqs[0][0, 0, 0, :2] ** 2
    assert torch.equal(sq.view(torch.int32) & 0xFFFF, torch.tensor([0x8000, 0x8000],
                                                                   dtype=torch.int32))
    for xq, x2 in zip(xqs, x2s, strict=True):
        ref = (xq * xq).to(torch.bfloat16)
        assert torch.equal(x2.view(torch.int16), ref.view(torch.int16))


# -- noise statistics ----------------------------------------------------------------------------
def test_per_mvm_read_noise_variance_matches_analytic():
    """Output variance across repeated MVMs of one vector = Σ_i x_i² σ_ij² (+ ADC noise²)."""
    dev = memsim.load_device("pcm-hermes-2dev").with_noise(programming=0.0, drift_spread=0.0)
    adc_noise = 0.05
    cfg = TileConfig(name="t", rows=32, cols=6, dac_bits=None, adc_bits=None,
                     adc_noise_fs=adc_noise / 16.0, dtype="float64", weight_scaling="per_tile",
                     input_scaling="fixed", devices_per_polarity=2)
    tile = load_tile(cfg, device=dev)
    rng = np.random.default_rng(12)
    w = rng.uniform(-1, 1, (32, 6))
    w[0, 0] = 1.0
    tile.program(w, rng)
    x1 = rng.uniform(-1, 1, 32)
    n = 20000
    y = tile.matvec(np.tile(x1, (n, 1)), 600.0, rng) / tile.weight_scale_
    # analytic: per-device fast-band σ from the device model, summed over the column
    sd = [dev.read_noise_std(s.expand(), 600.0, window_s=cfg.noise_window_s)
          for s in tile.states_]
    var_dev = sum(s[0] ** 2 + s[1] ** 2 for s in sd) / tile.array_.cell.g_unit_S**2  # (32, 6)
    expect = (x1**2) @ var_dev + adc_noise**2
    got = y.var(axis=0, ddof=1)
    tol = Z * expect * math.sqrt(2 / (n - 1))
    assert np.all(np.abs(got - expect) < tol), (got, expect)


def test_per_mvm_noise_shortcut_equals_device_level_draws_in_distribution():
    """The (x²)·(σ²) shortcut has the distribution of drawing every device's noise per MVM."""
    dev = memsim.load_device("pcm-generic").with_noise(programming=0.0, drift_spread=0.0)
    cfg = TileConfig(name="t", rows=8, cols=3, dac_bits=None, adc_bits=None, dtype="float64",
                     weight_scaling="per_tile", input_scaling="fixed")
    tile = load_tile(cfg, device=dev)
    rng = np.random.default_rng(13)
    w = rng.uniform(-1, 1, (8, 3))
    tile.program(w, rng)
    x1 = rng.uniform(-1, 1, 8)
    n = 20000
    fast = tile.matvec(np.tile(x1, (n, 1)), 100.0, rng) / tile.weight_scale_
    # slow: draw each device's per-read noise explicitly for every MVM
    s = dev.read_noise_std(tile.states_[0].expand(), 100.0,
                           window_s=cfg.noise_window_s) / tile.array_.cell.g_unit_S
    s = s.reshape(2, 8, 3)  # (polarity, rows, cols) of the single tile
    noise = rng.standard_normal((n, 2, 8, 3)) * s
    slow_noise = np.einsum("i,nij->nj", x1, noise[:, 0] - noise[:, 1])
    from scipy import stats

    for j in range(3):
        res = stats.ks_2samp(fast[:, j] - fast[:, j].mean(), slow_noise[:, j])
        assert res.pvalue > 1e-4


# -- saturation ---------------------------------------------------------------------------------
def test_saturation_counts_on_constructed_inputs():
    """Column j sums to j+1 for an all-ones input; the ADC range 4.5 saturates columns >= 4."""
    rows, cols = 8, 8
    w = np.zeros((rows, cols))
    for j in range(cols):
        w[: j + 1, j] = 1.0  # column j: j+1 ones
    tile = ideal_tile(rows=rows, cols=cols, adc_bits=6, output_range=4.5,
                      weight_scaling="per_tile", input_scaling="fixed")
    tile.program(w, np.random.default_rng(0))
    x = np.ones((10, rows))
    x[5:] = 0.25  # these samples stay in range
    y = tile.matvec(x, 1.0, np.random.default_rng(0))
    sat = tile.saturation_
    assert sat.conversions == 10 * cols
    assert sat.saturated == 5 * 4  # columns 4..7 of the first five samples
    assert sat.samples_saturated == 5
    np.testing.assert_allclose(y[5:], x[5:] @ w, atol=4.5 / 32)
    assert np.all(y[:5, 4:] < x[:5] @ w[:, 4:])  # clipped, and reported
    # clip-aware scaling (abs-max, so every sample here reaches full scale and saturates
    # at first) re-scales and retries: nothing stays saturated
    retry = ideal_tile(rows=rows, cols=cols, adc_bits=6, output_range=4.5,
                       weight_scaling="per_tile", input_scaling="clip_retry")
    retry.program(w, np.random.default_rng(0))
    y2 = retry.matvec(x, 1.0, np.random.default_rng(0))
    assert retry.saturation_.samples_retried == 10
    assert retry.saturation_.samples_saturated == 0
    np.testing.assert_allclose(y2, x @ w, atol=2 * 4.5 / 32)


# -- drift and programming time -------------------------------------------------------------------
def test_drift_compensation_reduces_error():
    rng = np.random.default_rng(14)
    w, x = rng.standard_normal((128, 64)), rng.uniform(-1, 1, (128, 128))
    errs = {}
    for comp in ("none", "global", "per_column"):
        tile = load_tile("hermes-core", device="pcm-hermes-2dev", drift_compensation=comp)
        tile.program(w, np.random.default_rng(15))
        y = tile.matvec(x, YEAR, np.random.default_rng(16))
        errs[comp] = np.linalg.norm(y - x @ w) / np.linalg.norm(x @ w)
    assert errs["global"] < 0.75 * errs["none"]
    assert errs["per_column"] < 0.75 * errs["none"]


def test_drift_counts_from_the_tiles_programming_time():
    dev = memsim.load_device("pcm-generic").with_noise(programming=0, drift_spread=0, read=0)
    rng = np.random.default_rng(17)
    w, x = rng.uniform(-1, 1, (16, 4)), rng.uniform(-1, 1, (3, 16))
    cfg = TileConfig(name="t", rows=16, cols=4, **IDEAL)
    early = load_tile(cfg, device=dev).program(w, rng, at_s=0.0)
    late = load_tile(cfg, device=dev).program(w, rng, at_s=1000.0)
    np.testing.assert_allclose(late.matvec(x, 1000.0, rng), x @ w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(late.matvec(x, 1000.0 + 50.0, rng), early.matvec(x, 50.0, rng),
                               rtol=1e-12)
    with pytest.raises(ValueError, match=r"t = 10 s is before the tile was programmed"):
        late.matvec(x, 10.0, rng)


def test_two_devices_per_polarity_average_programming_noise():
    """Two independent devices per polarity: weight error σ drops by √2 (statistical)."""
    dev = memsim.load_device("pcm-hermes-1dev").with_noise(read=0.0, drift_spread=0.0)
    rng = np.random.default_rng(18)
    w = np.full((256, 64), 0.5)
    errs = {}
    for n in (1, 2):
        cfg = TileConfig(name="t", rows=256, cols=64, devices_per_polarity=n, **IDEAL)
        tile = load_tile(cfg, device=dev).program(w, rng)
        gp, gn, _, _ = tile.array_.cell.read(tile.states_, 0.0, rng)
        errs[n] = (gp - gn - 0.5).ravel()
    ratio = errs[2].std() / errs[1].std()
    m = errs[1].size
    assert abs(ratio - 1 / math.sqrt(2)) < Z * math.sqrt(2 / m)


def test_significance_corrects_both_signs_so_the_error_falls_with_f():
    """Two devices per polarity with significance F (program-and-correct): the second pair
    programs the signed residual, so the weight error falls as F grows. Issue figures for
    pcm-generic: 0.0088 / 0.0061 / 0.0053 rms for F = 2 / 4 / 8 (one-sided correction gave
    0.0161 / 0.0186 / 0.0212)."""
    from memsim.crossbar.cell import CellModel

    dev = memsim.load_device("pcm-generic")
    w = np.random.default_rng(19).uniform(-1, 1, (256, 256))
    errs = {}
    for f in (1.0, 2.0, 4.0, 8.0):
        cell = CellModel(TileConfig(devices_per_polarity=2, significance=f), dev)
        states = cell.program(w, np.random.default_rng(20))
        errs[f] = float(np.sqrt(np.mean((cell.effective_weights(states) - w) ** 2)))
    assert errs[1.0] > errs[2.0] > errs[4.0] > errs[8.0]
    for f, expect in ((2.0, 0.0088), (4.0, 0.0061), (8.0, 0.0053)):
        assert errs[f] == pytest.approx(expect, rel=0.05)


# -- bad input ------------------------------------------------------------------------------------
def test_bad_weights_and_inputs():
    tile = ideal_tile(rows=8, cols=4)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"weights contain 1 NaN"):
        tile.program(np.array([[1.0, np.nan], [0, 1]]), rng)
    with pytest.raises(ValueError, match=r"a 9x4 matrix does not fit a 8x4 crossbar"):
        tile.program(np.ones((9, 4)), rng)
    with pytest.raises(ValueError, match=r"must be a 2-D matrix"):
        tile.program(np.ones(8), rng)
    with pytest.raises(RuntimeError, match=r"not programmed"):
        tile.matvec(np.ones((1, 8)), 1.0, rng)
    tile.program(np.ones((8, 4)), rng)
    with pytest.raises(ValueError, match=r"does not match the 8 programmed rows"):
        tile.matvec(np.ones((2, 7)), 1.0, rng)
    with pytest.raises(ValueError, match=r"input contains 8 NaN or infinite"):
        tile.matvec(np.full((1, 8), np.nan), 1.0, rng)
    with pytest.raises(ValueError, match=r"t = -1"):
        tile.matvec(np.ones((1, 8)), -1.0, rng)


@pytest.mark.parametrize("change, message", [
    (dict(adc_bits=0), r"adc_bits = 0 is out of range"),
    (dict(dac_bits=-3), r"dac_bits = -3 is out of range"),
    (dict(output_range=0.0), r"output_range = 0.0 is out of range"),
    (dict(input_range=-1.0), r"input_range = -1.0 is out of range"),
    (dict(rows=0), r"rows = 0 is out of range"),
    (dict(adc_mode="ceil"), r"adc_mode = 'ceil' is out of range; allowed one of"),
    (dict(ir_drop="approx", wire_resistance_ohm=0.0), r"needs wire_resistance_ohm > 0"),
    (dict(devices_per_polarity=3), r"devices_per_polarity = 3"),
    (dict(bogus=1), r"unknown tile parameters \['bogus'\]"),
])
def test_bad_tile_config(change, message):
    with pytest.raises(ValueError, match=message):
        TileConfig(name="t").with_(**change)


def test_device_pair_mismatch():
    with pytest.raises(ValueError, match=r"1 device\(s\) per polarity but device "
                                         r"'pcm-hermes-2dev' models 2"):
        load_tile("generic-256", device="pcm-hermes-2dev")


def test_bad_tile_card(tmp_path):
    text = open(memsim.cards.find_card("generic-256", "crossbars")).read()
    p = tmp_path / "bad.toml"
    p.write_text(text.replace('bits = { value = 8, unit = "1", source = "memsim convention" }\n'
                              'mode', 'bits = { value = 0, unit = "1", source = "x" }\nmode', 1))
    with pytest.raises(ValueError, match=r"tile card 'bad': adc\.bits = 0 is out of range"):
        load_tile(p)
    p.write_text(text.replace("[adc]", "[adc]\nresolution = 3"))
    with pytest.raises(ValueError, match=r"\[adc\] has unknown fields \['resolution'\]"):
        load_tile(p)
    with pytest.raises(ValueError, match=r"unknown crossbars card 'hermes-cor'"):
        load_tile("hermes-cor")


# -- IR drop through the tile ---------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["pwm_1phase", "pwm_4phase"])
def test_ir_drop_approx_close_to_exact_in_the_tile(encoding):
    rng = np.random.default_rng(20)
    w = rng.uniform(-1, 1, (48, 24))
    x = rng.uniform(0, 1, (16, 48))
    ys = {}
    for mode in ("none", "approx", "exact"):
        tile = ideal_tile(rows=48, cols=24, ir_drop=mode, wire_resistance_ohm=20.0,
                          weight_scaling="per_tile", input_scaling="fixed", encoding=encoding)
        tile.program(w, np.random.default_rng(21))
        ys[mode] = tile.matvec(x, 1.0, np.random.default_rng(22))
    exact = ys["exact"]
    err_none = np.linalg.norm(ys["none"] - exact) / np.linalg.norm(exact)
    err_approx = np.linalg.norm(ys["approx"] - exact) / np.linalg.norm(exact)
    assert err_none > 0.01  # the wires matter at this resistance
    assert err_approx < 0.25 * err_none


def test_ir_drop_vanishes_with_vanishing_wire_resistance():
    rng = np.random.default_rng(23)
    w, x = rng.uniform(-1, 1, (16, 8)), rng.uniform(-1, 1, (4, 16))
    for mode in ("approx", "exact"):
        tile = ideal_tile(rows=16, cols=8, ir_drop=mode, wire_resistance_ohm=1e-9)
        y = tile.program(w, rng).matvec(x, 1.0, rng)
        np.testing.assert_allclose(y, x @ w, rtol=1e-6, atol=1e-6)


def test_cached_read_parts_have_the_device_read_distribution():
    """The engine's (mean, slow σ) path draws what device.read(window_s=w) draws."""
    dev = memsim.load_device("pcm-hermes-1dev").with_noise(programming=0.0, drift_spread=0.0)
    cfg = TileConfig(name="t", rows=256, cols=128, **IDEAL)
    tile = load_tile(cfg, device=dev).program(np.full((256, 128), 0.6), np.random.default_rng(0))
    t, w = 3600.0, cfg.noise_window_s
    arr = tile.array_
    assert dev.mvm_read_parts(arr.states_[0].expand(), t, window_s=w) is not None
    g_tile = arr.state_at(t, np.random.default_rng(1)).w.numpy().ravel()
    g_dev = dev.read(arr.states_[0].expand(), t, np.random.default_rng(2), window_s=w)[0]
    g_dev = g_dev.ravel() / arr.cell.g_unit_S
    n = g_tile.size
    sd = g_dev.std()
    assert abs(g_tile.mean() - g_dev.mean()) < Z * sd * math.sqrt(2 / n)
    assert abs(g_tile.std() - sd) < Z * sd * math.sqrt(2 / (2 * (n - 1)))
    # a model without the split (relaxation) reads through the device directly
    rram = load_tile(cfg, device="rram-cmo").program(np.full((256, 128), 0.6),
                                                      np.random.default_rng(0))
    assert np.isfinite(rram.array_.state_at(t, np.random.default_rng(3)).w.numpy()).all()


def test_converter_noise_has_one_physical_unit_whatever_the_bits():
    """Analog noise is a fraction of the full scale (kept when the bits change); quantizer
    noise is in LSB (scales with the LSB); an unquantized ADC keeps the analog part."""
    cfg = memsim.crossbar.load_tile_config("hermes-core")
    fs = cfg.output_range
    assert cfg.adc_noise_sigma() == pytest.approx(cfg.adc_noise_fs * fs)
    for bits in (4, 6, None):
        other = cfg.with_(adc_bits=bits)
        assert other.adc_noise_sigma() == pytest.approx(cfg.adc_noise_fs * fs)
    lsb_noise = cfg.with_(adc_noise_fs=0.0, adc_noise_lsb=0.5)
    for bits in (4, 8):
        c = lsb_noise.with_(adc_bits=bits)
        assert c.adc_noise_sigma() == pytest.approx(0.5 * fs / 2 ** (bits - 1))
    assert lsb_noise.with_(adc_bits=None).adc_noise_sigma() == 0.0
    assert "of full scale" in cfg.assumptions()


@pytest.mark.parametrize("bits", [8, 10, None])
def test_measured_converter_noise_follows_its_units(bits):
    """Zero weights and inputs at full scale: the output spread is the converter noise in
    normalised units, σ_fs·FS, the same at 8 and 10 bits and unquantized (plus the LSB²/12
    of rounding, whose error the noise dithers); tolerance 5 σ of the sample standard
    deviation, +2 % for the dither approximation."""
    rng = np.random.default_rng(31)
    fs, sigma_fs = 24.0, 0.02
    tile = ideal_tile(rows=16, cols=64, adc_bits=bits, output_range=fs, adc_noise_fs=sigma_fs,
                      weight_scaling="per_tile", input_scaling="fixed", adc_mode="round")
    w = np.zeros((16, 64))
    w[0, 0] = 1.0  # a nonzero weight sets the weight scale to 1
    tile.program(w, rng)
    y = tile.matvec(np.ones((4000, 16)), 1.0, rng)[:, 1:]
    lsb = 0.0 if bits is None else fs / 2 ** (bits - 1)
    expect = math.sqrt((sigma_fs * fs) ** 2 + lsb**2 / 12)  # plus rounding's uniform error
    n = y.size
    assert abs(y.std() - expect) < Z * expect / math.sqrt(2 * n) + 0.02 * expect


@pytest.mark.parametrize("cols", [256, 7, 1])
def test_adc_kernel_noise_is_standard_normal_for_even_and_odd_columns(cols):
    """The fused kernel's noise alone (y = 0, unit variance, unquantized): N(0, 1) in every
    column, including an odd last column, uncorrelated between the two halves of a pair."""
    from memsim.crossbar import _kernels as K

    rows = 400_000 // cols
    y = np.zeros(rows * cols, dtype=np.float32)
    var = np.full(rows * cols, 0.75, dtype=np.float32)  # + σ² = 0.25 of the converter
    one = np.ones(cols)
    out = np.empty(rows * cols, dtype=np.float32)
    sat = np.zeros(rows, dtype=np.int64)
    bad = np.zeros(rows, dtype=np.int64)
    K.adc_stage(y, var, True, False, 0, cols, 0, 0, 1, rows, 1, 1, cols, 0, 1, np.uint64(11), True,
                False, np.zeros(0, np.float32), one, one, np.zeros(cols), one, np.zeros(cols),
                np.ones(1), np.full(1, 0.25), 0, False, np.ones(1), 0, out, cols, 0, 0, 1,
                False, False, True, sat, bad)
    assert not sat.any() and not bad.any()
    out = out.reshape(rows, cols).astype(np.float64)
    z = out.ravel()
    n = z.size
    assert abs(z.mean()) < Z / math.sqrt(n)
    assert abs(z.var() - 1) < Z * math.sqrt(2 / n)
    from scipy import stats

    assert stats.kstest(z, "norm").pvalue > 1e-4
    last = out[:, -1]  # the odd column, or the sin half of the last pair
    assert abs(last.var() - 1) < Z * math.sqrt(2 / rows)
    h = cols // 2
    if h:
        a, b = out[:, :h].ravel(), out[:, h:2 * h].ravel()
        assert abs(np.mean(a * b)) < Z / math.sqrt(a.size)
        assert abs(np.mean(a * a * b * b) - 1) < Z * math.sqrt(8 / a.size)


def test_slow_read_noise_is_a_state_at_each_time():
    """Reads at one time share the slow 1/f noise; a new time or redraw=True draws anew."""
    dev = memsim.load_device("pcm-hermes-1dev").with_noise(programming=0.0, drift_spread=0.0)
    cfg = TileConfig(name="t", rows=32, cols=8, **IDEAL)
    tile = load_tile(cfg, device=dev).program(np.full((32, 8), 0.5), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = np.ones((1, 32))
    t = 3600.0
    arr = tile.array_
    g1 = arr.state_at(t, rng).w.clone()
    np.testing.assert_array_equal(arr.state_at(t, rng).w, g1)  # the same state at t
    assert not np.array_equal(arr.state_at(t, rng, redraw=True).w, g1)
    g2 = arr.state_at(t, rng).w.clone()  # the redrawn state is the one kept
    assert not np.array_equal(arr.state_at(2 * t, rng).w, g2)
    np.testing.assert_array_equal(arr.state_at(t, rng).w, g2)
    # through matvec: a window shorter than the read time makes all 1/f noise slow, and the
    # converters are ideal, so equal states give equal outputs
    slow = TileConfig(name="t", rows=32, cols=8, noise_window_s=1e-9, **IDEAL)
    tile = load_tile(slow, device=dev).program(np.full((32, 8), 0.5), np.random.default_rng(0))
    assert tile.array_.state_at(t, rng).var is None  # no per-MVM noise left
    y1 = tile.matvec(x, t, rng)
    np.testing.assert_array_equal(tile.matvec(x, t, rng), y1)
    assert not np.array_equal(tile.matvec(x, t, rng, redraw=True), y1)
