"""`launch` end to end on the tiny grid, each in a temporary copy of the repository.

Local executor with 2 jobs against a sequential `dvc repro` (same files up to the fields that
measure time), `dvc status` clean afterwards; SIGKILL of the launcher's process group while two
points train, then a relaunch that resumes both from their checkpoints; a failing point; and the
same grid through a real one-node SLURM cluster (slurmctld + slurmd + munged on 127.0.0.1), with a
job cancelled by `scancel` mid-run.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from slurm_cluster import Cluster
from tests_paths import ROOT, TINY

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
GRID = [f"{s}-{k}k" for s in "abc" for k in (3, 6, 9)]
# fields of a runs row that measure time or speed (or when the run was made)
TIMED = {"wall_time_s", "tokens_per_s", "flops_per_s", "mfu", "peak_flops_per_s", "created_at",
         "warmup_s", "first_step_s", "data_wait_s"}


def _env(**extra) -> dict:
    return {**os.environ, "TOKENIZERS_PARALLELISM": "false", "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


def _git(cwd, *args) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _dvc(cwd, *args) -> str:
    r = subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, env=_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def _launch(cwd, *args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", "launch", "--poll-s", "0.3", *args], cwd=cwd,
                          env=env or _env(), capture_output=True, text=True, **kw)


def _stages_run(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}


def _assert_clean(repo: Path) -> None:
    assert "up to date" in _dvc(repo, "status").lower()
    assert _stages_run(_dvc(repo, "repro")) == set()


def _outputs(repo: Path, run_ids) -> dict:
    """Per run: train.json without its timed fields, metrics.json and predictions.parquet as bytes."""
    out = {}
    for rid in run_ids:
        d = repo / "runs" / rid
        row = json.loads((d / "train.json").read_text())
        out[rid] = {"train": {k: v for k, v in row.items() if k not in TIMED},
                    "metrics": (d / "metrics.json").read_bytes(),
                    "predictions": (d / "predictions.parquet").read_bytes()}
    return out


def _set_runs(repo: Path, **runs) -> None:
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    for rid, tokens in runs.items():
        if tokens is None:
            raw["runs"].pop(rid, None)
        else:
            raw["runs"][rid] = {"size": rid.split("-")[0], "tokens": tokens}
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A fresh copy of the tracked (and untracked, not ignored) files with params.yaml := configs/tiny.yaml."""
    dst = tmp_path_factory.mktemp("base")
    files = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    shutil.copy(TINY, dst / "params.yaml")
    _git(dst, "init", "-q")
    _git(dst, "add", "-A")
    _git(dst, "commit", "-qm", "copy")
    return dst


def _clone(base: Path, tmp_path_factory, name: str) -> Path:
    dst = tmp_path_factory.mktemp(name) / "repo"
    shutil.copytree(base, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def sequential(base, tmp_path_factory) -> dict:
    """The reference: the tiny grid by a plain sequential `dvc repro`."""
    repo = _clone(base, tmp_path_factory, "seq")
    _dvc(repo, "repro")
    return _outputs(repo, GRID)


@pytest.fixture(scope="module")
def launched(base, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, dict | None]:
    """The tiny grid by `launch --executor local --jobs 2`: the repo, the launcher's result, its outputs."""
    repo = _clone(base, tmp_path_factory, "par")
    r = _launch(repo, "--executor", "local", "--jobs", "2")
    return repo, r, _outputs(repo, GRID) if r.returncode == 0 else None


@pytest.mark.timeout(3600)  # two tiny grids, one after the other
def test_local_launch_equals_sequential_repro_and_leaves_dvc_clean(launched, sequential):
    repo, r, _ = launched
    assert r.returncode == 0, r.stderr[-4000:]
    assert "9 of 9 grid points to run" in r.stderr and "2 job(s) at once, 1 thread(s) each" in r.stderr
    ours = _outputs(repo, GRID)
    for rid in GRID:
        for name in ("train", "metrics", "predictions"):
            assert ours[rid][name] == sequential[rid][name], (rid, name)
    assert (repo / "leaderboard" / "fits.json").exists()
    _assert_clean(repo)


def test_relaunch_with_nothing_stale_runs_nothing(launched):
    repo, _, _ = launched
    r = _launch(repo)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "0 of 9 grid points to run" in r.stderr


@pytest.mark.timeout(3600)
def test_sigkill_of_the_launcher_group_then_relaunch_resumes_both_points(launched):
    repo, _, _ = launched
    before = {rid: (repo / "runs" / rid / "train.json").read_bytes() for rid in GRID}
    new = ("a-30k", "b-30k")
    _set_runs(repo, **{rid: 30000 for rid in new})
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "launch", "--jobs", "2", "--poll-s", "0.3"], cwd=repo,
                            env=_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    midway = lambda rid: any((repo / "runs" / rid / "checkpoints").glob("step_*"))  # noqa: E731
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not all(midway(rid) for rid in new):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and every job it started
    proc.wait()
    assert all(midway(rid) for rid in new), "the kill must land while both new points train"
    assert not any((repo / "runs" / rid / "train.json").exists() for rid in new)

    r = _launch(repo, "--jobs", "2")
    assert r.returncode == 0, r.stderr[-4000:]
    assert "2 of 11 grid points to run: a-30k, b-30k" in r.stderr
    logs = {rid: (repo / ".dvc" / "tmp" / "launch" / "logs" / f"{rid}.log").read_text() for rid in new}
    for rid in new:
        assert f"resuming {rid} from step" in logs[rid].split("=== launch")[-1], logs[rid][-2000:]
        row = json.loads((repo / "runs" / rid / "train.json").read_text())
        assert row["status"] == "completed" and row["tokens"] >= 30000
    assert {rid: (repo / "runs" / rid / "train.json").read_bytes() for rid in GRID} == before
    _assert_clean(repo)  # the grid keeps these two points (11) for the next test


@pytest.mark.timeout(3600)
def test_a_failing_point_does_not_stop_the_others_and_a_relaunch_runs_only_it(launched):
    repo, _, _ = launched
    _set_runs(repo, **{"a-12k": 12000, "b-12k": 12000, "c-12k": 12000})
    blocker = repo / "runs" / "c-12k" / "checkpoints"  # a file where train keeps its checkpoint folder: it raises
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    r = _launch(repo, "--jobs", "2")
    assert r.returncode == 1, r.stderr[-4000:]
    assert "3 of 14 grid points to run" in r.stderr
    # the stage's NotADirectoryError reaches `python -m benchmark` as a one-line error about a bad file: exit 2
    assert "failed: c-12k: train@c-12k: exit code 2" in r.stderr
    assert "error: runs/c-12k/checkpoints: Not a directory" in (repo / ".dvc" / "tmp" / "launch" / "logs" / "c-12k.log").read_text()
    stale = _dvc(repo, "status")
    assert "train@a-12k" not in stale and "evaluate@b-12k" not in stale  # the others finished and are recorded
    assert "train@c-12k" in stale

    blocker.unlink()
    r = _launch(repo, "--jobs", "2")
    assert r.returncode == 0, r.stderr[-4000:]
    assert "1 of 14 grid points to run: c-12k" in r.stderr
    _assert_clean(repo)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node SLURM cluster on 127.0.0.1 (no skip: a machine that cannot run it fails here, saying why)."""
    cluster = Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield cluster
    cluster.stop()


@pytest.mark.timeout(3600)  # the tiny grid twice (local, SLURM), then a cancelled point and its relaunch
def test_slurm_executor_equals_the_local_one_and_a_cancelled_job_is_relaunchable(base, launched, slurm, tmp_path_factory):
    local = launched[2]
    assert local is not None, launched[1].stderr[-3000:]
    repo = _clone(base, tmp_path_factory, "slurm_repo")
    env = _env(SLURM_CONF=slurm.env["SLURM_CONF"])
    r = _launch(repo, "--executor", "slurm", "--time-min", "30", env=env)
    assert r.returncode == 0, r.stderr[-4000:] + slurm.logs()
    assert _outputs(repo, GRID) == local  # equal to a sequential `dvc repro`'s too (first test)
    _assert_clean(repo)
    log = (repo / ".dvc" / "tmp" / "launch" / "logs" / "a-3k.log").read_text()
    assert "submitted SLURM job" in log

    _set_runs(repo, **{"a-30k": 30000})
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "launch", "--executor", "slurm", "--poll-s", "0.3"],
                            cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpts = repo / "runs" / "a-30k" / "checkpoints"
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not any(ckpts.glob("step_*")):
        time.sleep(0.05)
    jobs = [j for j in slurm.squeue() if j[1] == "bench-a-30k"]
    assert jobs, "the point's job must be in the queue while it trains"
    subprocess.run(["scancel", jobs[0][0]], env=env, check=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-4000:]
    assert f"failed: a-30k: SLURM job {jobs[0][0]}: CANCELLED" in err
    assert "train@a-30k" in _dvc(repo, "status")

    r = _launch(repo, "--executor", "slurm", env=env)
    assert r.returncode == 0, r.stderr[-4000:] + slurm.logs()
    assert "1 of 10 grid points to run: a-30k" in r.stderr
    tail = (repo / ".dvc" / "tmp" / "launch" / "logs" / "a-30k.log").read_text().split("=== launch")[-1]
    assert "resuming a-30k from step" in tail
    _assert_clean(repo)
