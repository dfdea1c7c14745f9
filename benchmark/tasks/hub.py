"""A task backed by a Hugging Face dataset: `datasets.load_dataset` with a pinned revision, never remote code."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


class HubDataError(ValueError):
    """A Hub dataset cannot serve as a task (missing split, column, or dataset); one-line message."""


def _field(row: dict, dotted: str, split: str, path: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise HubDataError(f"{path} ({split}): column {dotted!r} not found (have: {', '.join(row)})")
        value = value[part]
    return value


def load_split(hub, split_key: str, limit: int | None = None) -> list[dict]:
    """Examples {"input", "target", "difficulty": 0} of one split of a Hub dataset (or local Hub-layout folder)."""

    split = hub.splits[split_key]
    try:
        return _load(hub, split, limit)
    except HubDataError:
        raise
    except Exception as e:  # datasets raises many types; the user needs the dataset, split and reason
        raise HubDataError(f"{hub.path} (split {split!r}): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e


def _load(hub, split: str, limit: int | None) -> list[dict]:
    import datasets

    # A local folder can change under the same name, and the datasets cache keys on the name: read
    # it through a throw-away cache. Hub datasets use the normal cache (pinned by their revision).
    if Path(hub.path).is_dir():
        with tempfile.TemporaryDirectory(prefix="benchmark-hf-") as cache:
            ds = datasets.load_dataset(hub.path, hub.name, revision=hub.revision, split=split, cache_dir=cache)
            return _examples(ds, hub, split, limit)
    ds = datasets.load_dataset(hub.path, hub.name, revision=hub.revision, split=split)
    return _examples(ds, hub, split, limit)


def _examples(ds, hub, split: str, limit: int | None) -> list[dict]:
    import datasets

    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    # Integer class labels become their names, so the model generates words.
    names = {}
    for key in ("input", "target"):
        top = hub.columns[key].split(".")[0]
        feat = ds.features.get(top)
        if isinstance(feat, datasets.ClassLabel) and "." not in hub.columns[key]:
            names[key] = feat
    out = []
    for row in ds:
        ex = {}
        for key in ("input", "target"):
            v = _field(row, hub.columns[key], split, hub.path)
            ex[key] = names[key].int2str(v) if key in names else str(v)
        ex["difficulty"] = 0
        out.append(ex)
    return out
