"""Command `export`: rewrite the parquet files of the Hugging Face dataset folder from the DuckDB tables' local rows.

Not a pipeline stage (collect and fit write these files themselves); useful after editing the
database by hand. `leaderboard/data/<config>.parquet` for the configs runs, metrics, points, fits,
literature, predictions, curves; the dataset card (README.md with the `configs` YAML header) is written by
the report stage. `table_to_arrow` and `write_parquet_atomic` are the parquet helpers the stages share.
"""
from __future__ import annotations

from pathlib import Path

from benchmark import cli
from benchmark.results import db
from benchmark.results.parquet import CONFIGS, LOCAL, table_to_arrow, write_parquet_atomic


def export(db_path: str | Path, out_dir: str | Path, source: str = LOCAL) -> dict[str, int]:
    """Write one parquet file per config; literature is exported whole (it is reference data)."""
    out_dir = Path(out_dir)
    counts = {}
    con = db.connect(str(db_path), read_only=True)
    try:
        for table in CONFIGS:
            if table == "literature":
                rows = db.read_rows(con, table)
            else:
                rows = db.read_rows(con, table, "source = ?", [source])
            write_parquet_atomic(table_to_arrow(rows, table), out_dir / "data" / f"{table}.parquet")
            counts[table] = len(rows)
    finally:
        con.close()
    return counts


def main(argv: list[str]) -> int:
    ap = cli.parser("export", __doc__)
    ap.add_argument("--db", default="leaderboard/results.duckdb")
    ap.add_argument("--out", default="leaderboard")
    args = ap.parse_args(argv)
    counts = export(args.db, args.out)
    print("exported " + ", ".join(f"{t}: {n} rows" for t, n in counts.items()))
    return 0
