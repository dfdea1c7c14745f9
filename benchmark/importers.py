"""Command `import`: published scaling results (Chinchilla, Pythia, ObsScaling, any table with a map) into the result schema.

Every format becomes rows of `runs` and `metrics` under its own `source`, one `models` row per model
(its family) and one `sources` row (citation, URL, commit, license, importer version, input hash).
The data is imported whole: dropping outliers (e.g. the highest-loss points, as Besiroglu et al.
2024 do) is a fitting option, applied by the fit code, never here. Any error is one line naming the
file, line and column, and nothing is written.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
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
CHINCHILLA_SOURCE = {
    "citation": "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (arXiv:2203.15556), Fig. 4, "
                "as digitised by Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt (arXiv:2404.10102)",
    "url": "https://github.com/epoch-research/analyzing-chinchilla", "commit": None,
    "license": "none stated (figure data of a published paper)",
}
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
                    from benchmark.export import table_to_arrow

                    arrow = table_to_arrow(checked[table], table)  # noqa: F841 (read by DuckDB by name)
                    con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM arrow")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return {t: len(checked[t]) for t in TABLES}


# --- Epoch's Chinchilla CSV ---------------------------------------------------------------------

def chinchilla_rows(records: list[dict[str, str]], source: str, path: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Runs and metrics rows for Epoch's CSV records: N = `Model Size`, C = `Training FLOP`, D = C / (6 N)."""
    runs, metrics, seen = [], [], set()
    for line, rec in enumerate(records, start=2):  # line 1 is the header
        where = f"{path}, line {line}" if path else f"line {line}"
        n = positive(rec["Model Size"], "Model Size", where)
        c = positive(rec["Training FLOP"], "Training FLOP", where)
        loss = positive(rec["loss"], "loss", where)
        tokens = round(c / (6 * n))  # Hoffmann et al. 2022: C = 6 N D
        model_size = f"chinchilla-{n:.3g}"
        run_id = f"{model_size}-{tokens}-s0"
        if run_id in seen:
            raise CommandError(f"{where}: duplicate point (same N to 3 digits and same D): {run_id}")
        seen.add(run_id)
        runs.append({**run_defaults(), "source": source, "run_id": run_id, "model_size": model_size,
                     "n_params": round(n), "tokens": tokens, "flops": c, "seed": 0, "status": "completed",
                     "schema_version": schema.SCHEMA_VERSION})
        metrics.append({"source": source, "run_id": run_id, "task": "all", "metric": "val_loss", "value": loss,
                        "stderr": None, "n": None, "signature": CHINCHILLA_SIGNATURE})
    return runs, metrics


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


def chinchilla_tables(path: Path, source: str) -> dict[str, list[dict[str, Any]]]:
    records = read_csv_records(path, CHINCHILLA_COLUMNS)
    runs, metrics = chinchilla_rows(records, source, str(path))
    models = [{"source": source, "model_size": m, "family": "Chinchilla", "model_id": None}
              for m in dict.fromkeys(r["model_size"] for r in runs)]
    note = "N = Model Size, C = Training FLOP, D = C / (6 N) rounded; every point kept (the 5 highest losses too)."
    return {"runs": runs, "metrics": metrics, "models": models,
            "sources": [source_row(source, CHINCHILLA_SOURCE, "benchmark.importers chinchilla", [path], runs, metrics, note)]}


def import_chinchilla(path: Path, db_path: str, source: str = "chinchilla") -> dict[str, int]:
    """Replace the `source` rows with the CSV's points; returns rows written per table."""
    return write_source(db_path, source, chinchilla_tables(path, source))


# --- the command ----------------------------------------------------------------------------------

def _tables(fmt: str, args) -> dict[str, list[dict[str, Any]]]:
    if fmt == "chinchilla":
        return chinchilla_tables(args.path, args.source)
    if fmt == "pythia":
        from benchmark import import_pythia
        return import_pythia.tables(args.path, args.source)
    if fmt == "obsscaling":
        from benchmark import import_obsscaling
        return import_obsscaling.tables(args.path, args.source)
    from benchmark import import_table
    return import_table.tables(args.path, args.map, args.source)


DEFAULT_SOURCE = {"chinchilla": "chinchilla", "pythia": "pythia", "obsscaling": "obsscaling", "table": None}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark import", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="format", required=True)
    helps = {"chinchilla": "Epoch AI's digitised Chinchilla points (CSV: Model Size, Training FLOP, loss)",
             "pythia": "EleutherAI's Pythia zero-shot evals (folder of pythia-<size>/<size>_step<k>.json)",
             "obsscaling": "Ruan et al. 2024 ObsScaling base_llm_benchmark_eval.csv",
             "table": "any published table (CSV, JSON lines or parquet) with a YAML map of its columns"}
    for fmt, help_ in helps.items():
        p = sub.add_parser(fmt, help=help_)
        p.add_argument("path", type=Path)
        if fmt == "table":
            p.add_argument("--map", required=True, type=Path, help="YAML: which columns are N, D, C, family and metrics")
        p.add_argument("--db", default="leaderboard/results.duckdb")
        p.add_argument("--source", default=DEFAULT_SOURCE[fmt], help="source name (default: the format's, or the map's)")
    args = ap.parse_args(argv)
    try:
        if not args.path.exists():
            raise CommandError(f"{args.path}: no such file or folder")
        tables = _tables(args.format, args)
        source = tables["sources"][0]["source"]
        counts = write_source(args.db, source, tables)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    print(f"imported {args.path} into {args.db} as source {source!r}: " + ", ".join(f"{t} {n} rows" for t, n in counts.items()))
    note = tables["sources"][0].get("note")
    if note and "left out" in note:
        print(f"note: {note}")
    return 0
