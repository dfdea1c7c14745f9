"""DuckDB access for the result tables: create from the schema, replace a source's rows, read back.

Writes are idempotent: loading the same rows twice leaves the same table, because a load
replaces every row of the given source (and table) inside one transaction.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from benchmark import schema


class DatabaseLocked(RuntimeError):
    """Another process holds the DuckDB file open; the message names the file and that process."""


def connect(path: str, read_only: bool = False):
    import duckdb

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
    return con


def replace_rows(con, table: str, rows: Iterable[dict[str, Any]], source: str | None = None) -> int:
    """Validate `rows` and make them the only rows of `table` for their source(s).

    If `source` is given, rows of that source are deleted even when `rows` is empty.
    Returns the number of rows written.
    """
    rows = [schema.validate_record(table, r, where=f"row {i}") for i, r in enumerate(rows)]
    sources = {r["source"] for r in rows} | ({source} if source is not None else set())
    with transaction(con):
        for s in sorted(sources):
            con.execute(f"DELETE FROM {table} WHERE source = ?", [s])
        insert_rows(con, table, rows)
    return len(rows)


@contextmanager
def transaction(con) -> Iterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK and re-raise: the block's writes land all together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def insert_rows(con, table: str, rows: list[dict[str, Any]]) -> None:
    """Append already validated rows to `table`, in schema column order."""
    if rows:
        names = schema.column_names(table)
        con.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                        [[r[n] for n in names] for r in rows])


def read_rows(con, table: str, where: str = "", params: list | None = None) -> list[dict[str, Any]]:
    """All rows of `table` (optionally filtered by a SQL `where` clause) as dicts, in a stable order."""
    names = schema.column_names(table)
    sql = f"SELECT {', '.join(names)} FROM {table}"
    if where:
        sql += f" WHERE {where}"
    sql += " ORDER BY " + ", ".join(names[:4])
    return [dict(zip(names, r)) for r in con.execute(sql, params or []).fetchall()]


def sources(con) -> list[str]:
    """Every source present in the runs table."""
    return [r[0] for r in con.execute("SELECT DISTINCT source FROM runs ORDER BY source").fetchall()]
