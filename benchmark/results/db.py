"""DuckDB access for the result tables: create from the schema, replace a source's rows, read back.

Writes are idempotent: loading the same rows twice leaves the same table, because a load
replaces every row of the given source (and table) inside one transaction. Rows go in as one Arrow
table (not row by row): a million predictions load in about a second.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from benchmark.results import schema, transaction


class DatabaseLocked(RuntimeError):
    """Another process holds the DuckDB file open; the message names the file and that process."""


def connect(path: str, read_only: bool = False):
    """Open the DuckDB file, first finishing or discarding an interrupted collect/fit (transaction.recover)."""
    import duckdb

    transaction.recover(Path(path).parent)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as e:
        if "lock" not in str(e).lower():
            raise
        m = re.search(r"Conflicting lock is held in (.+?\(PID \d+\))", str(e))
        holder = m.group(1) if m else "another process"
        raise DatabaseLocked(f"{path} is open in {holder}: close that connection (a notebook?) and run again") from None
    if not read_only:
        for table in schema.TABLES:
            con.execute(schema.duckdb_ddl(table))
            _add_new_columns(con, table)
    return con


def _add_new_columns(con, table: str) -> None:
    """A database written before a nullable column joined the schema gains that column (null in its old rows), so a
    newer collect or fit writes into it instead of failing on the INSERT."""
    have = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                                      [table]).fetchall()}
    for c in schema.columns(table):
        if c.name not in have and c.nullable:
            con.execute(f"ALTER TABLE {table} ADD COLUMN {c.name} {schema.DTYPES[c.dtype][0]}")


@contextmanager
def update(path: str | Path, folder: str | Path) -> Iterator[tuple[Any, transaction.Transaction]]:
    """(connection, transaction): edit a copy of the DuckDB file and stage other files (txn.stage) beside it;
    on success the database and every staged file replace the originals together, on an error none does.
    A read-only connection to the original keeps other writers out meanwhile."""
    path = Path(path)
    con = connect(str(path))
    con.execute("CHECKPOINT")  # the copy must hold everything: nothing left in the .wal
    con.close()
    hold = connect(str(path), read_only=True)
    try:
        with transaction.Transaction(folder) as txn:
            work = connect(str(txn.stage_copy(path)))
            try:
                yield work, txn
                work.execute("CHECKPOINT")
            finally:
                work.close()
    finally:
        hold.close()


def replace_rows(con, table: str, rows: Iterable[dict[str, Any]], source: str | None = None) -> int:
    """Validate `rows` and make them the only rows of `table` for their source(s).

    If `source` is given, rows of that source are deleted even when `rows` is empty.
    Returns the number of rows written.
    """
    import pyarrow as pa

    rows = [schema.validate_record(table, r, where=f"row {i}") for i, r in enumerate(rows)]
    sources = {r["source"] for r in rows} | ({source} if source is not None else set())
    return _replace(con, table, pa.Table.from_pylist(rows, schema=schema.arrow_schema(table)), sources)


def replace_arrow(con, table: str, data, source: str, where: str = "") -> int:
    """replace_rows for an Arrow table, validated column-wise (schema.validate_arrow); every row must be of `source`."""
    import pyarrow.compute as pc

    data = schema.validate_arrow(table, data, where)
    if data.num_rows and not pc.all(pc.equal(data.column("source"), source)).as_py():
        raise schema.SchemaError(f"{table}: a row is not of source {source!r}{' in ' + where if where else ''}")
    return _replace(con, table, data, {source})


def _replace(con, table: str, data, sources: set[str]) -> int:
    with atomic(con):
        for s in sorted(sources):
            con.execute(f"DELETE FROM {table} WHERE source = ?", [s])
        insert_arrow(con, table, data)
    return data.num_rows


@contextmanager
def atomic(con) -> Iterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK and re-raise: the block's writes land all together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def insert_arrow(con, table: str, data) -> None:
    """Append an already validated Arrow table to `table`, in schema column order (one INSERT, not row by row)."""
    if data.num_rows:
        names = schema.column_names(table)
        con.register("_incoming", data)
        try:
            con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(names)} FROM _incoming")
        finally:
            con.unregister("_incoming")


def insert_rows(con, table: str, rows: list[dict[str, Any]]) -> None:
    """Append already validated rows to `table`, in schema column order."""
    import pyarrow as pa

    insert_arrow(con, table, pa.Table.from_pylist(rows, schema=schema.arrow_schema(table)))


def read_arrow(con, table: str, where: str = "", params: list | None = None):
    """read_rows as an Arrow table with the schema's types (the parquet files are written from it)."""
    sql = f"SELECT {', '.join(schema.column_names(table))} FROM {table}"
    if where:
        sql += f" WHERE {where}"
    sql += " ORDER BY " + ", ".join(schema.order_by(table))
    data = con.sql(sql, params=params or []).to_arrow_table()
    return data.cast(schema.arrow_schema(table)).combine_chunks()


def read_rows(con, table: str, where: str = "", params: list | None = None) -> list[dict[str, Any]]:
    """All rows of `table` (optionally filtered by a SQL `where` clause) as dicts, in a stable order."""
    names = schema.column_names(table)
    sql = f"SELECT {', '.join(names)} FROM {table}"
    if where:
        sql += f" WHERE {where}"
    sql += " ORDER BY " + ", ".join(schema.order_by(table))
    return [dict(zip(names, r)) for r in con.execute(sql, params or []).fetchall()]


def sources(con) -> list[str]:
    """Every source present in the runs table."""
    return [r[0] for r in con.execute("SELECT DISTINCT source FROM runs ORDER BY source").fetchall()]
