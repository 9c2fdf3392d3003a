"""Plain-text tables, engineering units, and :class:`Report`, the one shape of every
result's report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Report", "engineering", "format_device_study", "table"]


class Report(dict):
    """The report of a result: its numbers as a JSON-able mapping that prints as text.

    Every ``report()`` of memsim returns one (a mapped network, a network description, a
    converted torch model, a chip run, a tile's MVM error, a drift study, the memory wall,
    the demo). As a ``dict`` it holds the numbers in SI units, exactly what ``--json``
    prints (``rep["total_tiles"]``, ``json.dumps(rep)``); ``str(rep)`` (so ``print(rep)``)
    is the text table the command line shows, in engineering units. ``kind`` names the
    result type.
    """

    __slots__ = ("_text", "kind")

    def __init__(self, kind: str, data: Mapping[str, Any],
                 text: Callable[[Mapping[str, Any]], str] | None = None) -> None:
        super().__init__(data)
        self.kind = kind
        self._text = text

    def __str__(self) -> str:
        return self._text(self) if self._text is not None else self.to_json()

    def __reduce__(self) -> tuple:
        return (Report, (self.kind, dict(self), self._text))

    def to_dict(self) -> dict[str, Any]:
        """The numbers as a plain ``dict``."""
        return dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The numbers as JSON (what the command line's ``--json`` prints)."""
        return json.dumps(self, indent=indent, default=str)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 0) -> str:
    """A plain text table; the first ``left`` columns are left-aligned, the rest right."""
    widths = [max([len(h), *(len(r[k]) for r in rows)]) for k, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if k < left else c.rjust(w)
                         for k, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths), *map(fmt, rows)])


def engineering(value: float, unit: str) -> str:
    """1.33e-07, "s" -> "133 ns"."""
    if value == 0:
        return f"0 {unit}"
    prefixes = [(1e-15, "f"), (1e-12, "p"), (1e-9, "n"), (1e-6, "µ"), (1e-3, "m"), (1.0, ""),
                (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T")]
    scale, prefix = prefixes[0]
    for s, p in prefixes:
        if abs(value) >= s * 0.9995:
            scale, prefix = s, p
    return f"{value / scale:.4g} {prefix}{unit}"


def format_device_study(d: Mapping[str, Any]) -> str:
    """The text table of a device study (the dict of
    :meth:`memsim.devices.study.DeviceStudy.to_dict`)."""
    lines = [
        f"memsim device {d['device']}: {d['description']}",
        f"g range {d['g_min_uS']:.4g}–{d['g_max_uS']:.4g} µS; "
        f"{d['n_devices_per_level']} devices per level; seed {d['seed']}",
        "",
        "Programming error (G_prog − G_target), measured",
    ]
    rows = []
    for p in d["programming"]:
        model = "—" if p["sigma_model_uS"] is None else f"{p['sigma_model_uS']:.4f}"
        rows.append([f"{p['g_target_uS']:.3f}", f"{p['mean_error_uS']:+.4f}",
                     f"{p['sigma_uS']:.4f} ± {p['sigma_stderr_uS']:.4f}", model])
    lines.append(table(["target µS", "mean µS", "σ µS (± s.e.)", "model σ µS"], rows))
    lines += ["", f"Drift factor G_drift(t)/G_prog and relative read noise, devices at "
                  f"{d['reference_level_uS']:.3f} µS"]
    rows = [[r["time"], f"{r['drift_factor_median']:.4f}",
             f"{r['drift_factor_p01']:.4f} – {r['drift_factor_p99']:.4f}",
             f"{100 * r['read_noise_rel']:.3f} %"] for r in d["drift"]]
    lines.append(table(["time", "median", "1 % – 99 %", "read noise σ/G"], rows))
    return "\n".join(lines)
