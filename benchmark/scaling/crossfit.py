"""Fits across sources: the existing laws on every imported source in the database, into the `fits` table.

- pythia: chinchilla (Hoffmann et al. 2022) and Kaplan et al. 2020's L(N, D) on lambada log-perplexity
  over the N x D grid of checkpoints; per benchmark, accuracy against compute with the sigmoid of
  log C (Owen 2024), the two-step law (Llama 3; lambada log-perplexity as the loss step 1 fits) and
  the seed law, and the growth and saturation phases of each sigmoid.
- obsscaling: the sigmoid of log C per benchmark, pooled over families and per family.
- chinchilla (Epoch's points): the chinchilla law with the 5 highest losses dropped (Besiroglu et al. 2024).
- any other source (`import table`): every law `fit` applies to local runs.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import replace

import numpy as np

from benchmark.results import db
from benchmark.scaling.engine import FitError, FitResult, Points, fit, fit_two_step
from benchmark.scaling.laws import group_budgets

PYTHIA_LOSS = "log_perplexity/lambada_openai"
PYTHIA_MIN_STEP = 1000  # checkpoints after the 1 % warm-up (1430 steps) is mostly done; step 0 has D = 0
PYTHIA_BENCHMARKS = ("lambada_openai", "piqa", "sciq", "arc_easy", "arc_challenge", "winogrande", "logiqa", "wsc")
FAMILY_MIN_RUNS = 5     # families with fewer models are fitted only in the pooled fit
GROWTH = 0.1            # the growth phase spans 10 % to 90 % of a sigmoid's rise; above 90 %: saturation
# The gain per doubling of C, k (hi - lo) s (1 - s) ln 2 with s the logistic in log C, peaks at C_mid and falls to
# half its peak where s = (1 +/- 1/sqrt 2) / 2, i.e. at log C = log C_mid +/- ln(3 + 2 sqrt 2) / k: C_slowdown, the + side.
HALF_PEAK_GAIN = math.log(3.0 + 2.0 * math.sqrt(2.0))


def points(con, source: str, metric: str, task: str, loss: tuple[str, str] | None = None,
           family: str | None = None, min_tokens: float = 1.0) -> Points:
    """One target of one source over completed runs with N, D, C > 0 (L: the loss metric of the same run)."""
    sql = """SELECT r.run_id, r.n_params, r.tokens, r.flops, m.value, l.value
             FROM runs r JOIN metrics m ON m.source = r.source AND m.run_id = r.run_id
             LEFT JOIN metrics l ON l.source = r.source AND l.run_id = r.run_id AND l.metric = ? AND l.task = ?
             LEFT JOIN models f ON f.source = r.source AND f.model_size = r.model_size
             WHERE r.source = ? AND r.status = 'completed' AND m.metric = ? AND m.task = ?
               AND r.n_params > 0 AND r.tokens >= ? AND r.flops > 0 AND (? IS NULL OR f.family = ?)
             ORDER BY r.flops, r.run_id"""
    lm, lt = loss or (None, None)
    rows = con.execute(sql, [lm, lt, source, metric, task, min_tokens, family, family]).fetchall()
    if not rows:
        raise FitError(f"source {source!r} has no {metric}/{task}" + (f" for family {family!r}" if family else ""))
    ids, N, D, C, y, L = zip(*rows)
    L = None if loss is None or any(v is None for v in L) else np.array(L, dtype=float)
    return Points(y=np.array(y, float), N=np.array(N, float), D=np.array(D, float), C=np.array(C, float), L=L, ids=ids)


def phases(res: FitResult, C=None, tolerance: float = 0.15) -> FitResult:
    """Add the phases of a sigmoid of log C (Owen 2024): C_growth, where the metric has risen 10 % of the way
    from lo to hi, C_saturation, 90 % (C_mid 9^(-/+1/k)), and C_slowdown, past the inflection C_mid, where the
    gain per doubling of compute has fallen to half its peak (C_mid exp(ln(3 + 2 sqrt 2) / k)); bootstrap
    intervals from the kept draws (C_mid's is the fit's own).

    With the fitted points' compute C: the rise is located only if some sampled compute level (a budget of runs
    within `tolerance`, laws.group_budgets) lies wholly inside [C_growth, C_saturation]. A rise between two levels,
    or inside one level's own scatter, is a step the grid cannot place: k and C_mid are then not identified, however
    tight their bootstrap intervals (a step fitted between the same two levels in every resample)."""
    if res.law != "sigmoid_compute":
        return res
    odds = math.log((1 - GROWTH) / GROWTH)
    where = {"C_growth": -odds, "C_saturation": odds, "C_slowdown": HALF_PEAK_GAIN}

    def at(p: dict, name: str) -> float:
        if not (p["k"] > 0 and p["C_mid"] > 0):
            return math.nan
        log_c = math.log(p["C_mid"]) + where[name] / p["k"]
        return math.exp(log_c) if abs(log_c) < 700 else math.nan  # a flat draw (k -> 0) has no phases

    params = {**res.params, **{name: at(res.params, name) for name in where}}
    se, ci = dict(res.se), dict(res.ci95)
    for name in where:
        v = np.array([at(d, name) for d in res.draws])
        v = v[np.isfinite(v) & (v > 0)]
        if v.size >= 10:
            lv = np.log(v)
            se[name] = float(np.std(v, ddof=1))
            ci[name] = [float(np.exp(np.percentile(lv, 2.5))), float(np.exp(np.percentile(lv, 97.5)))]
    method = {**res.method, "phases": f"growth from C_growth ({GROWTH:.0%} of the rise) to C_saturation ({1 - GROWTH:.0%}); "
                                      "inflection at C_mid; growth slows (gain per doubling of C below half its peak) "
                                      f"past C_slowdown; intervals from {len(res.draws)} bootstrap draws"}
    res = replace(res, params=params, se=se, ci95=ci, method=method)
    if C is None:
        return res
    C = np.asarray(C, dtype=float)
    lo, hi = params["C_growth"], params["C_saturation"]
    inside = [g for g in group_budgets(C, tolerance) if (C[g] > lo).all() and (C[g] < hi).all()]
    if inside or not (math.isfinite(lo) and math.isfinite(hi)):
        return res
    why = (f"the rise from {100 * GROWTH:g} % to {100 * (1 - GROWTH):g} % (C_growth {lo:.3g} to C_saturation {hi:.3g} FLOP) holds no "
           "sampled compute level: a step the grid cannot place")
    return replace(res, identified=False, unidentified=sorted(set(res.unidentified) | {"k", "C_mid"}),
                   identification="; ".join(filter(None, (res.identification, why))))


def phase_at(params: dict, C: float) -> str:
    """Where compute C lies on a fitted sigmoid: 'before growth', 'growth' or 'saturation'."""
    if not all(k in params for k in ("C_growth", "C_saturation")):
        return "?"
    return "before growth" if C < params["C_growth"] else "growth" if C < params["C_saturation"] else "saturation"


def _downstream(pts: Points, target: str, s: dict, settings, two_step: bool) -> tuple[list[FitResult], list[str]]:
    from benchmark.scaling.targets import metric_range

    out, skipped = [], []
    for law in ("sigmoid_compute", "two_step", "seed_law") if two_step else ("sigmoid_compute",):
        try:
            rng = metric_range(target)
            res = (fit_two_step(pts, settings, target=target, y_range=rng) if law == "two_step"
                   else fit(law, pts, settings, target=target, y_range=rng))
            out.append(phases(res, pts.C, float(s.get("budget_tolerance", 0.15))))
        except FitError as e:
            skipped.append(f"{law} on {target}: {e}")
    return out, skipped


def plan(con, source: str, s: dict) -> tuple[list[FitResult], list[str]]:
    """Every fit of one imported source (see the module docstring)."""
    from benchmark.scaling.targets import fit_settings, fit_target, load_targets, metric_range

    # an imported source's compute is not laid out in budgets: its largest-compute fraction of runs is held out
    loss_settings, down_settings = fit_settings(s, budgets=False), fit_settings(s, downstream=True, budgets=False)
    results, skipped = [], []
    if source == "pythia":
        min_tokens = PYTHIA_MIN_STEP * 2_097_152
        loss = points(con, source, *PYTHIA_LOSS.split("/"), min_tokens=min_tokens)
        for law in ("chinchilla", "kaplan_nd"):
            try:
                results.append(fit(law, loss, loss_settings, target=PYTHIA_LOSS, y_range=metric_range(PYTHIA_LOSS)))
            except FitError as e:
                skipped.append(f"{law} on {PYTHIA_LOSS}: {e}")
        for task in PYTHIA_BENCHMARKS:
            pts = points(con, source, "accuracy", task, loss=tuple(PYTHIA_LOSS.split("/")), min_tokens=min_tokens)
            r, sk = _downstream(pts, f"accuracy/{task}", s, down_settings, two_step=True)
            results += r
            skipped += sk
    elif source == "obsscaling":
        tasks = [t for (t,) in con.execute("SELECT DISTINCT task FROM metrics WHERE source = ? AND metric = 'accuracy' ORDER BY 1",
                                           [source]).fetchall()]
        families = [f for (f,) in con.execute(
            "SELECT family FROM models WHERE source = ? GROUP BY family HAVING count(*) >= ? ORDER BY family",
            [source, FAMILY_MIN_RUNS]).fetchall()]
        for task in tasks:
            for fam in [None, *families]:
                target = f"accuracy/{task}" + (f"@{fam}" if fam else "")
                try:
                    pts = points(con, source, "accuracy", task, family=fam)
                except FitError as e:
                    skipped.append(f"sigmoid_compute on {target}: {e}")
                    continue
                r, sk = _downstream(pts, target, s, down_settings, two_step=False)
                results += r
                skipped += sk
    else:
        targets = load_targets(con, source, downstream=s["downstream_metrics"] + ["accuracy"])
        for target, pts in sorted(targets.items()):
            keep = np.isfinite(pts.y) & (pts.N > 0) & (pts.D > 0)
            if source == "chinchilla" and target == "val_loss/all":
                keep[np.argsort(pts.y)[::-1][:5]] = False  # Besiroglu et al. 2024 drop the 5 highest losses
            r, sk = fit_target(target, pts.subset(keep), s, budgets=False)
            results += r  # fit_target adds the phases
            skipped += sk
    return results, skipped


def imported_sources(con) -> list[str]:
    return [s for s in db.sources(con) if s != "local"]


def run(con, s: dict, sources: list[str] | None = None) -> dict[str, list[FitResult]]:
    """Fit every imported source (or `sources`) and replace its rows of the `fits` table."""
    from benchmark.scaling.targets import fit_rows, heldout_table

    out = {}
    for src in sources if sources is not None else imported_sources(con):
        t0 = time.perf_counter()
        try:
            results, skipped = plan(con, src, s)
        except FitError as e:
            results, skipped = [], [f"{src}: {e}"]
        db.replace_rows(con, "fits", fit_rows(results, src), source=src)
        print(f"fit: source {src}: {len(results)} fits in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        for line in skipped:
            print(f"fit: {src}: skipped {line}", file=sys.stderr)
        print(heldout_table(results), file=sys.stderr)
        out[src] = results
    return out
