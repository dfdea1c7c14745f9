"""DVC stage `fit`: every scaling law the completed local runs support, with bootstrap intervals and
held-out extrapolation error, into the DuckDB tables `fits` and `literature` and leaderboard/fits.json.

Loss targets (metric 'val_loss', task 'all' and each task): chinchilla (Hoffmann et al. 2022,
Approach 3), Kaplan et al. 2020's L(N, D), L(N) and L(D), and Approach 2 where budgets allow.
Downstream targets (bleu, rouge*, accuracy, ...): the seed law, a sigmoid of log-compute, and the
two-step method (task loss from chinchilla, metric as a sigmoid of task loss) where the task has a
loss: its target_loss (the answer alone, when data.loss_on is "text"), else its val_loss. Only runs with status
'completed' enter a fit.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmark import cli
from benchmark.results import db, io
from benchmark.scaling import literature
from benchmark.config import params as params_mod
from benchmark.results.parquet import LOCAL, write_parquet
from benchmark.scaling.engine import FitResult
from benchmark.scaling.targets import fit_metrics, fit_rows, fit_target, heldout_table, load_targets, read_settings

# The `fit:` section is checked by benchmark/config/params.py (the one params checker), defaults included.
SettingsError = params_mod.ParamsError


def _timed_fit(target: str, pts, s: dict) -> tuple[list[FitResult], list[str], float]:
    t0 = time.perf_counter()
    res, skip = fit_target(target, pts, s)
    return res, skip, time.perf_counter() - t0


def _die_with(parent: int) -> None:
    """Pool initializer (Linux): the worker gets SIGKILL when the fit process dies, so a fit killed mid-run
    (SIGKILL, a scheduler's time limit) leaves no worker behind holding a core or its caller's pipes."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the fit process died before the call above
        os._exit(1)


def _fit_targets(items: list[tuple], s: dict) -> list[tuple[list[FitResult], list[str], float]]:
    """fit_target for each (target, points), in order. Targets are independent (each fit seeds its own bootstrap
    from the settings), so on Linux they run in one forked process per core, with the same results as one after
    another; elsewhere one after another."""
    workers = min(len(items), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if workers <= 1 or not sys.platform.startswith("linux"):
        return [_timed_fit(t, pts, s) for t, pts in items]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_die_with, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(_timed_fit, t, pts, s) for t, pts in items]
        return [f.result() for f in futures]


def run(db_path: str | Path, params_path: str | Path, out_path: str | Path, source: str = LOCAL,
        data_dir: str | Path | None = None) -> list[FitResult]:
    """Fit every target; write the DuckDB tables fits and literature, fits.json, and (with data_dir)
    data_dir/{fits,literature}.parquet, the stage's DVC outputs."""
    s = read_settings(params_path)
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    con = db.connect(str(db_path))
    try:
        targets = load_targets(con, source, data_dir, downstream=s["downstream_metrics"])
    finally:
        con.close()
    results, skipped = [], []
    items = sorted(targets.items())
    for (target, pts), (res, skip, seconds) in zip(items, _fit_targets(items, s)):
        results += res
        skipped += skip
        print(f"fit: {target}: {len(res)} laws on {pts.n} runs in {seconds:.1f}s", file=sys.stderr)
    for line in skipped:
        print(f"fit: skipped {line}", file=sys.stderr)
    print(heldout_table(results), file=sys.stderr)
    # DuckDB, the parquet files, fits.json and fit_draws.json change together or not at all.
    with db.update(db_path, Path(db_path).parent) as (con, txn):
        db.replace_rows(con, "fits", fit_rows(results, source), source=source)
        db.replace_rows(con, "literature", literature.rows())
        if source == LOCAL:  # imported sources in the database (python -m benchmark import ...) get the same laws
            from benchmark.scaling import crossfit
            crossfit.run(con, s)
        if data_dir is not None:
            for table in ("fits", "literature"):
                data = db.read_arrow(con, table, "source = ?", [source]) if table == "fits" else db.read_arrow(con, table)
                write_parquet(data, txn.stage(Path(data_dir) / f"{table}.parquet"))
        txn.stage(out_path).write_text(io.dump_json([r.to_json() for r in results]), encoding="utf-8")
        # Bootstrap draws for the report's uncertainty bands: '<law>|<target>' -> parameter sets.
        txn.stage(Path(out_path).with_name("fit_draws.json")).write_text(
            io.dump_json({f"{r.law}|{r.target}": r.draws for r in results if r.draws}), encoding="utf-8")
        txn.stage(Path(out_path).with_name("fit_metrics.json")).write_text(io.dump_json(fit_metrics(results)), encoding="utf-8")
    return results


def main(argv: list[str]) -> int:
    ap = cli.parser("fit", __doc__)
    ap.add_argument("--db", default="leaderboard/results.duckdb", help="DuckDB file with tables runs and metrics")
    ap.add_argument("--params", default="params.yaml", help="params.yaml; its `fit:` section sets the method")
    ap.add_argument("--out", default="leaderboard/fits.json", help="JSON list of fits to write")
    ap.add_argument("--source", default=LOCAL, help="which source's runs to fit (default: local)")
    ap.add_argument("--data-dir", default=None, help="also write fits.parquet and literature.parquet here "
                    "(and read runs/metrics parquet from here when the database has none)")
    args = ap.parse_args(argv)
    results = run(args.db, args.params, args.out, args.source, args.data_dir)
    print(f"fit: wrote {len(results)} fits to {args.out} and {args.db}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
