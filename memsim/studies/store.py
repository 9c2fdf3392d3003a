"""Results store of a study: one SQLite file, one row per finished point.

``<out>/<study>.sqlite`` holds the table ``results`` keyed by ``(config_hash, seed_index)``.
Each row is written in its own transaction (INSERT, COMMIT) in WAL mode, so a crash at any
moment — Ctrl-C, ``kill -9``, a power cut — leaves every committed row whole and never a
partial or duplicate one; a rerun computes only the points that have no row. Points whose
evaluation raised are kept in the table ``errors`` with the traceback (and retried by the
next run); a later success deletes the error row in the same transaction.

Only the main process of a run writes; readers (a notebook, a plot) may read at any time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import memsim

__all__ = ["ResultRow", "ResultStore", "store_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    config_hash TEXT NOT NULL,
    seed_index INTEGER NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    memsim_version TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    wall_s REAL NOT NULL,
    host TEXT NOT NULL,
    PRIMARY KEY (config_hash, seed_index)
);
CREATE TABLE IF NOT EXISTS errors (
    config_hash TEXT NOT NULL,
    seed_index INTEGER NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    error TEXT NOT NULL,
    traceback TEXT NOT NULL,
    memsim_version TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL NOT NULL,
    host TEXT NOT NULL,
    PRIMARY KEY (config_hash, seed_index)
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_COLUMNS = ("config_hash", "seed_index", "params", "seed", "metrics", "memsim_version",
            "started", "finished", "wall_s", "host")


def store_path(out_dir: str | Path, study: str) -> Path:
    """``<out_dir>/<study>.sqlite``."""
    return Path(out_dir) / f"{study}.sqlite"


@dataclass(frozen=True)
class ResultRow:
    """One finished point as stored (``params`` is the full config, JSON-decoded)."""

    config_hash: str
    seed_index: int
    params: dict[str, Any]
    seed: int
    metrics: dict[str, Any]
    memsim_version: str
    started: float
    finished: float
    wall_s: float
    host: str


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class ResultStore:
    """The SQLite results file of one study; use as a context manager or call ``close``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit mode: every write below opens and commits its own transaction
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    @classmethod
    def for_study(cls, out_dir: str | Path, study: str) -> ResultStore:
        """Open (create) ``<out_dir>/<study>.sqlite``."""
        return cls(store_path(out_dir, study))

    # --- writing ---------------------------------------------------------------------

    def add(self, *, config_hash: str, seed_index: int, params: Mapping[str, Any], seed: int,
            metrics: Mapping[str, Any], started: float, finished: float, host: str) -> None:
        """Insert one finished point and clear its error row, in one transaction.

        Raises ``sqlite3.IntegrityError`` if the point already has a row (never replaced).
        """
        row = (config_hash, int(seed_index), _dumps(dict(params)), int(seed),
               _dumps(dict(metrics)), memsim.__version__, float(started), float(finished),
               float(finished) - float(started), host)
        with self._transaction() as cur:
            cur.execute(f"INSERT INTO results ({', '.join(_COLUMNS)}) "
                        f"VALUES ({', '.join('?' * len(_COLUMNS))})", row)
            cur.execute("DELETE FROM errors WHERE config_hash = ? AND seed_index = ?",
                        (config_hash, int(seed_index)))

    def add_error(self, *, config_hash: str, seed_index: int, params: Mapping[str, Any],
                  seed: int, error: str, traceback: str, started: float, finished: float,
                  host: str) -> None:
        """Record (replace) the failure of one point, in one transaction."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO errors (config_hash, seed_index, params, seed, error, "
                "traceback, memsim_version, started, finished, host) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (config_hash, int(seed_index), _dumps(dict(params)), int(seed), error,
                 traceback, memsim.__version__, float(started), float(finished), host))

    def set_meta(self, key: str, value: Any) -> None:
        """Store one provenance entry (JSON), e.g. the study definition of the last run."""
        with self._transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        (key, _dumps(value)))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises (even Ctrl-C)."""
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    # --- reading ---------------------------------------------------------------------

    def done_keys(self) -> set[tuple[str, int]]:
        """Keys ``(config_hash, seed_index)`` of every stored result."""
        return {(h, int(s)) for h, s in
                self._conn.execute("SELECT config_hash, seed_index FROM results")}

    def done_seeds(self) -> dict[tuple[str, int], int]:
        """The seed stored with each key ``(config_hash, seed_index)``."""
        return {(h, int(s)): int(seed) for h, s, seed in
                self._conn.execute("SELECT config_hash, seed_index, seed FROM results")}

    def count(self) -> int:
        """Number of stored results."""
        return int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def rows(self, keys: Iterable[tuple[str, int]] | None = None) -> list[ResultRow]:
        """Stored results (all, or those whose key is in ``keys``), in insertion order."""
        wanted = None if keys is None else set(keys)
        out = []
        for r in self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM results ORDER BY rowid"):
            if wanted is not None and (r[0], r[1]) not in wanted:
                continue
            out.append(ResultRow(r[0], int(r[1]), json.loads(r[2]), int(r[3]),
                                 json.loads(r[4]), r[5], r[6], r[7], r[8], r[9]))
        return out

    def errors(self) -> list[dict[str, Any]]:
        """Points whose last evaluation failed: key, params, seed, error and traceback."""
        cols = ("config_hash", "seed_index", "params", "seed", "error", "traceback",
                "memsim_version", "started", "finished", "host")
        out = []
        for r in self._conn.execute(f"SELECT {', '.join(cols)} FROM errors ORDER BY rowid"):
            d = dict(zip(cols, r, strict=True))
            d["params"] = json.loads(d["params"])
            out.append(d)
        return out

    def meta(self, key: str) -> Any:
        """A provenance entry written by :meth:`set_meta`, or ``None``."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def to_dataframe(self, keys: Iterable[tuple[str, int]] | None = None):
        """A pandas DataFrame: one row per result, one column per parameter and per metric.

        Columns: ``config_hash``, ``seed_index``, ``seed``, the parameters (the full
        config), the metrics, then ``memsim_version``, ``started``, ``finished``,
        ``wall_s``, ``host``.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is installed in the tests
            raise ImportError("ResultStore.to_dataframe needs pandas: pip install pandas") \
                from exc
        records = []
        param_cols: dict[str, None] = {}
        metric_cols: dict[str, None] = {}
        for r in self.rows(keys):
            param_cols.update(dict.fromkeys(r.params))
            metric_cols.update(dict.fromkeys(r.metrics))
            records.append({"config_hash": r.config_hash, "seed_index": r.seed_index,
                            "seed": r.seed, **r.params, **r.metrics,
                            "memsim_version": r.memsim_version, "started": r.started,
                            "finished": r.finished, "wall_s": r.wall_s, "host": r.host})
        clash = set(param_cols) & set(metric_cols)
        fixed = {"config_hash", "seed_index", "seed", "memsim_version", "started", "finished",
                 "wall_s", "host"}
        clash |= (set(param_cols) | set(metric_cols)) & fixed
        if clash:
            raise ValueError(f"results store {self.path}: names {sorted(clash)} are used both "
                             "as parameter, metric or column names; rename them in the study")
        columns = ["config_hash", "seed_index", "seed", *param_cols, *metric_cols,
                   "memsim_version", "started", "finished", "wall_s", "host"]
        return pd.DataFrame.from_records(records, columns=columns)

    # --- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
