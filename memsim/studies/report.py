"""Figures and reports of a study: Pareto front, accuracy vs time, devices, analog vs digital.

Input is the study's results as a pandas DataFrame (one row per point and seed; columns
are the grid parameters, ``seed_index`` and the metrics). Rows are first aggregated over
seeds (mean and standard deviation); each figure is drawn when the columns it needs
exist. The report is Markdown plus a self-contained HTML page (figures embedded).

Every file is written atomically under a unique temporary name (two runs of one study may
write its report at once; Ctrl-C while writing leaves the previous file, never half of
one). A metric without a value (stored as null) shows as "—".
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from memsim._io import atomic_path, atomic_write_text, output_error
from memsim.errors import StoreError

__all__ = ["aggregate", "converter_assumptions", "pareto_mask", "study_table", "write_report"]

METRIC_ORDER = ("accuracy", "latency_s", "throughput_per_s", "energy_j", "tops", "tops_per_w",
                "digital_gpu_energy_j", "digital_cpu_energy_j", "adc_saturation")


#: Converter fields a grid may sweep; the report names them after the card's values.
_CONVERTER_FIELDS = ("adc_noise_fs", "adc_noise_lsb", "adc_offset_fs", "adc_gain_sigma")


def converter_assumptions(spec) -> str | None:
    """The converter physics a study's points share, as its report states it.

    :meth:`memsim.crossbar.TileConfig.assumptions` of the study's tile card with the tile
    parameters of its ``[fixed]`` table (``"none"`` bits read as unquantized, as the
    evaluator reads them): ADC noise referred to the full scale (kept when ``adc_bits``
    changes) plus noise in LSB of the running bits, offset and gain spread. Converter fields
    the grid sweeps are named after the card's values. ``None`` when the study has no single
    tile card (the tile is swept, or absent).
    """
    from memsim.crossbar import load_tile_config
    from memsim.studies.evaluate import _overrides

    tile = spec.tile or spec.fixed.get("tile")
    if not isinstance(tile, str):
        return None
    text = load_tile_config(tile, **_overrides(spec.fixed)).assumptions()
    swept = sorted(k for k in spec.grid if k in _CONVERTER_FIELDS)
    return text + (f" (card values; the grid sweeps {', '.join(swept)})" if swept else "")


def aggregate(df, params: list[str], metrics: list[str]):
    """Mean and σ over seeds for every grid point (columns METRIC and METRIC_std)."""
    if not params:
        df = df.assign(_point=0)
        params = ["_point"]
    g = df.groupby(params, dropna=False, sort=True)
    mean = g[metrics].mean()
    std = g[metrics].std(ddof=1).fillna(0.0).add_suffix("_std")
    n = g.size().rename("seeds")
    return mean.join(std).join(n).reset_index()


def pareto_mask(energy: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """True where no other point has lower-or-equal energy and higher-or-equal accuracy
    with at least one strictly better (minimise energy, maximise accuracy)."""
    e = np.asarray(energy, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    keep = np.ones(e.size, dtype=bool)
    for i in range(e.size):
        dominated = (e <= e[i]) & (a >= a[i]) & ((e < e[i]) | (a > a[i]))
        keep[i] = not dominated.any()
    return keep


def _label(row, params: list[str]) -> str:
    return ", ".join(f"{p}={row[p]}" for p in params if p != "_point")


def _energy_unit(values: np.ndarray) -> tuple[float, str]:
    """(factor, unit) that shows typical energies as numbers near 1..1000."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    typical = float(np.median(finite)) if finite.size else 1.0
    for factor, unit in ((1e12, "pJ"), (1e9, "nJ"), (1e6, "µJ"), (1e3, "mJ")):
        if typical * factor < 1e3:
            return factor, unit
    return 1.0, "J"


def _savefig(fig, path: Path) -> None:
    """Save a PNG atomically (unique temporary file, then rename) and close the figure."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(fig)


def _plot_pareto(agg, params, path: Path) -> Path | None:
    if not {"energy_j", "accuracy"} <= set(agg.columns) or agg["accuracy"].isna().any():
        return None
    import matplotlib.pyplot as plt

    scale, unit = _energy_unit(agg["energy_j"].to_numpy())
    e = agg["energy_j"].to_numpy() * scale
    a = agg["accuracy"].to_numpy() * 100
    mask = pareto_mask(e, a)
    fig, ax = plt.subplots(figsize=(7, 4.6))
    ax.errorbar(e, a, yerr=agg["accuracy_std"].to_numpy() * 100, fmt="o", color="0.6", ms=4,
                lw=0.8, label="grid points (± σ over seeds)")
    order = np.argsort(e[mask])
    ax.plot(e[mask][order], a[mask][order], "-o", color="tab:red", ms=6,
            label="Pareto-optimal")
    for i in np.flatnonzero(mask):
        ax.annotate(_label(agg.iloc[i], params), (e[i], a[i]), fontsize=6,
                    xytext=(4, -8), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per inference ({unit})")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("energy / accuracy trade-off")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)
    return path


def _plot_time(agg, params, path: Path) -> Path | None:
    if "time_s" not in params or "accuracy" not in agg.columns or agg["time_s"].nunique() < 2:
        return None
    import matplotlib.pyplot as plt

    others = [p for p in params if p not in ("time_s", "_point")]
    fig, ax = plt.subplots(figsize=(7, 4.4))
    groups = agg.groupby(others, sort=True) if others else [((), agg)]
    for i, (key, sub) in enumerate(groups):
        sub = sub.sort_values("time_s")
        t = sub["time_s"].to_numpy()
        m = sub["accuracy"].to_numpy() * 100
        s = sub["accuracy_std"].to_numpy() * 100
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{p}={v}" for p, v in zip(others, key, strict=True)) or "accuracy"
        style = ("-", "--", ":", "-.")[i // 10 % 4]  # the colour cycle has 10 colours
        (line,) = ax.plot(t, m, style, marker="o", ms=3, label=label)
        ax.fill_between(t, m - s, m + s, color=line.get_color(), alpha=0.18, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("time since programming (s)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("accuracy vs time after programming (mean ± σ over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _savefig(fig, path)
    return path


def _plot_devices(agg, params, path: Path) -> Path | None:
    if "device" not in params or "accuracy" not in agg.columns or agg["device"].nunique() < 2:
        return None
    import matplotlib.pyplot as plt

    others = [p for p in params if p not in ("device", "_point")]
    devices = sorted(agg["device"].unique())
    cases = agg.groupby(others, sort=True) if others else [((), agg)]
    cases = list(cases)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(cases) * len(devices) / 2 + 3), 4.2))
    width = 0.8 / len(devices)
    for k, dev in enumerate(devices):
        means, errs = [], []
        for _, sub in cases:
            row = sub[sub["device"] == dev]
            means.append(100 * row["accuracy"].mean() if len(row) else np.nan)
            errs.append(100 * row["accuracy_std"].mean() if len(row) else 0.0)
        ax.bar(np.arange(len(cases)) + k * width, means, width, yerr=errs, label=dev, capsize=2)
    labels = [", ".join(f"{p}={v}" for p, v in zip(others, key if isinstance(key, tuple)
                                                   else (key,), strict=True)) or "all"
              for key, _ in cases]
    ax.set_xticks(np.arange(len(cases)) + 0.4 - width / 2, labels, rotation=30, ha="right",
                  fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("device comparison (mean ± σ over seeds)")
    lo = np.nanmin(100 * agg["accuracy"]) - 5
    ax.set_ylim(max(0, lo), 100)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)
    return path


def _plot_analog_digital(agg, params, path: Path) -> Path | None:
    cols = [c for c in ("energy_j", "digital_gpu_energy_j", "digital_cpu_energy_j")
            if c in agg.columns]
    if "energy_j" not in cols or len(cols) < 2:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(agg) + 3), 4.2))
    names = {"energy_j": "analog (chip)", "digital_gpu_energy_j": "digital GPU-class",
             "digital_cpu_energy_j": "digital CPU-class"}
    width = 0.8 / len(cols)
    scale, unit = _energy_unit(agg[cols].to_numpy().ravel())
    for k, c in enumerate(cols):
        ax.bar(np.arange(len(agg)) + k * width, agg[c].to_numpy() * scale, width, label=names[c])
    ax.set_xticks(np.arange(len(agg)) + 0.4 - width / 2,
                  [_label(r, params) or "default" for _, r in agg.iterrows()], rotation=30,
                  ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel(f"energy per inference ({unit})")
    ax.set_title("analog vs digital energy per inference")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)
    return path


def _fmt(v: Any, col: str) -> str:
    if isinstance(v, float | np.floating) and not np.isfinite(v):
        return "—"
    if isinstance(v, float | np.floating):
        if col.startswith("accuracy"):
            return f"{100 * v:.2f} %"
        if col.endswith("energy_j") or col.endswith("energy_j_std"):
            return f"{v * 1e6:.4g} µJ"
        if col.endswith("latency_s"):
            return f"{v * 1e6:.4g} µs"
        return f"{v:.4g}"
    return str(v)


def table_rows(agg, params: list[str], metrics: list[str]) -> tuple[list[str], list[list[str]]]:
    cols = [p for p in params if p != "_point"]
    head = [*cols]
    for m in metrics:
        head += [m, f"{m} σ"] if f"{m}_std" in agg.columns else [m]
    body = []
    for _, r in agg.iterrows():
        row = [_fmt(r[p], p) for p in cols]
        for m in metrics:
            row.append(_fmt(r[m], m))
            if f"{m}_std" in agg.columns:
                row.append(_fmt(r[f"{m}_std"], m))
        body.append(row)
    return head, body


def study_table(df, *, params: list[str], metrics: list[str] | None = None):
    """(head, body, aggregate) of a study's results: mean and σ over seeds per grid point,
    the Pareto flag where energy and accuracy exist. Writes nothing."""
    present = [m for m in METRIC_ORDER if m in df.columns]
    present += [m for m in (metrics or []) if m in df.columns and m not in present]
    agg = aggregate(df, params, present)
    if "energy_j" in agg and "accuracy" in agg and agg["accuracy"].notna().all():
        agg["pareto"] = pareto_mask(agg["energy_j"], agg["accuracy"])
    shown = [m for m in (metrics or present) if m in agg.columns]
    head, body = table_rows(agg, params, shown)
    if "pareto" in agg:
        head.append("Pareto")
        for row, flag in zip(body, agg["pareto"], strict=True):
            row.append("yes" if flag else "")
    return head, body, agg


def write_report(df, *, study: str, description: str, params: list[str], out_dir: Path,
                 extra: dict[str, Any] | None = None,
                 metrics: list[str] | None = None) -> dict[str, Any]:
    """Write the figures, ``<study>.md`` and ``<study>.html``; returns their paths.

    ``metrics``: the columns of the table (default: every known metric present); the
    figures use whatever metrics the results hold. A folder that cannot be written raises
    :class:`memsim.StoreError` naming it.
    """
    try:
        return _write_report(df, study=study, description=description, params=params,
                             out_dir=Path(out_dir), extra=extra, metrics=metrics)
    except OSError as exc:
        if isinstance(exc, StoreError) or exc.errno is None:
            raise
        raise output_error(exc.filename or out_dir, exc, what="write the report to",
                           option="--out") from exc


def _write_report(df, *, study: str, description: str, params: list[str], out_dir: Path,
                  extra: dict[str, Any] | None, metrics: list[str] | None) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    head, body, agg = study_table(df, params=params, metrics=metrics)
    figs = {
        "Energy/accuracy Pareto front": _plot_pareto(agg, params, out_dir / f"{study}-pareto.png"),
        "Accuracy vs time after programming": _plot_time(agg, params,
                                                         out_dir / f"{study}-time.png"),
        "Device comparison": _plot_devices(agg, params, out_dir / f"{study}-devices.png"),
        "Analog vs digital energy per inference": _plot_analog_digital(
            agg, params, out_dir / f"{study}-analog-digital.png"),
    }
    figs = {k: v for k, v in figs.items() if v is not None}
    md = [f"# Study {study}", "", description, ""]
    for k, v in (extra or {}).items():
        md.append(f"- {k}: {v}")
    md += ["", "## Results (mean and σ over seeds)", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(r) + " |" for r in body]
    for title, path in figs.items():
        md += ["", f"## {title}", "", f"![{title}]({path.name})"]
    md_path = out_dir / f"{study}.md"
    atomic_write_text(md_path, "\n".join(md) + "\n")

    def img(p: Path) -> str:
        data = base64.b64encode(p.read_bytes()).decode()
        return f'<img alt="{html.escape(p.name)}" src="data:image/png;base64,{data}">'

    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in body)
    page = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>memsim study {html.escape(study)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
        "padding:3px 6px;text-align:right}img{max-width:100%}</style></head><body>",
        f"<h1>Study {html.escape(study)}</h1><p>{html.escape(description)}</p><ul>",
        *(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
          for k, v in (extra or {}).items()),
        "</ul><h2>Results (mean and σ over seeds)</h2><table><tr>",
        "".join(f"<th>{html.escape(h)}</th>" for h in head), "</tr>", rows, "</table>",
        *(f"<h2>{html.escape(t)}</h2>{img(p)}" for t, p in figs.items()),
        "</body></html>",
    ]
    html_path = out_dir / f"{study}.html"
    atomic_write_text(html_path, "".join(page))
    return {"markdown": md_path, "html": html_path, "figures": list(figs.values()),
            "table": (head, body), "aggregate": agg}
