"""Benchmark: whole networks through memsim's analog layers, against torch's own float forward.

Every figure is a ratio measured in one run on the same machine and threads (medians of
alternating repeats), so it holds on a shared, noisy machine where absolute times do not.

Noisy configuration (the issue's): HERMES PCM with two devices per polarity
(``pcm-hermes-2dev``) on ``hermes-core`` tiles, one day after programming, 8-bit DAC and ADC,
per-MVM read noise, global drift compensation, per-layer input ranges calibrated on one batch.

Sections (each skipped cleanly when it cannot run here):

- **cpu**: ResNet-32 (CIFAR-10 shapes, batch 256) and ResNet-18 (224×224, batch 16): images/s
  of torch's float32 eval and of memsim, with all of the machine's threads and with one.
- **aihwkit**: the same networks with IBM aihwkit's ``InferenceRPUConfig`` and
  ``PCMLikeNoiseModel`` at one day, where aihwkit is installed; memsim in the noisy
  configuration, and again with its read noise drawn once per read time (aihwkit's
  treatment: no per-MVM read noise, so no variance products).
- **gpu**: ResNet-32 (batch 1024) and ResNet-50 (224×224, batch 128) on CUDA, where a GPU is.
- **memory**: VGG-11 at 32×32 converted, programmed and run on a batch of 64: peak RSS (a
  fresh process).
- **program**: seconds to program ResNet-18 (``memsim.program``).
- **train**: one hardware-aware training step of ResNet-32 (batch 128) against a plain torch
  step.

Run: ``python benchmarks/bench_network.py [--quick] [--json] [--sections cpu,memory,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from typing import Any

import numpy as np

# isort: off
import memsim  # first: passive OpenMP waits for torch's pool too (see memsim/__init__.py)
import torch
from memsim.workloads import nets
# isort: on

NOISY = dict(tile="hermes-core", device="pcm-hermes-2dev")
#: aihwkit's treatment of read noise: ``PCMLikeNoiseModel`` adds it to the weights once, in
#: ``drift_analog_weights``, and draws none per MVM. A noise window at or below two read
#: durations (2 t_read = 500 ns on the card) puts all of memsim's 1/f read noise into the draw
#: once per read time, so neither simulator then computes a per-MVM variance product.
ONCE_PER_READ = dict(noise_window_s=1e-9)
T_S = 86400.0


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def alternating(fns, repeats: int) -> list[float]:
    """Median time of each function, timed in turn (all see the same machine)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for t, fn in zip(times, fns, strict=True):
            t += _time(fn, 1)
    return [float(np.median(t)) for t in times]


def paired(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Median times of a and b, timed alternately."""
    t_a, t_b = alternating((fn_a, fn_b), repeats)
    return t_a, t_b


def analog_model(model: torch.nn.Module, x: torch.Tensor, device: str = "cpu", **overrides):
    a = memsim.analog(model.eval(), **NOISY, **overrides)
    memsim.program(a, seed=0)
    a = a.to(device)
    memsim.calibrate(a, x[: min(len(x), 64)].to(device))
    memsim.set_time(a, T_S)
    return a


def throughput(name: str, make, shape, batch: int, repeats: int, threads: int,
               device: str = "cpu") -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = make().eval().to(device)
    x = torch.randn(batch, *shape, device=device)
    a = analog_model(model, x, device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run_torch():
        with torch.no_grad():
            model(x)
        sync()

    def run_memsim():
        with torch.no_grad():
            a(x)
        sync()

    t_torch, t_memsim = paired(run_torch, run_memsim, repeats)
    return {"network": name, "batch": batch, "threads": threads, "device": device,
            "torch_images_per_s": batch / t_torch, "memsim_images_per_s": batch / t_memsim,
            "ratio": t_torch / t_memsim, "memsim_ms_per_image": 1e3 * t_memsim / batch}


def aihwkit_throughput(name: str, make, shape, batch: int, repeats: int) -> dict[str, Any]:
    from aihwkit.inference import PCMLikeNoiseModel
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.simulator.configs import InferenceRPUConfig

    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(batch, *shape)
    rpu = InferenceRPUConfig()
    rpu.noise_model = PCMLikeNoiseModel(g_max=25.0)
    am = convert_to_analog(model, rpu).eval()
    am.drift_analog_weights(T_S)
    a = analog_model(model, x)
    once = analog_model(model, x, **ONCE_PER_READ)

    def run_aihwkit():
        with torch.no_grad():
            am(x)

    def run_memsim():
        with torch.no_grad():
            a(x)

    def run_once():
        with torch.no_grad():
            once(x)

    t_aih, t_mem, t_once = alternating((run_aihwkit, run_memsim, run_once), repeats)
    return {"network": name, "batch": batch, "aihwkit_images_per_s": batch / t_aih,
            "memsim_images_per_s": batch / t_mem, "memsim_over_aihwkit": t_aih / t_mem,
            # the same noise treatment as aihwkit's (no per-MVM read noise): a like-for-like
            # figure beside the per-MVM configuration above
            "once_per_read_images_per_s": batch / t_once,
            "once_per_read_over_aihwkit": t_aih / t_once}


_MEMORY_CHILD = r"""
import json, resource, sys, time, warnings, torch, memsim


def peak_kib():
    # VmHWM: this process's own peak (getrusage's ru_maxrss survives exec on Linux, so a
    # child of a large benchmark process would report its parent's peak)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


from memsim.workloads import nets
warnings.simplefilter("ignore")
base = peak_kib()
torch.manual_seed(0)
model = nets.vgg11(10).eval()
x = torch.randn(64, 3, 32, 32)
t0 = time.perf_counter()
# copy=False: the model itself is converted (no second copy of its 129 M float weights)
a = memsim.analog(model, tile="hermes-core", device="pcm-hermes-2dev", copy=False)
memsim.program(a, seed=0)
t1 = time.perf_counter()
memsim.set_time(a, 86400.0)
with torch.no_grad():
    y = a(x)
t2 = time.perf_counter()
peak = peak_kib()
rep = memsim.report(a)
print(json.dumps({"peak_rss_mib": peak / 1024, "import_rss_mib": base / 1024,
                  "program_s": t1 - t0, "forward_s": t2 - t1,
                  "tiles": sum(la.get("tiles", 0) for la in rep["layers"]),
                  "weights": sum(p.numel() for p in model.parameters()),
                  "finite": bool(torch.isfinite(y).all())}))
"""


def memory() -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def program_time(repeats: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = nets.resnet18().eval()
    a = memsim.analog(model, **NOISY)
    times = _time(lambda: memsim.program(a, seed=0), repeats)
    return {"network": "resnet18", "weights": sum(p.numel() for p in model.parameters()),
            "program_s": float(np.median(times))}


def train_step(repeats: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(128, 3, 32, 32)
    y = torch.randint(0, 10, (128,))
    plain = nets.resnet_cifar(32).train()
    a = memsim.analog(nets.resnet_cifar(32), **NOISY).train()
    opt_p = torch.optim.SGD(plain.parameters(), lr=0.01)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.01)

    def step(model, opt):
        def run():
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return run

    t_plain, t_hwa = paired(step(plain, opt_p), step(a, opt_a), repeats)
    return {"network": "resnet32", "batch": 128, "plain_step_s": t_plain, "hwa_step_s": t_hwa,
            "hwa_over_plain": t_hwa / t_plain}


SECTIONS = ("cpu", "aihwkit", "gpu", "memory", "program", "train")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {', '.join(SECTIONS)}")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    sections = [s for s in args.sections.split(",") if s]
    repeats = 3 if args.quick else 7
    all_threads = os.cpu_count() or 1
    res: dict[str, Any] = {"machine": {"cpus": all_threads, "torch": torch.__version__,
                                       "cuda": torch.cuda.is_available()}}
    cpu_nets = [("resnet32", lambda: nets.resnet_cifar(32), (3, 32, 32), 256),
                ("resnet18", nets.resnet18, (3, 224, 224), 16)]
    if "cpu" in sections:
        res["cpu"] = [throughput(n, mk, sh, b, repeats, th) for n, mk, sh, b in cpu_nets
                      for th in sorted({all_threads, 1}, reverse=True)]
    if "aihwkit" in sections:
        try:
            import aihwkit  # noqa: F401
        except ImportError:
            res["aihwkit"] = "skipped: aihwkit is not installed"
        else:
            torch.set_num_threads(all_threads)
            res["aihwkit"] = [aihwkit_throughput(n, mk, sh, b, max(3, repeats // 2))
                              for n, mk, sh, b in cpu_nets]
    if "gpu" in sections:
        if not torch.cuda.is_available():
            res["gpu"] = "skipped: no CUDA device"
        else:
            res["gpu"] = [throughput(n, mk, sh, b, repeats, all_threads, "cuda")
                          for n, mk, sh, b in (
                              ("resnet32", lambda: nets.resnet_cifar(32), (3, 32, 32), 1024),
                              ("resnet50", nets.resnet50, (3, 224, 224), 128))]
    if "memory" in sections:
        res["memory"] = memory()
    if "program" in sections:
        torch.set_num_threads(all_threads)
        res["program"] = program_time(max(3, repeats // 2))
    if "train" in sections:
        res["train"] = train_step(repeats, all_threads)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(format_results(res))
    return res


def format_results(res: dict[str, Any]) -> str:
    lines = [f"machine: {res['machine']}"]
    for r in res.get("cpu", []) + (res["gpu"] if isinstance(res.get("gpu"), list) else []):
        lines.append(f"{r['device']} {r['network']:9s} batch {r['batch']:4d}, {r['threads']:2d} "
                     f"thread(s): torch {r['torch_images_per_s']:8.1f} img/s, memsim "
                     f"{r['memsim_images_per_s']:8.1f} img/s ({r['memsim_ms_per_image']:.2f} "
                     f"ms/img): memsim/torch = {r['ratio']:.3f}")
    for key in ("aihwkit", "gpu"):
        if isinstance(res.get(key), str):
            lines.append(f"{key}: {res[key]}")
    if isinstance(res.get("aihwkit"), list):
        for r in res["aihwkit"]:
            lines.append(f"aihwkit {r['network']}: {r['aihwkit_images_per_s']:.1f} img/s; "
                         f"memsim {r['memsim_over_aihwkit']:.1f}x faster (per-MVM read "
                         f"noise), {r['once_per_read_over_aihwkit']:.1f}x with read noise "
                         f"drawn once per read time as aihwkit draws it")
    if "memory" in res:
        m = res["memory"]
        lines.append(f"memory: VGG-11 32x32 ({m['weights'] / 1e6:.1f} M weights, {m['tiles']} "
                     f"tiles), batch 64: peak RSS {m['peak_rss_mib']:.0f} MiB (after import "
                     f"{m['import_rss_mib']:.0f} MiB); program {m['program_s']:.1f} s, "
                     f"forward {m['forward_s']:.1f} s")
    if "program" in res:
        p = res["program"]
        lines.append(f"program: ResNet-18 ({p['weights'] / 1e6:.1f} M weights) in "
                     f"{p['program_s']:.2f} s")
    if "train" in res:
        t = res["train"]
        lines.append(f"train: ResNet-32 batch 128: plain {t['plain_step_s'] * 1e3:.0f} ms, "
                     f"HWA {t['hwa_step_s'] * 1e3:.0f} ms per step: {t['hwa_over_plain']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
