"""Built-in digits workload, hardware-aware training and the drift study."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import memsim
from memsim.mapping import map_network
from memsim.timegrid import YEAR
from memsim.workloads.digits import (
    accuracy,
    cache_dir,
    digits_model,
    digits_torch,
    hwa_noise,
    load_digits_split,
)
from memsim.workloads.training import analog_accuracy


def test_digits_split():
    x_tr, _, x_te, y_te = load_digits_split()
    assert x_tr.shape[1:] == (1, 8, 8) and x_te.shape[1:] == (1, 8, 8)
    assert len(x_tr) + len(x_te) == 1797 and len(x_te) == 540
    assert x_tr.min() >= 0 and x_tr.max() <= 1
    assert set(np.unique(y_te)) == set(range(10))


def test_unknown_model():
    with pytest.raises(memsim.ConfigError,
                       match=r"unknown digits model 'rnn'; known: \['mlp', 'cnn'\]"):
        digits_model("rnn")


def test_digits_hwa_noise_is_measured_on_the_tile():
    pcm = hwa_noise("hermes-core", "pcm-hermes-2dev")
    ideal = hwa_noise("hermes-core", "ideal")
    assert 0.01 < pcm.weight_sigma < 0.3
    assert ideal.weight_sigma < 1e-6  # an ideal device adds no weight noise
    assert pcm.dac_bits == 8 and pcm.out_sigma > 0


torch = pytest.importorskip("torch", reason="training needs torch (pip install memsim[torch])")


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_trained_models_are_accurate_and_cached(kind):
    _, _, x_te, y_te = load_digits_split()
    g = digits_model(kind)
    assert accuracy(g.forward(x_te), y_te) > 0.95
    files = list(cache_dir().glob(f"digits-{kind}-plain-seed0-*.npz"))
    assert files
    again = digits_model(kind)  # from the cache: identical weights
    for a, b in zip(g.weight_nodes(), again.weight_nodes(), strict=True):
        np.testing.assert_array_equal(a.params["weight"], b.params["weight"])


def test_mapped_digits_cnn_exact_limit_equals_float_in_numpy_and_torch():
    x_te = load_digits_split()[2]
    g = digits_model("cnn")
    net = map_network(g, tile="hermes-core", device="pcm-hermes-2dev", exact=True)
    net.program(np.random.default_rng(0))
    np.testing.assert_allclose(net.forward(x_te[:50], 86400.0, np.random.default_rng(1)),
                               g.forward(x_te[:50]), rtol=1e-9, atol=1e-9)
    model = digits_torch("cnn")
    a = memsim.analog(model, "hermes-core", "pcm-hermes-2dev", exact=True)
    memsim.program(a, seed=0)
    x = torch.tensor(x_te[:50], dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(a(x), model(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model(x).detach().double().numpy(), g.forward(x_te[:50]),
                               rtol=1e-4, atol=1e-4)  # the Graph holds the same weights


def test_hwa_training_keeps_higher_accuracy_after_a_year_of_pcm_drift():
    """24 programming seeds per model, one year after programming without drift
    compensation; Welch t-statistic of the accuracy difference > 3 (measured 4.8; mean gain
    +6.9 points: 86.4 % plain, 93.3 % HWA)."""
    x_tr, _, x_te, y_te = load_digits_split()
    tile, device = "hermes-core", "pcm-hermes-2dev"
    models = {"plain": digits_torch("cnn"),
              "hwa": digits_torch("cnn", hwa=hwa_noise(tile, device))}
    acc = {name: analog_accuracy(m, x_te, y_te, tile=tile, device=device, times=[YEAR],
                                 seeds=24, seed=100, x_calibrate=x_tr[:256],
                                 drift_compensation="none")["accuracy"][:, 0]
           for name, m in models.items()}
    a, b = acc["hwa"], acc["plain"]
    t_stat = (a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert a.mean() - b.mean() > 0.01, acc
    assert t_stat > 3, (acc, t_stat)


def test_drift_study_cli_quick(tmp_path, capsys):
    from memsim.cli import main

    assert main(["drift", "--devices", "pcm-hermes-2dev", "--training", "plain",
                 "--compensation", "global", "--seeds", "2", "--quick", "--json",
                 "--out", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["times"] == ["1 s", "1 day", "1 year"]
    (row,) = data["rows"]
    assert len(row["accuracy"]) == 2 and len(row["accuracy_mean"]) == 3
    assert all(0.5 < a <= 1 for a in row["accuracy_mean"])
    assert (tmp_path / "drift-digits-cnn.png").read_bytes()[:4] == b"\x89PNG"
