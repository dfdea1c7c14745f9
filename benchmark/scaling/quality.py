"""How good a fit is: replicates and their seed spread, identification, and the targets a held-out error must meet.

The one home of every threshold the card's words come from. Replicates are runs of one grid point
(same N and D, another seed); a fit uses every replicate as its own row, but a held-out error is
measured against the per-point mean of the held-out replicates and set beside their seed spread.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from benchmark.results.points import f_sf, point_index, point_stats

UNIDENTIFIED_DECADES = 6.0  # a 95 % interval wider than a factor 10^6 (or an SE 10^6 x the estimate): not pinned down
AT_BOUND = 1e-8             # a parameter bounded below by 0 with an estimate under this sits at its bound (E -> 0)
LOSS_REL_TARGET = 0.03      # a loss law predicts the held-out points within 3 % (issue 13, Deliver 5) ...
SEED_SPREAD_FACTOR = 2.0    # ... and within twice their measured seed spread
DOWNSTREAM_ABS_TARGET = 5.0  # a downstream law within 5 points (BLEU, ROUGE, accuracy: [0, 100])
SEED_REL_TARGET = 0.01      # a grid point's seed-to-seed std of validation loss within 1 % of its mean (Deliver 3)
LACK_OF_FIT_LEVEL = 0.05    # a law's form misses its own points by more than seed noise when the F test's p is below this
NO_REPLICATES = "no grid point has seed replicates"  # why a lack-of-fit test was not made
# Standard errors of the test and validation sets at the largest grid point (Deliver 4): the loss's relative to its
# value, the bounded metrics' in their points.
SE_TARGETS = {"val_loss": ("relative", 0.005), "bleu": ("points", 0.7), "rougeL": ("points", 0.7),
              "accuracy": ("points", 1.5)}


def replicate_groups(N: np.ndarray | None, D: np.ndarray | None, C: np.ndarray | None) -> list[np.ndarray]:
    """Indices of the runs of each grid point (benchmark.results.points.point_index: same N, D within its
    tolerance; the same C where N or D is absent), in first-seen order."""
    keys = list(point_index(N, D)) if N is not None and D is not None else list(C) if C is not None else []
    groups: dict = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return [np.array(g) for g in groups.values()]


def seed_spread(y: np.ndarray, groups: Sequence[np.ndarray]) -> dict[str, float | int | None]:
    """Mean seed std and mean relative seed std over the points with >= 2 replicates (None where there are none)."""
    stats = [point_stats(y[g]) for g in groups if len(g) > 1]
    rel = [s["rel_std"] for s in stats if s["rel_std"] is not None]
    return {"seed_std": float(np.mean([s["std"] for s in stats])) if stats else None,
            "seed_rel_std": float(np.mean(rel)) if rel else None, "n_replicated": len(stats)}


def within_seed_spread(rel_err: float | None, abs_err: float, spread: dict) -> bool | None:
    """Held-out error within SEED_SPREAD_FACTOR x the seed spread (relative where both are, else absolute);
    None without replicates."""
    if rel_err is not None and spread.get("seed_rel_std") is not None:
        return bool(rel_err <= SEED_SPREAD_FACTOR * spread["seed_rel_std"])
    if spread.get("seed_std") is not None:
        return bool(abs_err <= SEED_SPREAD_FACTOR * spread["seed_std"])
    return None


def lack_of_fit(resid: np.ndarray, groups: Sequence[np.ndarray], n_params: int, space: str) -> dict:
    """The lack-of-fit F test of a least-squares fit against the pure error of its replicates (Draper and Smith 1998,
    Applied Regression Analysis, Sec. 2.1; NIST/SEMATECH e-Handbook of Statistical Methods, 4.4.4.3): can the law's
    form describe its own points within their seed noise? resid: the fit's residuals (log y - log y_hat for a loss
    law, so relative; y - y_hat for a metric) on every run; groups: the runs of each grid point (replicate_groups).
    The residual sum of squares splits into pure error (replicates about their point's mean, n - m degrees of
    freedom for n runs at m points) and lack of fit (the rest, m - p for p parameters); F is their ratio of mean
    squares, and p = P(F' > F) for F' with (m - p, n - m) degrees of freedom. A small p says the misses are larger
    than seed noise explains: the form, not the noise, limits the law (and its extrapolation). F and p are None
    without replicates or without more grid points than parameters (`reason` says which)."""
    r = np.asarray(resid, dtype=float)
    m = len(groups)
    ss_res = float(np.sum(r * r))
    ss_pure = float(sum(np.sum((r[g] - r[g].mean()) ** 2) for g in groups))  # = replicates about their mean
    df_pure, df_lack = int(r.size - m), int(m - n_params)
    out = {"space": space, "n_runs": int(r.size), "n_points": m, "n_params": int(n_params), "df_lack": df_lack,
           "df_pure": df_pure, "rms": math.sqrt(ss_res / r.size) if r.size else None,
           "pure_std": math.sqrt(ss_pure / df_pure) if df_pure > 0 else None,
           "lack_std": math.sqrt(max(ss_res - ss_pure, 0.0) / df_lack) if df_lack > 0 else None,
           "F": None, "p": None, "reason": ""}
    if not np.all(np.isfinite(r)):
        out["reason"] = "a residual is not finite"
    elif df_pure == 0:
        out["reason"] = NO_REPLICATES
    elif df_lack <= 0:
        out["reason"] = f"{m} grid point{'' if m == 1 else 's'} for {n_params} parameters: no degree of freedom left for it"
    elif ss_pure == 0:
        out["reason"] = "the replicates are identical"
    else:
        F = (max(ss_res - ss_pure, 0.0) / df_lack) / (ss_pure / df_pure)
        out.update(F=F, p=f_sf(F, df_lack, df_pure))
    return out


def lack_of_fit_words(lof: dict | None) -> str:
    """One sentence on a fit's lack-of-fit test (lack_of_fit), for the card; empty without one."""
    if not lof:
        return ""
    if lof.get("p") is None:
        return f"lack of fit not tested ({lof.get('reason') or 'no test'})"
    unit = _pct if lof["space"] == "log" else (lambda x: f"{x:.3g} points")
    head = (f"misses its own grid points by {unit(lof['lack_std'])} (root lack-of-fit mean square) where seeds scatter "
            f"{unit(lof['pure_std'])} (F({lof['df_lack']}, {lof['df_pure']}) = {lof['F']:.3g}, p = {lof['p']:.2g})")
    if lof["p"] < LACK_OF_FIT_LEVEL:
        return head + ": the law's form does not describe this grid within its seed noise"
    return head + ": no lack of fit detected"


def at_bound(est: float, lower: float) -> bool:
    """A parameter with domain [0, ...) estimated at (numerically) zero."""
    return lower == 0 and 0 <= est < AT_BOUND


def spans_decades(est: float, lo: float, hi: float, decades: float = UNIDENTIFIED_DECADES) -> bool:
    """Whether the interval [lo, hi] spans more than `decades` decades: hi/lo on one side of zero; an interval
    that straddles zero by its larger end against the estimate (the rule latex.py prints `u` for)."""
    if lo > 0:
        return math.log10(hi / lo) > decades
    if hi < 0:
        return math.log10(lo / hi) > decades
    return est == 0 and hi > lo or est != 0 and max(abs(lo), abs(hi)) / abs(est) > 10 ** decades


def identify(names: Sequence[str], params: dict, se: dict, ci: dict, bounds: dict, levels: Sequence[str] = (),
             predicted: Sequence[float] | None = None, y_range: tuple[float, float] | None = None,
             positive: bool = False) -> tuple[bool, list[str], str]:
    """(identified, names of the parameters that are not, reason): a parameter is not identified when it has
    no finite estimate or bootstrap interval, its interval spans more than UNIDENTIFIED_DECADES decades or its
    SE exceeds 10^UNIDENTIFIED_DECADES x |estimate| (`levels`, held inside the metric's range by the fit, are
    checked for an interval only; a parameter at the bound 0 is reported as such, not as unidentified).
    The fit as a whole is not identified either when a held-out prediction is non-finite or outside
    y_range (or not positive, for a positive target such as a loss)."""
    bad, why = [], []
    for name in names:
        est, c, s = params.get(name), ci.get(name), se.get(name)
        lower = bounds.get(name, (-math.inf, math.inf))[0]
        if est is None or not math.isfinite(est):
            bad.append(name), why.append(f"{name} is not finite")
        elif at_bound(est, lower):
            continue
        elif not c or c[0] is None or c[1] is None or not (math.isfinite(c[0]) and math.isfinite(c[1])):
            bad.append(name), why.append(f"{name} has no bootstrap interval")
        elif name in levels:
            continue
        elif spans_decades(est, c[0], c[1]):
            bad.append(name), why.append(f"95 % interval of {name} [{c[0]:.3g}, {c[1]:.3g}] spans > {UNIDENTIFIED_DECADES:g} decades")
        elif s is None or not math.isfinite(s) or s > 10 ** UNIDENTIFIED_DECADES * abs(est):
            bad.append(name), why.append(f"SE({name}) = {s:.3g} vs estimate {est:.3g}" if s is not None else f"SE({name}) not finite")
    if predicted is not None and len(predicted):
        p = np.asarray(predicted, dtype=float)
        lo, hi = y_range if y_range is not None else (0.0 if positive else -math.inf, math.inf)
        if not np.isfinite(p).all():
            why.append("a held-out prediction is not finite")
        elif (p < lo).any() or (p > hi).any() or positive and (p <= 0).any():
            worst = p[np.argmax(np.maximum(lo - p, p - hi))]
            why.append(f"held-out prediction {worst:.3g} outside the target's range [{lo:g}, {hi:g}]")
    return not why, bad, "; ".join(why)


def identify_prediction(ci: Sequence[Sequence[float]] | None, n_nonfinite: int, n_draws: int,
                        y_range: tuple[float, float] | None = None, positive: bool = False) -> tuple[bool, str]:
    """(identified, why not) of a held-out prediction from its bootstrap draws (engine.heldout_interval): it is not
    when more than 2.5 % of the resampled predictions are not finite (a side of the 95 % interval is then
    unbounded), or when a point's interval leaves the target's range, reaches 0 for a positive target or spans
    more than UNIDENTIFIED_DECADES decades."""
    if n_draws and n_nonfinite > 0.025 * n_draws:
        return False, f"{n_nonfinite} of {n_draws} resampled held-out predictions are not finite"
    if not ci:
        return False, "no bootstrap interval of the held-out prediction"
    lo_r, hi_r = y_range if y_range is not None else (-math.inf, math.inf)
    for lo, hi in ci:
        if lo < lo_r or hi > hi_r:
            return False, f"the held-out prediction's 95 % interval [{lo:.3g}, {hi:.3g}] leaves the target's range"
        if positive and (lo <= 0 or math.log10(hi / lo) > UNIDENTIFIED_DECADES):
            return False, f"the held-out prediction's 95 % interval [{lo:.3g}, {hi:.3g}] is not pinned down"
    return True, ""


def _interval_words(e: dict) -> str:
    """'; its 95 % interval holds k of m observed points' where the held-out prediction has intervals."""
    if e.get("inside_ci95") is None:
        return ""
    return f"; its 95 % interval holds {e['inside_ci95']} of {len(e['predicted_ci95'])} observed points"


def _pct(x: float) -> str:
    return f"{100 * x:.3g} %"


def verdict(fit: dict, downstream: bool) -> str:
    """One line on a fit's held-out error against the targets above, beside the measured seed spread."""
    head = f"{fit['law']} on {fit['target']}"
    e = fit.get("extrapolation")
    if not fit.get("identified", True):
        # parameters the points cannot pin down; the held-out prediction may still be (quality.identify_prediction)
        unidentified = f"not identified ({fit.get('identification') or 'see fits.json'})"
        if not e or e.get("identified") is not True:
            return f"{head}: {unidentified}"
        head = f"{head}: {unidentified}; fitted below the cutoff, its prediction is identified"
    if not e:
        return f"{head}: no held-out error ({(fit.get('method') or {}).get('extrapolation_skipped', 'not computed')})"
    if e.get("identified") is False:
        return f"{head}: held-out prediction not identified ({e.get('identification') or 'see fits.json'})"
    if e.get("quantity"):  # approach 2 predicts N_opt, not the metric: no target in the issue
        rel = e.get("rel_err")
        return f"{head}: held-out {e['quantity']} off by {'n/a' if rel is None else _pct(rel)} (no target)"
    if downstream:
        spread = "seed spread not measured" if e.get("seed_std") is None else f"seed spread {e['seed_std']:.2f} points"
        spread += _interval_words(e)
        err = e["abs_err"]
        ok = err <= DOWNSTREAM_ABS_TARGET
        tail = "meets the target" if ok else f"fails: {err:.2f} > {DOWNSTREAM_ABS_TARGET:g} points"
        return f"{head}: held-out {err:.2f} points ({spread}): {tail}"
    rel = e.get("rel_err")
    if rel is None:
        return f"{head}: held-out error not relative (an observed value is 0)"
    sr = e.get("seed_rel_std")
    spread = ("seed spread not measured" if sr is None else f"seed spread {_pct(sr)}") + _interval_words(e)
    fails = [f"{_pct(rel)} > {_pct(LOSS_REL_TARGET)}"] if rel > LOSS_REL_TARGET else []
    if sr is not None and not e.get("within_2x_seed_spread"):
        fails.append(f"{_pct(rel)} > {SEED_SPREAD_FACTOR:g} x seed spread {_pct(sr)}")
    tail = ("fails: " + "; ".join(fails) if fails else
            "meets both targets" if sr is not None else f"meets the {100 * LOSS_REL_TARGET:g} % target (seed spread not measured)")
    return f"{head}: held-out {_pct(rel)} ({spread}): {tail}"
