"""What every importer of published results shares: run defaults, checked values, CSV reading with line numbers, the sources row, one all-or-nothing write into the DuckDB tables."""
from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path
from typing import Any
from benchmark.results import db, schema
from benchmark.results.parquet import LOCAL
from benchmark.errors import CommandError


IMPORTER_VERSION = "1"


TABLES = ("runs", "metrics", "models", "sources")


def run_defaults() -> dict[str, Any]:
    """A runs row with every nullable column null (imported sources rarely publish architecture or timing)."""
    return {c.name: None for c in schema.columns("runs") if c.nullable}


def positive(value: Any, column: str, where: str) -> float:
    """A positive finite number, or CommandError naming `where` (file:line) and the column."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CommandError(f"{where}: {column!r} is not a number ({value!r})") from None
    if not math.isfinite(x) or x <= 0:
        raise CommandError(f"{where}: {column!r} must be a positive finite number, got {value!r}")
    return x


def sha256_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def source_row(source: str, info: dict[str, Any], importer: str, paths: list[Path], runs: list, metrics: list,
               note: str | None = None) -> dict[str, Any]:
    return {"source": source, "citation": info["citation"], "url": info.get("url"), "commit": info.get("commit"),
            "license": info.get("license"), "importer": importer, "importer_version": IMPORTER_VERSION,
            "input_sha256": sha256_files(paths), "n_runs": len(runs), "n_metrics": len(metrics), "note": note}


def write_source(db_path: str | Path, source: str, tables: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Make `tables` the only rows of `source` in every table of TABLES, all in one transaction.

    Every row is checked against the schema before the database is opened, so a bad row writes nothing."""
    if source == LOCAL:
        raise CommandError(f"--source {LOCAL!r} is reserved for this checkout's own runs")
    if not Path(db_path).parent.is_dir():
        raise CommandError(f"--db {db_path}: folder {Path(db_path).parent} does not exist")
    checked = {}
    for table in TABLES:
        rows = tables.get(table, [])
        try:
            checked[table] = [schema.validate_record(table, r, where=f"row {i}") for i, r in enumerate(rows)]
        except schema.SchemaError as e:
            raise CommandError(str(e)) from None
        if any(r["source"] != source for r in checked[table]):
            raise CommandError(f"{table}: a row is not of source {source!r}")
    import duckdb

    try:
        con = db.connect(str(db_path))
    except duckdb.Error as e:
        raise CommandError(f"--db {db_path}: cannot open ({str(e).splitlines()[0]})") from None
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            for table in TABLES:
                names = schema.column_names(table)
                con.execute(f"DELETE FROM {table} WHERE source = ?", [source])
                if checked[table]:  # through Arrow: executemany takes a minute for Pythia's 32,697 metric rows
                    from benchmark.results.parquet import table_to_arrow

                    arrow = table_to_arrow(checked[table], table)  # noqa: F841 (read by DuckDB by name)
                    con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM arrow")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return {t: len(checked[t]) for t in TABLES}


def read_csv_lines(path: Path, required: tuple[str, ...] = ()) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV; one-line errors for an unreadable file, a missing column, a short or long row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise CommandError(f"{path}, line 1: missing column {missing[0]!r} (have: {', '.join(header)})")
            records = []
            for rec in reader:
                if None in rec:
                    raise CommandError(f"{path}, line {reader.line_num}: {len(header) + len(rec[None])} fields, the header has {len(header)}")
                short = [k for k, v in rec.items() if v is None]
                if short:
                    raise CommandError(f"{path}, line {reader.line_num}: column {short[0]!r} is missing (the row has fewer fields than the header)")
                records.append((reader.line_num, rec))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise CommandError(f"{path}: cannot read ({e})") from None
    if not records:
        raise CommandError(f"{path}: no data rows")
    return records


def read_csv_records(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, str]]:
    return [rec for _, rec in read_csv_lines(path, required)]
