"""Benchmark: 100 pipelined inferences of ResNet-style CIFAR-10 networks on the HERMES chip.

- ResNet-32 (He et al. 2016; 60 of the 64 cores), the chip's own ResNet-9 (resnet9-hermes,
  40 cores) and the DAWNBench ResNet-9 (117 cores, so two chips, ``fit="multi-chip"``),
  input vectors streamed through the layer pipeline, burst events (one timed event per job
  of MVMs on a core).
- Reported: wall time of ``chip.simulate`` (it includes a second, one-inference run for the
  empty-chip latency), simulated SimPy events and events per second, inferences simulated per
  wall second, and the simulated chip's own throughput.
- Ratio measured in the same run: the exact per-MVM mode against the burst mode on the same
  network and the same number of inferences (fewer, as per-MVM is slow): events and wall time.

Target: 100 ResNet inferences in under 10 s on a 2-core machine.
Run: ``python benchmarks/bench_chip.py [--inferences N] [--exact-inferences N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import memsim.chip as mc
from memsim.workloads.shapes import load_network

CASES = (("resnet32-cifar10", "error"), ("resnet9-hermes", "error"),
         ("resnet9-cifar10", "multi-chip"))


def bench(name: str, fit: str, inferences: int, exact_inferences: int) -> dict:
    chip = mc.load_chip("hermes-64core")
    t = time.perf_counter()
    net = chip.describe(load_network(name, np.random.default_rng(0)))
    t_map = time.perf_counter() - t
    t = time.perf_counter()
    run = chip.simulate(net, inferences=inferences, fit=fit)
    wall = time.perf_counter() - t
    out = {"network": name, "fit": fit, "chips": run.chips, "cores": len(run.core_busy_s),
           "inferences": inferences, "map_s": t_map, "wall_s": wall, "events": run.events,
           "events_per_s": run.events / wall, "inferences_per_wall_s": inferences / wall,
           "sim_latency_s": run.latency_s, "sim_throughput_per_s": run.throughput_per_s,
           "sim_energy_j": run.energy_j, "sim_tops_per_w": run.tops_per_w}
    b, e = (chip.simulate(net, inferences=exact_inferences, fit=fit, granularity=g,
                          record=False) for g in ("burst", "mvm"))
    lbl = chip.simulate(net, inferences=1, fit=fit, record=False, streaming=False)
    out["layer_by_layer_latency_s"] = lbl.latency_s
    out["streaming_gain"] = lbl.latency_s / run.latency_s
    out.update({"exact_inferences": exact_inferences, "burst_events": b.events,
                "mvm_events": e.events, "event_ratio": e.events / b.events,
                "wall_ratio": e.wall_s / b.wall_s,
                "same_latency": bool(np.isclose(b.latency_s, e.latency_s, rtol=1e-9)),
                "same_throughput": bool(np.isclose(b.throughput_per_s, e.throughput_per_s,
                                                   rtol=1e-9))})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inferences", type=int, default=100)
    ap.add_argument("--exact-inferences", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [bench(n, f, args.inferences, args.exact_inferences) for n, f in CASES]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['network']} on hermes-64core ({r['chips']} chip(s), {r['cores']} cores), "
              f"{r['inferences']} pipelined inferences, streamed, burst events")
        print(f"  wall time            {r['wall_s']:8.2f} s   (target < 10 s; description "
              f"{r['map_s']:.2f} s more)")
        print(f"  simulated events     {r['events']:8d}     {r['events_per_s'] / 1e3:.0f} k "
              f"events/s, {r['inferences_per_wall_s']:.0f} inferences per wall second")
        print(f"  streaming            latency {r['sim_latency_s'] * 1e6:.1f} µs vs "
              f"{r['layer_by_layer_latency_s'] * 1e6:.1f} µs layer by layer "
              f"({r['streaming_gain']:.2f}x)")
        print(f"  simulated chip       latency {r['sim_latency_s'] * 1e6:.1f} µs, "
              f"{r['sim_throughput_per_s']:.0f} inferences/s, "
              f"{r['sim_energy_j'] * 1e6:.1f} µJ/inference, {r['sim_tops_per_w']:.2f} TOPS/W")
        print(f"  per-MVM vs burst     {r['exact_inferences']} inferences: "
              f"{r['event_ratio']:.0f}x the events, {r['wall_ratio']:.0f}x the wall time; "
              f"same latency {r['same_latency']}, same throughput {r['same_throughput']}")


if __name__ == "__main__":
    main()
