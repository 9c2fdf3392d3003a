"""Composable non-idealities declared in a card: stuck-at faults, levels, g_max variation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import memsim

ROOT = Path(__file__).resolve().parent.parent
N = 40000
Z = 5.0


def card_with(tmp_path: Path, base: str, **nonideal: float) -> memsim.Device:
    text = (ROOT / "devices" / f"{base}.toml").read_text()
    text += "\n[nonidealities]\n" + "".join(
        f'{k} = {{ value = {v}, unit = "1", source = "test" }}\n' for k, v in nonideal.items()
    )
    path = tmp_path / f"{base}-ni.toml"
    path.write_text(text)
    return memsim.load_device(path)


def binomial_ok(k: int, n: int, p: float) -> bool:
    return abs(k - n * p) < Z * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("base", ["pcm-hermes-2dev", "rram-cmo"])
def test_stuck_at_faults(tmp_path, base):
    dev = card_with(tmp_path, base, stuck_at_gmin_rate=0.03, stuck_at_gmax_rate=0.01)
    g_t = 0.5 * (dev.g_min_S + dev.g_max_S)
    state = dev.program(np.full(N, g_t), np.random.default_rng(0))
    low, high = state.stuck == -1, state.stuck == 1
    assert binomial_ok(int(low.sum()), N, 0.03)
    assert binomial_ok(int(high.sum()), N, 0.01)
    for t in (0.0, 1.0, 86400.0, 3.15e8):
        g = dev.read(state, t, np.random.default_rng(1))
        np.testing.assert_array_equal(g[low], dev.g_min_S)
        np.testing.assert_array_equal(g[high], dev.g_max_S)
        assert np.all(g[~(low | high)] != dev.g_max_S)
        sd = dev.read_noise_std(state, t, window_s=1e-3)
        assert np.all(sd[low | high] == 0.0)


def test_levels_exact_with_noise_off(tmp_path):
    dev = card_with(tmp_path, "pcm-generic", levels=5).noise_free()
    g_t = np.random.default_rng(1).uniform(0, dev.g_max_S, 1000)  # no exact ties
    state = dev.program(g_t, np.random.default_rng(0))
    levels = np.linspace(0, dev.g_max_S, 5)
    nearest = levels[np.argmin(np.abs(g_t[:, None] - levels[None, :]), axis=1)]
    np.testing.assert_allclose(state.g_prog_S, nearest, rtol=0, atol=1e-18)
    assert set(np.round(state.g_prog_S / dev.g_max_S * 4, 12)) == {0, 1, 2, 3, 4}


def test_levels_with_rram_range(tmp_path):
    dev = card_with(tmp_path, "rram-cmo", levels=4).noise_free()
    g_t = np.linspace(dev.g_min_S, dev.g_max_S, 301)
    state = dev.program(g_t, np.random.default_rng(0))
    levels = np.linspace(dev.g_min_S, dev.g_max_S, 4)
    assert np.all(np.min(np.abs(state.g_prog_S[:, None] - levels), axis=1) < 1e-18)


def test_gmax_variation(tmp_path):
    dev = card_with(tmp_path, "pcm-generic", gmax_variation=0.05).noise_free()
    g_t = 0.6 * dev.g_max_S
    state = dev.program(np.full(N, g_t), np.random.default_rng(0))
    ratio = state.g_prog_S / g_t
    assert abs(ratio.mean() - 1.0) < Z * 0.05 / math.sqrt(N)
    assert abs(ratio.std(ddof=1) - 0.05) < Z * 0.05 / math.sqrt(2 * (N - 1))


def test_all_composed(tmp_path):
    dev = card_with(tmp_path, "pcm-hermes-1dev", stuck_at_gmin_rate=0.02, levels=8,
                    gmax_variation=0.03)
    assert dev.nonideal.any
    g_t = np.random.default_rng(5).uniform(0, dev.g_max_S, N)
    a = dev.program(g_t, np.random.default_rng(7))
    b = dev.program(g_t, np.random.default_rng(7))
    np.testing.assert_array_equal(a.g_prog_S, b.g_prog_S)
    assert binomial_ok(int((a.stuck == -1).sum()), N, 0.02)
    free = a.stuck == 0
    # programmed values of free devices scatter around their quantized, g_max-scaled level
    level = np.rint(g_t / (dev.g_max_S / 7)) * dev.g_max_S / 7
    err = a.g_prog_S[free] - level[free]
    assert abs(err.mean()) < 0.05e-6
    assert err.std() < 1.5e-6
