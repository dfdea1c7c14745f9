"""DVC bookkeeping of `launch`: which stages are grid points, which are stale, their commands, and `dvc commit`.

dvc.yaml stays the only description of the pipeline. A grid point is the set of stages a `foreach`
generates for one key (`train@k`, `evaluate@k`, whatever dvc.yaml holds); the stages
its points depend on are upstream (`prepare`, ...), every other stage is downstream (`collect`,
`fit`, `report`). Commands are taken as DVC resolves them and run as DVC runs them (the same shell
argv, working directory and `DVC_ROOT`/`DVC_STAGE` variables, outputs removed first except
persistent ones), so the files are those `dvc repro` writes. A finished point is recorded with
`dvc commit` of exactly the stages it ran, once their dependencies are checked to be unchanged
since it started.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class LaunchError(RuntimeError):
    """The pipeline cannot be launched as a grid (one line, names the stage or file)."""


@dataclass
class Step:
    """One stage of a point as its job runs it."""

    stage: str             # DVC addressing, e.g. "train@a-3k"
    argv: list[str]        # the shell argv DVC would run the stage's cmd with
    env: dict[str, str]    # DVC_ROOT and DVC_STAGE, as DVC sets them


@dataclass
class Point:
    """One grid point: its stages in pipeline order, and those of them that are not up to date."""

    key: str
    stages: list[str]
    stale: list[str] = field(default_factory=list)
    train_log: str | None = None  # an output named train_log.jsonl, read for tokens/s


@contextlib.contextmanager
def _repo(root: Path):
    """The DVC repo at root, with root as the working directory (stage names are relative to it)."""
    from dvc.repo import Repo

    old = os.getcwd()
    os.chdir(root)
    try:
        repo = Repo(str(root))
        try:
            yield repo
        finally:
            repo.close()
    finally:
        os.chdir(old)


def _shell_argv(cmd: str) -> list[str]:
    """The argv `dvc repro` runs a stage's cmd with (dvc.stage.run: $SHELL -c, without rc files)."""
    from dvc.stage.run import _make_cmd, get_executable

    argv = _make_cmd(get_executable(), cmd)
    return [argv] if isinstance(argv, str) else list(argv)


def _point_key(stage) -> str | None:
    name = getattr(stage, "name", None) or ""
    return name.split("@", 1)[1] if "@" in name else None


def _topo(graph, stages: list) -> list:
    """Stages in dependency order (a stage after every stage it depends on), stable on dvc.yaml order."""
    order, seen = [], set()

    def visit(s) -> None:
        if s in seen:
            return
        seen.add(s)
        for dep in graph.successors(s):  # dvc's graph points from a stage to the stages it depends on
            if dep in wanted:
                visit(dep)
        order.append(s)

    wanted = set(stages)
    for s in stages:
        visit(s)
    return order


@dataclass
class Pipeline:
    """The pipeline split into upstream stages, grid points and downstream stages."""

    root: Path
    upstream: list[str]
    points: dict[str, Point]
    downstream: list[str]
    upstream_stale: list[str]


def classify(root: str | Path) -> Pipeline:
    """Read dvc.yaml/dvc.lock through DVC and say what is stale."""
    import networkx as nx

    root = Path(root).resolve()
    with _repo(root) as repo:
        graph = repo.index.graph
        stages = [s for s in repo.index.stages if s.cmd]
        by_key: dict[str, list] = {}
        for s in stages:
            key = _point_key(s)
            if key is not None:
                by_key.setdefault(key, []).append(s)
        if not by_key:
            raise LaunchError("dvc.yaml: no foreach stage (name@key): nothing to launch as a grid")
        point_stages = {s for group in by_key.values() for s in group}
        upstream_set = set()
        for s in point_stages:
            upstream_set |= nx.descendants(graph, s)  # what s depends on, directly or not
        for s in upstream_set & point_stages:
            other = {_point_key(d) for d in nx.descendants(graph, s) & point_stages} - {_point_key(s)}
            if other:
                raise LaunchError(f"dvc.yaml: stage {s.addressing} depends on another grid point ({sorted(other)[0]})")
        upstream = [s for s in _topo(graph, stages) if s in upstream_set and s not in point_stages]
        downstream = [s for s in _topo(graph, stages) if s not in upstream_set and s not in point_stages]
        status = repo.status()
        points = {}
        for key, group in by_key.items():
            ordered = _topo(graph, group)
            stale = set(s for s in ordered if s.addressing in status)
            for s in ordered:  # a stage after a stale stage of its point runs again too, as under `dvc repro`
                if any(d in stale for d in nx.descendants(graph, s)):
                    stale.add(s)
            log = next((o.def_path for s in ordered for o in s.outs if str(o.def_path).endswith("train_log.jsonl")), None)
            points[key] = Point(key, [s.addressing for s in ordered], [s.addressing for s in ordered if s in stale], log)
        return Pipeline(root, [s.addressing for s in upstream], points, [s.addressing for s in downstream],
                        [s.addressing for s in upstream if s.addressing in status])


def _stage(repo, addressing: str):
    for s in repo.index.stages:
        if s.addressing == addressing:
            return s
    raise LaunchError(f"dvc.yaml: no stage {addressing!r} (was dvc.yaml edited during the launch?)")


def _hash(dep) -> Any:
    try:
        h = dep.get_hash()
    except FileNotFoundError:
        return None
    return (h.name, h.value) if h else None


def prepare_points(root: Path, points: dict[str, list[str]]) -> dict[str, tuple[list[Step], dict[str, dict[str, Any]]]]:
    """Per point: the steps that run its given stages (their outputs removed now, as `dvc repro` removes
    them) and the hashes of the dependencies that come from outside those stages, checked again before
    committing (so taken before anything runs)."""
    out = {}
    with _repo(root) as repo:
        for key, stages in points.items():
            steps, snapshot = [], {}
            produced: set[str] = set()
            for addressing in stages:
                s = _stage(repo, addressing)
                snapshot[addressing] = {str(d.def_path): _hash(d) for d in s.deps if str(d.def_path) not in produced}
                produced |= {str(o.def_path) for o in s.outs}
                with repo.lock:
                    s.remove_outs(ignore_remove=False, force=False)  # persistent outputs (the train log) stay
                env = {"DVC_ROOT": str(repo.root_dir), "DVC_STAGE": s.addressing}
                steps.append(Step(s.addressing, _shell_argv(s.cmd), env))
            out[key] = (steps, snapshot)
    return out


def commit_point(root: Path, stages: list[str], snapshot: dict[str, dict[str, Any]]) -> None:
    """`dvc commit` exactly these stages, after checking that their outside dependencies did not change."""
    with _repo(root) as repo:
        for addressing in stages:
            s = _stage(repo, addressing)
            for d in s.deps:
                path = str(d.def_path)
                if path in snapshot[addressing] and _hash(d) != snapshot[addressing][path]:
                    raise LaunchError(f"{path}: changed while {addressing} ran; not committed (relaunch re-runs it)")
        import logging

        dvc_log = logging.getLogger("dvc")
        level = dvc_log.level
        dvc_log.setLevel(logging.WARNING)  # not one "Updating lock file" line per stage under the live table
        try:
            for addressing in stages:
                repo.commit(addressing, force=True)
        finally:
            dvc_log.setLevel(level)


def dvc(root: Path, *args: str, quiet: bool = False) -> subprocess.CompletedProcess:
    """Run the dvc CLI of this interpreter in `root`; raises LaunchError with the tail of its output."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    r = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, text=True,
                       stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    if r.returncode != 0:
        tail = (r.stdout or "").strip().splitlines()[-1:] if quiet else []
        raise LaunchError(f"dvc {' '.join(args)}: exit code {r.returncode}" + (f": {tail[0]}" if tail else ""))
    return r


def stale_stages(root: Path) -> list[str]:
    """Every stage `dvc status` reports."""
    with _repo(root) as repo:
        return sorted(repo.status())
