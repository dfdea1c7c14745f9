"""Provenance of a result: git commit, package versions, hardware."""
from __future__ import annotations

import json
import platform
import subprocess
from functools import lru_cache
from importlib import metadata

PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "sacrebleu", "rouge_score", "duckdb", "numpy")


def git_state(cwd: str = ".", untracked: bool = False) -> tuple[str, list[str]] | None:
    """(HEAD commit, `git status --porcelain` lines: changed tracked files, and untracked ones if asked);
    None outside a git checkout with a commit."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", f"--untracked-files={'normal' if untracked else 'no'}"],
                                cwd=cwd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha, [line for line in status.splitlines() if line.strip()]


@lru_cache(maxsize=None)
def git_sha(cwd: str = ".") -> str | None:
    """HEAD commit, with '+dirty' if tracked files differ from it; None outside a git checkout."""
    state = git_state(cwd)
    return None if state is None else state[0] + ("+dirty" if state[1] else "")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name.replace("_", "-")) if name != "rouge_score" else metadata.version("rouge-score")
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def package_versions_json() -> str:
    return json.dumps(package_versions(), sort_keys=True)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str = "cpu", world_size: int = 1) -> str:
    import os

    if device == "cuda":
        import torch

        return f"{world_size} x {torch.cuda.get_device_name(0)}"
    import torch

    return f"{cpu_name()}, {torch.get_num_threads()} threads x {world_size} process(es), {os.cpu_count()} cores visible"
