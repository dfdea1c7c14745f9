"""Resumable checkpoints: weights (safetensors), optimizer, RNG states and the data position, written atomically.

A checkpoint is a folder `step_<n>` created under a temporary name and renamed when complete, so a
kill at any moment leaves either the old or the new checkpoint, never half of one.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.results.io import follow_umask

KEEP = 2  # checkpoints kept while a run is in progress


def _step_dirs(root: Path) -> list[tuple[int, Path]]:
    if not root.exists():
        return []
    out = []
    for d in root.iterdir():
        if d.is_dir() and d.name.startswith("step_") and (d / "state.json").exists():
            try:
                out.append((int(d.name[5:]), d))
            except ValueError:
                pass
    return sorted(out)


def latest(root: str | Path) -> Path | None:
    dirs = _step_dirs(Path(root))
    return dirs[-1][1] if dirs else None


def _rng_tensors() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _rng_json() -> dict:
    """Python and numpy RNG states as plain JSON (no pickle needed to read them back)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _set_rng(tensors: dict, js: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if tensors["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda"])
    version, internal, gauss = js["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = js["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save(root: str | Path, step: int, model, optimizer, state: dict[str, Any]) -> Path:
    """Write checkpoint `step` (model weights, optimizer, RNG, and the JSON-able `state`)."""
    from safetensors.torch import save_file

    root = Path(root)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp_step_{step:08d}_{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # Tied embeddings appear twice in state_dict; safetensors refuses shared storage, so clone.
    save_file({k: v.clone() for k, v in weights.items()}, str(tmp / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "rng": _rng_tensors()}, tmp / "optimizer.pt")
    with open(tmp / "state.json", "w") as f:
        json.dump({**state, "rng": _rng_json()}, f)
    for p in tmp.iterdir():
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())
    follow_umask(tmp)  # safetensors writes 0600 whatever the umask
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    prune(root, KEEP)
    return final


def load(path: str | Path, model, optimizer) -> dict[str, Any]:
    """Restore model, optimizer and RNG from a checkpoint folder; returns its JSON state."""
    from safetensors.torch import load_file

    path = Path(path)
    weights = load_file(str(path / "model.safetensors"))
    model.load_state_dict(weights)
    blob = torch.load(path / "optimizer.pt", weights_only=True)  # tensors and plain values only
    optimizer.load_state_dict(blob["optimizer"])
    with open(path / "state.json") as f:
        state = json.load(f)
    _set_rng(blob["rng"], state.pop("rng"))
    return state


def prune(root: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints (and abandoned temporary folders)."""
    root = Path(root)
    for _, d in _step_dirs(root)[:-keep] if keep else _step_dirs(root):
        shutil.rmtree(d, ignore_errors=True)
    if root.exists():
        for d in root.glob(".tmp_step_*"):
            shutil.rmtree(d, ignore_errors=True)


def remove_all(root: str | Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
