"""A finished grid without training: run folders (train.json, curve.json, metrics.json, predictions.parquet) with valid,
law-shaped records, and a params file naming them. For tests of collect and fit that need no model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests_paths import TINY

TASKS = {"translation": "translation", "summarization": "summarization", "classification": "classification"}
SIZES = {"a": 30_000, "b": 60_000, "c": 120_000}


def run_ids(n_tokens: int = 3) -> list[str]:
    return [f"{s}-{k}k" for s in SIZES for k in (3, 6, 9, 12)[:n_tokens]]


def write_params(path: Path, ids: list[str], tasks: tuple[str, ...] = tuple(TASKS), fit: dict | None = None) -> None:
    import yaml

    raw = yaml.safe_load(TINY.read_text())
    raw["data"]["tasks"] = {t: v for t, v in raw["data"]["tasks"].items() if t in tasks}
    raw["runs"] = {rid: {"size": rid.split("-")[0], "tokens": int(rid.split("-")[1][:-1]) * 1000} for rid in ids}
    raw["fit"] = fit or {"bootstrap": 20, "downstream_bootstrap": 20, "seed": 0}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def write_run(runs_dir: Path, run_id: str, predictions: int = 20, shift: float = 0.0,
              tasks: tuple[str, ...] = tuple(TASKS)) -> None:
    """One completed run; `shift` moves every metric (a second state of the same grid)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmark.results import schema

    size, tokens = run_id.split("-")[0], int(run_id.split("-")[1][:-1]) * 1000
    n = SIZES[size]
    d = run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    row = {c.name: None for c in schema.columns("runs")}
    row.update(source="local", run_id=run_id, model_size=size, n_params=n, tokens=tokens, flops=6.0 * n * tokens,
               seed=0, status="completed", schema_version=schema.SCHEMA_VERSION, steps=10 + round(100 * shift))
    (d / "train.json").write_text(json.dumps(row))
    loss = 1.5 + 300 / n ** 0.4 + 200 / tokens ** 0.3 + shift
    metrics = [{"source": "local", "run_id": run_id, "task": t, "metric": "val_loss", "value": loss + 0.1 * i,
                "stderr": 0.01, "n": 100, "signature": "loss"} for i, t in enumerate([*tasks, "all"])]
    for metric, value in (("bleu", 40 - 5 * loss), ("rouge1", 60 - 5 * loss), ("rouge2", 30 - 5 * loss),
                          ("rougeL", 50 - 5 * loss), ("rougeLsum", 50 - 5 * loss), ("accuracy", 90 - 10 * loss)):
        task = {"bleu": "translation", "accuracy": "classification"}.get(metric, "summarization")
        if task not in tasks:
            continue
        metrics.append({"source": "local", "run_id": run_id, "task": task, "metric": metric, "value": max(value, 0.0),
                        "stderr": 1.0, "n": predictions, "signature": "sig"})
    (d / "metrics.json").write_text(json.dumps(metrics))
    curve = []
    for t in range(1000, tokens + 1, 1000):  # a falling learning curve, a point every 1000 tokens
        at = {"source": "local", "run_id": run_id, "tokens": t, "step": t // 100}
        curve.append({**at, "split": "train", "task": "all", "loss": loss + 2000 / t})
        curve += [{**at, "split": "val", "task": x, "loss": loss + 2000 / t + 0.05} for x in [*tasks, "all"]]
    (d / "curve.json").write_text(json.dumps(curve))
    rng = np.random.default_rng(abs(hash((run_id, shift))) % 2**32)
    preds = [{"source": "local", "run_id": run_id, "task": tasks[i % len(tasks)], "example_id": f"{i:08x}",
              "difficulty": int(rng.integers(1, 5)), "input": f"input {i} of {run_id}", "reference": f"ref {i}",
              "prediction": f"pred {i} {shift}"} for i in range(predictions)]
    pq.write_table(pa.Table.from_pylist(preds, schema=schema.arrow_schema("predictions")), d / "predictions.parquet")


def make_grid(root: Path, ids: list[str] | None = None, predictions: int = 20, shift: float = 0.0,
              tasks: tuple[str, ...] = tuple(TASKS), fit: dict | None = None) -> list[str]:
    ids = ids or run_ids()
    root.mkdir(parents=True, exist_ok=True)
    write_params(root / "params.yaml", ids, tasks, fit)
    for rid in ids:
        write_run(root / "runs", rid, predictions, shift, tasks)
    return ids
