"""Plain-text tables and engineering units for the command line and reports."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["engineering", "table"]


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
