"""Mapping networks onto tiles: ideal limit equals the original model, report, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import memsim
from memsim.mapping import Graph, map_network

IDEAL = dict(tile="generic-256", device="ideal", adc_bits=None, dac_bits=None, dtype="float64")


def small_graph(rng) -> Graph:
    g = Graph((3, 10, 10), "small")
    h = g.conv2d(g.input, rng.standard_normal((6, 3, 3, 3)), rng.standard_normal(6), padding=1)
    h = g.batchnorm(h, rng.standard_normal(6), rng.uniform(0.5, 2, 6), rng.standard_normal(6),
                    rng.standard_normal(6))
    a = g.relu(h)
    h = g.conv2d(a, rng.standard_normal((6, 3, 3, 3)), None, padding=2, dilation=2, groups=2)
    h = g.add(g.relu(h), a)
    h = g.maxpool2d(h, 2)
    h = g.conv2d(h, rng.standard_normal((8, 6, 3, 3)), rng.standard_normal(8), stride=2)
    h = g.flatten(g.relu(h))
    g.set_output(g.linear(h, rng.standard_normal((4, 32)), rng.standard_normal(4)))
    return g


def test_graph_ideal_mapping_equals_exact():
    rng = np.random.default_rng(0)
    g = small_graph(rng)
    net = map_network(g, **IDEAL)
    net.program(rng)
    x = rng.standard_normal((7, 3, 10, 10))
    np.testing.assert_allclose(net.forward(x, 60.0, rng), g.forward(x), rtol=1e-9, atol=1e-9)


def test_matrices_are_split_into_tiles_and_partial_sums_added():
    rng = np.random.default_rng(1)
    g = Graph((300,), "wide")
    g.set_output(g.linear(g.input, rng.standard_normal((70, 300)), rng.standard_normal(70)))
    net = map_network(g, tile="generic-256", device="ideal", adc_bits=None, dac_bits=None,
                      dtype="float64", rows=128, cols=32)
    rep = net.report()
    assert rep["layers"][0]["matrices"] == [[300, 70]]
    assert rep["layers"][0]["tiles"] == 3 * 3  # ceil(300/128) x ceil(70/32)
    assert rep["total_tiles"] == 9
    assert rep["utilization"] == pytest.approx(300 * 70 / (9 * 128 * 32))
    net.program(rng)
    x = rng.standard_normal((4, 300))
    np.testing.assert_allclose(net.forward(x, 1.0, rng), g.forward(x), rtol=1e-9, atol=1e-9)


def test_report_lists_digital_layers_and_mvms():
    rng = np.random.default_rng(2)
    net = map_network(small_graph(rng), **IDEAL)
    rep = net.report()
    ops = {d["op"] for d in rep["digital"]}
    assert {"relu", "add", "maxpool2d", "flatten"} <= ops
    assert "batchnorm" not in ops  # folded into the first convolution
    convs = [layer for layer in rep["layers"] if layer["op"] == "conv2d"]
    assert [c["mvms_per_inference"] for c in convs] == [100, 100, 4]
    assert convs[1]["matrices"] == [[27, 3], [27, 3]]  # groups=2: one matrix per group
    assert rep["total_tile_mvms_per_inference"] == 100 + 2 * 100 + 4 + 1


def test_reproducible_and_program_once_read_many():
    rng = np.random.default_rng(3)
    g = small_graph(rng)
    x = rng.standard_normal((5, 3, 10, 10))

    def run(seed):
        net = map_network(g, tile="hermes-core", device="pcm-hermes-2dev")
        net.program(np.random.default_rng(seed))
        return [net.forward(x, t, np.random.default_rng(seed + 1)) for t in (1.0, 86400.0)]

    a, b, c = run(10), run(10), run(11)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_bad_inputs():
    rng = np.random.default_rng(4)
    g = small_graph(rng)
    net = map_network(g, **IDEAL)
    with pytest.raises(RuntimeError, match="not programmed"):
        net.forward(np.zeros((1, 3, 10, 10)), 1.0, rng)
    net.program(rng)
    with pytest.raises(ValueError, match=r"input of shape \(1, 3, 9, 9\) does not match"):
        net.forward(np.zeros((1, 3, 9, 9)), 1.0, rng)
    with pytest.raises(ValueError, match=r"NaN"):
        net.forward(np.full((1, 3, 10, 10), np.nan), 1.0, rng)
    bad = Graph((4,), "bad")
    with pytest.raises(ValueError, match=r"bad: linear0.weight contains NaN"):
        bad.linear(bad.input, np.array([[np.nan, 1, 1, 1]]))
    with pytest.raises(ValueError, match=r"takes input 'nowhere'"):
        bad.relu("nowhere")
    h = bad.linear(bad.input, np.ones((3, 5)))
    bad.set_output(h)
    with pytest.raises(ValueError, match=r"input has 4 features but the weight \(3, 5\)"):
        map_network(bad, **IDEAL)
    with pytest.raises(ValueError, match=r"unknown crossbars card"):
        map_network(g, tile="nope", device="ideal")


# -- torch import ------------------------------------------------------------------------------
torch = pytest.importorskip("torch", reason="torch is not installed (pip install memsim[torch])")
nn = torch.nn


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=3, bias=False)
        self.c3 = nn.Conv2d(6, 8, 3, stride=2)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        a = torch.relu(self.bn(self.c1(x)))
        h = torch.relu(self.c2(a)) + a  # residual
        h = self.pool(h)
        h = nn.functional.relu(self.c3(h))
        h = nn.functional.adaptive_avg_pool2d(h, 1)
        return self.fc(torch.flatten(h, 1))


class Seq(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, padding=1)
        self.rnn = cell(4, 6, num_layers=2, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):  # x: (B, 3, T)
        h = torch.tanh(self.conv(x)).transpose(1, 2)  # (B, T, 4): transpose runs in torch
        out, _ = self.rnn(h)
        return self.fc(out[:, -1])


def _randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.parametrize("make, shape", [
    (CNN, (2, 12, 12)),
    (lambda: Seq(nn.LSTM), (3, 7)),
    (lambda: Seq(nn.GRU), (3, 7)),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(16, 20), nn.Tanh(), nn.Dropout(0.5),
                           nn.Linear(20, 3), nn.Softmax(dim=1)), (4, 4)),
])
def test_torch_model_ideal_mapping_equals_torch(make, shape):
    torch.manual_seed(0)
    model = make()
    _randomize_bn(model)
    model.eval()
    net = map_network(model, input_shape=shape, **IDEAL)
    net.program(np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((6, *shape))
    with torch.no_grad():
        expect = model(torch.tensor(x, dtype=torch.float64).float()).double().numpy()
    got = net.forward(x, 1.0, np.random.default_rng(2))
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-5)  # torch ran in float32


def test_unmapped_torch_ops_are_reported_not_dropped():
    model = Seq(nn.LSTM)
    net = map_network(model, input_shape=(3, 7), **IDEAL)
    digital = [d["op"] for d in net.report()["digital"]]
    assert any(op.startswith("torch: transpose") for op in digital)
    mapped = [layer["op"] for layer in net.report()["layers"]]
    assert mapped == ["conv1d", "lstm", "lstm", "linear"]


def test_torch_needs_input_shape():
    with pytest.raises(ValueError, match="needs input_shape"):
        map_network(nn.Linear(3, 2), **IDEAL)
    assert memsim is not None
