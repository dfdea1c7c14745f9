"""The public Python API: load results, read points from a CSV, fit any registered law, plan a grid.

Everything here is re-exported by `import benchmark` (e.g. `benchmark.fit_law`). Results are the
schema's tables (benchmark.results.schema: runs, metrics, predictions, fits, literature) of every source:
`local` for this checkout's runs, otherwise the name a pulled or imported dataset was given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.scaling.engine import FitResult, FitSettings, Points
from benchmark.scaling.laws import LAWS
from benchmark.evaluation.metrics import METRICS

DEFAULT_DB = "leaderboard/results.duckdb"
DEFAULT_DATA = "leaderboard/data"
KINDS = ("pandas", "arrow", "duckdb")
# Laws beyond the registry's formulas that the fit stage also fits: Approach 2 of Hoffmann et al.
# 2022 (IsoFLOP parabolas) and the two-step downstream law (Dubey et al. 2024; Bhagia et al. 2024).
METHODS = ("approach2", "two_step")

__all__ = ["LAWS", "METRICS", "FitResult", "Points", "load_table", "load_runs", "load_metrics", "load_fits",
           "read_points", "points_from_results", "fit_law", "plan_grid"]


def _as(table, kind: str):
    if kind == "arrow":
        return table
    if kind == "pandas":
        return table.to_pandas()
    if kind == "duckdb":
        import duckdb

        return duckdb.from_arrow(table)  # on DuckDB's in-memory connection: no lock on the results file
    raise ValueError(f"as_={kind!r}: expected one of {', '.join(KINDS)}")


def load_table(table: str, source: str | None = None, *, db: str | Path | None = None,
               data_dir: str | Path | None = None, as_: str = "pandas"):
    """One result table as a pandas DataFrame (as_='pandas'), an Arrow table ('arrow') or a DuckDB relation
    ('duckdb'), with the schema's columns and types; only `source`'s rows when given.

    Read from the DuckDB file `db` (default leaderboard/results.duckdb, which holds local, pulled and
    imported sources); where no database exists, from `data_dir`/<table>.parquet (default leaderboard/data,
    the dataset folder: local rows only)."""
    from benchmark.results import schema

    names = schema.column_names(table)  # raises SchemaError for an unknown table
    if as_ not in KINDS:
        raise ValueError(f"as_={as_!r}: expected one of {', '.join(KINDS)}")
    db_path = Path(db if db is not None else DEFAULT_DB)
    if db_path.exists():
        from benchmark.results import db as db_mod

        con = db_mod.connect(str(db_path), read_only=True)
        try:
            where, args = (" WHERE source = ?", [source]) if source is not None else ("", [])
            sql = f"SELECT {', '.join(names)} FROM {table}{where} ORDER BY {', '.join(names[:4])}"
            arrow = con.sql(sql, params=args or None).to_arrow_table().cast(schema.arrow_schema(table))
        finally:
            con.close()
    elif db is None:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        path = Path(data_dir if data_dir is not None else DEFAULT_DATA) / f"{table}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{db_path} and {path}: neither exists (run `dvc repro`, or `python -m benchmark "
                                    "pull`/`import` first)")
        arrow = pq.read_table(path)
        if source is not None:
            arrow = arrow.filter(pc.equal(arrow["source"], source))
    else:
        raise FileNotFoundError(f"{db_path}: no such database")
    return _as(arrow, as_)


def load_runs(source: str | None = None, **kw):
    """The `runs` table (one row per trained, pulled or imported run); see load_table."""
    return load_table("runs", source, **kw)


def load_metrics(source: str | None = None, **kw):
    """The `metrics` table (one row per run, task and metric; the metrics of benchmark.METRICS); see load_table."""
    return load_table("metrics", source, **kw)


def load_fits(source: str | None = None, **kw):
    """The `fits` table (one row per law, target and parameter, with bootstrap SE and interval); see load_table."""
    return load_table("fits", source, **kw)


def read_points(path: str | Path, n_col: str, loss_col: str, flops_col: str | None = None,
                tokens_col: str | None = None, drop_highest_loss: int = 0) -> Points:
    """Points (y = loss, N, D, C) from named CSV columns; D = C / (6N) without a tokens column
    (Hoffmann et al. 2022, Sec. 3). Bad cells raise FitError naming the file, line and column."""
    from benchmark.sources.csv_points import read_points as read

    return read(path, n_col, loss_col, flops_col, tokens_col, drop_highest_loss)


def points_from_results(target: str = "val_loss/all", source: str = "local", *, db: str | Path | None = None,
                        data_dir: str | Path | None = None) -> Points:
    """The points the fit stage fits for `target` ('<metric>/<task>', e.g. 'val_loss/all' or 'bleu/translation')
    over the completed runs of `source` (y = the metric; L = the task's val_loss where it exists)."""
    from benchmark.results import db as db_mod
    from benchmark.scaling.targets import load_targets
    from benchmark.scaling.engine import FitError

    db_path = Path(db if db is not None else DEFAULT_DB)
    con = db_mod.connect(str(db_path), read_only=True) if db_path.exists() else db_mod.connect(":memory:")
    try:
        targets = load_targets(con, source, data_dir if data_dir is not None else DEFAULT_DATA)
    finally:
        con.close()
    if target not in targets:
        raise FitError(f"no completed runs of source {source!r} have {target!r} (have: {', '.join(sorted(targets)) or 'none'})")
    return targets[target]


def fit_law(points: Points, law: str = "chinchilla", *, bootstrap: int = 4000, seed: int = 0, holdout: float = 0.2,
            huber_delta: float = 1e-3, bootstrap_starts: int = 2, allocation_flops: float | None = None,
            budget_tolerance: float = 0.15, target: str = "") -> FitResult:
    """Fit a law of benchmark.LAWS (or 'approach2', 'two_step') the way the fit stage does: multi-start
    L-BFGS on the summed Huber loss, `bootstrap` resamples for standard errors and 95 % intervals, and the
    relative error on the held-out `holdout` fraction of largest-compute points (fitted without them)."""
    from benchmark.scaling.engine import FitError, fit, fit_two_step

    settings = FitSettings(delta=huber_delta, bootstrap=bootstrap, seed=seed, holdout_fraction=holdout,
                           bootstrap_starts=bootstrap_starts, allocation_flops=allocation_flops, budget_tolerance=budget_tolerance)
    if law == "two_step":
        return fit_two_step(points, settings, target=target)
    if law == "approach2":
        from benchmark.scaling.isoflop import fit_approach2

        return fit_approach2(points, settings, tolerance=budget_tolerance, target=target)
    if law not in LAWS:
        raise FitError(f"unknown law {law!r}; known: {', '.join([*LAWS, *METHODS])}")
    return fit(law, points, settings, target=target)


def plan_grid(params: str | Path = "params.yaml", as_: str = "pandas") -> Any:
    """Every run of the params file's grid before any compute (run id, size, N, D, tokens per parameter,
    batch, learning rate, FLOPs), ordered by compute: a DataFrame, or the grid.Point list with as_='list'."""
    import dataclasses

    from benchmark.config import grid, params as params_mod

    points = grid.points(params_mod.load(params))
    if as_ == "list":
        return points
    if as_ != "pandas":
        raise ValueError(f"as_={as_!r}: expected 'pandas' or 'list'")
    import pandas as pd

    return pd.DataFrame([{**dataclasses.asdict(q), "tokens_per_param": q.tokens_per_param} for q in points])
