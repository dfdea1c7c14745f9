"""A one-node SLURM cluster on 127.0.0.1 for the tests: munged, slurmctld and slurmd from Debian's packages.

Everything (config, state, spool, logs, munge key and socket) lives in one temporary folder, the
daemons run as root without cgroups (proctrack/linuxproc, task/none) and accounting is off.
Clients find the cluster through `SLURM_CONF`. Needs `slurm-wlm` and `munge` (installed by `.ci/run`).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


class ClusterError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf(d: Path, cpus: int) -> str:
    return f"""ClusterName=benchtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge.sock
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
MinJobAge=600
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
NodeName=node0 NodeAddr=127.0.0.1 NodeHostname={socket.gethostname()} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """Start with `start()`, stop with `stop()`; `env` holds SLURM_CONF for clients."""

    def __init__(self, folder: Path, cpus: int | None = None):
        self.dir = Path(folder)
        self.cpus = cpus or os.cpu_count() or 1
        self.conf = self.dir / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _run(self, *argv: str) -> None:
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise ClusterError(f"{' '.join(argv)}: exit code {r.returncode}: {(r.stderr or r.stdout).strip()[-500:]}\n"
                               + self.logs())

    def logs(self) -> str:
        out = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            p = self.dir / name
            if p.exists():
                out.append(f"--- {name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(out)

    def start(self, timeout_s: float = 60) -> "Cluster":
        missing = [d for d in DAEMONS if shutil.which(d) is None and not Path(f"/usr/sbin/{d}").exists()]
        if missing:
            raise ClusterError(f"{', '.join(missing)} not installed: apt-get install slurm-wlm munge (see .ci/run)")
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        self.conf.write_text(_conf(self.dir, self.cpus))
        d = self.dir
        self._run("/usr/sbin/munged", "--force", f"--socket={d}/munge.sock", f"--pid-file={d}/munged.pid",
                  f"--key-file={key}", f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed")
        self._run("/usr/sbin/slurmctld", "-f", str(self.conf))
        self._run("/usr/sbin/slurmd", "-f", str(self.conf), "-N", "node0")
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            r = subprocess.run(["sinfo", "--noheader", "--format=%T"], env=self.env, capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip() == "idle":
                return self
            time.sleep(0.5)
        raise ClusterError(f"the node did not become idle in {timeout_s:.0f} s\n{self.logs()}")

    def stop(self) -> None:
        subprocess.run(["scancel", "--full", "--user=root"], env=self.env, capture_output=True)
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.dir / f"{name}.pid"
            try:
                pid = int(pid_file.read_text().split()[0])
            except (FileNotFoundError, ValueError, IndexError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)

    def squeue(self) -> list[tuple[str, str, str]]:
        """(job id, name, state) of every job in the queue."""
        r = subprocess.run(["squeue", "--noheader", "--format=%i|%j|%T"], env=self.env, capture_output=True, text=True,
                           check=True)
        return [tuple(line.split("|")) for line in r.stdout.splitlines() if line.strip()]
