"""collect on a large grid: 100 runs x 10,000 predictions (a GPU grid's scale), loaded through Arrow.

    python bench/collect_speed.py [--runs 100] [--predictions 10000]

Prints the time of the whole collect stage (read and check every run folder, one DuckDB transaction, the
parquet files) and, side by side in this process, the old row-by-row `executemany` insert against the Arrow
insert on the same 20,000 prediction rows.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.stages import collect
from benchmark.results import db, schema
from benchmark.config import params  # noqa: E402

TASKS = ("translation", "summarization", "classification")


def make_run(runs: Path, run_id: str, size: str, n_pred: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = runs / run_id
    d.mkdir(parents=True)
    row = {c.name: None for c in schema.columns("runs")}
    row.update(source="local", run_id=run_id, model_size=size, n_params=100_000, tokens=1_000_000, flops=6e11, seed=0,
               status="completed", schema_version=schema.SCHEMA_VERSION)
    (d / "train.json").write_text(json.dumps(row))
    metrics = [{"source": "local", "run_id": run_id, "task": t, "metric": "val_loss", "value": 2.0, "stderr": 0.1,
                "n": 100, "signature": "loss"} for t in (*TASKS, "all")]
    metrics += [{"source": "local", "run_id": run_id, "task": t, "metric": m, "value": 10.0, "stderr": 1.0, "n": n_pred,
                 "signature": "sig"} for t, m in (("translation", "bleu"), ("summarization", "rouge1"),
                                                  ("summarization", "rouge2"), ("summarization", "rougeL"),
                                                  ("summarization", "rougeLsum"), ("classification", "accuracy"))]
    (d / "metrics.json").write_text(json.dumps(metrics))
    i = range(n_pred)
    table = pa.table({"source": ["local"] * n_pred, "run_id": [run_id] * n_pred, "task": [TASKS[k % 3] for k in i],
                      "example_id": [f"{k:08x}" for k in i], "difficulty": [k % 4 + 1 for k in i],
                      "input": [f"the input sentence number {k} of the test split" for k in i],
                      "reference": [f"reference {k}" for k in i], "prediction": [f"prediction {k} of {run_id}" for k in i]},
                     schema=schema.arrow_schema("predictions"))
    pq.write_table(table, d / "predictions.parquet", compression="zstd")


def insert_side_by_side(rows: list[dict]) -> tuple[float, float]:
    """(executemany seconds, Arrow seconds) for the same prediction rows into empty tables."""
    names = schema.column_names("predictions")
    with tempfile.TemporaryDirectory() as tmp:
        con = db.connect(os.path.join(tmp, "a.duckdb"))
        t0 = time.perf_counter()
        con.executemany(f"INSERT INTO predictions ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                        [[r[n] for n in names] for r in rows])
        t_many = time.perf_counter() - t0
        con.close()
        con = db.connect(os.path.join(tmp, "b.duckdb"))
        t0 = time.perf_counter()
        db.replace_rows(con, "predictions", rows, source="local")
        t_arrow = time.perf_counter() - t0
        con.close()
    return t_many, t_arrow


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--predictions", type=int, default=10_000)
    args = ap.parse_args()
    base = params.load(str(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = [f"r{i:03d}" for i in range(args.runs)]
        t0 = time.perf_counter()
        for rid in ids:
            make_run(root / "runs", rid, "a", args.predictions)
        print(f"wrote {args.runs} run folders x {args.predictions} predictions in {time.perf_counter() - t0:.1f} s")
        p = params.parse({**base.raw, "runs": {rid: {"size": "a", "tokens": 1_000_000} for rid in ids}})
        t0 = time.perf_counter()
        counts = collect.collect(p, root / "runs", root / "lb" / "results.duckdb", root / "lb")
        took = time.perf_counter() - t0
        print(f"collect: {counts['runs']} runs, {counts['metrics']} metric rows, {counts['predictions']} predictions "
              f"in {took:.2f} s (DuckDB + parquet, one transaction)")
        import pyarrow.parquet as pq

        sample = pq.read_table(root / "runs" / ids[0] / "predictions.parquet").to_pylist()
        rows = (sample * (20_000 // max(1, len(sample)) + 1))[:20_000]
    t_many, t_arrow = insert_side_by_side(rows)
    print(f"20,000 prediction rows: executemany {t_many:.2f} s, Arrow {t_arrow:.2f} s (validation included): "
          f"{t_many / t_arrow:.0f}x")
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
