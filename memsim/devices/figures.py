"""Figures of a device study, drawn from the samples the study kept.

Each ``plot_*`` draws on a new :class:`matplotlib.figure.Figure` and writes it as PNG and
PDF (:func:`memsim._figures.save_figure`); the PNG path is returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from memsim._figures import figure_style, new_figure, save_figure
from memsim.devices.study import STUDY_TIMES, DeviceStudy

__all__ = [
    "plot_fan",
    "plot_iv_loop",
    "plot_program_verify",
    "plot_programmed",
    "write_study_figures",
]


def _colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.9 * k / max(n - 1, 1)) for k in range(n)]  # no pale yellow at the end


def plot_programmed(study: DeviceStudy, path: Path) -> Path:
    """Histograms of programmed conductance for each target level."""
    hist = study.samples_["programmed"]
    with figure_style():
        fig = new_figure(7.0, 4.0)
        ax = fig.add_subplot()
        lo = min(v.min() for v in hist.values()) * 1e6
        hi = max(v.max() for v in hist.values()) * 1e6
        bins = np.linspace(lo, hi, 160)
        for color, (g_t, g) in zip(_colors(len(hist)), hist.items(), strict=True):
            ax.hist(g * 1e6, bins=bins, histtype="stepfilled", alpha=0.45, color=color,
                    label=f"{g_t * 1e6:.3g} µS")
            ax.axvline(g_t * 1e6, color=color, lw=0.8, ls="--")
        ax.set_xlabel("programmed conductance $G_\\mathrm{prog}$ (µS)")
        ax.set_ylabel("devices per bin")
        ax.set_title(f"{study.device}: conductance after programming "
                     f"({len(next(iter(hist.values())))} devices per level; dashed: targets)")
        ax.legend(title="target", ncols=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return save_figure(fig, path)


def _stuck_note(stuck: tuple[float, float]) -> str:
    parts = [f"{100 * r:.3g} % stuck at {name}"
             for r, name in zip(stuck, ("$G_\\mathrm{min}$", "$G_\\mathrm{max}$"), strict=True)
             if r > 0]
    return ", ".join(parts)


def plot_fan(study: DeviceStudy, path: Path,
             stuck: tuple[float, float] = (0.0, 0.0)) -> Path:
    """Median and 1 %–99 % band of G(t) from 1 s to 10 years, per target level.

    ``stuck``: the card's (stuck-at-G_min, stuck-at-G_max) rates. When either is 1 % or
    more, the 1 % or 99 % quantile of every level is a stuck device, so the bands of all
    levels would span G_min..G_max and hide each other: each level then gets its own
    panel, its band drawn as it is and the stuck rates written on the figure.
    """
    t = study.samples_["fan_times_s"]
    fan = study.samples_["fan"]
    colors = _colors(len(fan))
    panels = max(stuck) >= 0.01
    with figure_style():
        if panels:
            cols = 4
            rows = -(-len(fan) // cols)
            fig = new_figure(9.0, 2.1 * rows + 0.8)
            axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
            for ax in axes[len(fan):]:
                ax.set_visible(False)
        else:
            fig = new_figure(7.5, 4.5)
            axes = [fig.add_subplot()] * len(fan)
        for ax, color, (g_t, q) in zip(axes, colors, fan.items(), strict=False):
            ax.fill_between(t, q[0] * 1e6, q[2] * 1e6, color=color,
                            alpha=0.25 if panels else 0.12, lw=0)
            ax.plot(t, q[0] * 1e6, color=color, lw=0.5, ls=":")
            ax.plot(t, q[2] * 1e6, color=color, lw=0.5, ls=":")
            ax.plot(t, q[1] * 1e6, color=color, lw=1.5, label=f"{g_t * 1e6:.3g} µS")
            ax.set_xscale("log")
            if panels:
                ax.set_title(f"target {g_t * 1e6:.3g} µS", fontsize=8)
                ax.axhline(g_t * 1e6, color="0.5", lw=0.6, ls="--")
        first = axes[0]
        ticks = [ts for _, ts in STUDY_TIMES]
        labels = [label for label, _ in STUDY_TIMES]
        if panels:  # narrow panels: short labels that do not run into each other
            keep = [k for k, x in enumerate(labels) if x != "1 year"]
            ticks = [ticks[k] for k in keep]
            labels = [labels[k].replace(" years", " y").replace(" day", " d") for k in keep]
        for ax in (axes if panels else [first]):
            if ax.get_visible():
                ax.set_xticks(ticks, labels)
                ax.xaxis.set_minor_locator(_null_locator())
                ax.grid(alpha=0.3)
        if panels:
            fig.supxlabel("time since programming")
            fig.supylabel("conductance G(t) (µS)")
            fig.suptitle(f"{study.device}: G(t), median and 1 %–99 % band per target level; "
                         f"{_stuck_note(stuck)} (the band's edges)", fontsize=10)
        else:
            first.set_xlabel("time since programming")
            first.set_ylabel("conductance G(t) (µS)")
            first.set_title(f"{study.device}: G(t), median and 1 %–99 % band")
            first.legend(title="target", ncols=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return save_figure(fig, path)


def _null_locator() -> Any:
    from matplotlib.ticker import NullLocator

    return NullLocator()


def plot_iv_loop(loops: list[tuple[float, dict[str, np.ndarray]]], name: str, path: Path) -> Path:
    """Pinched hysteresis loops i(v) under sine drives of several frequencies."""
    with figure_style():
        fig = new_figure(10.0, 4.0)
        ax, ax2 = fig.subplots(1, 2)
        for freq, loop in loops:
            label = f"{freq / 1e6:.4g} MHz"
            ax.plot(loop["v"], loop["i"] * 1e3, lw=1.2, label=label)
            ax2.plot(loop["t"] * freq, loop["w"] * 1e9, lw=1.2, label=label)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.axvline(0, color="0.6", lw=0.5)
        ax.set_xlabel("voltage (V)")
        ax.set_ylabel("current (mA)")
        ax.set_title(f"{name}: pinched hysteresis under a sine drive")
        ax.legend(title="drive frequency")
        ax2.set_xlabel("time (drive periods)")
        ax2.set_ylabel("state variable w (nm)")
        ax2.set_title("state variable")
        return save_figure(fig, path)


def plot_program_verify(pulses: np.ndarray, energy_j: np.ndarray, name: str, path: Path) -> Path:
    """Histogram of program-and-verify pulses used, and of energy per device."""
    with figure_style():
        fig = new_figure(10.0, 3.8)
        ax, ax2 = fig.subplots(1, 2)
        top = int(pulses.max()) if pulses.size else 1
        ax.hist(pulses, bins=np.arange(0.5, top + 1.5), color="tab:blue")
        ax.set_xlabel("pulses to converge")
        ax.set_ylabel("devices")
        ax.set_title(f"{name}: program-and-verify convergence ({pulses.size} devices, "
                     "5 levels)")
        ax2.hist(energy_j * 1e12, bins=60, color="tab:orange")
        ax2.set_xlabel("programming energy per device (pJ)")
        ax2.set_ylabel("devices")
        ax2.set_title(f"median {np.median(pulses):.0f} pulses, "
                      f"{np.median(energy_j) * 1e12:.3g} pJ")
        return save_figure(fig, path)


def write_study_figures(study: DeviceStudy, device: Any, out: Path) -> list[Path]:
    """Write every figure of the study to ``out`` (PNG and PDF); returns the PNG paths."""
    out.mkdir(parents=True, exist_ok=True)
    nonideal = getattr(device, "nonideal", None)
    stuck = (float(getattr(nonideal, "stuck_at_gmin_rate", 0.0) or 0.0),
             float(getattr(nonideal, "stuck_at_gmax_rate", 0.0) or 0.0))
    paths = [
        plot_programmed(study, out / f"{study.device}-programmed.png"),
        plot_fan(study, out / f"{study.device}-drift-fan.png", stuck=stuck),
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
