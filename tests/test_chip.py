"""The chip: exact timelines of tiny scenarios (partial sums streamed along a chain, input
vectors streamed through the layer pipeline), per-MVM vs burst events, the HERMES Table I
validation and the ISAAC reproduction (the tables are tests), energy = counts × table with
static power, area, the per-layer breakdown, the description as the only input, fit modes,
overrides, cards, digital baseline, CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

import memsim
import memsim.chip as mc
from memsim.cards import CardError
from memsim.chip.hardware import pipeline_time
from memsim.chip.validate import TARGETS, deep_layer, fit_hermes
from memsim.cli.chip import add_parser
from memsim.errors import ConfigError
from memsim.mapping import Graph, map_network
from memsim.mapping.description import as_description
from memsim.workloads.shapes import lenet5, load_network, lstm_model

ROOT = Path(__file__).resolve().parent.parent
NS = 1e-9


def two_layer_graph(rng: np.random.Generator) -> Graph:
    g = Graph((256,), name="two-layer")
    h = g.relu(g.linear(g.input, rng.standard_normal((256, 256)), name="fc0"), name="act0")
    g.set_output(g.linear(h, rng.standard_normal((256, 256)), name="fc1"))
    return g


def round_chip(**changes) -> mc.Chip:
    """HERMES on an 8x8 mesh with round numbers: a 128 ns MVM (8-bit PWM, 1 ns unit, no
    overheads), a local unit of 1 output per ns, 1 ns per byte on a link, 2 ns hops,
    16-bit partial sums, 10 ns off-chip latency and 10 ns per 256 B off chip."""
    base = dict(topology="mesh", grid_rows=8, grid_cols=8, phase_overhead_s=0.0,
                mvm_overhead_s=0.0, ldpu_outputs_per_clock=1.0, ldpu_clock_hz=1e9,
                link_bandwidth_Bps=1e9, hop_latency_s=2 * NS, io_latency_s=10 * NS,
                io_bandwidth_Bps=25.6e9, partial_sum_bits=16)
    base.update(changes)
    return mc.load_chip("hermes-64core", **base)


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="memsim")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def _ns(run) -> list[tuple]:
    return [(r, round(t0 / NS, 6), round(t1 / NS, 6), lab) for r, t0, t1, lab in run.timeline]


# -- exact timelines ------------------------------------------------------------------------------
@pytest.mark.parametrize("granularity", ["burst", "mvm"])
def test_two_layers_on_two_cores_hand_computed_timeline(granularity):
    """fc0 (ReLU fused) on core 0, fc1 on core 1, 3 inferences admitted at t = 0; the local
    unit handles 256 outputs in 256 ns at 256 outputs per ns here.

    input  I/O port: 256 B / 25.6 GB/s = 10 ns on the port, then 10 ns latency
    fc0:   128 ns MVM + 1 ns post-processing (256 outputs, fused ReLU in the same pass)
    hop:   core 0 → core 1, 256 B at 256 GB/s = 1 ns + 2 ns hop latency
    fc1:   128 + 1 ns
    output core 1 → (0,0) → port: 10 ns on the port + 2 + 10 ns latency
    """
    chip = round_chip(ldpu_outputs_per_clock=256.0, link_bandwidth_Bps=256e9)
    run = chip.simulate(two_layer_graph(np.random.default_rng(0)), inferences=3,
                        granularity=granularity)
    assert run.placement == {"fc0": [0], "fc1": [1]}
    assert _ns(run) == [("core0", 20, 149, "fc0 i0"), ("core0", 149, 278, "fc0 i1"),
                        ("core1", 152, 281, "fc1 i0"), ("core0", 278, 407, "fc0 i2"),
                        ("core1", 281, 410, "fc1 i1"), ("core1", 410, 539, "fc1 i2")]
    ins = [(round(t0 / NS, 6), round(t2 / NS, 6)) for s, d, t0, t1, t2, lab in run.transfers
           if s == "io0"]
    assert ins == [(0, 20), (0, 30), (0, 40)]  # queued on the off-chip port
    outs = [round(t2 / NS, 6) for s, d, t0, t1, t2, lab in run.transfers if d == "io0"]
    assert outs == [303, 432, 561]
    assert run.latency_s == pytest.approx(303 * NS, rel=1e-12)
    # 3 inferences all admitted at once: no steady state, so the run's mean rate, said so
    assert 1 / run.throughput_per_s == pytest.approx(561 * NS / 3, rel=1e-12)
    assert any("no steady state" in w for w in run.warnings) and not run.steady
    assert "throughput (run mean: no steady state)" in str(run.report())
    steady = chip.simulate(two_layer_graph(np.random.default_rng(0)), inferences=20,
                           granularity=granularity, record=False)
    assert 1 / steady.throughput_per_s == pytest.approx(129 * NS, rel=1e-12)  # fc0 bounds it
    assert not steady.warnings and steady.steady
    assert steady.report()["throughput_steady"] is True
    assert run.utilization[0] == pytest.approx(3 * 129 / 561, rel=1e-12)
    per = {k: v / 3 for k, v in run.counts.items() if v and not k.startswith("static:")}
    assert per["dac_conversion"] == 2 * 256
    assert per["array_cell_read"] == 2 * 256 * 256
    assert per["adc_conversion_8b"] == 2 * 256
    assert per["mvm_overhead"] == 2
    assert per["local_digital_op"] == 256 * 3 + 256 * 2  # affine 2 (+ ReLU 1 on fc0)
    assert per["noc_byte_hop"] == 256 + 256  # core0→core1, core1→(0,0)
    assert per["offchip_byte"] == 256 + 256
    assert per["buffer_byte"] == 2 * 512 + 256 + 2 * 256 + 256
    # static: every block of the chip powered for the whole run
    static = {k: v for k, v in run.counts.items() if k.startswith("static:")}
    assert static["static:ldpu"] == pytest.approx(64 * 561 * NS)
    assert static["static:gdpu"] == pytest.approx(561 * NS)
    assert run.static_energy_j == pytest.approx(chip.config.static_power_w() * 561 * NS / 3)
    ops = 2 * 2 * 256 * 256
    assert run.ops_per_inference == ops
    assert run.tops_per_w == pytest.approx(ops / run.energy_j / 1e12)


@pytest.mark.parametrize("granularity", ["burst", "mvm"])
def test_partial_sums_stream_along_the_chain_hand_computed(granularity):
    """A 512 → 16 layer: two row blocks, core 0 (head) and core 1 (home); inputs already in
    the cores. Core 0: 128 ns MVM, then 16 outputs at 1 ns each: first at 129, last at 144.
    Its 16 partial sums (16 bit, 32 B) leave from 129 on at 2 ns each: the link is busy
    129-161 and the last value arrives at 161 + 2 = 163 ns (the link, not the source, is the
    bottleneck). Core 1 has its own outputs at 144 and adds the last partial sum at 164."""
    chip = round_chip()
    g = Graph((512,), name="split")
    g.set_output(g.linear(g.input, np.ones((16, 512)), name="fc"))
    run = chip.simulate(g, inferences=1, granularity=granularity, preloaded=True)
    assert run.placement == {"fc": [0, 1]}
    assert _ns(run) == [("core0", 0, 144, "fc i0"), ("core1", 0, 164, "fc i0")]
    psum = [(round(t1 / NS, 6), round(t2 / NS, 6)) for s, d, t0, t1, t2, lab in run.transfers
            if lab.startswith("psum")]
    assert psum == [(129, 163)]
    assert run.latency_s == pytest.approx(164 * NS, rel=1e-12)
    assert run.core_busy_s[1] == pytest.approx((164 - (163 - 144)) * NS)
    assert run.counts["local_digital_op"] == 16 * 2 + 16 * 3  # the home adds partial sums
    assert run.counts["noc_byte_hop"] == 32  # 16-bit partial sums, one hop
    assert run.counts.get("offchip_byte", 0) == 0
    # a faster link: the source is the bottleneck, last value 144 + 0.125 + 2 ns
    fast = round_chip(link_bandwidth_Bps=16e9).simulate(g, inferences=1, preloaded=True,
                                                        granularity=granularity)
    assert fast.latency_s == pytest.approx((144 + 0.125 + 2 + 1) * NS, rel=1e-12)


@pytest.mark.parametrize("granularity", ["burst", "mvm"])
def test_input_vectors_stream_through_the_layer_pipeline(granularity):
    """conv 1→16 then conv 16→16, 3×3, padding 1, on 4×4: bands of one output row (4 MVMs
    each, 128 + 16 + 3·128 = 528 ns). A band of c2 starts when c1 has made the rows its
    3×3 window needs (band m needs c1 rows m−1 … m+1); 64 B per band take 64 + 2 ns."""
    chip = round_chip()
    rng = np.random.default_rng(0)
    g = Graph((1, 4, 4), name="two-conv")
    h = g.conv2d(g.input, rng.standard_normal((16, 1, 3, 3)), padding=1, name="c1")
    g.set_output(g.conv2d(h, rng.standard_normal((16, 16, 3, 3)), padding=1, name="c2"))
    run = chip.simulate(g, inferences=1, granularity=granularity)
    c1 = [10.625 + 528 * k for k in range(5)]
    expected = [("core0", c1[k], c1[k + 1], f"c1 b{k} i0") for k in range(4)]
    c2 = [c1[2] + 66, c1[3] + 66, c1[4] + 66, c1[4] + 66 + 528, c1[4] + 66 + 2 * 528]
    expected += [("core1", c2[k], c2[k] + 528, f"c2 b{k} i0") for k in range(4)]
    assert _ns(run) == sorted(expected, key=lambda x: (x[1], x[0]))
    # each band's 64 B of outputs: 64 ns on the 1 GB/s link to the port, + 2 + 10 ns
    assert run.latency_s == pytest.approx((c2[3] + 528 + 64 + 12) * NS, rel=1e-12)
    # layer by layer: c2 waits for all of c1
    lbl = chip.simulate(g, inferences=1, granularity=granularity, streaming=False)
    t1 = 10.625 + 128 + 16 + 15 * 128
    t2 = t1 + 256 + 2
    assert _ns(lbl) == [("core0", 10.625, t1, "c1 i0"), ("core1", t2, t2 + 2064, "c2 i0")]
    assert lbl.latency_s > run.latency_s
    assert lbl.ops_per_inference == run.ops_per_inference
    for k in ("dac_conversion", "adc_conversion_8b", "local_digital_op", "noc_byte_hop"):
        assert lbl.counts[k] == pytest.approx(run.counts[k])


@pytest.mark.parametrize("slower", ["array", "digital"])
def test_burst_is_the_closed_form_of_the_per_mvm_pipeline(slower):
    """36 MVMs on one core: array a, local unit d per MVM; either can be the bottleneck."""
    rate = 1.0 if slower == "digital" else 256.0  # outputs per ns
    chip = round_chip(ldpu_outputs_per_clock=rate)
    g = Graph((1, 6, 6), name="conv")
    g.set_output(g.conv2d(g.input, np.ones((256, 1, 3, 3)), padding=1, name="c"))
    a, d = 128 * NS, 256 / rate * NS
    runs = [chip.simulate(g, inferences=1, granularity=m, streaming=False)
            for m in ("burst", "mvm")]
    span = next(t1 - t0 for r, t0, t1, lab in runs[1].timeline if r == "core0")
    assert span == pytest.approx(pipeline_time(36, a, d), rel=1e-12)
    assert span == pytest.approx(a + d + 35 * max(a, d), rel=1e-12)
    assert runs[0].latency_s == pytest.approx(runs[1].latency_s, rel=1e-12)
    assert runs[1].events > 4 * 36 > runs[0].events


def residual_cnn(rng: np.random.Generator) -> Graph:
    """conv 3→64, conv 64→64 (3 row blocks: partial sums), residual add, pool, fc."""
    g = Graph((3, 8, 8), name="tiny-resnet")
    h = g.relu(g.conv2d(g.input, rng.standard_normal((64, 3, 3, 3)), padding=1, name="c0"))
    r = g.relu(g.conv2d(h, rng.standard_normal((64, 64, 3, 3)) * 0.05, padding=1, name="c1"))
    h = g.maxpool2d(g.add(h, r), 2)
    g.set_output(g.linear(g.flatten(h), rng.standard_normal((10, 64 * 16)), name="fc"))
    return g


@pytest.mark.parametrize("build,kw", [
    (residual_cnn, {}), (residual_cnn, {"replicate": "auto"}),
    (residual_cnn, {"streaming": False}), (residual_cnn, {"activations": "off-chip"}),
    (lenet5, {}), (lenet5, {"replicate": "auto"}),
    (lambda rng: lstm_model(rng, 20, 300, 4, 10), {})],
    ids=["residual-cnn", "residual-cnn-replicated", "residual-cnn-layer-by-layer",
         "residual-cnn-off-chip", "lenet5", "lenet5-replicated", "lstm"])
def test_per_mvm_and_burst_give_same_latency_and_throughput(build, kw):
    chip = mc.load_chip("hermes-64core")
    g = build(np.random.default_rng(2))
    burst = chip.simulate(g, inferences=5, granularity="burst", **kw)
    exact = chip.simulate(g, inferences=5, granularity="mvm", **kw)
    assert burst.latency_s == pytest.approx(exact.latency_s, rel=1e-9)
    assert burst.throughput_per_s == pytest.approx(exact.throughput_per_s, rel=1e-9)
    assert burst.energy_j == pytest.approx(exact.energy_j, rel=1e-9)
    assert burst.makespan_s == pytest.approx(exact.makespan_s, rel=1e-9)
    for c, u in burst.utilization.items():
        assert u == pytest.approx(exact.utilization[c], rel=1e-9)
    assert burst.events < exact.events


def test_lstm_steps_are_sequential_through_the_global_unit():
    chip = mc.load_chip("hermes-64core")
    steps = 6
    g = lstm_model(np.random.default_rng(3), 20, 300, steps, 10)
    run = chip.simulate(g, inferences=2)
    assert run.gdu_busy_s > 0
    assert run.counts["global_digital_op"] == 2 * steps * 28 * 300
    assert run.latency_s > steps * chip.config.mvm_time_s()
    gates = [lab for r, t0, t1, lab in run.timeline if r == "gdu" and "gates" in lab]
    assert len(gates) == 2 * steps
    # 8 slices, one output every 4 cycles at 400 MHz: 300 hidden units take 375 ns
    t = [t1 - t0 for r, t0, t1, lab in run.timeline if r == "gdu"]
    assert t[0] == pytest.approx(300 * 4 / (8 * 400e6))


# -- HERMES: fit on Table I row 1, validate on the others (the table is a test) --------------------
@pytest.fixture(scope="module")
def validation():
    return mc.validation_table("hermes-64core")


def test_card_holds_exactly_what_table_I_row_1_determines(validation):
    fit = validation["fit"]
    for key, value in validation["card"].items():
        assert value == pytest.approx(fit[key], rel=1e-3), key
    assert fit["phase_overhead_s"] == pytest.approx(1.0 * NS)
    assert fit["mvm_overhead_s"] == pytest.approx(4.0 * NS)
    with pytest.raises(ConfigError, match="cannot be fitted"):
        fit_hermes(mc.load_chip("hermes-64core", pwm_unit_time_s=2 * NS).config)


def test_table_I_rows_within_their_targets(validation):
    """Le Gallo et al. 2023, Table I: the fitted row reproduces (to rounding) and the deep
    ResNet-9 layer row is within ±25 % in latency and energy, 1-phase and 4-phase."""
    rows = validation["rows"]
    assert {(r["row"], r["mode"], r["quantity"]) for r in rows} == {
        (row, mode, q) for row in ("mvm-64-cores", "resnet9-deep-layer")
        for mode in ("pwm_1phase", "pwm_4phase") for q in ("latency", "energy")}
    for r in rows:
        limit = TARGETS["fit"] if r["fitted"] else TARGETS[r["row"]]
        assert abs(r["error"]) <= limit, r


def test_deep_layer_is_the_papers_mapping():
    chip = mc.load_chip("hermes-64core")
    desc = deep_layer(chip.config.tile)
    (layer,) = desc.layers
    assert layer.arrays == 8 and layer.utilization == pytest.approx(0.861, abs=1e-3)
    run = chip.simulate(desc, inferences=1, preloaded=True)
    assert run.counts.get("offchip_byte", 0) == 0  # inputs preloaded, outputs kept
    assert run.counts["noc_byte_hop"] >= 7 * 224 * 1.5  # 12-bit partial sums, 7 hops at least
    # not gated: every MVM drives the whole array (HERMES shows no saving at 86 % use)
    assert run.counts["adc_conversion_8b"] == 8 * 256
    gated = mc.load_chip("hermes-64core", gate_unused_lines=True)
    assert gated.simulate(desc, inferences=1, preloaded=True).counts["adc_conversion_8b"] \
        == 8 * 224


def test_calibration_peak_matches_the_paper():
    cal = mc.calibration_table("hermes-64core", mvms_per_core=200)
    assert cal["energy_scope"] == "analog"
    for r in cal["rows"]:
        assert abs(r["error"]) < 0.01, r
    run = mc.load_chip("hermes-64core").peak(50, encoding="pwm_4phase", granularity="mvm",
                                             post_process=False)
    assert run.tops == pytest.approx(16.1, rel=0.01) and run.events > 64 * 50


# -- ISAAC: Table IV reproduced by the completed card ----------------------------------------------
def test_isaac_ce_reproduces_its_table_IV_within_10_percent():
    cal = mc.calibration_table("isaac-chip", mvms_per_core=100)
    got = {r["quantity"]: r for r in cal["rows"]}
    assert set(got) == {"gops_per_mm2", "gops_per_w", "power_w", "area_mm2"}
    for r in cal["rows"]:
        assert abs(r["error"]) <= TARGETS["isaac"], r
    cfg = mc.load_chip("isaac-chip").config
    assert cfg.area_m2 * 1e6 == pytest.approx(85.4, rel=0.005)
    assert cfg.area_breakdown_m2()["hypertransport"] * 1e6 == pytest.approx(22.88)


def test_isaac_like_chip_card():
    chip = mc.load_chip("isaac-chip")
    cfg = chip.config
    assert cfg.cores == 2016 and cfg.weight_slices == 8 and cfg.input_scheme == "bit_serial"
    assert cfg.mvm_time_s() == pytest.approx(16 * 100 * NS)  # 16 input bits x 100 ns
    peak = chip.peak(200)
    assert peak.tops == pytest.approx(2016 * 2 * 128 * 128 / 1.6e-6 / 1e12, rel=0.01)
    assert peak.counts["adc_conversion_8b"] / (2016 * 200) == 16 * 128 * 8
    run = chip.simulate(lenet5(np.random.default_rng(0)), inferences=3)
    assert run.energy_breakdown["ADC"] > 0 and run.chip == "isaac-chip"


# -- energy = counts × table, area, per layer ------------------------------------------------------
def test_recost_with_another_table_needs_no_simulation(monkeypatch):
    chip = mc.load_chip("hermes-64core")
    run = chip.simulate(residual_cnn(np.random.default_rng(4)), inferences=4)

    def boom(*args, **kwargs):
        raise AssertionError("re-costing must not simulate")

    monkeypatch.setattr(mc, "simulate_plan", boom)
    monkeypatch.setattr("memsim.chip.sim.simulate_plan", boom)
    table = chip.energy_table
    doubled = run.recost(table.with_(adc_conversion_8b=2 * table["adc_conversion_8b"]))
    assert doubled.energy_breakdown["ADC"] == pytest.approx(2 * run.energy_breakdown["ADC"])
    for comp, e in run.energy_breakdown.items():
        if comp != "ADC":
            assert doubled.energy_breakdown[comp] == pytest.approx(e)
    no_leak = run.recost(table.with_(**{"static:ldpu": 0.0}))
    assert "ldpu (static)" not in no_leak.energy_breakdown
    assert doubled.counts == run.counts and doubled.latency_s == run.latency_s
    manual = sum(n * table[a] for a, n in run.counts.items() if n) / run.inferences
    assert run.energy_j == pytest.approx(manual)
    with pytest.raises(CardError, match="energy table 'partial' has no"):
        run.recost(table.__class__("partial", {"dac_conversion": 1e-12}))


def test_per_layer_breakdown_adds_up():
    chip = mc.load_chip("hermes-64core")
    run = chip.simulate(residual_cnn(np.random.default_rng(4)), inferences=3)
    layers = run.layers()
    assert [la["name"] for la in layers][:3] == ["c0", "c1", "fc"]
    dynamic = sum(la["energy_j"] for la in layers)
    assert dynamic + run.static_energy_j == pytest.approx(run.energy_j)
    c1 = layers[1]
    assert c1["cores"] == 3 and c1["bands"] == 8 and c1["latency_s"] > 0
    assert c1["energy_breakdown_j"]["ADC"] > 0 and 0 < c1["cell_utilization"] <= 1
    assert layers[0]["start_s"] < c1["start_s"] < layers[2]["start_s"]
    d = run.to_dict()
    assert d["layers"] == layers and d["area_mm2"] == pytest.approx(run.area_mm2)
    assert d["gops_per_mm2"] == pytest.approx(1e3 * run.tops / run.area_mm2)


def test_report_works():
    """ChipRun.report() (it used to import a module that did not exist)."""
    run = mc.load_chip("hermes-64core").simulate(lenet5(np.random.default_rng(0)),
                                                 inferences=2)
    rep = run.report()
    assert rep["network"] == run.network and set(rep) == set(run.to_dict())  # the numbers
    text = str(rep)  # ... printed as the text report
    for words in ("energy per inference", "TOPS/W", "TOPS/mm²", "Per layer", "Area by block",
                  "c1", "static"):
        assert words in text


def test_area_and_static_power_from_the_blocks():
    cfg = mc.load_chip("hermes-64core").config
    assert cfg.core_area_m2() * 1e6 == pytest.approx(0.63)
    assert cfg.area_m2 * 1e6 == pytest.approx(64 * 0.63 + 0.5 + 5.0)
    assert cfg.static_power_w() == pytest.approx(64 * 8.5e-3 + 70e-3)
    half = mc.load_chip("hermes-64core", cores=32).config
    assert half.area_m2 < cfg.area_m2 and half.static_power_w() < cfg.static_power_w()


# -- the description is the only input -------------------------------------------------------------
def test_every_form_of_the_network_gives_the_same_run():
    chip = mc.load_chip("hermes-64core")
    g = residual_cnn(np.random.default_rng(5))
    net = chip.map(g)
    desc = as_description(g, chip.config.tile)

    class Analog:  # what the analog torch models expose
        def memsim_description(self):
            return desc

    runs = [chip.simulate(x, inferences=3, record=False) for x in (g, net, desc, Analog())]
    for r in runs[1:]:
        assert r.latency_s == pytest.approx(runs[0].latency_s, rel=1e-12)
        assert r.energy_j == pytest.approx(runs[0].energy_j, rel=1e-12)
    with pytest.raises(ConfigError, match="cannot describe a int"):
        chip.simulate(3)


def test_packed_groups_run_one_mvm_per_array():
    """A depthwise layer packed block-diagonally: one MVM per input vector drives all the
    groups in its array."""
    rng = np.random.default_rng(0)
    g = Graph((40, 6, 6), "dw")
    g.set_output(g.conv2d(g.input, rng.standard_normal((40, 1, 3, 3)), padding=1, groups=40,
                          name="dw"))
    chip = mc.load_chip("hermes-64core")
    run = chip.simulate(g, inferences=1, streaming=False)
    layer = chip.describe(g).layers[0]
    assert layer.arrays == 2  # 28 groups of 9x1 per 256x256 array: 40 groups need 2
    assert len(run.placement["dw"]) == 2
    assert run.counts["mvm_overhead"] == 2 * 36  # 36 vectors on each of the 2 arrays


# -- fit, placement, replication, scenarios --------------------------------------------------------
def test_resnet9_hermes_runs_on_one_chip_with_the_papers_cores():
    chip = mc.load_chip("hermes-64core", encoding="pwm_4phase")
    g = load_network("resnet9-hermes", np.random.default_rng(0))
    run = chip.simulate(g, inferences=3, record=False)
    assert run.chips == 1 and len(run.core_busy_s) == 40
    assert [len(c) for c in run.placement.values()] == [1, 2, 4, 4, 4, 8, 8, 8, 1]
    names = [la["name"] for la in run.layers()]
    assert names[:9] == list(run.placement)
    # MVM-only floor: 4-phase analog energy per core-MVM times the core-MVMs per image
    core_mvms = sum(la.tile_mvms for la in chip.describe(g).layers)
    assert run.analog_energy_j == pytest.approx(core_mvms * 3.38e-6 / 64, rel=1e-5)
    assert run.energy_j > run.analog_energy_j + run.static_energy_j


def test_streaming_shortens_resnet9_and_off_chip_activations_cost_io():
    chip = mc.load_chip("hermes-64core")
    g = load_network("resnet9-hermes", np.random.default_rng(0))
    stream = chip.simulate(g, inferences=1, record=False)
    lbl = chip.simulate(g, inferences=1, record=False, streaming=False)
    off = chip.simulate(g, inferences=1, record=False, activations="off-chip")
    assert lbl.latency_s > 1.5 * stream.latency_s
    assert off.counts["offchip_byte"] > 10 * stream.counts["offchip_byte"]
    assert off.latency_s > stream.latency_s
    assert any("off-chip" in n for n in off.notes)


@pytest.fixture(scope="module")
def resnet9_graph():
    return load_network("resnet9-cifar10", np.random.default_rng(0))


def test_network_that_does_not_fit_is_a_clear_error(resnet9_graph):
    chip = mc.load_chip("hermes-64core")
    with pytest.raises(ConfigError, match=r"needs 117 cores .* has 64; pass "
                                          r"fit='multi-chip' \(2 chips\) or fit='reprogram'"):
        chip.simulate(resnet9_graph, inferences=2)


def test_multi_chip_mode_is_costed(resnet9_graph):
    chip = mc.load_chip("hermes-64core")
    run = chip.simulate(resnet9_graph, inferences=2, fit="multi-chip", record=False)
    assert run.chips == 2 and run.cores_available == 128
    assert len({c // 64 for cores in run.placement.values() for c in cores}) == 2
    assert run.counts["offchip_byte"] / 2 > 3 * 32 * 32 + 10
    assert run.energy_breakdown["off-chip I/O"] > 0
    assert run.area_mm2 == pytest.approx(2 * chip.config.area_m2 * 1e6)
    # both chips' blocks are powered
    assert run.counts["static:gdpu"] == pytest.approx(2 * run.makespan_s)


def test_reprogram_mode_costs_programming_time_and_energy(resnet9_graph):
    chip = mc.load_chip("hermes-64core")
    run = chip.simulate(resnet9_graph, inferences=2, fit="reprogram", record=False)
    assert len(run.segments) >= 2
    assert all(s["cores"] <= 64 for s in run.segments)
    prog = sum(s["program_time_s"] for s in run.segments)
    assert run.makespan_s == pytest.approx(prog + sum(s["run_time_s"] for s in run.segments))
    devices = sum(s["program_devices"] for s in run.segments)
    weights = as_description(resnet9_graph, chip.config.tile).total_weights
    assert devices == weights * 4  # 8T4R: 4 PCM per weight
    assert run.energy_breakdown["programming"] == pytest.approx(
        devices * chip.energy_table["program_device"] / 2)


def test_greedy_placement_keeps_communicating_layers_close():
    chip = mc.load_chip("hermes-64core")
    g = load_network("resnet32-cifar10", np.random.default_rng(0))
    hops = {p: chip.simulate(g, inferences=1, placement=p,
                             record=False).counts["noc_byte_hop"]
            for p in ("greedy", "row-major")}
    assert hops["greedy"] < hops["row-major"]


def test_steady_state_leaves_out_the_drain():
    """Completions after the last admission (the drain) do not count: here one per second
    while inferences are admitted, then two that finish at once."""
    from memsim.chip.run import steady_state

    starts = [0.0, 0.0] + [float(i) for i in range(1, 9)]
    done = [float(i) for i in range(1, 9)] + [8.1, 8.2]
    rate, warning = steady_state(starts, done, 1.0)
    assert rate == pytest.approx(1.0, rel=1e-12) and warning is None
    # all admitted at once: no steady state; the run's mean rate, and a warning that says so
    rate, warning = steady_state([0.0] * 3, [1.0, 2.0, 2.5], 1.0)
    assert rate == pytest.approx(3 / 2.5) and "no steady state" in warning
    # the inferences admitted at once are fill too: 4 at t = 0, then one per completion
    starts = [0.0] * 4 + [float(i) for i in range(1, 13)]
    done = [float(i) for i in range(1, 13)] + [12.1, 12.2, 12.3, 12.4]
    assert steady_state(starts, done, 1.0) == (pytest.approx(1.0, rel=1e-12), None)
    rate, warning = steady_state(starts[:9], [*done[:5], 5.1, 5.2, 5.3, 5.4], 1.0)
    assert rate == pytest.approx(9 / 5.4) and "at least 20 inferences" in warning
    assert steady_state([0.0], [0.25], 0.25) == (4.0, None)


def test_off_chip_throughput_is_the_steady_rate_not_the_drain():
    """Off-chip activations share the host port: when no new inference is admitted, the
    drain runs faster than the steady state. A run of 60 inferences (24 in flight) counted
    the drain and gave 3476/s, 2.2x the long-run rate (1576/s); its throughput is now the
    run's mean with a warning, and 100 inferences give the steady rate."""
    chip = mc.load_chip("hermes-64core")
    g = load_network("resnet9-hermes", np.random.default_rng(0))

    def sim(n):
        return chip.simulate(g, inferences=n, in_flight=24, activations="off-chip",
                             record=False)

    long = sim(200)
    per_s = long.inferences / long.makespan_s  # fill and drain included: slightly low
    steady = sim(100)
    assert 0.9 * per_s < steady.throughput_per_s < 1.1 * per_s and not steady.warnings
    assert 0.95 * per_s < long.throughput_per_s < 1.1 * per_s and not long.warnings
    short = sim(60)
    assert short.throughput_per_s == pytest.approx(60 / short.makespan_s, rel=1e-12)
    assert any("no steady state" in w for w in short.warnings)


def test_replicating_the_bottleneck_layer_raises_throughput():
    chip = mc.load_chip("hermes-64core")
    g = lenet5(np.random.default_rng(0))
    one = chip.simulate(g, inferences=30)  # enough for a steady state (no warning)
    auto = chip.simulate(g, inferences=30, replicate="auto")
    assert not one.warnings and not auto.warnings
    assert auto.replicas["c1"] > 1
    assert sum(len(c) for c in auto.placement.values()) <= 64
    assert auto.throughput_per_s > 2 * one.throughput_per_s
    assert auto.latency_s < one.latency_s
    assert auto.ops_per_inference == one.ops_per_inference
    manual = chip.simulate(g, inferences=2, replicate={"c1": 4})
    assert manual.replicas["c1"] == 4 and len(manual.placement["c1"]) == 4
    with pytest.raises(ConfigError, match="not a weight layer"):
        chip.simulate(g, inferences=2, replicate={"nope": 2})


def test_bad_arguments_and_geometry_are_clear_errors():
    chip = mc.load_chip("hermes-64core")
    g = lenet5(np.random.default_rng(0))
    with pytest.raises(ConfigError, match="granularity"):
        chip.simulate(g, granularity="event")
    with pytest.raises(ConfigError, match="fit"):
        chip.simulate(g, fit="shrink")
    with pytest.raises(ConfigError, match="placement"):
        chip.simulate(g, placement="random")
    with pytest.raises(ConfigError, match="activations"):
        chip.simulate(g, activations="fpga")
    with pytest.raises(ConfigError, match="inferences = 0"):
        chip.simulate(g, inferences=0)
    small = map_network(g, tile="isaac-xbar", device="rram-cmo")
    with pytest.raises(ConfigError, match="mapped on 128x128 arrays"):
        chip.simulate(small, inferences=1)


# -- overrides ----------------------------------------------------------------------------------
def test_overrides_without_copying_cards():
    g = lenet5(np.random.default_rng(0))
    base = mc.load_chip("hermes-64core")
    small = mc.load_chip("hermes-64core", cores=16, rows=128, cols=128, adc_bits=6,
                         dac_bits=6, mvm_clock_hz=2e9, ldpu_clock_hz=800e6)
    cfg = small.config
    assert (cfg.cores, cfg.tile.rows, cfg.tile.cols, cfg.tile.adc_bits) == (16, 128, 128, 6)
    assert cfg.mvm_time_s() == pytest.approx(2 ** 5 * 0.5 * NS + 1 * NS + 4 * NS)
    run = small.simulate(g, inferences=2)
    assert run.counts["adc_conversion_6b"] > 0 and run.cores_available == 16
    assert run.latency_s < base.simulate(g, inferences=2).latency_s
    mesh = mc.load_chip("hermes-64core", topology="mesh", cores=32).config
    assert (mesh.grid_rows, mesh.grid_cols) == (4, 8)
    with pytest.raises(ConfigError, match="unknown chip parameters"):
        mc.load_chip("hermes-64core", hop_latency=1e-9)
    with pytest.raises(ConfigError, match="bit-serial"):
        mc.load_chip("isaac-chip", mvm_clock_hz=1e9)
    with pytest.raises(ConfigError, match="cores = 0 is out of range"):
        mc.load_chip("hermes-64core", cores=0)


# -- cards ----------------------------------------------------------------------------------------
def _bad_card(tmp_path: Path, old: str, new: str, name: str = "bad-chip") -> Path:
    text = (ROOT / "crossbars" / "hermes-64core.toml").read_text()
    assert old in text
    p = tmp_path / f"{name}.toml"
    p.write_text(text.replace(old, new, 1))
    return p


@pytest.mark.parametrize("old,new,message", [
    ('count = { value = 64,', 'count = { value = 0,',
     r"chip card 'bad-chip': cores.count = 0 is out of range; allowed \[1, 1.04858e\+06\]"),
    ('kind = "prism"', 'kind = "torus"', r"topology.kind = 'torus' is unknown"),
    ('value = 0.4, unit = "GB/s"', 'value = 0.4, unit = "GHz"',
     r"links.bandwidth: unit 'GHz' is not a unit of data_rate"),
    ('kind = "chip"', 'kind = "tile"', r"card.kind = 'tile'; a chip card needs 'chip'"),
    ('tile = "hermes-core"', 'tile = "hermes-cor"', r"card.tile = 'hermes-cor'"),
    ('hop_latency = { value = 5.0, unit = "ns", source', 'hop_latency = { value = 5.0, '
     'unit = "ns", sauce', r"links.hop_latency has unknown keys \['sauce'\]"),
    ('[timing]', '[timings]', r"unknown sections \['timings'\]"),
    ('\ngate_unused_lines = false', '\n', r"\[cores\] is missing \['gate_unused_lines'\]"),
    ('\ngate_unused_lines = false', '\ngate_unused_lines = 0', r"must be true or false"),
    ('per = "chip"', 'per = "tile"', r"components.gdpu.per = 'tile'"),
    ('area = { value = 0.5, unit = "mm2"', 'area = { value = 0.5, unit = "mm"',
     r"unit 'mm' is not a unit of area"),
    ('[components.router]', '[components.router]\nvolume = 1', r"unknown fields \['volume'\]"),
    ('8 = { value = 42.716,', '88 = { value = 42.716,', r"adc_conversion.88: the key must be"),
    ('mvm_overhead = { value = 0.3125, unit = "nJ"', 'mvm_overheads = { value = 0.3125, '
     'unit = "nJ"', r"\[energy\] has unknown fields \['mvm_overheads'\]"),
])
def test_bad_chip_cards_fail_clearly(tmp_path, old, new, message):
    with pytest.raises(CardError, match=message):
        mc.load_chip(_bad_card(tmp_path, old, new))


def test_missing_adc_width_and_unknown_cards(tmp_path):
    with pytest.raises(CardError, match="no entry for the tile's 8-bit ADC"):
        mc.load_chip(_bad_card(tmp_path, '8 = { value = 42.716,', '11 = { value = 42.716,'))
    with pytest.raises(CardError, match="unknown crossbars card"):
        mc.load_chip("hermes-64cor")
    with pytest.raises(CardError, match="a chip card needs 'chip'"):
        mc.load_chip("hermes-core")


def test_every_chip_and_digital_card_number_has_unit_and_source():
    import tomllib

    for name in mc.list_chips("chip") + mc.list_chips("digital"):
        data = tomllib.loads((ROOT / "crossbars" / f"{name}.toml").read_text())

        def walk(node, path):
            if isinstance(node, dict) and "value" in node:
                assert {"value", "unit", "source"} <= set(node), path
                assert node["source"].strip(), path
                return
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, f"{path}.{k}")
            else:
                assert not isinstance(node, int | float) or isinstance(node, bool), path

        walk(data, name)
    assert set(mc.list_chips("chip")) >= {"hermes-64core", "isaac-chip"}
    assert set(mc.list_chips("digital")) >= {"digital-gpu", "digital-cpu"}


def test_assumptions_say_so():
    """Every value of the HERMES card that is not from a paper says it is an assumption or
    an estimate, or how it was derived."""
    import tomllib

    data = tomllib.loads((ROOT / "crossbars" / "hermes-64core.toml").read_text())

    def walk(node):
        if isinstance(node, dict) and "source" in node:
            yield node["source"]
        elif isinstance(node, dict):
            for v in node.values():
                yield from walk(v)

    for src in walk(data):
        assert any(w in src for w in ("[LG23]", "[KA22]", "[IS16]", "[H14]", "assumption",
                                      "estimate", "fit on", "derived")), src


# -- digital baseline -----------------------------------------------------------------------------
def test_digital_baseline_is_a_roofline_by_hand():
    eng = mc.load_digital_config("digital-gpu")
    g = Graph((256,), name="one")
    g.set_output(g.linear(g.input, np.ones((128, 256)), name="fc"))
    est = eng.estimate(g)
    flops = 2 * 256 * 128
    nbytes = (256 * 128 + 256 + 128) * 2
    t = max(flops / (312e12 * 0.3), nbytes / 1555e9) + 5e-6
    assert est.latency_s == pytest.approx(t)
    assert est.energy_j == pytest.approx(flops * 1.12e-12 + nbytes * 162.5e-12 + 50 * t)
    batch = eng.estimate(g, batch=8)
    assert batch.throughput_per_s > 7 * est.throughput_per_s
    net = load_network("resnet9-cifar10", np.random.default_rng(0))
    gpu, cpu = eng.estimate(net), mc.load_digital_config("digital-cpu").estimate(net)
    assert gpu.latency_s < cpu.latency_s and gpu.energy_j < cpu.energy_j
    assert gpu.flops_per_inference == pytest.approx(cpu.flops_per_inference)
    desc = as_description(net, mc.load_chip("hermes-64core").config.tile)
    assert eng.estimate(desc).energy_j == pytest.approx(gpu.energy_j)


def test_bad_digital_card(tmp_path):
    text = (ROOT / "crossbars" / "digital-gpu.toml").read_text()
    p = tmp_path / "bad-gpu.toml"
    p.write_text(text.replace("efficiency = { value = 0.3,", "efficiency = { value = 1.5,"))
    with pytest.raises(CardError, match=r"compute.efficiency = 1.5 is out of range; allowed "
                                        r"\(0, 1\]"):
        mc.load_digital_config(p)
    with pytest.raises(CardError, match="needs 'digital'"):
        mc.load_digital_config("hermes-64core")


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_json_parses(capsys):
    assert cli(["chip", "--network", "lenet5", "--inferences", "5", "--json",
                "--no-figures"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("latency_s", "throughput_per_s", "energy_j", "energy_breakdown_j", "tops",
                "tops_per_w", "core_utilization", "digital", "layers", "area_mm2",
                "gops_per_mm2"):
        assert key in data
    assert data["network"] == "lenet5" and data["inferences"] == 5
    assert math.isclose(sum(data["energy_breakdown_j"].values()), data["energy_j"])
    assert [d["engine"] for d in data["digital"]] == ["digital-gpu", "digital-cpu"]
    assert cli(["chip", "--calibrate", "--json", "--mvms", "100"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert [r["mode"] for r in cal["rows"]][:2] == ["pwm_1phase", "pwm_1phase"]


def test_cli_validate_prints_the_table(capsys):
    assert cli(["chip", "--validate"]) == 0
    out = capsys.readouterr().out
    for words in ("Table I", "resnet9-deep-layer", "mvm-64-cores", "fitted", "±25 %",
                  "1.131 µs", "970 nJ"):
        assert words in out
    assert cli(["chip", "--validate", "--chip", "isaac-chip"]) == 0
    assert "gops_per_w" in capsys.readouterr().out


def test_cli_report_figures_and_overrides(capsys, tmp_path):
    assert cli(["chip", "--network", "lenet5", "--inferences", "4", "--out", str(tmp_path),
                "--cores", "16", "--adc-bits", "6"]) == 0
    out = capsys.readouterr().out
    assert "energy per inference" in out and "TOPS/W" in out and "digital-gpu" in out
    assert "Per layer" in out and "0 / 16" not in out and "/ 16" in out
    for name in ("timeline.png", "energy.png", "layers.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_resnet9_hermes_defaults_to_the_papers_4_phase(capsys):
    assert cli(["chip", "--network", "resnet9-hermes", "--no-figures", "--digital", "none",
                "--inferences", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert "runs in pwm_4phase as in its paper" in captured.err
    data = json.loads(captured.out)
    assert data["options"]["encoding"] == "pwm_4phase" and data["chips"] == 1
    assert [la["cores"] for la in data["layers"]][:9] == [1, 2, 4, 4, 4, 8, 8, 8, 1]


def test_cli_does_not_fit_message(capsys):
    with pytest.raises(ConfigError, match="fit='multi-chip'"):
        cli(["chip", "--network", "resnet9-cifar10", "--no-figures", "--digital", "none",
             "--fit", "error"])


def test_cli_default_fit_says_it_uses_several_chips(capsys):
    cli(["chip", "--network", "resnet9-cifar10", "--no-figures", "--digital", "none",
         "--inferences", "2", "--json", "--layer-by-layer"])
    captured = capsys.readouterr()
    assert "needs 117 cores but hermes-64core has 64: simulating 2 chips" in captured.err
    assert json.loads(captured.out)["chips"] == 2


@pytest.mark.slow
def test_resnet9_hundred_inferences_two_chips():
    chip = mc.load_chip("hermes-64core")
    g = load_network("resnet9-cifar10", np.random.default_rng(0))
    run = chip.simulate(g, inferences=100, fit="multi-chip", record=False)
    assert run.throughput_per_s > 1000 and run.tops_per_w > 0.1


def test_array_read_energy_follows_the_input_window():
    """PWM inputs: the array conducts for 2^(b-1) unit times, so fewer DAC bits read with
    proportionally less array energy (the card's value is for its own 8-bit tile)."""
    rng = np.random.default_rng(0)
    g = Graph((64,), "mlp")
    g.set_output(g.linear(g.relu(g.linear(g.input, rng.standard_normal((32, 64)))),
                          rng.standard_normal((10, 32))))
    chip = mc.load_chip("hermes-64core")
    arr = {b: chip.simulate(map_network(g, tile="hermes-core", device="ideal", dac_bits=b),
                            inferences=2).energy_breakdown["array"] for b in (8, 6)}
    assert arr[6] == pytest.approx(arr[8] * 2**5 / 2**7, rel=1e-9)


def test_studies_override_chip_parameters():
    """A study point can change the chip (cores, clocks, schedule) without a card copy."""
    from memsim.studies.evaluate import evaluate_point

    base = {"workload": "lenet5", "chip": "hermes-64core", "tile": "hermes-core",
            "device": "pcm-hermes-2dev", "measure_accuracy": False, "inferences": 3,
            "digital": []}
    ref = evaluate_point(base, 0)
    fast = evaluate_point({**base, "ldpu_clock_hz": 1.6e9, "mvm_clock_hz": 2e9}, 0)
    few = evaluate_point({**base, "cores": 16}, 0)
    lbl = evaluate_point({**base, "streaming": False}, 0)
    assert fast["latency_s"] < ref["latency_s"]
    assert few["energy_j"] < ref["energy_j"]  # fewer powered blocks
    assert lbl["latency_s"] > ref["latency_s"]
    with pytest.raises(ValueError, match="unknown study parameters"):
        evaluate_point({**base, "core_count": 16}, 0)


def test_studies_leave_a_throughput_without_steady_state_unmeasured():
    """3 inferences of LeNet-5 (7 in flight by default) never reach a steady state: the
    study stores no throughput (null with the reason), not the drain's rate."""
    from memsim.studies.evaluate import evaluate_point
    from memsim.studies.runner import NoValue

    base = {"workload": "lenet5", "chip": "hermes-64core", "tile": "hermes-core",
            "device": "pcm-hermes-2dev", "measure_accuracy": False, "digital": []}
    few = evaluate_point({**base, "inferences": 3}, 0)
    assert isinstance(few["throughput_per_s"], NoValue) and isinstance(few["tops"], NoValue)
    assert "no steady state" in few["throughput_per_s"].reason
    assert few["energy_j"] > 0 and few["latency_s"] > 0
    enough = evaluate_point({**base, "inferences": 30}, 0)
    assert enough["throughput_per_s"] > 0 and enough["tops"] > 0


def test_memory_wall_splits_add_up(capsys):
    """Issue 14: the digital engines' energy split into arithmetic and bytes moved (SRAM,
    DRAM weights, DRAM activations; Horowitz ISSCC 2014), beside the chip's split."""
    from memsim.chip.wall import chip_split, format_wall, wall_table

    eng = mc.load_digital_config("digital-gpu")
    g = lenet5(np.random.default_rng(0))
    est = eng.estimate(g)
    assert sum(est.wall_breakdown.values()) == pytest.approx(est.energy_j)
    flops = est.flops_per_inference
    assert est.wall_breakdown["arithmetic"] == pytest.approx(flops * 0.75e-12)
    weights = sum(la.weights for la in as_description(g, mc.load_chip(
        "hermes-64core").config.tile).layers)
    assert est.traffic["dram_weight_bytes"] == pytest.approx(2 * weights)
    assert est.wall_breakdown["DRAM weights"] == pytest.approx(2 * weights * 162.5e-12)
    run = mc.load_chip("hermes-64core").simulate(g, inferences=2)
    assert sum(chip_split(run).values()) == pytest.approx(run.energy_j)
    d = wall_table(["digits-mlp", "lenet5"], inferences=2)
    assert len(d["rows"]) == 6
    text = format_wall(d)
    assert "On the GPU, moving bytes takes: digits-mlp" in text and "Assumptions:" in text
    assert "162.5 pJ/B" in text


def test_memory_wall_covers_trained_workloads():
    """Issue 14 item 5, every workload: trained torch workloads without a Graph (a KAN, the
    transformer) go through their recorded description; finite energies, byte shares in
    [0, 1], and the digital engines' FLOPs count at least the weights' multiply-adds."""
    from memsim.chip.wall import all_networks, wall_network, wall_table

    d = wall_table(["digits-kan", "digits-transformer"], inferences=2)
    assert [(r["network"], r["engine"]) for r in d["rows"]] == [
        (n, e) for n in ("digits-kan", "digits-transformer")
        for e in ("digital-gpu", "digital-cpu", "hermes-64core")]
    for r in d["rows"]:
        assert math.isfinite(r["energy_j"]) and r["energy_j"] > 0
        assert 0.0 <= r["moving_share"] <= 1.0
        assert sum(r["split_j"].values()) == pytest.approx(r["energy_j"])
    chip = mc.load_chip("hermes-64core")
    desc = chip.describe(wall_network("digits-kan", chip.config.tile))
    est = mc.load_digital_config("digital-gpu").estimate(desc)
    weights = sum(la.weights for la in desc.layers)
    assert weights == 10_656  # 64-16-10 KAN: base and spline matrices
    assert est.flops_per_inference > 2 * weights  # + the digital B-spline basis and adds
    assert est.traffic["dram_weight_bytes"] == pytest.approx(2 * weights)
    for name in ("resnet50", "alexnet-torchvision", "mnist-mlp", "mnist-lenet5", "digits-kan",
                 "mnist-kan", "digits-transformer"):
        assert name in all_networks()
    with pytest.raises(ConfigError, match=r"unknown network 'nope'; known: .*digits-kan"):
        wall_table(["digits-mlp", "nope"])


def test_cli_wall(capsys, tmp_path):
    from memsim.cli import main

    assert main(["wall", "digits-mlp", "--json", "--out", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [r["engine"] for r in d["rows"]] == ["digital-gpu", "digital-cpu", "hermes-64core"]
    assert (tmp_path / "wall.png").read_bytes()[:4] == b"\x89PNG"


def test_streaming_needs_the_convolutions_geometry():
    """A description without stride/padding cannot tell which rows a vector needs: the
    layer waits for whole inputs (said in the notes), never a guessed schedule."""
    import dataclasses

    chip = mc.load_chip("hermes-64core")
    rng = np.random.default_rng(0)
    g = Graph((1, 8, 8), name="two-conv")
    h = g.conv2d(g.input, rng.standard_normal((16, 1, 3, 3)), padding=1, name="c1")
    g.set_output(g.conv2d(h, rng.standard_normal((16, 16, 3, 3)), padding=1, name="c2"))
    desc = chip.describe(g)
    c2 = desc.nodes["c2"]
    bare = dataclasses.replace(c2, attrs={k: v for k, v in c2.attrs.items()
                                          if k not in ("stride", "padding")})
    blind = dataclasses.replace(desc, nodes={**desc.nodes, "c2": bare})
    full = chip.simulate(desc, inferences=1)
    run = chip.simulate(blind, inferences=1)
    assert any("no stride/padding" in n for n in run.notes)
    c1_end = max(t1 for r, t0, t1, lab in run.timeline if lab.startswith("c1"))
    c2_start = min(t0 for r, t0, t1, lab in run.timeline if lab.startswith("c2"))
    assert c2_start > c1_end and run.latency_s > full.latency_s


def test_a_network_without_weight_layers_is_refused_with_a_clear_error():
    """Before: TOPS = nan, TOPS/W = inf and 0 J, silently."""
    g = memsim.Graph((4,))
    g.set_output(g.relu(g.input))
    with pytest.raises(memsim.InputError, match="no weight layers"):
        memsim.load_chip("hermes-64core").simulate(g)


def test_digital_engines_count_batch_norms_folded_whatever_path_describes_the_network():
    """The study (map_network) folds batch norms; memsim wall and memsim chip described the
    Graph with them as layers of their own, and gave ResNet-50 95.9 mJ on the GPU-class card
    against the study's 74.0 mJ. Both now count the network as deployed."""
    import numpy as np

    from memsim.chip.wall import wall_network
    from memsim.crossbar import load_tile_config
    from memsim.workloads import load_workload

    gpu = memsim.chip.load_digital_config("digital-gpu")
    graph = load_workload("resnet32-cifar10", np.random.default_rng(0))
    assert any(n.op == "batchnorm" for n in graph.nodes.values())
    folded = gpu.estimate(graph.fold_batchnorm()).energy_j
    mapped = memsim.map_network(graph, tile="hermes-core", device="ideal")
    assert gpu.estimate(graph).energy_j == pytest.approx(folded, rel=1e-12)
    assert gpu.estimate(mapped).energy_j == pytest.approx(folded, rel=1e-12)
    tile = load_tile_config("hermes-core")
    unfolded = memsim.load_chip("hermes-64core").describe(wall_network("resnet32-cifar10", tile))
    assert any(n.op == "batchnorm" for n in unfolded.nodes.values())
    assert gpu.estimate(unfolded).energy_j == pytest.approx(folded, rel=1e-12)


def test_off_chip_activations_move_the_pooling_off_the_bottleneck_core():
    """Why off-chip activations run ResNet-9 faster on hermes-64core: on chip, layer1's
    max-pool (112x32x32 inputs, one per 2.5 ns cycle of the 400 MHz local unit) is timed on
    layer1's home core, the busiest core; off chip it runs on the host, which is not timed."""
    chip = mc.load_chip("hermes-64core")
    g = load_network("resnet9-hermes", np.random.default_rng(0))
    on = chip.plan(g)
    off = chip.plan(g, activations="off-chip")
    home = on.placement["layer1"][-1]
    pool = sum(e.chain_time_s for e in on.entities if e.core == home)
    assert pool == pytest.approx(112 * 32 * 32 / 400e6, rel=1e-12)
    assert sum(e.chain_time_s for e in off.entities if e.kind == "A") == 0.0
    run_on = chip.simulate(g, inferences=20, record=False)
    assert max(run_on.core_busy_s, key=run_on.core_busy_s.get) == home
