"""collect and fit change DuckDB, parquet and JSON together or not at all: each is killed (SIGKILL) at random
moments, 20 times, and the leaderboard is then always the whole old state or the whole new one."""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.results import transaction
from synthetic_runs import make_grid, run_ids, write_params
from tests_paths import ROOT

pytestmark = pytest.mark.slow
KILLS = 20
TABLES = ("runs", "metrics", "predictions", "curves", "fits", "literature")


def snapshot(lb: Path) -> dict:
    """Every file's bytes (but the database's, whose bytes vary, and hidden staged ones) and every table's rows."""
    import duckdb

    out = {p.relative_to(lb).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
           for p in sorted(lb.rglob("*"))
           if p.is_file() and not p.name.startswith(("results.duckdb", "."))}  # staged files are not the record
    db = lb / "results.duckdb"
    if db.exists():
        with duckdb.connect(str(db), read_only=True) as con:
            for t in TABLES:
                out[f"table {t}"] = hashlib.sha256(repr(con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()).encode()).hexdigest()
    return out


def _cmd(repo: Path, command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "benchmark", *command], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _run(repo: Path, command: list[str]) -> float:
    t0 = time.perf_counter()
    proc = _cmd(repo, command)
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    return time.perf_counter() - t0


def _staging(lb: Path) -> bool:
    return any(lb.glob(f".*{transaction.MARK}*")) or any((lb / "data").glob(f".*{transaction.MARK}*"))


def _restore(lb: Path, old: Path) -> None:
    shutil.rmtree(lb)
    shutil.copytree(old, lb)


def _wait_staging(lb: Path, proc: subprocess.Popen, limit_s: float) -> float:
    deadline = time.time() + limit_s
    while not _staging(lb) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.001)
    return time.perf_counter()


def kill_trials(repo: Path, command: list[str], old: Path, old_state: dict, new_state: dict, full_s: float) -> dict:
    """Restore the old leaderboard, start `command`, SIGKILL it; half the kills at a uniform moment of its run,
    half at a uniform moment after it starts staging files (the write and commit window, measured first).
    Returns counts by outcome."""
    lb, rng, seen = repo / "leaderboard", random.Random(12), {"old": 0, "new": 0}
    _restore(lb, old)
    proc = _cmd(repo, command)
    t_stage = _wait_staging(lb, proc, 10 * full_s)
    proc.communicate()
    window = time.perf_counter() - t_stage
    for i in range(KILLS):
        _restore(lb, old)
        proc = _cmd(repo, command)
        if i % 2 == 0:
            time.sleep(rng.uniform(0, full_s * 1.1))
        else:
            _wait_staging(lb, proc, 10 * full_s)
            time.sleep(rng.uniform(0, window * 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if not (lb / transaction.JOURNAL).exists():  # not committed, or fully applied: already whole
            pre = snapshot(lb)
            assert pre in (old_state, new_state), f"kill {i}: a half-written leaderboard without a journal"
        transaction.recover(lb)
        assert not _staging(lb) and not (lb / transaction.JOURNAL).exists()
        state = snapshot(lb)
        assert state in (old_state, new_state), f"kill {i}: neither the old nor the new state"
        seen["old" if state == old_state else "new"] += 1
    return seen


def test_a_killed_collect_leaves_the_old_or_the_new_record(tmp_path):
    repo = tmp_path / "repo"
    ids = make_grid(repo, ids=run_ids(), predictions=2000)
    _run(repo, ["collect"])
    old, old_state = tmp_path / "old", snapshot(repo / "leaderboard")
    shutil.copytree(repo / "leaderboard", old)
    make_grid(repo, ids=ids, predictions=3000, shift=0.25)  # every row changes
    full_s = _run(repo, ["collect"])
    new_state = snapshot(repo / "leaderboard")
    assert new_state != old_state and all(new_state[k] != old_state[k] for k in new_state if "literature" not in k
                                         and "fits" not in k)
    seen = kill_trials(repo, ["collect"], old, old_state, new_state, full_s)
    print(f"collect: {seen} after {KILLS} kills")


def test_a_killed_fit_leaves_the_old_or_the_new_record(tmp_path):
    repo = tmp_path / "repo"
    fit_cmd = ["fit", "--data-dir", "leaderboard/data"]
    fast = {"bootstrap": 0, "downstream_bootstrap": 0, "downstream_metrics": [], "seed": 0}
    ids = make_grid(repo, tasks=("translation",), fit=fast)
    _run(repo, ["collect"])
    _run(repo, fit_cmd)
    old, old_state = tmp_path / "old", snapshot(repo / "leaderboard")
    shutil.copytree(repo / "leaderboard", old)
    write_params(repo / "params.yaml", ids, ("translation",), {**fast, "huber_delta": 0.01, "holdout": 0.3})
    full_s = _run(repo, fit_cmd)
    new_state = snapshot(repo / "leaderboard")
    for key in ("fits.json", "data/fits.parquet", "table fits"):
        assert new_state[key] != old_state[key], key
    seen = kill_trials(repo, fit_cmd, old, old_state, new_state, full_s)
    print(f"fit: {seen} after {KILLS} kills")
