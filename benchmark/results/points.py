"""The derived `points` table: the seed replicates of each grid point (same size, N and D) as one point with spread."""
from __future__ import annotations

import numpy as np


def point_stats(y) -> dict[str, float | int | None]:
    """n_seeds, mean, std (ddof 1; None for one seed), rel_std = std / |mean| (None for one seed or mean 0), min, max."""
    y = np.asarray(y, dtype=float)
    mean = float(y.mean())
    std = float(y.std(ddof=1)) if y.size > 1 else None
    return {"n_seeds": int(y.size), "mean": mean, "std": std,
            "rel_std": std / abs(mean) if std is not None and mean != 0 else None, "min": float(y.min()), "max": float(y.max())}


def points_rows(runs: list[dict], metrics: list[dict]) -> list[dict]:
    """Rows of the derived `points` table: per (source, size, N, D, metric, task), the completed runs' seed
    replicates as one point with spread (point_stats)."""
    done = {(r["source"], r["run_id"]): r for r in runs if r["status"] == "completed"}
    groups: dict[tuple, list[tuple[str, float]]] = {}
    for m in metrics:
        r = done.get((m["source"], m["run_id"]))
        if r is not None and m["value"] is not None:
            key = (r["source"], r["model_size"], r["n_params"], r["tokens"], m["metric"], m["task"], r["flops"])
            groups.setdefault(key, []).append((r["run_id"], m["value"]))
    out = []
    for (source, size, n, d, metric, task, flops), vals in sorted(groups.items()):
        ids, ys = zip(*sorted(vals))
        out.append({"source": source, "model_size": size, "n_params": n, "tokens": d, "metric": metric, "task": task,
                    "flops": float(flops), **point_stats(list(ys)), "run_ids": ",".join(ids)})
    return out
