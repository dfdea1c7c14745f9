"""Which laws a grid's results support and fitting each target: loss laws, downstream laws, settings, rows for the fits table."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from benchmark.config import params as params_mod
from benchmark.evaluation import metrics as metric_registry
from benchmark.results.parquet import LOCAL
from benchmark.scaling.engine import FitError, FitResult, FitSettings, Points, fit, fit_two_step
from benchmark.scaling.isoflop import fit_approach2

LOSS_METRIC = metric_registry.LOSS
LOSS_LAWS = ("chinchilla", "kaplan_nd", "kaplan_n", "kaplan_d", "approach2")
DOWNSTREAM_LAWS = ("seed_law", "sigmoid_compute", "two_step")


def read_settings(path: str | Path) -> dict:
    """The `fit:` section of params.yaml with defaults filled in; one-line errors name a bad key."""
    doc = params_mod.read_yaml(str(path))
    if doc is not None and not isinstance(doc, dict):
        raise params_mod.ParamsError(f"{path}: expected a mapping at the top level")
    return params_mod.parse_fit((doc or {}).get("fit")).as_dict()


def fit_settings(s: dict, downstream: bool = False, budgets: bool = True) -> FitSettings:
    """FitSettings from the `fit:` section; budgets: hold out whole IsoFLOP budgets (a designed grid, the local runs),
    not only the largest-compute fraction of runs (an imported source's continuous compute)."""
    return FitSettings(delta=float(s["huber_delta"]), bootstrap=s["downstream_bootstrap" if downstream else "bootstrap"],
                       seed=s["seed"], holdout_fraction=float(s["holdout"]), bootstrap_starts=s["bootstrap_starts"],
                       allocation_flops=s["allocation_flops"],
                       budget_tolerance=float(s["budget_tolerance"]) if budgets else None)


def load_targets(con, source: str = LOCAL, data_dir: str | Path | None = None,
                 downstream: list[str] | None = None) -> dict[str, Points]:
    """'<metric>/<task>' -> Points over completed runs (y = metric value; L = the task loss, if any: the task's
    target_loss where every run has it (the loss on the answer alone, as the two-step law reads it, when
    data.loss_on is "text"), else its val_loss).

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
    answer: dict[str, dict[str, float]] = {}  # task -> run -> target_loss
    for metric, task, run_id, n, d, c, v in con.execute(sql, [source]).fetchall():
        if metric == metric_registry.TARGET_LOSS:
            answer.setdefault(task, {})[run_id] = math.nan if v is None else v
            continue
        if metric != LOSS_METRIC and downstream is not None and metric not in downstream:
            continue
        by_target.setdefault(f"{metric}/{task}", []).append((run_id, n, d, c, math.nan if v is None else v))
    loss = {t.split("/", 1)[1]: {r[0]: r[4] for r in rows} for t, rows in by_target.items() if t.startswith(LOSS_METRIC + "/")}
    out = {}
    for target, rows in by_target.items():
        ids, N, D, C, y = zip(*rows)
        task = target.split("/", 1)[1]
        L = None
        for have in (answer.get(task), loss.get(task)):
            if not target.startswith(LOSS_METRIC + "/") and have and all(i in have for i in ids):
                L = np.array([have[i] for i in ids], dtype=float)
                break
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


def metric_range(target: str) -> tuple[float, float] | None:
    """The range of the target's metric ('<metric>/<task>') in the metric registry; None for a metric it does not know."""
    m = metric_registry.METRICS.get(target.split("/", 1)[0])
    return None if m is None else tuple(m.range)


def fit_target(target: str, pts: Points, s: dict, budgets: bool = True) -> tuple[list[FitResult], list[str]]:
    """Every law that applies to one target; the ones the data cannot support are listed with the reason.
    Bounded laws stay inside the metric's range; a sigmoid of log C gets its phases (crossfit.phases)."""
    from benchmark.scaling.crossfit import phases

    results, skipped = [], []
    laws = LOSS_LAWS if target.startswith(LOSS_METRIC + "/") else DOWNSTREAM_LAWS
    rng = metric_range(target)
    for law in laws:
        settings = fit_settings(s, downstream=law in DOWNSTREAM_LAWS, budgets=budgets)
        try:
            if law == "approach2":
                res = fit_approach2(pts, settings, tolerance=float(s["budget_tolerance"]), target=target)
            elif law == "two_step":
                if pts.L is None:
                    raise FitError(f"no {LOSS_METRIC} for the task of {target}")
                res = fit_two_step(pts, settings, target=target, y_range=rng)
            else:
                sub = _kaplan_subset(law, pts)
                res = phases(fit(law, sub, settings, target=target, y_range=rng), sub.C, float(s["budget_tolerance"]))
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
                         "n_points": int(r.n_points), "method": method, "extrapolation_rel_err": _finite(extra),
                         "identified": bool(r.identified), "identification": r.identification or None})
    return rows


def heldout_table(results: list[FitResult]) -> str:
    """Held-out extrapolation error of every law side by side, per target: the honest comparison
    of the seed law with the saturating and two-step laws (and of the loss laws with each other)."""
    lines = ["held-out extrapolation (fit below the compute cutoff, predict the largest-compute runs):",
             f"  {'target':<26} {'law':<16} {'mean |rel err|':>14} {'max |rel err|':>14} {'mean |err|':>11} {'held out':>8} "
             f"{'seed std':>9} {'in 95 %':>7}"]
    for r in sorted(results, key=lambda r: (r.target, r.law)):
        e = r.extrapolation
        if not r.identified and not (e and e.get("identified") is True):
            lines.append(f"  {r.target:<26} {r.law:<16} not identified ({r.identification})")
            continue
        if e is not None and e.get("identified") is False:
            lines.append(f"  {r.target:<26} {r.law:<16} held-out prediction not identified ({e.get('identification')})")
            continue
        if e is None:
            lines.append(f"  {r.target:<26} {r.law:<16} (none: {r.method.get('extrapolation_skipped', '')})")
            continue
        fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
        seed = "–" if e.get("seed_std") is None else f"{e['seed_std']:.4g}"
        inside = "–" if e.get("inside_ci95") is None else f"{e['inside_ci95']}/{len(e['predicted_ci95'])}"
        lines.append(f"  {r.target:<26} {r.law:<16} {fmt(e['rel_err']):>14} {fmt(e['max_rel_err']):>14} "
                     f"{e['abs_err']:>11.4g} {e['n_heldout']:>8d} {seed:>9} {inside:>7}")
    return "\n".join(lines)


def fit_metrics(results: list[FitResult]) -> dict[str, dict[str, float | None]]:
    """'<law> <target>' -> its parameters, held-out mean |relative error| and lack-of-fit p (quality.lack_of_fit): the
    flat DVC metrics file (leaderboard/fit_metrics.json) that `dvc metrics show` and `dvc exp show` list."""
    return {f"{r.law} {r.target}": {**{k: _finite(v) for k, v in r.params.items()},
                                    "heldout_rel_err": _finite((r.extrapolation or {}).get("rel_err")),
                                    "lack_of_fit_p": _finite((r.lack_of_fit or {}).get("p"))} for r in results}


def _finite(v):
    return float(v) if v is not None and math.isfinite(v) else None
