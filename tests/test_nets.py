"""ResNet-50 and AlexNet at ImageNet shapes (torchvision's layouts): weight and activation
counts from closed forms, the Graph and torch definitions agree, and both chips run them."""

from __future__ import annotations

import math

import numpy as np
import pytest

import memsim
from memsim.errors import ConfigError
from memsim.workloads.shapes import load_network, parameter_count

torch = pytest.importorskip("torch")
nn = torch.nn


def _resnet50_counts() -> dict[str, int]:
    """Closed forms from He et al. 2016, Table 1 (torchvision v1.5 layout, 224×224 input).

    Weights: 7×7×3×64 stem; per bottleneck of width w reading c_in channels: 1×1 c_in×w,
    3×3 w×w, 1×1 w×4w, and a 1×1 c_in×4w projection on the first block of a stage; fc
    2048×1000. Activations: output elements of those layers (C_out × H_out × W_out); the
    first 1×1 of a down-sampling block runs at the block's input size, its 3×3 strides.
    All values: every node's output (conv, batch norm, ReLU, pool, add, fc), views not."""
    weights = 7 * 7 * 3 * 64 + 2048 * 1000
    bn = 64
    layer_out = 64 * 112 * 112
    values = 3 * 64 * 112 * 112 + 64 * 56 * 56  # conv1, bn1, relu; max-pool to 56×56
    c_in, hw_in = 64, 56
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        hw = hw_in // stride
        for b in range(blocks):
            first = b == 0
            h1 = hw_in if first else hw
            weights += c_in * width + 9 * width * width + width * 4 * width
            weights += c_in * 4 * width if first else 0
            bn += width + width + 4 * width + (4 * width if first else 0)
            e1, e2, e3 = width * h1 * h1, width * hw * hw, 4 * width * hw * hw
            layer_out += e1 + e2 + e3 + (e3 if first else 0)
            # conv+bn+relu twice, conv+bn, projection conv+bn, add, relu
            values += 3 * e1 + 3 * e2 + 2 * e3 + (2 * e3 if first else 0) + 2 * e3
            c_in = 4 * width
        hw_in = hw
    layer_out += 1000
    values += 2048 + 1000  # global average pool, fc
    return {"weights": weights, "parameters": weights + 2 * bn + 1000,
            "layer_outputs": layer_out, "values": values}


def _alexnet_counts() -> dict[str, int]:
    """torchvision's AlexNet at 224×224: conv 64@11/4 → 55², pool → 27², conv 192@5 → 27²,
    pool → 13², convs 384, 256, 256 @3 → 13², pool → 6², fc 9216-4096-4096-1000."""
    convs = [(3, 64, 11, 55), (64, 192, 5, 27), (192, 384, 3, 13), (384, 256, 3, 13),
             (256, 256, 3, 13)]
    fcs = [(9216, 4096), (4096, 4096), (4096, 1000)]
    weights = sum(ci * co * k * k for ci, co, k, _ in convs) + sum(a * b for a, b in fcs)
    biases = sum(co for _, co, _, _ in convs) + sum(b for _, b in fcs)
    layer_out = sum(co * hw * hw for _, co, _, hw in convs) + sum(b for _, b in fcs)
    return {"weights": weights, "parameters": weights + biases, "layer_outputs": layer_out}


RESNET50 = _resnet50_counts()
ALEXNET = _alexnet_counts()


def test_closed_forms_are_the_published_counts():
    # torchvision: resnet50 25,557,032 and alexnet 61,100,840 parameters ("25.6 M", "61.1 M")
    assert RESNET50["parameters"] == 25_557_032
    assert ALEXNET["parameters"] == 61_100_840
    assert RESNET50["weights"] == 25_502_912 and ALEXNET["weights"] == 61_090_496
    # activations (outputs of the 53 convolutions + fc): 11,113,984 + 1,000
    assert RESNET50["layer_outputs"] == 11_114_984
    assert RESNET50["values"] == 37_559_784
    assert ALEXNET["layer_outputs"] == 494_184


@pytest.fixture(scope="module")
def resnet50_graph():
    return load_network("resnet50", np.random.default_rng(0))


@pytest.fixture(scope="module")
def resnet50_desc(resnet50_graph):
    return memsim.load_chip("hermes-64core").describe(resnet50_graph)


def _layer_outputs(desc) -> int:
    return sum(math.prod(la.out_shape) for la in desc.layers)


def test_resnet50_counts_on_the_graph_and_torch(resnet50_graph, resnet50_desc):
    from memsim.workloads.nets import resnet50

    assert parameter_count(resnet50_graph) == RESNET50["parameters"]
    assert sum(p.numel() for p in resnet50().parameters()) == RESNET50["parameters"]
    desc = resnet50_desc
    assert desc.total_weights == RESNET50["weights"]
    assert len(desc.layers) == 54  # 53 convolutions and the fc
    assert _layer_outputs(desc) == RESNET50["layer_outputs"]
    views = ("input", "flatten")
    values = sum(math.prod(n.out_shape) for n in desc.nodes.values() if n.op not in views)
    assert values == RESNET50["values"]
    assert desc.shapes["layer4.2.relu"] == (2048, 7, 7)


def test_alexnet_counts_on_the_graph_and_torch():
    from memsim.workloads.nets import alexnet

    g = load_network("alexnet-torchvision", np.random.default_rng(0))
    assert parameter_count(g) == ALEXNET["parameters"]
    assert sum(p.numel() for p in alexnet().parameters()) == ALEXNET["parameters"]
    desc = memsim.load_chip("hermes-64core").describe(g)
    assert desc.total_weights == ALEXNET["weights"]
    assert _layer_outputs(desc) == ALEXNET["layer_outputs"]
    assert desc.shapes["features.12"] == (256, 6, 6)


def _torch_layers(model: nn.Module) -> list[tuple]:
    out = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out.append((name, tuple(m.weight.shape), m.stride, m.padding, m.groups))
        elif isinstance(m, nn.Linear):
            out.append((name, tuple(m.weight.shape)))
    return out


def _graph_layers(g) -> list[tuple]:
    out = []
    for n in g.weight_nodes():
        w = n.params["weight"]
        if n.op == "conv2d":
            out.append((n.name, w.shape, n.attrs["stride"], n.attrs["padding"],
                        n.attrs["groups"]))
        else:
            out.append((n.name, w.shape))
    return out


def test_graph_and_torch_definitions_have_the_same_layers(resnet50_graph):
    """The numpy Graphs (chip path) and the torch modules (memsim.workloads.nets) name the
    same layers, in the same order, with the same shapes, strides, paddings and groups."""
    from memsim.workloads.nets import alexnet, resnet50

    assert _graph_layers(resnet50_graph) == _torch_layers(resnet50())
    g = load_network("alexnet-torchvision", np.random.default_rng(0))
    assert _graph_layers(g) == _torch_layers(alexnet())
    bns = [n.name for n in resnet50_graph.nodes.values() if n.op == "batchnorm"]
    assert bns == [k for k, m in resnet50().named_modules() if isinstance(m, nn.BatchNorm2d)]


def test_resnet50_on_hermes_needs_seven_chips(resnet50_desc):
    chip = memsim.load_chip("hermes-64core")
    with pytest.raises(ConfigError, match="434"):
        chip.simulate(resnet50_desc, inferences=1)
    run = chip.simulate(resnet50_desc, inferences=2, fit="multi-chip")
    d = run.to_dict()
    assert d["chips"] == 7 and d["cores_used"] == 434  # ceil(434 / 64)
    assert run.latency_s > 0 and run.energy_j > 0
    layers = {row["name"]: row for row in run.layers()}
    assert set(layers) >= {"conv1", "layer4.2.conv3", "fc"}
    assert d["ops_per_inference"] == pytest.approx(
        2 * sum(la.weights * la.mvms_per_inference for la in resnet50_desc.layers), rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("name, chips", [("resnet50", 1), ("alexnet-torchvision", 2)])
def test_isaac_runs_imagenet_networks(name, chips):
    g = load_network(name, np.random.default_rng(0))
    run = memsim.load_chip("isaac-chip").simulate(g, inferences=2, fit="multi-chip")
    assert run.to_dict()["chips"] == chips
    assert run.latency_s > 0 and run.energy_j > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "alexnet"])
def test_recorded_torch_model_matches_the_graph(name):
    """memsim.describe of the torch model (exact tiles: no programming noise to draw) and the
    Graph's description have the same weight layers on the same 256×256 arrays."""
    from memsim.workloads import nets

    model = getattr(nets, name)().eval()
    amodel = memsim.program(memsim.analog(model, "hermes-core", exact=True), 0)
    rec = memsim.describe(amodel, torch.zeros(1, 3, 224, 224))
    graph = load_network("resnet50" if name == "resnet50" else "alexnet-torchvision",
                         np.random.default_rng(0))
    ref = memsim.load_chip("hermes-64core").describe(graph)

    def rows(desc):
        return [(la.name, la.op, [s for _, s in la.matrices], la.arrays,
                 la.mvms_per_inference, la.out_shape) for la in desc.layers]

    assert rows(rec) == rows(ref)


def test_chip_cli_lists_and_runs_resnet50(capsys):
    from memsim.cli import main

    assert main(["chip", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "resnet50" in listed and "alexnet-torchvision" in listed
    assert "digits-transformer" in listed
    assert main(["chip", "--network", "resnet50", "--inferences", "1", "--no-figures",
                 "--digital", "none"]) == 0
    out = capsys.readouterr()
    assert "simulating 7 chips" in out.err
    assert "layer4.2.conv3" in out.out and "energy per inference" in out.out
