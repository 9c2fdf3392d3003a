"""A tile's MVM error under noise and drift (``memsim tile NAME``).

One random weight matrix W (Gaussian) and a batch of inputs X (uniform in [−1, 1]), both
filling the tile, are programmed once per drift compensation mode (none, global, per
column) and read at 1 s, 1 day and 1 year after programming. The error is the relative
Frobenius norm ‖Y − XW‖/‖XW‖ of the tile's outputs against exact float64 arithmetic; the
ADC saturation rate of each read is kept beside it. A tile whose inputs are scaled per
layer gets its input range from X itself (what its first batch would set). One programming
seed, one read seed: the spread over seeds is not estimated here (the drift study does that
on a network).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from memsim._format import Report, engineering, table
from memsim.errors import ConfigError
from memsim.timegrid import time_points

__all__ = ["PREFERRED_DEVICES", "TIMES", "fitting_device", "format_tile_error",
           "tile_cards", "tile_error", "tile_parameters"]

#: Devices tried, in this order, when a tile is given no device.
PREFERRED_DEVICES = ("pcm-hermes-2dev", "pcm-hermes-1dev", "pcm-generic", "rram-cmo", "ideal")

#: Read times after programming: (label, seconds).
TIMES = time_points("1 s", "1 day", "1 year")

_COMPENSATIONS = ("none", "global", "per_column")
_UNITS = {"_s": "s", "_j": "J", "_v": "V", "_ohm": "Ω"}


def tile_error(tile: Any, device: Any, *, seed: int = 0, batch: int = 256,
               overrides: dict[str, Any] | None = None) -> Report:
    """Relative MVM error ‖Y − XW‖/‖XW‖ at 1 s, 1 day and 1 year, with and without drift
    compensation (see the module docstring).

    ``tile``: a tile card name, path or :class:`~memsim.crossbar.TileConfig`; ``device``: a
    device card name, path or :class:`~memsim.devices.Device`; ``overrides``: tile
    parameters by name. Returns a :class:`~memsim.Report` whose ``accuracy`` rows hold
    ``drift_compensation``, ``time``, ``t_s``, ``relative_error`` and
    ``adc_saturation_rate``.
    """
    for name, value, lo in (("seed", seed, 0), ("batch", batch, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(f"{name} = {value!r} must be an integer >= {lo}")

    from memsim.crossbar import load_tile

    rng = np.random.default_rng(seed)
    base = load_tile(tile, device=device, **(overrides or {}))
    cfg = base.config
    w = rng.standard_normal((cfg.rows, cfg.cols))
    x = rng.uniform(-1.0, 1.0, size=(batch, cfg.rows))
    exact = x @ w
    rows = []
    for comp in _COMPENSATIONS:
        one = load_tile(cfg, device=base.device, drift_compensation=comp)
        one.program(w, np.random.default_rng(seed + 1))
        if cfg.input_scaling == "layer":  # the range of these inputs, set explicitly
            one.calibrate_inputs(x)
        for label, t in TIMES:
            y = one.matvec(x, t, np.random.default_rng(seed + 2))
            rows.append({"drift_compensation": comp, "time": label, "t_s": t,
                         "relative_error": float(np.linalg.norm(y - exact)
                                                 / np.linalg.norm(exact)),
                         "adc_saturation_rate": one.saturation_.rate})
    return Report("tile-error", {
        "tile": cfg.name, "description": cfg.description, "device": base.device.name,
        "batch": batch, "seed": seed, "accuracy": rows,
        "parameters": {k: v for k, v, _ in tile_parameters(cfg)},
        "sources": {k: s for k, _, s in tile_parameters(cfg)}}, format_tile_error)


def tile_parameters(cfg: Any) -> list[tuple[str, str, str]]:
    """(field, value in engineering units, source) of every parameter of a tile config."""
    out = []
    for f in fields(cfg):
        if f.name in ("sources", "name", "description"):
            continue
        value = getattr(cfg, f.name)
        unit = next((u for suffix, u in _UNITS.items() if f.name.endswith(suffix)), None)
        if value is None:
            text = "None (unquantized)" if "bits" in f.name else "—"
        elif unit and isinstance(value, int | float):
            text = engineering(float(value), unit)
        else:
            text = str(value)
        out.append((f.name, text, cfg.sources.get(f.name, "")))
    return out


def format_tile_error(rep: dict[str, Any]) -> str:
    """The text of a :func:`tile_error` report: parameters with sources, then the errors."""
    lines = [f"memsim tile {rep['tile']}: {rep.get('description', '')}".rstrip(": "),
             f"device {rep['device']}", ""]
    sources = rep.get("sources", {})
    rows = []
    for k, v in rep.get("parameters", {}).items():
        src = sources.get(k, "")
        rows.append([k, v, (src[:70] + "…") if len(src) > 71 else src])
    if rows:
        lines += [table(["parameter", "value", "source"], rows, left=3), ""]
    lines.append(f"Relative MVM error ‖Y − XW‖/‖XW‖ (W Gaussian, X uniform in [−1, 1], "
                 f"batch {rep['batch']}, seed {rep['seed']})")
    by_time: dict[str, dict[str, float]] = {}
    for r in rep["accuracy"]:
        by_time.setdefault(r["time"], {})[r["drift_compensation"]] = r["relative_error"]
    lines.append(table(["time", "no compensation", "global", "per column"],
                       [[t, *(f"{100 * v[c]:.2f} %" for c in _COMPENSATIONS)]
                        for t, v in by_time.items()], left=1))
    return "\n".join(lines)


def tile_cards() -> list[str]:
    """Names of the shipped tile cards (``card.kind = "tile"``; not chips or digital engines)."""
    from memsim.chip import list_chips

    return list_chips("tile")


def fitting_device(cfg: Any) -> str:
    """The first shipped device (HERMES PCM first) whose model fits the tile's unit cell.

    Raises :class:`~memsim.ConfigError` listing every device tried and why it does not fit.
    """
    import memsim
    from memsim.crossbar import Tile

    shipped = memsim.list_devices()
    names = [*PREFERRED_DEVICES, *(d for d in shipped if d not in PREFERRED_DEVICES)]
    reasons = []
    for name in names:
        if name not in shipped:
            continue
        try:
            Tile(cfg, memsim.load_device(name))
        except ValueError as exc:
            reasons.append(f"{name}: {exc}")
            continue
        return name
    raise ConfigError(f"tile {cfg.name!r}: no shipped device fits its unit cell; give "
                      f"--device. Tried: {'; '.join(reasons)}")
