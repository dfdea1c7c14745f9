"""Executors of `launch`: one job per grid point, as local processes or SLURM jobs through submitit.

A job runs its point's steps (the stage commands DVC resolved) one after the other in the
repository root and writes its state to a small JSON file after each step, so the launcher (and a
requeued job) knows which steps are done. The train step of a point given several GPUs runs under
torchrun (DDP) inside the job. A killed, cancelled, preempted or timed-out job loses nothing the
train stage checkpointed: running the step again resumes from `runs/<id>/checkpoints/`.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.launching.dvc import Step


@dataclass
class JobSpec:
    """What one job runs: a point's steps, where it logs, and its extra environment."""

    point: str
    launch_id: str
    root: str
    steps: list[Step]
    log: str
    state: str
    env: dict[str, str] = field(default_factory=dict)
    gpus: int = 0  # > 1: the train step runs under torchrun with this many processes

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "JobSpec":
        raw = json.loads(text)
        raw["steps"] = [Step(**s) for s in raw["steps"]]
        return cls(**raw)


class StageKilled(RuntimeError):
    """A stage command was ended by a signal (a kill, a cancelled or requeued job), not by its own error."""


def read_state(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_state(path: str, state: dict[str, Any]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_argv(argv: list[str], nproc: int) -> list[str]:
    """The train step's argv under torchrun: `python -m M ARGS` inside the shell command becomes
    `torchrun --nproc_per_node N ... -m M ARGS` (a loopback rendezvous on a free port, see README)."""
    cmd = argv[-1]
    if not cmd.startswith("python -m "):
        raise ValueError(f"cannot run {cmd!r} under torchrun: it does not start with 'python -m '")
    launcher = (f"{sys.executable} -m torch.distributed.run --nnodes 1 --nproc_per_node {nproc} "
                f"--master-addr 127.0.0.1 --master-port {_free_port()} -m ")
    return [*argv[:-1], launcher + cmd[len("python -m "):]]


def run_point(spec: JobSpec, ignore_signals: tuple[int, ...] = ()) -> dict[str, Any]:
    """Run the point's steps not yet done under this launch; raises RuntimeError naming the failed step.
    The stage commands start with `ignore_signals` ignored."""

    def _ignore() -> None:
        for sig in ignore_signals:
            signal.signal(sig, signal.SIG_IGN)

    state = read_state(spec.state)
    if state.get("launch_id") != spec.launch_id:
        state = {"launch_id": spec.launch_id, "point": spec.point, "done": []}
    state.update(status="running", pid=os.getpid(), host=socket.gethostname(), error=None)
    state.setdefault("started", time.time())
    env = {**os.environ, **spec.env}
    with open(spec.log, "a") as log:
        for step in spec.steps:
            if step.stage in state["done"]:
                continue
            state["stage"] = step.stage
            _write_state(spec.state, state)
            argv = step.argv
            if spec.gpus > 1 and step.stage.startswith("train@"):
                argv = torchrun_argv(argv, spec.gpus)
            log.write(f"\n$ [{step.stage}] {argv[-1]}\n")
            log.flush()
            rc = subprocess.call(argv, cwd=spec.root, env={**env, **step.env}, stdout=log, stderr=subprocess.STDOUT,
                                 preexec_fn=_ignore if ignore_signals else None)
            if rc != 0:
                why = f"signal {-rc}" if rc < 0 else f"exit code {rc}"
                state.update(status="failed", error=f"{step.stage}: {why} (log: {spec.log})", ended=time.time())
                _write_state(spec.state, state)
                raise (StageKilled if rc < 0 else RuntimeError)(state["error"])
            state["done"].append(step.stage)
    state.update(status="done", stage=None, ended=time.time())
    _write_state(spec.state, state)
    return state


class LocalPool:
    """Local processes: at most `slots` at once; with GPUs, each job gets cards of its own
    (`CUDA_VISIBLE_DEVICES`), else `threads` CPU threads (`OMP_NUM_THREADS`).

    The processes stay in the launcher's process group: killing the group kills every job with it.
    """

    def __init__(self, slots: int, gpus: list[int] | None = None, threads: int = 1):
        self.slots, self.threads = slots, threads
        self.free_gpus = None if gpus is None else list(gpus)
        self.running: dict[str, tuple[subprocess.Popen, list[int], Any]] = {}

    def can_start(self, gpus: int = 0) -> bool:
        if len(self.running) >= self.slots:
            return False
        return self.free_gpus is None or len(self.free_gpus) >= max(1, gpus)

    def start(self, spec: JobSpec, spec_path: Path) -> None:
        cards: list[int] = []
        if self.free_gpus is None:
            spec.env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        else:
            cards, self.free_gpus = self.free_gpus[:max(1, spec.gpus)], self.free_gpus[max(1, spec.gpus):]
            spec.env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, cards))
        spec_path.write_text(spec.to_json())
        err = open(spec.log, "a")
        proc = subprocess.Popen([sys.executable, "-m", "benchmark.launching.job", str(spec_path)], cwd=spec.root,
                                stdout=subprocess.DEVNULL, stderr=err)
        self.running[spec.point] = (proc, cards, err)

    def poll(self) -> dict[str, str | None]:
        """Points whose job ended since the last call: None when it succeeded, else why it failed."""
        ended = {}
        for point, (proc, cards, err) in list(self.running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del self.running[point]
            err.close()
            if self.free_gpus is not None:
                self.free_gpus = sorted(self.free_gpus + cards)
            ended[point] = None if rc == 0 else (f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}")
        return ended

    def stop(self) -> None:
        for proc, _, _ in self.running.values():
            proc.send_signal(signal.SIGTERM)


def local_pool(jobs: int | None, n_gpus: int, cpus: int) -> LocalPool:
    """One job per GPU (or `jobs`, if fewer) when there are GPUs, else `jobs` jobs sharing the CPU threads."""
    if n_gpus:
        return LocalPool(min(n_gpus, jobs or n_gpus), gpus=list(range(n_gpus)))
    n = jobs or 1
    return LocalPool(n, threads=max(1, cpus // n))


def main(argv: list[str]) -> int:
    """Job entry point of the local executor: `python -m benchmark.launching.job SPEC.json`."""
    spec = JobSpec.from_json(Path(argv[0]).read_text())
    try:
        run_point(spec)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
