"""A reproducible scaling-law benchmark: train a grid, score it, fit laws, publish a dataset.

The public Python API (benchmark.api) is re-exported here and imported on first use, so that
`import benchmark` stays light: `benchmark.load_runs()`, `benchmark.read_points(...)`,
`benchmark.fit_law(points, "chinchilla")`, `benchmark.plan_grid("params.yaml")`, `benchmark.LAWS`.
"""
from __future__ import annotations

__version__ = "0.1.0"

_API = ("LAWS", "METRICS", "FitResult", "Points", "load_table", "load_runs", "load_metrics", "load_fits",
        "read_points", "points_from_results", "fit_law", "plan_grid")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:  # by name, not an import statement: no stage depends on the API module
        import importlib

        return getattr(importlib.import_module("benchmark.api"), name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
