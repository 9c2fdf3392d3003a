"""The evaluator of study points: accuracy (functional path) and latency/energy (chip path).

A point's config holds card names and parameters. Recognised parameters (any may be a grid
axis or fixed):

- ``workload`` (e.g. "digits-cnn"), ``chip`` ("hermes-64core"), ``tile`` ("hermes-core"),
  ``device`` ("pcm-hermes-2dev");
- tile parameters by their TileConfig names: ``adc_bits``, ``dac_bits``, ``encoding``,
  ``drift_compensation``, ``devices_per_polarity``, ``rows``, ``cols``, ``adc_mode`` …;
- ``time_s``: time after programming of the accuracy measurement;
- ``noise_scale``: scales every noise source of the device (programming, drift spread, read);
- ``training``: "plain" or "hwa" (trained workloads only);
- ``adc_calibration``: set the converter ranges from 256 training images after programming
  (:func:`memsim.calibrate`; default true);
- ``inferences``: pipelined inferences simulated on the chip (default 20); too few for a
  steady state (about three times the chip's inferences in flight are needed) leave
  ``throughput_per_s`` and ``tops`` unmeasured, with the reason;
- ``fit``: what the chip does with a network larger than itself ("error", "multi-chip",
  "reprogram"; default "error");
- ``measure_accuracy``: false skips the functional path (energy-only studies);
- ``digital``: list of digital-engine cards for the baseline (default GPU- and CPU-class);
- chip parameters (no card copy needed): ``cores``, ``mvm_clock_hz``, ``ldpu_clock_hz``,
  ``gdu_clock_hz``; ``streaming`` (default true) and ``activations`` ("on-chip" or
  "off-chip") choose the chip's schedule;
- ``test_samples``: test images of the workload used for the accuracy (1 to the size of its
  test split: 540 for digits, 1000 for MNIST; default all).

Every parameter is declared in :data:`PARAMS` with its type and range (true/false, positive
integers, ranges with units, choices, card names; tile and chip fields are checked by
:class:`~memsim.crossbar.TileConfig` and the chip card, their one declaration): a study is
checked against them when it is loaded, before any point runs, and so is a config given to
:func:`evaluate_point` directly. The metrics a point returns are :func:`point_metrics`.

Accuracy is measured on the test set of the trained workloads
(:mod:`memsim.workloads.trained`); for layer-shape networks (random weights) it is stored as
null with the reason. The chip path does not
depend on the data or the seed, so it is simulated once per mapping and cached in the
process. Trained workloads that have no memsim Graph (the KANs) reach the chip as their torch
model converted with :func:`memsim.analog` and recorded by :func:`memsim.describe`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from memsim.chip.plan import ACTIVATION_MODES, FIT_MODES
from memsim.errors import StudyError
from memsim.studies.params import Param
from memsim.studies.runner import NoValue, declare_evaluator

__all__ = ["PARAMS", "evaluate_point", "point_metrics"]

#: The largest test split of a built-in trained workload (MNIST: 20 % of 5,000 images): the
#: most ``test_samples``; each workload's own size is checked in :func:`check_point`.
MAX_TEST_SAMPLES = 1000

_TILE_KEYS = ("adc_bits", "dac_bits", "encoding", "drift_compensation", "devices_per_polarity",
              "rows", "cols", "adc_mode", "input_scaling", "output_range", "weight_scaling",
              "significance", "ir_drop", "adc_noise_fs", "adc_noise_lsb", "affine_calibration",
              "read_asymmetry", "iv_model", "phase_conversion", "bitline")
_CHIP_KEYS = ("cores", "mvm_clock_hz", "ldpu_clock_hz", "gdu_clock_hz")

#: Every parameter of the accuracy-energy evaluator, typed (checked at study load time).
#: Tile and chip fields are checked, with the study's cards, by TileConfig and the chip card.
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
    "fit": Param.choice(*FIT_MODES, default="error"),
    "streaming": Param.boolean(default=True),
    "activations": Param.choice(*ACTIVATION_MODES, default="on-chip"),
    "inferences": Param.integer(lo=1, hi=1_000_000, default=20),
    "digital": Param.cards("digital"),
    "test_samples": Param.integer(lo=1, hi=MAX_TEST_SAMPLES,
                                  help="test images of the workload used for the accuracy"),
    **{k: Param.field("tile") for k in _TILE_KEYS},
    **{k: Param.field("chip") for k in _CHIP_KEYS},
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


def _overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    overrides = {k: config[k] for k in _TILE_KEYS if k in config}
    for key in ("adc_bits", "dac_bits"):
        if overrides.get(key) == "none":
            overrides[key] = None
    return overrides


@functools.lru_cache(maxsize=256)
def _check_cards(tile: str, chip: str, overrides_json: str, chip_json: str) -> None:
    """The tile and chip cards accept the swept fields (their own declarations check them)."""
    from memsim.chip import load_chip_config
    from memsim.crossbar import load_tile_config

    overrides = json.loads(overrides_json)
    load_tile_config(tile).with_(**overrides)
    geometry = {k: overrides[k] for k in ("rows", "cols") if k in overrides}
    load_chip_config(chip, **geometry, **json.loads(chip_json))


def check_point(config: Mapping[str, Any]) -> None:
    """Combinations of values the evaluator cannot run (raises ``ValueError``)."""
    _check_cards(config["tile"], config["chip"], json.dumps(_overrides(config), sort_keys=True),
                 json.dumps({k: config[k] for k in _CHIP_KEYS if k in config}, sort_keys=True))
    from memsim.workloads.trained import TRAINED, get_trained

    if config.get("training", "plain") == "hwa" and str(config["workload"]) not in TRAINED:
        raise StudyError(f"training = 'hwa' needs a trained workload ({', '.join(TRAINED)});"
                         f" workload = {config['workload']!r} has random weights")
    if "test_samples" in config and str(config["workload"]) in TRAINED:
        size = get_trained(str(config["workload"])).test_size()
        if config["test_samples"] > size:
            raise StudyError(f"test_samples = {config['test_samples']} but workload "
                             f"{config['workload']!r} has {size} test images")


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
    from memsim.chip import load_digital_config
    from memsim.workloads import list_workloads, load_workload

    cfg = json.loads(key)
    if cfg["workload"] in list_workloads():
        graph = load_workload(cfg["workload"], np.random.default_rng(0))
        net = memsim.map_network(graph, tile=cfg["tile"], device="ideal", **cfg["overrides"])
    else:  # a trained torch workload without a Graph (transformer): its recorded description
        from memsim.workloads.trained import describe_trained

        net = describe_trained(cfg["workload"], cfg["tile"], **cfg["overrides"])
    geometry = {k: cfg["overrides"][k] for k in ("rows", "cols") if k in cfg["overrides"]}
    # cores with the swept array size, and any swept chip parameter
    chip = memsim.load_chip(cfg["chip"], **geometry, **cfg.get("chip_overrides", {}))
    run = chip.simulate(net, inferences=cfg["inferences"], record=False, fit=cfg["fit"],
                        streaming=cfg.get("streaming", True),
                        activations=cfg.get("activations", "on-chip"))
    out = {"latency_s": run.latency_s, "throughput_per_s": run.throughput_per_s,
           "energy_j": run.energy_j, "tops": run.tops, "tops_per_w": run.tops_per_w}
    if not run.steady:  # the run's mean rate is not a steady state's: unmeasured, and why
        why = next(w for w in run.warnings if w.startswith("throughput_per_s"))
        out["throughput_per_s"] = out["tops"] = NoValue(why)
    for name in cfg["digital"]:
        est = load_digital_config(name).estimate(net)
        kind = _digital_kind(name)
        out[f"digital_{kind}_energy_j"] = est.energy_j
        out[f"digital_{kind}_latency_s"] = est.latency_s
    return out


def _trained_accuracy(config: dict[str, Any], overrides: dict[str, Any], seed: int
                      ) -> tuple[float, float]:
    """Accuracy and ADC saturation rate of a trained workload on the tiles."""
    import memsim
    from memsim.workloads.digits import hwa_noise
    from memsim.workloads.trained import get_trained
    from memsim.workloads.training import analog_accuracy

    work = get_trained(config["workload"])
    device = memsim.load_device(config["device"])
    scale = float(config.get("noise_scale", 1.0))
    if scale != 1.0:
        device = device.with_noise(programming=scale, drift_spread=scale, read=scale)
    training = config.get("training", "plain")
    if training == "hwa":
        tile = memsim.load_tile_config(config["tile"], **overrides)
        model = work.model(hwa_noise(tile, device))
    else:
        model = work.model(None)
    x_tr, _, x_te, y_te = work.data()
    n = int(config.get("test_samples", len(y_te)))  # <= len(y_te): check_point
    x_cal = x_tr[:work.calibration_samples] if config.get("adc_calibration", True) else None
    res = analog_accuracy(model, x_te[:n], y_te[:n], tile=config["tile"], device=device,
                          times=[float(config.get("time_s", 1.0))], seeds=1, seed=seed,
                          x_calibrate=x_cal, **overrides)
    return float(res["accuracy"][0, 0]), res["saturation_rate"]


@declare_evaluator("accuracy-energy", params=PARAMS, metrics=point_metrics,
                   check=check_point)  # registered by name in runner.EVALUATORS
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
                      "chip_overrides": {k: config[k] for k in _CHIP_KEYS if k in config},
                      "streaming": bool(config.get("streaming", True)),
                      "activations": config.get("activations", "on-chip"),
                      "digital": list(digital)}, sort_keys=True)
    metrics: dict[str, Any] = dict(_chip_metrics(key))
    if not config.get("measure_accuracy", True):
        return metrics
    from memsim.workloads.trained import TRAINED

    if config["workload"] in TRAINED:
        acc, sat = _trained_accuracy(config, overrides, seed)
    else:
        why = (f"workload {config['workload']!r} is a layer-shape network with random "
               "weights: no accuracy (set measure_accuracy = false)")
        acc, sat = NoValue(why), NoValue(why)
    metrics["accuracy"] = acc
    metrics["adc_saturation"] = sat
    return metrics
