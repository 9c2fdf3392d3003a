"""Drift study: accuracy of a trained workload from 1 s to 10 years after programming.

The workload is a digits model ("cnn", "mlp") or any trained workload of
:mod:`memsim.workloads.trained` ("mnist-lenet5", ...). For every device × drift
compensation × training (plain or hardware-aware) the trained torch model is converted with
:func:`memsim.analog`, programmed with ``seeds`` independent programming seeds and evaluated
on the workload's test set at each time; the table gives the mean and the standard
deviation over the seeds, the figure the mean with a ±1 σ band. After each programming the
converter ranges are calibrated on 256 training images (:func:`memsim.calibrate`), as the
chip calibrates them per layer.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from memsim._format import Report
from memsim.errors import ConfigError
from memsim.timegrid import TIME_GRID
from memsim.workloads.digits import hwa_noise
from memsim.workloads.trained import TRAINED, get_trained
from memsim.workloads.training import accuracy, analog_accuracy

__all__ = ["DRIFT_TIMES", "format_drift_table", "plot_drift_study", "run_drift_study",
           "workload_name"]

DRIFT_TIMES = TIME_GRID
DEVICES = ("pcm-generic", "pcm-hermes-2dev", "rram-cmo")


def workload_name(model: str) -> str:
    """The trained workload of a drift-study model: "cnn"/"mlp" are the digits models."""
    name = f"digits-{model}" if model in ("cnn", "mlp") else model
    if name not in TRAINED:
        raise ConfigError(f"unknown drift-study model {model!r}; known: cnn, mlp, "
                          f"{', '.join(TRAINED)}")
    return name


def run_drift_study(*, model: str = "cnn", tile: str = "hermes-core",
                    devices: tuple[str, ...] = DEVICES,
                    compensations: tuple[str, ...] = ("none", "global"),
                    trainings: tuple[str, ...] = ("plain", "hwa"),
                    times: tuple[tuple[str, float], ...] = DRIFT_TIMES,
                    seeds: int = 5, seed: int = 0, progress: Any = None) -> Report:
    """Accuracy table (mean and σ over programming seeds) for every configuration, as a
    :class:`~memsim.Report` (printed: :func:`format_drift_table`). ``progress(n)`` is
    called after each configuration with the programmings it made."""
    if seeds < 1:
        raise ValueError(f"seeds = {seeds} must be >= 1")
    for c in compensations:
        if c not in ("none", "global", "per_column"):
            raise ValueError(f"unknown drift compensation {c!r}; known: none, global, "
                             "per_column")
    for tr in trainings:
        if tr not in ("plain", "hwa"):
            raise ValueError(f"unknown training {tr!r}; known: plain, hwa")
    work = get_trained(workload_name(model))
    tick = progress or (lambda n=1: None)
    x_tr, _, x_te, y_te = work.data()
    rows = []
    plain = work.model(None) if "plain" in trainings else None
    for device in devices:
        models = {"plain": plain}
        if "hwa" in trainings:
            models["hwa"] = work.model(hwa_noise(tile, device))
        for comp, training in itertools.product(compensations, trainings):
            res = analog_accuracy(models[training], x_te, y_te, tile=tile, device=device,
                                  times=[t for _, t in times], seeds=seeds, seed=seed,
                                  x_calibrate=x_tr[:work.calibration_samples],
                                  drift_compensation=comp)
            acc = res["accuracy"]
            tick(seeds)
            rows.append({
                "device": device, "drift_compensation": comp, "training": training,
                "accuracy_mean": acc.mean(0).tolist(),
                "accuracy_std": acc.std(0, ddof=1).tolist() if seeds > 1 else [0.0] * len(times),
                "accuracy": acc.tolist(),
            })
    return Report("drift-study", {
        "model": model, "workload": work.name, "tile": tile, "seeds": seeds, "seed": seed,
        "test_samples": len(y_te),
        "float_accuracy": _float_accuracy(plain, x_te, y_te) if plain is not None else None,
        "times": [label for label, _ in times], "times_s": [t for _, t in times],
        "rows": rows}, format_drift_table)


def _workload(result: Mapping[str, Any]) -> str:
    return result.get("workload") or f"digits-{result['model']}"


def _float_accuracy(model, x, y) -> float:
    import torch

    with torch.no_grad():
        return accuracy(model(torch.tensor(np.asarray(x), dtype=torch.float32)), y)


def format_drift_table(result: Mapping[str, Any], columns: tuple[str, ...] | None = None) -> str:
    """Text table: mean ± σ accuracy (%) per configuration at the chosen times."""
    from memsim._format import table as _table

    labels = result["times"]
    keep = [k for k, label in enumerate(labels) if columns is None or label in columns]
    head = ["device", "compensation", "training", *(labels[k] for k in keep)]
    body = [[r["device"], r["drift_compensation"], r["training"],
             *(f"{100 * r['accuracy_mean'][k]:.2f} ± {100 * r['accuracy_std'][k]:.2f}"
               for k in keep)] for r in result["rows"]]
    lines = [f"{_workload(result)} accuracy (%) on {result['test_samples']} test images, "
             f"tile {result['tile']}, mean ± σ over {result['seeds']} programming seeds"]
    if result.get("float_accuracy") is not None:
        lines.append(f"floating-point accuracy: {100 * result['float_accuracy']:.2f} %")
    lines.append(_table(head, body, left=3))
    return "\n".join(lines)


def plot_drift_study(result: dict[str, Any], path: Path) -> Path:
    """One panel per device: mean accuracy vs time with a ±1 σ band per training and drift
    compensation; the float accuracy dotted. Written as PNG and PDF; returns the PNG."""
    from memsim._figures import figure_style, human_value, new_figure, save_figure

    devices = list(dict.fromkeys(r["device"] for r in result["rows"]))
    t = np.asarray(result["times_s"])
    styles = {("none", "plain"): ("tab:red", "--"), ("none", "hwa"): ("tab:orange", "--"),
              ("global", "plain"): ("tab:blue", "-"), ("global", "hwa"): ("tab:green", "-"),
              ("per_column", "plain"): ("tab:purple", "-."),
              ("per_column", "hwa"): ("tab:olive", "-.")}
    with figure_style():
        fig = new_figure(4.2 * len(devices) + 2.2, 4.0)
        axes = fig.subplots(1, len(devices), sharey=True, squeeze=False)[0]
        for ax, dev in zip(axes, devices, strict=True):
            for r in (r for r in result["rows"] if r["device"] == dev):
                color, ls = styles.get((r["drift_compensation"], r["training"]), ("k", ":"))
                m = 100 * np.asarray(r["accuracy_mean"])
                s = 100 * np.asarray(r["accuracy_std"])
                ax.plot(t, m, color=color, ls=ls, marker="o", ms=3,
                        label=f"{human_value('training', r['training'])}, "
                              f"{human_value('drift_compensation', r['drift_compensation'])}")
                ax.fill_between(t, m - s, m + s, color=color, alpha=0.15, lw=0)
            if result.get("float_accuracy") is not None:
                ax.axhline(100 * result["float_accuracy"], color="0.5", lw=0.8, ls=":",
                           label="floating point")
            ax.set_xscale("log")
            ax.set_xticks(t, [label.replace(" years", " y").replace(" year", " y")
                              .replace(" month", " mo") for label in result["times"]])
            ax.minorticks_off()
            ax.set_title(dev)
            ax.set_xlabel("time since programming")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("test accuracy (%)")
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.suptitle(f"{_workload(result)} on {result['tile']}: accuracy vs time "
                     f"(mean ± σ over {result['seeds']} programming seeds)")
        return save_figure(fig, path)
