"""Run a study: evaluate every point missing from the results store, serially or on Dask.

The evaluator of one point is a plain function ``evaluate(config, seed) -> {metric: float}``
where ``config`` is the point's full config (card names, [fixed] and the grid values) and
``seed`` its integer seed (make the streams with ``np.random.SeedSequence(seed).spawn(k)``).
It must draw all its randomness from ``seed``: then a point gives the same metrics whether
it runs serially, on any worker, or in a later resumed run. Register it by name::

    @register_evaluator("accuracy-energy")
    def accuracy_energy(config: dict, seed: int) -> dict[str, float]: ...

Workers receive the function pickled (by reference for a module-level function, so its
module must be importable on the workers, as memsim is).

Results are written by the main process as points finish, one transaction each, so an
interrupted run (Ctrl-C, ``kill -9``, a lost cluster) keeps every finished point and the
next run computes only the rest. A point whose evaluator raises is recorded in the
``errors`` table with its traceback and listed in the summary; the other points go on.

Parallel runs start worker *processes*; a script that calls :func:`run_study` with workers
must guard its top level with ``if __name__ == "__main__":`` (they are spawned).
"""

from __future__ import annotations

import logging
import numbers
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memsim.studies.spec import Point, StudySpec, load_study
from memsim.studies.store import ResultStore, store_path

__all__ = [
    "EVALUATORS",
    "Evaluator",
    "PointFailure",
    "RunSummary",
    "get_evaluator",
    "register_evaluator",
    "run_study",
]

Evaluator = Callable[[dict[str, Any], int], Mapping[str, float]]

#: Registered evaluators by name (a study file names one in ``evaluator = "..."``).
EVALUATORS: dict[str, Evaluator] = {}


def register_evaluator(name: str) -> Callable[[Evaluator], Evaluator]:
    """Decorator: register a module-level function as the evaluator called ``name``.

    Registering another function under a taken name raises ``ValueError`` (registering the
    same function again, e.g. when its module is reloaded, replaces it).
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"evaluator name {name!r} must be a non-empty string")

    def decorate(fn: Evaluator) -> Evaluator:
        if not callable(fn):
            raise TypeError(f"evaluator {name!r}: {fn!r} is not callable")
        old = EVALUATORS.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (
                fn.__module__, fn.__qualname__):
            raise ValueError(f"evaluator {name!r} is already registered as "
                             f"{old.__module__}.{old.__qualname__}")
        EVALUATORS[name] = fn
        return fn

    return decorate


def get_evaluator(evaluate: str | Evaluator) -> Evaluator:
    """A callable as is, or the evaluator registered under that name."""
    if callable(evaluate):
        return evaluate
    if isinstance(evaluate, str):
        try:
            return EVALUATORS[evaluate]
        except KeyError:
            known = ", ".join(sorted(EVALUATORS)) or "none registered"
            raise ValueError(f"unknown evaluator {evaluate!r}; known: {known}") from None
    raise TypeError(f"evaluate must be a callable or a registered name, got {evaluate!r}")


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
    ``errors``, retried by the next run); ``interrupted`` is true when Ctrl-C stopped the
    run, leaving ``remaining`` points for the next one.
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

    @property
    def remaining(self) -> int:
        """Points without a result after this run (failed or never reached)."""
        return self.total - self.already_done - self.computed

    @property
    def complete(self) -> bool:
        return self.remaining == 0

    def __str__(self) -> str:
        text = (f"study {self.study}: {self.total} points, {self.already_done} already done, "
                f"{self.computed} computed now, {self.failed} failed, {self.remaining} "
                f"remaining; {self.wall_s:.1f} s; results in {self.store}")
        if self.interrupted:
            text += "\ninterrupted: every finished point is kept; run again to resume"
        for f in self.failures[:10]:
            text += f"\nfailed point {f.index} {f.params} seed {f.seed_index}: {f.error}"
        if len(self.failures) > 10:
            text += f"\n... and {len(self.failures) - 10} more (tracebacks in table 'errors')"
        return text


def _check_metrics(raw: Any, metrics: tuple[str, ...]) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise TypeError(f"evaluator returned {type(raw).__name__}; expected a dict of "
                        "metric name -> number")
    missing = [m for m in metrics if m not in raw]
    if missing:
        raise ValueError(f"evaluator result lacks the study's metrics {missing}; "
                         f"it returned {sorted(map(str, raw))}")
    out: dict[str, float] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise TypeError(f"metric name {key!r} is not a string")
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


class _Recorder:
    """Writes each finished point to the store (main process only) and ticks the bar."""

    def __init__(self, store: ResultStore, bar: Any) -> None:
        self.store = store
        self.bar = bar
        self.computed = 0
        self.failures: list[PointFailure] = []

    def __call__(self, point: Point, res: Mapping[str, Any]) -> None:
        if res["ok"]:
            self.store.add(config_hash=point.config_hash, seed_index=point.seed_index,
                           params=point.config, seed=point.seed, metrics=res["metrics"],
                           started=res["started"], finished=res["finished"], host=res["host"])
            self.computed += 1
        else:
            self.store.add_error(config_hash=point.config_hash, seed_index=point.seed_index,
                                 params=point.config, seed=point.seed, error=res["error"],
                                 traceback=res["traceback"], started=res["started"],
                                 finished=res["finished"], host=res["host"])
            self.failures.append(PointFailure(point.index, point.config_hash,
                                              point.seed_index, dict(point.params),
                                              res["error"]))
            self.bar.set_postfix(failed=len(self.failures))
            if not self.bar.disable:
                self.bar.write(f"point {point.index} {point.params} seed {point.seed_index} "
                               f"failed: {res['error']}", file=sys.stderr)
        self.bar.update(1)


def _failure_from_exception(exc: BaseException) -> dict[str, Any]:
    now = time.time()
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc)), "started": now,
            "finished": now, "host": "?"}


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT meanwhile (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_serial(todo: list[Point], evaluate: Evaluator, metrics: tuple[str, ...],
                record: _Recorder) -> None:
    for point in todo:
        record(point, _evaluate_point(evaluate, point.config, point.seed, metrics))


def _run_dask(todo: list[Point], evaluate: Evaluator, metrics: tuple[str, ...],
              record: _Recorder, *, scheduler: str | None, workers: int | None) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is installed in the tests
        raise ImportError("parallel study runs need dask.distributed: pip install "
                          "'dask[distributed]' (or run serially with workers=0)") from exc
    cluster = None
    if scheduler is None:
        n = workers if workers is not None else (os.cpu_count() or 1)
        # one single-threaded process per core; the nanny pins BLAS/OpenMP threads to 1
        # Ctrl-C in a terminal reaches the whole process group: the workers are started
        # ignoring SIGINT (inherited), so only this process reacts and closes them cleanly
        with _sigint_ignored():
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.WARNING)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    pending: dict[Any, Point] = {}
    try:
        threads = sum(client.nthreads().values())
        window = max(4 * threads, 64)  # bounded in flight: Ctrl-C stops submitting
        queue = iter(todo)
        futures = as_completed()

        def submit_next() -> None:
            point = next(queue, None)
            if point is not None:
                fut = client.submit(_evaluate_point, evaluate, point.config, point.seed,
                                    metrics, pure=False)
                pending[fut] = point
                futures.add(fut)

        for _ in range(window):
            submit_next()
        for fut in futures:
            point = pending.pop(fut)
            try:
                res = fut.result()
            except Exception as exc:  # a worker died (KilledWorker), the cluster was lost
                res = _failure_from_exception(exc)
            record(point, res)
            submit_next()
    finally:
        if pending:
            client.cancel(list(pending))
        client.close()
        if cluster is not None:
            cluster.close()


def run_study(spec: StudySpec | str | Path, evaluate: str | Evaluator | None = None,
              out_dir: str | Path = "results", *, quick: bool = False,
              scheduler: str | None = None, workers: int | None = None,
              progress: bool = True) -> RunSummary:
    """Evaluate every point of ``spec`` that has no row yet in ``<out_dir>/<name>.sqlite``.

    ``spec``: a :class:`StudySpec`, a study name or a TOML path. ``evaluate``: a callable
    or a registered name; ``None`` uses the study's ``evaluator``. ``quick``: the
    ``[quick]`` size. Where points run: ``workers=0`` serially in this process;
    ``workers=None`` (default) on a local Dask cluster of ``os.cpu_count()`` worker
    processes; ``workers=n`` on ``n`` processes; ``scheduler="tcp://host:port"`` on an
    existing Dask cluster (then give no ``workers``). Same results in every case.

    Ctrl-C stops the run: nothing more is submitted, the cluster is closed, every finished
    point stays in the store and the summary says ``interrupted``.
    """
    if not isinstance(spec, StudySpec):
        spec = load_study(spec)
    fn = get_evaluator(spec.evaluator if evaluate is None else evaluate)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 0):
        raise ValueError(f"workers = {workers!r} must be None (one per CPU), 0 (serial) or a "
                         "positive integer")
    if scheduler is not None and workers is not None:
        raise ValueError("give either scheduler (an existing Dask cluster) or workers "
                         "(a local one), not both")
    from tqdm import tqdm

    t0 = time.perf_counter()
    points = spec.points(quick=quick)
    interrupted = False
    with ResultStore(store_path(out_dir, spec.name)) as store:
        store.set_meta("study", spec.to_dict())
        done = store.done_seeds()
        clash = [p for p in points if p.key in done and done[p.key] != p.seed]
        if clash:
            raise ValueError(
                f"study {spec.name}: {len(clash)} stored results in {store.path} were drawn "
                f"with other seeds (was base_seed changed?); use another output folder or "
                f"the base_seed of those results")
        todo = [p for p in points if p.key not in done]
        already = len(points) - len(todo)
        bar = tqdm(total=len(points), initial=already, desc=spec.name, unit="pt",
                   file=sys.stderr, disable=not progress, dynamic_ncols=True)
        record = _Recorder(store, bar)
        try:
            if not todo:
                pass
            elif scheduler is None and workers == 0:
                _run_serial(todo, fn, spec.metrics, record)
            else:
                _run_dask(todo, fn, spec.metrics, record, scheduler=scheduler,
                          workers=workers)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            bar.close()
    summary = RunSummary(study=spec.name, store=store_path(out_dir, spec.name),
                         total=len(points), already_done=already, computed=record.computed,
                         failed=len(record.failures), interrupted=interrupted,
                         wall_s=time.perf_counter() - t0, failures=tuple(record.failures))
    if interrupted:
        print(f"study {spec.name} interrupted: {summary.total - summary.remaining} of "
              f"{summary.total} points are in {summary.store}; run again to resume",
              file=sys.stderr)
    return summary
