"""``memsim demo``: the digits CNN on the HERMES 64-core chip, accuracy and cost in one go.

1. Train (first use) or load the digits CNN; convert it with memsim.analog onto HERMES
   cores with the HERMES PCM model; after programming, calibrate the converter ranges on
   256 training images (memsim.calibrate).
2. Accuracy on the 540 test images at 1 s, 1 day and 1 year after programming, mean ± σ
   over programming seeds.
3. Latency, throughput and energy per inference from the chip simulation (SimPy), with
   the energy breakdown, next to GPU- and CPU-class digital engines.
4. An energy/accuracy figure over ADC resolution (1 day after programming), with the
   Pareto-optimal settings marked, and a Markdown/HTML report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memsim._format import Report
from memsim.timegrid import time_points

__all__ = ["format_demo", "run_demo"]

TIMES = time_points("1 s", "1 day", "1 year")


def _accuracy(model, x_cal, x_te, y_te, *, seeds: int, times, tile: str, device: str,
              **overrides) -> np.ndarray:
    from memsim.workloads.training import analog_accuracy

    return analog_accuracy(model, x_te, y_te, tile=tile, device=device, times=times,
                           seeds=seeds, seed=2024, x_calibrate=x_cal, **overrides)["accuracy"]


def run_demo(out: Path, *, seeds: int = 3, tile: str = "hermes-core",
             device: str = "pcm-hermes-2dev", chip: str = "hermes-64core") -> Report:
    """Run the demo (see the module docstring); write its figure and report to ``out``.
    Returns a :class:`~memsim.Report` (printed: :func:`format_demo`)."""
    import pandas as pd
    import torch

    import memsim
    from memsim.chip import load_digital_config
    from memsim.studies.report import write_report
    from memsim.workloads.digits import accuracy, digits_model, digits_torch, load_digits_split

    t0 = time.perf_counter()
    x_tr, _, x_te, y_te = load_digits_split()
    model = digits_torch("cnn")
    acc = _accuracy(model, x_tr[:256], x_te, y_te, seeds=seeds,
                    times=[t for _, t in TIMES], tile=tile, device=device)
    graph = digits_model("cnn")  # the same weights, for the chip's description
    the_chip = memsim.load_chip(chip)
    net = memsim.map_network(graph, tile=tile, device=device)
    run = the_chip.simulate(net, inferences=100)
    digital = {name: load_digital_config(name).estimate(net)
               for name in ("digital-gpu", "digital-cpu")}
    cfg = memsim.load_tile_config(tile)

    rows = []
    for bits in (4, 5, 6, 8):
        a = _accuracy(model, x_tr[:256], x_te, y_te, seeds=seeds, times=[86400.0],
                      tile=tile, device=device, adc_bits=bits)
        n = memsim.map_network(graph, tile=tile, device=device, adc_bits=bits)
        e = the_chip.simulate(n, inferences=20, record=False).energy_j
        rows += [{"adc_bits": bits, "seed_index": s, "accuracy": float(a[s, 0]),
                  "energy_j": e} for s in range(seeds)]
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    configuration = {"workload": "digits-cnn", "chip": chip, "tile": tile, "device": device,
                     "fixed": "time_s = 1 day (accuracy); 20 pipelined inferences (energy)",
                     "swept": "adc_bits: " + ", ".join(f"{b}-bit ADC"
                                                       for b in df["adc_bits"].unique()),
                     "seeds per point": str(seeds),
                     "converter assumptions": cfg.assumptions()}
    rep = write_report(df, study="demo-adc-bits",
                       description="digits CNN on the HERMES 64-core chip, 1 day after "
                       "programming: accuracy vs energy per inference over ADC resolution. "
                       f"Converter physics kept across the sweep: {cfg.assumptions()}",
                       params=["adc_bits"], out_dir=out, metrics=["accuracy", "energy_j"],
                       configuration=configuration)
    with torch.no_grad():
        float_acc = accuracy(model(torch.tensor(x_te, dtype=torch.float32)), y_te)
    return Report("demo", {
        "network": "digits-cnn", "tile": tile, "device": device, "chip": chip,
        "seeds": seeds, "float_accuracy": float_acc,
        "converter_assumptions": cfg.assumptions(),
        "accuracy": {label: {"mean": float(acc[:, k].mean()),
                             "std": float(acc[:, k].std(ddof=1)) if seeds > 1 else 0.0}
                     for k, (label, _) in enumerate(TIMES)},
        "chip_run": {"latency_s": run.latency_s, "throughput_per_s": run.throughput_per_s,
                     "energy_j": run.energy_j, "tops": run.tops, "tops_per_w": run.tops_per_w,
                     "energy_breakdown_j": dict(run.energy_breakdown),
                     "cores_used": len(run.placement) if hasattr(run, "placement") else None},
        "digital": {k: {"energy_j": v.energy_j, "latency_s": v.latency_s}
                    for k, v in digital.items()},
        "figure": str(rep["figures"][0]) if rep["figures"] else None,
        "report": str(rep["html"]),
        "wall_s": time.perf_counter() - t0,
    }, format_demo)


def format_demo(r: Mapping[str, Any]) -> str:
    """The text of the demo's report."""
    from memsim._format import engineering
    from memsim._format import table as _table

    lines = [f"memsim demo: {r['network']} on {r['chip']} ({r['tile']} cores, device "
             f"{r['device']})", "",
             f"Accuracy on 540 test images (floating point {100 * r['float_accuracy']:.2f} %),"
             f" mean ± σ over {r['seeds']} programming seeds:"]
    lines.append(_table(["time after programming", "accuracy"],
                        [[k, f"{100 * v['mean']:.2f} ± {100 * v['std']:.2f} %"]
                         for k, v in r["accuracy"].items()], left=1))
    lines.append(f"Converter physics (kept when the ADC bits change): "
                 f"{r['converter_assumptions']}")
    c = r["chip_run"]
    lines += ["", "Chip simulation (100 pipelined inferences):",
              f"  latency per inference   {engineering(c['latency_s'], 's')}",
              f"  throughput              {c['throughput_per_s']:.4g} inferences/s",
              f"  energy per inference    {engineering(c['energy_j'], 'J')}",
              f"  TOPS / TOPS/W           {c['tops']:.4g} / {c['tops_per_w']:.4g}",
              "  energy breakdown        " + ", ".join(
                  f"{k} {engineering(v, 'J')}" for k, v in sorted(
                      c["energy_breakdown_j"].items(), key=lambda kv: -kv[1]) if v > 0)]
    lines += ["", "Same network on digital engines:"]
    for k, v in r["digital"].items():
        lines.append(f"  {k:12s}  {engineering(v['energy_j'], 'J')} per inference, "
                     f"latency {engineering(v['latency_s'], 's')}")
    lines += ["", f"energy/accuracy figure: {r['figure']}", f"report: {r['report']}",
              f"wall time: {r['wall_s']:.1f} s"]
    return "\n".join(lines)
