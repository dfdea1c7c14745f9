"""Approach 2 of Hoffmann et al. 2022 (Sec. 3.2): IsoFLOP parabolas, their minima N_opt(C), and N_opt ∝ C^a.

Runs are grouped into compute budgets within a relative tolerance (laws.group_budgets); a budget
with at least 3 runs at 3 distinct N gets a parabola of loss against log N; with at least 2 such
budgets, log N_opt is regressed on log C. The bootstrap resamples runs (multinomial weights, as in
fitting.bootstrap) and refits every parabola with weighted least squares, all resamples at once.
"""
from __future__ import annotations

import numpy as np

from benchmark.scaling.engine import FitError, FitResult, FitSettings, Points, assess, extrapolation_error, summarise
from benchmark.scaling.laws import FLOPS_PER_PARAM_TOKEN, group_budgets, isoflop_minimum, power_law_exponent

MIN_RUNS = 3  # a parabola needs 3 distinct N


def budgets(pts: Points, tolerance: float) -> list[np.ndarray]:
    """Budgets (index arrays) with at least MIN_RUNS runs at distinct N."""
    return [g for g in group_budgets(pts.C, tolerance) if np.unique(pts.N[g]).size >= MIN_RUNS]


def _vertices(pts: Points, groups: list[np.ndarray], W: np.ndarray) -> np.ndarray:
    """log N_opt of every budget (columns) for every weight row: weighted parabola fits, batched, wherever the
    vertex lies (_inside keeps those within the budget's sampled N). NaN where a resample leaves a budget with
    < 3 distinct N or the parabola opens downward."""
    out = np.full((W.shape[0], len(groups)), np.nan)
    for j, g in enumerate(groups):
        x = np.log(pts.N[g])
        xc = x - x.mean()
        X = np.column_stack([np.ones_like(xc), xc, xc * xc])
        w = W[:, g]
        A = np.einsum("rk,ki,kj->rij", w, X, X)
        b = np.einsum("rk,ki,k->ri", w, X, pts.y[g])
        _, code = np.unique(x, return_inverse=True)
        enough = ((w > 0).astype(float) @ np.eye(code.max() + 1)[code] > 0).sum(axis=1) >= MIN_RUNS
        if not enough.any():
            continue
        p = np.linalg.solve(A[enough], b[enough][..., None])[..., 0]
        vert = np.where(p[:, 2] > 0, x.mean() - p[:, 1] / (2.0 * np.where(p[:, 2] > 0, p[:, 2], 1.0)), np.nan)
        out[enough, j] = vert
    return out


def _inside(pts: Points, groups: list[np.ndarray], V: np.ndarray) -> np.ndarray:
    """V with NaN where a vertex lies outside its budget's sampled log N."""
    lo = np.array([np.log(pts.N[g]).min() for g in groups])
    hi = np.array([np.log(pts.N[g]).max() for g in groups])
    with np.errstate(invalid="ignore"):
        return np.where((V >= lo) & (V <= hi), V, np.nan)


def _power_law(logC: np.ndarray, logN: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: slope a and intercept of log N_opt = log k + a log C over the finite budgets."""
    m = np.isfinite(logN)
    cnt = m.sum(axis=1)
    xs = np.where(m, logC, 0.0)
    ys = np.where(m, logN, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = xs.sum(1) / cnt, ys.sum(1) / cnt
        dx = np.where(m, logC - mx[:, None], 0.0)
        a = (dx * np.where(m, logN - my[:, None], 0.0)).sum(1) / (dx * dx).sum(1)
    a[cnt < 2] = np.nan
    return a, my - a * mx


def _budget(pts: Points, g: np.ndarray, log_c: float, n_opt: float, log_vertices: np.ndarray | None,
            log_vertices_any: np.ndarray | None) -> dict:
    """One budget's record: its sizes, tokens per parameter, N_opt (None when the parabola's minimum lies outside the
    sampled N) and, over the bootstrap resamples whose parabola opens upward (>= 3 distinct N), the share with the
    vertex inside and N_opt's 95 % interval wherever the vertex lies (so the interval may reach past the sizes)."""
    out = {"flops": float(np.exp(log_c)), "n_runs": int(len(g)), "n_sizes": int(np.unique(pts.N[g]).size),
           "N_range": [float(pts.N[g].min()), float(pts.N[g].max())],
           "tokens_per_param": [float((pts.D[g] / pts.N[g]).min()), float((pts.D[g] / pts.N[g]).max())] if pts.D is not None else None,
           "N_opt": float(n_opt) if np.isfinite(n_opt) else None, "interior": bool(np.isfinite(n_opt))}
    if log_vertices is not None and log_vertices_any is not None:
        ok = np.isfinite(log_vertices_any)  # resamples with >= 3 distinct N whose parabola opens upward
        out["interior_share"] = float(np.isfinite(log_vertices).sum() / max(1, ok.sum()))
        out["N_opt_ci95"] = [float(np.exp(q)) for q in np.percentile(log_vertices_any[ok], [2.5, 97.5])] if ok.sum() >= 2 else None
    return out


def fit_approach2(pts: Points, settings: FitSettings = FitSettings(), tolerance: float = 0.15,
                  target: str = "") -> FitResult:
    """N_opt per budget and N_opt = k C^a, with bootstrap SE/CI of a, k and of N_opt, D_opt at the allocation C."""
    if pts.N is None or pts.C is None:
        raise FitError("approach2 needs N and C")
    bad = ~np.isfinite(pts.y) | (pts.y <= 0) | ~np.isfinite(pts.C) | (pts.N <= 0)
    if bad.any():
        raise FitError(f"approach2: non-finite or non-positive values at {', '.join(np.asarray(pts.ids)[bad][:5])}")
    groups = budgets(pts, tolerance)
    if len(groups) < 2:
        raise FitError(f"approach2 needs >= 2 compute budgets with >= {MIN_RUNS} runs each (within {tolerance:.0%}); found {len(groups)}")
    logC = np.array([np.log(pts.C[g]).mean() for g in groups])
    # A budget counts only if its parabola has a minimum inside the N it sampled (Hoffmann et al.
    # chose IsoFLOP grids around the minimum; a vertex outside is an extrapolation of a parabola).
    nopt = np.array([isoflop_minimum(pts.N[g], pts.y[g]) for g in groups])
    nopt = np.array([v if pts.N[g].min() <= v <= pts.N[g].max() else np.nan for v, g in zip(nopt, groups)])
    if np.isfinite(nopt).sum() < 2:
        raise FitError(f"approach2: fewer than 2 of the {len(groups)} budgets have a parabola minimum inside their range of N")
    ok = np.isfinite(nopt)
    a, k = power_law_exponent(np.exp(logC[ok]), nopt[ok])
    c_alloc = float(settings.allocation_flops or pts.C.max())
    n_at = k * c_alloc ** a
    params = {"a": a, "k": k}
    allocation = {"a": a, "b": 1.0 - a, "N_opt": n_at, "D_opt": c_alloc / (FLOPS_PER_PARAM_TOKEN * n_at), "flops": c_alloc}
    samples, n_used = {}, 0
    # With 3 runs a parabola interpolates them whatever their weights: no resampling spread.
    resample = settings.bootstrap and min(len(g) for g in groups) > MIN_RUNS
    if resample:
        rng = np.random.default_rng(settings.seed)
        W = rng.multinomial(pts.n, np.full(pts.n, 1.0 / pts.n), size=settings.bootstrap).astype(float)
        V_any = _vertices(pts, groups, W)
        V = _inside(pts, groups, V_any)
        la, lk = _power_law(np.broadcast_to(logC, (W.shape[0], logC.size)), V)
        good = np.isfinite(la)
        n_used = int(good.sum())
        la, lk = la[good], lk[good]
        nb = np.exp(lk + la * np.log(c_alloc))
        samples = {"a": la, "k": np.exp(lk), "b": 1.0 - la, "N_opt": nb, "D_opt": c_alloc / (FLOPS_PER_PARAM_TOKEN * nb)}
    se, ci = summarise(samples)
    extra = None
    if ok.sum() >= 3:  # hold out the top budget: fit the power law below it, predict its N_opt
        top = int(np.flatnonzero(ok)[-1])
        below = ok.copy()
        below[top] = False
        a2, k2 = power_law_exponent(np.exp(logC[below]), nopt[below])
        extra = extrapolation_error(np.array([k2 * np.exp(logC[top]) ** a2]), np.array([nopt[top]]),
                                    float(pts.C[groups[top]].min()), int(sum(len(groups[i]) for i in np.flatnonzero(below))))
        extra["n_heldout"] = int(len(groups[top]))
        extra["quantity"] = "N_opt of the largest budget"
    method = {
        "formula": "per budget L = p0 + p1 log N + p2 (log N)^2, N_opt = exp(-p1 / 2 p2); N_opt = k C^a",
        "citation": "Hoffmann et al. 2022, Sec. 3.2 (Approach 2)", "budget_tolerance": tolerance,
        "budgets": [_budget(pts, g, lc, v, V[:, j] if resample else None, V_any[:, j] if resample else None)
                    for j, (lc, g, v) in enumerate(zip(logC, groups, nopt))],
        "bootstrap": settings.bootstrap, "bootstrap_used": n_used, "seed": settings.seed,
    }
    if settings.bootstrap and not resample:
        method["bootstrap_skipped"] = f"a budget has only {MIN_RUNS} runs: every resample gives the same parabola"
    if extra is None:
        method["extrapolation_skipped"] = f"needs >= 3 budgets with a minimum to hold the largest out; found {int(ok.sum())}"
    n_points = int(sum(len(g) for g in groups))
    # judged on the exponent a: k = N_opt / C^a inherits a's interval times log C (~27), so it spans decades whenever
    # a is uncertain, without saying more than a does
    return assess(FitResult("approach2", target, params, se, ci, allocation, n_points, extra, method), names=("a",))
