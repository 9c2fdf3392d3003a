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

from memsim._figures import (
    figure_style,
    human_label,
    human_time,
    human_value,
    new_figure,
    save_figure,
    vector_path,
)
from memsim._io import atomic_write_text, output_error
from memsim.errors import StoreError, StudyError

__all__ = ["aggregate", "pareto_mask", "report_study", "study_configuration", "study_frame",
           "study_table", "write_report"]

METRIC_ORDER = ("accuracy", "latency_s", "throughput_per_s", "energy_j", "tops", "tops_per_w",
                "digital_gpu_energy_j", "digital_cpu_energy_j", "adc_saturation")


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
    return human_label(params, row)


def _energy_unit(values: np.ndarray) -> tuple[float, str]:
    """(factor, unit) that shows typical energies as numbers near 1..1000."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    typical = float(np.median(finite)) if finite.size else 1.0
    for factor, unit in ((1e12, "pJ"), (1e9, "nJ"), (1e6, "µJ"), (1e3, "mJ")):
        if typical * factor < 1e3:
            return factor, unit
    return 1.0, "J"


def _readable_axis(ax: Any, values: np.ndarray, axis: str = "x") -> None:
    """Linear when the values span less than a decade (a log axis would show two or three
    tick labels: 1, 2 and 5 per decade), else logarithmic with ticks at 1, 2 and 5 per
    decade, labelled plainly."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    target = ax.xaxis if axis == "x" else ax.yaxis
    if v.size == 0 or v.max() / v.min() < 10.0:
        target.set_major_locator(MaxNLocator(nbins=6, min_n_ticks=3))
        return
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    target.set_minor_formatter(NullFormatter())


def _plot_pareto(agg, params, path: Path) -> Path | None:
    if not {"energy_j", "accuracy"} <= set(agg.columns) or agg["accuracy"].isna().any():
        return None
    scale, unit = _energy_unit(agg["energy_j"].to_numpy())
    e = agg["energy_j"].to_numpy() * scale
    a = agg["accuracy"].to_numpy() * 100
    mask = pareto_mask(e, a)
    with figure_style():
        fig = new_figure(7.0, 4.6)
        ax = fig.add_subplot()
        ax.errorbar(e, a, yerr=agg["accuracy_std"].to_numpy() * 100, fmt="o", color="0.6",
                    ms=4, lw=0.8, label="grid points (± σ over seeds)")
        order = np.argsort(e[mask])
        ax.plot(e[mask][order], a[mask][order], "-o", color="tab:red", ms=6,
                label="Pareto-optimal")
        _readable_axis(ax, e)
        ax.margins(x=0.12, y=0.12)
        ax.set_xlabel(f"energy per inference ({unit})")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("energy / accuracy trade-off")
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower right")
        x_mid = ax.transAxes.transform((0.5, 0.0))[0]  # each label points to the middle
        for n, i in enumerate(np.flatnonzero(mask)[np.argsort(e[mask])]):
            right = ax.transData.transform((e[i], a[i]))[0] > x_mid
            ax.annotate(_label(agg.iloc[i], params), (e[i], a[i]), fontsize=7,
                        xytext=(-6 if right else 6, 8 if n % 2 else -10),
                        textcoords="offset points", ha="right" if right else "left",
                        va="center", annotation_clip=False)
        return save_figure(fig, path)


def _time_ticks(ax: Any, times: np.ndarray) -> None:
    """Ticks at the measured times, named in words (1 s, 1 day, 1 year)."""
    from matplotlib.ticker import NullLocator

    t = np.unique(np.asarray(times, dtype=float))
    t = t[t > 0]
    if 0 < t.size <= 8:
        ax.set_xticks(t, [human_time(x) for x in t])
        ax.xaxis.set_minor_locator(NullLocator())


def _plot_time(agg, params, path: Path) -> Path | None:
    if "time_s" not in params or "accuracy" not in agg.columns or agg["time_s"].nunique() < 2:
        return None
    others = [p for p in params if p not in ("time_s", "_point")]
    groups = agg.groupby(others, sort=True) if others else [((), agg)]
    with figure_style():
        fig = new_figure(7.0, 4.4)
        ax = fig.add_subplot()
        for key, sub in groups:
            sub = sub.sort_values("time_s")
            t = sub["time_s"].to_numpy()
            m = sub["accuracy"].to_numpy() * 100
            s = sub["accuracy_std"].to_numpy() * 100
            key = key if isinstance(key, tuple) else (key,)
            label = human_label(others, key) or "accuracy"
            (line,) = ax.plot(t, m, "-o", ms=3, label=label)
            ax.fill_between(t, m - s, m + s, color=line.get_color(), alpha=0.18, lw=0)
        ax.set_xscale("log")
        _time_ticks(ax, agg["time_s"].to_numpy())
        ax.set_xlabel("time since programming")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("accuracy vs time after programming (mean ± σ over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return save_figure(fig, path)


def _plot_devices(agg, params, path: Path) -> Path | None:
    if "device" not in params or "accuracy" not in agg.columns or agg["device"].nunique() < 2:
        return None
    others = [p for p in params if p not in ("device", "_point")]
    devices = sorted(agg["device"].unique())
    cases = list(agg.groupby(others, sort=True) if others else [((), agg)])
    with figure_style():
        fig = new_figure(max(6.0, 0.9 * len(cases) * len(devices) / 2 + 3), 4.4)
        ax = fig.add_subplot()
        width = 0.8 / len(devices)
        for k, dev in enumerate(devices):
            means, errs = [], []
            for _, sub in cases:
                row = sub[sub["device"] == dev]
                means.append(100 * row["accuracy"].mean() if len(row) else np.nan)
                errs.append(100 * row["accuracy_std"].mean() if len(row) else 0.0)
            ax.bar(np.arange(len(cases)) + k * width, means, width, yerr=errs, label=dev,
                   capsize=2)
        labels = [human_label(others, key if isinstance(key, tuple) else (key,)) or "all"
                  for key, _ in cases]
        ax.set_xticks(np.arange(len(cases)) + 0.4 - width / 2, labels, rotation=30,
                      ha="right")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("device comparison (mean ± σ over seeds)")
        lo = np.nanmin(100 * agg["accuracy"]) - 5
        ax.set_ylim(max(0, lo), 100)
        ax.legend(title="device", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return save_figure(fig, path)


def _plot_analog_digital(agg, params, path: Path) -> Path | None:
    cols = [c for c in ("energy_j", "digital_gpu_energy_j", "digital_cpu_energy_j")
            if c in agg.columns]
    if "energy_j" not in cols or len(cols) < 2:
        return None
    names = {"energy_j": "analog (chip)", "digital_gpu_energy_j": "digital GPU-class",
             "digital_cpu_energy_j": "digital CPU-class"}
    width = 0.8 / len(cols)
    scale, unit = _energy_unit(agg[cols].to_numpy().ravel())
    with figure_style():
        fig = new_figure(max(6.0, 0.6 * len(agg) + 3), 4.6)
        ax = fig.add_subplot()
        for k, c in enumerate(cols):
            ax.bar(np.arange(len(agg)) + k * width, agg[c].to_numpy() * scale, width,
                   label=names[c])
        ax.set_xticks(np.arange(len(agg)) + 0.4 - width / 2,
                      [_label(r, params) or "default" for _, r in agg.iterrows()],
                      rotation=30, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel(f"energy per inference ({unit})")
        ax.set_title("analog vs digital energy per inference")
        # the legend above the axes, never over the bars
        fig.legend(loc="outside upper center", ncols=len(cols))
        return save_figure(fig, path)


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


_BOOKKEEPING = ("config_hash", "seed_index", "seed", "memsim_version", "started", "finished",
                "wall_s", "host")


def _card_line(kind: str, name: Any) -> str:
    """``name — description`` of a card (just the name where the card cannot be read)."""
    try:
        if kind == "device":
            from memsim.devices import load_device

            text = load_device(name).description
        elif kind == "tile":
            from memsim.crossbar import load_tile_config

            text = load_tile_config(name).description
        else:
            from memsim.chip import load_chip_config

            text = load_chip_config(name).description
    except (ValueError, OSError):
        text = ""
    return f"{name} — {text}" if text else str(name)


def _assumptions(df, params: list[str]) -> list[str]:
    """The converter assumptions (:meth:`TileConfig.assumptions`) of every distinct tile
    configuration among the results (the tile card with the tile fields the study sets)."""
    from dataclasses import fields

    from memsim.crossbar import TileConfig, load_tile_config

    if "tile" not in df.columns:
        return []
    names = {f.name for f in fields(TileConfig)} - {"name", "description", "sources"}
    keys = ["tile", *(c for c in df.columns if c in names)]
    out: list[str] = []
    for _, row in df[keys].drop_duplicates().iterrows():
        changes = {k: (None if k in ("adc_bits", "dac_bits") and row[k] == "none" else row[k])
                   for k in keys[1:] if row[k] == row[k]}  # NaN: not set for this point
        changes = {k: (int(v) if isinstance(v, float) and v.is_integer() and k.endswith(
            ("bits", "rows", "cols", "polarity")) else v) for k, v in changes.items()}
        try:
            line = load_tile_config(row["tile"]).with_(**changes).assumptions()
        except (ValueError, OSError, TypeError):
            continue
        if line not in out:
            out.append(line)
    return out


def study_configuration(df, spec: Any = None) -> dict[str, str]:
    """The configuration of a study, from its stored results (each row keeps its point's full
    config) and, when given, its :class:`~memsim.studies.spec.StudySpec`: the cards
    (workload, chip, tile, device, with their descriptions), the values held fixed, the
    swept values, the seeds, the evaluator, the converter assumptions and memsim's version.
    Every value in words; an ordered ``{label: text}``."""
    from memsim.studies.spec import BASE_KEYS

    metric_cols = set(spec.metrics) if spec is not None else set()
    params = [c for c in df.columns if c not in _BOOKKEEPING and c not in metric_cols
              and not str(c).endswith("_std") and c != "_point"]
    if spec is None:  # no spec: every numeric column that varies is a metric
        params = [c for c in params if df[c].dtype == object or df[c].nunique() <= 1
                  or c in ("adc_bits", "dac_bits", "time_s")]
    grid = list(spec.grid) if spec is not None else []
    out: dict[str, str] = {}
    for key in BASE_KEYS:
        if key in df.columns and key not in grid:
            values = list(dict.fromkeys(df[key].dropna().tolist()))
            if len(values) == 1:
                out[key] = str(values[0]) if key == "workload" else _card_line(key, values[0])
    fixed, swept = [], []
    for c in params:
        if c in BASE_KEYS and c not in grid:
            continue
        values = list(dict.fromkeys(v for v in df[c].tolist() if v == v))
        if c in grid or len(values) > 1:
            order = [v for v in spec.grid[c] if v in values] if c in grid else []
            order += [v for v in values if v not in order]
            swept.append(f"{c}: " + ", ".join(human_value(c, v) for v in order))
        elif values:
            fixed.append(f"{c} = {human_value(c, values[0])}")
    if fixed:
        out["fixed"] = "; ".join(fixed)
    if swept:
        out["swept"] = "; ".join(swept)
    if "seed_index" in df.columns:
        out["seeds per point"] = str(int(df["seed_index"].nunique()))
    if spec is not None:
        out["base seed"] = str(spec.base_seed)
        out["evaluator"] = spec.evaluator
    for k, line in enumerate(_assumptions(df, params)):
        out["converter assumptions" + (f" ({k + 1})" if k else "")] = line
    if "memsim_version" in df.columns:
        out["memsim version"] = ", ".join(sorted(map(str, df["memsim_version"].unique())))
    return out


def report_study(spec: Any, store: Any, out_dir: str | Path, *, quick: bool = False,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the figures and reports of a study from its results store
    (:func:`write_report`), with the study's configuration (:func:`study_configuration`).
    Raises :class:`~memsim.StudyError` when the store holds no result of the study yet."""
    df = study_frame(spec, store, quick)
    info = {"size": "quick" if quick else "full", "seeds per point": df["seed_index"].nunique(),
            "results store": str(store.path)}
    info.update(extra or {})
    return write_report(df, study=spec.name + ("-quick" if quick else ""),
                        description=spec.description, params=list(spec.grid), out_dir=out_dir,
                        extra=info, metrics=list(spec.metrics),
                        configuration=study_configuration(df, spec))


def study_frame(spec: Any, store: Any, quick: bool = False):
    """The stored results of the study's points (its full or ``quick`` size) as a pandas
    DataFrame; :class:`~memsim.StudyError` when there are none yet."""
    keys = [p.key for p in spec.points(quick=quick)]
    df = store.to_dataframe(keys)
    if df.empty:
        raise StudyError(f"study {spec.name!r} has no results in {store.path} yet: "
                         "run it first (memsim study run)")
    return df


def write_report(df, *, study: str, description: str, params: list[str], out_dir: Path,
                 extra: dict[str, Any] | None = None,
                 metrics: list[str] | None = None,
                 configuration: dict[str, str] | None = None) -> dict[str, Any]:
    """Write the figures (PNG and PDF), ``<study>.md`` and ``<study>.html``; returns their
    paths.

    ``metrics``: the columns of the table (default: every known metric present); the
    figures use whatever metrics the results hold. ``configuration``: the study's setup
    as ``{label: text}`` (default: :func:`study_configuration` of ``df``), shown in both
    reports. A folder that cannot be written raises :class:`memsim.StoreError` naming it.
    """
    if configuration is None:
        configuration = study_configuration(df)
    try:
        return _write_report(df, study=study, description=description, params=params,
                             out_dir=Path(out_dir), extra=extra, metrics=metrics,
                             configuration=configuration)
    except OSError as exc:
        if isinstance(exc, StoreError) or exc.errno is None:
            raise
        raise output_error(exc.filename or out_dir, exc, what="write the report to",
                           option="--out") from exc


def _write_report(df, *, study: str, description: str, params: list[str], out_dir: Path,
                  extra: dict[str, Any] | None, metrics: list[str] | None,
                  configuration: dict[str, str]) -> dict[str, Any]:
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
    if configuration:
        md += ["", "## Configuration", "", "| | |", "|---|---|"]
        md += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in configuration.items()]
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
        "padding:3px 6px;text-align:right}table.config td,table.config th{text-align:left}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>Study {html.escape(study)}</h1><p>{html.escape(description)}</p><ul>",
        *(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
          for k, v in (extra or {}).items()),
        "</ul>",
        *(["<h2>Configuration</h2><table class='config'>",
           *(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
             for k, v in configuration.items()), "</table>"] if configuration else []),
        "<h2>Results (mean and σ over seeds)</h2><table><tr>",
        "".join(f"<th>{html.escape(h)}</th>" for h in head), "</tr>", rows, "</table>",
        *(f"<h2>{html.escape(t)}</h2>{img(p)}" for t, p in figs.items()),
        "</body></html>",
    ]
    html_path = out_dir / f"{study}.html"
    atomic_write_text(html_path, "".join(page))
    return {"markdown": md_path, "html": html_path, "figures": list(figs.values()),
            "vector_figures": [vector_path(f) for f in figs.values()],
            "table": (head, body), "aggregate": agg, "configuration": configuration}
