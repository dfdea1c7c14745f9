"""The derived `points` table: the seed replicates of each grid point (same size, N and D) as one point with spread."""
from __future__ import annotations

import math

import numpy as np


STD_LEVEL = 0.95  # the confidence level of a point's seed-spread interval


def chi2_cdf(x: float, k: int) -> float:
    """P(X <= x) for X chi-square with k (integer) degrees of freedom: the regularized lower gamma P(k/2, x/2), built up
    from P(1/2, y) = erf(sqrt(y)) or P(1, y) = 1 - exp(-y) by P(a + 1, y) = P(a, y) - y^a exp(-y) / Gamma(a + 1)
    (Abramowitz and Stegun 1964, 26.4.4-26.4.5)."""
    if x <= 0:
        return 0.0
    y = x / 2
    a, p = (0.5, math.erf(math.sqrt(y))) if k % 2 else (1.0, 1.0 - math.exp(-y))
    while a < k / 2:
        p -= math.exp(a * math.log(y) - y - math.lgamma(a + 1))
        a += 1
    return min(max(p, 0.0), 1.0)


def chi2_quantile(q: float, k: int) -> float:
    """The x with chi2_cdf(x, k) = q (0 < q < 1), by bisection to double precision."""
    lo, hi = 0.0, float(k)
    while chi2_cdf(hi, k) < q:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if chi2_cdf(mid, k) < q else (lo, mid)
        if hi - lo <= 1e-15 * hi:
            break
    return (lo + hi) / 2


def beta_reg(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (DLMF 8.17.22) evaluated with
    the modified Lentz method, on the side of x where it converges fast (I_x(a, b) = 1 - I_{1-x}(b, a))."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - beta_reg(1.0 - x, b, a)
    front = math.exp(a * math.log(x) + b * math.log1p(-x) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    frac = d
    for m in range(1, 1000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            frac *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return min(max(front * frac, 0.0), 1.0)


def f_sf(f: float, d1: int, d2: int) -> float:
    """P(F > f) for F with (d1, d2) degrees of freedom: I_{d2 / (d2 + d1 f)}(d2 / 2, d1 / 2) (Abramowitz and Stegun
    1964, 26.6.2)."""
    if f <= 0:
        return 1.0
    return beta_reg(d2 / (d2 + d1 * f), d2 / 2, d1 / 2)


def std_interval(std: float, n: int, level: float = STD_LEVEL) -> tuple[float, float]:
    """Interval for a standard deviation estimated (ddof 1) from n draws of a normal distribution: the chi-square
    interval std * sqrt((n-1) / chi2_{(1+level)/2, n-1}) .. std * sqrt((n-1) / chi2_{(1-level)/2, n-1}) (NIST/SEMATECH
    e-Handbook of Statistical Methods, 1.3.5.8). Few seeds pin a spread down loosely: at 95 %, 3 seeds give
    0.52-6.3 x std, 5 seeds 0.60-2.9 x, 10 seeds 0.69-1.8 x."""
    if n < 2:
        raise ValueError(f"a standard deviation needs at least 2 draws, got {n}")
    k = n - 1
    return std * math.sqrt(k / chi2_quantile((1 + level) / 2, k)), std * math.sqrt(k / chi2_quantile((1 - level) / 2, k))


def point_stats(y) -> dict[str, float | int | None]:
    """n_seeds, mean, std (ddof 1; None for one seed), rel_std = std / |mean| (None for one seed or mean 0) and its
    STD_LEVEL interval (rel_std_low, rel_std_high: std_interval over |mean|; None where rel_std is), min, max."""
    y = np.asarray(y, dtype=float)
    mean = float(y.mean())
    std = float(y.std(ddof=1)) if y.size > 1 else None
    rel = std / abs(mean) if std is not None and mean != 0 else None
    low, high = std_interval(rel, y.size) if rel is not None else (None, None)
    return {"n_seeds": int(y.size), "mean": mean, "std": std, "rel_std": rel, "rel_std_low": low, "rel_std_high": high,
            "min": float(y.min()), "max": float(y.max())}


def pooled_spread(points: list[tuple[int, float]], level: float = STD_LEVEL) -> dict[str, float | int | None]:
    """One relative seed spread for several grid points, from each point's (n_seeds, rel_std) (points with fewer than
    2 seeds are left out): the pooled rel_std = sqrt(sum (n-1) rel_std^2 / sum (n-1)), its chi-square interval on
    sum (n-1) degrees of freedom (std_interval), and Bartlett's test that every point has the same spread (Bartlett
    1937; NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.5.7): homogeneity_p is the chance of points this
    unequal if they share one spread (None for fewer than 2 points). Pooling narrows the interval (19 points of 5 seeds: 0.86-1.19 x
    the estimate) but speaks for every point only where the test finds no point that differs."""
    used = [(int(n), float(r)) for n, r in points if n >= 2 and r is not None]
    df = sum(n - 1 for n, _ in used)
    out: dict[str, float | int | None] = {"n_points": len(used), "df": df, "rel_std": None, "rel_std_low": None,
                                          "rel_std_high": None, "homogeneity_p": None}
    if not used:
        return out
    var = sum((n - 1) * r * r for n, r in used) / df
    rel = math.sqrt(var)
    low, high = std_interval(rel, df + 1, level)
    out.update(rel_std=rel, rel_std_low=low, rel_std_high=high)
    if len(used) >= 2 and var > 0 and all(r > 0 for _, r in used):
        k = len(used)
        stat = (df * math.log(var) - sum((n - 1) * math.log(r * r) for n, r in used)) / (
            1 + (sum(1 / (n - 1) for n, _ in used) - 1 / df) / (3 * (k - 1)))
        out["homogeneity_p"] = 1.0 - chi2_cdf(stat, k - 1)
    return out


# A run stops at the first optimizer step that reaches its token budget, and how examples pack into a
# batch depends on the seed's data order: replicates of one grid point train a few hundred tokens apart
# (xs-500k: 500,099, 500,610 and 500,688). Runs of the same N whose D lie within this fraction of the
# group's smallest D are one grid point.
REPLICATE_TOLERANCE = 0.01


def point_index(N, D) -> np.ndarray:
    """The grid point of each run (an index, 0..k-1, in order of N then D): same N, and D within
    REPLICATE_TOLERANCE of the smallest D of its point. The one rule for replicates (points table,
    held-out means, figures)."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    out = np.empty(N.size, dtype=int)
    k, last = -1, None
    for i in np.lexsort((D, N)):
        if last is None or N[i] != N[last] or D[i] > (1.0 + REPLICATE_TOLERANCE) * D[last]:
            k, last = k + 1, i
        out[i] = k
    return out


def points_rows(runs: list[dict], metrics: list[dict]) -> list[dict]:
    """Rows of the derived `points` table: per (source, grid point, metric, task), the completed runs' seed
    replicates as one point with spread (point_stats); its tokens and flops are the replicates' means."""
    done = [r for r in runs if r["status"] == "completed"]
    point: dict[tuple, tuple] = {}
    for source in sorted({r["source"] for r in done}):
        rs = [r for r in done if r["source"] == source]
        for r, k in zip(rs, point_index([r["n_params"] for r in rs], [r["tokens"] for r in rs])):
            point[(source, r["run_id"])] = (source, r["model_size"], r["n_params"], int(k))
    runs_of: dict[tuple, list[dict]] = {}
    for r in done:
        runs_of.setdefault(point[(r["source"], r["run_id"])], []).append(r)
    groups: dict[tuple, list[tuple[str, float]]] = {}
    for m in metrics:
        key = point.get((m["source"], m["run_id"]))
        if key is not None and m["value"] is not None:
            groups.setdefault((*key, m["metric"], m["task"]), []).append((m["run_id"], m["value"]))
    out = []
    for (source, size, n, k, metric, task), vals in groups.items():
        ids, ys = zip(*sorted(vals))
        rs = runs_of[(source, size, n, k)]
        out.append({"source": source, "model_size": size, "n_params": n,
                    "tokens": int(round(np.mean([r["tokens"] for r in rs]))), "metric": metric, "task": task,
                    "flops": float(np.mean([r["flops"] for r in rs])), **point_stats(list(ys)), "run_ids": ",".join(ids)})
    return sorted(out, key=lambda p: (p["source"], p["n_params"], p["tokens"], p["metric"], p["task"]))
