"""GPU claiming for parallel grid workers: each process gets a different device, released on exit."""
from __future__ import annotations

import subprocess
import sys

from benchmark.training.devices import claim_gpu
from tests_paths import ROOT

HOLD = "import sys, time; from benchmark.training.devices import claim_gpu; print(claim_gpu(3, sys.argv[1]), flush=True); time.sleep(30)"


def test_processes_claim_distinct_gpus_and_release_them(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        got = sorted(int(p.stdout.readline()) for p in procs)
        assert got == [0, 1]
        assert claim_gpu(3, tmp_path, wait_s=0) == 2  # this process takes the last free one
        procs[0].kill()
        procs[0].wait()
        freed = subprocess.run([sys.executable, "-c", "import sys; from benchmark.training.devices import claim_gpu; "
                                "print(claim_gpu(3, sys.argv[1], wait_s=0))", str(tmp_path)], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        assert freed in ("0", "1")  # the killed worker's GPU is free again
    finally:
        for p in procs:
            p.kill()
