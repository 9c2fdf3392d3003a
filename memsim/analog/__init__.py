"""Analog layers inside the user's own PyTorch model.

::

    amodel = memsim.analog(model, tile="hermes-core", device="pcm-hermes-2dev")
    memsim.program(amodel, seed=0)        # programming error and drift exponents, once
    memsim.set_time(amodel, 86400.0)       # one day after programming
    logits = amodel(x)                     # eval(): the programmed tiles; CPU or CUDA

:func:`analog` returns a new module (the user's model is not touched, its train/eval modes
are kept) in which every ``Linear``, ``Conv1d``/``Conv2d`` (grouped and depthwise included),
``LSTM``/``GRU`` and ``MultiheadAttention`` (so also the transformer encoder and decoder
layers built on it) is an analog module (:mod:`memsim.analog.layers`). Everything else is
the user's own torch code. In ``train()`` mode the analog modules train their float weights
with hardware-aware noise (:mod:`memsim.analog.hwa`); after training, :func:`program` writes
the trained weights to the tiles.

:func:`describe` records one batch and returns the description the chip simulates
(``memsim.load_chip(...).simulate(amodel)`` works after it); :func:`report` lists what is
analog and what stays digital, with converter saturation counts.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import math
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from memsim._format import Report
from memsim._memory import release_free_memory
from memsim._progress import progress
from memsim.analog.hwa import HWANoise
from memsim.analog.layers import (
    AnalogConv,
    AnalogGRU,
    AnalogLinear,
    AnalogLSTM,
    AnalogModule,
    AnalogMultiheadAttention,
    _Context,
)
from memsim.crossbar.config import TileConfig, load_tile_config
from memsim.devices import Device, load_device
from memsim.errors import CalibrationWarning, ConfigError, InputError

__all__ = [
    "AnalogConv",
    "AnalogGRU",
    "AnalogLSTM",
    "AnalogLinear",
    "AnalogModule",
    "AnalogMultiheadAttention",
    "CalibrationWarning",
    "HWANoise",
    "analog",
    "analog_modules",
    "at_time",
    "calibrate",
    "describe",
    "format_analog_report",
    "program",
    "report",
    "set_time",
]

#: weight-bearing torch modules that stay digital (reported, never dropped silently)
_DIGITAL_WEIGHTS = (nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                    nn.Bilinear, nn.RNN, nn.Embedding, nn.EmbeddingBag)


def _convert(module: nn.Module, ctx: _Context, prefix: str, digital: list) -> nn.Module:
    def make(child: nn.Module, name: str) -> nn.Module | None:
        if isinstance(child, nn.MultiheadAttention):
            return AnalogMultiheadAttention(child, ctx, name)
        if isinstance(child, nn.LSTM):
            return AnalogLSTM(child, ctx, name)
        if isinstance(child, nn.GRU):
            return AnalogGRU(child, ctx, name)
        if isinstance(child, nn.Conv1d | nn.Conv2d) and not isinstance(
                child, nn.ConvTranspose1d | nn.ConvTranspose2d):
            return AnalogConv(child, ctx, name)
        if isinstance(child, nn.Linear):
            return AnalogLinear(child, ctx, name)
        return None

    root = make(module, prefix or "model")
    if root is not None:
        root.train(module.training)
        return root
    for name, child in list(module.named_children()):
        full = f"{prefix}.{name}" if prefix else name
        new = make(child, full)
        if new is not None:
            new.train(child.training)
            setattr(module, name, new)
        else:
            if isinstance(child, _DIGITAL_WEIGHTS):
                digital.append((full, type(child).__name__))
            _convert(child, ctx, full, digital)
    return module


def analog(model: nn.Module, tile: str | Path | TileConfig = "hermes-core",
           device: str | Path | Device = "pcm-hermes-2dev", *, exact: bool = False,
           hwa: HWANoise | str | None = "auto", hwa_time_s: float = 86400.0,
           seed: int = 0, copy: bool = True, **overrides: Any) -> nn.Module:
    """A copy of ``model`` whose weight layers run on memsim tiles.

    Args:
        model: any ``torch.nn.Module``; it is deep-copied, never changed.
        tile: tile card (name or path) or a :class:`~memsim.crossbar.TileConfig`.
        device: device card (name or path) or a :class:`~memsim.devices.Device`.
        exact: the exact limit: every non-ideality off (the tile's ``noise_free``); the
            converted model then computes what ``model`` computes, to float tolerance.
        hwa: the noise of ``train()`` mode: "auto" (measured from the cards at
            ``hwa_time_s`` on first use), an :class:`HWANoise`, or None (train() then runs
            the float weights without noise).
        seed: seed of the hardware-aware training noise.
        copy: False converts ``model`` itself instead of a copy (no second copy of the
            weights in memory, for large models; ``model`` becomes the analog model).
        overrides: tile parameters by name (e.g. ``adc_bits=6``).
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"memsim.analog needs a torch.nn.Module, got {type(model).__name__}")
    cfg = tile if isinstance(tile, TileConfig) else load_tile_config(tile)
    if overrides:
        cfg = cfg.with_(**overrides)
    dev = device if isinstance(device, Device) else load_device(device)
    if exact:
        cfg = cfg.noise_free()
    from memsim.crossbar.cell import CellModel

    CellModel(cfg, dev)  # a clear error now for a device that does not fit the cell
    if isinstance(hwa, str) and hwa != "auto":
        raise ConfigError(f"hwa = {hwa!r}: use 'auto', an HWANoise or None")
    if exact and hwa == "auto":
        hwa = None  # the exact limit trains without hardware noise too
    ctx = _Context(cfg, dev, exact, hwa, hwa_seed=seed)
    ctx.hwa_time_s = float(hwa_time_s)
    ctx.warned = False
    new = _copy.deepcopy(model) if copy else model
    digital: list[tuple[str, str]] = []
    new = _convert(new, ctx, "", digital)
    ctx.unconverted = digital
    new._memsim = ctx
    new.register_forward_pre_hook(_first_batch_ranges)
    if not analog_modules(new):
        warnings.warn("memsim.analog: the model has no Linear, Conv1d/2d, LSTM, GRU or "
                      "MultiheadAttention layer: nothing runs on tiles", stacklevel=2)
    if digital:
        warnings.warn("memsim.analog: these weight layers stay digital (no analog version "
                      f"yet): {', '.join(f'{n} ({t})' for n, t in digital)}", stacklevel=2)
    return new


def _needs_ranges(amodel: nn.Module) -> bool:
    return any(arr.config.input_scaling == "layer" and arr.input_range_ is None
               for m in analog_modules(amodel) for arr in m._arrays.values())


def _first_batch_ranges(amodel: nn.Module, args: tuple) -> None:
    """Forward pre-hook of a converted model: in eval() mode, layers with per-layer input
    ranges that were never calibrated get them from this batch (memsim.calibrate on it, all
    steps of recurrent layers included), with one CalibrationWarning."""
    ctx = amodel._memsim
    if amodel.training or ctx.calibrating is not None or ctx.recorder is not None \
            or not args or not _needs_ranges(amodel):
        return
    if not all(m.programmed for m in analog_modules(amodel)):
        return  # the layer's own error (program first) comes in the forward
    warnings.warn("memsim: layers with input_scaling = 'layer' set their input ranges from "
                  "the first batch they saw; call memsim.calibrate(model, x) with "
                  "representative data to choose them", CalibrationWarning, stacklevel=3)
    calibrate(amodel, args if len(args) > 1 else args[0], adc=False, only_missing=True)


def _context(amodel: nn.Module) -> _Context:
    ctx = getattr(amodel, "_memsim", None)
    if ctx is None:
        raise InputError("this model was not converted by memsim.analog(model, ...)")
    return ctx


def analog_modules(amodel: nn.Module) -> list[AnalogModule]:
    """The analog modules of a converted model, in module order."""
    return [m for m in amodel.modules() if isinstance(m, AnalogModule)]


def program(amodel: nn.Module, seed: int | np.random.Generator | torch.Generator = 0, *,
            at_s: float = 0.0) -> nn.Module:
    """Program every analog layer from its current float weights (once: programming error,
    drift exponents, converter mismatch, calibration), at time ``at_s`` on the model's
    clock. Each layer draws from its own stream of ``seed``. Returns ``amodel``."""
    ctx = _context(amodel)
    if isinstance(seed, torch.Generator):
        seed = int(seed.initial_seed())
    if isinstance(seed, np.random.Generator):
        ss = np.random.SeedSequence(int(seed.integers(2**63)))
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        ss = np.random.SeedSequence(int(seed))
    else:
        raise InputError(f"seed = {seed!r}: use an integer >= 0, a numpy Generator or a "
                         "torch.Generator")
    if not (isinstance(at_s, int | float) and math.isfinite(at_s) and at_s >= 0):
        raise InputError(f"at_s = {at_s!r} must be a time in seconds >= 0")
    mods = analog_modules(amodel)
    with progress(len(mods), "programming", "layer") as bar:
        for m, child in zip(mods, ss.spawn(len(mods)), strict=True):
            m.program_tiles(np.random.default_rng(child), float(at_s))
            bar.update(1)
    ctx.t_s = max(ctx.t_s, float(at_s))
    release_free_memory()
    return amodel


def set_time(amodel: nn.Module, t_s: float) -> nn.Module:
    """Set the model's clock: ``t_s`` seconds on the programming clock (layers programmed at
    0 are read ``t_s`` seconds after programming)."""
    ctx = _context(amodel)
    if isinstance(t_s, bool) or not isinstance(t_s, int | float) or not math.isfinite(t_s) \
            or t_s < 0:
        raise InputError(f"t_s = {t_s!r} must be a time in seconds >= 0")
    ctx.t_s = float(t_s)
    return amodel


@contextlib.contextmanager
def at_time(amodel: nn.Module, t_s: float) -> Iterator[nn.Module]:
    """``with memsim.at_time(amodel, 3600.0): y = amodel(x)`` — the clock is restored after."""
    ctx = _context(amodel)
    old = ctx.t_s
    set_time(amodel, t_s)
    try:
        yield amodel
    finally:
        ctx.t_s = old


def describe(amodel: nn.Module, x: Any, name: str | None = None):
    """Record one batch of ``x`` (the first sample is enough) through the programmed model
    and return the :class:`~memsim.mapping.description.NetworkDescription` the chip
    simulates; it is kept on the model for ``chip.simulate(amodel)``."""
    from memsim.analog.record import record

    ctx = _context(amodel)
    x1 = tuple(t[:1] for t in x) if isinstance(x, tuple) else x[:1]
    was = amodel.training
    amodel.eval()
    try:
        desc = record(amodel, x1, ctx, name or type(amodel).__name__)
    finally:
        amodel.train(was)
    ctx.description = desc
    return desc


def calibrate(amodel: nn.Module, x: Any, *, inputs: bool = True, adc: bool = True,
              quantile: float = 0.999, margin: float = 1.2,
              only_missing: bool = False) -> dict[str, Any]:
    """Set each layer's converter ranges from data, as a chip's per-layer calibration does.

    Runs ``x`` through the model with exact products (float weights) and sets, per row
    tile, the input range of "layer" input scaling (the abs-max of the tile's inputs) and
    the ADC full scale (the ``quantile`` of the absolute normalised column output times
    ``margin``).
    Noise referred to the full scale follows it. Layers with an affine correction or drift
    compensation are re-calibrated. Needs a programmed model. Returns the ranges per layer.
    ``only_missing``: set only the input ranges not set yet (the first-batch rule).
    """
    if not 0 < quantile <= 1 or not margin > 0:
        raise InputError(f"quantile = {quantile} must be in (0, 1] and margin = {margin} > 0")
    ctx = _context(amodel)
    mods = analog_modules(amodel)
    for m in mods:
        for arr in m._arrays.values():
            arr._require_programmed()
        if not m._arrays:
            m._array()  # the error that says to program first
    stats: dict[tuple[int, str], dict[str, list]] = {}
    ctx.calibrating = stats
    ctx.calibrate_adc = adc
    was = amodel.training
    amodel.eval()
    try:
        with torch.no_grad():
            amodel(*x) if isinstance(x, tuple) else amodel(x)
    finally:
        ctx.calibrating = None
        amodel.train(was)
    out: dict[str, Any] = {}
    for m in mods:
        for key, arr in m._arrays.items():
            st = stats.get((id(m), key))
            if st is None:
                continue
            if only_missing and arr.input_range_ is not None:
                continue
            if inputs and st["absmax"]:
                arr.set_input_range_from(torch.stack(st["absmax"]).amax(0))
            if adc and st["y"]:
                y = torch.cat(st["y"], dim=-1)  # (G, K, n)
                q = torch.quantile(y.double(), quantile, dim=-1) if y.shape[-1] < 2**24 \
                    else y.double().amax(-1)
                arr.output_range_ = np.maximum(q.numpy() * margin, 1e-6)
            if adc and (arr.config.affine_calibration
                        or arr.config.drift_compensation != "none"):
                arr._calibrate(m._rng)
                arr._times = {}
            out[arr.name] = {
                "input_range": None if arr.input_range_ is None
                else arr.input_range_.numpy().tolist(),
                "output_range": arr.full_scale().tolist()}
    return out


def report(amodel: nn.Module) -> Report:
    """What is analog (matrices, tiles, utilisation), what stays digital, and the converter
    saturation of the last forward of every layer (a :class:`~memsim.Report`; printed, a
    table per layer)."""
    ctx = _context(amodel)
    cfg = ctx.config
    layers = []
    for m in analog_modules(amodel):
        mats = {k: (tuple(v.shape), u) for k, (v, u) in m.weight_matrices().items()}
        entry = {"name": m.layer_name, "type": type(m).__name__,
                 "matrices": {k: list(s) for k, (s, _) in mats.items()},
                 "programmed": m.programmed}
        if m.programmed:
            tiles = sum(a.tiles for a in m._arrays.values())
            weights = sum(int(np.prod(s)) for s, _ in mats.values())
            sat = m.saturation()
            entry.update(tiles=tiles, utilization=weights / (tiles * cfg.rows * cfg.cols),
                         conversions=sat.conversions, saturated=sat.saturated,
                         saturation_rate=sat.rate, inputs_clipped=sat.inputs_clipped,
                         state_bytes=sum(a.state_bytes() for a in m._arrays.values()))
        layers.append(entry)
    digital = [{"name": n, "type": t, "why": "no analog version of this layer type"}
               for n, t in getattr(ctx, "unconverted", [])]
    out = {"tile": cfg.name, "device": ctx.device.name, "time_s": ctx.t_s,
           "exact": ctx.exact, "layers": layers, "digital_weight_layers": digital}
    if ctx.description is not None:
        out["description"] = ctx.description.report()
    return Report("analog-model", out, format_analog_report)


def format_analog_report(rep: Mapping[str, Any]) -> str:
    """The text of :func:`report`: one row per analog layer, then the digital weight layers."""
    from memsim._format import table

    rows = []
    for la in rep["layers"]:
        mats = " + ".join("x".join(map(str, s)) for s in la["matrices"].values())
        if la.get("programmed"):
            rows.append([la["name"], la["type"], mats, str(la["tiles"]),
                         f"{100 * la['utilization']:.1f} %", f"{la['conversions']}",
                         f"{100 * la['saturation_rate']:.3f} %"])
        else:
            rows.append([la["name"], la["type"], mats, "—", "—", "—", "not programmed"])
    when = "time not set" if rep["time_s"] is None else f"t = {rep['time_s']:g} s"
    lines = [f"analog model: tile {rep['tile']}, device {rep['device']}, {when}"
             + (" (exact limit)" if rep.get("exact") else ""), "",
             table(["layer", "type", "matrices", "tiles", "utilization", "conversions",
                    "ADC saturated"], rows, left=3)]
    lines += [f"digital: {d['name']} ({d['type']}): {d['why']}"
              for d in rep["digital_weight_layers"]]
    return "\n".join(lines)


class _CallableModule(type(contextlib)):
    """``memsim.analog`` is this package and, called, :func:`analog` (the README's habit
    ``memsim.analog(model, ...)`` next to ``import memsim.analog``)."""

    def __call__(self, model: nn.Module, *args: Any, **kwargs: Any) -> nn.Module:
        return analog(model, *args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
