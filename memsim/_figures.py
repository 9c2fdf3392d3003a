"""Figures for papers: drawn on :class:`matplotlib.figure.Figure` objects, saved as PNG and
as a vector file, with human names in labels and legends.

memsim never switches matplotlib's global backend (no ``matplotlib.use`` and no pyplot
state): every figure is a ``Figure`` of its own, which works in scripts, notebooks, tests
and worker processes alike. :func:`save_figure` writes the PNG (for the HTML report and a
quick look) and a PDF with embedded TrueType fonts (text stays text, as journals ask) under
one stem, each atomically (:func:`memsim._io.atomic_path`).

:func:`human_value` and :func:`human_label` turn study parameters into words a reader
knows: ``time_s=31557600.0`` → "1 year", ``adc_bits=4`` → "4-bit ADC".
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from memsim._io import atomic_path
from memsim.timegrid import DAY, HOUR, YEAR

__all__ = ["FORMATS", "figure_style", "human_label", "human_time", "human_value", "new_figure",
           "save_figure", "vector_path"]

#: The files of every figure: a raster for screens and reports, a vector file for papers.
FORMATS = ("png", "pdf")

#: Readable sizes (points) for a figure of 6–8 inches printed at a column's width.
_RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
       "ytick.labelsize": 8, "legend.fontsize": 8, "pdf.fonttype": 42, "ps.fonttype": 42,
       "svg.fonttype": "none"}


def new_figure(width_in: float, height_in: float, **kwargs: Any) -> Any:
    """A new :class:`~matplotlib.figure.Figure` (constrained layout: labels, legends and
    annotations outside the axes are kept inside the canvas, never clipped). Draw on it
    inside :func:`figure_style`."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained", **kwargs)


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Readable font sizes and embedded fonts while a figure is drawn and saved (matplotlib
    reads its settings when a text is created; nothing global is changed)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield


def save_figure(fig: Any, path: str | Path, formats: Sequence[str] = FORMATS,
                dpi: int = 150) -> Path:
    """Write ``fig`` as ``path`` with each suffix of ``formats`` (same stem); returns the
    path of the first (the PNG by default). Each file is written atomically."""
    import matplotlib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(_RC):
        for fmt in formats:
            target = path.with_suffix("." + fmt)
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi)
            written.append(target)
    return written[0]


def vector_path(path: str | Path) -> Path:
    """The vector file written next to the PNG ``path`` by :func:`save_figure`."""
    return Path(path).with_suffix("." + FORMATS[1])


# --- human names ----------------------------------------------------------------------------

_TIME_UNITS = ((YEAR, "year"), (YEAR / 12, "month"), (DAY, "day"), (HOUR, "h"), (60.0, "min"),
               (1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
_PLURAL = {"year", "month", "day"}


def human_time(t_s: float) -> str:
    """Seconds in the largest unit that reads naturally: 31557600 → "1 year",
    2.63e6 → "1 month", 86400 → "1 day", 3600 → "1 h", 0.5 → "500 ms"."""
    t = float(t_s)
    if t == 0 or not math.isfinite(t):
        return f"{t:g} s"
    for scale, unit in _TIME_UNITS:
        if abs(t) >= scale * 0.9995:
            value = t / scale
            text = f"{value:.3g}"
            if unit in _PLURAL and text != "1":
                unit += "s"
            return f"{text} {unit}"
    return f"{t:.3g} s"


_NAMES: dict[str, Any] = {
    "time_s": lambda v: human_time(v),
    "adc_bits": lambda v: "no ADC" if v in (None, "none") else f"{v}-bit ADC",
    "dac_bits": lambda v: "no DAC" if v in (None, "none") else f"{v}-bit DAC",
    "drift_compensation": lambda v: {"none": "no drift comp.", "global": "global drift comp.",
                                     "per_column": "per-column drift comp."}.get(v, str(v)),
    "training": lambda v: {"plain": "plain-trained", "hwa": "HW-aware-trained"}.get(v, str(v)),
    "encoding": lambda v: {"pwm_1phase": "PWM 1-phase", "pwm_4phase": "PWM 4-phase",
                           "amplitude": "amplitude-coded"}.get(v, str(v)),
    "devices_per_polarity": lambda v: f"{v} device{'s' if v != 1 else ''}/polarity",
    "rows": lambda v: f"{v} rows",
    "cols": lambda v: f"{v} columns",
    "noise_scale": lambda v: f"noise ×{v:g}" if isinstance(v, float | int) else f"noise {v}",
    "inferences": lambda v: f"{v} inferences",
    "cores": lambda v: f"{v} cores",
    "mvm_clock_hz": lambda v: f"{float(v) / 1e9:g} GHz",
}


def human_value(param: str, value: Any) -> str:
    """One parameter value in words (``"time_s", 86400.0`` → "1 day"); card names and
    other strings as they are; unknown numeric parameters as ``name value``. A whole
    float is written as an integer (a pandas row of mixed columns holds 4 as 4.0)."""
    if isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
        value = int(value)
    fn = _NAMES.get(param)
    if fn is not None:
        try:
            return fn(value)
        except (TypeError, ValueError):
            pass
    if isinstance(value, bool):
        return f"{param.replace('_', ' ')}: {'yes' if value else 'no'}"
    if isinstance(value, str):
        return value
    return f"{param.replace('_', ' ')} {value}"


def human_label(params: Iterable[str], values: Mapping[str, Any] | Sequence[Any]) -> str:
    """The values of ``params`` in words, joined by commas (``values``: a mapping or a
    sequence in the order of ``params``); the internal ``_point`` is skipped."""
    params = [p for p in params]
    if not (isinstance(values, Mapping) or hasattr(values, "keys")):  # a pandas row has keys
        values = dict(zip(params, values, strict=True))
    return ", ".join(human_value(p, values[p]) for p in params if p != "_point")
