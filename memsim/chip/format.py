"""Text reports of chip runs, validations and calibrations (engineering units)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from memsim._format import engineering as eng
from memsim._format import table

__all__ = ["format_calibration", "format_run", "format_validation"]


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def format_run(d: Mapping[str, Any], digital: list[dict[str, Any]] | None = None) -> str:
    """The text report of a chip run (the dict of :meth:`ChipRun.to_dict`); ``digital``:
    the digital engines' estimates to compare with (default: ``d["digital"]`` if any)."""
    if digital is None:
        digital = d.get("digital")
    opts = d.get("options", {})
    mode = ", ".join(f"{k} {v}" for k, v in opts.items() if k in ("encoding", "streaming",
                                                                    "activations"))
    lines = [f"memsim chip {d['chip']}: {d['network']}, {d['inferences']} pipelined "
             f"inferences ({d['granularity']} events, fit {d['fit']}, {d['chips']} chip(s)"
             + (f"; {mode}" if mode else "") + ")", ""]
    rows = [
        ["latency (one inference, empty chip)", eng(d["latency_s"], "s")],
        ["latency (mean, pipelined)", eng(d["latency_loaded_s"], "s")],
        ["throughput (steady state)" if d.get("throughput_steady", True) else
         "throughput (run mean: no steady state)", f"{d['throughput_per_s']:.5g} inferences/s"],
        ["energy per inference", eng(d["energy_j"], "J")],
        ["  of which static", eng(d.get("static_energy_j", 0.0), "J")],
        ["average power", eng(d["power_w"], "W")],
        ["ops per inference (2 per MAC)", f"{d['ops_per_inference']:.4g}"],
        ["throughput", f"{d['tops']:.4g} TOPS"],
        ["energy efficiency", f"{d['tops_per_w']:.4g} TOPS/W"],
        ["silicon area", f"{d.get('area_mm2', float('nan')):.4g} mm²"],
        ["area efficiency", f"{d.get('tops_per_mm2', float('nan')):.4g} TOPS/mm² "
                            f"({d.get('gops_per_mm2', float('nan')):.4g} GOPS/mm²)"],
        ["cores used / available", f"{d['cores_used']} / {d['cores_available']}"],
        ["mean core utilization (all cores)", _pct(d["mean_utilization"])],
        ["global digital unit utilization", _pct(d["global_unit_utilization"])],
        ["simulated events / wall time", f"{d['events']} / {d['wall_s']:.3g} s"],
    ]
    lines.append(table(["quantity", "value"], rows, left=1))
    total = d["energy_j"] or 1.0
    comp = sorted(d["energy_breakdown_j"].items(), key=lambda kv: -kv[1])
    lines += ["", "Energy per inference by component (counts × per-action table "
                  f"{d['energy_table']!r})"]
    lines.append(table(["component", "energy", "share"],
                       [[c, eng(v, "J"), f"{100 * v / total:.1f} %"] for c, v in comp],
                       left=1))
    if d.get("layers"):
        lines += ["", "Per layer (first inference; energy per inference, dynamic only)"]
        lrows = []
        for la in d["layers"]:
            e = la["energy_breakdown_j"]
            top = sorted(e.items(), key=lambda kv: -kv[1])[:2]
            lrows.append([la["name"], str(la["cores"]), str(la["copies"]), str(la["bands"]),
                          "—" if la["start_s"] is None else eng(la["start_s"], "s"),
                          "—" if la["latency_s"] is None else eng(la["latency_s"], "s"),
                          eng(la["energy_j"], "J"),
                          ", ".join(f"{k} {100 * v / (la['energy_j'] or 1):.0f}%"
                                    for k, v in top),
                          _pct(la["core_utilization"]), _pct(la["cell_utilization"]),
                          _cores_text(d["placement"].get(la["name"], []))])
        lines.append(table(["layer", "cores", "copies", "bands", "start", "span", "energy",
                            "largest parts", "busy", "cells", "cores (index)"], lrows, left=1))
    if d.get("area_breakdown_mm2"):
        lines += ["", "Area by block"]
        area = d["area_mm2"] or 1.0
        lines.append(table(["block", "area", "share"],
                           [[k, f"{v:.4g} mm²", f"{100 * v / area:.1f} %"]
                            for k, v in sorted(d["area_breakdown_mm2"].items(),
                                               key=lambda kv: -kv[1])], left=1))
    if d.get("segments"):
        lines += ["", "Re-programming segments"]
        lines.append(table(["segment", "layers", "cores", "program time", "run time"],
                           [[str(k), f"{s['layers'][0]} … {s['layers'][-1]}",
                             str(s["cores"]), eng(s["program_time_s"], "s"),
                             eng(s["run_time_s"], "s")]
                            for k, s in enumerate(d["segments"])], left=2))
    if digital:
        lines += ["", "Analog chip vs digital engines (per inference)"]
        rows = [[d["chip"], eng(d["latency_s"], "s"), f"{d['throughput_per_s']:.4g}/s",
                 eng(d["energy_j"], "J"), "1"]]
        for x in digital:
            rows.append([x["engine"] + (f" (batch {x['batch']})" if x["batch"] > 1 else ""),
                         eng(x["latency_s"], "s"), f"{x['throughput_per_s']:.4g}/s",
                         eng(x["energy_j"], "J"), f"{x['energy_j'] / total:.3g}"])
        lines.append(table(["engine", "latency", "throughput", "energy", "× chip energy"],
                           rows, left=1))
    for w in d.get("warnings", [])[:10]:
        lines.append(f"warning: {w}")
    if len(d.get("warnings", [])) > 10:
        lines.append(f"warning: … and {len(d['warnings']) - 10} more (see --json)")
    for n in d.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _cores_text(cores: list[int]) -> str:
    s = sorted(cores)
    if not s:
        return ""
    parts, start, prev = [], s[0], s[0]
    for c in [*s[1:], None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if c is not None:
            start = prev = c
    text = ",".join(parts)
    return text if len(text) <= 30 else text[:29] + "…"


_UNITS = {"latency": "s", "energy": "J"}


def _value(q: str, v: float) -> str:
    if q in _UNITS:
        return eng(v, _UNITS[q])
    if q == "area_mm2":
        return f"{v:.4g} mm²"
    if q == "power_w":
        return eng(v, "W")
    return f"{v:.4g}"


def format_validation(d: dict[str, Any]) -> str:
    """The fit-and-validate table of ``memsim chip --validate``."""
    if d.get("kind") == "calibration":
        return format_calibration(d)
    out = [f"memsim chip {d['chip']}: fitted on one measured row, validated on the others "
           f"({d['paper']}, Table I)", ""]
    out.append("Fitted on Table I row 1 (MVMs on all 64 cores):")
    out.append(table(["parameter", "fit", "card"],
                     [[k, _fit_text(k, v), _fit_text(k, d["card"][k])]
                      for k, v in d["fit"].items()], left=1))
    out += ["", "Table I, memsim vs paper (1-phase and 4-phase)"]
    rows = []
    for r in d["rows"]:
        target = "fitted" if r["fitted"] else f"±{100 * d['targets'][r['row']]:.0f} %"
        rows.append([r["row"], r["mode"].replace("pwm_", ""), r["quantity"],
                     _value(r["quantity"], r["memsim"]), _value(r["quantity"], r["paper"]),
                     f"{100 * r['error']:+.1f} %", target])
    out.append(table(["row", "mode", "quantity", "memsim", "paper", "error", "target"], rows,
                     left=3))
    out += ["", "Deep-layer energy in memsim (per input vector)"]
    rows = []
    for mode, s in d["deep_layer"].items():
        tot = s["static_j"] + s["analog_j"] + s["other_j"]
        rows.append([mode.replace("pwm_", ""), eng(s["analog_j"], "J"), eng(s["static_j"], "J"),
                     eng(s["other_j"], "J"), f"{100 * s['static_j'] / tot:.0f} %"])
    out.append(table(["mode", "array+ADC+PWM", "static (all blocks)", "digital+links+buffers",
                      "static share"], rows, left=1))
    for n in d.get("notes", []):
        out.append(f"note: {n}")
    return "\n".join(out)


def _fit_text(key: str, v: float) -> str:
    return eng(v, "s") if key.endswith("_s") else eng(v, "J")


def format_calibration(d: dict[str, Any]) -> str:
    """The peak workload against the card's paper (``memsim chip --calibrate``)."""
    out = [f"memsim chip {d['chip']}: peak workload ({d['mvms_per_core']} back-to-back MVMs on "
           f"every core) vs {d['paper']}; energy scope: {d['energy_scope']}", ""]
    rows = [[r["mode"] or "—", r["quantity"], _value(r["quantity"], r["memsim"]),
             _value(r["quantity"], r["paper"]), f"{100 * r['error']:+.2f} %"]
            for r in d["rows"]]
    out.append(table(["mode", "quantity", "memsim", "paper", "error"], rows, left=2))
    for mode, p in d["peak"].items():
        comps = sorted(p["energy_per_mvm_j"].items(), key=lambda kv: -kv[1])
        out += ["", f"Energy of one core-MVM by component ({mode}; MVM time "
                    f"{eng(p['mvm_time_s'], 's')})"]
        out.append(table(["component", "energy"], [[c, eng(v, "J")] for c, v in comps],
                         left=1))
    return "\n".join(out)
