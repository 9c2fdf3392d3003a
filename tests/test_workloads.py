"""Built-in digits workload, hardware-aware training and the drift study."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from memsim.mapping import map_network
from memsim.workloads.digits import (
    accuracy,
    cache_dir,
    digits_model,
    hwa_noise,
    load_digits_split,
)


def test_digits_split():
    x_tr, _, x_te, y_te = load_digits_split()
    assert x_tr.shape[1:] == (1, 8, 8) and x_te.shape[1:] == (1, 8, 8)
    assert len(x_tr) + len(x_te) == 1797 and len(x_te) == 540
    assert x_tr.min() >= 0 and x_tr.max() <= 1
    assert set(np.unique(y_te)) == set(range(10))


def test_unknown_model():
    with pytest.raises(ValueError, match=r"unknown digits model 'rnn'; known: \['mlp', 'cnn'\]"):
        digits_model("rnn")


def test_hwa_noise_is_measured_on_the_tile():
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


def test_mapped_digits_cnn_ideal_equals_float():
    x_te = load_digits_split()[2]
    g = digits_model("cnn")
    from memsim.crossbar import IDEAL_CONVERTERS

    net = map_network(g, tile="hermes-core", device="ideal", **IDEAL_CONVERTERS)
    net.program(np.random.default_rng(0))
    np.testing.assert_allclose(net.forward(x_te[:50], 86400.0, np.random.default_rng(1)),
                               g.forward(x_te[:50]), rtol=1e-9, atol=1e-9)


def test_hwa_training_keeps_higher_accuracy_after_one_day_of_pcm_drift():
    """Paired over programming seeds: same seeds for both models; t-statistic > 3."""
    _, _, x_te, y_te = load_digits_split()
    tile, device = "hermes-core", "pcm-hermes-2dev"
    models = {"plain": digits_model("cnn"),
              "hwa": digits_model("cnn", hwa=hwa_noise(tile, device))}
    seeds = range(6)
    acc = {k: [] for k in models}
    for name, g in models.items():
        net = map_network(g, tile=tile, device=device)
        for s in seeds:
            net.program(np.random.default_rng(100 + s))
            acc[name].append(accuracy(net.forward(x_te, 86400.0, np.random.default_rng(200 + s)),
                                      y_te))
    d = np.array(acc["hwa"]) - np.array(acc["plain"])
    t_stat = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    assert d.mean() > 0.01, acc
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
