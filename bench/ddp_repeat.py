"""The 2-process torchrun train of the DDP test, N times in a row with a CPU-heavy process beside it: a teardown
hang shows as a run that does not finish; its processes' stacks are then printed with gdb (if installed).

    python bench/ddp_repeat.py [--runs 20] [--timeout 240]

Prints one line per run and `N of N runs finished`; exits 1 at the first run that fails or hangs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out += [int(p.name), *_children(int(p.name))]
        except (OSError, IndexError, ValueError):
            continue
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds before a run counts as hung")
    args = ap.parse_args()
    import yaml

    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).parent / "torchrun")
    work = Path(tempfile.mkdtemp(prefix="ddp-repeat-"))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # the CPU-heavy neighbour
    ok = 0
    try:
        (work / "params.yaml").write_text(yaml.safe_dump(yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())))
        subprocess.run([sys.executable, "-m", "benchmark", "prepare", "--params", str(work / "params.yaml"),
                        "--out", str(work / "data")], cwd=ROOT, env=env, check=True, capture_output=True)
        for i in range(args.runs):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            cmd = [torchrun, "--nnodes", "1", "--nproc_per_node", "2", "--master-addr", "127.0.0.1", "--master-port",
                   str(port), "-m", "benchmark", "train", "c-9k", "--params", str(work / "params.yaml"),
                   "--data", str(work / "data"), "--out", str(work / f"out{i}"), "--no-resume"]
            t0 = time.time()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            try:
                out, _ = proc.communicate(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                pids = [proc.pid, *_children(proc.pid)]
                print(f"run {i}: HANG after {time.time() - t0:.0f} s (processes {pids})", flush=True)
                if shutil.which("gdb"):
                    for pid in pids[1:]:
                        subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt 25"], timeout=600)
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.communicate()
                return 1
            print(f"run {i}: exit {proc.returncode} in {time.time() - t0:.0f} s", flush=True)
            if proc.returncode != 0:
                print(out[-3000:])
                return 1
            ok += 1
    finally:
        hog.kill()
        print(f"{ok} of {args.runs} runs finished (load average {os.getloadavg()[0]:.1f})", flush=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
