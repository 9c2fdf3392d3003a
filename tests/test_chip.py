"""The chip: exact timelines of tiny scenarios, per-MVM vs burst events, HERMES calibration,
energy = counts × table (re-costing), placement, fit modes, cards, digital baseline, CLI."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

import memsim.chip as mc
from memsim.cards import CardError
from memsim.chip.cli import add_parser
from memsim.chip.plan import pipeline_time
from memsim.mapping import Graph, map_network
from memsim.workloads.shapes import lenet5, load_network, lstm_model

ROOT = Path(__file__).resolve().parent.parent
NS = 1e-9


def two_layer_graph(rng: np.random.Generator) -> Graph:
    g = Graph((256,), name="two-layer")
    h = g.relu(g.linear(g.input, rng.standard_normal((256, 256)), name="fc0"), name="act0")
    g.set_output(g.linear(h, rng.standard_normal((256, 256)), name="fc1"))
    return g


def round_chip(**changes) -> mc.Chip:
    """HERMES with round numbers: a 128 ns MVM (8-bit PWM, 1 ns unit, no overheads), a
    256-lane local digital unit (1 ns per 256 ops), 2 ns hops, 1 ns per 256 B on a link,
    10 ns off-chip latency and 10 ns per 256 B off chip."""
    base = dict(phase_overhead_s=0.0, mvm_overhead_s=0.0, ldpu_lanes=256,
                link_bandwidth_Bps=256e9, hop_latency_s=2 * NS, io_latency_s=10 * NS,
                io_bandwidth_Bps=25.6e9)
    base.update(changes)
    return mc.load_chip("hermes-64core", **base)


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="memsim")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


# -- exact timelines ------------------------------------------------------------------------------
@pytest.mark.parametrize("granularity", ["burst", "mvm"])
def test_two_layers_on_two_cores_hand_computed_timeline(granularity):
    """fc0 (relu fused) on core 0, fc1 on core 1, 3 inferences admitted at t = 0.

    input  I/O port: 10 ns latency + 256 B / 25.6 GB/s = 20 ns, one at a time
    fc0:   128 ns MVM + 3 ns post-processing (affine 2 + relu 1 op × 256 / 256 lanes) = 131
    hop:   core 0 → core 1, 2 ns + 1 ns = 3 ns
    fc1:   128 + 2 = 130 ns
    output core 1 → (0,0) → port: 2 + 10 ns latency + 10 ns transfer = 22 ns
    """
    chip = round_chip()
    net = chip.map(two_layer_graph(np.random.default_rng(0)))
    run = chip.simulate(net, inferences=3, granularity=granularity)
    assert run.placement == {"fc0": [0], "fc1": [1]}
    expected = [("core0", 20, 151, "fc0 i0"), ("core0", 151, 282, "fc0 i1"),
                ("core1", 154, 284, "fc1 i0"), ("core0", 282, 413, "fc0 i2"),
                ("core1", 285, 415, "fc1 i1"), ("core1", 416, 546, "fc1 i2")]
    got = [(r, round(t0 / NS, 9), round(t1 / NS, 9), lab) for r, t0, t1, lab in run.timeline]
    assert got == expected
    ins = [(round(t0 / NS, 9), round(t2 / NS, 9)) for s, d, t0, t1, t2, lab in run.transfers
           if s == "io0"]
    assert ins == [(0, 20), (0, 40), (0, 60)]  # queued on the off-chip port
    outs = [round(t2 / NS, 9) for s, d, t0, t1, t2, lab in run.transfers if d == "io0"]
    assert outs == [306, 437, 568]
    assert run.latency_s == pytest.approx(306 * NS, rel=1e-12)
    assert 1 / run.throughput_per_s == pytest.approx(131 * NS, rel=1e-12)  # fc0 bounds it
    assert run.utilization[0] == pytest.approx(3 * 131 / 568, rel=1e-12)
    # action counts per inference, by hand
    per = {k: v / 3 for k, v in run.counts.items() if v}
    assert per["dac_conversion"] == 2 * 256
    assert per["array_cell_read"] == 2 * 256 * 256
    assert per["adc_conversion_8b"] == 2 * 256
    assert per["local_digital_op"] == 256 * 3 + 256 * 2
    assert per["noc_byte_hop"] == 256 + 256  # core0→core1, core1→(0,0)
    assert per["offchip_byte"] == 256 + 256
    # buffers: 2 MVMs × (256 in + 256 out), messages written/read at each end
    assert per["buffer_byte"] == 2 * 512 + 256 + 2 * 256 + 256
    ops = 2 * 2 * 256 * 256
    assert run.ops_per_inference == ops
    assert run.tops_per_w == pytest.approx(ops / run.energy_j / 1e12)


@pytest.mark.parametrize("granularity", ["burst", "mvm"])
def test_partial_sums_of_two_row_blocks_hand_computed_timeline(granularity):
    """A 512 → 256 layer: two row blocks on cores 0 (home) and 1. Each gets 256 B of input
    through the off-chip port (core 0: 10 + 10 ns; core 1: 2 ns hop + 10 + 10 ns, after the
    first); each runs one 128 ns MVM + 2 ns affine; core 1's 512 B of 16-bit partial sums
    reach core 0 after 2 + 2 ns; core 0 adds them (1 ns) and sends 256 B out (20 ns)."""
    chip = round_chip()
    g = Graph((512,), name="split")
    g.set_output(g.linear(g.input, np.ones((256, 512)), name="fc"))
    run = chip.simulate(chip.map(g), inferences=1, granularity=granularity)
    assert run.placement == {"fc": [0, 1]}
    got = [(r, round(t0 / NS, 9), round(t1 / NS, 9), lab) for r, t0, t1, lab in run.timeline]
    assert got == [("core0", 20, 150, "fc i0"), ("core1", 42, 172, "fc i0"),
                   ("core0", 176, 177, "fc i0")]
    assert run.latency_s == pytest.approx(197 * NS, rel=1e-12)
    assert run.counts["local_digital_op"] == 2 * 256 * 2 + 256


def test_mvm_pipeline_closed_form_matches_per_mvm_events():
    """A single layer of n MVMs: array a per MVM, local digital unit d per MVM. When the
    digital unit is the slower stage (d > a) both modes give a + d + (n − 1)·d."""
    rng = np.random.default_rng(1)
    g = Graph((1, 6, 6), name="conv")
    g.set_output(g.conv2d(g.input, rng.standard_normal((256, 1, 1, 1)), name="conv"))
    for lanes, slower in ((256, "array"), (2, "digital")):
        chip = round_chip(ldpu_lanes=lanes)
        net = chip.map(g)
        a = 128 * NS
        d = 256 * 2 / lanes * NS
        assert (d > a) == (slower == "digital")
        runs = [chip.simulate(net, inferences=1, granularity=m) for m in ("burst", "mvm")]
        mvm_span = next(t1 - t0 for r, t0, t1, lab in runs[1].timeline if r == "core0")
        assert mvm_span == pytest.approx(pipeline_time(36, a, d), rel=1e-12)
        assert mvm_span == pytest.approx(a + d + 35 * max(a, d), rel=1e-12)
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


@pytest.mark.parametrize("build,replicate", [
    (residual_cnn, None), (residual_cnn, "auto"), (lenet5, None), (lenet5, "auto"),
    (lambda rng: lstm_model(rng, 20, 300, 4, 10), None)],
    ids=["residual-cnn", "residual-cnn-replicated", "lenet5", "lenet5-replicated", "lstm"])
def test_per_mvm_and_burst_give_same_latency_and_throughput(build, replicate):
    chip = mc.load_chip("hermes-64core")
    net = chip.map(build(np.random.default_rng(2)))
    burst = chip.simulate(net, inferences=5, granularity="burst", replicate=replicate)
    exact = chip.simulate(net, inferences=5, granularity="mvm", replicate=replicate)
    assert burst.latency_s == pytest.approx(exact.latency_s, rel=1e-9)
    assert burst.throughput_per_s == pytest.approx(exact.throughput_per_s, rel=1e-9)
    assert burst.energy_j == pytest.approx(exact.energy_j, rel=1e-12)
    assert burst.makespan_s == pytest.approx(exact.makespan_s, rel=1e-9)
    for c, u in burst.utilization.items():
        assert u == pytest.approx(exact.utilization[c], rel=1e-9)
    assert burst.events < exact.events


def test_lstm_steps_are_sequential_through_the_global_unit():
    chip = mc.load_chip("hermes-64core")
    steps = 6
    net = chip.map(lstm_model(np.random.default_rng(3), 20, 300, steps, 10))
    run = chip.simulate(net, inferences=2)
    assert run.gdu_busy_s > 0
    assert run.counts["global_digital_op"] == 2 * steps * 28 * 300
    assert run.latency_s > steps * chip.config.mvm_time_s()
    # one MVM per time step on every block of the LSTM matrix (320 x 1200: 2 x 5 blocks)
    gates = [lab for r, t0, t1, lab in run.timeline if r == "gdu" and "gates" in lab]
    assert len(gates) == 2 * steps


# -- calibration ----------------------------------------------------------------------------------
def test_calibration_reproduces_hermes_within_5_percent():
    rows = mc.calibration_table("hermes-64core", mvms_per_core=1000)
    for r in rows:
        assert abs(r["tops_error"]) < 0.05, r
        assert abs(r["tops_per_w_error"]) < 0.05, r
        assert r["events"] > 64  # simulated: one job per core, not a formula
    one, four = rows
    assert one["mode"] == "pwm_1phase" and four["mode"] == "pwm_4phase"
    # 4-phase: four conversions, four PWM windows
    assert four["energy_breakdown_j"]["ADC"] == pytest.approx(4 * one["energy_breakdown_j"]
                                                              ["ADC"])
    # the components add up to the measured MVM energy (13.4 nJ, derived from the paper)
    assert sum(one["energy_breakdown_j"].values()) == pytest.approx(13.43e-9, rel=0.01)


def test_calibration_holds_with_per_mvm_events():
    chip = mc.load_chip("hermes-64core")
    for enc, ref in mc.HERMES_REFERENCE.items():
        run = chip.peak(50, encoding=enc, granularity="mvm")
        assert run.tops == pytest.approx(ref["tops"], rel=0.05)
        assert run.tops_per_w == pytest.approx(ref["tops_per_w"], rel=0.05)
        assert run.events > 64 * 50


def test_chip_timing_matches_the_tile_cards_derived_figures():
    chip = mc.load_chip("hermes-64core")
    tile = chip.config.tile
    assert chip.config.mvm_time_s() == pytest.approx(tile.mvm_time_s, rel=0.005)
    run = chip.peak(100)
    assert run.energy_j / (100 * 64) == pytest.approx(tile.mvm_energy_j, rel=0.005)


# -- energy = counts × table ----------------------------------------------------------------------
def test_recost_with_another_table_needs_no_simulation(monkeypatch):
    chip = mc.load_chip("hermes-64core")
    net = chip.map(residual_cnn(np.random.default_rng(4)))
    run = chip.simulate(net, inferences=4)

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
    assert doubled.counts == run.counts and doubled.latency_s == run.latency_s
    isaac = run.recost(mc.load_energy_table("isaac-chip"))
    assert isaac.energy_j < run.energy_j  # ISAAC's 1.67 pJ ADC against HERMES' CCO ADC
    manual = sum(n * isaac.table[a] for a, n in run.counts.items() if n) / run.inferences
    assert isaac.energy_j == pytest.approx(manual)
    with pytest.raises(CardError, match="energy table 'partial' has no"):
        run.recost(table.__class__("partial", {"dac_conversion": 1e-12}))


# -- fit, placement, replication ------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet9_net():
    chip = mc.load_chip("hermes-64core")
    return chip.map(load_network("resnet9-cifar10", np.random.default_rng(0)))


def test_network_that_does_not_fit_is_a_clear_error(resnet9_net):
    chip = mc.load_chip("hermes-64core")
    with pytest.raises(ValueError, match=r"needs 111 cores .* has 64; pass "
                                         r"fit='multi-chip' \(2 chips\) or fit='reprogram'"):
        chip.simulate(resnet9_net, inferences=2)


def test_multi_chip_mode_is_costed(resnet9_net):
    chip = mc.load_chip("hermes-64core")
    run = chip.simulate(resnet9_net, inferences=3, fit="multi-chip")
    assert run.chips == 2 and run.cores_available == 128
    assert len({c // 64 for cores in run.placement.values() for c in cores}) == 2
    # inter-chip traffic goes through the off-chip ports (more than inputs + outputs)
    assert run.counts["offchip_byte"] / 3 > 3 * 32 * 32 + 10
    assert run.energy_breakdown["off-chip I/O"] > 0


def test_reprogram_mode_costs_programming_time_and_energy(resnet9_net):
    chip = mc.load_chip("hermes-64core")
    run = chip.simulate(resnet9_net, inferences=2, fit="reprogram")
    assert len(run.segments) >= 2
    assert all(s["cores"] <= 64 for s in run.segments)
    prog = sum(s["program_time_s"] for s in run.segments)
    assert run.makespan_s == pytest.approx(prog + sum(s["run_time_s"] for s in run.segments))
    devices = sum(s["program_devices"] for s in run.segments)
    assert devices == resnet9_net.report()["total_weights"] * 4  # 8T4R: 4 PCM per weight
    assert run.energy_breakdown["programming"] == pytest.approx(
        devices * chip.energy_table["program_device"] / 2)


def test_greedy_placement_keeps_communicating_layers_close():
    chip = mc.load_chip("hermes-64core")
    net = chip.map(load_network("resnet32-cifar10", np.random.default_rng(0)))
    hops = {p: chip.simulate(net, inferences=1, placement=p).counts["noc_byte_hop"]
            for p in ("greedy", "row-major")}
    assert hops["greedy"] < hops["row-major"]


def test_replicating_the_bottleneck_layer_raises_throughput():
    chip = mc.load_chip("hermes-64core")
    net = chip.map(lenet5(np.random.default_rng(0)))
    one = chip.simulate(net, inferences=8)
    auto = chip.simulate(net, inferences=8, replicate="auto")
    assert auto.replicas["c1"] > 1
    assert sum(len(c) for c in auto.placement.values()) <= 64
    assert auto.throughput_per_s > 2 * one.throughput_per_s
    assert auto.latency_s < one.latency_s
    # copies share the MVMs: same work, same counts
    assert auto.ops_per_inference == one.ops_per_inference
    manual = chip.simulate(net, inferences=2, replicate={"c1": 4})
    assert manual.replicas["c1"] == 4 and len(manual.placement["c1"]) == 4
    with pytest.raises(ValueError, match="not a weight layer"):
        chip.simulate(net, inferences=2, replicate={"nope": 2})


def test_bad_arguments_and_geometry_are_clear_errors():
    chip = mc.load_chip("hermes-64core")
    net = chip.map(lenet5(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="granularity"):
        chip.simulate(net, granularity="event")
    with pytest.raises(ValueError, match="fit"):
        chip.simulate(net, fit="shrink")
    with pytest.raises(ValueError, match="placement"):
        chip.simulate(net, placement="random")
    small = map_network(lenet5(np.random.default_rng(0)), tile="isaac-xbar", device="rram-cmo")
    with pytest.raises(ValueError, match="mapped on 128x128 tiles"):
        chip.simulate(small, inferences=1)


# -- the ISAAC-like card: the cards generalise ----------------------------------------------------
def test_isaac_like_chip_card():
    chip = mc.load_chip("isaac-chip")
    cfg = chip.config
    assert cfg.cores == 2016 and cfg.weight_slices == 8 and cfg.input_scheme == "bit_serial"
    assert cfg.mvm_time_s() == pytest.approx(16 * 100 * NS)  # 16 input bits x 100 ns
    peak = chip.peak(200)  # + one shift-and-add tail of 1.6 µs
    assert peak.tops == pytest.approx(2016 * 2 * 128 * 128 / 1.6e-6 / 1e12, rel=0.01)
    conv = peak.counts["adc_conversion_8b"] / (2016 * 200)
    assert conv == 16 * 128 * 8  # bit cycles x columns x slices
    net = chip.map(lenet5(np.random.default_rng(0)))
    run = chip.simulate(net, inferences=3)
    assert run.energy_breakdown["ADC"] > 0 and run.chip == "isaac-chip"


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
    ('grid_rows = { value = 8,', 'grid_rows = { value = 4,',
     r"grid_rows × grid_cols = 32 is out of range; allowed = cores \(64\)"),
    ('value = 32.0, unit = "GB/s"', 'value = 32.0, unit = "GHz"',
     r"network.link_bandwidth: unit 'GHz' is not a unit of data_rate"),
    ('kind = "chip"', 'kind = "tile"', r"card.kind = 'tile'; a chip card needs 'chip'"),
    ('tile = "hermes-core"', 'tile = "hermes-cor"', r"card.tile = 'hermes-cor'"),
    ('hop_latency = { value = 2.0, unit = "ns", source', 'hop_latency = { value = 2.0, '
     'unit = "ns", sauce', r"network.hop_latency has unknown keys \['sauce'\]"),
    ('static_power_per_core = { value = 0.0, unit = "W", source = "memsim assumption: leakage '
     'is inside the measured full-load MVM energy of [LG23]" }', '',
     r"\[energy\] is missing \['static_power_per_core'\]"),
    ('[timing]', '[timings]', r"unknown sections \['timings'\]"),
    ('count = { value = 64, unit = "1", source = "[LG23]: 64 AIMC cores" }', '',
     r"chip card 'bad-chip': cores.count is missing"),
    ('[buffers]', '[buffers]\n[extra]', r"unknown sections \['extra'\]"),
    ('8 = { value = 42.27,', '88 = { value = 42.27,', r"adc_conversion.88: the key must be"),
])
def test_bad_chip_cards_fail_clearly(tmp_path, old, new, message):
    with pytest.raises(CardError, match=message):
        mc.load_chip(_bad_card(tmp_path, old, new))


def test_missing_adc_width_and_unknown_overrides(tmp_path):
    with pytest.raises(CardError, match="no entry for the tile's 8-bit ADC"):
        mc.load_chip(_bad_card(tmp_path, '8 = { value = 42.27,', '11 = { value = 42.27,'))
    with pytest.raises(CardError, match="unknown chip parameters"):
        mc.load_chip("hermes-64core", hop_latency=1e-9)
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


# -- digital baseline -----------------------------------------------------------------------------
def test_digital_baseline_is_a_roofline_by_hand():
    eng = mc.load_digital("digital-gpu")
    g = Graph((256,), name="one")
    g.set_output(g.linear(g.input, np.ones((128, 256)), name="fc"))
    est = eng.estimate(g)
    flops = 2 * 256 * 128
    nbytes = (256 * 128 + 256 + 128) * 2
    t = max(flops / (312e12 * 0.3), nbytes / 1555e9) + 5e-6
    assert est.latency_s == pytest.approx(t)
    assert est.energy_j == pytest.approx(flops * 1.12e-12 + nbytes * 20.3e-12 + 50 * t)
    batch = eng.estimate(g, batch=8)
    assert batch.throughput_per_s > 7 * est.throughput_per_s  # weights and overhead amortised
    net = load_network("resnet9-cifar10", np.random.default_rng(0))
    gpu, cpu = eng.estimate(net), mc.load_digital("digital-cpu").estimate(net)
    assert gpu.latency_s < cpu.latency_s and gpu.energy_j < cpu.energy_j
    assert gpu.flops_per_inference == pytest.approx(cpu.flops_per_inference)


def test_bad_digital_card(tmp_path):
    text = (ROOT / "crossbars" / "digital-gpu.toml").read_text()
    p = tmp_path / "bad-gpu.toml"
    p.write_text(text.replace("efficiency = { value = 0.3,", "efficiency = { value = 1.5,"))
    with pytest.raises(CardError, match=r"compute.efficiency = 1.5 is out of range; allowed "
                                        r"\(0, 1\]"):
        mc.load_digital(p)
    with pytest.raises(CardError, match="needs 'digital'"):
        mc.load_digital("hermes-64core")


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_json_parses(capsys):
    assert cli(["chip", "--network", "lenet5", "--inferences", "5", "--json",
                "--no-figures"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("latency_s", "throughput_per_s", "energy_j", "energy_breakdown_j", "tops",
                "tops_per_w", "core_utilization", "digital"):
        assert key in data
    assert data["network"] == "lenet5" and data["inferences"] == 5
    assert math.isclose(sum(data["energy_breakdown_j"].values()), data["energy_j"])
    assert [d["engine"] for d in data["digital"]] == ["digital-gpu", "digital-cpu"]
    assert cli(["chip", "--calibrate", "--json", "--mvms", "100"]) == 0
    cal = json.loads(capsys.readouterr().out)["calibration"]
    assert [r["mode"] for r in cal] == ["pwm_1phase", "pwm_4phase"]


def test_cli_report_and_figures(capsys, tmp_path):
    assert cli(["chip", "--network", "lenet5", "--inferences", "4", "--out",
                str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "energy per inference" in out and "TOPS/W" in out and "digital-gpu" in out
    for name in ("timeline.png", "energy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_does_not_fit_message(capsys):
    with pytest.raises(ValueError, match="fit='multi-chip'"):
        cli(["chip", "--network", "resnet9-cifar10", "--no-figures", "--digital", "none",
             "--fit", "error"])


def test_cli_default_fit_says_it_uses_several_chips(capsys):
    cli(["chip", "--network", "resnet9-cifar10", "--no-figures", "--digital", "none",
         "--inferences", "3", "--json"])
    captured = capsys.readouterr()
    assert "needs 111 cores but hermes-64core has 64: simulating 2 chips" in captured.err
    assert json.loads(captured.out)["chips"] == 2


@pytest.mark.slow
def test_resnet9_hundred_inferences_two_chips():
    chip = mc.load_chip("hermes-64core")
    net = chip.map(load_network("resnet9-cifar10", np.random.default_rng(0)))
    run = chip.simulate(net, inferences=100, fit="multi-chip")
    assert run.throughput_per_s > 1000 and run.tops_per_w > 1


def test_array_read_energy_follows_the_input_window():
    """PWM inputs: the array conducts for 2^(b-1) unit times, so fewer DAC bits read with
    proportionally less array energy (the card's value is for its own 8-bit tile)."""
    from memsim.mapping import Graph, map_network

    rng = np.random.default_rng(0)
    g = Graph((64,), "mlp")
    g.set_output(g.linear(g.relu(g.linear(g.input, rng.standard_normal((32, 64)))),
                          rng.standard_normal((10, 32))))
    chip = mc.load_chip("hermes-64core")
    arr = {b: chip.simulate(map_network(g, tile="hermes-core", device="ideal", dac_bits=b),
                            inferences=2).energy_breakdown["array"] for b in (8, 6)}
    assert arr[6] == pytest.approx(arr[8] * 2**5 / 2**7, rel=1e-9)
