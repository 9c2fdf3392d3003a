"""Layer-shape definitions of known networks as memsim Graphs with random weights.

These are for timing and energy (the chip scheduler needs shapes, not trained values) and
for mapping studies; the weights are random (He-normal, from the ``rng`` you pass), batch
norms have random statistics. Published parameter counts are checked in the tests.

- ``resnet9-cifar10``: the DAWNBench ResNet-9 of D. Page ("How to train your ResNet", 2018):
  prep conv 64, layer1 conv 128 + max-pool + residual (2 × conv 128), layer2 conv 256 +
  max-pool, layer3 conv 512 + max-pool + residual (2 × conv 512), max-pool 4, fc 10;
  every conv 3×3 with batch norm and ReLU, no conv bias. ≈ 6.57 M parameters.
- ``resnet9-hermes``: the ResNet-9 that Le Gallo et al. (Nat. Electron. 6, 680, 2023;
  arXiv 2212.02872) ran on the IBM HERMES 64-core chip: the same structure with widths
  56, 112, 112, 112, 224, 224, 224, 224 and a 224 → 10 dense layer; 1,866,536 weights;
  matrices Conv0 27×56, Conv1 504×112, Conv2–4 1008×{112, 112, 224}, Conv5–7 2016×224; on
  40 of the chip's 64 cores without replication. (The paper ran it in 4-phase mode, with
  max-pooling in software and activations between layers through the FPGA.)
- ``resnet32-cifar10``: He et al., CVPR 2016, Sec. 4.2: 3×3 conv 16, three stages of five
  basic blocks (16, 32, 64 channels, stride 2 at the stage starts), option-A shortcuts
  (stride-2 subsampling and zero-padded channels, no parameters), global average pool,
  fc 10. ≈ 0.46 M parameters.
- ``alexnet``: Krizhevsky et al., NIPS 2012, the original two-tower layout as grouped
  convolutions (conv2, conv4, conv5 with 2 groups), 227×227 input, fc 4096-4096-1000;
  local response normalisation and dropout are left out (no weights, not on crossbars).
  ≈ 61.0 M parameters.
- ``resnet50``: He et al., CVPR 2016, Table 1, in torchvision's layout (``resnet50``, v1.5:
  the stride of a down-sampling bottleneck on its 3×3 convolution; 1×1 projection shortcuts
  with batch norm on the first block of each stage): 7×7/2 conv 64, 3×3/2 max-pool, stages
  of 3, 4, 6, 3 bottleneck blocks (widths 64, 128, 256, 512, expansion 4), global average
  pool, fc 1000; 3×224×224 input. 25,557,032 parameters, as torchvision's.
- ``alexnet-torchvision``: AlexNet in torchvision's single-tower layout (``alexnet``, after
  Krizhevsky's "one weird trick", arXiv:1404.5997): convs 64@11×11/4, 192@5×5, 384, 256,
  256@3×3, max-pools 3/2, adaptive average pool to 6×6 (the identity at 224×224, left out),
  fc 4096-4096-1000, dropout left out; 3×224×224 input. 61,100,840 parameters, as
  torchvision's.
- ``lenet5``: LeNet-5 on 32×32 inputs in its common form (LeCun et al., Proc. IEEE 1998,
  with full C3 connectivity and a linear output): conv 6@5×5, avg-pool, conv 16@5×5,
  avg-pool, fc 120-84-10, tanh. 61 706 parameters.
- ``lstm``: a single-layer LSTM over a sequence plus a linear head (e.g. sequential MNIST
  rows: 28 steps of 28 features, 128 hidden units, 10 classes).

The torch definitions of the same two networks (:mod:`memsim.workloads.nets`) give the same
weight layers: the tests record both on the same tile and compare them layer by layer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from memsim.mapping.graph import Graph

__all__ = ["NETWORKS", "SETUPS", "alexnet", "alexnet_torchvision", "lenet5", "load_network",
           "lstm_model", "parameter_count", "resnet9_cifar10", "resnet9_hermes",
           "resnet32_cifar10", "resnet50"]


def _he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))


def _conv(g: Graph, rng: np.random.Generator, x: str, c_in: int, c_out: int, k: int, *,
          stride: int = 1, padding: int = 0, groups: int = 1, bias: bool = True,
          name: str | None = None) -> str:
    fan_in = c_in // groups * k * k
    w = _he(rng, (c_out, c_in // groups, k, k), fan_in)
    b = rng.standard_normal(c_out) * 0.01 if bias else None
    return g.conv2d(x, w, b, stride=stride, padding=padding, groups=groups, name=name)


def _bn(g: Graph, rng: np.random.Generator, x: str, c: int, name: str | None = None) -> str:
    return g.batchnorm(x, mean=rng.standard_normal(c) * 0.1,
                       var=rng.uniform(0.5, 1.5, size=c),
                       weight=rng.uniform(0.8, 1.2, size=c),
                       bias=rng.standard_normal(c) * 0.1, name=name)


def _linear(g: Graph, rng: np.random.Generator, x: str, n_in: int, n_out: int, *,
            bias: bool = True, name: str | None = None) -> str:
    w = _he(rng, (n_out, n_in), n_in)
    b = rng.standard_normal(n_out) * 0.01 if bias else None
    return g.linear(x, w, b, name=name)


# channel widths of the eight 3×3 convolutions: prep, layer1, res1a, res1b, layer2, layer3,
# res3a, res3b
DAWNBENCH_WIDTHS = (64, 128, 128, 128, 256, 512, 512, 512)
HERMES_WIDTHS = (56, 112, 112, 112, 224, 224, 224, 224)  # Le Gallo et al. 2023, Methods


def _resnet9(rng: np.random.Generator, widths: tuple[int, ...], name: str) -> Graph:
    """ResNet-9 for 3×32×32 images with the given widths of its eight convolutions."""
    w0, w1, w1a, w1b, w2, w3, w3a, w3b = widths
    if w1a != w1 or w1b != w1 or w3a != w3 or w3b != w3:
        raise ValueError(f"{name}: residual blocks keep their width, got widths {widths}")
    g = Graph((3, 32, 32), name=name)

    def conv_bn(x: str, c_in: int, c_out: int, name: str) -> str:
        h = _conv(g, rng, x, c_in, c_out, 3, padding=1, bias=False, name=name)
        return g.relu(_bn(g, rng, h, c_out, name=f"{name}_bn"), name=f"{name}_relu")

    h = conv_bn(g.input, 3, w0, "prep")
    h = g.maxpool2d(conv_bn(h, w0, w1, "layer1"), 2, name="layer1_pool")
    r = conv_bn(conv_bn(h, w1, w1, "res1a"), w1, w1, "res1b")
    h = g.add(h, r, name="res1_add")
    h = g.maxpool2d(conv_bn(h, w1, w2, "layer2"), 2, name="layer2_pool")
    h = g.maxpool2d(conv_bn(h, w2, w3, "layer3"), 2, name="layer3_pool")
    r = conv_bn(conv_bn(h, w3, w3, "res3a"), w3, w3, "res3b")
    h = g.add(h, r, name="res3_add")
    h = g.flatten(g.maxpool2d(h, 4, name="pool"), name="flatten")
    g.set_output(_linear(g, rng, h, w3, 10, bias=False, name="fc"))
    return g


def resnet9_cifar10(rng: np.random.Generator) -> Graph:
    """DAWNBench ResNet-9 (Page 2018) for 3×32×32 CIFAR-10 images."""
    return _resnet9(rng, DAWNBENCH_WIDTHS, "resnet9-cifar10")


def resnet9_hermes(rng: np.random.Generator) -> Graph:
    """The ResNet-9 run on the IBM HERMES chip (Le Gallo et al. 2023): DAWNBench structure,
    widths 56-112-112-112-224-224-224-224, 1,866,536 weights, 40 cores of 256×256."""
    return _resnet9(rng, HERMES_WIDTHS, "resnet9-hermes")


def _shortcut_a(c_out: int) -> Callable[[np.ndarray], np.ndarray]:
    """He et al. option A: stride-2 subsampling, zero-padded extra channels."""

    def fn(x: np.ndarray) -> np.ndarray:
        y = x[:, :, ::2, ::2]
        pad = c_out - y.shape[1]
        return np.pad(y, ((0, 0), (pad // 2, pad - pad // 2), (0, 0), (0, 0)))

    return fn


def resnet32_cifar10(rng: np.random.Generator) -> Graph:
    """ResNet-32 for CIFAR-10 (He et al. 2016, 6n+2 layers with n = 5)."""
    g = Graph((3, 32, 32), name="resnet32-cifar10")
    h = g.relu(_bn(g, rng, _conv(g, rng, g.input, 3, 16, 3, padding=1, bias=False,
                                 name="conv1"), 16, name="bn1"), name="relu1")
    c_in = 16
    for stage, c in enumerate((16, 32, 64), start=1):
        for block in range(5):
            stride = 2 if (block == 0 and stage > 1) else 1
            p = f"s{stage}b{block}"
            y = _conv(g, rng, h, c_in, c, 3, stride=stride, padding=1, bias=False,
                      name=f"{p}_conv1")
            y = g.relu(_bn(g, rng, y, c, name=f"{p}_bn1"), name=f"{p}_relu1")
            y = _conv(g, rng, y, c, c, 3, padding=1, bias=False, name=f"{p}_conv2")
            y = _bn(g, rng, y, c, name=f"{p}_bn2")
            sc = h if stride == 1 and c_in == c else g.external(
                (h,), _shortcut_a(c), f"option-A shortcut: subsample 2, pad to {c} channels",
                name=f"{p}_shortcut")
            h = g.relu(g.add(y, sc, name=f"{p}_add"), name=f"{p}_relu2")
            c_in = c
    h = g.flatten(g.global_avgpool(h, name="pool"), name="flatten")
    g.set_output(_linear(g, rng, h, 64, 10, name="fc"))
    return g


def alexnet(rng: np.random.Generator, num_classes: int = 1000) -> Graph:
    """AlexNet (Krizhevsky et al. 2012), two-tower layout as groups, 3×227×227 input."""
    g = Graph((3, 227, 227), name="alexnet")
    h = g.relu(_conv(g, rng, g.input, 3, 96, 11, stride=4, name="conv1"), name="relu1")
    h = g.maxpool2d(h, 3, 2, name="pool1")
    h = g.relu(_conv(g, rng, h, 96, 256, 5, padding=2, groups=2, name="conv2"), name="relu2")
    h = g.maxpool2d(h, 3, 2, name="pool2")
    h = g.relu(_conv(g, rng, h, 256, 384, 3, padding=1, name="conv3"), name="relu3")
    h = g.relu(_conv(g, rng, h, 384, 384, 3, padding=1, groups=2, name="conv4"), name="relu4")
    h = g.relu(_conv(g, rng, h, 384, 256, 3, padding=1, groups=2, name="conv5"), name="relu5")
    h = g.flatten(g.maxpool2d(h, 3, 2, name="pool5"), name="flatten")
    h = g.relu(_linear(g, rng, h, 256 * 6 * 6, 4096, name="fc6"), name="relu6")
    h = g.relu(_linear(g, rng, h, 4096, 4096, name="fc7"), name="relu7")
    g.set_output(_linear(g, rng, h, 4096, num_classes, name="fc8"))
    return g


def resnet50(rng: np.random.Generator, num_classes: int = 1000,
             image_size: int = 224) -> Graph:
    """ResNet-50 (He et al. 2016, Table 1) in torchvision's layout (v1.5), 3×224×224 input.

    Node names follow torchvision's module names (``layer2.0.conv2``, ``layer2.0.downsample``)
    so that a layer of the chip report is found in either definition."""
    g = Graph((3, image_size, image_size), name="resnet50")

    def conv_bn(x: str, c_in: int, c_out: int, k: int, stride: int, name: str, bn: str,
                relu: bool) -> str:
        h = _conv(g, rng, x, c_in, c_out, k, stride=stride, padding=k // 2, bias=False,
                  name=name)
        h = _bn(g, rng, h, c_out, name=bn)
        return g.relu(h, name=f"{name}.relu") if relu else h

    h = conv_bn(g.input, 3, 64, 7, 2, "conv1", "bn1", True)
    h = g.maxpool2d(h, 3, 2, padding=1, name="maxpool")
    c_in = 64
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3),
                                                strict=True), start=1):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            stride = 2 if (stage > 1 and b == 0) else 1
            y = conv_bn(h, c_in, width, 1, 1, f"{p}.conv1", f"{p}.bn1", True)
            y = conv_bn(y, width, width, 3, stride, f"{p}.conv2", f"{p}.bn2", True)
            y = conv_bn(y, width, 4 * width, 1, 1, f"{p}.conv3", f"{p}.bn3", False)
            if b == 0:  # projection shortcut (stride or width change)
                h = conv_bn(h, c_in, 4 * width, 1, stride, f"{p}.downsample.0",
                            f"{p}.downsample.1", False)
            h = g.relu(g.add(y, h, name=f"{p}.add"), name=f"{p}.relu")
            c_in = 4 * width
    h = g.flatten(g.global_avgpool(h, name="avgpool"), name="flatten")
    g.set_output(_linear(g, rng, h, 2048, num_classes, name="fc"))
    return g


def alexnet_torchvision(rng: np.random.Generator, num_classes: int = 1000) -> Graph:
    """AlexNet in torchvision's single-tower layout, 3×224×224 input (module docstring).

    Node names follow torchvision's (``features.0``, ``classifier.1``)."""
    g = Graph((3, 224, 224), name="alexnet-torchvision")
    h = g.input
    c_in = 3
    # (index in torchvision's features, out channels, kernel, stride, padding, pool after)
    for i, c, k, s, p, pool in ((0, 64, 11, 4, 2, True), (3, 192, 5, 1, 2, True),
                                (6, 384, 3, 1, 1, False), (8, 256, 3, 1, 1, False),
                                (10, 256, 3, 1, 1, True)):
        h = g.relu(_conv(g, rng, h, c_in, c, k, stride=s, padding=p, name=f"features.{i}"),
                   name=f"features.{i + 1}")
        if pool:
            h = g.maxpool2d(h, 3, 2, name=f"features.{i + 2}")
        c_in = c
    h = g.flatten(h, name="flatten")
    h = g.relu(_linear(g, rng, h, 256 * 6 * 6, 4096, name="classifier.1"), name="classifier.2")
    h = g.relu(_linear(g, rng, h, 4096, 4096, name="classifier.4"), name="classifier.5")
    g.set_output(_linear(g, rng, h, 4096, num_classes, name="classifier.6"))
    return g


def lenet5(rng: np.random.Generator) -> Graph:
    """LeNet-5 (LeCun et al. 1998) on 1×32×32 inputs, common full-connectivity form."""
    g = Graph((1, 32, 32), name="lenet5")
    h = g.activation(_conv(g, rng, g.input, 1, 6, 5, name="c1"), "tanh", name="tanh1")
    h = g.avgpool2d(h, 2, name="s2")
    h = g.activation(_conv(g, rng, h, 6, 16, 5, name="c3"), "tanh", name="tanh3")
    h = g.flatten(g.avgpool2d(h, 2, name="s4"), name="flatten")
    h = g.activation(_linear(g, rng, h, 400, 120, name="c5"), "tanh", name="tanh5")
    h = g.activation(_linear(g, rng, h, 120, 84, name="f6"), "tanh", name="tanh6")
    g.set_output(_linear(g, rng, h, 84, 10, name="output"))
    return g


def lstm_model(rng: np.random.Generator, input_size: int = 28, hidden: int = 128,
               steps: int = 28, classes: int = 10, layers: int = 1) -> Graph:
    """``layers`` stacked LSTM layers over ``steps`` × ``input_size`` inputs, then a linear
    head on the last step (default: sequential-MNIST-style rows)."""
    for name, v in (("input_size", input_size), ("hidden", hidden), ("steps", steps),
                    ("classes", classes), ("layers", layers)):
        if not (isinstance(v, int) and v >= 1):
            raise ValueError(f"lstm_model: {name} = {v!r} must be an integer >= 1")
    g = Graph((steps, input_size), name="lstm")
    h = g.input
    n_in = input_size
    scale = np.float32(1.0 / np.sqrt(hidden))
    for k in range(layers):
        w_ih = rng.uniform(-scale, scale, size=(4 * hidden, n_in))
        w_hh = rng.uniform(-scale, scale, size=(4 * hidden, hidden))
        b_ih = rng.uniform(-scale, scale, size=4 * hidden)
        b_hh = rng.uniform(-scale, scale, size=4 * hidden)
        h = g.lstm(h, w_ih, w_hh, b_ih, b_hh, name=f"lstm{k}")
        n_in = hidden
    h = g.last_step(h, name="last")
    g.set_output(_linear(g, rng, h, hidden, classes, name="head"))
    return g


NETWORKS: dict[str, Callable[[np.random.Generator], Graph]] = {
    "resnet9-cifar10": resnet9_cifar10,
    "resnet9-hermes": resnet9_hermes,
    "resnet32-cifar10": resnet32_cifar10,
    "alexnet": alexnet,
    "alexnet-torchvision": alexnet_torchvision,
    "resnet50": resnet50,
    "lenet5": lenet5,
    "lstm": lstm_model,
}


# How a network's paper ran it on a chip: what `memsim chip` uses unless told otherwise.
SETUPS: dict[str, dict[str, str]] = {
    "resnet9-hermes": {
        "chip": "hermes-64core", "encoding": "pwm_4phase",
        "source": "Le Gallo et al. 2023: all ResNet-9 experiments in 4-phase mode (max-pooling "
                  "in software and activations between layers through the FPGA: "
                  "--activations off-chip)"},
}


def load_network(name: str, rng: np.random.Generator) -> Graph:
    """The Graph of a known network with random weights drawn from ``rng``."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    try:
        build = NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; known networks: "
                         f"{', '.join(NETWORKS)}") from None
    return build(rng)


def parameter_count(graph: Graph) -> int:
    """Trainable parameters: weights, biases, and batch-norm scale and shift (not the
    running statistics), as published parameter counts are given."""
    total = 0
    for node in graph.nodes.values():
        for key, value in node.params.items():
            if node.op == "batchnorm" and key in ("mean", "var"):
                continue
            total += int(value.size)
    return total
