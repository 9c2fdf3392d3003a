"""The memory wall: how much of an inference's energy moves bytes, on digital engines and on
the analog chip (``memsim wall [NETWORK ...]``).

Digital engines (:meth:`~memsim.chip.digital.DigitalConfig.estimate`): the roofline's energy
split into arithmetic (FLOPs × the arithmetic energy of one operation at the engine's
precision, Horowitz ISSCC 2014), on-chip SRAM traffic (every weight and activation byte once
through SRAM, × pJ per SRAM byte, Horowitz), DRAM traffic of weights (read once per batch)
and of activations (in and out of every layer, the roofline's pessimistic bound), the rest of
the card's per-FLOP energy (register files, control, clocks) and static power.

The analog chip (:class:`~memsim.chip.run.ChipRun`): arithmetic in the arrays (DAC, array,
ADC and per-MVM energy) and in the digital units, bytes moved through the cores' buffers,
over the links and off chip, and static power of every block.

Every shipped workload is accepted (:func:`memsim.workloads.workload_names`): layer-shape and
built-in networks as a :class:`~memsim.mapping.graph.Graph`; trained torch workloads without a
Graph (KANs, the transformer) as the description recorded from one input
(:func:`~memsim.workloads.trained.describe_trained`). Both engines read FLOPs and bytes from
the same description.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memsim._format import Report
from memsim._progress import progress
from memsim.errors import ConfigError

__all__ = ["all_networks", "chip_split", "format_wall", "plot_wall",
           "wall_network", "wall_table", "write_wall_figure"]

MOVING_DIGITAL = ("SRAM", "DRAM weights", "DRAM activations")
MOVING_CHIP = ("buffers", "links", "off-chip I/O")


def all_networks() -> list[str]:
    """Every shipped workload, the default of :func:`wall_table` and ``memsim wall``: the
    Graph networks, then the trained torch workloads (about 11 s on 2 cores once the trained
    models are cached; each trained model is trained at first use)."""
    from memsim.workloads import workload_names

    return workload_names()


def wall_network(name: str, tile: Any, seed: int = 0) -> Any:
    """The network ``name`` as the chip and the digital engines take it: a Graph for
    layer-shape and built-in networks (random weights drawn with ``seed``), else the
    description of a trained torch workload recorded on one input (trained at first use and
    cached). ConfigError naming the known networks for any other name."""
    import numpy as np

    from memsim.workloads import list_workloads, load_workload, workload_names

    if name in list_workloads():
        return load_workload(name, np.random.default_rng(seed))
    if name in workload_names():
        from memsim.workloads.trained import describe_trained

        return describe_trained(name, tile)
    raise ConfigError(f"unknown network {name!r}; known: {', '.join(workload_names())}")


def chip_split(run: Any) -> dict[str, float]:
    """Energy per inference of a chip run by memory-wall class (J)."""
    out = {"arithmetic (arrays)": 0.0, "arithmetic (digital units)": 0.0, "buffers": 0.0,
           "links": 0.0, "off-chip I/O": 0.0, "static": 0.0, "programming": 0.0}
    for comp, e in run.energy_breakdown.items():
        if comp in ("DAC", "array", "ADC", "MVM overhead"):
            out["arithmetic (arrays)"] += e
        elif comp in ("local digital", "global digital"):
            out["arithmetic (digital units)"] += e
        elif comp.endswith("(static)"):
            out["static"] += e
        else:
            out[comp] = out.get(comp, 0.0) + e
    return out


def wall_table(networks: list[str] | tuple[str, ...] | None = None, *,
               chip: str = "hermes-64core", digital: tuple[str, ...] = ("digital-gpu",
                                                                         "digital-cpu"),
               batch: int = 1, inferences: int = 3, seed: int = 0) -> Report:
    """For every network: each digital engine's and the chip's energy per inference by
    memory-wall class, and the share that moves bytes (``networks``: default every shipped
    workload, :func:`all_networks`)."""
    import memsim.chip as mc

    known = all_networks()
    networks = known if networks is None else list(networks)
    unknown = [n for n in networks if n not in known]
    if unknown:  # before any work is done
        raise ConfigError(f"unknown network{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    the_chip = mc.load_chip(chip)
    engines = [mc.load_digital_config(d) for d in digital]
    rows = []
    with progress(len(networks), "memory wall", "network") as bar:
        for name in networks:
            desc = the_chip.describe(wall_network(name, the_chip.config.tile, seed))
            for eng in engines:
                est = eng.estimate(desc, batch=batch)
                split = dict(est.wall_breakdown)
                total = sum(split.values())
                rows.append({"network": name, "engine": eng.name, "energy_j": total,
                             "split_j": split, "traffic_bytes": est.traffic,
                             "moving_share": sum(split[k] for k in MOVING_DIGITAL) / total})
            need = mc.count_cores(desc)
            fit = "error" if need <= the_chip.config.cores else "multi-chip"
            run = the_chip.simulate(desc, inferences=inferences, fit=fit, record=False)
            split = chip_split(run)
            total = sum(split.values())
            rows.append({"network": name, "engine": chip, "energy_j": total, "split_j": split,
                         "chips": run.chips,
                         "moving_share": sum(split[k] for k in MOVING_CHIP) / total})
            bar.update(1)
    assumptions = []
    for eng in engines:
        assumptions.append(
            f"{eng.name}: arithmetic {eng.energy_per_flop_arithmetic_j * 1e12:.3g} pJ/FLOP, "
            f"SRAM {eng.energy_per_sram_byte_j * 1e12:.3g} pJ/B, DRAM "
            f"{eng.energy_per_dram_byte_j * 1e12:.4g} pJ/B (Horowitz ISSCC 2014, 45 nm), "
            f"card energy {eng.energy_per_flop_j * 1e12:.3g} pJ/FLOP in all, "
            f"{eng.bytes_per_value} B per value, static {eng.static_power_w:g} W")
    assumptions += [
        "every weight and activation byte passes on-chip SRAM once (operand reuse in "
        "registers is not counted); weights come from DRAM once per batch; activations go "
        "to and from DRAM at every layer (the roofline's pessimistic bound)",
        f"batch {batch} on the digital engines; the chip: {chip}, {inferences} pipelined "
        "inferences, static power of every block over the run",
        "'other per-FLOP' is the card's per-FLOP energy minus arithmetic and SRAM: register "
        "files, control, clocks"]
    return Report("memory-wall", {"networks": list(networks), "rows": rows,
                                  "assumptions": assumptions}, format_wall)


def format_wall(d: Mapping[str, Any]) -> str:
    from memsim._format import engineering as eng
    from memsim._format import table

    out = ["The memory wall: energy per inference by class, as a share of the engine's total "
           "(moving bytes also as a share of the dynamic energy, static excluded)", ""]
    notes = []
    for title, moving, chip in (("Digital engines", MOVING_DIGITAL, False),
                                ("Analog chip", MOVING_CHIP, True)):
        rows = [r for r in d["rows"] if ("chips" in r) == chip]
        if not rows:
            continue
        classes = list(rows[0]["split_j"])
        body = []
        for r in rows:
            tot = r["energy_j"] or 1.0
            dyn = tot - r["split_j"].get("static", 0.0)
            mv = sum(r["split_j"][k] for k in moving)
            body.append([r["network"], r["engine"], eng(r["energy_j"], "J"),
                         f"{100 * mv / tot:.0f} %", f"{100 * mv / dyn:.0f} %" if dyn else "—",
                         *(f"{100 * r['split_j'][k] / tot:.0f} %" for k in classes)])
            if r["split_j"].get("other per-FLOP", 0.0) < 0:
                notes.append(f"{r['network']} on {r['engine']}: arithmetic + SRAM at 45 nm "
                             "exceed the card's per-FLOP energy (memory-bound layers at batch "
                             "1); 'other per-FLOP' is negative")
        out += [title]
        out.append(table(["network", "engine", "energy", "moving bytes", "(of dynamic)",
                          *classes], body, left=2))
        out.append("")
    gpu = [r for r in d["rows"] if r["engine"] == "digital-gpu"]
    if gpu:
        parts = []
        for r in gpu:
            dyn = r["energy_j"] - r["split_j"]["static"]
            mv = sum(r["split_j"][k] for k in MOVING_DIGITAL)
            parts.append(f"{r['network']} {100 * mv / r['energy_j']:.0f} % "
                         f"({100 * mv / dyn:.0f} % of dynamic)")
        out += ["On the GPU, moving bytes takes: " + "; ".join(parts), ""]
    out += ["Assumptions:"] + [f"- {a}" for a in d["assumptions"]]
    out += [f"note: {n}" for n in notes]
    return "\n".join(out)


def plot_wall(d: dict[str, Any], ax: Any = None) -> Any:
    """Stacked bars: each network and engine's energy shares by class."""
    import matplotlib

    from memsim._figures import new_figure

    rows = d["rows"]
    classes: list[str] = []
    for r in rows:
        for k in r["split_j"]:
            if k not in classes:
                classes.append(k)
    if ax is None:
        ax = new_figure(10, 0.3 * len(rows) + 1.5).add_subplot()
    labels = [f"{r['network']} · {r['engine']} ({r['energy_j'] * 1e6:.3g} µJ)" for r in rows]
    left = [0.0] * len(rows)
    cmap = matplotlib.colormaps["tab20"]
    for ci, c in enumerate(classes):
        vals = [100 * r["split_j"].get(c, 0.0) / (r["energy_j"] or 1.0) for r in rows]
        ax.barh(range(len(rows)), vals, left=left, color=cmap(ci % 20), label=c)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the energy per inference (%)")
    ax.set_title("The memory wall: arithmetic, bytes moved and static power", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def write_wall_figure(d: dict[str, Any], out: str | Path) -> Path:
    """Write the memory-wall figure (:func:`plot_wall`) as ``out/wall.png`` and ``.pdf``;
    returns the PNG path."""
    from memsim._figures import figure_style, new_figure, save_figure

    with figure_style():
        fig = new_figure(11, 0.3 * len(d["rows"]) + 1.5)
        plot_wall(d, fig.add_subplot())
        return save_figure(fig, Path(out) / "wall.png")
