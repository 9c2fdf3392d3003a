"""Results store of a study: one SQLite file, one row per finished point.

``<out>/<study>.sqlite`` holds the table ``results`` keyed by ``(config_hash, seed_index)``.
Each row is written in its own transaction (INSERT, COMMIT) in WAL mode, so a crash at any
moment — Ctrl-C, ``kill -9``, a power cut — leaves every committed row whole and never a
partial or duplicate one; a rerun computes only the points that have no row. Points whose
evaluation raised are kept in the table ``errors`` with the traceback (and retried by the
next run); a later success deletes the error row in the same transaction.

A metric that is not a finite number (NaN, ±inf) is stored as JSON ``null`` and its reason
in the column ``missing`` (``{metric: reason}``), so every stored text is valid JSON and
SQLite's ``json_extract`` works on the whole store.

Concurrent runs. Before a run computes a point it *claims* it (table ``claims``: owner,
host, process id, heartbeat), in the same kind of short transaction; a point that has a
result or a live claim of another run is not computed again. So two runs of one study at
once split the grid between them. A claim is live while its owner's heartbeat is younger
than the time-to-live and, on the same host, its process exists: the claims of a run that
crashed (``kill -9``, a power cut) expire and the next run takes those points.

Every failure of the file or of SQLite (a damaged or foreign file, a lock held by another
program, a full disk, a read-only folder) raises :class:`memsim.StoreError`, whose message
names the file, what went wrong and what to do. ``ResultStore(path, readonly=True)`` (used
by ``memsim study show`` and ``report``) never writes: it works on read-only media.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import memsim
from memsim._io import os_error_advice
from memsim.errors import StoreError

__all__ = ["Claim", "ClaimResult", "Owner", "ResultRow", "ResultStore", "set_aside",
           "store_path"]

#: Seconds a write waits for another process's write lock before giving up.
LOCK_TIMEOUT_S = 30.0
#: Seconds after its last heartbeat that a claim of another run expires.
CLAIM_TTL_S = 120.0

_SQLITE_MAGIC = b"SQLite format 3\x00"

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
    missing TEXT NOT NULL DEFAULT '{}',
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
CREATE TABLE IF NOT EXISTS claims (
    config_hash TEXT NOT NULL,
    seed_index INTEGER NOT NULL,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed REAL NOT NULL,
    heartbeat REAL NOT NULL,
    PRIMARY KEY (config_hash, seed_index)
);
"""

_COLUMNS = ("config_hash", "seed_index", "params", "seed", "metrics", "memsim_version",
            "started", "finished", "wall_s", "host")
#: Columns a file must have in each table to be a memsim results store.
_REQUIRED = {"results": set(_COLUMNS), "errors": {"config_hash", "seed_index", "params",
                                                   "seed", "error", "traceback"},
             "meta": {"key", "value"}}
_FIXED_COLUMNS = ("config_hash", "seed_index", "seed", "memsim_version", "started",
                  "finished", "wall_s", "host")


def store_path(out_dir: str | Path, study: str) -> Path:
    """``<out_dir>/<study>.sqlite``."""
    return Path(out_dir) / f"{study}.sqlite"


@dataclass(frozen=True)
class ResultRow:
    """One finished point as stored (``params`` is the full config, JSON-decoded).

    A metric that was not a finite number is ``None`` in ``metrics`` and its reason is in
    ``missing``.
    """

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
    missing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Owner:
    """Who claims points: one run (a process on a host), with a unique id."""

    id: str
    host: str
    pid: int

    @classmethod
    def this_process(cls) -> Owner:
        host = socket.gethostname()
        pid = os.getpid()
        return cls(f"{host}:{pid}:{uuid.uuid4().hex[:12]}", host, pid)


@dataclass(frozen=True)
class Claim:
    """A claim of another run on a point."""

    owner: str
    host: str
    pid: int
    claimed: float
    heartbeat: float

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.claimed))
        return f"process {self.pid} on {self.host}, since {since}"


@dataclass(frozen=True)
class ClaimResult:
    """What :meth:`ResultStore.claim` did with each key: claimed now, already done, or
    held by a live claim of another run."""

    claimed: list[tuple[str, int]]
    done: list[tuple[str, int]]
    busy: dict[tuple[str, int], Claim]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def claim_is_live(claim: Claim, *, now: float, ttl_s: float) -> bool:
    """A claim holds while its heartbeat is fresh and (on this host) its process exists."""
    if now - claim.heartbeat > ttl_s:
        return False
    return not (claim.host == socket.gethostname() and not _pid_alive(claim.pid))


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def split_metrics(metrics: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Metrics as valid JSON: finite numbers kept, NaN/inf as ``None`` with a reason.

    A value may be a number or an object with ``value`` and ``reason`` attributes (see
    :class:`memsim.studies.runner.NoValue`); returns (metrics, {metric: reason}).
    """
    out: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for key, value in metrics.items():
        reason = getattr(value, "reason", None)
        if reason is not None:
            out[key] = None
            missing[key] = str(reason)
            continue
        if value is None:
            out[key] = None
            missing[key] = "no value"
            continue
        v = float(value)
        if math.isfinite(v):
            out[key] = v
        else:
            out[key] = None
            missing[key] = f"the evaluator returned {v!r}"
    return out, missing


def _describe_sqlite_error(path: Path, exc: sqlite3.Error, action: str, *,
                           lock_timeout_s: float, readonly: bool) -> StoreError:
    """One clear message for an SQLite failure: the file, what went wrong, what to do."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    low = text.lower()
    where = f"results store {path}"
    if "BUSY" in name or "LOCKED" in name or "locked" in low:
        msg = (f"{where} is locked by another process (another memsim run, or a program "
               f"that holds a write lock on it); gave up after {lock_timeout_s:g} s. Wait "
               "for that process to finish or close it, then run again")
    elif "NOTADB" in name or "not a database" in low:
        msg = (f"{where} is not a memsim results store (it is not an SQLite database, or "
               "its header is damaged). Move it away, run again with --restart to set it "
               "aside and start afresh, or use another --out")
    elif "CORRUPT" in name or "malformed" in low:
        msg = (f"{where} is damaged ({text}; a truncated or corrupted file). Run again "
               "with --restart to set it aside and start afresh, or use another --out")
    elif "FULL" in name or "disk is full" in low or "database or disk is full" in low:
        msg = (f"the disk holding {where} is full. Free some space and run again: every "
               "finished point is kept and the run resumes; or use another --out")
    elif "READONLY" in name or "readonly" in low or "read-only" in low:
        msg = (f"{where} cannot be written: the file or its folder is read-only. Use "
               "another --out (or copy the store to a writable folder)")
    elif "CANTOPEN" in name or "unable to open" in low:
        if readonly:
            msg = (f"{where} cannot be opened for reading ({text}): check that the file "
                   "exists and that you may read it and its folder")
        else:
            msg = (f"{where} cannot be opened or created ({text}): the folder may be "
                   "read-only, missing or not yours. Use another --out")
    elif "IOERR" in name or "disk i/o error" in low:
        msg = (f"I/O error on {where} ({text}): the disk may be failing, full or "
               "disconnected, or the file was removed while in use. Check the disk, then "
               "run again (finished points are kept), or use another --out")
    elif "PERM" in name or "AUTH" in name:
        msg = f"{where}: permission denied ({text}); use another --out"
    else:
        msg = f"{where}: {action} failed: {text}"
    err = StoreError(msg)
    return err


class ResultStore:
    """The SQLite results file of one study; use as a context manager or call ``close``.

    ``readonly=True`` opens an existing store without writing anything (no journal change,
    no table creation); it fails with a clear :class:`memsim.StoreError` if the file does
    not exist. ``lock_timeout_s``: how long a write waits for another process's write lock.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False,
                 lock_timeout_s: float = LOCK_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.readonly = bool(readonly)
        self.lock_timeout_s = float(lock_timeout_s)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._columns: dict[str, set[str]] = {}
        self._check_file()
        try:
            self._open()
        except sqlite3.Error as exc:
            self.close()
            raise self._error(exc, "opening") from exc
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_study(cls, out_dir: str | Path, study: str, **kwargs: Any) -> ResultStore:
        """Open (create) ``<out_dir>/<study>.sqlite``."""
        return cls(store_path(out_dir, study), **kwargs)

    # --- opening ---------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error, action: str) -> StoreError:
        return _describe_sqlite_error(self.path, exc, action,
                                      lock_timeout_s=self.lock_timeout_s,
                                      readonly=self.readonly)

    def _check_file(self) -> None:
        """Existence, folder and header checks that SQLite reports badly or not at all."""
        path = self.path
        if self.readonly:
            if not path.exists():
                err = StoreError(f"results store {path} does not exist: the study has no "
                                 "results there yet; run it first (memsim study run), or "
                                 "give the --out folder of its results")
                raise err
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                err = StoreError(f"cannot create the folder of results store {path}: "
                                 f"{os_error_advice(exc)}; use another --out")
                raise err from exc
        if path.exists():
            if path.is_dir():
                err = StoreError(f"results store {path} is a folder, not a file; use "
                                 "another --out or move the folder away")
                raise err
            try:
                with open(path, "rb") as fh:
                    head = fh.read(len(_SQLITE_MAGIC))
            except OSError as exc:
                err = StoreError(f"cannot read results store {path}: {os_error_advice(exc)}")
                raise err from exc
            if head and head != _SQLITE_MAGIC:
                err = StoreError(f"results store {path} is not a memsim results store (not "
                                 "an SQLite database: a damaged file or another file at "
                                 "that name). Move it away, run again with --restart to set "
                                 "it aside and start afresh, or use another --out")
                raise err

    def _connect(self, uri_flags: str) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(str(self.path.absolute())) + uri_flags
        return sqlite3.connect(uri, uri=True, isolation_level=None,
                               timeout=self.lock_timeout_s, check_same_thread=False)

    def _open(self) -> None:
        if self.readonly:
            self._conn = self._connect("?mode=ro")
            try:
                self._read_schema()
            except sqlite3.OperationalError as exc:
                # a WAL store on read-only media: SQLite cannot create the -shm file next
                # to it. Nobody writes there, so read the file as immutable.
                if "unable to open" not in str(exc).lower() and \
                        "readonly" not in str(exc).lower():
                    raise
                self._conn.close()
                self._conn = self._connect("?mode=ro&immutable=1")
                self._read_schema()
            self._conn.execute("PRAGMA query_only = 1")
            self._quick_check()
            return
        # autocommit mode: every write below opens and commits its own transaction
        self._conn = self._connect("?mode=rwc")
        self._read_schema()
        self._quick_check()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        missing_tables = {"results", "errors", "meta", "claims"} - set(self._columns)
        if missing_tables:
            with self._transaction() as cur:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        cur.execute(statement)
        if "missing" not in self._columns.get("results", {"missing"}):
            with self._transaction() as cur:  # a store written by memsim 0.1.0
                cur.execute("ALTER TABLE results ADD COLUMN missing TEXT NOT NULL "
                            "DEFAULT '{}'")
        self._read_schema()

    def _read_schema(self) -> None:
        assert self._conn is not None
        tables = [r[0] for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        self._columns = {t: {r[1] for r in self._conn.execute(f"PRAGMA table_info('{t}')")}
                         for t in tables if t in ("results", "errors", "meta", "claims")}
        for table, need in _REQUIRED.items():
            have = self._columns.get(table)
            if have is not None and not need <= have:
                err = StoreError(
                    f"results store {self.path} is not a memsim results store: its table "
                    f"{table!r} lacks the columns {sorted(need - have)}. Use another --out, "
                    "or run again with --restart to set the file aside and start afresh")
                raise err

    def _quick_check(self) -> None:
        assert self._conn is not None
        rows = self._conn.execute("PRAGMA quick_check").fetchall()
        if rows and rows[0][0] != "ok":
            detail = "; ".join(str(r[0]) for r in rows[:3])
            err = StoreError(f"results store {self.path} is damaged ({detail}). Run again "
                             "with --restart to set it aside and start afresh, or use "
                             "another --out")
            raise err

    @contextmanager
    def _guard(self, action: str) -> Iterator[sqlite3.Connection]:
        """The connection, with every SQLite error turned into a :class:`StoreError`."""
        if self._conn is None:
            raise StoreError(f"results store {self.path} is closed")
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._error(exc, action) from exc

    def _writable(self, action: str) -> None:
        if self.readonly:
            raise StoreError(f"results store {self.path} was opened read-only; cannot "
                             f"{action}")

    # --- writing ---------------------------------------------------------------------

    def add(self, *, config_hash: str, seed_index: int, params: Mapping[str, Any], seed: int,
            metrics: Mapping[str, Any], started: float, finished: float, host: str,
            if_absent: bool = False) -> bool:
        """Insert one finished point, clear its error row and its claims, in one transaction.

        A stored point is never replaced: if the point already has a row, raise
        :class:`memsim.StoreError`, or with ``if_absent=True`` leave it and return False
        (another run stored it first). Metrics that are not finite numbers are stored as
        ``null`` with their reason (:func:`split_metrics`). Returns True when inserted.
        """
        self._writable("add results")
        values, missing = split_metrics(metrics)
        row = (config_hash, int(seed_index), _dumps(dict(params)), int(seed), _dumps(values),
               memsim.__version__, float(started), float(finished),
               float(finished) - float(started), host, _dumps(missing))
        cols = (*_COLUMNS, "missing")
        with self._transaction() as cur:
            cur.execute(f"INSERT OR IGNORE INTO results ({', '.join(cols)}) "
                        f"VALUES ({', '.join('?' * len(cols))})", row)
            inserted = cur.rowcount == 1
            if not inserted and not if_absent:
                raise StoreError(f"results store {self.path} already has a result for point "
                                 f"{config_hash[:12]}… seed {seed_index}; a stored result is "
                                 "never replaced")
            cur.execute("DELETE FROM errors WHERE config_hash = ? AND seed_index = ?",
                        (config_hash, int(seed_index)))
            cur.execute("DELETE FROM claims WHERE config_hash = ? AND seed_index = ?",
                        (config_hash, int(seed_index)))
        return inserted

    def add_error(self, *, config_hash: str, seed_index: int, params: Mapping[str, Any],
                  seed: int, error: str, traceback: str, started: float, finished: float,
                  host: str, owner: str | None = None) -> None:
        """Record (replace) the failure of one point and drop its claim, in one transaction.

        A point that has a result (stored by another run meanwhile) keeps it and gets no
        error row.
        """
        self._writable("record errors")
        with self._transaction() as cur:
            done = cur.execute("SELECT 1 FROM results WHERE config_hash = ? AND "
                               "seed_index = ?", (config_hash, int(seed_index))).fetchone()
            if done is None:
                cur.execute(
                    "INSERT OR REPLACE INTO errors (config_hash, seed_index, params, seed, "
                    "error, traceback, memsim_version, started, finished, host) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (config_hash, int(seed_index), _dumps(dict(params)), int(seed), error,
                     traceback, memsim.__version__, float(started), float(finished), host))
            if owner is not None:
                cur.execute("DELETE FROM claims WHERE config_hash = ? AND seed_index = ? "
                            "AND owner = ?", (config_hash, int(seed_index), owner))

    def set_meta(self, key: str, value: Any) -> None:
        """Store one provenance entry (JSON), e.g. the study definition of the last run."""
        self._writable("write provenance")
        with self._transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        (key, _dumps(value)))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises (even Ctrl-C).

        SQLite errors become :class:`memsim.StoreError` naming the file.
        """
        with self._guard("writing") as conn:
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
                raise
            else:
                try:
                    cur.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        cur.execute("ROLLBACK")
                    raise
            finally:
                cur.close()

    # --- claims (concurrent runs) ------------------------------------------------------

    def claim(self, keys: Iterable[tuple[str, int]], owner: Owner, *,
              ttl_s: float = CLAIM_TTL_S) -> ClaimResult:
        """Claim the points ``keys`` for ``owner`` in one transaction.

        A key with a result is ``done``; a key with a live claim of another owner is
        ``busy`` (see :func:`claim_is_live`); every other key (free, expired, or a claim of
        a process that no longer exists) is claimed now. Claims of ``owner`` itself are
        renewed.
        """
        self._writable("claim points")
        keys = [(h, int(s)) for h, s in keys]
        now = time.time()
        claimed: list[tuple[str, int]] = []
        done: list[tuple[str, int]] = []
        busy: dict[tuple[str, int], Claim] = {}
        with self._transaction() as cur:
            for key in keys:
                if cur.execute("SELECT 1 FROM results WHERE config_hash = ? AND "
                               "seed_index = ?", key).fetchone():
                    done.append(key)
                    continue
                row = cur.execute("SELECT owner, host, pid, claimed, heartbeat FROM claims "
                                  "WHERE config_hash = ? AND seed_index = ?", key).fetchone()
                if row is not None and row[0] != owner.id:
                    other = Claim(row[0], row[1], int(row[2]), float(row[3]), float(row[4]))
                    if claim_is_live(other, now=now, ttl_s=ttl_s):
                        busy[key] = other
                        continue
                cur.execute("INSERT OR REPLACE INTO claims (config_hash, seed_index, owner, "
                            "host, pid, claimed, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (*key, owner.id, owner.host, owner.pid, now, now))
                claimed.append(key)
        return ClaimResult(claimed, done, busy)

    def heartbeat(self, owner: Owner) -> int:
        """Renew every claim of ``owner``; returns how many it holds."""
        self._writable("renew claims")
        with self._transaction() as cur:
            cur.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?",
                        (time.time(), owner.id))
            return cur.rowcount

    def release(self, owner: Owner, keys: Iterable[tuple[str, int]] | None = None) -> None:
        """Drop the claims of ``owner`` (all, or those of ``keys``)."""
        self._writable("release claims")
        with self._transaction() as cur:
            if keys is None:
                cur.execute("DELETE FROM claims WHERE owner = ?", (owner.id,))
            else:
                cur.executemany("DELETE FROM claims WHERE config_hash = ? AND seed_index = ? "
                                "AND owner = ?", [(h, int(s), owner.id) for h, s in keys])

    def claims(self) -> dict[tuple[str, int], Claim]:
        """Every claim in the store (live or not)."""
        if "claims" not in self._columns:
            return {}
        with self._guard("reading claims") as conn:
            return {(h, int(s)): Claim(o, host, int(pid), float(c), float(hb))
                    for h, s, o, host, pid, c, hb in conn.execute(
                        "SELECT config_hash, seed_index, owner, host, pid, claimed, heartbeat "
                        "FROM claims")}

    def live_claims(self, *, ttl_s: float = CLAIM_TTL_S,
                    exclude: Owner | None = None) -> dict[tuple[str, int], Claim]:
        """The claims of runs that are still running (see :func:`claim_is_live`)."""
        now = time.time()
        return {k: c for k, c in self.claims().items()
                if (exclude is None or c.owner != exclude.id)
                and claim_is_live(c, now=now, ttl_s=ttl_s)}

    # --- reading ---------------------------------------------------------------------

    def done_keys(self) -> set[tuple[str, int]]:
        """Keys ``(config_hash, seed_index)`` of every stored result."""
        if "results" not in self._columns:
            return set()
        with self._guard("reading results") as conn:
            return {(h, int(s)) for h, s in
                    conn.execute("SELECT config_hash, seed_index FROM results")}

    def done_seeds(self) -> dict[tuple[str, int], int]:
        """The seed stored with each key ``(config_hash, seed_index)``."""
        if "results" not in self._columns:
            return {}
        with self._guard("reading results") as conn:
            return {(h, int(s)): int(seed) for h, s, seed in
                    conn.execute("SELECT config_hash, seed_index, seed FROM results")}

    def count(self) -> int:
        """Number of stored results."""
        if "results" not in self._columns:
            return 0
        with self._guard("reading results") as conn:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def rows(self, keys: Iterable[tuple[str, int]] | None = None) -> list[ResultRow]:
        """Stored results (all, or those whose key is in ``keys``), in insertion order."""
        if "results" not in self._columns:
            return []
        wanted = None if keys is None else set(keys)
        missing_col = "missing" if "missing" in self._columns["results"] else "'{}'"
        out = []
        with self._guard("reading results") as conn:
            cursor = conn.execute(f"SELECT {', '.join(_COLUMNS)}, {missing_col} FROM results "
                                  "ORDER BY rowid")
            for r in cursor:
                if wanted is not None and (r[0], r[1]) not in wanted:
                    continue
                try:
                    params, metrics, missing = (json.loads(r[2]), json.loads(r[4]),
                                                json.loads(r[10]))
                except (TypeError, ValueError) as exc:
                    raise StoreError(f"results store {self.path}: the row of point "
                                     f"{r[0]!s:.12}… seed {r[1]} is not valid JSON ({exc}); "
                                     "the file was changed by another program") from exc
                out.append(ResultRow(r[0], int(r[1]), params, int(r[3]), metrics, r[5],
                                     r[6], r[7], r[8], r[9], missing))
        return out

    def errors(self) -> list[dict[str, Any]]:
        """Points whose last evaluation failed: key, params, seed, error and traceback."""
        if "errors" not in self._columns:
            return []
        cols = ("config_hash", "seed_index", "params", "seed", "error", "traceback",
                "memsim_version", "started", "finished", "host")
        out = []
        with self._guard("reading errors") as conn:
            for r in conn.execute(f"SELECT {', '.join(cols)} FROM errors ORDER BY rowid"):
                d = dict(zip(cols, r, strict=True))
                d["params"] = json.loads(d["params"])
                out.append(d)
        return out

    def meta(self, key: str) -> Any:
        """A provenance entry written by :meth:`set_meta`, or ``None``."""
        if "meta" not in self._columns:
            return None
        with self._guard("reading provenance") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def to_dataframe(self, keys: Iterable[tuple[str, int]] | None = None):
        """A pandas DataFrame: one row per result, one column per parameter and per metric.

        Columns: ``config_hash``, ``seed_index``, ``seed``, the parameters (the full
        config), the metrics (NaN where the stored value is null), then
        ``memsim_version``, ``started``, ``finished``, ``wall_s``, ``host``.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is a dependency
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
        clash |= (set(param_cols) | set(metric_cols)) & set(_FIXED_COLUMNS)
        if clash:
            raise StoreError(f"results store {self.path}: names {sorted(clash)} are used both "
                             "as parameter, metric or column names; rename them in the study")
        columns = ["config_hash", "seed_index", "seed", *param_cols, *metric_cols,
                   "memsim_version", "started", "finished", "wall_s", "host"]
        df = pd.DataFrame.from_records(records, columns=columns)
        for m in metric_cols:  # null (a NaN result) -> NaN, a float column
            df[m] = pd.to_numeric(df[m], errors="coerce").astype(float)
        return df

    # --- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def set_aside(path: str | Path) -> Path | None:
    """Move a results store (and its ``-wal``/``-shm`` files) aside; nothing is deleted.

    The store becomes ``<name>.sqlite.<YYYYmmdd-HHMMSS>.old``; returns that path, or None
    when there was no store. Refuses (:class:`memsim.StoreError`) while another run holds
    live claims on it.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with ResultStore(path, readonly=True) as store:
            live = store.live_claims()
    except StoreError:
        live = {}  # a damaged store: nobody can be running on it
    if live:
        claim = next(iter(live.values()))
        raise StoreError(f"results store {path} is in use: another run ({claim.describe()}) "
                         f"is computing {len(live)} point(s); wait for it to finish before "
                         "--restart")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{stamp}.old")
    k = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{stamp}-{k}.old")
        k += 1
    try:
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.replace(target.with_name(target.name + suffix))
        path.replace(target)
    except OSError as exc:
        err = StoreError(f"cannot move results store {path} aside: {os_error_advice(exc)}")
        raise err from exc
    return target
