"""Issue 10 ("No wrong number without a warning"): the figures of items 1–8, before and after.

Run it with the code to measure first on ``PYTHONPATH``; it works with the engine before the
issue (commit 653f649: ``Tile.program/matvec``, ``map_network(torch_module, input_shape=…)``,
card noise in LSB) and after it (``memsim.analog``, ``exact=True``, converter noise with its
unit, cell I–V, bit-line topologies). For example::

    git worktree add /tmp/before 653f649
    MEMSIM_CACHE=/tmp/new-cache PYTHONPATH=. python benchmarks/issue10_before_after.py \
        --save-digits /tmp/digits.npz --spice-cache /tmp/spice > after.txt
    cd /tmp/before && MEMSIM_CACHE=/tmp/old-cache PYTHONPATH=/tmp/before python \
        $OLDPWD/benchmarks/issue10_before_after.py --digits /tmp/digits.npz \
        --spice-cache /tmp/spice > before.txt
    python benchmarks/issue10_before_after.py --compare before.txt after.txt

(run from the old checkout so that nothing of the new one is imported). ``--items 1,3`` runs
some items only; ``--digits FILE.npz`` gives both runs the same digits-CNN weights
(``--save-digits FILE.npz`` writes the weights of the code on the path); ``--spice-cache DIR``
solves each ngspice netlist once for both runs; ``--compare BEFORE AFTER`` prints two saved
outputs side by side. Every figure is one line ``item | case | value``; the last saved run is
``benchmarks/results/issue10_before_after.txt``. What each item measures (fixed seeds; same
inputs for both codes):

1. Zero inputs: hermes-core tile (PCM HERMES fit, 256×256 Gaussian weights, 1 day): rms of the
   output of an all-zero input row and of a constant 1e-9 row (against its exact rms); a
   MobileNet-v2 (torchvision layout, random weights, 2 × 3×64×64 inputs) on hermes-core: the
   relative error of its logits against torch.
2. Extreme inputs: fraction of NaN output rows of a float32 hermes-core tile for inputs scaled
   to abs-max 1e45 … 3e-39, and the largest relative deviation from the unscaled result; a
   mapped network with weights 1e200 and inputs 1e200.
3. Converter units: the ADC noise σ in LSB of the running bits (from each code's own config
   semantics) for hermes-core at 8 bits, overridden to 4 bits, and a card written at 4 bits run
   at 8; the digits-CNN accuracy (Graph path, ADC ranges calibrated on 256 training images,
   1 day, 3 seeds) on hermes-core at 8 bits and on the 4-bit card run at 8 bits.
4. "Ideal": device "ideal", adc_bits=None, dac_bits=None: relative MVM error on hermes-core
   and generic-256 (256×256, batch 256), and the relative logit error of a ResNet-18
   (torchvision layout, random weights, 2 × 3×64×64); after the issue also ``exact=True``.
5. Significance: rms error of the programmed weights (normalised, right after programming) of
   pcm-generic with two devices per polarity and F = 2, 4, 8.
6. Encodings: relative MVM error of 1-phase and 4-phase on hermes-core with the ideal device
   (and, after the issue, with read asymmetry and HERMES PCM).
7. IR drop: memsim's exact solve of a differential array (1 Ω, HERMES g_max) against ngspice
   netlists of the two bit-line topologies, 32×32 and 64×64 (``--ir-sizes``).
8. RRAM relaxation: correlation across devices of the relaxation part of the 1-day and 2-day
   reads of one programmed CMO-RRAM state (programming and read noise off).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import memsim

NEW = hasattr(memsim, "analog")
ROOT = Path(memsim.__file__).resolve().parents[1]  # the code being measured
HERE = Path(__file__).resolve().parents[1]  # this script's checkout (nets.py lives there)
DAY = 86400.0


def out(item: int, case: str, value: str) -> None:
    print(f"{item} | {case} | {value}", flush=True)


def rel(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


@contextlib.contextmanager
def quiet():
    """CalibrationWarning etc. are counted by the caller where they matter; keep stdout tidy."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def nets_module():
    spec = importlib.util.spec_from_file_location("issue10_nets",
                                                  HERE / "memsim" / "workloads" / "nets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def mobilenet_v2():
    """MobileNet-v2 (Sandler et al., CVPR 2018) in torchvision's layout and initialisation."""
    import torch
    from torch import nn

    def cbr(i, o, k=3, s=1, g=1):
        return nn.Sequential(nn.Conv2d(i, o, k, s, (k - 1) // 2, groups=g, bias=False),
                             nn.BatchNorm2d(o), nn.ReLU6())

    class Inverted(nn.Module):
        def __init__(self, i, o, s, t):
            super().__init__()
            h = i * t
            layers = [cbr(i, h, 1)] if t != 1 else []
            layers += [cbr(h, h, 3, s, h), nn.Conv2d(h, o, 1, bias=False), nn.BatchNorm2d(o)]
            self.conv = nn.Sequential(*layers)
            self.res = s == 1 and i == o

        def forward(self, x):
            return x + self.conv(x) if self.res else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            feats = [cbr(3, 32, 3, 2)]
            c = 32
            for t, o, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
                for k in range(n):
                    feats.append(Inverted(c, o, s if k == 0 else 1, t))
                    c = o
            feats.append(cbr(c, 1280, 1))
            self.features = nn.Sequential(*feats)
            self.classifier = nn.Linear(1280, 1000)

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    torch.manual_seed(0)
    m = MobileNetV2()
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out")
        elif isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, 0, 0.01)
            nn.init.zeros_(mod.bias)
    return m.eval()


def torch_on_tiles(model, shape, tile, device, *, calibrate=None, seed=0, **overrides):
    """A function x -> logits of ``model`` on the tiles, through each code's own path."""
    import torch

    if NEW:
        a = memsim.analog(model, tile, device, **overrides).eval()
        memsim.program(a, seed=seed)
        if calibrate is not None:
            memsim.calibrate(a, torch.as_tensor(calibrate, dtype=torch.float32))
        memsim.set_time(a, DAY)

        def run(x):
            with torch.no_grad():
                return a(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
        return run
    net = memsim.map_network(model, tile, device, input_shape=shape, **overrides)
    net.program(np.random.default_rng(seed))
    return lambda x: net.forward(x, DAY, np.random.default_rng(seed + 1))


def torch_ref(model, x):
    import torch

    with torch.no_grad():
        return model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()


# -- items ------------------------------------------------------------------------------------
def item1() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 256))
    x = rng.uniform(-1, 1, (8, 256))
    x[1] = 0.0
    x[2] = 1e-9
    scalings = ["absmax"] + (["layer"] if NEW else [])
    for scaling in scalings:
        tile = memsim.load_tile("hermes-core", device="pcm-hermes-2dev",
                                input_scaling=scaling).program(w, np.random.default_rng(1))
        with quiet() as caught:
            if scaling == "layer":
                tile.calibrate_inputs(rng.uniform(-1, 1, (256, 256)))
            y = tile.matvec(x, DAY, np.random.default_rng(2))
        tag = f"hermes-core input_scaling={scaling}"
        ref = x @ w
        signal = float(np.sqrt(np.mean(ref[[0, 3, 4, 5, 6, 7]] ** 2)))
        out(1, f"{tag}: all-zero row, output rms (typical row rms {signal:.3g})",
            f"{np.sqrt(np.mean(y[1] ** 2)):.3g}")
        out(1, f"{tag}: constant 1e-9 row, output rms (exact {np.sqrt(np.mean(ref[2]**2)):.3g})",
            f"{np.sqrt(np.mean(y[2] ** 2)):.3g}")
        rows = [0, 3, 4, 5, 6, 7]
        out(1, f"{tag}: relative error of the 6 random rows", f"{rel(y[rows], ref[rows]):.4f}")
        if caught:
            out(1, f"{tag}: warnings",
                "; ".join(sorted({type(c.message).__name__ for c in caught})))
    model = mobilenet_v2()
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 64))
    xcal = np.random.default_rng(4).standard_normal((8, 3, 64, 64))
    ref = torch_ref(model, x)
    for device in ("pcm-hermes-2dev", "ideal"):
        t0 = time.perf_counter()
        f = torch_on_tiles(model, (3, 64, 64), "hermes-core", device, input_scaling="absmax")
        with quiet():
            y = f(x)
        out(1, f"MobileNet-v2 on hermes-core, device {device}, input_scaling=absmax: relative "
            f"logit error ({time.perf_counter() - t0:.0f} s)", f"{rel(y, ref):.4g}")
        if NEW:
            f = torch_on_tiles(model, (3, 64, 64), "hermes-core", device, calibrate=xcal)
            y = f(x)
            out(1, f"MobileNet-v2 on hermes-core card, device {device} (input_scaling=layer, "
                "memsim.calibrate on 8 other images): relative logit error", f"{rel(y, ref):.4g}")
    if NEW:  # exact=True does not exist before the issue
        f = torch_on_tiles(model, (3, 64, 64), "hermes-core", "pcm-hermes-2dev", exact=True)
        out(1, "MobileNet-v2, exact=True: relative logit error", f"{rel(f(x), ref):.3g}")


def item2() -> None:
    rng = np.random.default_rng(2)
    w = rng.standard_normal((64, 16))
    x = rng.uniform(-1, 1, (5, 64))
    tile = memsim.load_tile("hermes-core", device="pcm-hermes-2dev", input_scaling="absmax")
    tile.program(w, rng)
    tile.matvec(x, 3600.0, np.random.default_rng(99))  # draws the slow noise kept at 1 h
    ref = tile.matvec(x, 3600.0, np.random.default_rng(3))
    for scale in (1e30, 1e38, 1e45, 1e46, 1e300, 1e-30, 1e-38, 3e-39, 1e-40, 1e-45, 1e-300):
        try:
            with quiet():
                y = tile.matvec(x * scale, 3600.0, np.random.default_rng(3))
            nan_rows = int(np.sum(~np.all(np.isfinite(y), axis=1)))
            fin = np.all(np.isfinite(y), axis=1)
            dev = float(np.max(np.abs(y[fin] / scale - ref[fin])) / np.abs(ref).max()) \
                if fin.any() else float("nan")
            out(2, f"float32 hermes-core tile, inputs of abs-max {scale:g}",
                f"{nan_rows}/5 NaN rows; finite rows deviate by {dev:.2g} of max|y|")
        except Exception as exc:
            out(2, f"float32 hermes-core tile, inputs of abs-max {scale:g}",
                f"{type(exc).__name__}: {str(exc)[:100]}")
    g = memsim.Graph((8,), "big")
    g.set_output(g.linear(g.input, rng.standard_normal((4, 8)) * 1e200))
    try:
        net = memsim.map_network(g, "hermes-core", "pcm-hermes-2dev").program(rng)
        with quiet():
            y = net.forward(rng.uniform(-1, 1, (2, 8)) * 1e200, 1.0, rng)
        out(2, "mapped network, weights 1e200 x inputs 1e200",
            f"returned {int(np.sum(~np.isfinite(y)))}/{y.size} non-finite outputs, no error")
    except Exception as exc:
        out(2, "mapped network, weights 1e200 x inputs 1e200",
            f"{type(exc).__name__}: {str(exc)[:140]}")


def _card_variant(path: Path, bits: int, noise: str) -> Path:
    """hermes-core's card with the ADC written at ``bits`` and its noise stated as 0.5 LSB
    of that design: in the old format (``noise``, LSB), or after the issue as analog
    noise (``noise_fs``) or quantizer noise (``noise_lsb``)."""
    text = (ROOT / "crossbars" / "hermes-core.toml").read_text()
    adc = text[text.index("[adc]"):text.index("[digital]")]
    new = adc.replace('bits = { value = 8,', f'bits = {{ value = {bits},')
    if noise == "old":
        pass  # old card: noise = 0.5 (LSB), offset_sigma = 1 (LSB), of the card's bits
    else:
        fs = 0.5 / 2 ** (bits - 1)
        new = re.sub(r"offset_fs = \{ value = [0-9.e-]+", f"offset_fs = {{ value = {2 * fs!r}", new)
        nfs, nlsb = (fs, 0.0) if noise == "fs" else (0.0, 0.5)
        new = re.sub(r"noise_fs = \{ value = [0-9.e-]+", f"noise_fs = {{ value = {nfs!r}", new)
        new = re.sub(r"noise_lsb = \{ value = [0-9.e-]+", f"noise_lsb = {{ value = {nlsb!r}", new)
    p = path / f"hermes-core-adc{bits}-{noise}.toml"
    p.write_text(text.replace(adc, new))
    return p


def _sigma_lsb(card, **ov) -> str:
    cfg = memsim.crossbar.load_tile_config(card, **ov) if NEW else \
        memsim.crossbar.config.load_tile_config(card, **ov)
    lsb = cfg.output_range / 2 ** (cfg.adc_bits - 1)
    sigma = cfg.adc_noise_sigma() if NEW else cfg.adc_noise
    return f"{sigma / lsb:.4g} LSB at {cfg.adc_bits} bits"


def _digits_graph(params: dict) -> memsim.Graph:
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    g = memsim.Graph((1, 8, 8), "digits-cnn")
    h = g.conv2d(g.input, p["conv1.weight"], p["conv1.bias"], padding=1, name="conv1")
    h = g.maxpool2d(g.relu(h), 2)
    h = g.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1, name="conv2")
    h = g.flatten(g.maxpool2d(g.relu(h), 2))
    g.set_output(g.linear(h, p["fc.weight"], p["fc.bias"], name="fc"))
    return g


def digits_params(path: str | None) -> dict:
    if path:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    if NEW:
        from memsim.workloads.digits import digits_torch

        return {k: v.double().numpy() for k, v in digits_torch("cnn").state_dict().items()}
    from memsim.workloads.digits import cache_dir, digits_model

    digits_model("cnn")
    with np.load(cache_dir() / "digits-cnn-plain-seed0-e60-v1.npz") as f:
        return {k: f[k] for k in f.files}


def _digits_accuracy(graph, card, seeds: int = 3, **ov) -> tuple[float, float, int]:
    from memsim.workloads.digits import load_digits_split

    x_tr, _, x_te, y_te = load_digits_split()
    acc, n_warn = [], 0
    for s in range(seeds):
        net = memsim.map_network(graph, card, "pcm-hermes-2dev", **ov)
        rng = np.random.default_rng(100 + s)
        with quiet() as caught:
            if NEW:
                net.program(rng)
                net.calibrate_adc(x_tr[:256])
            else:
                net.calibrate_adc(x_tr[:256])
                net.program(rng)
            y = net.forward(x_te, DAY, rng)
        n_warn += len(caught)
        acc.append(float(np.mean(np.argmax(y, 1) == y_te)))
    return float(np.mean(acc)), float(np.std(acc, ddof=1)), n_warn


def item3(digits: str | None) -> None:
    out(3, "hermes-core card at 8 bits: ADC noise", _sigma_lsb("hermes-core"))
    out(3, "hermes-core card overridden to adc_bits=4: ADC noise",
        _sigma_lsb("hermes-core", adc_bits=4))
    graph = _digits_graph(digits_params(digits))
    x_te_ref = None
    with tempfile.TemporaryDirectory() as tmp:
        cards = {"old": _card_variant(Path(tmp), 4, "old")} if not NEW else {
            "noise_fs (analog)": _card_variant(Path(tmp), 4, "fs"),
            "noise_lsb (quantizer)": _card_variant(Path(tmp), 4, "lsb"),
            "the card's fields, bits = 4 only": _card_variant(Path(tmp), 4, "old")}
        from memsim.workloads.digits import load_digits_split

        _, _, x_te, y_te = load_digits_split()
        x_te_ref = graph.forward(x_te)
        out(3, "digits CNN, float accuracy",
            f"{100 * np.mean(np.argmax(x_te_ref, 1) == y_te):.2f} %")
        a, s, w = _digits_accuracy(graph, "hermes-core", adc_bits=8)
        out(3, "digits CNN on hermes-core at 8 bits (1 day, 3 seeds)",
            f"{100 * a:.2f} ± {100 * s:.2f} %" + (f" ({w} warnings)" if w else ""))
        for label, card in cards.items():
            try:
                out(3, f"card written at 4 bits, 0.5 LSB as {label}, run at 8 bits: ADC noise",
                    _sigma_lsb(card, adc_bits=8))
                a, s, w = _digits_accuracy(graph, card, adc_bits=8)
                out(3, f"digits CNN, card written at 4 bits ({label}) run at 8 bits",
                    f"{100 * a:.2f} ± {100 * s:.2f} %" + (f" ({w} warnings)" if w else ""))
            except Exception as exc:
                out(3, f"card written at 4 bits ({label})",
                    f"{type(exc).__name__}: {str(exc)[:160]}")


def item4() -> None:
    rng = np.random.default_rng(4)
    w = rng.standard_normal((256, 256))
    x = rng.uniform(-1, 1, (256, 256))
    ov = {"adc_bits": None, "dac_bits": None}
    for card in ("hermes-core", "generic-256"):
        with quiet():
            tile = memsim.load_tile(card, device="ideal", **ov).program(
                w, np.random.default_rng(5))
            if NEW and tile.config.input_scaling == "layer":
                tile.calibrate_inputs(x)
            y = tile.matvec(x, DAY, np.random.default_rng(6))
        out(4, f"{card}, device=ideal, adc_bits=None, dac_bits=None: MVM error",
            f"{rel(y, x @ w):.3g}")
        if NEW:
            y = memsim.load_tile(card, device="ideal").noise_free().program(
                w, np.random.default_rng(5)).matvec(x, DAY, np.random.default_rng(6))
            out(4, f"{card}, Tile.noise_free() (exact=True): MVM error", f"{rel(y, x @ w):.3g}")
    nets = nets_module()
    import torch

    torch.manual_seed(0)
    model = nets.resnet18().eval()
    xi = np.random.default_rng(7).standard_normal((2, 3, 64, 64))
    ref = torch_ref(model, xi)
    t0 = time.perf_counter()
    f = torch_on_tiles(model, (3, 64, 64), "hermes-core", "ideal", **ov)
    with quiet():
        y = f(xi)
    out(4, f"ResNet-18 on hermes-core, device=ideal, adc_bits=None, dac_bits=None: relative "
        f"logit error ({time.perf_counter() - t0:.0f} s)", f"{rel(y, ref):.3g}")
    if NEW:
        f = torch_on_tiles(model, (3, 64, 64), "hermes-core", "ideal", exact=True)
        out(4, "ResNet-18, memsim.analog(..., exact=True): relative logit error",
            f"{rel(f(xi), ref):.3g}")


def _effective(tile) -> np.ndarray:
    if NEW:
        cell = tile.array_.cell
        return cell.effective_weights(tile.states_)
    w = 0.0
    for f, s in zip(tile.factors, tile.states_, strict=True):
        w = w + f * (s.g_prog_s[0] - s.g_prog_s[1])
    return w / tile.g_unit_s


def item5() -> None:
    w = np.random.default_rng(19).uniform(-1, 1, (256, 256))
    for f in (1.0, 2.0, 4.0, 8.0):
        cfg = memsim.TileConfig(devices_per_polarity=2, significance=f)
        tile = memsim.load_tile(cfg, device="pcm-generic").program(w, np.random.default_rng(20))
        e = _effective(tile) - w / tile.weight_scale_
        out(5, f"pcm-generic, 2 devices per polarity, F = {f:g}: rms weight error "
            "(normalised)", f"{np.sqrt(np.mean(e ** 2)):.4f}")


def item6() -> None:
    rng = np.random.default_rng(6)
    w = rng.standard_normal((256, 256))
    x = rng.uniform(-1, 1, (512, 256))
    cases = [("ideal", {}), ]
    if NEW:
        cases += [("ideal", {"phase_conversion": "separate"}),
                  ("ideal", {"read_asymmetry": 0.95}), ("ideal", {"read_asymmetry": 0.9}),
                  ("pcm-hermes-2dev", {}), ("pcm-hermes-2dev", {"read_asymmetry": 0.9})]
    for device, extra in cases:
        res = []
        for enc in ("pwm_1phase", "pwm_4phase"):
            if extra.get("phase_conversion") and enc == "pwm_1phase":
                continue
            tile = memsim.load_tile("hermes-core", device=device, encoding=enc,
                                    input_scaling="absmax", **extra)
            y = tile.program(w, np.random.default_rng(7)).matvec(x, DAY, np.random.default_rng(8))
            res.append(f"{enc} {100 * rel(y, x @ w):.3g} %")
        label = ", ".join(f"{k}={v}" for k, v in extra.items()) or "card"
        out(6, f"hermes-core ({label}), device {device}, absmax inputs, 1 day: MVM error",
            " / ".join(res))


def _netlist(g_pos, g_neg, v, r, topology: str) -> str:
    """The circuit of tests/test_irdrop_spice.py (same nodes and elements), r_row = r_col = r."""
    rows, cols = g_pos.shape
    lines = [f"* {rows}x{cols} differential crossbar, {topology} bit lines", ".options noacct"]

    def rows_of(layer, g, sign, col):
        for i in range(rows):
            lines.append(f"V{layer}{i} {layer}s{i} 0 DC {sign * v[i]:.17g}")
            lines.append(f"R{layer}d{i} {layer}s{i} {layer}{i}_0 {r:.17g}")
            for j in range(cols - 1):
                lines.append(f"R{layer}{i}_{j} {layer}{i}_{j} {layer}{i}_{j + 1} {r:.17g}")
            for j in range(cols):
                if g[i, j] > 0:
                    lines.append(f"R{layer}c{i}_{j} {layer}{i}_{j} {col}{i}_{j} {1 / g[i, j]:.17g}")

    def column_wires(col):
        for j in range(cols):
            for i in range(rows - 1):
                lines.append(f"R{col}{i}_{j} {col}{i}_{j} {col}{i + 1}_{j} {r:.17g}")
            lines.append(f"R{col}b{j} {col}{rows - 1}_{j} {col}o{j} {r:.17g}")
            lines.append(f"V{col}o{j} {col}o{j} 0 DC 0")

    rows_of("p", g_pos, 1.0, "w")
    rows_of("n", g_neg, -1.0, "w" if topology == "shared" else "x")
    column_wires("w")
    if topology == "separate":
        column_wires("x")
    lines += [".control", "set numdgt=15", "op", "print all", ".endc", ".end"]
    return "\n".join(lines) + "\n"


SPICE_CACHE: Path | None = None  # --spice-cache: ngspice's currents per netlist (sha256)


def _spice(g_pos, g_neg, v, r, topology, tmp: Path) -> np.ndarray:
    netlist = _netlist(g_pos, g_neg, v, r, topology)
    if SPICE_CACHE is not None:  # both codes solve the same netlists: solve each once
        import hashlib

        cached = SPICE_CACHE / f"{hashlib.sha256(netlist.encode()).hexdigest()}.npy"
        if cached.exists():
            return np.load(cached)
        y = _spice_run(netlist, g_pos.shape[1], topology, tmp)
        SPICE_CACHE.mkdir(parents=True, exist_ok=True)
        np.save(cached, y)
        return y
    return _spice_run(netlist, g_pos.shape[1], topology, tmp)


def _spice_run(netlist: str, cols: int, topology: str, tmp: Path) -> np.ndarray:
    path = tmp / f"{topology}-{cols}.cir"
    path.write_text(netlist)
    run = subprocess.run(["ngspice", "-b", str(path)], capture_output=True, text=True,
                         timeout=3000, check=False)
    found = {m.group(1): float(m.group(2)) for m in
             re.finditer(r"^(v[wx]o\d+)#branch\s*=\s*(\S+)", run.stdout, re.M)}
    y = np.array([found[f"vwo{j}"] for j in range(cols)])
    if topology == "separate":
        y = y + np.array([found[f"vxo{j}"] for j in range(cols)])
    return y


def item7(sizes=(32, 256)) -> None:
    from memsim.crossbar import irdrop

    if shutil.which("ngspice") is None:
        out(7, "ngspice", "not installed: item 7 skipped")
        return
    r, g_max = 1.0, 20.7e-6  # 1 Ω per segment; HERMES PCM g_max of 2 devices per polarity
    for n in sizes:
        rng = np.random.default_rng(n)
        wn = rng.uniform(-1, 1, (n, n))
        g_pos, g_neg = g_max * np.maximum(wn, 0), g_max * np.maximum(-wn, 0)
        v = rng.uniform(-0.2, 0.2, n)
        ideal = v @ (g_pos - g_neg)
        with tempfile.TemporaryDirectory() as tmp:
            for topology in ("shared", "separate"):
                t0 = time.perf_counter()
                want = _spice(g_pos, g_neg, v, r, topology, Path(tmp))
                ts = time.perf_counter() - t0
                scale = np.linalg.norm(want)
                effect = np.linalg.norm(want - ideal) / scale
                out(7, f"{n}x{n}, 1 ohm, {topology} netlist: IR-drop effect |I_spice - V@G| / "
                    f"|I_spice| (ngspice {ts:.0f} s)", f"{effect:.3g}")
                if NEW:
                    for model in irdrop.TOPOLOGIES:
                        got = irdrop.solve_differential(g_pos, g_neg, v, r, r, model)
                        out(7, f"{n}x{n}, {topology} netlist: memsim solve_differential "
                            f"'{model}' error / |I|", f"{np.linalg.norm(got - want) / scale:.3g}")
                else:  # the old tile: one solve per polarity, currents subtracted
                    got = irdrop.solve_exact(g_pos, v, r, r) - irdrop.solve_exact(g_neg, v, r, r)
                    out(7, f"{n}x{n}, {topology} netlist: memsim (old tile's solve_exact per "
                        "polarity) error / |I|", f"{np.linalg.norm(got - want) / scale:.3g}")


def item8() -> None:
    n = 20000
    dev = memsim.load_device("rram-cmo").with_noise(programming=0.0, read=0.0)
    state = dev.program(np.full(n, 50e-6), np.random.default_rng(0))
    reads = [dev.read(state, t, np.random.default_rng(k)) for k, t in enumerate((DAY, 2 * DAY))]
    g_prog = getattr(state, "g_prog_S", None)  # siemens names after the card schema
    g_prog = state.g_prog_s if g_prog is None else g_prog
    d = [r - g_prog for r in reads]
    rho = float(np.corrcoef(d[0], d[1])[0, 1])
    s1, s2 = (0.042011 * math.log(t) + 0.41183 for t in (DAY, 2 * DAY))  # card's σ(t), µS
    out(8, f"rram-cmo, {n} devices at 50 uS: correlation of the 1-day and 2-day relaxation "
        f"(one persistent path: σ(1 d)/σ(2 d) = {s1 / s2:.3f})",
        f"{rho:.3f} ± {5 * (1 - rho**2) / math.sqrt(n):.3f} (5 standard errors)")


def _lines(path: str) -> tuple[str, dict[tuple[str, str], str]]:
    """(header, {(item, case without its run time): value}) of one run's output."""
    text = Path(path).read_text().splitlines()
    rows = {}
    for line in text[1:]:
        parts = line.split(" | ")
        if len(parts) == 3:
            case = re.sub(r" \((ngspice )?\d+ s\)", "", parts[1])
            rows[(parts[0], case)] = parts[2]
    return text[0], rows


def compare(before: str, after: str) -> None:
    """Print the two runs side by side: ``item | case | before | after`` ("—": the case is
    not measured by that code, e.g. ``exact=True`` before the issue)."""
    (hb, b), (ha, a) = _lines(before), _lines(after)
    print(f"# before: {hb}\n# after: {ha}\nitem | case | before | after")
    for key in sorted(b.keys() | a.keys(), key=lambda k: (int(k[0]), list(a).index(k)
                                                         if k in a else -1)):
        print(f"{key[0]} | {key[1]} | {b.get(key, '—')} | {a.get(key, '—')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="print two saved runs' outputs side by side, and nothing else")
    ap.add_argument("--items", default="1,2,3,4,5,6,7,8")
    ap.add_argument("--digits", help="npz of digits-CNN weights (same weights for both codes)")
    ap.add_argument("--save-digits", help="write this code's digits-CNN weights to this npz")
    ap.add_argument("--ir-sizes", default="32,64",
                    help="array sizes of item 7 (on a loaded 2-core machine ngspice had not "
                    "finished one 128x128 netlist after 4.6 CPU minutes, nor a 256x256 one "
                    "after 7)")
    ap.add_argument("--spice-cache", help="folder of ngspice results reused across runs")
    args = ap.parse_args()
    global SPICE_CACHE
    SPICE_CACHE = Path(args.spice_cache) if args.spice_cache else None
    if args.compare:
        compare(*args.compare)
        return
    import memsim.crossbar.config  # noqa: F401

    print(f"memsim from {ROOT} ({'after' if NEW else 'before'} issue 10)")
    if args.save_digits:
        np.savez(args.save_digits, **digits_params(None))
    t_all = time.perf_counter()
    for k in (int(s) for s in args.items.split(",")):
        t0 = time.perf_counter()
        try:
            if k == 3:
                item3(args.digits)
            elif k == 7:
                item7(tuple(int(s) for s in args.ir_sizes.split(",")))
            else:
                globals()[f"item{k}"]()
        except Exception as exc:  # one item's failure on the old code must not hide the rest
            out(k, "item failed", f"{type(exc).__name__}: {str(exc)[:200]}")
        print(f"# item {k}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(f"# total {time.perf_counter() - t_all:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
