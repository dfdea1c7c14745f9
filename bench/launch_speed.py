"""Wall time of a grid by `dvc repro` against `python -m benchmark launch --executor local --jobs N`, back to back.

Each side runs in its own fresh copy of the repository (tracked and untracked, not ignored files)
with params.yaml := the given config, from nothing (prepare included) to a clean `dvc status`.
Prints both times, their ratio and the load average before and after each side; then, on each side,
the wall time of a second `dvc repro` (a no-op: it must run no stage).

    python bench/launch_speed.py --config configs/tiny.yaml --jobs 2
    python bench/launch_speed.py --config params.yaml --jobs 2 --keep /tmp/grid   # the default grid, copies kept
    python bench/launch_speed.py --config params.yaml --only launch             # one side alone (no ratio)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _copy(config: Path, dst: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    shutil.copy(config, dst / "params.yaml")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b"}
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(argv, cwd=dst, env=env, check=True, capture_output=True)
    return dst


def _env() -> dict[str, str]:
    """The environment both sides and the no-op repro run in (this venv's dvc and python first)."""
    return {**os.environ, "TOKENIZERS_PARALLELISM": "false", "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _timed(argv: list[str], cwd: Path) -> float:
    env = _env()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"error: {' '.join(argv)}: exit code {r.returncode}\n{r.stderr[-2000:]}")
    status = subprocess.run([str(BIN / "dvc"), "status"], cwd=cwd, env=env, capture_output=True, text=True).stdout
    assert "up to date" in status.lower(), status
    print(f"{' '.join(argv[-4:]) if 'launch' in argv else 'dvc repro':<40} {wall:8.1f} s   "
          f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
    return wall


def _noop(cwd: Path) -> float:
    """Wall time of `dvc repro` on an up-to-date pipeline; exits if it runs any stage."""
    t0 = time.perf_counter()
    r = subprocess.run([str(BIN / "dvc"), "repro"], cwd=cwd, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0 or "Running stage" in r.stdout:
        sys.exit(f"error: the no-op `dvc repro` in {cwd} ran a stage or failed (exit code {r.returncode})\n"
                 f"{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "tiny.yaml"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", choices=("repro", "launch"), help="time one side alone (no ratio)")
    ap.add_argument("--keep", metavar="DIR", help="build both copies under DIR (must not exist) and keep them")
    args = ap.parse_args()
    if args.keep:
        Path(args.keep).mkdir(parents=True)
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory(prefix="launch_speed_")) as tmp:
        sides = {s: _copy(Path(args.config), Path(tmp) / s) for s in ("repro", "launch") if args.only in (None, s)}
        print(f"{args.config}, {os.cpu_count()} cores", flush=True)
        argv = {"repro": [str(BIN / "dvc"), "repro"],
                "launch": [sys.executable, "-m", "benchmark", "launch", "--executor", "local", "--jobs", str(args.jobs)]}
        walls = {s: _timed(argv[s], d) for s, d in sides.items()}
        for side in sides.values():
            noop = [_noop(side) for _ in range(2)]
            print(f"no-op dvc repro after {side.name:<8} {noop[0]:.2f} s, {noop[1]:.2f} s", flush=True)
    print(", ".join(f"{s} {w / 60:.1f} min" for s, w in walls.items()))
    if len(walls) == 2:
        print(f"dvc repro / launch --jobs {args.jobs}: {walls['repro'] / walls['launch']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
