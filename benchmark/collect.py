"""DVC stage `collect`: validate every run's record and load the grid into DuckDB and the dataset's parquet files.

Reads `runs/<id>/{train.json,metrics.json,predictions.parquet}` for every run in params, checks each
row against the schema, replaces the `local` rows of the DuckDB tables runs, metrics and predictions
(loading twice gives the same rows), and writes `leaderboard/data/{runs,metrics,predictions}.parquet`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from benchmark import cli, db, io, metrics as metrics_mod, params as params_mod, schema
from benchmark.export import table_to_arrow, write_parquet_atomic

LOCAL = "local"


class CollectError(ValueError):
    """A run's files are missing or inconsistent; the message names the file."""


def read_run(run_dir: Path, run_id: str, kinds: dict[str, str]) -> tuple[dict, list[dict], list[dict]]:
    """(runs row, metrics rows, predictions rows) of one run directory, validated."""
    from benchmark.score import read_predictions

    train_path = run_dir / "train.json"
    if not train_path.exists():
        raise CollectError(f"{train_path}: missing (has the run been trained?)")
    run = schema.validate_record("runs", io.read_json(train_path), where=str(train_path))
    if run["run_id"] != run_id or run["source"] != LOCAL:
        raise CollectError(f"{train_path}: run_id {run['run_id']!r} / source {run['source']!r}, expected {run_id!r} / 'local'")
    metrics, preds = [], []
    if run["status"] == "completed":
        mpath = run_dir / "metrics.json"
        if not mpath.exists():
            raise CollectError(f"{mpath}: missing (has the run been evaluated and scored?)")
        metrics = [schema.validate_record("metrics", r, where=f"{mpath} row {i}") for i, r in enumerate(io.read_json(mpath))]
        have = {(r["task"], r["metric"]) for r in metrics}
        # every completed run has val_loss per task and 'all', and each task's metrics (metrics.METRICS)
        need = {("all", metrics_mod.LOSS)} | {(t, metrics_mod.LOSS) for t in kinds}
        need |= {(t, m) for t, k in kinds.items() for m in metrics_mod.for_task_kind(k)}
        missing = sorted(need - have)
        if missing:
            raise CollectError(f"{mpath}: missing metric {missing[0][1]!r} for task {missing[0][0]!r}")
        preds = [schema.validate_record("predictions", r, where=f"{run_dir}/predictions.parquet row {i}")
                 for i, r in enumerate(read_predictions(run_dir / "predictions.parquet"))]
        for rows, name in ((metrics, "metrics.json"), (preds, "predictions.parquet")):
            bad = [r for r in rows if r["run_id"] != run_id or r["source"] != LOCAL]
            if bad:
                raise CollectError(f"{run_dir / name}: a row belongs to run {bad[0]['run_id']!r}, source {bad[0]['source']!r}")
    return run, metrics, preds


def collect(p: params_mod.Params, runs_dir: Path, db_path: Path, out_dir: Path) -> dict[str, int]:
    kinds = {t.name: t.kind for t in p.data.tasks}
    tables: dict[str, list[dict]] = {"runs": [], "metrics": [], "predictions": []}
    for run_id in sorted(p.runs):
        run, metrics, preds = read_run(runs_dir / run_id, run_id, kinds)
        tables["runs"].append(run)
        tables["metrics"] += metrics
        tables["predictions"] += preds
    stray = sorted(d.name for d in runs_dir.iterdir() if d.is_dir() and d.name not in p.runs) if runs_dir.exists() else []
    if stray:
        print(f"note: ignoring run folders not in params: {', '.join(stray)}", file=sys.stderr)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = db.connect(str(db_path))
    try:
        for table, rows in tables.items():
            db.replace_rows(con, table, rows, source=LOCAL)
        # Parquet from what the database now holds, so both always agree.
        for table in tables:
            write_parquet_atomic(table_to_arrow(db.read_rows(con, table, "source = ?", [LOCAL]), table),
                                 out_dir / "data" / f"{table}.parquet")
    finally:
        con.close()
    return {t: len(r) for t, r in tables.items()}


def main(argv: list[str]) -> int:
    ap = cli.parser("collect", __doc__, params=True)
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--db", default="leaderboard/results.duckdb")
    ap.add_argument("--out", default="leaderboard")
    args, p = cli.parse(ap, argv)
    counts = collect(p, Path(args.runs), Path(args.db), Path(args.out))
    print(f"collected {counts['runs']} runs, {counts['metrics']} metric rows, {counts['predictions']} predictions into {args.db}")
    return 0
