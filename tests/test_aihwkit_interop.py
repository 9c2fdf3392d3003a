"""Cross-check against IBM aihwkit: the same targets through its PCM noise models and through
memsim's cards give the same conductance distributions (two-sample Kolmogorov-Smirnov).

aihwkit is optional (``pip install memsim[aihwkit]``; it needs a C++ build). Without it these
tests skip with that reason.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

aihwkit = pytest.importorskip(
    "aihwkit", reason="aihwkit is not installed (optional extra memsim[aihwkit]; C++ build)")
torch = pytest.importorskip("torch")

import memsim  # noqa: E402
from memsim.timegrid import YEAR  # noqa: E402

N = 4000
P_MIN = 1e-4  # 45 comparisons: a correct model fails one with probability < 0.5 %
TIMES = [0.0, 3600.0, 86400.0, YEAR]


def _aihwkit_model(card):
    if card == "pcm-generic":
        from aihwkit.inference.noise.pcm import PCMLikeNoiseModel

        return PCMLikeNoiseModel(g_max=25.0)
    from aihwkit.inference.noise.hermes import HermesNoiseModel

    return HermesNoiseModel(num_devices=2 if card == "pcm-hermes-2dev" else 1)


@pytest.mark.parametrize("card", ["pcm-generic", "pcm-hermes-2dev", "pcm-hermes-1dev"])
@pytest.mark.parametrize("gh", [0.1, 0.5, 0.9])
def test_conductance_distributions_agree_with_aihwkit(card, gh):
    dev = memsim.load_device(card)
    model = _aihwkit_model(card)
    g_max_uS = dev.g_max_S * 1e6
    assert model.g_max == pytest.approx(g_max_uS)
    torch.manual_seed(int(gh * 100))
    g_t = torch.full((N,), gh * g_max_uS, dtype=torch.float64)
    g_prog = model.apply_programming_noise_to_conductance(g_t)
    nu = model.generate_drift_coefficients(g_t)
    state = dev.program(np.full(N, gh * dev.g_max_S), np.random.default_rng(int(gh * 100)))
    res = stats.ks_2samp(g_prog.numpy(), state.g_prog_S * 1e6)
    assert res.pvalue > P_MIN, ("programmed", res)
    res = stats.ks_2samp(nu.numpy(), state.drift_nu)
    assert res.pvalue > P_MIN, ("drift exponent", res)
    for k, t in enumerate(TIMES):
        ours = dev.read(state, t, np.random.default_rng(k)) * 1e6
        theirs = model.apply_drift_noise_to_conductance(g_prog, nu, t).numpy()
        res = stats.ks_2samp(theirs, ours)
        assert res.pvalue > P_MIN, (t, res)


def test_the_comparison_has_power_against_a_wrong_model():
    """Negative control: the generic PCM model is not the HERMES one, and KS says so."""
    dev = memsim.load_device("pcm-hermes-2dev")
    from aihwkit.inference.noise.pcm import PCMLikeNoiseModel

    model = PCMLikeNoiseModel(g_max=20.7)
    torch.manual_seed(0)
    g_t = torch.full((N,), 0.5 * 20.7, dtype=torch.float64)
    g_prog = model.apply_programming_noise_to_conductance(g_t)
    nu = model.generate_drift_coefficients(g_t)
    theirs = model.apply_drift_noise_to_conductance(g_prog, nu, 86400.0).numpy()
    state = dev.program(np.full(N, 0.5 * dev.g_max_S), np.random.default_rng(0))
    ours = dev.read(state, 86400.0, np.random.default_rng(1)) * 1e6
    assert stats.ks_2samp(theirs, ours).pvalue < 1e-6
