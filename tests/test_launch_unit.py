"""`launch` on a toy pipeline of shell commands (seconds): whatever dvc.yaml holds is split into upstream
stages, grid points and downstream stages; stale points run as jobs, are committed, and a failing
point is reported and re-run alone. Also the live table and the torchrun wrapping."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmark.launching import dvc as launch_dvc
from slurm_cluster import Cluster
from benchmark.launching.job import torchrun_argv
from benchmark.launching.table import Table

BIN = Path(sys.executable).parent
DVC_YAML = """
stages:
  check:                      # upstream of every point, like a parameter check
    cmd: echo checked > checked.txt
    params: [runs]
    outs: [checked.txt]
  make:
    foreach: ${runs}
    do:
      cmd: test ${item.n} -ge 0 && sleep ${item.s} && mkdir -p out && (cat checked.txt; echo ${key} ${item.n}) > out/${key}.a
      deps: [checked.txt]
      params:
        - runs.${key}
      outs:
        - out/${key}.a
  use:
    foreach: ${runs}
    do:
      cmd: (cat out/${key}.a; echo "$DVC_STAGE") > out/${key}.b
      deps:
        - out/${key}.a
      outs:
        - out/${key}.b
  total:
    cmd: cat out/*.b > total.txt
    deps: [out]
    outs: [total.txt]
"""


def _env() -> dict:
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(cwd, *argv) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), cwd=cwd, env=_env(), capture_output=True, text=True)


def _launch(cwd, *args, env=None, popen=False):
    root = Path(__file__).resolve().parents[1]
    env = {**(env or _env()), "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    argv = [sys.executable, "-m", "benchmark", "launch", "--poll-s", "0.1", *args]
    if popen:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture
def toy(tmp_path) -> Path:
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"runs": {"p1": {"n": 1, "s": 0}, "p2": {"n": 2, "s": 0},
                                                                        "p3": {"n": -3, "s": 0}}}))
    for argv in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        assert _run(tmp_path, *argv).returncode == 0
    return tmp_path


def test_classify_splits_the_pipeline_from_dvc_yaml_alone(toy):
    pipe = launch_dvc.classify(toy)
    assert pipe.upstream == ["check"] and pipe.upstream_stale == ["check"]
    assert pipe.downstream == ["total"]
    assert list(pipe.points) == ["p1", "p2", "p3"]
    assert pipe.points["p1"].stages == ["make@p1", "use@p1"] == pipe.points["p1"].stale


def test_launch_runs_points_commits_them_and_reruns_only_the_failed_one(toy):
    r = _launch(toy, "--jobs", "2")
    assert r.returncode == 1, r.stderr
    assert "upstream: dvc repro check" in r.stderr and "3 of 3 grid points to run" in r.stderr
    assert "failed: p3: make@p3: exit code 1" in r.stderr
    assert (toy / "out" / "p2.b").read_text() == "checked\np2 2\nuse@p2\n"  # the command ran as DVC runs it
    assert not (toy / "total.txt").exists()  # downstream waits for every point
    status = _run(toy, str(BIN / "dvc"), "status").stdout
    assert "make@p3" in status and "make@p1" not in status and "use@p2" not in status

    raw = yaml.safe_load((toy / "params.yaml").read_text())
    raw["runs"]["p3"]["n"] = 3
    (toy / "params.yaml").write_text(yaml.safe_dump(raw))
    r = _launch(toy, "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "1 of 3 grid points to run: p3" in r.stderr
    assert (toy / "total.txt").read_text().count("use@") == 3
    assert "up to date" in _run(toy, str(BIN / "dvc"), "status").stdout.lower()
    assert "Running stage" not in _run(toy, str(BIN / "dvc"), "repro").stdout

    (toy / "out" / "p1.b").unlink()  # only the last stage of one point is stale: only it runs
    pipe = launch_dvc.classify(toy)
    assert [p.stale for p in pipe.points.values()] == [["use@p1"], [], []]


def test_a_dependency_changed_while_a_point_ran_is_not_committed(toy):
    assert _launch(toy, "--jobs", "1").returncode == 1  # p3 fails; p1, p2 committed
    raw = yaml.safe_load((toy / "params.yaml").read_text())
    raw["runs"]["p3"]["n"] = 3
    (toy / "params.yaml").write_text(yaml.safe_dump(raw))
    pipe = launch_dvc.classify(toy)
    steps, snapshot = launch_dvc.prepare_points(toy, {"p3": pipe.points["p3"].stale})["p3"]
    for step in steps:
        assert subprocess.run(step.argv, cwd=toy, env={**_env(), **step.env}).returncode == 0
    raw["runs"]["p3"]["n"] = 4  # edited while the point ran
    (toy / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(launch_dvc.LaunchError, match="params.yaml: changed while make@p3 ran"):
        launch_dvc.commit_point(toy, pipe.points["p3"].stale, snapshot)


def test_a_live_job_of_an_earlier_launch_blocks_its_point_and_a_killed_unreaped_one_does_not(toy):
    """A job killed with its launcher is reparented; where PID 1 does not reap (many containers, CI's among them)
    it stays a zombie that `kill(pid, 0)` still finds. It has ended: relaunching must not wait for it."""
    import json
    import socket

    state = toy / ".dvc" / "tmp" / "launch" / "state" / "p1.json"
    state.parent.mkdir(parents=True)
    live = subprocess.Popen(["sleep", "60"])
    zombie = subprocess.Popen(["sleep", "60"])
    try:
        zombie.kill()
        deadline = time.time() + 10
        while time.time() < deadline and f"{zombie.pid} (sleep) Z" not in Path(f"/proc/{zombie.pid}/stat").read_text():
            time.sleep(0.01)
        assert f"{zombie.pid} (sleep) Z" in Path(f"/proc/{zombie.pid}/stat").read_text()  # killed, not reaped

        state.write_text(json.dumps({"status": "running", "pid": live.pid, "host": socket.gethostname()}))
        r = _launch(toy, "--jobs", "2")
        assert r.returncode == 2 and f"error: p1: process {live.pid} of an earlier launch still runs it" in r.stderr

        state.write_text(json.dumps({"status": "running", "pid": zombie.pid, "host": socket.gethostname()}))
        r = _launch(toy, "--jobs", "2")
        assert "3 of 3 grid points to run" in r.stderr and "still runs" not in r.stderr
        assert "failed: p3" in r.stderr and (toy / "out" / "p1.b").exists()  # p1 ran; p3 fails as the toy says
    finally:
        live.kill()
        live.wait()
        zombie.wait()


def test_table_lines_and_summary():
    out = io.StringIO()
    t = Table(["a-3k", "b-3k"], out=out, live=False)
    t.update("a-3k", state="running", stage="train@a-3k", started=0.0)
    t.show()
    t.update("a-3k", state="done", ended=10.0, tokens_per_s=1234.0)
    t.update("b-3k", state="failed", error="train@b-3k: exit code 1")
    t.show()
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("a-3k: running train@a-3k") and lines[-1].endswith("b-3k: failed: train@b-3k: exit code 1")
    summary = t.summary()
    assert "1,234" in summary and "0:00:10" in summary and "failed: b-3k: train@b-3k: exit code 1" in summary
    assert "1 done, 0 running, 0 pending, 1 failed" in summary


def test_torchrun_wraps_only_python_module_commands():
    argv = torchrun_argv(["/bin/sh", "-c", "python -m benchmark train l-1m --params params.yaml"], 4)
    assert argv[:2] == ["/bin/sh", "-c"]
    assert "-m torch.distributed.run --nnodes 1 --nproc_per_node 4" in argv[2]
    assert argv[2].endswith("-m benchmark train l-1m --params params.yaml")
    with pytest.raises(ValueError, match="does not start with"):
        torchrun_argv(["/bin/sh", "-c", "bash train.sh"], 2)


def test_slurm_job_signalled_before_its_time_limit_is_requeued_and_finishes(toy, tmp_path_factory):
    """What SLURM does --signal-delay-s before a job's time limit: USR2. submitit requeues the job; the
    requeued job runs the point's remaining stages (SLURM holds a requeued job about 2 minutes)."""
    (toy / "params.yaml").write_text(yaml.safe_dump({"runs": {"p1": {"n": 1, "s": 20}}}))
    cluster = Cluster(tmp_path_factory.mktemp("slurm")).start()
    try:
        env = {**_env(), "SLURM_CONF": cluster.env["SLURM_CONF"]}
        proc = _launch(toy, "--executor", "slurm", "--time-min", "30", env=env, popen=True)
        state = toy / ".dvc" / "tmp" / "launch" / "state"
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and '"make@p1"' not in _read(state / "p1.json"):
            time.sleep(0.1)
        job = _read(state / "p1.slurm").strip()
        assert job, proc.stderr.read() if proc.poll() is not None else "no job id"
        subprocess.run(["scancel", "--signal=USR2", job], env=env, check=True)
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:] + cluster.logs()
        shown = subprocess.run(["scontrol", "show", "job", "--oneliner", job], env=env, capture_output=True, text=True).stdout
        assert "Restarts=1" in shown, shown
        log = (toy / ".dvc" / "tmp" / "launch" / "logs" / "p1.log").read_text()
        assert log.count("$ [make@p1]") == 2 and log.count("$ [use@p1]") == 1, log
        assert (toy / "out" / "p1.b").read_text() == "checked\np1 1\nuse@p1\n"
        assert "up to date" in _run(toy, str(BIN / "dvc"), "status").stdout.lower()
    finally:
        cluster.stop()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_points_start_largest_first_and_a_toy_params_file_keeps_the_grid_order(tmp_path):
    """With fewer slots than points, the longest jobs start first (LPT): the tiny grid in grid order is
    a-3k ... c-9k, smallest first; launch starts c-9k first and a-3k last."""
    from benchmark.stages.launch import largest_first

    root = Path(__file__).resolve().parents[1]
    (tmp_path / "params.yaml").write_text((root / "configs" / "tiny.yaml").read_text())
    keys = list(yaml.safe_load((tmp_path / "params.yaml").read_text())["runs"])
    got = [p.key for p in largest_first(tmp_path, [launch_dvc.Point(k, []) for k in keys])]
    assert keys[0] == "a-3k" and keys[-1] == "c-9k"
    assert got[0] == "c-9k" and got[-1] == "a-3k" and sorted(got) == sorted(keys)
    for size in "abc":  # the same size: more tokens first
        assert [k for k in got if k.startswith(size)] == [f"{size}-9k", f"{size}-6k", f"{size}-3k"]

    (tmp_path / "params.yaml").write_text("runs: {p: {n: 1, s: 0}, q: {n: 2, s: 0}}\n")  # not this benchmark's
    assert [p.key for p in largest_first(tmp_path, [launch_dvc.Point(k, []) for k in ("q", "p")])] == ["q", "p"]
