"""Run a study: evaluate every point missing from the results store, serially or on Dask.

The evaluator of one point is a plain function ``evaluate(config, seed) -> {metric: float}``
where ``config`` is the point's full config (card names, [fixed] and the grid values) and
``seed`` its integer seed (make the streams with ``np.random.SeedSequence(seed).spawn(k)``).
It must draw all its randomness from ``seed``: then a point gives the same metrics whether
it runs serially, on any worker, or in a later resumed run. Register it by name, with the
parameters it understands and the metrics it returns (see :mod:`memsim.studies.params`)::

    @register_evaluator("accuracy-energy", params={"time_s": Param.real(lo=0, unit="s")},
                        metrics=lambda config: {"accuracy", "energy_j"})
    def accuracy_energy(config: dict, seed: int) -> dict[str, float]: ...

Registration is explicit: importing memsim registers nothing. The built-in evaluators are
listed in :data:`EVALUATORS` as ``"module:function"`` strings and imported at first use
(as the trained workloads are in :mod:`memsim.workloads.trained`); their functions carry
their declarations with :func:`declare_evaluator`.

A study is then checked against those declarations when it is loaded, before any point
runs: an unknown parameter or metric, a value of the wrong type or out of range is refused
with the file, the table and the key. A metric without a value (NaN, or
:class:`NoValue` with a reason) is stored as JSON ``null`` with its reason.

Workers receive the function pickled (by reference for a module-level function, so its
module must be importable on the workers, as memsim is).

Results are written by the main process as points finish, one transaction each, so an
interrupted run (Ctrl-C, ``kill -9``, a lost cluster) keeps every finished point and the
next run computes only the rest. A point whose evaluator raises is recorded in the
``errors`` table with its traceback and listed in the summary; the other points go on.
Each point is claimed in the store before it is computed, so two runs of one study at once
split the grid (see :mod:`memsim.studies.store`).

Ctrl-C works at every moment, the start of a local Dask cluster included: the run stops
submitting, cancels what is in flight, closes the cluster and keeps every finished point.
Connecting to an existing scheduler gives up after ``connect_timeout_s``.

Parallel runs start worker *processes*; a script that calls :func:`run_study` with workers
must guard its top level with ``if __name__ == "__main__":`` (they are spawned).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import numbers
import os
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memsim.errors import ClusterError, ConfigError, StoreError, StudyError
from memsim.studies.params import Param, suggest
from memsim.studies.spec import Point, StudySpec, load_study
from memsim.studies.store import (
    CLAIM_TTL_S,
    LOCK_TIMEOUT_S,
    Owner,
    ResultStore,
    set_aside,
    store_path,
)

__all__ = [
    "EVALUATORS",
    "Evaluator",
    "EvaluatorDeclaration",
    "NoValue",
    "PointFailure",
    "RunSummary",
    "check_study",
    "declare_evaluator",
    "get_evaluator",
    "register_evaluator",
    "run_study",
]

Evaluator = Callable[[dict[str, Any], int], Mapping[str, Any]]

#: Evaluators by name (a study file names one in ``evaluator = "..."``): a function, or the
#: ``"module:function"`` of one, imported when a study first asks for it.
EVALUATORS: dict[str, Evaluator | str] = {
    "accuracy-energy": "memsim.studies.evaluate:evaluate_point",
}

#: Default seconds to wait for a Dask scheduler to answer.
CONNECT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class NoValue:
    """A metric an evaluator could not measure, with the reason (stored as ``null``)."""

    reason: str

    def __float__(self) -> float:
        return math.nan


@dataclass(frozen=True)
class EvaluatorDeclaration:
    """What an evaluator understands: its parameters, its metrics and cross-checks.

    ``params``: name -> :class:`Param` (with ``params_declared``, any other parameter is
    refused). ``metrics(config)``: the metric names it returns
    for a point's full config. ``check(config)``: raises ``ValueError`` for a combination
    of values it cannot run (called once per distinct config at load time).
    """

    name: str
    params: Mapping[str, Param]
    metrics: Callable[[Mapping[str, Any]], Iterable[str]] | None = None
    check: Callable[[Mapping[str, Any]], None] | None = field(default=None, compare=False)
    params_declared: bool = True


def declare_evaluator(name: str, *, params: Mapping[str, Param] | None = None,
                      metrics: Callable[[Mapping[str, Any]], Iterable[str]]
                      | Iterable[str] | None = None,
                      check: Callable[[Mapping[str, Any]], None] | None = None
                      ) -> Callable[[Evaluator], Evaluator]:
    """Decorator: attach to an evaluator what it understands, without registering it.

    ``params`` declares the parameters it understands (then any other parameter in a study
    is refused at load time), ``metrics`` the metric names it returns (a collection, or a
    function of the point's config), ``check`` a function that raises ``ValueError`` for
    an impossible combination of values.
    """
    return _decorator(name, params, metrics, check, register=False)


def register_evaluator(name: str, *, params: Mapping[str, Param] | None = None,
                       metrics: Callable[[Mapping[str, Any]], Iterable[str]]
                       | Iterable[str] | None = None,
                       check: Callable[[Mapping[str, Any]], None] | None = None
                       ) -> Callable[[Evaluator], Evaluator]:
    """Decorator: register a module-level function as the evaluator called ``name``, with
    its declarations (see :func:`declare_evaluator`).

    Registering another function under a taken name raises ``ValueError`` (registering the
    same function again, e.g. when its module is reloaded, replaces it).
    """
    return _decorator(name, params, metrics, check, register=True)


def _decorator(name: str, params: Mapping[str, Param] | None,
               metrics: Callable[[Mapping[str, Any]], Iterable[str]] | Iterable[str] | None,
               check: Callable[[Mapping[str, Any]], None] | None, *, register: bool
               ) -> Callable[[Evaluator], Evaluator]:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"evaluator name {name!r} must be a non-empty string")
    metric_fn = None
    if metrics is not None:
        if callable(metrics):
            metric_fn = metrics
        else:
            fixed = frozenset(metrics)
            metric_fn = lambda config: fixed  # noqa: E731
    decl = None
    if params is not None or metric_fn is not None or check is not None:
        decl = EvaluatorDeclaration(name, dict(params or {}), metric_fn, check,
                                    params_declared=params is not None)

    def decorate(fn: Evaluator) -> Evaluator:
        if not callable(fn):
            raise ConfigError(f"evaluator {name!r}: {fn!r} is not callable")
        if decl is not None:
            fn.__memsim_evaluator__ = decl  # type: ignore[attr-defined]
        if not register:
            return fn
        old = EVALUATORS.get(name)
        where = f"{fn.__module__}:{fn.__qualname__}"
        if old is not None and _where(old) != where:
            raise ConfigError(f"evaluator {name!r} is already registered as "
                              f"{_where(old).replace(':', '.')}")
        EVALUATORS[name] = fn
        return fn

    return decorate


def _where(fn: Evaluator | str) -> str:
    return fn if isinstance(fn, str) else f"{fn.__module__}:{fn.__qualname__}"


def get_evaluator(evaluate: str | Evaluator) -> Evaluator:
    """A callable as is, or the evaluator registered under that name (a ``"module:function"``
    entry is imported now, once)."""
    if callable(evaluate):
        return evaluate
    if isinstance(evaluate, str):
        try:
            fn = EVALUATORS[evaluate]
        except KeyError:
            known = ", ".join(sorted(EVALUATORS)) or "none registered"
            raise StudyError(f"unknown evaluator {evaluate!r}{suggest(evaluate, EVALUATORS)};"
                             f" known: {known}") from None
        if isinstance(fn, str):
            import importlib

            module, _, attr = fn.partition(":")
            try:
                fn = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise StudyError(f"evaluator {evaluate!r} ({module}:{attr}) cannot be "
                                 f"imported: {exc}") from exc
            EVALUATORS[evaluate] = fn
        return fn
    raise ConfigError(f"evaluate must be a callable or a registered name, got {evaluate!r}")


# --- checking a study against its evaluator ---------------------------------------------------

def check_study(spec: StudySpec, evaluate: str | Evaluator, *, quick: bool | None = None
                ) -> None:
    """Check a study against its evaluator's declarations, before any point runs.

    Every parameter must be declared, every value of the right type and range, every
    required parameter present, every metric one the evaluator returns for each point;
    ``quick``: None checks both sizes. Raises :class:`memsim.StudyError` naming the study
    file, the table and the key. An evaluator without declarations is not checked.
    """
    fn = get_evaluator(evaluate)
    decl: EvaluatorDeclaration | None = getattr(fn, "__memsim_evaluator__", None)
    if decl is None:
        return
    where = f"study {spec.source}"
    places = spec.places()
    params = decl.params
    if decl.params_declared:
        for key, place in places.items():
            if key not in params:
                raise StudyError(
                    f"{where}: {place} {key!r} is not a parameter of evaluator "
                    f"{decl.name!r}{suggest(key, params)}; its parameters: "
                    f"{', '.join(sorted(params))}")
        for key, p in params.items():
            if p.required and key not in places:
                raise StudyError(f"{where}: evaluator {decl.name!r} needs {key!r}: set it at "
                                 "the top level, in [fixed] or in [grid]")
        for key in places:
            p = params[key]
            if places[key] == "[grid]":
                for table, grid in (("[grid]", spec.grid), ("[quick]", spec.quick)):
                    if key not in grid:
                        continue
                    for k, v in enumerate(grid[key]):
                        p.check(v, f"{where}: {table} {key}[{k}]")
            elif places[key] == "[fixed]":
                p.check(spec.fixed[key], f"{where}: [fixed] {key}")
            else:
                p.check(getattr(spec, key), f"{where}: {key}")
    sizes = (False, True) if quick is None else (bool(quick),)
    seen: dict[str, Point] = {}
    for q in sizes:
        for point in spec.points(quick=q):
            if point.seed_index == 0:
                seen.setdefault(point.config_hash, point)
    for point in seen.values():
        if decl.check is not None:
            at = f"{where}: point {point.params}" if point.params else where
            try:
                decl.check(point.config)
            except ValueError as exc:
                raise StudyError(f"{at}: {exc}") from None
    if decl.metrics is None:
        return
    gives = {h: set(decl.metrics(p.config)) for h, p in seen.items()}
    every = set().union(*gives.values()) if gives else set()
    for m in spec.metrics:
        if m not in every:
            raise StudyError(f"{where}: metrics: {m!r} is not a metric that evaluator "
                             f"{decl.name!r} returns{suggest(m, every)}; it returns: "
                             f"{', '.join(sorted(every))}")
        for h, point in seen.items():
            if m not in gives[h]:
                raise StudyError(f"{where}: metrics: evaluator {decl.name!r} does not return "
                                 f"{m!r} for the point {point.config} (with these values it "
                                 f"returns: {', '.join(sorted(gives[h]))})")


# --- summaries ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PointFailure:
    """A point whose evaluation raised (the traceback is in the store's ``errors`` table)."""

    index: int
    config_hash: str
    seed_index: int
    params: dict[str, Any]
    error: str


@dataclass(frozen=True)
class RunSummary:
    """What one call of :func:`run_study` did.

    ``total`` points in the study (at the chosen size); ``already_done`` were in the store
    before; ``computed`` were evaluated and stored now; ``failed`` raised (recorded in
    ``errors``, retried by the next run); ``done_elsewhere`` were stored meanwhile by
    another run of the same study; ``running_elsewhere`` are still being computed by
    another run (``running_owner`` says which); ``interrupted`` is true when Ctrl-C
    stopped the run, leaving ``remaining`` points for the next one.
    """

    study: str
    store: Path
    total: int
    already_done: int
    computed: int
    failed: int
    interrupted: bool
    wall_s: float
    failures: tuple[PointFailure, ...] = ()
    done_elsewhere: int = 0
    running_elsewhere: int = 0
    running_owner: str = ""

    @property
    def remaining(self) -> int:
        """Points without a result after this run (failed, running elsewhere, not reached)."""
        return self.total - self.already_done - self.computed - self.done_elsewhere

    @property
    def complete(self) -> bool:
        return self.remaining == 0

    def __str__(self) -> str:
        elsewhere = f", {self.done_elsewhere} by another run" if self.done_elsewhere else ""
        text = (f"study {self.study}: {self.total} points, {self.already_done} already done, "
                f"{self.computed} computed now{elsewhere}, {self.failed} failed, "
                f"{self.remaining} remaining; {self.wall_s:.1f} s; results in {self.store}")
        if self.running_elsewhere:
            text += (f"\n{self.running_elsewhere} point(s) are being computed by another run "
                     f"of this study ({self.running_owner}); they will be in the store when "
                     "it finishes")
        if self.interrupted:
            text += "\ninterrupted: every finished point is kept; run again to resume"
        for f in self.failures[:10]:
            text += f"\nfailed point {f.index} {f.params} seed {f.seed_index}: {f.error}"
        if len(self.failures) > 10:
            text += f"\n... and {len(self.failures) - 10} more (tracebacks in table 'errors')"
        return text


# --- evaluating one point -------------------------------------------------------------------------

def _check_metrics(raw: Any, metrics: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"evaluator returned {type(raw).__name__}; expected a dict of "
                        "metric name -> number")
    missing = [m for m in metrics if m not in raw]
    if missing:
        raise ValueError(f"evaluator result lacks the study's metrics {missing}; "
                         f"it returned {sorted(map(str, raw))}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise TypeError(f"metric name {key!r} is not a string")
        if isinstance(value, NoValue):
            out[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"metric {key!r} = {value!r} is not a real number")
        out[key] = float(value)
    return out


def _evaluate_point(evaluate: Evaluator, config: dict[str, Any], seed: int,
                    metrics: tuple[str, ...]) -> dict[str, Any]:
    """Run one point (on a worker or in process); an exception becomes a failure record."""
    host = socket.gethostname()
    started = time.time()
    try:
        result = _check_metrics(evaluate(dict(config), seed), metrics)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(), "started": started,
                "finished": time.time(), "host": host}
    return {"ok": True, "metrics": result, "started": started, "finished": time.time(),
            "host": host}


def _failure_from_exception(exc: BaseException) -> dict[str, Any]:
    now = time.time()
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc)), "started": now,
            "finished": now, "host": "?"}


# --- the work list: claims --------------------------------------------------------------------

class _Work:
    """The points this run still has to do, claimed from the store a few at a time."""

    def __init__(self, store: ResultStore, owner: Owner, todo: list[Point],
                 ttl_s: float) -> None:
        self.store = store
        self.owner = owner
        self.ttl_s = ttl_s
        self.queue: collections.deque[Point] = collections.deque(todo)
        self.deferred: list[Point] = []  # held by a live claim of another run
        self.done_elsewhere = 0
        self.busy_owner = ""

    def take(self, n: int) -> list[Point]:
        """Claim up to ``n`` points; points done or held by another run are skipped."""
        out: list[Point] = []
        while len(out) < n:
            if not self.queue:
                if not self._requeue_deferred():
                    break
            batch = [self.queue.popleft() for _ in range(min(n - len(out), len(self.queue)))]
            res = self.store.claim([p.key for p in batch], self.owner, ttl_s=self.ttl_s)
            claimed, done = set(res.claimed), set(res.done)
            for p in batch:
                if p.key in claimed:
                    out.append(p)
                elif p.key in done:
                    self.done_elsewhere += 1
                else:
                    self.deferred.append(p)
                    self.busy_owner = res.busy[p.key].describe()
        return out

    def _requeue_deferred(self) -> bool:
        """Put back the deferred points whose claims are no longer live (or now done)."""
        if not self.deferred:
            return False
        live = self.store.live_claims(ttl_s=self.ttl_s, exclude=self.owner)
        done = self.store.done_keys()
        back = [p for p in self.deferred if p.key not in live or p.key in done]
        if not back:
            return False
        self.deferred = [p for p in self.deferred if p.key in live and p.key not in done]
        self.queue.extend(back)
        return True

    def running_elsewhere(self) -> int:
        if not self.deferred:
            return 0
        done = self.store.done_keys()
        kept = [p for p in self.deferred if p.key not in done]
        self.done_elsewhere += len(self.deferred) - len(kept)
        self.deferred = kept
        return len(kept)


class _Heartbeat:
    """Renews this run's claims every ``ttl_s / 4`` seconds from a background thread."""

    def __init__(self, store: ResultStore, owner: Owner, ttl_s: float) -> None:
        self.store = store
        self.owner = owner
        self.period_s = max(ttl_s / 4.0, 0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memsim-claims-heartbeat",
                                        daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            with contextlib.suppress(StoreError):  # a missed beat only shortens the claim
                self.store.heartbeat(self.owner)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


class _Recorder:
    """Writes each finished point to the store (main process only) and ticks the bar."""

    def __init__(self, store: ResultStore, bar: Any, owner: Owner) -> None:
        self.store = store
        self.bar = bar
        self.owner = owner
        self.computed = 0
        self.stored_elsewhere = 0
        self.failures: list[PointFailure] = []

    def __call__(self, point: Point, res: Mapping[str, Any]) -> None:
        if res["ok"]:
            inserted = self.store.add(
                config_hash=point.config_hash, seed_index=point.seed_index,
                params=point.config, seed=point.seed, metrics=res["metrics"],
                started=res["started"], finished=res["finished"], host=res["host"],
                if_absent=True)
            if inserted:
                self.computed += 1
            else:  # our claim had expired and another run stored the point first
                self.stored_elsewhere += 1
        else:
            self.store.add_error(config_hash=point.config_hash, seed_index=point.seed_index,
                                 params=point.config, seed=point.seed, error=res["error"],
                                 traceback=res["traceback"], started=res["started"],
                                 finished=res["finished"], host=res["host"],
                                 owner=self.owner.id)
            self.failures.append(PointFailure(point.index, point.config_hash,
                                              point.seed_index, dict(point.params),
                                              res["error"]))
            self.bar.set_postfix(failed=len(self.failures))
            if not self.bar.disable:
                self.bar.write(f"point {point.index} {point.params} seed {point.seed_index} "
                               f"failed: {res['error']}", file=sys.stderr)
        self.bar.update(1)


# --- Ctrl-C -------------------------------------------------------------------------------------

@contextmanager
def _sigint_deferred(message: str) -> Iterator[list[int]]:
    """Meanwhile, Ctrl-C is remembered (and ``message`` printed), not raised.

    Yields the list of remembered signals; the caller decides what to do when it is not
    empty. Main thread only; elsewhere a no-op that never remembers anything.
    """
    hits: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield hits
        return

    def remember(signum: int, frame: Any) -> None:
        hits.append(signum)
        if len(hits) == 1:
            print(message, file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield hits
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread meanwhile (a pending Ctrl-C is delivered at the end).

    Threads started meanwhile inherit the block, and so do the processes they spawn: the
    workers of a local Dask cluster started here never receive the terminal's Ctrl-C, not
    even in the first moments of their start (before their preload ignores it).
    """
    if not hasattr(signal, "pthread_sigmask") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    # multiprocessing's resource tracker, when it starts, unblocks SIGINT in the thread that
    # starts it (bpo-33613): start it now, so that it leaves the block below alone
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


# --- Dask -----------------------------------------------------------------------------------------

def _probe_scheduler(address: str, timeout_s: float) -> None:
    """Fail fast, with a clear message, when ``address`` is not a Dask scheduler that
    answers within ``timeout_s`` (a peer that accepts TCP but never answers would make
    ``distributed.Client`` wait forever)."""
    parsed = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    if parsed.scheme == "tcp":
        try:
            host, port = parsed.hostname, parsed.port
        except ValueError:
            host, port = None, None
        if not host or not port:
            raise ClusterError(f"--scheduler {address!r} is not a scheduler address; "
                               "expected tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786)")
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                pass
        except TimeoutError:
            raise ClusterError(f"the Dask scheduler at {address} did not accept a connection "
                               f"within {timeout_s:g} s; check the address and the network, "
                               "or raise --connect-timeout") from None
        except OSError as exc:
            reason = "nothing listens on that port" if isinstance(
                exc, ConnectionRefusedError) else (exc.strerror or str(exc))
            raise ClusterError(f"cannot connect to the Dask scheduler at {address}: "
                               f"{reason}. Start it (dask scheduler) or check the address; "
                               "without --scheduler, memsim starts a local cluster") from None

    from distributed.comm import connect

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout_s), timeout_s)
        await comm.close()

    def run() -> None:
        asyncio.run(handshake())

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            run()
        else:  # called from a running loop (a notebook): probe from a helper thread
            errors: list[BaseException] = []

            def target() -> None:
                try:
                    run()
                except BaseException as exc:  # handed to the caller below
                    errors.append(exc)

            t = threading.Thread(target=target, daemon=True)
            t.start()
            t.join(timeout_s + 5.0)
            if errors:
                raise errors[0]
    except TimeoutError:
        raise ClusterError(f"the Dask scheduler at {address} did not answer within "
                           f"{timeout_s:g} s (it accepts connections but does not speak the "
                           "Dask protocol, or it is overloaded); check the address, or raise "
                           "--connect-timeout") from None
    except (OSError, ValueError, TypeError) as exc:
        raise ClusterError(f"cannot connect to the Dask scheduler at {address}: {exc}") \
            from None


def _connect(scheduler: str | None, workers: int | None, connect_timeout_s: float):
    """(client, cluster or None): a local cluster, or a client of ``scheduler``.

    Local cluster: Ctrl-C during its start is remembered; once the start has finished (or
    failed), what was started is closed and ``KeyboardInterrupt`` raised (so no worker is
    left behind). Existing scheduler: Ctrl-C interrupts the connection at once.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise ClusterError("parallel study runs need dask.distributed: pip install "
                           "'dask[distributed]' (or run serially with --workers 0)") from exc
    client = cluster = None
    if scheduler is not None:
        _probe_scheduler(scheduler, connect_timeout_s)
        try:
            return Client(scheduler, timeout=connect_timeout_s), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: "
                               f"{type(exc).__name__}: {exc}; check the address or raise "
                               "--connect-timeout") from None
    with _sigint_deferred("interrupted: stopping once the Dask cluster has started "
                          "(a few seconds)…") as hits:
        try:
            n = workers if workers is not None else (os.cpu_count() or 1)
            # one single-threaded process per core; the nanny pins BLAS/OpenMP threads to
            # 1. The workers never see Ctrl-C (SIGINT blocked when they are spawned, and
            # ignored by their preload): only this process reacts to it and closes them.
            with _sigint_blocked():
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.WARNING,
                                       preload=["memsim.studies._dask_worker"])
                client = Client(cluster, timeout=connect_timeout_s)
        except KeyboardInterrupt:
            _close(client, cluster)
            raise
        except Exception as exc:
            _close(client, cluster)
            if hits:
                raise KeyboardInterrupt from None
            raise ClusterError(f"cannot start a local Dask cluster of {n} worker process(es):"
                               f" {type(exc).__name__}: {exc}; try --workers 0 (serial)") \
                from exc
        if hits:
            _close(client, cluster)
            raise KeyboardInterrupt
    return client, cluster


def _close(client: Any, cluster: Any) -> None:
    """Close a client and a cluster; errors while closing are not the user's concern."""
    if client is not None:
        with contextlib.suppress(Exception):
            client.close(timeout=10)
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close(timeout=10)


def _run_serial(work: _Work, evaluate: Evaluator, metrics: tuple[str, ...],
                record: _Recorder) -> None:
    while True:
        batch = work.take(1)
        if not batch:
            return
        (point,) = batch
        record(point, _evaluate_point(evaluate, point.config, point.seed, metrics))


def _run_dask(work: _Work, evaluate: Evaluator, metrics: tuple[str, ...],
              record: _Recorder, *, scheduler: str | None, workers: int | None,
              connect_timeout_s: float) -> None:
    from distributed import as_completed

    # claim the first points before starting a cluster: none may be left (another run of
    # the study has them all)
    first = work.take(2 * (workers or os.cpu_count() or 1))
    if not first:
        return
    client, cluster = _connect(scheduler, workers, connect_timeout_s)
    pending: dict[Any, Point] = {}
    try:
        threads = sum(client.nthreads().values())
        window = max(2 * threads, 2)  # points claimed and in flight: Ctrl-C stops submitting
        futures = as_completed()

        def submit(points: list[Point]) -> None:
            for point in points:
                fut = client.submit(_evaluate_point, evaluate, point.config, point.seed,
                                    metrics, pure=False)
                pending[fut] = point
                futures.add(fut)

        submit(first)
        for fut in futures:
            point = pending.pop(fut)
            try:
                res = fut.result()
            except Exception as exc:  # a worker died (KilledWorker), the cluster was lost
                res = _failure_from_exception(exc)
            record(point, res)
            submit(work.take(max(window - len(pending), 0)))
    finally:
        with _sigint_deferred("interrupted: stopping the Dask cluster…"):
            if pending:
                with contextlib.suppress(Exception):
                    client.cancel(list(pending))
            _close(client, cluster)


def run_study(spec: StudySpec | str | Path, evaluate: str | Evaluator | None = None,
              out_dir: str | Path = "results", *, quick: bool = False,
              scheduler: str | None = None, workers: int | None = None,
              progress: bool = True, restart: bool = False,
              connect_timeout_s: float = CONNECT_TIMEOUT_S,
              lock_timeout_s: float = LOCK_TIMEOUT_S,
              claim_ttl_s: float = CLAIM_TTL_S) -> RunSummary:
    """Evaluate every point of ``spec`` that has no row yet in ``<out_dir>/<name>.sqlite``.

    ``spec``: a :class:`StudySpec`, a study name or a TOML path. ``evaluate``: a callable
    or a registered name; ``None`` uses the study's ``evaluator``. ``quick``: the
    ``[quick]`` size. Where points run: ``workers=0`` serially in this process;
    ``workers=None`` (default) on a local Dask cluster of ``os.cpu_count()`` worker
    processes; ``workers=n`` on ``n`` processes; ``scheduler="tcp://host:port"`` on an
    existing Dask cluster (then give no ``workers``; ``connect_timeout_s`` bounds the wait
    for it). Same results in every case. ``restart``: first move an existing store aside
    (``<name>.sqlite.<time>.old``; nothing is deleted) and start afresh.

    The study is checked against the evaluator's declared parameters and metrics before
    any point runs. Points are claimed in the store before they are computed, so another
    run of the same study at the same time computes other points; ``claim_ttl_s`` is how
    long the claims of a run on another host survive it without a heartbeat.

    Ctrl-C stops the run: nothing more is submitted, the cluster is closed, every finished
    point stays in the store and the summary says ``interrupted``. A failure of the store
    (a full disk, a lock held elsewhere) raises :class:`memsim.StoreError`; of the cluster,
    :class:`memsim.ClusterError`; both keep every finished point.
    """
    if not isinstance(spec, StudySpec):
        spec = load_study(spec)
    fn = get_evaluator(spec.evaluator if evaluate is None else evaluate)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 0):
        raise ConfigError(f"workers = {workers!r} must be None (one per CPU), 0 (serial) or "
                          "a positive integer")
    if scheduler is not None and workers is not None:
        raise ConfigError("give either scheduler (an existing Dask cluster) or workers "
                          "(a local one), not both")
    if scheduler is not None and (not isinstance(scheduler, str) or not scheduler.strip()):
        raise ConfigError(f"scheduler = {scheduler!r} must be an address such as "
                          "tcp://127.0.0.1:8786")
    for name, value in (("connect_timeout_s", connect_timeout_s),
                        ("lock_timeout_s", lock_timeout_s), ("claim_ttl_s", claim_ttl_s)):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} = {value!r} must be a positive number of seconds")
    check_study(spec, fn, quick=quick)
    from memsim._progress import progress as progress_bar

    t0 = time.perf_counter()
    points = spec.points(quick=quick)
    path = store_path(out_dir, spec.name)
    if restart:
        aside = set_aside(path)
        if aside is not None:
            print(f"study {spec.name}: the previous results store was moved to {aside}",
                  file=sys.stderr)
    interrupted = False
    owner = Owner.this_process()
    with ResultStore(path, lock_timeout_s=lock_timeout_s) as store:
        store.set_meta("study", spec.to_dict())
        done = store.done_seeds()
        clash = [p for p in points if p.key in done and done[p.key] != p.seed]
        if clash:
            raise StudyError(
                f"study {spec.name}: {len(clash)} stored results in {store.path} were drawn "
                f"with other seeds (was base_seed changed?); use another output folder, "
                f"the base_seed of those results, or --restart to set them aside")
        todo = [p for p in points if p.key not in done]
        already = len(points) - len(todo)
        bar = progress_bar(len(points), spec.name, "pt", initial=already, delay=0.0,
                           leave=True, **({} if progress else {"disable": True}))
        record = _Recorder(store, bar, owner)
        work = _Work(store, owner, todo, claim_ttl_s)
        running_elsewhere = 0
        try:
            with _Heartbeat(store, owner, claim_ttl_s):
                if not todo:
                    pass
                elif scheduler is None and workers == 0:
                    _run_serial(work, fn, spec.metrics, record)
                else:
                    _run_dask(work, fn, spec.metrics, record, scheduler=scheduler,
                              workers=workers, connect_timeout_s=connect_timeout_s)
                running_elsewhere = work.running_elsewhere()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
            with _sigint_deferred("interrupted: releasing this run's claims…"), \
                    contextlib.suppress(StoreError):
                store.release(owner)  # else they expire: this process will be gone
    summary = RunSummary(study=spec.name, store=path, total=len(points), already_done=already,
                         computed=record.computed, failed=len(record.failures),
                         interrupted=interrupted, wall_s=time.perf_counter() - t0,
                         failures=tuple(record.failures),
                         done_elsewhere=work.done_elsewhere + record.stored_elsewhere,
                         running_elsewhere=running_elsewhere, running_owner=work.busy_owner)
    if interrupted:
        print(f"study {spec.name} interrupted: {summary.total - summary.remaining} of "
              f"{summary.total} points are in {summary.store}; run again to resume",
              file=sys.stderr)
    return summary

