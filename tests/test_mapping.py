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
    # the two 27x3 groups share one array (packed block-diagonally): 100 MVMs, not 2 x 100
    assert rep["total_tile_mvms_per_inference"] == 100 + 100 + 4 + 1


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


def test_torch_models_go_through_memsim_analog():
    torch = pytest.importorskip("torch")
    with pytest.raises(memsim.ConfigError, match=r"memsim.analog"):
        map_network(torch.nn.Linear(3, 2), **IDEAL)
