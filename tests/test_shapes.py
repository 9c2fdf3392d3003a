"""Layer shapes of known networks: they build, run one sample, have the published parameter
counts and map onto HERMES cores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memsim.mapping import map_network
from memsim.workloads.shapes import NETWORKS, load_network, lstm_model, parameter_count

# name: (published parameter count, its source, relative tolerance, output classes)
PUBLISHED = {
    "resnet9-cifar10": (6.5e6, "Page 2018, DAWNBench ResNet-9: ~6.5 M", 0.02, 10),
    "resnet32-cifar10": (0.46e6, "He et al. 2016, Table 6: 0.46 M", 0.02, 10),
    "alexnet": (61e6, "Krizhevsky et al. 2012: ~60-61 M", 0.01, 1000),
    "lenet5": (61706, "LeNet-5 with full C3 connectivity: 61 706", 0.0, 10),
}


def _conv_tiles(rows: int, cols: int, size: int = 256, kk: int = 9) -> int:
    """Tiles of an im2col matrix cut at input-channel boundaries (whole k x k channels per
    tile, as HERMES maps its layers): ceil(channels / channels-per-tile) row tiles."""
    per = size // kk if kk <= size else 1
    return math.ceil(math.ceil(rows / kk) / per) * math.ceil(cols / size)


# exact counts from the layer shapes (weights + biases + batch-norm scale and shift)
EXACT = {
    "resnet9-cifar10": (3 * 64 * 9 + 64 * 128 * 9 + 2 * 128 * 128 * 9 + 128 * 256 * 9
                        + 256 * 512 * 9 + 2 * 512 * 512 * 9 + 512 * 10
                        + 2 * (64 + 128 * 3 + 256 + 512 * 3)),
    "resnet32-cifar10": (3 * 16 * 9 + 10 * 16 * 16 * 9 + 16 * 32 * 9 + 9 * 32 * 32 * 9
                         + 32 * 64 * 9 + 9 * 64 * 64 * 9 + 64 * 10 + 10
                         + 2 * (16 + 10 * 16 + 10 * 32 + 10 * 64)),
    "alexnet": 60_965_224,
    "lenet5": 61_706,
}
TILES = {
    "resnet9-cifar10": (_conv_tiles(27, 64) + _conv_tiles(576, 128) + 2 * _conv_tiles(1152, 128)
                        + _conv_tiles(1152, 256) + _conv_tiles(2304, 512)
                        + 2 * _conv_tiles(4608, 512) + _conv_tiles(512, 10, kk=1)),
    "resnet32-cifar10": 1 + 10 + 1 + 9 * 2 + 2 + 9 * 3 + 1,
    "alexnet": (_conv_tiles(363, 96, kk=121) + 2 * _conv_tiles(1200, 128, kk=25)
                + _conv_tiles(2304, 384) + 2 * _conv_tiles(1728, 192) + 2 * _conv_tiles(1728, 128)
                + _conv_tiles(9216, 4096, kk=1) + _conv_tiles(4096, 4096, kk=1)
                + _conv_tiles(4096, 1000, kk=1)),
    "lenet5": 6,
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_network_builds_runs_counts_and_maps(name):
    published, _source, tol, classes = PUBLISHED[name]
    g = load_network(name, np.random.default_rng(0))
    n = parameter_count(g)
    assert n == EXACT[name]
    assert abs(n - published) <= tol * published + 0.5
    y = g.forward(np.random.default_rng(1).standard_normal((1, *g.input_shape)))
    assert y.shape == (1, classes) and np.all(np.isfinite(y))
    net = map_network(g, tile="hermes-core", device="pcm-hermes-2dev")  # map only
    assert net.report()["total_tiles"] == TILES[name]
    assert [lm.name for lm in net.layers] == [n.name for n in net.graph.weight_nodes()]


def test_alexnet_feature_map_sizes():
    g = load_network("alexnet", np.random.default_rng(0))
    s = g.shapes()
    assert s["relu1"] == (96, 55, 55) and s["pool1"] == (96, 27, 27)
    assert s["pool2"] == (256, 13, 13) and s["pool5"] == (256, 6, 6)


def test_resnet_shapes():
    s9 = load_network("resnet9-cifar10", np.random.default_rng(0)).shapes()
    assert s9["layer1_pool"] == (128, 16, 16) and s9["layer3_pool"] == (512, 4, 4)
    assert s9["res3_add"] == (512, 4, 4) and s9["flatten"] == (512,)
    s32 = load_network("resnet32-cifar10", np.random.default_rng(0)).shapes()
    assert s32["s2b0_shortcut"] == (32, 16, 16) and s32["s3b4_relu2"] == (64, 8, 8)
    assert sum(1 for k in s32 if k.endswith("_conv1") or k.endswith("_conv2")) + 2 == 32


def test_lstm_matches_torch_parameter_count():
    g = lstm_model(np.random.default_rng(0), input_size=28, hidden=128, steps=28, classes=10)
    torch = pytest.importorskip("torch")
    ref = sum(p.numel() for p in torch.nn.LSTM(28, 128).parameters()) + 128 * 10 + 10
    assert parameter_count(g) == ref
    y = g.forward(np.zeros((1, 28, 28)))
    assert y.shape == (1, 10)
    net = map_network(g, tile="hermes-core", device="pcm-hermes-2dev")
    assert net.layers[0].mvms_per_inference == 28  # one MVM per time step
    stacked = lstm_model(np.random.default_rng(0), 16, 32, 5, 4, layers=2)
    assert [n.op for n in stacked.weight_nodes()] == ["lstm", "lstm", "linear"]
    with pytest.raises(ValueError, match="hidden = 0"):
        lstm_model(np.random.default_rng(0), hidden=0)


def test_registry_and_seeds():
    assert set(NETWORKS) == {"resnet9-cifar10", "resnet9-hermes", "resnet32-cifar10", "alexnet",
                             "alexnet-torchvision", "resnet50", "lenet5", "lstm"}
    with pytest.raises(ValueError, match=r"unknown network 'resnet10'; known networks: "
                                         r"resnet9-cifar10, resnet9-hermes, resnet32-cifar10"):
        load_network("resnet10", np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        load_network("lenet5", 0)
    a = load_network("lenet5", np.random.default_rng(5)).nodes["c1"].params["weight"]
    b = load_network("lenet5", np.random.default_rng(5)).nodes["c1"].params["weight"]
    c = load_network("lenet5", np.random.default_rng(6)).nodes["c1"].params["weight"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_resnet9_hermes_is_the_chips_network():
    """Le Gallo et al. 2023 (Methods): 1,866,536 weights; Conv0 27x56, Conv1 504x112,
    Conv2-4 1008x{112, 112, 224}, Conv5-7 2016x224, dense 224x10; 40 cores of 256x256."""
    g = load_network("resnet9-hermes", np.random.default_rng(0))
    shapes = [m.shape for n in g.weight_nodes() for _, m in n.matrices()]  # (in, out)
    assert shapes == [(27, 56), (504, 112), (1008, 112), (1008, 112), (1008, 224),
                      (2016, 224), (2016, 224), (2016, 224), (224, 10)]
    assert sum(r * c for r, c in shapes) == 1_866_536
    net = map_network(g, tile="hermes-core", device="pcm-hermes-2dev")
    assert [layer.tiles for layer in net.layers] == [1, 2, 4, 4, 4, 8, 8, 8, 1]
    assert net.report()["total_tiles"] == 40
    y = g.forward(np.zeros((1, 3, 32, 32)))
    assert y.shape == (1, 10)
