"""Command `pull`: load a published results dataset (this project's format) into the local DuckDB as its own source.

Rows of runs, metrics, fits, predictions and curves get `source` = the pull's name (default `hub:ORG/NAME@<sha12>`), so
they never mix with `source='local'`; pulling the same revision again replaces them with identical rows.
`literature` is reference data keyed by (source, law, parameter): only rows not yet present are added.
Exit status: 0 pulled, 2 bad arguments or invalid files, 1 the Hub or the network failed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmark.results import db, schema
from benchmark.results.parquet import CONFIGS, LOCAL
from benchmark.results.dataset import check_repo_id, check_revision, hub_error, read_checked, scrub
from benchmark.errors import CommandError

LITERATURE_KEY = ("source", "law", "parameter")


def parse_spec(spec: str) -> tuple[str, str]:
    """'ORG/NAME[@revision]' -> (repo_id, revision)."""
    repo_id, _, revision = spec.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise CommandError(f"expected ORG/NAME[@revision], got {spec!r}")
    check_repo_id(repo_id, "dataset id")  # refused here, before any network (exit 2)
    return repo_id, check_revision(revision or "main", "revision")


def download(repo_id: str, revision: str, into: Path) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """Resolve the revision to a commit, download its parquet files and check them; (commit sha, rows per table)."""
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.utils import disable_progress_bars, logging as hf_logging

    disable_progress_bars()
    hf_logging.set_verbosity_error()
    try:
        sha = HfApi().dataset_info(repo_id, revision=revision).sha
        path = Path(snapshot_download(repo_id, repo_type="dataset", revision=sha, local_dir=into,
                                      allow_patterns=["data/*.parquet"]))
    except Exception as e:  # any Hub/network failure becomes one line
        raise hub_error(e, constants.ENDPOINT, f"{repo_id}@{revision}") from None
    tables = {}
    for table in CONFIGS:
        file = path / "data" / f"{table}.parquet"
        if not file.is_file():
            raise CommandError(f"{repo_id}@{sha[:12]} has no data/{table}.parquet: not a dataset of this project's format")
        rows = read_checked(file, table)
        tables[table] = rows
    return sha, tables


def merge_literature(con, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert literature rows whose key is not present; returns (added, already present)."""
    present = {tuple(r) for r in con.execute(f"SELECT {', '.join(LITERATURE_KEY)} FROM literature").fetchall()}
    new, seen = [], set()
    for r in rows:
        key = tuple(r[k] for k in LITERATURE_KEY)
        if key not in present and key not in seen:
            new.append(schema.validate_record("literature", r))
            seen.add(key)
    if new:
        with db.atomic(con):
            db.insert_rows(con, "literature", new)
    return len(new), len(rows) - len(new)


def pull(spec: str, db_path: str, source: str | None = None) -> dict[str, Any]:
    repo_id, revision = parse_spec(spec)
    if source == LOCAL:
        raise CommandError(f"--source {LOCAL!r} is reserved for this checkout's own runs")
    if not Path(db_path).parent.is_dir():
        raise CommandError(f"--db {db_path}: folder {Path(db_path).parent} does not exist")
    with tempfile.TemporaryDirectory(prefix="benchmark-pull-") as tmp:
        sha, tables = download(repo_id, revision, Path(tmp))
    name = source or f"hub:{repo_id}@{sha[:12]}"
    for table, rows in tables.items():
        if table != "literature":
            for r in rows:
                r["source"] = name
    con = db.connect(db_path)
    try:
        counts = {t: db.replace_rows(con, t, rows, source=name) for t, rows in tables.items() if t != "literature"}
        added, kept = merge_literature(con, tables["literature"])
    finally:
        con.close()
    return {"repo_id": repo_id, "revision": revision, "commit": sha, "source": name, "rows": counts,
            "literature_added": added, "literature_present": kept}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark pull", description=__doc__.splitlines()[0])
    ap.add_argument("spec", metavar="ORG/NAME[@revision]")
    ap.add_argument("--db", default="leaderboard/results.duckdb")
    ap.add_argument("--source", help="source name for the pulled rows (default: hub:ORG/NAME@<commit sha[:12]>)")
    args = ap.parse_args(argv)
    try:
        out = pull(args.spec, args.db, args.source)
    except CommandError as e:
        print(scrub(f"error: {e}"), file=sys.stderr)
        return e.code
    rows = ", ".join(f"{t} {n}" for t, n in out["rows"].items())
    print(f"pulled {out['repo_id']}@{out['commit'][:12]} into {args.db} as source {out['source']!r}: {rows}; "
          f"literature {out['literature_added']} added, {out['literature_present']} already present")
    return 0
