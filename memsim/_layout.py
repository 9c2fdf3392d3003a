"""How a matrix is cut into tiles: shared by the tile engine and the chip's description."""

from __future__ import annotations

__all__ = ["balanced_cuts"]


def balanced_cuts(n: int, size: int, unit: int = 1) -> list[tuple[int, int]]:
    """[start, stop) pieces of ``n`` items, at most ``size`` each, cut at multiples of
    ``unit`` and as equal as whole units allow (a unit larger than ``size`` is cut inside).

    HERMES maps its 2016-row ResNet-9 layers as 8 blocks of 252 rows = 28 channels × 3×3
    (Le Gallo et al., Nat. Electron. 6, 680, 2023): ``balanced_cuts(2016, 256, 9)``.
    """
    if unit > size:
        unit = 1
    units = -(-n // unit)
    per = max(1, size // unit)
    pieces = -(-units // per)
    base, extra = divmod(units, pieces)
    out, start = [], 0
    for i in range(pieces):
        stop = min(n, start + (base + (i < extra)) * unit)
        out.append((start, stop))
        start = stop
    return out
