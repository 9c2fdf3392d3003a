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
- ``adc_calibration``: set each tile's ADC range from 256 training images (default true);
- ``inferences``: pipelined inferences simulated on the chip (default 20);
- ``fit``: what the chip does with a network larger than itself ("error", "multi-chip",
  "reprogram"; default "error");
- ``measure_accuracy``: false skips the functional path (energy-only studies);
- ``digital``: list of digital-engine cards for the baseline (default GPU- and CPU-class);
- ``test_samples``: digits test images used for the accuracy (1 to 540; default all).

Every parameter is declared in :data:`PARAMS` with its type and range (true/false, positive
integers, ranges with units, choices, card names): a study is checked against them when it
is loaded, before any point runs, and so is a config given to :func:`evaluate_point`
directly. The metrics a point returns are :func:`point_metrics`.

Accuracy is measured on the digits test set for the digits workloads; for layer-shape
networks (random weights) it is stored as null with the reason. The chip path does not
depend on the data or the seed, so it is simulated once per mapping and cached in the
process.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from memsim.crossbar.config import (
    ADC_MODES,
    DRIFT_COMPENSATIONS,
    ENCODINGS,
    INPUT_SCALINGS,
    IR_DROP_MODES,
    WEIGHT_SCALINGS,
)
from memsim.errors import StudyError
from memsim.studies.params import Param
from memsim.studies.runner import NoValue, register_evaluator

__all__ = ["PARAMS", "evaluate_point", "point_metrics"]

#: Test images of the digits split (30 % of 1797, stratified): the most ``test_samples``.
DIGITS_TEST_SAMPLES = 540

_TILE_PARAMS: dict[str, Param] = {
    "adc_bits": Param.integer(lo=1, hi=24, none=True, help="ADC resolution (\"none\": ideal)"),
    "dac_bits": Param.integer(lo=2, hi=24, none=True, help="DAC resolution (\"none\": ideal)"),
    "encoding": Param.choice(*ENCODINGS),
    "drift_compensation": Param.choice(*DRIFT_COMPENSATIONS),
    "devices_per_polarity": Param.integer(lo=1, hi=2),
    "rows": Param.integer(lo=1, hi=65536, help="crossbar rows (also the chip's cores)"),
    "cols": Param.integer(lo=1, hi=65536, help="crossbar columns"),
    "adc_mode": Param.choice(*ADC_MODES),
    "input_scaling": Param.choice(*INPUT_SCALINGS),
    "output_range": Param.real(lo=0.0, lo_open=True, hi=65536.0,
                               help="ADC full scale, normalised units"),
    "weight_scaling": Param.choice(*WEIGHT_SCALINGS),
    "significance": Param.real(lo=1.0, hi=1e3),
    "ir_drop": Param.choice(*IR_DROP_MODES),
    "adc_noise": Param.real(lo=0.0, hi=1e3, help="σ per conversion, normalised units"),
    "affine_calibration": Param.boolean(),
}
_TILE_KEYS = tuple(_TILE_PARAMS)

#: Every parameter of the accuracy-energy evaluator, typed (checked at study load time).
PARAMS: dict[str, Param] = {
    "workload": Param.card("workload", required=True),
    "chip": Param.card("chip", required=True),
    "tile": Param.card("tile", required=True),
    "device": Param.card("devices", required=True),
    "time_s": Param.real(lo=0.0, hi=1e10, unit="s", default=1.0,
                         help="time after programming of the accuracy measurement"),
    "noise_scale": Param.real(lo=0.0, hi=1e3, default=1.0,
                              help="factor on every noise source of the device"),
    "training": Param.choice("plain", "hwa", default="plain"),
    "adc_calibration": Param.boolean(default=True),
    "measure_accuracy": Param.boolean(default=True),
    "fit": Param.choice("error", "multi-chip", "reprogram", default="error"),
    "inferences": Param.integer(lo=1, hi=1_000_000, default=20),
    "digital": Param.cards("digital"),
    "test_samples": Param.integer(lo=1, hi=DIGITS_TEST_SAMPLES,
                                  help="digits test images used for the accuracy"),
    **_TILE_PARAMS,
}
_KNOWN = frozenset(PARAMS)
_DEFAULT_DIGITAL = ("digital-gpu", "digital-cpu")
_CHIP_METRICS = ("latency_s", "throughput_per_s", "energy_j", "tops", "tops_per_w")


def _digital_kind(name: str) -> str:
    return "gpu" if "gpu" in name else "cpu" if "cpu" in name else name


def point_metrics(config: Mapping[str, Any]) -> set[str]:
    """The metrics :func:`evaluate_point` returns for ``config``."""
    out = set(_CHIP_METRICS)
    for name in config.get("digital", _DEFAULT_DIGITAL):
        kind = _digital_kind(name)
        out |= {f"digital_{kind}_energy_j", f"digital_{kind}_latency_s"}
    if config.get("measure_accuracy", True):
        out |= {"accuracy", "adc_saturation"}
    return out


@functools.lru_cache(maxsize=256)
def _check_tile(tile: str, overrides_json: str) -> None:
    from memsim.crossbar import load_tile_config

    overrides = json.loads(overrides_json)
    load_tile_config(tile).with_(**overrides)


def _overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    overrides = {k: config[k] for k in _TILE_KEYS if k in config}
    for key in ("adc_bits", "dac_bits"):
        if overrides.get(key) == "none":
            overrides[key] = None
    return overrides


def check_point(config: Mapping[str, Any]) -> None:
    """Combinations of values the evaluator cannot run (raises ``ValueError``)."""
    _check_tile(config["tile"], json.dumps(_overrides(config), sort_keys=True))
    if config.get("training", "plain") == "hwa" and \
            not str(config["workload"]).startswith("digits-"):
        raise StudyError(f"training = 'hwa' needs a digits workload (digits-mlp, digits-cnn);"
                         f" workload = {config['workload']!r} has random weights")


def _validate(config: Mapping[str, Any]) -> dict[str, Any]:
    """Type-check a config given directly to :func:`evaluate_point`; tile overrides."""
    unknown = sorted(set(config) - _KNOWN)
    if unknown:
        raise StudyError(f"unknown study parameters {unknown}; known: {sorted(_KNOWN)}")
    for key, p in PARAMS.items():
        if key in config:
            p.check(config[key], f"study parameter {key}")
        elif p.required:
            raise StudyError(f"study point needs {key!r} (top level, [fixed] or [grid])")
    try:
        check_point(config)
    except StudyError:
        raise
    except ValueError as exc:
        raise StudyError(f"study point {dict(config)}: {exc}") from None
    return _overrides(config)


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
    chip = memsim.load_chip(cfg["chip"], **geometry)  # cores with the swept array size
    run = chip.simulate(net, inferences=cfg["inferences"], record=False, fit=cfg["fit"])
    out = {"latency_s": run.latency_s, "throughput_per_s": run.throughput_per_s,
           "energy_j": run.energy_j, "tops": run.tops, "tops_per_w": run.tops_per_w}
    for name in cfg["digital"]:
        est = load_digital(name).estimate(net)
        kind = _digital_kind(name)
        out[f"digital_{kind}_energy_j"] = est.energy_j
        out[f"digital_{kind}_latency_s"] = est.latency_s
    return out


def _digits_accuracy(config: dict[str, Any], overrides: dict[str, Any], seed: int) -> float:
    import memsim
    from memsim.workloads.digits import accuracy, digits_model, hwa_noise, load_digits_split

    kind = config["workload"].split("-", 1)[1]
    device = memsim.load_device(config["device"])
    scale = float(config.get("noise_scale", 1.0))
    if scale != 1.0:
        device = device.with_noise(programming=scale, drift_spread=scale, read=scale)
    training = config.get("training", "plain")
    if training == "hwa":
        tile = memsim.load_tile(config["tile"], device=device, **overrides)
        graph = digits_model(kind, hwa=hwa_noise(tile.config, device))
    elif training == "plain":
        graph = digits_model(kind)
    else:
        raise ValueError(f"training = {training!r}; known: plain, hwa")
    x_tr, _, x_te, y_te = load_digits_split()
    n = int(config.get("test_samples", len(y_te)))
    net = memsim.map_network(graph, tile=config["tile"], device=device, **overrides)
    if config.get("adc_calibration", True):
        net.calibrate_adc(x_tr[:256])  # per-tile ADC range from training data, as on chip
    prog, run = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    net.program(prog)
    logits = net.forward(x_te[:n], float(config.get("time_s", 1.0)), run)
    return accuracy(logits, y_te[:n]), net.saturation_rate()


@register_evaluator("accuracy-energy", params=PARAMS, metrics=point_metrics,
                    check=check_point)
def evaluate_point(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Metrics of one study point (see the module docstring for the parameters).

    A metric that cannot be measured for this point (the accuracy of a layer-shape network
    with random weights) is a :class:`~memsim.studies.runner.NoValue` with the reason.
    """
    overrides = _validate(config)
    digital = config.get("digital", list(_DEFAULT_DIGITAL))
    key = json.dumps({"workload": config["workload"], "tile": config["tile"],
                      "chip": config["chip"], "overrides": overrides,
                      "inferences": int(config.get("inferences", 20)),
                      "fit": config.get("fit", "error"),
                      "digital": list(digital)}, sort_keys=True)
    metrics: dict[str, Any] = dict(_chip_metrics(key))
    if not config.get("measure_accuracy", True):
        return metrics
    if config["workload"].startswith("digits-"):
        acc, sat = _digits_accuracy(config, overrides, seed)
    else:
        why = (f"workload {config['workload']!r} is a layer-shape network with random "
               "weights: no accuracy (set measure_accuracy = false)")
        acc, sat = NoValue(why), NoValue(why)
    metrics["accuracy"] = acc
    metrics["adc_saturation"] = sat
    return metrics
