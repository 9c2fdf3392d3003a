"""The evaluator of study points: accuracy (functional path) and latency/energy (chip path).

A point's config holds card names and parameters. Recognised parameters (any may be a grid
axis or fixed):

- ``workload`` (e.g. "digits-cnn"), ``chip`` ("hermes-64core"), ``tile`` ("hermes-core"),
  ``device`` ("pcm-hermes-2dev");
- tile parameters by their TileConfig names: ``adc_bits``, ``dac_bits``, ``encoding``,
  ``drift_compensation``, ``devices_per_polarity``, ``rows``, ``cols``, ``adc_mode`` …;
- ``time_s``: time after programming of the accuracy measurement;
- ``noise_scale``: scales every noise source of the device (programming, drift spread, read);
- ``training``: "plain" or "hwa" (digits models only);
- ``adc_calibration``: set the converter ranges from 256 training images after programming
  (:func:`memsim.calibrate`; default true);
- ``inferences``: pipelined inferences simulated on the chip (default 20);
- ``fit``: what the chip does with a network larger than itself ("error", "multi-chip",
  "reprogram"; default "error");
- ``measure_accuracy``: false skips the functional path (energy-only studies);
- ``digital``: list of digital-engine cards for the baseline (default GPU- and CPU-class);
- chip parameters (no card copy needed): ``cores``, ``mvm_clock_hz``, ``ldpu_clock_hz``,
  ``gdu_clock_hz``; ``streaming`` (default true) and ``activations`` ("on-chip" or
  "off-chip") choose the chip's schedule.

Accuracy is measured on the digits test set for the digits workloads (NaN for layer-shape
networks, which have random weights). The chip path does not depend on the data or the
seed, so it is simulated once per mapping and cached in the process.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import numpy as np

from memsim.studies.runner import register_evaluator

__all__ = ["evaluate_point"]

_TILE_KEYS = ("adc_bits", "dac_bits", "encoding", "drift_compensation", "devices_per_polarity",
              "rows", "cols", "adc_mode", "input_scaling", "output_range", "weight_scaling",
              "significance", "ir_drop", "adc_noise_fs", "adc_noise_lsb", "affine_calibration",
              "read_asymmetry", "iv_model", "phase_conversion", "bitline")
_CHIP_KEYS = ("cores", "mvm_clock_hz", "ldpu_clock_hz", "gdu_clock_hz")
_KNOWN = {"workload", "chip", "tile", "device", "time_s", "noise_scale", "training",
          "adc_calibration", "measure_accuracy", "fit", "streaming", "activations",
          "inferences", "digital", "batch", "test_samples", *_TILE_KEYS, *_CHIP_KEYS}


def _split(config: dict[str, Any]):
    unknown = set(config) - _KNOWN
    if unknown:
        raise ValueError(f"unknown study parameters {sorted(unknown)}; known: {sorted(_KNOWN)}")
    overrides = {k: config[k] for k in _TILE_KEYS if k in config}
    if "adc_bits" in overrides and overrides["adc_bits"] in ("none", None):
        overrides["adc_bits"] = None
    return overrides


@functools.lru_cache(maxsize=32)
def _chip_metrics(key: str) -> dict[str, float]:
    """Latency and energy of a mapping on a chip (cached: timing ignores data and seed)."""
    import memsim
    from memsim.chip import load_digital
    from memsim.workloads import load_workload

    cfg = json.loads(key)
    graph = load_workload(cfg["workload"], np.random.default_rng(0))
    net = memsim.map_network(graph, tile=cfg["tile"], device="ideal", **cfg["overrides"])
    geometry = {k: cfg["overrides"][k] for k in ("rows", "cols") if k in cfg["overrides"]}
    # cores with the swept array size, and any swept chip parameter
    chip = memsim.load_chip(cfg["chip"], **geometry, **cfg.get("chip_overrides", {}))
    run = chip.simulate(net, inferences=cfg["inferences"], record=False, fit=cfg["fit"],
                        streaming=cfg.get("streaming", True),
                        activations=cfg.get("activations", "on-chip"))
    out = {"latency_s": run.latency_s, "throughput_per_s": run.throughput_per_s,
           "energy_j": run.energy_j, "tops": run.tops, "tops_per_w": run.tops_per_w}
    for name in cfg["digital"]:
        est = load_digital(name).estimate(net)
        kind = "gpu" if "gpu" in name else "cpu" if "cpu" in name else name
        out[f"digital_{kind}_energy_j"] = est.energy_j
        out[f"digital_{kind}_latency_s"] = est.latency_s
    return out


def _digits_accuracy(config: dict[str, Any], overrides: dict[str, Any], seed: int) -> float:
    import memsim
    from memsim.workloads.digits import digits_torch, hwa_noise, load_digits_split
    from memsim.workloads.training import analog_accuracy

    kind = config["workload"].split("-", 1)[1]
    device = memsim.load_device(config["device"])
    scale = float(config.get("noise_scale", 1.0))
    if scale != 1.0:
        device = device.with_noise(programming=scale, drift_spread=scale, read=scale)
    training = config.get("training", "plain")
    if training == "hwa":
        tile = memsim.load_tile_config(config["tile"], **overrides)
        model = digits_torch(kind, hwa=hwa_noise(tile, device))
    elif training == "plain":
        model = digits_torch(kind)
    else:
        raise ValueError(f"training = {training!r}; known: plain, hwa")
    x_tr, _, x_te, y_te = load_digits_split()
    n = int(config.get("test_samples", len(y_te)))
    x_cal = x_tr[:256] if config.get("adc_calibration", True) else None
    res = analog_accuracy(model, x_te[:n], y_te[:n], tile=config["tile"], device=device,
                          times=[float(config.get("time_s", 1.0))], seeds=1, seed=seed,
                          x_calibrate=x_cal, **overrides)
    return float(res["accuracy"][0, 0]), res["saturation_rate"]


@register_evaluator("accuracy-energy")
def evaluate_point(config: dict[str, Any], seed: int) -> dict[str, float]:
    """Metrics of one study point (see the module docstring for the parameters)."""
    overrides = _split(config)
    for key in ("workload", "chip", "tile", "device"):
        if key not in config:
            raise ValueError(f"study point needs {key!r} (top level, [fixed] or [grid])")
    digital = config.get("digital", ["digital-gpu", "digital-cpu"])
    key = json.dumps({"workload": config["workload"], "tile": config["tile"],
                      "chip": config["chip"], "overrides": overrides,
                      "inferences": int(config.get("inferences", 20)),
                      "fit": config.get("fit", "error"),
                      "chip_overrides": {k: config[k] for k in _CHIP_KEYS if k in config},
                      "streaming": bool(config.get("streaming", True)),
                      "activations": config.get("activations", "on-chip"),
                      "digital": list(digital)}, sort_keys=True)
    metrics = dict(_chip_metrics(key))
    if not config.get("measure_accuracy", True):
        return metrics
    if config["workload"].startswith("digits-"):
        acc, sat = _digits_accuracy(config, overrides, seed)
    else:
        acc, sat = math.nan, math.nan
    metrics["accuracy"] = acc
    metrics["adc_saturation"] = sat
    return metrics
