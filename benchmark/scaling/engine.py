"""The fitting engine: checked inputs, multi-start batched L-BFGS, bootstrap intervals and held-out extrapolation.

Pure functions of numpy arrays. Method of Hoffmann et al. 2022 (Approach 3, Sec. 3.3 and App. D.2)
as replicated by Besiroglu et al. 2024: Huber loss (delta 1e-3) of log residuals, summed, minimised
by L-BFGS from a grid of starts; standard errors from a bootstrap over points.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from benchmark.scaling import lbfgs, objectives, quality
from benchmark.scaling.laws import LAWS, chinchilla_allocation

# Phase 1 screens every start: a coarse stop (an iteration gaining < 1e-7, i.e. ~1e-4 of the summed
# Huber loss), and it ends once fewer than 5 % of the starts still run, the stragglers keeping
# their current point. Only the best N_POLISH go on, to the tight tolerance; on the Chinchilla data
# this reaches the same optimum as scipy's per-start loop (bench/fit_speed.py) in half the rounds.
PHASE1 = {"ftol": 1e-7, "ftol_floor": 1.0, "gtol": 1e-5, "max_iter": 1000}
PHASE1_STOP_FRACTION = 0.05
POLISH = {"ftol": 1e-15, "ftol_floor": 0.0, "gtol": 0.0, "max_iter": 3000}    # relative: f is ~1e-3
BOOTSTRAP = {**POLISH, "ftol": 1e-10, "max_iter": 1000}  # SEs need ~1e-5 in the parameters, not 1e-8
N_POLISH = 16  # best phase-1 starts that are polished to the tight tolerance
N_DRAWS = 100  # bootstrap parameter sets kept per fit for uncertainty bands in plots


class FitError(ValueError):
    """The data cannot support the requested fit; the message is one line and names the rows."""


@dataclass(frozen=True)
class Points:
    """What a law is fitted to. y is the target (a loss or a metric); N, D, C, L are the inputs a
    law may read (parameters, tokens, FLOPs, task loss), None when absent; ids name the rows."""
    y: np.ndarray
    N: np.ndarray | None = None
    D: np.ndarray | None = None
    C: np.ndarray | None = None
    L: np.ndarray | None = None
    ids: tuple[str, ...] = ()

    def __post_init__(self):
        n = np.asarray(self.y).size
        for name in ("y", "N", "D", "C", "L"):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, dtype=float).ravel()
                if v.size != n:
                    raise FitError(f"{name} has {v.size} values but y has {n}")
                object.__setattr__(self, name, v)
        if self.C is None and self.N is not None and self.D is not None:
            object.__setattr__(self, "C", 6.0 * self.N * self.D)  # C = 6ND (Kaplan et al. 2020, Sec. 2.1)
        object.__setattr__(self, "ids", tuple(self.ids) if self.ids else tuple(f"row {i}" for i in range(n)))

    @property
    def n(self) -> int:
        return self.y.size

    def subset(self, mask: np.ndarray) -> "Points":
        pick = {k: (None if getattr(self, k) is None else getattr(self, k)[mask]) for k in ("y", "N", "D", "C", "L")}
        return Points(**pick, ids=tuple(np.asarray(self.ids, dtype=object)[mask]))


@dataclass(frozen=True)
class FitSettings:
    """How a fit is made (the `fit:` section of params.yaml)."""
    delta: float = 1e-3              # Huber delta on log residuals (Hoffmann et al. 2022, Sec. 3.3)
    bootstrap: int = 4000            # resamples over points (Besiroglu et al. 2024 use 4000)
    seed: int = 0
    holdout_fraction: float = 0.2    # the largest-compute ~20 % of runs are held out for extrapolation
    bootstrap_starts: int = 2        # best distinct optima of the full fit each resample starts from
    allocation_flops: float | None = None  # C at which N_opt, D_opt are reported; None: the largest C fitted
    threads: int | None = None
    budget_tolerance: float | None = None  # a grid's budgets (runs within it in C) are held out whole (holdout_split)


@dataclass(frozen=True)
class FitResult:
    law: str
    target: str
    params: dict[str, float]
    se: dict[str, float]
    ci95: dict[str, list[float]]
    allocation: dict[str, float] | None
    n_points: int
    extrapolation: dict[str, float] | None
    method: dict = field(default_factory=dict)
    draws: list[dict] = field(default_factory=list, repr=False)  # a few bootstrap parameter sets, for plots
    identified: bool = True  # False: reported as "not identified (identification)", not as numbers (quality.identify)
    unidentified: list[str] = field(default_factory=list)  # the parameters that are not
    identification: str = ""  # why not
    lack_of_fit: dict | None = None  # the form against its points' seed noise (quality.lack_of_fit); None: not tested

    def to_json(self) -> dict:
        """The fits.json object: plain floats (NaN and inf become None); draws are left out."""
        out = _plain(dataclasses.asdict(self))
        del out["draws"]
        return out


@dataclass(frozen=True)
class PointFit:
    model: objectives.Parameterisation
    theta: np.ndarray       # best internal parameters
    candidates: np.ndarray  # distinct good optima (internal), best first
    objective: float
    params: dict[str, float]
    n_starts: int


def check(law: str, pts: Points) -> None:
    """Raise FitError unless `pts` can support `law`: inputs present, finite and positive, enough
    points and enough variation."""
    if law not in LAWS:
        raise FitError(f"unknown law {law!r}; known: {', '.join(LAWS)}")
    spec = LAWS[law]
    ids = np.asarray(pts.ids, dtype=object)
    for name in spec.inputs:
        if getattr(pts, name) is None:
            raise FitError(f"{law} needs {name}, which was not given")
    for name in ("y", *spec.inputs):
        v = getattr(pts, name)
        bad = ~np.isfinite(v)
        if bad.any():
            raise FitError(f"{law}: {name} is NaN or infinite at {_rows(ids[bad])}")
        if (name != "y" or spec.space == "log") and (v <= 0).any():
            raise FitError(f"{law}: {name} must be positive; it is not at {_rows(ids[v <= 0])}")
    p = len(spec.params)
    if pts.n < p:
        raise FitError(f"{law} has {p} parameters but only {pts.n} points")
    for name, need in spec.min_distinct.items():
        have = _levels(getattr(pts, name)) if name in GRID_INPUTS else np.unique(getattr(pts, name)).size
        if have < need:
            counted = " (seed replicates, a few tokens apart, count once)" if name in GRID_INPUTS else ""
            raise FitError(f"{law} needs variation in {name}: at least {need} distinct values{counted}, but the {pts.n} "
                           f"points have {have}")
    if {"N", "D"} <= set(spec.inputs):
        X = np.column_stack([np.ones(pts.n), np.log(pts.N)])
        resid = np.log(pts.D) - X @ np.linalg.lstsq(X, np.log(pts.D), rcond=None)[0]
        if np.abs(resid).max() < 1e-9:
            raise FitError(f"{law} needs N and D to vary independently, but D is a fixed power of N in all {pts.n} points")
    if spec.space == "metric" and np.ptp(pts.y) == 0:
        raise FitError(f"{law}: the target is constant ({pts.y[0]:g}) over all {pts.n} points")


GRID_INPUTS = ("N", "D", "C")  # a grid's coordinates: replicates of a point differ in D and C by a few tokens only


def _levels(v: np.ndarray) -> int:
    """Distinct values of a grid coordinate, values within the replicate tolerance of a level's smallest counted once
    (benchmark.results.points.REPLICATE_TOLERANCE, grouped as laws.group_budgets groups): 3 seeds of one point are one
    D, not 3."""
    from benchmark.results.points import REPLICATE_TOLERANCE
    from benchmark.scaling.laws import group_budgets

    return len(group_budgets(v, REPLICATE_TOLERANCE))


def _rows(ids) -> str:
    ids = list(ids)
    return ", ".join(map(str, ids[:5])) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _residuals(law: str, pts: Points, settings: FitSettings) -> tuple[np.ndarray, float, float]:
    """(target in the residual space, Huber delta, residual scale) of a law on these points."""
    if LAWS[law].space == "log":
        return np.log(pts.y), settings.delta, 1.0
    return pts.y, math.inf, float(np.std(pts.y)) or 1.0  # least squares on the metric


def fit_point(law: str, pts: Points, settings: FitSettings = FitSettings(), y_range: tuple[float, float] | None = None) -> PointFit:
    """Best fit from all of the law's starts: a phase-1 screen of every start (PHASE1; in float32
    for the 4500-start Chinchilla grid), then the best N_POLISH polished in float64 to a relative
    tolerance, since the summed Huber loss is ~1e-3. A bounded law stays inside LAWS[law].fit_bounds(y_range)."""
    check(law, pts)
    model = objectives.make_model(law, y_range=y_range, N=pts.N, D=pts.D, C=pts.C, L=pts.L)
    y, delta, scale = _residuals(law, pts, settings)
    starts = model.starts(y)
    dtype = np.float32 if isinstance(model, objectives.Chinchilla) else np.float64
    obj = objectives.Objective(model, y, delta=delta, scale=scale, dtype=dtype, threads=settings.threads)
    r1 = lbfgs.minimize(obj, starts, **PHASE1, stop_running_below=int(PHASE1_STOP_FRACTION * len(starts)))
    top = np.argsort(np.where(np.isfinite(r1.fun), r1.fun, np.inf))[:N_POLISH]
    obj64 = objectives.Objective(model, y, delta=delta, scale=scale, threads=settings.threads)
    r2 = lbfgs.minimize(obj64, r1.x[top], **POLISH)
    order = np.argsort(np.where(np.isfinite(r2.fun), r2.fun, np.inf))
    if not np.isfinite(r2.fun[order[0]]):
        raise FitError(f"{law}: no start reached a finite objective")
    # Starts for the bootstrap: the best optimum, then the next distinct optima of phase 1.
    rest = np.argsort(np.where(np.isfinite(r1.fun), r1.fun, np.inf))
    cands = _distinct(np.concatenate([r2.x[order[:1]], r1.x[rest[np.isfinite(r1.fun[rest])]]]), settings.bootstrap_starts)
    best = r2.x[order[0]]
    params = {k: float(v[0]) for k, v in model.to_public(best).items()}
    return PointFit(model, best, cands, float(r2.fun[order[0]]), params, len(starts))


def _distinct(xs: np.ndarray, k: int, tol: float = 1e-3) -> np.ndarray:
    keep: list[np.ndarray] = []
    for x in xs:
        if all(np.abs(x - y).max() > tol * (1.0 + np.abs(y).max()) for y in keep):
            keep.append(x)
        if len(keep) == k:
            break
    return np.array(keep)


def bootstrap(law: str, pts: Points, point: PointFit, settings: FitSettings = FitSettings()):
    """Refit `settings.bootstrap` resamples of the points at once (a resample is a vector of
    multinomial point weights in a weighted summed Huber loss), each from the full fit's best
    distinct optima. Degenerate resamples (fewer distinct points than parameters, or fewer distinct
    values of an input than the law needs, laws.Law.min_distinct) are dropped.
    Returns (samples: name -> array, n_used, n_degenerate)."""
    samples, used, n_degenerate = bootstrap_draws(law, pts, point, settings)
    return samples, int(used.size), n_degenerate


def bootstrap_draws(law: str, pts: Points, point: PointFit, settings: FitSettings = FitSettings()):
    """bootstrap, with the numbers of the resamples each sample comes from (samples, resample index, n_degenerate):
    the same settings.seed draws the same resamples of the same points, so two laws fitted to one set of runs (the
    two steps of fit_two_step) pair their samples by that index."""
    spec = LAWS[law]
    rng = np.random.default_rng(settings.seed)
    n, p = pts.n, len(spec.params)
    W = rng.multinomial(n, np.full(n, 1.0 / n), size=settings.bootstrap).astype(float)
    ok = (W > 0).sum(axis=1) >= p
    for name, need in spec.min_distinct.items():
        _, code = np.unique(getattr(pts, name), return_inverse=True)
        present = (W > 0).astype(float) @ np.eye(code.max() + 1)[code]
        ok &= (present > 0).sum(axis=1) >= need
    Wv = W[ok]
    y, delta, scale = _residuals(law, pts, settings)
    K = point.candidates.shape[0]
    rows = np.repeat(np.arange(Wv.shape[0]), K)
    obj = objectives.Objective(point.model, y, delta=delta, scale=scale, weights=Wv, rows=rows, threads=settings.threads)
    res = lbfgs.minimize(obj, np.tile(point.candidates, (Wv.shape[0], 1)), **BOOTSTRAP)
    fun = np.where(np.isfinite(res.fun), res.fun, np.inf).reshape(-1, K)
    pick = np.argmin(fun, axis=1)
    theta = res.x.reshape(-1, K, res.x.shape[1])[np.arange(fun.shape[0]), pick]
    samples = point.model.to_public(theta)
    if law == "chinchilla":
        samples.update(chinchilla_allocation(_allocation_flops(pts, settings), **{k: samples[k] for k in ("A", "B", "alpha", "beta")}))
    finite = np.isfinite(fun.min(axis=1)) & np.all([np.isfinite(v) for v in samples.values()], axis=0)
    return {k: np.asarray(v)[finite] for k, v in samples.items()}, np.flatnonzero(ok)[finite], int((~ok).sum())


def _allocation_flops(pts: Points, settings: FitSettings) -> float:
    return float(settings.allocation_flops or pts.C.max())


def summarise(samples: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Bootstrap SE (ddof 1) and 95 % percentile interval of every sampled quantity."""
    se, ci = {}, {}
    for k, v in samples.items():
        if v.size >= 2 and np.isfinite(v).all():
            with np.errstate(over="ignore", invalid="ignore"):  # e.g. N_c of a flat resample near 1e300
                se[k] = float(np.std(v, ddof=1))
            ci[k] = [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
    return se, ci


def holdout_split(C: np.ndarray, fraction: float, tolerance: float | None = None) -> tuple[np.ndarray, float]:
    """Mask of held-out runs (the ceil(fraction * n) largest C, ties included) and the cutoff C. With a tolerance,
    whole compute budgets (laws.group_budgets) are held out, the largest first, until they hold that many runs: a
    budget, and so every seed replicate of a point, lies wholly on one side of the cutoff."""
    C = np.asarray(C, dtype=float)
    n_hold = max(1, math.ceil(fraction * C.size))
    if tolerance is None:
        cutoff = float(np.sort(C)[::-1][n_hold - 1])
        return C >= cutoff, cutoff
    from benchmark.scaling.laws import group_budgets

    held = np.zeros(C.size, dtype=bool)
    for g in reversed(group_budgets(C, tolerance)):
        held[g] = True
        if held.sum() >= n_hold:
            break
    return held, float(C[held].min())


def extrapolation_error(pred: np.ndarray, obs: np.ndarray, cutoff: float, n_train: int,
                        groups: list[np.ndarray] | None = None, ids: Sequence[str] | None = None) -> dict[str, float]:
    """Mean and max |relative error| on the held-out points (None where an observed value is 0), and the mean
    |error|; with `groups` (the runs of each point, quality.replicate_groups) a point's observation is the mean
    of its replicates, and the record gains their seed spread and whether the error is within twice it; with the
    runs' ids, each point is named by the first of its runs' ids in sort order (point_ids: d96-c4, not d96-c4-s2)."""
    groups = groups if groups is not None else [np.array([i]) for i in range(obs.size)]
    obs_m = np.array([obs[g].mean() for g in groups])
    with np.errstate(over="ignore", invalid="ignore"):
        pred_m = np.array([pred[g].mean() for g in groups])
        err = np.abs(pred_m - obs_m)
    rel = err / np.abs(obs_m) if np.all(obs_m != 0) else None
    out = {"rel_err": None if rel is None else float(rel.mean()), "max_rel_err": None if rel is None else float(rel.max()),
           "abs_err": float(err.mean()), "n_heldout": int(obs.size), "n_heldout_points": len(groups),
           "n_train": int(n_train), "cutoff_flops": cutoff,
           "observed": [float(v) for v in obs_m], "predicted": [float(v) for v in pred_m]}
    if ids is not None:
        out["point_ids"] = [min(str(ids[i]) for i in g) for g in groups]
    spread = quality.seed_spread(obs, groups)
    out.update(spread)
    out["within_2x_seed_spread"] = quality.within_seed_spread(out["rel_err"], out["abs_err"], spread)
    return out


def heldout_interval(draws: np.ndarray, obs: np.ndarray, groups: list[np.ndarray], y_range: tuple[float, float] | None,
                     positive: bool) -> dict:
    """The held-out prediction's own uncertainty: draws (resamples x held-out runs) are the predictions of bootstrap
    refits below the cutoff. Per point (the mean over its replicates, as extrapolation_error compares): the 95 %
    percentile interval, how many observed means it holds, and whether the prediction is identified
    (quality.identify_prediction). A parameter the points below the cutoff cannot pin down (E traded against A,
    say) leaves the prediction identified as long as the predictions agree."""
    with np.errstate(over="ignore", invalid="ignore"):
        pm = np.column_stack([draws[:, g].mean(axis=1) for g in groups])
    finite = np.isfinite(pm).all(axis=1)
    out: dict = {"n_draws": int(finite.sum()), "predicted_ci95": None, "inside_ci95": None}
    if finite.sum() >= 2:
        lo, hi = np.percentile(pm[finite], [2.5, 97.5], axis=0)
        obs_m = np.array([obs[g].mean() for g in groups])
        out["predicted_ci95"] = [[float(a), float(b)] for a, b in zip(lo, hi)]
        out["inside_ci95"] = int(((lo <= obs_m) & (obs_m <= hi)).sum())
    ok, why = quality.identify_prediction(out["predicted_ci95"], int((~finite).sum()), draws.shape[0], y_range, positive)
    return {**out, "identified": ok, "identification": why}


def extrapolate(law: str, pts: Points, settings: FitSettings = FitSettings(),
                y_range: tuple[float, float] | None = None) -> tuple[dict | None, str]:
    """Fit on runs below the compute cutoff (every replicate a row), predict the held-out largest-compute
    points and compare with the mean of each point's replicates; with settings.bootstrap, the same resampling of
    the runs below the cutoff gives the prediction's interval and identification (heldout_interval)."""
    held, cutoff = holdout_split(pts.C, settings.holdout_fraction, settings.budget_tolerance)
    train = pts.subset(~held)
    try:
        pf = fit_point(law, train, settings, y_range)
    except FitError as e:
        return None, f"no extrapolation: {e}"
    test, spec = pts.subset(held), LAWS[law]
    inputs = {k: getattr(test, k) for k in spec.inputs}
    with np.errstate(over="ignore", invalid="ignore"):  # a wild fit may predict inf: reported as such
        pred = spec.predict(pf.params, **inputs)
    groups = quality.replicate_groups(test.N, test.D, test.C)
    out = extrapolation_error(pred, test.y, cutoff, train.n, groups, test.ids)
    if settings.bootstrap:
        samples, _, _ = bootstrap_draws(law, train, pf, settings)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            draws = spec.predict({k: samples[k][:, None] for k in spec.params}, **inputs)
        out.update(heldout_interval(np.broadcast_to(draws, (samples[spec.params[0]].size, test.n)), test.y, groups,
                                    y_range, spec.space == "log"))
    return out, ""


def assess(res: FitResult, y_range: tuple[float, float] | None = None, names: tuple[str, ...] | None = None,
           law: str | None = None) -> FitResult:
    """res with identified / unidentified / identification set (quality.identify) from its intervals and held-out
    predictions; names: the parameters with intervals (default: those of LAWS[law or res.law])."""
    spec = LAWS.get(law or res.law)
    names = names or (spec.params if spec else tuple(res.params))
    bounds = spec.fit_bounds(y_range) if spec else {}
    pred = (res.extrapolation or {}).get("predicted")
    ok, bad, why = quality.identify(names, res.params, res.se, res.ci95, bounds, spec.levels if spec and spec.bounded else (),
                                    pred, y_range, positive=bool(spec and spec.space == "log"))
    return dataclasses.replace(res, identified=ok, unidentified=bad, identification=why)


def lack_of_fit(law: str, pts: Points, point: PointFit, settings: FitSettings = FitSettings(),
                y_range: tuple[float, float] | None = None) -> dict:
    """quality.lack_of_fit of a law on its points. The F test is a least-squares one: a loss law (fitted by Huber on
    log residuals) is refitted by least squares on the log, a metric law's fit already is one."""
    spec = LAWS[law]
    groups = quality.replicate_groups(pts.N, pts.D, pts.C)
    if all(len(g) == 1 for g in groups):  # no pure error to test against: spare the refit
        return {"space": spec.space, "F": None, "p": None, "reason": quality.NO_REPLICATES}
    if spec.space == "log":
        try:
            point = fit_point(law, pts, dataclasses.replace(settings, delta=math.inf), y_range)
        except FitError as e:
            return {"space": spec.space, "F": None, "p": None, "reason": f"no least-squares fit: {e}"}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred = spec.predict(point.params, **{k: getattr(pts, k) for k in spec.inputs})
        resid = np.log(pts.y) - np.log(pred) if spec.space == "log" else pts.y - pred
    out = quality.lack_of_fit(resid, groups, len(spec.params), spec.space)
    out["fit"] = "least squares on log y" if spec.space == "log" else "least squares on the metric (the fit itself)"
    return out


def fit(law: str, pts: Points, settings: FitSettings = FitSettings(), target: str = "", holdout: bool = True,
        y_range: tuple[float, float] | None = None) -> FitResult:
    """Point fit, bootstrap intervals, allocation (chinchilla), held-out extrapolation error, lack-of-fit test and
    identification;
    y_range: the target metric's range (a bounded law's levels stay inside it; predictions outside are absurd)."""
    point = fit_point(law, pts, settings, y_range)
    samples, n_used, n_degenerate = bootstrap(law, pts, point, settings) if settings.bootstrap else ({}, 0, 0)
    se, ci = summarise(samples)
    allocation = None
    if law == "chinchilla":
        allocation = {k: float(v) for k, v in chinchilla_allocation(_allocation_flops(pts, settings), **{
            k: point.params[k] for k in ("A", "B", "alpha", "beta")}).items()}
        allocation["flops"] = _allocation_flops(pts, settings)
    extra, why = (extrapolate(law, pts, settings, y_range) if holdout else (None, "")) if pts.C is not None else (None, "no compute to order runs by")
    spec = LAWS[law]
    method = {
        "formula": spec.formula, "citation": spec.citation,
        "loss": f"summed Huber (delta={settings.delta:g}) of log residuals" if spec.space == "log"
        else "least squares on the metric, residuals scaled by its standard deviation",
        "optimizer": "batched L-BFGS (benchmark.scaling.lbfgs), analytic gradients",
        "starts": point.n_starts, "phase1": f"screen: ftol {PHASE1['ftol']:g}, gtol {PHASE1['gtol']:g}, until < {PHASE1_STOP_FRACTION:.0%} of starts run{', float32' if law == 'chinchilla' else ''}",
        "polish": f"best {N_POLISH} starts to relative ftol {POLISH['ftol']:g} in float64",
        "objective": point.objective, "bootstrap": settings.bootstrap, "bootstrap_used": n_used,
        "bootstrap_degenerate": n_degenerate, "bootstrap_starts": int(point.candidates.shape[0]),
        "seed": settings.seed, "holdout_fraction": settings.holdout_fraction,
    }
    if spec.bounded:
        method["bounds"] = {k: [lo, hi] for k, (lo, hi) in spec.fit_bounds(y_range).items()}
    if why:
        method["extrapolation_skipped"] = why
    names = LAWS[law].params
    draws = [{k: float(samples[k][i]) for k in names} for i in range(min(N_DRAWS, n_used))] if samples else []
    return assess(FitResult(law, target, point.params, se, ci, allocation, pts.n, extra, method, draws,
                            lack_of_fit=lack_of_fit(law, pts, point, settings, y_range)), y_range)


def fit_two_step(pts: Points, settings: FitSettings = FitSettings(), target: str = "",
                 y_range: tuple[float, float] | None = None) -> FitResult:
    """Two-step downstream law (Dubey et al. 2024, Llama 3, Sec. 3.2.1; Bhagia et al. 2024, OLMo
    ladder): the task loss L(N, D) from a chinchilla fit, the metric as a sigmoid of the task loss.
    Bootstrap intervals are those of step 2 (step 1's are in the chinchilla fit of the task's
    val_loss); the held-out runs are predicted from N and D alone, through both steps."""
    if pts.L is None:
        raise FitError("two_step needs the task loss L of every run")
    loss = Points(y=pts.L, N=pts.N, D=pts.D, C=pts.C, ids=pts.ids)
    step1 = fit_point("chinchilla", loss, settings)
    step2 = fit("sigmoid_loss", pts, settings, target, holdout=False, y_range=y_range)
    held, cutoff = holdout_split(pts.C, settings.holdout_fraction, settings.budget_tolerance)
    train, test = pts.subset(~held), pts.subset(held)
    try:
        loss_train = Points(y=train.L, N=train.N, D=train.D, C=train.C, ids=train.ids)
        s1 = fit_point("chinchilla", loss_train, settings)
        s2 = fit_point("sigmoid_loss", train, settings, y_range)
        chin, sig = LAWS["chinchilla"], LAWS["sigmoid_loss"]
        with np.errstate(over="ignore", invalid="ignore"):
            pred = sig.predict(s2.params, L=chin.predict(s1.params, N=test.N, D=test.D))
        groups = quality.replicate_groups(test.N, test.D, test.C)
        extra, why = extrapolation_error(pred, test.y, cutoff, train.n, groups, test.ids), ""
        if settings.bootstrap:  # both steps refitted on the same resamples of the runs below the cutoff
            d1, i1, _ = bootstrap_draws("chinchilla", loss_train, s1, settings)
            d2, i2, _ = bootstrap_draws("sigmoid_loss", train, s2, settings)
            _, a1, a2 = np.intersect1d(i1, i2, return_indices=True)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                L = chin.predict({k: d1[k][a1, None] for k in chin.params}, N=test.N, D=test.D)
                draws = sig.predict({k: d2[k][a2, None] for k in sig.params}, L=L)
            extra.update(heldout_interval(np.broadcast_to(draws, (a1.size, test.n)), test.y, groups, y_range, False))
    except FitError as e:
        extra, why = None, f"no extrapolation: {e}"
    method = {**step2.method, "formula": "L = E + A/N^alpha + B/D^beta; P = lo + (hi-lo)/(1 + exp(k (L - L_mid)))",
              "citation": "Dubey et al. 2024 (Llama 3), Sec. 3.2.1; Bhagia et al. 2024 (OLMo ladder)",
              "step1_objective": step1.objective, "intervals": "step 2 only"}
    if why:
        method["extrapolation_skipped"] = why
    res = dataclasses.replace(step2, law="two_step", params={**step1.params, **step2.params}, extrapolation=extra,
                              method=method, draws=[], lack_of_fit=None)  # two fits: no one least-squares F test
    return assess(res, y_range, LAWS["sigmoid_loss"].params, law="sigmoid_loss")


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return v
