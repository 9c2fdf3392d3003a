"""Analog layers inside the user's own torch model (memsim.analog)."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import memsim
import memsim.analog as ma
from memsim.timegrid import YEAR

EXACT = dict(tile="hermes-core", device="pcm-hermes-2dev", exact=True)


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 2e-5) -> None:
    """Equal to float32 tolerance relative to the output's scale."""
    scale = float(b.abs().max()) + 1e-12
    err = float((a - b).abs().max())
    assert err <= tol * scale, (err, scale)


def check_exact(model: nn.Module, *inputs, tol: float = 2e-5) -> nn.Module:
    model.eval()
    a = ma.analog(model, **EXACT)
    ma.program(a, seed=0)
    with torch.no_grad():
        ref = model(*inputs)
        got = a(*inputs)
    for r, g in zip(torch.utils._pytree.tree_leaves(ref), torch.utils._pytree.tree_leaves(got),
                    strict=True):
        if r is None:
            assert g is None
            continue
        assert r.shape == g.shape
        close(g, r, tol)
    return a


# -- exact limit: every layer kind equals torch --------------------------------------------
@pytest.mark.parametrize("layer, shape", [
    (nn.Linear(40, 7), (5, 40)),
    (nn.Linear(300, 270), (3, 300)),  # several row and column tiles
    (nn.Linear(12, 3, bias=False), (2, 4, 12)),  # extra leading dims
    (nn.Conv2d(3, 8, 3, padding=1), (2, 3, 9, 9)),
    (nn.Conv2d(64, 20, 3, stride=2, padding=2, dilation=2), (2, 64, 11, 11)),  # 3 row tiles
    (nn.Conv2d(12, 12, 3, padding=1, groups=12), (2, 12, 7, 7)),  # depthwise
    (nn.Conv2d(8, 6, (3, 1), padding=(1, 0), groups=2, bias=False), (2, 8, 6, 5)),
    (nn.Conv2d(4, 4, 4, padding="same"), (2, 4, 7, 7)),  # asymmetric "same" padding
    (nn.Conv2d(4, 5, 3, padding=1, padding_mode="reflect"), (2, 4, 6, 6)),
    (nn.Conv1d(5, 6, 3, padding=1, stride=2), (3, 5, 10)),
    (nn.Conv2d(3, 4, 3), (3, 7, 7)),  # unbatched input
])
def test_weight_layers_exact_limit_equals_torch(layer, shape):
    torch.manual_seed(0)
    check_exact(layer, torch.randn(shape))


@pytest.mark.parametrize("scaling", ["absmax", "layer", "fixed"])
def test_conv_paths_agree_in_the_exact_limit(scaling):
    torch.manual_seed(1)
    conv = nn.Conv2d(40, 9, 3, padding=1).eval()
    x = torch.randn(2, 40, 6, 6)
    a = ma.analog(conv, exact=True, input_scaling=scaling, input_range=10.0)
    ma.program(a, seed=0)
    with torch.no_grad():
        close(a(x), conv(x))


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_layers_exact_limit(cell, batch_first, bidirectional):
    torch.manual_seed(2)
    rnn = cell(5, 7, num_layers=2, batch_first=batch_first, bidirectional=bidirectional)
    x = torch.randn((3, 6, 5) if batch_first else (6, 3, 5))
    check_exact(rnn, x)
    n = 4 if bidirectional else 2
    h0 = torch.randn(n, 3, 7)
    if cell is nn.LSTM:
        check_exact(rnn, x, (h0, torch.randn(n, 3, 7)))
    else:
        check_exact(rnn, x, h0)
    check_exact(rnn, x[0] if batch_first else x[:, 0])  # unbatched (T, features)


def test_lstm_last_hidden_state_idiom():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 8)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            _, (h, _) = self.rnn(x)
            return self.fc(h[-1])

    torch.manual_seed(3)
    check_exact(Net(), torch.randn(5, 2, 4))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention_exact_limit(batch_first, need_weights):
    torch.manual_seed(4)
    mha = nn.MultiheadAttention(16, 4, batch_first=batch_first)
    x = torch.randn((2, 5, 16) if batch_first else (5, 2, 16))
    mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1)
    kpm = torch.zeros(2, 5, dtype=torch.bool)
    kpm[1, -1] = True

    class Self(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x, attn_mask=mask, key_padding_mask=kpm,
                            need_weights=need_weights)

    check_exact(Self(), x)


def test_cross_attention_with_other_key_dims_exact_limit():
    torch.manual_seed(5)
    mha = nn.MultiheadAttention(12, 3, kdim=7, vdim=5, bias=True, add_bias_kv=True)

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, q, k, v):
            return self.mha(q, k, v)[0]

    check_exact(Cross(), torch.randn(4, 2, 12), torch.randn(6, 2, 7), torch.randn(6, 2, 5))


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_layers_exact_limit_and_no_fused_fast_path(batch_first):
    torch.manual_seed(6)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0,
                                                           batch_first=batch_first), 2,
                                enable_nested_tensor=False)
    x = torch.randn((3, 6, 16) if batch_first else (6, 3, 16))
    a = check_exact(enc, x, tol=1e-4)
    kinds = {type(m).__name__ for m in a.modules()}
    assert "AnalogMultiheadAttention" in kinds and "AnalogLinear" in kinds
    # noisy model: the output must differ from the float one, i.e. the tiles are used even
    # where torch would take its fused transformer kernel in eval mode
    noisy = ma.analog(enc.eval(), "hermes-core", "pcm-hermes-2dev")
    ma.program(noisy, seed=0)
    with torch.no_grad():
        assert not torch.allclose(noisy(x), enc(x), atol=1e-3)
    dec = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=batch_first)
    mem = torch.randn((3, 5, 16) if batch_first else (5, 3, 16))
    check_exact(dec, x, mem, tol=1e-4)


# -- the user's model is the network ---------------------------------------------------------
class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = self.bn(self.c1(x))
        y.mul_(0.5)
        torch.relu_(y)
        z = self.c2(y)
        z.clamp_(-1.0, 1.0)
        F.relu(z, inplace=True)
        z += y  # residual, in place
        return self.fc(z.mean((2, 3)))


class Kept(nn.Module):
    """A convolution's output kept while later layers run (the engine reuses its work
    buffers from layer to layer, and converts a layer's first row tile in place)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(40, 30, 3, padding=1)  # 2 row tiles
        self.c2 = nn.Conv2d(30, 30, 3, padding=1)  # 2 row tiles
        self.c3 = nn.Conv2d(30, 6, 1)

    def forward(self, x):
        y1 = self.c1(x)
        y2 = self.c2(y1)
        y3 = self.c3(y2)
        return torch.cat([y1.flatten(1), y2.flatten(1), y3.flatten(1)], 1)


def test_outputs_kept_across_layers_are_not_overwritten():
    torch.manual_seed(8)
    check_exact(Kept(), torch.randn(3, 40, 7, 7))


def test_in_place_ops_behave_as_in_torch():
    torch.manual_seed(7)
    model = InPlace()
    for p in model.bn.parameters():
        p.data.uniform_(0.5, 1.5)
    model.bn.running_var.uniform_(0.5, 2.0)
    check_exact(model, torch.randn(4, 3, 8, 8))


def test_conversion_leaves_the_users_model_untouched():
    torch.manual_seed(8)
    model = InPlace().train()
    before = copy.deepcopy(model.state_dict())
    a = ma.analog(model, "hermes-core", "pcm-hermes-2dev")
    assert model.training and a.training  # modes kept, the user's not switched to eval
    assert isinstance(model.c1, nn.Conv2d) and isinstance(a.c1, ma.AnalogConv)
    ma.program(a, seed=0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    a.eval()
    assert model.training


def test_unconverted_weight_layers_are_reported():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
    with pytest.warns(UserWarning, match=r"stay digital.*Embedding"):
        a = ma.analog(model, **EXACT)
    rep = ma.report(a)
    assert rep["digital_weight_layers"] == [{"name": "0", "type": "Embedding",
                                             "why": "no analog version of this layer type"}]
    assert [la["type"] for la in rep["layers"]] == ["AnalogLinear"]


def test_eval_before_programming_is_a_clear_error():
    a = ma.analog(nn.Linear(3, 2), **EXACT).eval()
    with pytest.raises(memsim.StateError, match=r"memsim.program"):
        a(torch.randn(1, 3))


# -- noise and time ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_per_mvm_noise_statistics_on_the_torch_path(dtype):
    """Same input vector N times: output variance per column = Σ x² σ² + σ_ADC² (ADC
    unquantized, slow noise a fixed state); tolerance from the χ² spread, 5 σ. A float32
    tile's variance products run in bfloat16 where the hardware has it (2^-9 rounding)."""
    torch.manual_seed(9)
    lin = nn.Linear(64, 32, bias=False).eval()
    a = ma.analog(lin, "generic-256", "pcm-generic", adc_bits=None, dac_bits=None,
                  adc_noise_fs=0.002, dtype=dtype, input_scaling="fixed", input_range=1.0)
    ma.program(a, seed=1)
    ma.set_time(a, 3600.0)
    x = torch.rand(1, 64, dtype=getattr(torch, dtype)) * 2 - 1
    n = 4000
    with torch.no_grad():
        y = a(x.expand(n, 64)).double()
    arr = a._arrays["w"]
    st = arr.state_at(3600.0 - arr.programmed_at_s_, a._rng)
    xn = x[0].double().numpy()
    var_norm = (xn**2) @ st.var[0, 0].double().numpy() + (arr.config.adc_noise_fs
                                                 * arr.config.output_range) ** 2
    scale = arr.weight_scale_[0, 0] * st.alpha[0, 0].numpy()
    expect = var_norm * scale**2
    got = y.var(0).numpy()
    rel = got / expect
    tol = 5 * np.sqrt(2 / (n - 1))
    assert np.all(np.abs(rel - 1) < tol), (rel.min(), rel.max(), tol)
    mean_expect = (xn @ st.w[0, 0].double().numpy()) * scale  # the slow state at this time
    assert np.allclose(y.mean(0).numpy(), mean_expect, atol=5 * np.sqrt(expect / n).max())


def test_per_mvm_noise_statistics_on_the_convolution_path():
    """As above for a float32 convolution (its variance convolution runs in bfloat16 where
    the hardware has it, rounding the variance to 2^-9): one input pixel repeated N times
    through a 3×3 kernel with padding, so that each output position sees its own subset of
    the kernel rows; variance per output = Σ x² σ² + σ_ADC², tolerance from the χ² spread."""
    torch.manual_seed(9)
    conv = nn.Conv2d(6, 5, 3, padding=1, bias=False).eval()
    a = ma.analog(conv, "generic-256", "pcm-generic", adc_bits=None, dac_bits=None,
                  adc_noise_fs=0.002, input_scaling="fixed", input_range=1.0)
    ma.program(a, seed=1)
    ma.set_time(a, 3600.0)
    x = torch.rand(1, 6, 2, 2) * 2 - 1
    n = 4000
    with torch.no_grad():
        y = a(x.expand(n, 6, 2, 2)).double()
    arr = a._arrays["w"]
    st = arr.state_at(3600.0 - arr.programmed_at_s_, a._rng)
    cols = F.unfold(x.double(), 3, padding=1)[0]  # (6·9, 4 positions), rows in im2col order
    var = st.var[0, 0].double()[:54]
    scale = torch.from_numpy(arr.weight_scale_[0, 0] * st.alpha[0, 0].numpy())
    expect = ((cols.T**2) @ var + (arr.config.adc_noise_fs * arr.config.output_range) ** 2
              ) * scale**2  # (positions, columns)
    got = y.var(0).reshape(5, 4).T
    rel = (got / expect).numpy()
    tol = 5 * np.sqrt(2 / (n - 1))
    assert np.all(np.abs(rel - 1) < tol), (rel.min(), rel.max(), tol)


def test_reproducible_and_time_dependent():
    torch.manual_seed(10)
    model = InPlace().eval()
    x = torch.randn(2, 3, 8, 8)

    def run(seed, t):
        a = ma.analog(model, "hermes-core", "pcm-hermes-2dev")
        ma.program(a, seed=seed)
        ma.set_time(a, t)
        with torch.no_grad():
            return a(x)

    assert torch.equal(run(0, 86400.0), run(0, 86400.0))
    assert not torch.equal(run(0, 86400.0), run(1, 86400.0))
    assert not torch.equal(run(0, 86400.0), run(0, YEAR))


def test_drift_degrades_without_compensation_and_time_before_programming_is_refused():
    torch.manual_seed(11)
    lin = nn.Linear(200, 50).eval()
    x = torch.randn(256, 200)
    ref = lin(x).detach()
    a = ma.analog(lin, "hermes-core", "pcm-hermes-2dev", drift_compensation="none")
    ma.program(a, seed=0, at_s=10.0)
    with torch.no_grad(), ma.at_time(a, 20.0):
        early = (a(x) - ref).norm() / ref.norm()
    with torch.no_grad(), ma.at_time(a, YEAR):
        late = (a(x) - ref).norm() / ref.norm()
    assert late > 2 * early
    ma.set_time(a, 5.0)
    with pytest.raises(memsim.StateError, match="before the layer was programmed"):
        a(x)


# -- state, devices, threads ------------------------------------------------------------------
def test_state_dict_round_trip_keeps_the_programmed_devices():
    torch.manual_seed(12)
    model = InPlace().eval()
    x = torch.randn(2, 3, 8, 8)
    a = ma.analog(model, "hermes-core", "pcm-hermes-2dev")
    ma.program(a, seed=3)
    ma.calibrate(a, torch.randn(8, 3, 8, 8))  # calibrated input and ADC ranges travel too
    ma.set_time(a, 86400.0)
    with torch.no_grad():
        a(x)  # a state read at one day, cached, before the save
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    b = ma.analog(model, "hermes-core", "pcm-hermes-2dev")
    buf.seek(0)
    b.load_state_dict(torch.load(buf))  # torch's default safe loader reads it
    ma.set_time(b, 86400.0)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))  # same devices, same noise streams


def on_one_and_two_threads(run):
    """run() on 1 and on 2 torch threads (numba's follow torch's); the two results."""
    import numba

    old = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            numba.set_num_threads(threads)
            outs.append(run())
    finally:
        torch.set_num_threads(old)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return outs


def test_results_do_not_depend_on_the_thread_count():
    torch.manual_seed(13)
    model = InPlace().eval()
    x = torch.randn(8, 3, 8, 8)

    def run():
        a = ma.analog(model, "hermes-core", "pcm-hermes-2dev")
        ma.program(a, seed=0)
        with torch.no_grad():
            return a(x)

    outs = on_one_and_two_threads(run)
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("cache_states", [True, False])
def test_device_reads_ahead_on_threads_give_the_same_numbers(monkeypatch, cache_states):
    """Programming and reading at a new time compute the devices' deterministic parts a few
    physical tiles ahead on torch's threads; the random numbers are drawn in order, so the
    output is the same on one thread and on two, with the device states cached or drawn
    again from their streams."""
    from memsim.crossbar import engine

    if not cache_states:
        monkeypatch.setattr(engine, "STATE_CACHE_BYTES", 0)
    torch.manual_seed(21)
    model = nn.Sequential(nn.Conv2d(40, 300, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(300 * 9, 5)).eval()
    x = torch.randn(3, 40, 5, 5)

    def run():
        a = ma.analog(model, "hermes-core", "pcm-hermes-2dev")
        ma.program(a, seed=4)
        arr = a[0]._array()
        assert (arr.geom.K, arr.geom.M) == (2, 2)
        assert arr._cache_states == cache_states
        ma.set_time(a, 3600.0)
        with torch.no_grad():
            y1 = a(x)
            with ma.at_time(a, 7200.0):
                y2 = a(x)
        assert not torch.equal(y1, y2)
        return torch.cat([y1, y2])

    outs = on_one_and_two_threads(run)
    assert torch.equal(outs[0], outs[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_exact_limit_and_noise():
    torch.manual_seed(14)
    model = InPlace().eval()
    x = torch.randn(4, 3, 8, 8)
    a = ma.analog(model, **EXACT)
    ma.program(a, seed=0)
    a = a.to("cuda")
    with torch.no_grad():
        close(a(x.cuda()).cpu(), model(x))
    n = ma.analog(model, "hermes-core", "pcm-hermes-2dev")
    ma.program(n, seed=0)
    n = n.to("cuda")
    with torch.no_grad():
        y = n(x.cuda()).cpu()
    assert y.shape == (4, 4) and torch.isfinite(y).all()


# -- training --------------------------------------------------------------------------------
def test_hardware_aware_training_runs_with_torch_optimizers_and_reprograms():
    torch.manual_seed(15)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3))
    x = torch.randn(64, 1, 6, 6)
    y = (x.mean((1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()
    a = ma.analog(model, "hermes-core", "pcm-hermes-2dev").train()
    opt = torch.optim.Adam(a.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = F.cross_entropy(a(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    a.eval()
    ma.program(a, seed=0)  # the trained weights go to the tiles
    with torch.no_grad():
        acc = (a(x).argmax(1) == y).float().mean()
    assert acc > 0.6


def test_hwa_noise_is_measured_on_the_engine():
    pcm = ma.HWANoise.from_cards("hermes-core", "pcm-hermes-2dev")
    ideal = ma.HWANoise.from_cards("hermes-core", "ideal")
    assert 0.01 < pcm.weight_sigma < 0.3
    assert ideal.weight_sigma < 1e-6
    assert pcm.dac_bits == 8 and pcm.out_sigma > 0


# -- the chip from the same object --------------------------------------------------------------
def test_description_recorded_from_one_batch_feeds_the_chip():
    torch.manual_seed(16)
    model = InPlace().eval()
    a = ma.analog(model, "hermes-core", "pcm-hermes-2dev")
    ma.program(a, seed=0)
    d = ma.describe(a, torch.randn(4, 3, 8, 8))
    names = [la.name for la in d.layers]
    assert names == ["c1", "c2", "fc"]
    c1, c2, fc = d.layers
    assert c1.mvms_per_inference == 64 and c2.mvms_per_inference == 64
    assert fc.mvms_per_inference == 1
    assert c1.matrices == (("w", (27, 8)),) and fc.matrices == (("w", (8, 4)),)
    ops = [n.op for n in d.digital]
    assert "batchnorm" in ops and "relu" in ops and "add" in ops  # in-place ops recorded
    assert d.output == "fc"
    assert memsim.mapping.as_description(a) is d


def test_large_layers_converted_a_chunk_of_row_tiles_at_a_time_give_the_same_numbers(
        monkeypatch):
    """Bounded memory must not change a result: a layer of many row tiles computed a chunk
    at a time equals the same layer computed at once, to the last bit."""
    import memsim.crossbar.engine as engine

    torch.manual_seed(17)
    lin = nn.Linear(3000, 300).eval()
    x = torch.randn(64, 3000)
    outs = []
    for chunk in (engine._PRODUCT_CHUNK_BYTES, 1):
        monkeypatch.setattr(engine, "_PRODUCT_CHUNK_BYTES", chunk)
        a = ma.analog(lin, "hermes-core", "pcm-hermes-2dev", input_scaling="absmax")
        ma.program(a, seed=0)
        ma.set_time(a, 100.0)
        with torch.no_grad():
            outs.append(a(x))
    assert torch.equal(outs[0], outs[1])


def test_recorded_pooling_keeps_its_geometry_for_the_chip():
    """A recorded 2-d pooling carries kernel, stride and padding, as a Graph's does, so the
    chip streams input rows through it instead of waiting for the whole input."""

    class Pools(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(1, 4, 3, padding=1)

        def forward(self, x):
            h = F.max_pool2d(self.c(x), 2)
            h = torch.max_pool2d(h, 3, 2, 1)
            h = F.avg_pool2d(h, kernel_size=(2, 1))
            return F.max_pool2d(h, 1, dilation=2)

    a = ma.analog(Pools().eval(), "hermes-core", "pcm-hermes-2dev")
    ma.program(a, seed=0)
    pools = [n for n in ma.describe(a, torch.randn(2, 1, 16, 16)).digital]
    assert [n.op for n in pools] == ["maxpool2d", "maxpool2d", "avgpool2d", "maxpool2d"]
    assert pools[0].attrs == {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0)}
    assert pools[1].attrs == {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1)}
    assert pools[2].attrs == {"kernel": (2, 1), "stride": (2, 1), "padding": (0, 0)}
    assert pools[3].attrs == {}  # dilated: the chip waits for the whole input


def test_hwa_noise_does_not_count_the_common_drift_decay_as_noise():
    """Without compensation all conductances decay together: a gain, not noise. The training
    noise measured without compensation equals the one measured with global compensation
    (which removes exactly one common gain); counting the decay made it 4x larger."""
    none = ma.HWANoise.from_cards("hermes-core", "pcm-generic", drift_compensation="none",
                                  t_s=YEAR)
    comp = ma.HWANoise.from_cards("hermes-core", "pcm-generic", drift_compensation="global",
                                  t_s=YEAR)
    assert none.weight_sigma == pytest.approx(comp.weight_sigma, rel=1e-6)
    assert 0.01 < none.weight_sigma < 0.1
