"""The results store reports, never crashes; concurrent runs share the work; the cluster.

Every failure of the store (a garbage, damaged or truncated file, a lock held elsewhere, a
full disk, a read-only folder), of the file system or of the cluster (a scheduler that
never answers, a closed port, Ctrl-C while the cluster starts) must end in one clear
message of memsim's own type that names the file or the address, with exit code != 0 from
the CLI, and must keep every finished point. Two runs of one study at once split the grid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import memsim
from memsim.cli import main
from memsim.studies import runner
from memsim.studies import store as store_mod
from memsim.studies.runner import NoValue, run_study
from memsim.studies.store import Owner, ResultStore, set_aside, store_path
from tests.test_study_engine import (
    MARKERS_ENV,
    ROOT,
    SLEEP_ENV,
    by_key,
    check_integrity,
    small,
    toy_evaluate,
)

PY = sys.executable


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    """The CLI finds the toy evaluator of the study files by its name."""
    monkeypatch.setattr(runner, "EVALUATORS", {**runner.EVALUATORS, "toy": toy_evaluate})


def make_store(tmp_path: Path, rows: int = 3, name: str = "s") -> Path:
    path = store_path(tmp_path, name)
    with ResultStore(path) as store:
        for k in range(rows):
            store.add(config_hash=f"h{k}", seed_index=0, params={"adc_bits": k}, seed=k,
                      metrics={"accuracy": 0.5 + k / 100}, started=0.0, finished=1.0,
                      host="x")
    return path


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_clear_line(err: str, *needles: str) -> None:
    """One error line on stderr, no traceback, naming what it should."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("memsim: ")]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


# --- damaged, foreign and locked stores ------------------------------------------------------

def test_garbage_file_is_a_clear_error(tmp_path, capsys):
    path = store_path(tmp_path, "small")
    path.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(memsim.StoreError, match="not a memsim results store") as err:
        ResultStore(path)
    assert str(path) in str(err.value) and "--restart" in str(err.value)
    with pytest.raises(memsim.StoreError, match="not a memsim results store"):
        ResultStore(path, readonly=True)
    study = small(tmp_path)
    code, _, stderr = cli(["study", "run", str(study), "--workers", "0", "--out",
                           str(tmp_path)], capsys)
    assert code == 2
    one_clear_line(stderr, str(path), "--restart")
    assert path.read_bytes().startswith(b"this is not")  # nothing overwritten


def test_corrupted_and_truncated_files(tmp_path):
    path = make_store(tmp_path, rows=400)
    with ResultStore(path) as s:
        s._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    assert len(data) > 8192
    # truncated: the header is intact, the pages it promises are missing
    path.write_bytes(data[: len(data) // 2])
    for readonly in (False, True):
        with pytest.raises(memsim.StoreError) as err:
            with ResultStore(path, readonly=readonly) as s:
                s.rows()
        assert str(path) in str(err.value)
        assert "damaged" in str(err.value) or "not a memsim" in str(err.value)
    # corrupted: garbage over the pages after the first one
    page = 4096
    path.write_bytes(data[:page] + os.urandom(len(data) - page))
    with pytest.raises(memsim.StoreError, match=r"damaged|not a memsim") as err:
        with ResultStore(path) as s:
            s.rows()
    assert str(path) in str(err.value)


def test_foreign_sqlite_database(tmp_path):
    path = store_path(tmp_path, "s")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE results (id INTEGER, name TEXT)")
    with pytest.raises(memsim.StoreError, match=r"not a memsim results store.*lacks"):
        ResultStore(path)


def test_store_path_is_a_folder(tmp_path):
    path = store_path(tmp_path, "s")
    path.mkdir()
    with pytest.raises(memsim.StoreError, match="is a folder"):
        ResultStore(path)


def _hold_write_lock(path: Path, seconds: float) -> subprocess.Popen:
    script = ("import sqlite3, sys, time\n"
              f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
              "c.execute('BEGIN IMMEDIATE')\n"
              "print('locked', flush=True)\n"
              f"time.sleep({seconds})\n")
    proc = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_held_by_another_process(tmp_path):
    path = make_store(tmp_path)
    holder = _hold_write_lock(path, 30)
    try:
        t0 = time.monotonic()
        with ResultStore(path, lock_timeout_s=0.3) as store:
            assert store.count() == 3  # readers are not blocked (WAL)
            with pytest.raises(memsim.StoreError, match="locked by another process") as err:
                store.add(config_hash="new", seed_index=0, params={}, seed=1,
                          metrics={"accuracy": 1.0}, started=0, finished=1, host="x")
        assert time.monotonic() - t0 < 10
        assert str(path) in str(err.value) and "0.3 s" in str(err.value)
        with pytest.raises(memsim.StoreError, match="locked"):
            run_study(small(tmp_path, name="s"), toy_evaluate, tmp_path, workers=0,
                      progress=False, lock_timeout_s=0.3)
    finally:
        holder.kill()
        holder.wait()
    with ResultStore(path) as store:  # nothing was lost
        assert store.count() == 3


def test_disk_full_keeps_finished_points_and_resumes(tmp_path, monkeypatch):
    """SQLITE_FULL (as on a full disk) after some points: a clear error, rows kept."""
    study = small(tmp_path, grid="adc_bits = [4, 5, 6, 8, 10]\ntime_s = [1, 86400]")
    out = tmp_path / "out"
    real_connect = sqlite3.connect
    state = {"limit": True}

    def small_disk(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        if state["limit"]:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {max(pages, 8) + 1}")
        return conn

    monkeypatch.setattr(store_mod.sqlite3, "connect", small_disk)
    with pytest.raises(memsim.StoreError, match="is full") as err:
        run_study(study, toy_evaluate, out, workers=0, progress=False)
    assert str(store_path(out, "small")) in str(err.value)
    state["limit"] = False
    with ResultStore(store_path(out, "small")) as store:
        kept = store.count()
        assert store.claims() == {}  # released, or taken back below
    s = run_study(study, toy_evaluate, out, workers=0, progress=False)
    assert (s.already_done, s.computed, s.failed) == (kept, 20 - kept, 0)
    fresh = run_study(study, toy_evaluate, tmp_path / "fresh", workers=0, progress=False)
    assert fresh.computed == 20
    assert by_key(store_path(out, "small")) == by_key(store_path(tmp_path / "fresh", "small"))


def test_cli_disk_full_message(tmp_path, monkeypatch, capsys):
    real_connect = sqlite3.connect

    def full(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA max_page_count = 1")
        return conn

    monkeypatch.setattr(store_mod.sqlite3, "connect", full)
    code, _, err = cli(["study", "run", str(small(tmp_path)), "--workers", "0", "--out",
                        str(tmp_path / "o")], capsys)
    assert code == 2
    one_clear_line(err, "full", "small.sqlite")


# --- read-only folders and media ---------------------------------------------------------------

def _drop_dac_capabilities() -> None:
    """In a child of root, before exec: drop the capabilities that let root write to
    read-only files and folders (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), as a read-only
    medium would refuse the write."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _as_other_user(cmd: list[str], scratch: Path, **kw) -> subprocess.CompletedProcess:
    """Run ``cmd`` so that 0555/0444 folders and files are read-only to it (as root, the
    capabilities to override file permissions are dropped first)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLCONFIGDIR": str(scratch / "mpl"),
           "NUMBA_CACHE_DIR": str(scratch / "numba")}
    if os.geteuid() == 0:
        kw["preexec_fn"] = _drop_dac_capabilities
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                          cwd=scratch, **kw)


@pytest.fixture
def readonly_base():
    """(a folder to fill then lock down, a scratch folder the child process may write)."""
    base = Path(tempfile.mkdtemp(prefix="memsim-ro-", dir="/tmp"))
    os.chmod(base, 0o755)
    ro, scratch = base / "ro", base / "scratch"
    ro.mkdir()
    scratch.mkdir()
    os.chmod(scratch, 0o777)
    yield ro, scratch
    for p in [ro, *ro.rglob("*")]:
        os.chmod(p, 0o755)
    shutil.rmtree(base, ignore_errors=True)


def _lock_down(folder: Path) -> None:
    for p in [*folder.rglob("*"), folder]:
        os.chmod(p, 0o555 if p.is_dir() else 0o444)


def test_show_and_report_on_read_only_media(readonly_base, tmp_path):
    ro, scratch = readonly_base
    study = shutil.copy(small(tmp_path), ro / "small.toml")
    s = run_study(study, toy_evaluate, ro, workers=0, progress=False)
    assert s.computed == 12
    db = store_path(ro, "small")
    assert not Path(str(db) + "-wal").exists()  # closed cleanly: WAL checkpointed
    _lock_down(ro)
    before = db.read_bytes()
    try:
        probe = _as_other_user([PY, "-c", f"open({str(ro / 'probe')!r}, 'w')"], scratch)
    except (OSError, subprocess.SubprocessError) as exc:  # no capability to drop them
        pytest.skip(f"cannot make a folder read-only for a child process here: {exc}")
    if probe.returncode == 0:
        pytest.skip("cannot make a folder read-only for a child process here")
    res = _as_other_user([PY, "-m", "memsim", "study", "show", str(study), "--json",
                          "--out", str(ro)], scratch)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 6 and all(isinstance(r["accuracy"], float) for r in rows)
    # run and report need to write: one clear line naming the folder, exit code != 0
    for action in (["run", "--workers", "0"], ["report"]):
        res = _as_other_user([PY, "-m", "memsim", "study", action[0], str(study),
                              *action[1:], "--out", str(ro)], scratch)
        assert res.returncode != 0, res.stdout
        one_clear_line(res.stderr, str(ro), "--out")
    assert db.read_bytes() == before  # never written


def test_readonly_open_writes_nothing(tmp_path):
    path = make_store(tmp_path)
    with ResultStore(path) as s:
        s._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.read_bytes()
    with ResultStore(path, readonly=True) as store:
        assert store.count() == 3 and len(store.to_dataframe()) == 3
        with pytest.raises(memsim.StoreError, match="read-only"):
            store.set_meta("x", 1)
    assert path.read_bytes() == before
    with pytest.raises(memsim.StoreError, match=r"does not exist.*run it first"):
        ResultStore(tmp_path / "absent.sqlite", readonly=True)
    assert not (tmp_path / "absent.sqlite").exists()


def test_store_of_memsim_0_1_0_is_upgraded(tmp_path):
    """A store written before the claims table and the missing column opens (read or run)."""
    path = store_path(tmp_path, "small")
    with sqlite3.connect(path) as conn:
        conn.executescript(store_mod._SCHEMA.replace(
            "    missing TEXT NOT NULL DEFAULT '{}',\n", "").split("CREATE TABLE IF NOT EXISTS "
                                                               "claims")[0])
        conn.execute("INSERT INTO results VALUES ('h', 0, '{}', 1, '{\"accuracy\": 0.5}', "
                     "'0.1.0', 0, 1, 1, 'x')")
    with ResultStore(path, readonly=True) as store:
        assert store.rows()[0].metrics == {"accuracy": 0.5} and store.claims() == {}
    s = run_study(small(tmp_path), toy_evaluate, tmp_path, workers=0, progress=False)
    assert s.computed == 12
    with ResultStore(path) as store:
        assert store.count() == 13


# --- NaN metrics ----------------------------------------------------------------------------------

def nan_evaluate(config: dict, seed: int) -> dict:
    res = toy_evaluate(config, seed)
    if config["adc_bits"] == 4:
        res["accuracy"] = float("nan")
    if config["adc_bits"] == 5:
        res["accuracy"] = NoValue("layer-shape network: no accuracy")
    if config["adc_bits"] == 6:
        res["energy_j"] = float("inf")
    return res


def test_nan_metrics_are_valid_json_with_a_reason(tmp_path, capsys):
    s = run_study(small(tmp_path, seeds=1), nan_evaluate, tmp_path, workers=0, progress=False)
    assert (s.computed, s.failed) == (6, 0)
    db = store_path(tmp_path, "small")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT MIN(json_valid(metrics)), MIN(json_valid(missing)) "
                            "FROM results").fetchone() == (1, 1)
        acc = dict(conn.execute("SELECT json_extract(params, '$.adc_bits'), "
                                "json_extract(metrics, '$.accuracy') FROM results"))
        reasons = dict(conn.execute("SELECT json_extract(params, '$.adc_bits'), "
                                    "json_extract(missing, '$.accuracy') FROM results"))
    assert acc[4] is None and acc[5] is None and isinstance(acc[6], float)
    assert "nan" in reasons[4] and reasons[5] == "layer-shape network: no accuracy"
    with ResultStore(db, readonly=True) as store:
        df = store.to_dataframe()
        row = next(r for r in store.rows() if r.params["adc_bits"] == 6)
    assert row.metrics["energy_j"] is None and "inf" in row.missing["energy_j"]
    assert df["accuracy"].dtype == float and df["accuracy"].isna().sum() == 4  # 2 pts x 2 t
    assert main(["study", "show", str(small(tmp_path, seeds=1)), "--out", str(tmp_path)]) == 0
    assert "—" in capsys.readouterr().out


# --- concurrent runs: claims ----------------------------------------------------------------------

def test_claims_live_expired_and_dead(tmp_path):
    path = make_store(tmp_path, rows=1)
    me, other = Owner.this_process(), Owner("elsewhere:1:x", "elsewhere", 1)
    keys = [("a", 0), ("b", 0), ("h0", 0)]
    with ResultStore(path) as store:
        res = store.claim(keys, other)
        assert res.claimed == [("a", 0), ("b", 0)] and res.done == [("h0", 0)]
        res = store.claim(keys, me)  # the other run's claims are live
        assert res.claimed == [] and set(res.busy) == {("a", 0), ("b", 0)}
        assert "process 1 on elsewhere" in res.busy[("a", 0)].describe()
        res = store.claim(keys, me, ttl_s=1e-9)  # ... until their heartbeat is too old
        assert res.claimed == [("a", 0), ("b", 0)]
        store.release(me)
        # a run of this host whose process is gone: its claims are dead at once
        dead = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
        ghost = Owner(f"{socket.gethostname()}:x", socket.gethostname(),
                      int(dead.stdout))
        store.claim([("a", 0)], ghost)
        assert store.claim([("a", 0)], me).claimed == [("a", 0)]
        assert store.heartbeat(me) == 1
        store.add(config_hash="a", seed_index=0, params={}, seed=0, metrics={}, started=0,
                  finished=0, host="x")
        assert store.claims() == {}  # a stored result drops its claim


def test_claims_of_a_live_run_are_respected_then_expire(tmp_path):
    study = small(tmp_path, seeds=1)
    spec_points = memsim.studies.spec.load_study(study).points()
    path = store_path(tmp_path, "small")
    other = Owner("elsewhere:7:y", "elsewhere", 7)
    with ResultStore(path) as store:
        store.claim([p.key for p in spec_points[:2]], other)
    s = run_study(study, toy_evaluate, tmp_path, workers=0, progress=False)
    assert (s.computed, s.running_elsewhere, s.remaining) == (4, 2, 2)
    assert "being computed by another run" in str(s) and "elsewhere" in str(s)
    s = run_study(study, toy_evaluate, tmp_path, workers=0, progress=False, claim_ttl_s=1e-6)
    assert (s.already_done, s.computed, s.remaining) == (4, 2, 0)  # expired: taken over


def _start_cli_run(study: Path, out: Path, markers: Path, workers: int, sleep_s: float,
                   **popen) -> subprocess.Popen:
    script = ("import sys\n"
              "from memsim.studies.runner import register_evaluator\n"
              "from tests.test_study_engine import toy_evaluate\n"
              "register_evaluator('toy')(toy_evaluate)\n"
              "from memsim.cli import main\n"
              "if __name__ == '__main__':\n"
              f"    sys.exit(main(['study', 'run', {str(study)!r}, '--workers', "
              f"'{workers}', '--out', {str(out)!r}]))\n")
    env = {**os.environ, MARKERS_ENV: str(markers), SLEEP_ENV: str(sleep_s),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([PY, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.parametrize("workers", [(0, 0), (0, 2)], ids=["serial+serial", "serial+dask"])
def test_two_runs_of_one_study_split_the_grid(tmp_path, workers):
    study = small(tmp_path, grid="adc_bits = [4, 5, 6, 8, 10]\ntime_s = [1, 86400]", seeds=3)
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    procs = [_start_cli_run(study, out, markers, w, 0.15) for w in workers]
    results = [p.communicate(timeout=240) for p in procs]
    for p, (_, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr
        assert "Traceback" not in stderr and "IntegrityError" not in stderr
    # every point was computed exactly once, by one of the two runs
    assert len(list(markers.iterdir())) == 30
    computed = [int(stdout.split(" computed now")[0].rsplit(", ", 1)[1])
                for stdout, _ in results]
    assert sum(computed) == 30 and all(c > 0 for c in computed), results
    check_integrity(store_path(out, "small"), 30)
    fresh = run_study(study, toy_evaluate, tmp_path / "fresh", workers=0, progress=False)
    assert fresh.computed == 30
    assert by_key(store_path(out, "small")) == by_key(store_path(tmp_path / "fresh", "small"))
    with ResultStore(store_path(out, "small"), readonly=True) as store:
        assert store.claims() == {}


def test_restart_sets_the_store_aside(tmp_path, capsys):
    study = small(tmp_path, seeds=1)
    path = store_path(tmp_path, "small")
    path.write_bytes(b"garbage" * 10)
    code, out, err = cli(["study", "run", str(study), "--workers", "0", "--restart", "--out",
                          str(tmp_path)], capsys)
    assert code == 0, err
    assert "0 already done, 6 computed now" in out and "moved to" in err
    (aside,) = tmp_path.glob("small.sqlite.*.old")
    assert aside.read_bytes() == b"garbage" * 10  # nothing deleted
    with ResultStore(path) as store:
        store.claim([("x", 0)], Owner("elsewhere:2:z", "elsewhere", 2))
    with pytest.raises(memsim.StoreError, match="in use: another run"):
        set_aside(path)


# --- the cluster ------------------------------------------------------------------------------

@pytest.fixture
def silent_peer():
    """A TCP server that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def test_scheduler_that_never_answers_times_out(tmp_path, silent_peer, capsys):
    t0 = time.monotonic()
    with pytest.raises(memsim.ClusterError, match="did not answer within 1 s") as err:
        run_study(small(tmp_path), toy_evaluate, tmp_path, scheduler=silent_peer,
                  connect_timeout_s=1.0, progress=False)
    assert time.monotonic() - t0 < 15
    assert silent_peer in str(err.value)
    with ResultStore(store_path(tmp_path, "small"), readonly=True) as store:
        assert store.claims() == {}  # released
    code, _, stderr = cli(["study", "run", str(small(tmp_path)), "--scheduler", silent_peer,
                           "--connect-timeout", "0.5", "--out", str(tmp_path)], capsys)
    assert code == 2
    one_clear_line(stderr, silent_peer, "--connect-timeout")


def test_scheduler_at_a_closed_port_or_bad_address(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    t0 = time.monotonic()
    code, _, err = cli(["study", "run", str(small(tmp_path)), "--scheduler",
                        f"tcp://127.0.0.1:{port}", "--out", str(tmp_path)], capsys)
    assert code == 2 and time.monotonic() - t0 < 10
    one_clear_line(err, f"tcp://127.0.0.1:{port}", "nothing listens")
    code, _, err = cli(["study", "run", str(small(tmp_path)), "--scheduler", "tcp://nohost",
                        "--out", str(tmp_path)], capsys)
    assert code == 2
    one_clear_line(err, "tcp://nohost", "not a scheduler address")
    with pytest.raises(SystemExit) as exit_:
        main(["study", "run", str(small(tmp_path)), "--connect-timeout", "-1"])
    assert exit_.value.code == 2 and "--connect-timeout" in capsys.readouterr().err


def _process_group_gone(pgid: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_while_the_local_cluster_starts(tmp_path):
    """SIGINT to the whole process group while LocalCluster is starting: the run stops
    (exit code 130, 'interrupted'), closes what started, and leaves no process behind."""
    study = small(tmp_path, grid="adc_bits = [4, 5, 6, 8, 10]\ntime_s = [1, 86400]", seeds=3)
    started = tmp_path / "cluster-starting"
    script = ("import sys, distributed, pathlib\n"
              "real = distributed.LocalCluster.__init__\n"
              "def init(self, *a, **k):\n"
              f"    pathlib.Path({str(started)!r}).touch()\n"
              "    real(self, *a, **k)\n"
              "distributed.LocalCluster.__init__ = init\n"
              "from memsim.studies.runner import register_evaluator\n"
              "from tests.test_study_engine import toy_evaluate\n"
              "register_evaluator('toy')(toy_evaluate)\n"
              "from memsim.cli import main\n"
              "if __name__ == '__main__':\n"
              f"    sys.exit(main(['study', 'run', {str(study)!r}, '--workers', '2', "
              f"'--out', {str(tmp_path)!r}]))\n")
    env = {**os.environ, SLEEP_ENV: "0.2",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([PY, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not started.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the cluster never started"
        time.sleep(0.01)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert _process_group_gone(proc.pid), "worker processes were left running"
    with ResultStore(store_path(tmp_path, "small"), readonly=True) as store:
        assert store.claims() == {}
        assert store.count() < 30  # it did not go on to the end
