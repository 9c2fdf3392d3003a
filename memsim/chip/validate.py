"""Chip cards against their own papers: fit on one measurement, validate on the others.

A chip card names its paper (``[card] reference = "hermes"``); :data:`REFERENCES` holds that
paper's published figures with their sources.

- :func:`validate` (``memsim chip --validate``): for HERMES, fits only what the first row of
  Le Gallo et al.'s Table I determines — the MVM timing overheads and the part of the MVM
  energy that the card does not estimate from other sources — then simulates the table's
  other rows with the fitted chip and prints memsim's figure, the paper's and the error.
  Nothing of the other rows enters the card.
- :func:`calibrate` (``memsim chip --calibrate``): the peak workload (back-to-back MVMs on
  every core) against the card's paper: HERMES' TOPS and TOPS/W in 1- and 4-phase mode,
  ISAAC-CE's GOPS/mm², GOPS/W, power and area (Shafiee et al., ISCA 2016, Table IV).
"""

from __future__ import annotations

from typing import Any

from memsim._format import Report
from memsim.errors import ConfigError

__all__ = ["REFERENCES", "TARGETS", "calibrate", "deep_layer", "fit_hermes", "validate"]

LG23 = ("Le Gallo et al., Nat. Electron. 6, 680 (2023), arXiv 2212.02872")
IS16 = "Shafiee et al., ISCA 2016, doi:10.1109/ISCA.2016.12"

REFERENCES: dict[str, dict[str, Any]] = {
    "hermes": {
        "paper": LG23,
        # Table I, measured (energy from supply currents, static plus dynamic; latency from
        # RTL simulation), 1-phase / 4-phase
        "table1": {
            "mvm-64-cores": {
                "what": "one MVM on all 64 cores (100 % utilisation); energy of array, ADCs "
                        "and PWM drivers only",
                "latency_s": {"pwm_1phase": 133e-9, "pwm_4phase": 520e-9},
                "energy_j": {"pwm_1phase": 0.86e-6, "pwm_4phase": 3.38e-6},
                "source": "[LG23] Table I, row 1",
            },
            "resnet9-deep-layer": {
                "what": "one input vector to one deep ResNet-9 layer (2016x224 on 8 cores, "
                        "86 % utilisation), partial sums aggregated over links, local digital "
                        "work included; whole-chip energy",
                "latency_s": {"pwm_1phase": 1131e-9, "pwm_4phase": 1518e-9},
                "energy_j": {"pwm_1phase": 0.97e-6, "pwm_4phase": 1.51e-6},
                "source": "[LG23] Table I, ResNet-9 layer row",
            },
        },
        "peak": {"pwm_1phase": {"tops": 63.1, "tops_per_w": 9.76},
                 "pwm_4phase": {"tops": 16.1, "tops_per_w": 2.48},
                 "source": "[LG23] abstract and Table I: 8-bit MVMs on all 64 cores",
                 "energy_scope": "analog", "post_process": False},
    },
    "isaac": {
        "paper": IS16,
        "peak": {None: {"gops_per_mm2": 478.95, "gops_per_w": 627.5, "power_w": 65.8,
                        "area_mm2": 85.4},
                 "source": "[IS16] Table IV and Sec. 7: ISAAC-CE, HyperTransport included",
                 "energy_scope": "chip", "post_process": True},
    },
}
# targets of the tests: |error| within these
TARGETS = {"resnet9-deep-layer": 0.25, "isaac": 0.10, "fit": 0.01}


def _reference(chip: Any) -> dict[str, Any]:
    name = chip.config.reference
    if name not in REFERENCES:
        raise ConfigError(f"chip {chip.name!r} names no published reference "
                          f"([card] reference = {name!r}); known: {sorted(REFERENCES)}")
    return REFERENCES[name]


def fit_hermes(cfg: Any) -> dict[str, float]:
    """What Table I's first row determines, given the card's other values: the phase and
    MVM time overheads, the ADC conversion energy (the remainder of the per-phase energy
    after the card's DAC and cell estimates) and the per-MVM energy that does not scale with
    the phases. Returns the fitted values (SI)."""
    row = REFERENCES["hermes"]["table1"]["mvm-64-cores"]
    t1, t4 = row["latency_s"]["pwm_1phase"], row["latency_s"]["pwm_4phase"]
    e1 = row["energy_j"]["pwm_1phase"] / cfg.cores
    e4 = row["energy_j"]["pwm_4phase"] / cfg.cores
    tile = cfg.tile
    if cfg.input_scheme != "pwm" or tile.dac_bits is None or tile.adc_bits is None:
        raise ConfigError("the HERMES fit needs PWM inputs and quantized converters")
    window = 2 ** (tile.dac_bits - 1) * cfg.pwm_unit_time_s
    phase_overhead = (t4 - t1) / 3 - window
    mvm_overhead = t1 - window - phase_overhead
    e_phase = (e4 - e1) / 3
    e_mvm = e1 - e_phase
    table = cfg.energy
    rest = (tile.rows * table["dac_conversion"]
            + tile.rows * tile.cols * table["array_cell_read"])
    adc = (e_phase - rest) / tile.cols
    if min(phase_overhead, mvm_overhead, e_mvm, adc) < 0:
        raise ConfigError(f"chip {cfg.name!r}: Table I row 1 cannot be fitted with this card's "
                          "estimates (a negative overhead or ADC energy)")
    return {"phase_overhead_s": phase_overhead, "mvm_overhead_s": mvm_overhead,
            "mvm_overhead_j": e_mvm, f"adc_conversion_{tile.adc_bits}b_j": adc}


def deep_layer(tile: Any):
    """The description of Table I's ResNet-9 row: one input vector (a 3×3 patch of 224
    channels) to Conv5 (2016×224, cut into 8 row blocks of 28 channels), ReLU fused."""
    from memsim.mapping.description import NetworkDescription, NodeDesc, make_layer

    inp = NodeDesc("input", "input", (), (224, 3, 3))
    conv = make_layer("conv5", "conv2d", ("input",), (224, 3, 3), (224, 1, 1),
                      [("g0", (2016, 224))], tile, kernel_positions=9, mvms=1,
                      attrs={"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1),
                             "groups": 1, "kernel_size": (3, 3)})
    relu = NodeDesc("relu", "relu", ("conv5",), (224, 1, 1))
    return NetworkDescription("resnet9-hermes Conv5, one input vector", (224, 3, 3),
                              {"input": inp, "conv5": conv, "relu": relu}, "relu", tile)


def _err(memsim: float, paper: float) -> float:
    return memsim / paper - 1.0


def validate(chip: Any, *, granularity: str = "burst") -> Report:
    """Fit on Table I's first row, simulate the others (HERMES); other cards: calibrate."""
    from memsim.chip import Chip

    ref = _reference(chip)
    if "table1" not in ref:
        out = calibrate(chip, granularity=granularity)
        out["kind"] = "calibration"
        return out
    cfg = chip.config
    fit = fit_hermes(cfg)
    adc_key = f"adc_conversion_{cfg.tile.adc_bits}b"
    table = cfg.energy.with_(**{adc_key: fit[f"{adc_key}_j"], "mvm_overhead":
                                fit["mvm_overhead_j"]})
    fitted = Chip(cfg.with_(phase_overhead_s=fit["phase_overhead_s"],
                            mvm_overhead_s=fit["mvm_overhead_s"], energy=table))
    card_values = {"phase_overhead_s": cfg.phase_overhead_s,
                   "mvm_overhead_s": cfg.mvm_overhead_s,
                   "mvm_overhead_j": cfg.energy["mvm_overhead"],
                   f"{adc_key}_j": cfg.energy[adc_key]}
    rows = []
    static_share = {}
    for mode in ("pwm_1phase", "pwm_4phase"):
        mchip = Chip(fitted.config.with_(encoding=mode))
        peak = mchip.peak(1, granularity=granularity, post_process=False)
        r1 = ref["table1"]["mvm-64-cores"]
        rows.append(_row("mvm-64-cores", mode, "latency", peak.latency_s,
                         r1["latency_s"][mode], True, r1["source"]))
        rows.append(_row("mvm-64-cores", mode, "energy", peak.analog_energy_j,
                         r1["energy_j"][mode], True, r1["source"]))
        desc = deep_layer(mchip.config.tile)
        run = mchip.simulate(desc, inferences=1, granularity=granularity, preloaded=True)
        r2 = ref["table1"]["resnet9-deep-layer"]
        rows.append(_row("resnet9-deep-layer", mode, "latency", run.latency_s,
                         r2["latency_s"][mode], False, r2["source"]))
        rows.append(_row("resnet9-deep-layer", mode, "energy", run.energy_j,
                         r2["energy_j"][mode], False, r2["source"]))
        static_share[mode] = {"static_j": run.static_energy_j,
                              "analog_j": run.analog_energy_j,
                              "other_j": run.energy_j - run.static_energy_j
                              - run.analog_energy_j,
                              "breakdown_j": run.energy_breakdown,
                              "layers": run.layers()}
    from memsim.chip.format import format_validation

    return Report("chip-validation", {
            "kind": "validation", "chip": chip.name, "paper": ref["paper"],
            "fit": fit, "card": card_values, "rows": rows, "deep_layer": static_share,
            "targets": TARGETS,
            "notes": ["fitted on Table I row 1 only: phase and MVM time overheads, ADC "
                      "conversion energy (after the card's DAC and cell estimates) and the "
                      "per-MVM analog energy; the other rows are simulated, not fitted",
                      "the deep-layer energy includes every block's static power over the "
                      "run; the card's static powers are memsim assumptions (not measured)"]},
                  format_validation)


def _row(row: str, mode: str | None, quantity: str, memsim: float, paper: float,
         fitted: bool, source: str) -> dict[str, Any]:
    return {"row": row, "mode": mode, "quantity": quantity, "memsim": memsim,
            "paper": paper, "error": _err(memsim, paper), "fitted": fitted,
            "source": source}


def calibrate(chip: Any, *, mvms_per_core: int = 1000,
              granularity: str = "burst") -> Report:
    """The peak workload against the card's paper (see the module docstring)."""
    from memsim.chip import Chip

    ref = _reference(chip)
    peak_ref = ref["peak"]
    rows = []
    breakdowns = {}
    for mode, figures in peak_ref.items():
        if mode in ("source", "energy_scope", "post_process"):
            continue
        mchip = Chip(chip.config.with_(encoding=mode)) if mode else chip
        run = mchip.peak(mvms_per_core, granularity=granularity,
                         post_process=peak_ref["post_process"])
        energy = run.analog_energy_j if peak_ref["energy_scope"] == "analog" else run.energy_j
        per_s = run.throughput_per_s
        got = {"tops": run.tops, "tops_per_w": run.ops_per_inference / energy / 1e12,
               "gops_per_mm2": 1e3 * run.tops_per_mm2,
               "gops_per_w": run.ops_per_inference / energy / 1e9,
               "power_w": energy * per_s, "area_mm2": run.area_mm2}
        for q, paper in figures.items():
            rows.append(_row("peak", mode, q, got[q], paper, False, peak_ref["source"]))
        n = mvms_per_core * len(run.core_busy_s)
        breakdowns[mode or "peak"] = {
            "mvm_time_s": mchip.config.mvm_time_s(),
            "energy_per_mvm_j": {k: v / n for k, v in run.energy_breakdown.items()},
            "tops": run.tops, "area_mm2": run.area_mm2, "power_w": run.power_w,
            "events": run.events}
    from memsim.chip.format import format_calibration

    return Report("chip-calibration", {
        "kind": "calibration", "chip": chip.name, "paper": ref["paper"],
        "energy_scope": peak_ref["energy_scope"], "rows": rows, "peak": breakdowns,
        "mvms_per_core": mvms_per_core}, format_calibration)


