"""DVC stage `collect`: validate every run's record and load the grid into DuckDB and the dataset's parquet files.

Reads `runs/<id>/{train.json,curve.json,metrics.json,predictions.parquet}` for every run in params, checks each
row against the schema (types and values), replaces the `local` rows of the DuckDB tables runs, curves, metrics
and predictions (loading twice gives the same rows), derives `points` (the seed replicates of each grid point as
one point with mean and spread; every run stays in `runs`), and writes `leaderboard/data/<table>.parquet` for each:
the database and the parquet files change together or not at all (benchmark/results/transaction.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

from benchmark import cli
from benchmark.results import db, io, schema
from benchmark.evaluation import metrics as metrics_mod
from benchmark.config import params as params_mod
from benchmark.results.parquet import LOCAL, write_parquet
from benchmark.results.points import points_rows



class CollectError(ValueError):
    """A run's files are missing or inconsistent; the message names the file."""


def _read_rows(path: Path, table: str, run_id: str, kinds: dict[str, str], missing: str, what: str) -> list[dict]:
    """Rows of `table` from one of a run's JSON list files, validated: each of this run, source 'local', a task of params."""
    if not path.exists():
        raise CollectError(f"{path}: missing ({missing})")
    records = io.read_json(path)
    if not isinstance(records, list):
        raise CollectError(f"{path}: expected a list of {what} rows, got {type(records).__name__}")
    rows = [schema.validate_record(table, r, where=f"{path} row {i}") for i, r in enumerate(records)]
    bad = [r for r in rows if r["run_id"] != run_id or r["source"] != LOCAL or r["task"] not in {*kinds, "all"}]
    if bad:
        raise CollectError(f"{path}: a row of run {bad[0]['run_id']!r}, source {bad[0]['source']!r}, task "
                           f"{bad[0]['task']!r} (expected run {run_id!r}, source 'local', a task of params)")
    return rows


def read_curve(path: Path, run_id: str, kinds: dict[str, str]) -> list[dict]:
    """A run's learning curve (curve.json, rows of the `curves` table), validated."""
    return _read_rows(path, "curves", run_id, kinds, "retrain the run: the train stage writes it", "curve")


def read_run(run_dir: Path, run_id: str, kinds: dict[str, str], size: str | None = None):
    """(runs row, metrics rows, predictions as an Arrow table or None, curve rows) of one run directory, validated."""
    train_path = run_dir / "train.json"
    if not train_path.exists():
        raise CollectError(f"{train_path}: missing (has the run been trained?)")
    run = schema.validate_record("runs", io.read_json(train_path), where=str(train_path))
    if run["run_id"] != run_id or run["source"] != LOCAL:
        raise CollectError(f"{train_path}: run_id {run['run_id']!r} / source {run['source']!r}, expected {run_id!r} / 'local'")
    if size is not None and run["model_size"] != size:
        raise CollectError(f"{train_path}: model_size {run['model_size']!r}, but params say runs.{run_id}.size is {size!r}")
    metrics, preds = [], None
    if run["status"] == "completed":
        mpath = run_dir / "metrics.json"
        metrics = _read_rows(mpath, "metrics", run_id, kinds, "has the run been evaluated and scored?", "metric")
        have = {(r["task"], r["metric"]) for r in metrics}
        # every completed run has val_loss per task and 'all', and each task's metrics (metrics.METRICS)
        need = {("all", metrics_mod.LOSS)} | {(t, metrics_mod.LOSS) for t in kinds}
        need |= {(t, m) for t, k in kinds.items() for m in metrics_mod.for_task_kind(k)}
        missing = sorted(need - have)
        if missing:
            raise CollectError(f"{mpath}: missing metric {missing[0][1]!r} for task {missing[0][0]!r}")
        preds = read_predictions(run_dir / "predictions.parquet", run_id, kinds)
    return run, metrics, preds, read_curve(run_dir / "curve.json", run_id, kinds)


def read_predictions(path: Path, run_id: str, kinds: dict[str, str]):
    """A run's predictions.parquet as an Arrow table, checked column-wise (it can hold 10^5 rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not path.exists():
        raise CollectError(f"{path}: missing (has the run been evaluated?)")
    try:
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise CollectError(f"{path}: not a readable parquet file ({' '.join(str(e).split())[:200]})") from None
    data = schema.validate_arrow("predictions", data, where=str(path))
    for column, allowed in (("run_id", [run_id]), ("source", [LOCAL]), ("task", list(kinds))):
        bad = pc.invert(pc.is_in(data.column(column), value_set=pa.array(allowed)))
        if data.num_rows and pc.any(bad).as_py():
            row = pc.index(bad, True).as_py()
            raise CollectError(f"{path}: row {row} has {column} {data.column(column)[row].as_py()!r}, expected one of {allowed}")
    return data


def collect(p: params_mod.Params, runs_dir: Path, db_path: Path, out_dir: Path) -> dict[str, int]:
    """Every run's record checked first; then DuckDB and the parquet files change in one transaction."""
    import pyarrow as pa

    kinds = {t.name: t.kind for t in p.data.tasks}
    runs, metrics, preds, curves = [], [], [], []
    for run_id in sorted(p.runs):
        run, m, pr, c = read_run(runs_dir / run_id, run_id, kinds, p.runs[run_id].size)
        runs.append(run)
        metrics += m
        curves += c
        if pr is not None:
            preds.append(pr)
    stray = sorted(d.name for d in runs_dir.iterdir() if d.is_dir() and d.name not in p.runs) if runs_dir.exists() else []
    if stray:
        print(f"note: ignoring run folders not in params: {', '.join(stray)}", file=sys.stderr)
    predictions = pa.concat_tables(preds) if preds else schema.arrow_schema("predictions").empty_table()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with db.update(db_path, out_dir) as (con, txn):
        db.replace_rows(con, "runs", runs, source=LOCAL)
        db.replace_rows(con, "metrics", metrics, source=LOCAL)
        db.replace_arrow(con, "predictions", predictions, source=LOCAL)
        db.replace_rows(con, "points", points_rows(runs, metrics), source=LOCAL)  # replicates as one point with spread
        db.replace_rows(con, "curves", curves, source=LOCAL)
        # Parquet from what the database now holds, so both always agree.
        for table in ("runs", "metrics", "points", "predictions", "curves"):
            write_parquet(db.read_arrow(con, table, "source = ?", [LOCAL]), txn.stage(out_dir / "data" / f"{table}.parquet"))
    return {"runs": len(runs), "metrics": len(metrics), "predictions": predictions.num_rows, "curves": len(curves)}


def main(argv: list[str]) -> int:
    ap = cli.parser("collect", __doc__, params=True)
    ap.add_argument("--runs", default="runs")
    ap.add_argument("--db", default="leaderboard/results.duckdb")
    ap.add_argument("--out", default="leaderboard")
    args, p = cli.parse(ap, argv)
    counts = collect(p, Path(args.runs), Path(args.db), Path(args.out))
    print(f"collected {counts['runs']} runs, {counts['metrics']} metric rows, {counts['predictions']} predictions, "
          f"{counts['curves']} learning-curve points into {args.db}")
    return 0
