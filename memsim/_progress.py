"""Progress bars for the calls that can take more than a few seconds.

Programming and calibrating a converted model (one step per layer), mapping and programming
a memsim Graph (one step per array), a chip run (one step per finished inference), the
accuracy of a model over programming seeds, the memory-wall table (one step per network),
device, drift and parameter studies: each shows a tqdm bar on stderr. A bar appears only
after 2 s (short calls stay silent), only when stderr is a terminal, and disappears when
the call returns. :func:`set_progress` (the command line's ``--quiet``) or the
environment variable ``MEMSIM_PROGRESS=0`` turns every bar off; ``set_progress(True)``
shows them even when stderr is not a terminal.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["progress", "progress_enabled", "set_progress"]

_enabled: bool | None = None


def set_progress(enabled: bool | None) -> bool | None:
    """Turn progress bars off (False), on (True) or back to automatic (None: on when stderr
    is a terminal, unless ``MEMSIM_PROGRESS=0``); returns the previous setting."""
    global _enabled
    previous, _enabled = _enabled, enabled
    return previous


def progress_enabled() -> bool | None:
    """True/False when forced, None when automatic (tqdm's own terminal test decides)."""
    if _enabled is not None:
        return _enabled
    if os.environ.get("MEMSIM_PROGRESS", "").strip().lower() in ("0", "false", "no", "off"):
        return False
    return None


def progress(total: int | None, desc: str, unit: str = "it", **kwargs: Any) -> Any:
    """A tqdm bar on stderr (a context manager; ``.update(n)`` after each step)."""
    from tqdm import tqdm

    on = progress_enabled()
    options = {"delay": 2.0, "leave": False, "dynamic_ncols": True,
               "disable": None if on is None else not on, **kwargs}
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, **options)
