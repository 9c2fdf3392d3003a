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
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "chip_split", "format_wall", "plot_wall", "wall_table"]

MOVING_DIGITAL = ("SRAM", "DRAM weights", "DRAM activations")
MOVING_CHIP = ("buffers", "links", "off-chip I/O")
DEFAULT_NETWORKS = ("digits-mlp", "digits-cnn", "lenet5", "lstm", "resnet32-cifar10",
                    "resnet9-hermes", "resnet9-cifar10", "alexnet")


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


def wall_table(networks: list[str] | tuple[str, ...] = DEFAULT_NETWORKS, *,
               chip: str = "hermes-64core", digital: tuple[str, ...] = ("digital-gpu",
                                                                         "digital-cpu"),
               batch: int = 1, inferences: int = 3, seed: int = 0) -> dict[str, Any]:
    """For every network: each digital engine's and the chip's energy per inference by
    memory-wall class, and the share that moves bytes."""
    import numpy as np

    import memsim.chip as mc
    from memsim.workloads import load_workload

    the_chip = mc.load_chip(chip)
    engines = [mc.load_digital_config(d) for d in digital]
    rows = []
    for name in networks:
        desc = the_chip.describe(load_workload(name, np.random.default_rng(seed)))
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
    return {"networks": list(networks), "rows": rows, "assumptions": assumptions}


def format_wall(d: dict[str, Any]) -> str:
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
    import matplotlib.pyplot as plt

    rows = d["rows"]
    classes: list[str] = []
    for r in rows:
        for k in r["split_j"]:
            if k not in classes:
                classes.append(k)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.3 * len(rows) + 1.5))
    labels = [f"{r['network']} · {r['engine']} ({r['energy_j'] * 1e6:.3g} µJ)" for r in rows]
    left = [0.0] * len(rows)
    cmap = plt.get_cmap("tab20")
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


def _cmd_wall(args: argparse.Namespace) -> int:
    networks = args.network or list(DEFAULT_NETWORKS)
    digital = tuple(x.strip() for x in args.digital.split(",") if x.strip())
    d = wall_table(networks, chip=args.chip, digital=digital, batch=args.batch,
                   inferences=args.inferences)
    paths = []
    if not args.no_figures:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(11, 0.3 * len(d["rows"]) + 1.5))
        plot_wall(d, ax)
        fig.tight_layout()
        paths.append(out / "wall.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    d["figures"] = [str(p) for p in paths]
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print(format_wall(d))
        for p in paths:
            print(f"figure: {p}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``memsim wall`` on the ``argparse`` subparsers object ``sub``."""
    p = sub.add_parser("wall", help="the memory wall: energy moving bytes vs arithmetic, on "
                       "digital engines and the analog chip",
                       description="For each network, the digital engines' energy per "
                       "inference split into arithmetic, SRAM and DRAM traffic (weights, "
                       "activations), other per-FLOP energy and static power (Horowitz, "
                       "ISSCC 2014), beside the analog chip's split; a table and a figure, "
                       "with the assumptions printed.")
    p.add_argument("network", nargs="*", help="networks (default: all shipped workloads)")
    p.add_argument("--chip", default="hermes-64core", help="chip card (default hermes-64core)")
    p.add_argument("--digital", default="digital-gpu,digital-cpu",
                   help="comma-separated digital engine cards")
    p.add_argument("--batch", type=int, default=1, help="digital engines' batch (default 1)")
    p.add_argument("--inferences", type=int, default=3,
                   help="pipelined inferences simulated on the chip (default 3)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--out", default="memsim-out/wall", help="folder for the figure")
    p.add_argument("--no-figures", action="store_true", help="skip the figure")
    p.set_defaults(func=_cmd_wall)
    return p
