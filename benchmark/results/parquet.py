"""The dataset's parquet files: the config names, Arrow tables in the schema's types, atomic parquet writes."""
from __future__ import annotations

from pathlib import Path
from benchmark.results import io, schema


CONFIGS = ("runs", "metrics", "points", "fits", "literature", "predictions", "curves")


LOCAL = "local"


def table_to_arrow(rows: list[dict], table: str):
    import pyarrow as pa

    sch = schema.arrow_schema(table)
    return pa.Table.from_pylist(rows, schema=sch)


def write_parquet(arrow_table, path: Path) -> None:
    """No timestamps or writer-dependent row groups: identical rows give identical bytes."""
    import pyarrow.parquet as pq

    pq.write_table(arrow_table, path, compression="zstd", store_schema=True)


def write_parquet_atomic(arrow_table, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        write_parquet(arrow_table, tmp)
