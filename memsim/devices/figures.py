"""Figures of a device study (PNG), drawn from the samples the study kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from memsim.devices.study import STUDY_TIMES, DeviceStudy

__all__ = [
    "plot_fan",
    "plot_iv_loop",
    "plot_program_verify",
    "plot_programmed",
    "write_study_figures",
]


def plot_programmed(study: DeviceStudy, path: Path) -> Path:
    """Histograms of programmed conductance for each target level."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    cmap = plt.get_cmap("viridis")
    hist = study.samples_["programmed"]
    lo = min(v.min() for v in hist.values()) * 1e6
    hi = max(v.max() for v in hist.values()) * 1e6
    bins = np.linspace(lo, hi, 160)
    for k, (g_t, g) in enumerate(hist.items()):
        color = cmap(k / max(len(hist) - 1, 1))
        ax.hist(g * 1e6, bins=bins, histtype="stepfilled", alpha=0.45, color=color)
        ax.axvline(g_t * 1e6, color=color, lw=0.8, ls="--")
    ax.set_xlabel("programmed conductance G_prog (µS)")
    ax.set_ylabel("devices per bin")
    ax.set_title(f"{study.device}: conductance after programming\n"
                 f"{len(next(iter(hist.values())))} devices per level; dashed lines: targets",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_fan(study: DeviceStudy, path: Path) -> Path:
    """Median and 1 %–99 % band of G(t) from 1 s to 10 years, per target level."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    cmap = plt.get_cmap("viridis")
    t = study.samples_["fan_times_s"]
    fan = study.samples_["fan"]
    for k, (g_t, q) in enumerate(fan.items()):
        color = cmap(k / max(len(fan) - 1, 1))
        ax.fill_between(t, q[0] * 1e6, q[2] * 1e6, color=color, alpha=0.12, lw=0)
        ax.plot(t, q[0] * 1e6, color=color, lw=0.5, ls=":")
        ax.plot(t, q[2] * 1e6, color=color, lw=0.5, ls=":")
        ax.plot(t, q[1] * 1e6, color=color, lw=1.5, label=f"{g_t * 1e6:.3g} µS")
    ax.set_xscale("log")
    for label, ts in STUDY_TIMES:
        ax.axvline(ts, color="0.7", lw=0.6)
        ax.text(ts, ax.get_ylim()[1], label, rotation=90, va="top", ha="right", fontsize=7)
    ax.set_xlabel("time since programming (s)")
    ax.set_ylabel("conductance G(t) (µS)")
    ax.set_title(f"{study.device}: G(t), median and 1 %–99 % band")
    ax.legend(title="target", fontsize=7, ncol=2, loc="upper right", bbox_to_anchor=(1.0, 0.9))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_iv_loop(loops: list[tuple[float, dict[str, np.ndarray]]], name: str, path: Path) -> Path:
    """Pinched hysteresis loops i(v) under sine drives of several frequencies."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.2))
    for freq, loop in loops:
        label = f"{freq / 1e6:.4g} MHz"
        ax.plot(loop["v"], loop["i"] * 1e3, lw=1.2, label=label)
        ax2.plot(loop["t"] * freq, loop["w"] * 1e9, lw=1.2, label=label)
    ax.axhline(0, color="0.6", lw=0.5)
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_xlabel("voltage (V)")
    ax.set_ylabel("current (mA)")
    ax.set_title(f"{name}: pinched hysteresis under a sine drive")
    ax.legend(fontsize=8)
    ax2.set_xlabel("time (drive periods)")
    ax2.set_ylabel("state variable w (nm)")
    ax2.set_title("state variable")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_program_verify(pulses: np.ndarray, energy_j: np.ndarray, name: str, path: Path) -> Path:
    """Histogram of program-and-verify pulses used, and of energy per device."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.0))
    top = int(pulses.max()) if pulses.size else 1
    ax.hist(pulses, bins=np.arange(0.5, top + 1.5), color="tab:blue")
    ax.set_xlabel("pulses to converge")
    ax.set_ylabel("devices")
    ax.set_title(f"{name}: program-and-verify convergence\n({pulses.size} devices, 5 levels)",
                 fontsize=10)
    ax2.hist(energy_j * 1e12, bins=60, color="tab:orange")
    ax2.set_xlabel("programming energy per device (pJ)")
    ax2.set_ylabel("devices")
    ax2.set_title(f"median {np.median(pulses):.0f} pulses, {np.median(energy_j) * 1e12:.3g} pJ")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_study_figures(study: DeviceStudy, device: Any, out: Path) -> list[Path]:
    """Write every figure of the study to ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        plot_programmed(study, out / f"{study.device}-programmed.png"),
        plot_fan(study, out / f"{study.device}-drift-fan.png"),
    ]
    if "pulses" in study.samples_:
        from memsim.devices.physical import iv_drive, iv_loop

        amplitude, base = iv_drive(device)
        loops = [(f, iv_loop(device, amplitude_v=amplitude, frequency_hz=f))
                 for f in (base, 10 * base)]
        paths.append(plot_iv_loop(loops, study.device, out / f"{study.device}-iv-loop.png"))
        paths.append(plot_program_verify(study.samples_["pulses"], study.samples_["energy_j"],
                                         study.device,
                                         out / f"{study.device}-program-verify.png"))
    return paths
