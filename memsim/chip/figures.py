"""Figures of a chip run: core activity over time (Gantt), the energy breakdown, and the
per-layer breakdown (each layer's span in the first inference and its energy by component).

Each ``plot_*`` draws on the axes it is given (or on a new
:class:`matplotlib.figure.Figure`); :func:`write_chip_figures` writes every figure as PNG
and PDF.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from memsim._figures import figure_style, new_figure, save_figure
from memsim.chip.run import ChipRun

__all__ = ["plot_comparison", "plot_energy", "plot_gantt", "plot_layers",
           "write_chip_figures"]

_LABEL = re.compile(r"^(.*?)(?: [tb]\d+)?(?: i(\d+))?$")


def _split_label(label: str) -> tuple[str, int | None]:
    """"res1a i3" -> ("res1a", 3); "lstm0 t5 i0" -> ("lstm0", 0); "conv b2 i1" -> ("conv", 1);
    "program seg1" -> (…, None)."""
    m = _LABEL.match(label)
    layer, inf = m.group(1), m.group(2)
    return layer, (int(inf) if inf is not None else None)


def plot_gantt(run: ChipRun, ax: Any = None, max_inferences: int | None = 8) -> Any:
    """Busy intervals of every used core (and the global units), coloured by layer.

    Only the first ``max_inferences`` inferences are drawn (None: all)."""
    import matplotlib

    if ax is None:
        ax = new_figure(11, 6).add_subplot()
    rows: dict[str, int] = {}
    names = sorted({r for r, *_ in run.timeline if r.startswith("core")},
                   key=lambda r: int(r[4:]))
    if any(r == "gdu" for r, *_ in run.timeline):
        names.append("gdu")
    for k, r in enumerate(names):
        rows[r] = k
    layers = sorted({_split_label(lab)[0] for *_, lab in run.timeline})
    cmap = matplotlib.colormaps["tab20"]
    color = {layer: cmap(k % 20) for k, layer in enumerate(layers)}
    bars: dict[tuple[str, str], list[tuple[float, float]]] = {}
    t_end = 0.0
    for r, t0, t1, lab in run.timeline:
        layer, inf = _split_label(lab)
        if max_inferences is not None and inf is not None and inf >= max_inferences:
            continue
        bars.setdefault((r, layer), []).append((t0 * 1e6, (t1 - t0) * 1e6))
        t_end = max(t_end, t1)
    for (r, layer), spans in bars.items():
        ax.broken_barh(spans, (rows[r] - 0.4, 0.8), facecolors=color.get(layer, "grey"),
                       linewidth=0)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=6 if len(names) > 40 else 8)
    ax.set_ylim(-1, len(names))
    ax.invert_yaxis()
    ax.set_xlim(0, t_end * 1e6 * 1.01 if t_end else 1)
    ax.set_xlabel("time (µs)")
    shown = "all" if max_inferences is None else f"first {max_inferences}"
    ax.set_title(f"{run.network} on {run.chip}: core activity ({shown} inferences)")
    if len(layers) <= 40:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=color[x], label=x) for x in layers], fontsize=6,
                  loc="upper left", bbox_to_anchor=(1.0, 1.0), ncol=1 + len(layers) // 30)
    return ax


def plot_energy(run: ChipRun, ax: Any = None) -> Any:
    """Energy per inference of the chip by component (horizontal bars, linear scale)."""
    if ax is None:
        ax = new_figure(7, 4).add_subplot()
    items = sorted(((c, v) for c, v in run.energy_breakdown.items() if v > 0),
                   key=lambda kv: kv[1])
    total = run.energy_j or 1.0
    ax.barh([c for c, _ in items], [v * 1e6 for _, v in items], color="tab:blue")
    for k, (_, v) in enumerate(items):
        ax.text(v * 1e6, k, f" {v * 1e6:.3g} µJ ({100 * v / total:.1f} %)", va="center",
                fontsize=8)
    ax.set_xlabel("energy per inference (µJ)")
    ax.set_xlim(0, max((v for _, v in items), default=1e-6) * 1e6 * 1.45)
    ax.set_title(f"{run.network} on {run.chip}: {run.energy_j * 1e6:.3g} µJ per inference, "
                 f"{run.tops_per_w:.3g} TOPS/W", fontsize=10)
    return ax


def plot_comparison(run: ChipRun, digital: list[Any], ax: Any = None) -> Any:
    """Energy per inference of the chip next to digital engines (log scale)."""
    if ax is None:
        ax = new_figure(5, 4).add_subplot()
    names = [run.chip, *(d.engine for d in digital)]
    values = [run.energy_j * 1e6, *(d.energy_j * 1e6 for d in digital)]
    lat = [run.latency_s, *(d.latency_s for d in digital)]
    ax.bar(names, values, color=["tab:green", *["tab:grey"] * len(digital)])
    for k, (v, t) in enumerate(zip(values, lat, strict=True)):
        ax.text(k, v, f"{v:.3g} µJ\n{t * 1e6:.3g} µs", ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylim(min(values) / 3, max(values) * 10)
    ax.set_ylabel("energy per inference (µJ)")
    ax.set_title("analog chip vs digital (latency below energy)", fontsize=10)
    return ax


def plot_layers(run: ChipRun, axes: Any = None) -> Any:
    """Left: each layer's span in the first inference (start to end); right: its dynamic
    energy per inference by component (stacked)."""
    import matplotlib

    layers = [la for la in run.layers() if la["energy_j"] > 0 or la["cores"]]
    if axes is None:
        axes = new_figure(12, 0.35 * len(layers) + 1.8).subplots(1, 2, sharey=True)
    ax_t, ax_e = axes
    names = [la["name"] for la in layers]
    y = range(len(layers))
    for k, la in enumerate(layers):
        if la["start_s"] is not None:
            ax_t.barh(k, la["latency_s"] * 1e6, left=la["start_s"] * 1e6, color="tab:blue")
    ax_t.set_yticks(list(y))
    ax_t.set_yticklabels(names, fontsize=7)
    ax_t.invert_yaxis()
    ax_t.set_xlabel("time in the first inference (µs)")
    ax_t.set_title(f"{run.network}: layer spans (latency {run.latency_s * 1e6:.3g} µs)",
                   fontsize=9)
    comps = sorted({c for la in layers for c in la["energy_breakdown_j"]})
    cmap = matplotlib.colormaps["tab10"]
    left = [0.0] * len(layers)
    for ci, c in enumerate(comps):
        vals = [la["energy_breakdown_j"].get(c, 0.0) * 1e6 for la in layers]
        ax_e.barh(list(y), vals, left=left, color=cmap(ci % 10), label=c)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax_e.set_xlabel("dynamic energy per inference (µJ)")
    ax_e.set_title(f"energy by layer (static of all blocks: {run.static_energy_j * 1e6:.3g} "
                   "µJ, not shown)", fontsize=9)
    ax_e.legend(fontsize=7, loc="lower right")
    return axes


def write_chip_figures(run: ChipRun, out: str | Path, digital: list[Any] | None = None,
                       max_inferences: int | None = 8) -> list[Path]:
    """Write ``timeline`` (Gantt of core activity), ``energy`` and ``layers`` (per-layer
    spans and energy) into ``out``, each as PNG and PDF; returns the PNG paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with figure_style():
        fig = new_figure(12, 7)
        plot_gantt(run, fig.add_subplot(), max_inferences=max_inferences)
        paths.append(save_figure(fig, out / "timeline.png"))
        if digital:
            fig = new_figure(13, 4.5)
            ax, ax2 = fig.subplots(1, 2, width_ratios=[3, 2])
            plot_comparison(run, digital, ax2)
        else:
            fig = new_figure(8, 4.5)
            ax = fig.add_subplot()
        plot_energy(run, ax)
        paths.append(save_figure(fig, out / "energy.png"))
        n = len([la for la in run.layers() if la["energy_j"] > 0 or la["cores"]])
        fig = new_figure(12, 0.35 * n + 1.8)
        plot_layers(run, fig.subplots(1, 2, sharey=True))
        paths.append(save_figure(fig, out / "layers.png"))
    return paths
