"""SLURM executor of `launch`: one sbatch job per grid point through submitit's SlurmExecutor.

Jobs are submitit Checkpointables: on preemption or at the time limit submitit requeues the job
(up to `max_requeue` timeouts, preemptions always), and the requeued job runs the point's
remaining steps, the train step resuming from the run's last checkpoint. Job states come from
`squeue`/`scontrol` (clusters without accounting have no `sacct`, which submitit's own watcher reads).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmark.launching.job import JobSpec, StageKilled, run_point

try:
    from submitit.helpers import Checkpointable
except ImportError:  # the local executor does not need submitit
    Checkpointable = object  # type: ignore[misc,assignment]

KILL_GRACE_S = 300  # longer than SLURM's KillWait (30 s by default)
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
          "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "PREEMPTED"}


class PointJob(Checkpointable):
    """The callable one SLURM job runs; requeued as is (its steps already done are skipped)."""

    def __init__(self, spec: JobSpec):
        self.spec = spec

    def __call__(self) -> dict[str, Any]:
        if os.environ.get("SLURM_CPUS_PER_TASK"):  # the job's CPUs, not every core of the node
            self.spec.env.setdefault("OMP_NUM_THREADS", os.environ["SLURM_CPUS_PER_TASK"])
        # SLURM signals every process of the job before its time limit (USR2); only submitit's handler
        # in this process must act on it (it requeues the job), not the stage commands, whom it would kill.
        try:
            return run_point(self.spec, ignore_signals=(signal.SIGUSR2,))
        except StageKilled:
            # SLURM is ending the job (scancel, requeue, preemption, time limit) and ends this process within
            # its KillWait: leave without writing a result, so the job reads as cancelled or is requeued
            time.sleep(KILL_GRACE_S)
            raise


def slurm_state(job_id: str) -> str | None:
    """The job's state from squeue, else scontrol (finished jobs stay there MinJobAge seconds); None if unknown."""
    r = subprocess.run(["squeue", "--noheader", "--format=%T", f"--jobs={job_id}"], capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.split()[0].strip()
    r = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True)
    for tok in r.stdout.split():
        if tok.startswith("JobState="):
            return tok.split("=", 1)[1]
    return None


class SlurmRunner:
    """Submits every point at once (the cluster queues them) and reports the ones that ended."""

    def __init__(self, folder: Path, params: dict[str, Any], max_requeue: int = 3):
        import submitit

        self.executor = submitit.SlurmExecutor(folder=str(folder), max_num_timeout=max_requeue)
        self.executor.update_parameters(**params)
        self.running: dict[str, Any] = {}

    def can_start(self, gpus: int = 0) -> bool:
        return True

    def start(self, spec: JobSpec, spec_path: Path) -> None:
        self.executor.update_parameters(job_name=f"bench-{spec.point}")
        spec_path.write_text(spec.to_json())
        job = self.executor.submit(PointJob(spec))
        self.running[spec.point] = job
        Path(spec.state).with_suffix(".slurm").write_text(f"{job.job_id}\n")
        with open(spec.log, "a") as f:
            f.write(f"submitted SLURM job {job.job_id}; its output: {job.paths.stdout}\n")

    @staticmethod
    def still_active(state_path: Path) -> str | None:
        """The id of the SLURM job an earlier launch submitted for this point, if it is still queued or running."""
        try:
            job_id = state_path.with_suffix(".slurm").read_text().strip()
        except FileNotFoundError:
            return None
        return job_id if job_id and slurm_state(job_id) in ACTIVE else None

    def poll(self) -> dict[str, str | None]:
        ended = {}
        for point, job in list(self.running.items()):
            if job.paths.result_pickle.exists():
                try:
                    job.result()
                    ended[point] = None
                except Exception as e:  # submitit re-raises the job's exception as a FailedJobError
                    lines = [line for line in str(e).strip().splitlines() if line.strip()]
                    ended[point] = f"SLURM job {job.job_id}: {lines[-1] if lines else type(e).__name__}"
            else:
                state = slurm_state(job.job_id)
                if state in ACTIVE:
                    continue
                if job.paths.result_pickle.exists():  # it finished between the two looks
                    continue
                ended[point] = f"SLURM job {job.job_id}: {state or 'gone from the queue'}"
            del self.running[point]
        return ended

    def stop(self) -> None:
        ids = [j.job_id for j in self.running.values()]
        if ids:
            subprocess.run(["scancel", *ids], check=False)
