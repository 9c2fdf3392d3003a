"""The digits transformer: trained, converted (projections analog, attention digital), on the
tiles under drift, and on the chip with the digital attention counted."""

from __future__ import annotations

import dataclasses

import pytest

import memsim
from memsim.analog import analog_modules
from memsim.chip import load_digital_config
from memsim.timegrid import YEAR
from memsim.workloads.digits import load_digits_split
from memsim.workloads.training import accuracy

torch = pytest.importorskip("torch")

# L = S = 8 tokens, E = 32, H = 4 heads (DigitsTransformer); the recorder's count of the
# attention between the projections: Q·Kᵀ and weights·V (2·L·S·E multiply-adds each, 4·L·S·E
# ops) and the softmax (5 ops per score, H·L·S scores)
ATTENTION_OPS = 4 * 8 * 8 * 32 + 5 * 4 * 8 * 8


@pytest.fixture(scope="module")
def model():
    from memsim.workloads.transformer import transformer_torch

    return transformer_torch()


@pytest.fixture(scope="module")
def description(model):
    from memsim.workloads.trained import describe_trained

    return describe_trained("digits-transformer")


def test_trains_and_the_exact_limit_is_the_torch_model(model):
    _, _, x_te, y_te = load_digits_split()
    x = torch.tensor(x_te, dtype=torch.float32)
    with torch.no_grad():
        ref = model(x)
    assert accuracy(ref, y_te) > 0.95  # 540 test images; 97.4 % when written
    amodel = memsim.program(memsim.analog(model, "hermes-core", exact=True), 0)
    with torch.no_grad():
        out = amodel(x[:100])
    torch.testing.assert_close(out, ref[:100], rtol=1e-4, atol=1e-4)
    names = sorted(m.layer_name for m in analog_modules(amodel))
    assert names == sorted(["embed", "head"] + [
        f"encoder.layers.{i}.{k}" for i in range(2) for k in ("self_attn", "linear1",
                                                               "linear2")])


def test_description_has_analog_projections_and_digital_attention(description):
    attn = [la for la in description.layers if la.name.endswith("self_attn")]
    assert len(attn) == 2
    for la in attn:
        assert [s for _, s in la.matrices] == [(32, 96), (32, 32)]  # in_proj, out_proj
        assert la.mvms_per_inference == 8  # one per token
        assert la.digital_ops == ATTENTION_OPS
    ops = {n.op for n in description.digital}
    assert {"layernorm", "add", "relu"} <= ops


def _counts(run) -> dict[str, float]:
    return run.to_dict()["action_counts_per_inference"]


def test_chip_counts_the_digital_attention(description):
    """The attention's operations (a weight layer's own digital_ops) are counted by the chip
    and by the digital baselines: exactly the difference to the same description without
    them."""
    chip = memsim.load_chip("hermes-64core")
    without = dataclasses.replace(description, nodes={
        k: (dataclasses.replace(n, digital_ops=None) if k.endswith("self_attn") else n)
        for k, n in description.nodes.items()})
    run, run0 = chip.simulate(description, inferences=3), chip.simulate(without, inferences=3)
    c, c0 = _counts(run), _counts(run0)
    assert c["local_digital_op"] - c0["local_digital_op"] == pytest.approx(2 * ATTENTION_OPS,
                                                                          rel=1e-12)
    for key in ("adc_conversion_8b", "dac_conversion", "global_digital_op"):
        assert c[key] == c0[key]
    assert run.latency_s > run0.latency_s  # the local units take time for it
    gpu = load_digital_config("digital-gpu")
    flops, flops0 = (gpu.estimate(d).flops_per_inference for d in (description, without))
    assert flops - flops0 == pytest.approx(2 * ATTENTION_OPS, rel=1e-12)


def test_chip_cli_runs_the_transformer(capsys):
    from memsim.cli import main

    assert main(["chip", "--network", "digits-transformer", "--inferences", "2",
                 "--no-figures", "--digital", "none"]) == 0
    out = capsys.readouterr().out
    assert "encoder.layers.1.self_attn" in out and "energy per inference" in out


def test_on_the_tiles_with_drift_compensation(model):
    """Programmed on HERMES PCM with global drift compensation: accurate at 1 s, and the
    accuracy after a year is measured (it may drop: the drift study reports by how much)."""
    from memsim.workloads.training import analog_accuracy

    x_tr, _, x_te, y_te = load_digits_split()
    res = analog_accuracy(model, x_te[:180], y_te[:180], tile="hermes-core",
                          device="pcm-hermes-2dev", times=[1.0, YEAR], seeds=1,
                          x_calibrate=x_tr[:256], drift_compensation="global")
    acc = res["accuracy"][0]
    assert acc[0] > 0.9 and 0.5 < acc[1] <= 1.0
    assert res["saturation_rate"] < 1e-3
