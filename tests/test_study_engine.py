"""Study engine: study files, point seeds, the SQLite results store and resumable runs.

The toy evaluators live at the top level of this module so that Dask worker processes
(spawned with this process's ``sys.path``) and the subprocess of the kill test can import
them as ``tests.test_study_engine``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import memsim
import memsim.cards
from memsim.studies import runner
from memsim.studies.runner import RunSummary, register_evaluator, run_study
from memsim.studies.spec import StudySpec, config_hash, load_study
from memsim.studies.store import ResultStore, store_path

ROOT = Path(__file__).resolve().parent.parent
MARKERS_ENV = "MEMSIM_STUDY_TEST_MARKERS"
SLEEP_ENV = "MEMSIM_STUDY_TEST_SLEEP"

STUDY = """\
description = "toy ADC sweep"
workload = "digits-cnn"
chip = "hermes-64core"
tile = "hermes-core"
evaluator = "toy"
seeds = 2
base_seed = 2024
metrics = ["accuracy", "energy_j"]

[grid]
adc_bits = [4, 5, 6, 8, 10]
time_s = [1, 86400]
device = ["pcm-generic", "rram-cmo"]

[fixed]
batch = 64

[quick]
seeds = 1
adc_bits = [4, 8]
"""


# --- toy evaluators (importable by workers) --------------------------------------------

def toy_evaluate(config: dict, seed: int) -> dict[str, float]:
    """Deterministic in (config, seed); leaves a marker file per call when asked to."""
    markers = os.environ.get(MARKERS_ENV)
    if markers:
        Path(markers, f"{seed}-{os.getpid()}-{time.monotonic_ns()}").touch()
    delay = float(os.environ.get(SLEEP_ENV, "0"))
    if delay:
        time.sleep(delay)
    rng = np.random.default_rng(seed)
    return {"accuracy": float(rng.random()),
            "energy_j": float(config["adc_bits"] * 1e-12 * (1.0 + 0.1 * rng.normal()))}


def failing_evaluate(config: dict, seed: int) -> dict[str, float]:
    """Raises on the points with adc_bits = 5 and time_s = 1."""
    if config["adc_bits"] == 5 and config.get("time_s") == 1:
        raise RuntimeError("toy failure at adc_bits=5")
    return toy_evaluate(config, seed)


def missing_metric_evaluate(config: dict, seed: int) -> dict[str, float]:
    return {"accuracy": 0.5}


class InterruptAfter:
    """Serial-only evaluator that raises KeyboardInterrupt (as Ctrl-C would) at call n+1."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def __call__(self, config: dict, seed: int) -> dict[str, float]:
        self.calls += 1
        if self.calls > self.n:
            raise KeyboardInterrupt
        return toy_evaluate(config, seed)


# --- helpers -----------------------------------------------------------------------------

def write(tmp_path: Path, text: str = STUDY, name: str = "toy-study") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def small(tmp_path: Path, grid: str = "adc_bits = [4, 5, 6]\ntime_s = [1, 86400]",
          seeds: int = 2, name: str = "small") -> Path:
    text = (f'tile = "hermes-core"\nevaluator = "toy"\nseeds = {seeds}\nbase_seed = 7\n'
            f'metrics = ["accuracy", "energy_j"]\n[grid]\n{grid}\n')
    return write(tmp_path, text, name)


def by_key(store_file: Path) -> dict[tuple[str, int], tuple]:
    with ResultStore(store_file) as store:
        return {(r.config_hash, r.seed_index): (r.seed, r.params, r.metrics)
                for r in store.rows()}


def db_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5.0) as conn:
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def check_integrity(db: Path, expected_rows: int) -> None:
    """No partial, duplicate or unreadable row."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT config_hash, seed_index, params, metrics FROM results")
        rows = rows.fetchall()
    assert len(rows) == expected_rows
    assert len({(h, s) for h, s, _, _ in rows}) == expected_rows
    for _, _, params, metrics in rows:
        assert isinstance(json.loads(params), dict)
        assert set(json.loads(metrics)) == {"accuracy", "energy_j"}


# --- study files -------------------------------------------------------------------------

def test_study_file_parses(tmp_path):
    spec = load_study(write(tmp_path))
    assert spec.name == "toy-study"  # the file stem
    assert spec.description == "toy ADC sweep"
    assert (spec.workload, spec.chip, spec.tile, spec.device) == (
        "digits-cnn", "hermes-64core", "hermes-core", None)
    assert list(spec.grid) == ["adc_bits", "time_s", "device"]  # file order
    assert spec.grid["adc_bits"] == (4, 5, 6, 8, 10)
    assert (spec.seeds, spec.base_seed, spec.evaluator) == (2, 2024, "toy")
    assert spec.metrics == ("accuracy", "energy_j")
    assert spec.fixed == {"batch": 64}
    assert spec.size() == 5 * 2 * 2 * 2 and spec.size(quick=True) == 2 * 2 * 2 * 1
    # round trip through plain data
    again = StudySpec.from_dict(spec.to_dict(), source="again")
    assert again.points() == spec.points()


def test_load_study_by_name(tmp_path, monkeypatch):
    write(tmp_path, name="named")
    monkeypatch.setattr(memsim.cards, "card_dir", lambda kind: [tmp_path])
    assert load_study("named").name == "named"
    with pytest.raises(ValueError, match="unknown studies card 'nope'"):
        load_study("nope")


@pytest.mark.parametrize("edit, key", [
    (lambda t: t + 'colour = "red"\n', "colour"),
    (lambda t: t.replace("seeds = 2", "seeds = 0"), "seeds"),
    (lambda t: t.replace("seeds = 2", "seeds = true"), "seeds"),
    (lambda t: t.replace("seeds = 2", "seeds = 1.5"), "seeds"),
    (lambda t: t.replace("base_seed = 2024", "base_seed = -1"), "base_seed"),
    (lambda t: t.replace("base_seed = 2024\n", ""), "base_seed"),
    (lambda t: t.replace('evaluator = "toy"\n', ""), "evaluator"),
    (lambda t: t.replace("time_s = [1, 86400]", "time_s = 86400"), "time_s"),
    (lambda t: t.replace("time_s = [1, 86400]", "time_s = []"), "time_s"),
    (lambda t: t.replace("time_s = [1, 86400]", "time_s = [1, 1]"), "time_s"),
    (lambda t: t.replace("time_s = [1, 86400]", "time_s = [1979-05-27]"), "time_s"),
    (lambda t: t.replace("adc_bits = [4, 5, 6, 8, 10]\ntime_s = [1, 86400]\n"
                         'device = ["pcm-generic", "rram-cmo"]\n', ""), "[grid]"),
    (lambda t: t.replace('metrics = ["accuracy", "energy_j"]', "metrics = []"), "metrics"),
    (lambda t: t.replace('metrics = ["accuracy", "energy_j"]', 'metrics = ["adc_bits"]'),
     "adc_bits"),
    (lambda t: t.replace('tile = "hermes-core"', 'tile = "hermes-core"\ndevice = "x"'),
     "device"),
    (lambda t: t.replace("batch = 64", "batch = 64\nadc_bits = 8"), "adc_bits"),
    (lambda t: t.replace("seeds = 1\n", "seeds = 0\n"), "quick.seeds"),
    (lambda t: t + "bogus = [1]\n", "bogus"),  # appended to [quick]
    (lambda t: t.replace("adc_bits = [4, 8]", "adc_bits = 4"), "adc_bits"),
])
def test_bad_study_names_file_and_key(tmp_path, edit, key):
    path = write(tmp_path, edit(STUDY), "bad-study")
    with pytest.raises(ValueError) as err:
        load_study(path)
    assert "bad-study.toml" in str(err.value)
    assert key in str(err.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_study(tmp_path / "absent.toml")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_study(write(tmp_path, "seeds = = 2", "broken"))


# --- points and seeds ----------------------------------------------------------------------

def test_grid_expansion_order(tmp_path):
    spec = load_study(write(tmp_path))
    points = spec.points()
    assert [p.index for p in points] == list(range(40))
    # first grid parameter varies slowest, seed index fastest
    assert [(p.params["adc_bits"], p.params["time_s"], p.params["device"], p.seed_index)
            for p in points[:5]] == [(4, 1, "pcm-generic", 0), (4, 1, "pcm-generic", 1),
                                     (4, 1, "rram-cmo", 0), (4, 1, "rram-cmo", 1),
                                     (4, 86400, "pcm-generic", 0)]
    assert points[-1].params == {"adc_bits": 10, "time_s": 86400, "device": "rram-cmo"}
    # the evaluator sees the full config: cards, [fixed], grid values
    assert points[0].config == {"workload": "digits-cnn", "chip": "hermes-64core",
                                "tile": "hermes-core", "batch": 64, "adc_bits": 4,
                                "time_s": 1, "device": "pcm-generic"}
    assert points[0].config_hash == points[1].config_hash == config_hash(points[0].config)
    assert len({p.key for p in points}) == 40
    assert len({p.seed for p in points}) == 40  # independent streams
    assert all(0 <= p.seed < 2**63 for p in points)  # fits a SQLite INTEGER
    assert spec.points() == points  # deterministic


def test_seeds_do_not_depend_on_other_points(tmp_path):
    before = {p.key: p.seed for p in load_study(write(tmp_path)).points()}
    grown = STUDY.replace("adc_bits = [4, 5, 6, 8, 10]", "adc_bits = [3, 4, 5, 6, 7, 8, 10]")
    grown = grown.replace('device = ["pcm-generic", "rram-cmo"]',
                          'device = ["rram-cmo", "pcm-hermes-2dev", "pcm-generic"]')
    grown = grown.replace("seeds = 2", "seeds = 3")
    after = {p.key: p.seed for p in load_study(write(tmp_path, grown, "grown")).points()}
    assert len(after) == 7 * 2 * 3 * 3
    assert set(before) < set(after)
    assert all(after[k] == s for k, s in before.items())
    # another base seed or another fixed card gives other seeds and other keys
    other = load_study(write(tmp_path, STUDY.replace("base_seed = 2024", "base_seed = 1"), "o"))
    assert not {p.seed for p in other.points()} & set(before.values())
    moved = load_study(write(tmp_path, STUDY.replace('"hermes-core"', '"isaac-xbar"'), "m"))
    assert not {p.key for p in moved.points()} & set(before)


def test_quick_overrides(tmp_path):
    spec = load_study(write(tmp_path))
    quick = spec.points(quick=True)
    assert len(quick) == 8
    assert {p.params["adc_bits"] for p in quick} == {4, 8}
    assert {p.seed_index for p in quick} == {0}
    assert {p.params["time_s"] for p in quick} == {1, 86400}  # not overridden
    full = {p.key: p.seed for p in spec.points()}
    assert all(full[p.key] == p.seed for p in quick)  # quick points are full points


# --- store ---------------------------------------------------------------------------------

def test_store_rows_transactions_and_dataframe(tmp_path):
    path = store_path(tmp_path, "s")
    with ResultStore(path) as store:
        assert store.done_keys() == set() and store.count() == 0
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.add_error(config_hash="h1", seed_index=0, params={"adc_bits": 4}, seed=11,
                        error="RuntimeError: x", traceback="Traceback ...", started=1.0,
                        finished=2.0, host="a")
        store.add(config_hash="h1", seed_index=0, params={"adc_bits": 4, "tile": "t"},
                  seed=11, metrics={"accuracy": 0.9}, started=1.0, finished=3.5, host="a")
        assert store.errors() == []  # cleared by the success, same transaction
        store.add(config_hash="h2", seed_index=1, params={"adc_bits": 8, "tile": "t"},
                  seed=12, metrics={"accuracy": 0.95}, started=2.0, finished=3.0, host="b")
        with pytest.raises(memsim.StoreError, match="never replaced"):  # never replaced
            store.add(config_hash="h2", seed_index=1, params={}, seed=0, metrics={},
                      started=0, finished=0, host="c")
        # an interrupt inside a transaction rolls it back: no partial row
        with pytest.raises(KeyboardInterrupt), store._transaction() as cur:
            cur.execute("INSERT INTO results VALUES ('h3', 0, '{}', 0, '{}', 'v', 0, 0, 0, 'x', "
                        "'{}')")
            raise KeyboardInterrupt
        assert store.done_keys() == {("h1", 0), ("h2", 1)}
        rows = store.rows()
        assert [r.metrics for r in rows] == [{"accuracy": 0.9}, {"accuracy": 0.95}]
        assert rows[0].wall_s == pytest.approx(2.5)
        assert rows[0].memsim_version == memsim.__version__
        df = store.to_dataframe()
        assert list(df.columns) == ["config_hash", "seed_index", "seed", "adc_bits", "tile",
                                    "accuracy", "memsim_version", "started", "finished",
                                    "wall_s", "host"]
        assert df["accuracy"].tolist() == [0.9, 0.95]
        assert len(store.to_dataframe(keys=[("h2", 1)])) == 1
    with ResultStore(path) as again:  # persisted
        assert again.count() == 2


# --- runs ----------------------------------------------------------------------------------

def test_serial_run_resume_and_quick(tmp_path):
    spec = load_study(write(tmp_path))
    out = tmp_path / "out"
    s = run_study(spec, toy_evaluate, out, quick=True, workers=0, progress=False)
    assert isinstance(s, RunSummary)
    assert (s.total, s.already_done, s.computed, s.failed, s.interrupted) == (8, 0, 8, 0, False)
    s = run_study(spec, toy_evaluate, out, workers=0, progress=False)
    assert (s.total, s.already_done, s.computed, s.remaining) == (40, 8, 32, 0)
    s = run_study(spec, toy_evaluate, out, workers=0, progress=False)
    assert (s.already_done, s.computed) == (40, 0)
    reseeded = load_study(write(tmp_path, STUDY.replace("base_seed = 2024", "base_seed = 5")))
    with pytest.raises(ValueError, match="was base_seed changed"):  # never mix seeds
        run_study(reseeded, toy_evaluate, out, workers=0, progress=False)
    check_integrity(store_path(out, spec.name), 40)
    with ResultStore(store_path(out, spec.name)) as store:
        df = store.to_dataframe()
        assert store.meta("study")["grid"]["adc_bits"] == [4, 5, 6, 8, 10]
    assert {"adc_bits", "time_s", "device", "tile", "batch", "accuracy"} <= set(df.columns)
    point = spec.points()[7]
    row = df[(df.config_hash == point.config_hash) & (df.seed_index == point.seed_index)]
    assert row["accuracy"].item() == toy_evaluate(point.config, point.seed)["accuracy"]


def test_registry_and_spec_evaluator(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "EVALUATORS", {})
    register_evaluator("toy")(toy_evaluate)
    register_evaluator("toy")(toy_evaluate)  # same function again: fine
    with pytest.raises(ValueError, match="already registered"):
        register_evaluator("toy")(failing_evaluate)
    s = run_study(small(tmp_path), None, tmp_path / "out", workers=0, progress=False)
    assert s.computed == 12
    with pytest.raises(ValueError, match="unknown evaluator 'nope'; known: toy"):
        run_study(small(tmp_path), "nope", tmp_path / "out", workers=0, progress=False)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            run_study(small(tmp_path), toy_evaluate, tmp_path, workers=bad, progress=False)
    with pytest.raises(ValueError, match="not both"):
        run_study(small(tmp_path), toy_evaluate, tmp_path, workers=2,
                  scheduler="tcp://127.0.0.1:1", progress=False)


def test_failing_point_is_recorded_and_retried(tmp_path):
    path = small(tmp_path, seeds=1)
    out = tmp_path / "out"
    s = run_study(path, failing_evaluate, out, workers=0, progress=False)
    assert (s.total, s.computed, s.failed, s.remaining) == (6, 5, 1, 1)
    assert s.failures[0].params == {"adc_bits": 5, "time_s": 1}
    assert "toy failure" in s.failures[0].error and "toy failure" in str(s)
    with ResultStore(store_path(out, "small")) as store:
        (err,) = store.errors()
        assert err["params"]["adc_bits"] == 5
        assert "RuntimeError: toy failure at adc_bits=5" in err["traceback"]
        assert "failing_evaluate" in err["traceback"]
    s = run_study(path, failing_evaluate, out, workers=0, progress=False)  # retried, fails
    assert (s.already_done, s.computed, s.failed) == (5, 0, 1)
    s = run_study(path, toy_evaluate, out, workers=0, progress=False)  # fixed evaluator
    assert (s.already_done, s.computed, s.failed, s.remaining) == (5, 1, 0, 0)
    with ResultStore(store_path(out, "small")) as store:
        assert store.errors() == [] and store.count() == 6


def test_evaluator_result_is_checked(tmp_path):
    s = run_study(small(tmp_path, seeds=1), missing_metric_evaluate, tmp_path, workers=0,
                  progress=False)
    assert (s.computed, s.failed) == (0, 6)
    assert "lacks the study's metrics ['energy_j']" in s.failures[0].error


def test_ctrl_c_keeps_finished_points(tmp_path, capsys):
    path = small(tmp_path)
    s = run_study(path, InterruptAfter(5), tmp_path, workers=0, progress=False)
    assert s.interrupted and (s.computed, s.remaining) == (5, 7)
    assert "interrupted" in capsys.readouterr().err
    s = run_study(path, toy_evaluate, tmp_path, workers=0, progress=False)
    assert (s.already_done, s.computed, s.interrupted) == (5, 7, False)
    check_integrity(store_path(tmp_path, "small"), 12)


def _start_study_process(study: Path, out: Path, markers: Path, workers: int,
                         sleep_s: float, **popen) -> subprocess.Popen:
    script = ("from memsim.studies.runner import run_study\n"
              "from tests.test_study_engine import toy_evaluate\n"
              "if __name__ == '__main__':\n"
              f"    print(run_study({str(study)!r}, toy_evaluate, {str(out)!r}, "
              f"workers={workers}, progress=False))\n")
    env = {**os.environ, MARKERS_ENV: str(markers), SLEEP_ENV: str(sleep_s),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _wait_for_rows(proc: subprocess.Popen, db: Path, rows: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while db_count(db) < rows:
        if proc.poll() is not None:
            pytest.fail(f"study process ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {rows} rows after {timeout_s} s")
        time.sleep(0.02)


def _resume_and_compare(study: Path, out: Path, killed_rows: int, total: int,
                        tmp_path: Path, monkeypatch) -> None:
    markers = tmp_path / "markers-resume"
    markers.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(markers))
    monkeypatch.setenv(SLEEP_ENV, "0")
    s = run_study(study, toy_evaluate, out, workers=0, progress=False)
    # (a) only the missing points are computed
    assert (s.already_done, s.computed, s.failed) == (killed_rows, total - killed_rows, 0)
    assert len(list(markers.iterdir())) == total - killed_rows
    # (b) the same rows as an uninterrupted run in a fresh directory
    monkeypatch.delenv(MARKERS_ENV)
    fresh = run_study(study, toy_evaluate, tmp_path / "fresh", workers=0, progress=False)
    assert fresh.computed == total
    name = load_study(study).name
    assert by_key(store_path(out, name)) == by_key(store_path(tmp_path / "fresh", name))
    # (c) no duplicate, no partial row
    check_integrity(store_path(out, name), total)


def test_kill_9_then_resume(tmp_path, monkeypatch):
    study = small(tmp_path, grid="adc_bits = [4, 5, 6, 8, 10]\ntime_s = [1, 86400]")
    out, markers = tmp_path / "out", tmp_path / "markers-killed"
    markers.mkdir()
    db = store_path(out, "small")
    proc = _start_study_process(study, out, markers, workers=0, sleep_s=0.1)
    _wait_for_rows(proc, db, 4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    killed_rows = db_count(db)
    assert 4 <= killed_rows < 20, "the run finished before it was killed"
    # each stored point was evaluated once; at most one evaluation was lost with the kill
    assert killed_rows <= len(list(markers.iterdir())) <= killed_rows + 1
    _resume_and_compare(study, out, killed_rows, 20, tmp_path, monkeypatch)


def test_serial_equals_local_dask(tmp_path):
    study = small(tmp_path)
    serial = run_study(study, toy_evaluate, tmp_path / "serial", workers=0, progress=False)
    parallel = run_study(study, failing_evaluate, tmp_path / "dask", workers=2,
                         progress=False)
    assert (serial.computed, parallel.computed, parallel.failed) == (12, 10, 2)
    with ResultStore(store_path(tmp_path / "dask", "small")) as store:
        errors = store.errors()
        assert len(errors) == 2 and all("toy failure" in e["traceback"] for e in errors)
        assert len({r.host for r in store.rows()}) == 1
    a = by_key(store_path(tmp_path / "serial", "small"))
    b = by_key(store_path(tmp_path / "dask", "small"))
    assert len(b) == 10 and all(a[k] == v for k, v in b.items())
    # resume the failed points on an existing cluster given by its address
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        s = run_study(study, toy_evaluate, tmp_path / "dask", scheduler=cluster.scheduler_address,
                      progress=False)
    assert (s.already_done, s.computed, s.failed) == (10, 2, 0)
    assert by_key(store_path(tmp_path / "dask", "small")) == a


@pytest.mark.slow
def test_kill_9_dask_run_then_resume(tmp_path, monkeypatch):
    """SIGKILL the whole process group (main process and Dask workers) mid-run."""
    study = small(tmp_path, grid="adc_bits = [4, 5, 6, 8, 10]\ntime_s = [1, 86400]", seeds=3)
    out, markers = tmp_path / "out", tmp_path / "markers-killed"
    markers.mkdir()
    db = store_path(out, "small")
    proc = _start_study_process(study, out, markers, workers=2, sleep_s=0.3,
                                start_new_session=True)
    _wait_for_rows(proc, db, 6)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    killed_rows = db_count(db)
    assert 6 <= killed_rows < 30, "the run finished before it was killed"
    _resume_and_compare(study, out, killed_rows, 30, tmp_path, monkeypatch)


@pytest.mark.slow
def test_ctrl_c_dask_run(tmp_path):
    """SIGINT to a parallel run: it stops, closes its cluster, keeps rows, exits 0."""
    study = small(tmp_path, grid="adc_bits = [4, 5, 6, 8, 10]\ntime_s = [1, 86400]", seeds=3)
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    db = store_path(out, "small")
    proc = _start_study_process(study, out, markers, workers=2, sleep_s=0.3)
    _wait_for_rows(proc, db, 4)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "interrupted" in stdout and "run again to resume" in stderr
    kept = db_count(db)
    assert 4 <= kept < 30
    check_integrity(db, kept)
    s = run_study(study, toy_evaluate, out, workers=0, progress=False)
    assert (s.already_done, s.computed) == (kept, 30 - kept)
