"""Which GPU a single-process run takes: the first one no other run of this machine holds.

Grid points queued in parallel (`dvc exp run --queue` + `dvc queue start -j N`) each start a train
stage; each claims a GPU by an exclusive lock on `<lock_dir>/gpu-<i>.lock`, held until the process
exits (the OS drops it even after a kill), so N workers spread over N GPUs without configuration.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
import time
from pathlib import Path

_HELD: list = []  # open lock files, kept for the life of the process


def claim_gpu(n_devices: int, lock_dir: str | Path | None = None, wait_s: float = 24 * 3600) -> int:
    """Index of the first of n_devices GPUs not claimed by another process; waits while all are."""
    lock_dir = Path(lock_dir or os.environ.get("BENCHMARK_GPU_LOCK_DIR", Path(tempfile.gettempdir()) / "benchmark-gpu-locks"))
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        for i in range(n_devices):
            fh = open(lock_dir / f"gpu-{i}.lock", "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            _HELD.append(fh)
            return i
        if time.monotonic() > deadline:
            raise TimeoutError(f"all {n_devices} GPUs stayed claimed (locks in {lock_dir})")
        time.sleep(5)
