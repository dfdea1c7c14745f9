"""Command `import`: published scaling data in other formats (Epoch's Chinchilla CSV) into the result schema.

The data is imported whole: dropping outliers (e.g. the highest-loss points, as Besiroglu et al. 2024 do) is a
fitting option, applied by the fit code, never here.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Any

from benchmark import db, schema
from benchmark.export import LOCAL
from benchmark.publish import CommandError

CHINCHILLA_COLUMNS = ("Model Size", "Training FLOP", "loss")
CHINCHILLA_SIGNATURE = (
    "Final validation loss (nats/token) of Hoffmann et al. 2022, Fig. 4, digitised from the figure by "
    "Besiroglu et al. 2024 (Epoch AI, analyzing-chinchilla/data/svg_extracted_data.csv); evaluation size unknown (n is null)"
)


def _positive(value: str, column: str, line: int) -> float:
    try:
        x = float(value)
    except ValueError:
        raise CommandError(f"line {line}: {column!r} is not a number ({value!r})") from None
    if not math.isfinite(x) or x <= 0:
        raise CommandError(f"line {line}: {column!r} must be a positive finite number, got {value!r}")
    return x


def chinchilla_rows(records: list[dict[str, str]], source: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Runs and metrics rows for Epoch's CSV records: N = `Model Size`, C = `Training FLOP`, D = C / (6 N)."""
    nullable = {c.name: None for c in schema.columns("runs") if c.nullable}
    runs, metrics, seen = [], [], set()
    for line, rec in enumerate(records, start=2):  # line 1 is the header
        n = _positive(rec["Model Size"], "Model Size", line)
        c = _positive(rec["Training FLOP"], "Training FLOP", line)
        loss = _positive(rec["loss"], "loss", line)
        tokens = round(c / (6 * n))  # Hoffmann et al. 2022: C = 6 N D
        model_size = f"chinchilla-{n:.3g}"
        run_id = f"{model_size}-{tokens}-s0"
        if run_id in seen:
            raise CommandError(f"line {line}: duplicate point (same N to 3 digits and same D): {run_id}")
        seen.add(run_id)
        runs.append({**nullable, "source": source, "run_id": run_id, "model_size": model_size,
                     "n_params": round(n), "tokens": tokens, "flops": c, "seed": 0, "status": "completed",
                     "schema_version": schema.SCHEMA_VERSION})
        # n (examples behind the value) is not published; the schema requires it, 0 stands for unknown.
        metrics.append({"source": source, "run_id": run_id, "task": "all", "metric": "val_loss", "value": loss,
                        "stderr": None, "n": None, "signature": CHINCHILLA_SIGNATURE})
    return runs, metrics


def read_chinchilla(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CHINCHILLA_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CommandError(f"{path}: not Epoch's Chinchilla CSV, missing column {missing[0]!r}")
            records = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CommandError(f"{path}: cannot read ({e})") from None
    if not records:
        raise CommandError(f"{path}: no data rows")
    return records


def import_chinchilla(path: Path, db_path: str, source: str = "chinchilla") -> dict[str, int]:
    """Replace the `source` rows of runs and metrics with the CSV's points; returns rows written per table."""
    if source == LOCAL:
        raise CommandError(f"--source {LOCAL!r} is reserved for this checkout's own runs")
    if not Path(db_path).parent.is_dir():
        raise CommandError(f"--db {db_path}: folder {Path(db_path).parent} does not exist")
    runs, metrics = chinchilla_rows(read_chinchilla(path), source)
    con = db.connect(db_path)
    try:
        return {"runs": db.replace_rows(con, "runs", runs, source=source),
                "metrics": db.replace_rows(con, "metrics", metrics, source=source)}
    finally:
        con.close()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark import", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="format", required=True)
    chin = sub.add_parser("chinchilla", help="Epoch AI's digitised Chinchilla points (Model Size, Training FLOP, loss)")
    chin.add_argument("path", type=Path)
    chin.add_argument("--db", default="leaderboard/results.duckdb")
    chin.add_argument("--source", default="chinchilla")
    args = ap.parse_args(argv)
    try:
        counts = import_chinchilla(args.path, args.db, args.source)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    print(f"imported {args.path} into {args.db} as source {args.source!r}: "
          + ", ".join(f"{t} {n} rows" for t, n in counts.items()))
    return 0
