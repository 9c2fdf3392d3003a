"""Export a study's results for other tools: CSV (always) or Parquet (with pyarrow).

One row per point and seed, as :meth:`~memsim.studies.store.ResultStore.to_dataframe`
gives them: ``config_hash``, ``seed_index``, ``seed``, every parameter of the point's full
config, every metric in SI units (empty where the stored value is null), then provenance
(``memsim_version``, ``started``, ``finished``, ``wall_s``, ``host``). Values that are
lists (e.g. the digital engines of a point) are written as JSON text. The file is written
atomically.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from memsim._io import atomic_path, output_error
from memsim.errors import ConfigError, StoreError

__all__ = ["EXPORT_FORMATS", "export_results", "export_study"]

EXPORT_FORMATS = ("csv", "parquet")


def _flat(df: Any) -> Any:
    """Lists and dicts as JSON text (CSV and Parquet columns hold scalars)."""
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object and df[col].map(lambda v: isinstance(v, list | dict)).any():
            df[col] = df[col].map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
    return df


def export_results(df: Any, path: str | Path, fmt: str = "csv") -> Path:
    """Write the DataFrame ``df`` to ``path`` as ``fmt`` ("csv" or "parquet").

    Parquet needs pyarrow, an optional extra: ``pip install "memsim[parquet]"``; without
    it a :class:`~memsim.ConfigError` says so before anything is written.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"export format {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ConfigError("--format parquet needs pyarrow, which is not installed: "
                          "pip install \"memsim[parquet]\" (or pip install pyarrow), or use "
                          "--format csv")
    path = Path(path)
    df = _flat(df)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            if fmt == "csv":
                df.to_csv(tmp, index=False)
            else:
                df.to_parquet(tmp, index=False, engine="pyarrow")
    except OSError as exc:
        if isinstance(exc, StoreError) or exc.errno is None:
            raise
        raise output_error(exc.filename or path, exc, what="write", option="--out") from exc
    return path


def export_study(spec: Any, store: Any, path: str | Path, fmt: str = "csv", *,
                 quick: bool = False) -> Path:
    """Export the stored results of a study's points (its full or ``quick`` size)."""
    from memsim.studies.report import study_frame

    return export_results(study_frame(spec, store, quick), path, fmt)
