"""DVC stage `fit`: every scaling law the completed local runs support, with bootstrap intervals and
held-out extrapolation error, into the DuckDB tables `fits` and `literature` and leaderboard/fits.json.

Loss targets (metric 'val_loss', task 'all' and each task): chinchilla (Hoffmann et al. 2022,
Approach 3), Kaplan et al. 2020's L(N, D), L(N) and L(D), and Approach 2 where budgets allow.
Downstream targets (bleu, rouge*, accuracy, ...): the seed law, a sigmoid of log-compute, and the
two-step method (task loss from chinchilla, metric as a sigmoid of task loss) where the task's
val_loss exists. Only runs with status 'completed' enter a fit.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmark import cli, db, io, literature, metrics as metric_registry, params as params_mod
from benchmark.export import write_parquet
from benchmark.fitting import FitError, FitResult, FitSettings, Points, fit, fit_two_step
from benchmark.isoflop import fit_approach2

LOCAL = "local"
LOSS_METRIC = metric_registry.LOSS
LOSS_LAWS = ("chinchilla", "kaplan_nd", "kaplan_n", "kaplan_d", "approach2")
DOWNSTREAM_LAWS = ("seed_law", "sigmoid_compute", "two_step")

# The `fit:` section is checked by benchmark/params.py (the one params checker), defaults included.
SettingsError = params_mod.ParamsError


def read_settings(path: str | Path) -> dict:
    """The `fit:` section of params.yaml with defaults filled in; one-line errors name a bad key."""
    doc = params_mod.read_yaml(str(path))
    if doc is not None and not isinstance(doc, dict):
        raise SettingsError(f"{path}: expected a mapping at the top level")
    return params_mod.parse_fit((doc or {}).get("fit")).as_dict()


def fit_settings(s: dict, downstream: bool = False) -> FitSettings:
    return FitSettings(delta=float(s["huber_delta"]), bootstrap=s["downstream_bootstrap" if downstream else "bootstrap"],
                       seed=s["seed"], holdout_fraction=float(s["holdout"]), bootstrap_starts=s["bootstrap_starts"],
                       allocation_flops=s["allocation_flops"])


def load_targets(con, source: str = LOCAL, data_dir: str | Path | None = None,
                 downstream: list[str] | None = None) -> dict[str, Points]:
    """'<metric>/<task>' -> Points over completed runs (y = metric value; L = the task's val_loss, if any).

    Reads the DuckDB tables runs and metrics; where the database has no runs of `source` (a DVC
    checkout restores collect's parquet outputs, not the database), reads data_dir/{runs,metrics}.parquet.
    """
    runs, metrics = "runs", "metrics"
    n_local = con.execute("SELECT count(*) FROM runs WHERE source = ?", [source]).fetchone()[0]
    if n_local == 0 and data_dir is not None and (Path(data_dir) / "runs.parquet").exists():
        runs, metrics = (f"read_parquet('{Path(data_dir) / f'{t}.parquet'}')" for t in ("runs", "metrics"))
    sql = f"""SELECT m.metric, m.task, r.run_id, r.n_params, r.tokens, r.flops, m.value
             FROM {metrics} m JOIN {runs} r ON r.source = m.source AND r.run_id = m.run_id
             WHERE m.source = ? AND r.status = 'completed' ORDER BY m.metric, m.task, r.flops, r.run_id"""
    by_target: dict[str, list] = {}
    for metric, task, run_id, n, d, c, v in con.execute(sql, [source]).fetchall():
        if metric != LOSS_METRIC and downstream is not None and metric not in downstream:
            continue
        by_target.setdefault(f"{metric}/{task}", []).append((run_id, n, d, c, math.nan if v is None else v))
    loss = {t.split("/", 1)[1]: {r[0]: r[4] for r in rows} for t, rows in by_target.items() if t.startswith(LOSS_METRIC + "/")}
    out = {}
    for target, rows in by_target.items():
        ids, N, D, C, y = zip(*rows)
        task = target.split("/", 1)[1]
        L = None
        if not target.startswith(LOSS_METRIC + "/") and task in loss and all(i in loss[task] for i in ids):
            L = np.array([loss[task][i] for i in ids], dtype=float)
        out[target] = Points(y=np.array(y, dtype=float), N=np.array(N, dtype=float), D=np.array(D, dtype=float),
                             C=np.array(C, dtype=float), L=L, ids=ids)
    return out


def _kaplan_subset(law: str, pts: Points) -> Points:
    """Kaplan et al. 2020 fit L(N) on models not limited by data and L(D) on models not limited by
    size: here the largest-D run of each N, and the runs of the largest N."""
    if law == "kaplan_n":
        keep = np.zeros(pts.n, dtype=bool)
        for n in np.unique(pts.N):
            idx = np.flatnonzero(pts.N == n)
            keep[idx[pts.D[idx] == pts.D[idx].max()]] = True
        return pts.subset(keep)
    if law == "kaplan_d":
        return pts.subset(pts.N == pts.N.max())
    return pts


def fit_target(target: str, pts: Points, s: dict) -> tuple[list[FitResult], list[str]]:
    """Every law that applies to one target; the ones the data cannot support are listed with the reason."""
    results, skipped = [], []
    laws = LOSS_LAWS if target.startswith(LOSS_METRIC + "/") else DOWNSTREAM_LAWS
    for law in laws:
        settings = fit_settings(s, downstream=law in DOWNSTREAM_LAWS)
        try:
            if law == "approach2":
                res = fit_approach2(pts, settings, tolerance=float(s["budget_tolerance"]), target=target)
            elif law == "two_step":
                if pts.L is None:
                    raise FitError(f"no {LOSS_METRIC} for the task of {target}")
                res = fit_two_step(pts, settings, target=target)
            else:
                res = fit(law, _kaplan_subset(law, pts), settings, target=target)
            results.append(res)
        except FitError as e:
            skipped.append(f"{law} on {target}: {e}")
    return results, skipped


def fit_rows(results: list[FitResult], source: str = LOCAL) -> list[dict]:
    """Rows of the `fits` table: one per parameter and per derived allocation quantity."""
    rows = []
    for r in results:
        method = json.dumps(r.to_json()["method"], sort_keys=True)
        extra = (r.extrapolation or {}).get("rel_err")
        values = {**r.params, **{k: v for k, v in (r.allocation or {}).items() if k != "flops" and k not in r.params}}
        for name, est in values.items():
            if not math.isfinite(est):
                continue
            lo, hi = r.ci95.get(name, (None, None))
            rows.append({"source": source, "law": r.law, "target": r.target, "parameter": name, "estimate": float(est),
                         "se": _finite(r.se.get(name)), "ci95_low": _finite(lo), "ci95_high": _finite(hi),
                         "n_points": int(r.n_points), "method": method, "extrapolation_rel_err": _finite(extra)})
    return rows


def heldout_table(results: list[FitResult]) -> str:
    """Held-out extrapolation error of every law side by side, per target: the honest comparison
    of the seed law with the saturating and two-step laws (and of the loss laws with each other)."""
    lines = ["held-out extrapolation (fit below the compute cutoff, predict the largest-compute runs):",
             f"  {'target':<26} {'law':<16} {'mean |rel err|':>14} {'max |rel err|':>14} {'mean |err|':>11} {'held out':>8}"]
    for r in sorted(results, key=lambda r: (r.target, r.law)):
        e = r.extrapolation
        if e is None:
            lines.append(f"  {r.target:<26} {r.law:<16} (none: {r.method.get('extrapolation_skipped', '')})")
            continue
        fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        lines.append(f"  {r.target:<26} {r.law:<16} {fmt(e['rel_err']):>14} {fmt(e['max_rel_err']):>14} "
                     f"{e['abs_err']:>11.4g} {e['n_heldout']:>8d}")
    return "\n".join(lines)


def fit_metrics(results: list[FitResult]) -> dict[str, dict[str, float | None]]:
    """'<law> <target>' -> its parameters and held-out mean |relative error|: the flat DVC metrics file
    (leaderboard/fit_metrics.json) that `dvc metrics show` and `dvc exp show` list."""
    return {f"{r.law} {r.target}": {**{k: _finite(v) for k, v in r.params.items()},
                                    "heldout_rel_err": _finite((r.extrapolation or {}).get("rel_err"))} for r in results}


def _finite(v):
    return float(v) if v is not None and math.isfinite(v) else None


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
    for target, pts in sorted(targets.items()):
        t0 = time.perf_counter()
        res, skip = fit_target(target, pts, s)
        results += res
        skipped += skip
        print(f"fit: {target}: {len(res)} laws on {pts.n} runs in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    for line in skipped:
        print(f"fit: skipped {line}", file=sys.stderr)
    print(heldout_table(results), file=sys.stderr)
    # DuckDB, the parquet files, fits.json and fit_draws.json change together or not at all.
    with db.update(db_path, Path(db_path).parent) as (con, txn):
        db.replace_rows(con, "fits", fit_rows(results, source), source=source)
        db.replace_rows(con, "literature", literature.rows())
        if source == LOCAL:  # imported sources in the database (python -m benchmark import ...) get the same laws
            from benchmark import crossfit
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
