"""Command `import`: published scaling results (Chinchilla, Pythia, ObsScaling, any table with a map) into the result schema.

Every format becomes rows of `runs` and `metrics` under its own `source`, one `models` row per model
(its family) and one `sources` row (citation, URL, commit, license, importer version, input hash).
The data is imported whole: dropping outliers (e.g. the highest-loss points, as Besiroglu et al.
2024 do) is a fitting option, applied by the fit code, never here. Any error is one line naming the
file, line and column, and nothing is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmark.errors import CommandError
from benchmark.sources.common import write_source
from benchmark.sources.chinchilla import chinchilla_tables


# --- Epoch's Chinchilla CSV ---------------------------------------------------------------------


# --- the command ----------------------------------------------------------------------------------

def _tables(fmt: str, args) -> dict[str, list[dict[str, Any]]]:
    if fmt == "chinchilla":
        return chinchilla_tables(args.path, args.source)
    if fmt == "pythia":
        from benchmark.sources import pythia as import_pythia
        return import_pythia.tables(args.path, args.source)
    if fmt == "obsscaling":
        from benchmark.sources import obsscaling as import_obsscaling
        return import_obsscaling.tables(args.path, args.source)
    from benchmark.sources import table as import_table
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
