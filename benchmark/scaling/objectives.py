"""Each registered law's fitting objective: an internal parameterisation, analytic gradients and start points.

The formulas themselves live in benchmark.scaling.laws (LAWS); each class here evaluates its law in a
better-conditioned parameterisation (tests/test_fitting.py checks it equals the registry's function).

The objective of every law is a summed Huber loss (Huber 1964) of residuals, as in Hoffmann et al.
2022 eq. 3: residuals are log L_hat - log L for loss laws (delta 1e-3) and (P_hat - P) / scale for
downstream metrics (delta = inf, i.e. least squares). Internally the logs of N, D and C are centred
on their data means (e.g. a' = a - alpha * mean(log N)): a linear change of variables that keeps
the same objective and the same set of starts but decorrelates a from alpha, which L-BFGS likes.
"""
from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from benchmark.scaling.laws import LAWS, logistic

_POOL: ThreadPoolExecutor | None = None
_LOCAL = threading.local()
# Exponents are floored so no subnormal numbers arise (x86 handles them ~100x slower); the terms
# they stand for are < 1e-30 of L_hat, far below either precision's resolution.
EXP_FLOOR = {"f": -70.0, "d": -600.0}
BLOCK_ELEMENTS = 65536  # rows x points per block: few blocks (Python overhead) but enough to share between threads


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers != threads:
        _POOL = ThreadPoolExecutor(threads)
    return _POOL


def default_threads() -> int:
    """Threads for objective blocks: the cores not already busy (1-minute load average), 1 to 4.
    On a shared machine a second thread only queues behind other processes (measured: 0.48 s vs
    0.42 s for the Chinchilla fit with both cores taken); blocks make the results independent of it."""
    cpus = os.cpu_count() or 1
    try:
        idle = cpus - os.getloadavg()[0]
    except OSError:
        idle = cpus
    return max(1, min(int(round(idle)), cpus, 4))


class Parameterisation:
    """A law of benchmark.scaling.laws on fixed data in internal parameters: `pred_jac` gives the prediction (in
    the residual space) and its derivatives for a block of internal parameter rows; `loss_grad` turns
    them into the summed loss; `to_public` / `from_public` map to and from the law's named parameters."""

    law = ""
    names: tuple[str, ...] = ()  # internal parameter names, in column order

    def pred_jac(self, th: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        raise NotImplementedError

    def to_public(self, th: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def from_public(self, params: dict[str, float]) -> np.ndarray:
        raise NotImplementedError

    def starts(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def loss_grad(self, th, y, w, delta, scale, f, g, dtype=np.float64) -> None:
        """Write the summed (weighted) Huber loss of each row of `th` into f and its gradient into g."""
        pred, jac = self.pred_jac(th)
        r = (pred - y) / scale
        c = np.clip(r, -delta, delta)
        h = (r - 0.5 * c) * c  # Huber: r^2/2 inside delta, delta (|r| - delta/2) outside
        if w is not None:
            h *= w
            c *= w
        f[:] = h.sum(axis=1)
        c /= scale
        for j, J in enumerate(jac):
            g[:, j] = np.einsum("ij,ij->i", c, J)


def _centred_log(x: np.ndarray) -> tuple[np.ndarray, float]:
    lx = np.log(np.asarray(x, dtype=float))
    return lx - lx.mean(), float(lx.mean())


class Chinchilla(Parameterisation):
    """laws.chinchilla in log space, log L_hat = LSE(a - alpha log N, b - beta log D, e) (Hoffmann et al.
    2022, eq. 3), A = exp(a), B = exp(b), E = exp(e); internal a' = a - alpha mean(log N), b' = b - beta mean(log D)."""

    law = "chinchilla"
    names = ("a'", "b'", "e", "alpha", "beta")

    def __init__(self, N, D, **_):
        self.lN, self.mN = _centred_log(N)
        self.lD, self.mD = _centred_log(D)
        self._endsN, self._endsD = (self.lN.min(), self.lN.max()), (self.lD.min(), self.lD.max())
        self._cast = None

    def _data(self, y, dtype):
        """y and the rows [1; log N'] and [1; log D'] in the working precision, cast once per (y, dtype)."""
        cached = self._cast
        if cached is None or cached[0] is not y or cached[1] != dtype:
            ones = np.ones_like(self.lN)
            cast = (np.asarray(y, dtype=dtype), np.vstack([ones, self.lN]).astype(dtype),
                    np.vstack([ones, self.lD]).astype(dtype), ones.astype(dtype))
            cached = self._cast = (y, dtype, cast)
        return cached[2]

    def loss_grad(self, th, y, w, delta, scale, f, g, dtype=np.float64) -> None:
        ly, XN, XD, ones = self._data(y, dtype)
        k, n = th.shape[0], ly.size
        ws = getattr(_LOCAL, "ws", None)
        if ws is None or ws.dtype != dtype or ws.shape[1] < k or ws.shape[2] != n:
            ws = _LOCAL.ws = np.empty((5, max(k, 8), n), dtype=dtype)
        t1, t2, s, h, c = ws[0, :k], ws[1, :k], ws[2, :k], ws[3, :k], ws[4, :k]
        th = th.astype(dtype, copy=False)
        e = th[:, 2]
        floor = EXP_FLOOR[np.dtype(dtype).char]
        for t, coef, X, ends in ((t1, th[:, (0, 3)], XN, self._endsN), (t2, th[:, (1, 4)], XD, self._endsD)):
            coef[:, 1] *= -1.0
            np.matmul(coef, X, out=t)            # a - alpha log N' (a product with inner size 2: one pass)
            # Floor the exponent only in rows that reach below it (linear in log N': check the ends).
            low = np.minimum(coef[:, 0] + coef[:, 1] * ends[0], coef[:, 0] + coef[:, 1] * ends[1]) < floor
            if low.any():
                t[low] = np.maximum(t[low], floor)
            np.exp(t, out=t)                     # A / N^alpha, B / D^beta
        E = np.exp(e)
        np.add(t1, t2, out=s)
        s += E[:, None]                          # L_hat
        np.log(s, out=h)
        h -= ly                                  # residual r = log L_hat - log L
        np.clip(h, -delta, delta, out=c)         # dHuber/dr
        h *= 2.0
        h -= c
        h *= c                                   # 2 Huber(r) = c (2r - c), without a temporary
        if w is not None:
            h *= w
            c *= w
        f[:] = 0.5 * (h @ ones)
        c /= s                                   # dHuber/dr * dr/dL_hat
        t1 *= c
        t2 *= c
        gN, gD = t1 @ XN.T, t2 @ XD.T            # one pass each for the sum and the log-weighted sum
        g[:, 0], g[:, 3] = gN[:, 0], -gN[:, 1]
        g[:, 1], g[:, 4] = gD[:, 0], -gD[:, 1]
        g[:, 2] = E * (c @ ones)

    def to_public(self, th):
        a, b, e, al, be = np.atleast_2d(th).T
        with np.errstate(over="ignore"):
            return {"E": np.exp(e), "A": np.exp(a + al * self.mN), "B": np.exp(b + be * self.mD), "alpha": al, "beta": be}

    def from_public(self, p):
        return np.array([np.log(p["A"]) - p["alpha"] * self.mN, np.log(p["B"]) - p["beta"] * self.mD,
                         np.log(p["E"]), p["alpha"], p["beta"]])

    def starts(self, y):
        """Hoffmann et al. 2022's grid (App. D.2, as replicated by Besiroglu et al. 2024): alpha, beta in
        {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}: 4500 starts."""
        ab = np.arange(0.0, 30.0, 5.0)
        grid = np.array(list(itertools.product(ab, ab, np.arange(-1.0, 1.5, 0.5), np.arange(0.0, 2.5, 0.5),
                                               np.arange(0.0, 2.5, 0.5))))
        grid[:, 0] -= grid[:, 3] * self.mN
        grid[:, 1] -= grid[:, 4] * self.mD
        return grid


class KaplanSingle(Parameterisation):
    """laws.kaplan_n / laws.kaplan_d in log space, linear in the internal (k, alpha) with
    k = alpha (log X_c - mean log X)."""

    def __init__(self, x, which: str):
        self.law = f"kaplan_{which.lower()}"
        self.public = (f"{which}_c", f"alpha_{which}")
        self.names = ("k", f"alpha_{which}")
        self.lx, self.m = _centred_log(x)

    def pred_jac(self, th):
        k, al = th[:, :1], th[:, 1:]
        return k - al * self.lx, [np.ones((th.shape[0], self.lx.size)), np.broadcast_to(-self.lx, (th.shape[0], self.lx.size))]

    def to_public(self, th):
        k, al = np.atleast_2d(th).T
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return {self.public[0]: np.exp(self.m + k / al), self.public[1]: al}

    def from_public(self, p):
        al = p[self.public[1]]
        return np.array([al * (np.log(p[self.public[0]]) - self.m), al])

    def starts(self, y):
        al = np.array([0.02, 0.05, 0.1, 0.2, 0.5])
        return np.column_stack([np.full(al.size, y.mean()), al])


class KaplanND(Parameterisation):
    """laws.kaplan_nd in log space, alpha_D LSE(u, v), u = (alpha_N/alpha_D)(c_N - log N'), v = c_D - log D'
    with centred logs and c_N = log N_c - mean log N."""

    law = "kaplan_nd"
    names = ("alpha_N", "alpha_D", "c_N", "c_D")

    def __init__(self, N, D, **_):
        self.lN, self.mN = _centred_log(N)
        self.lD, self.mD = _centred_log(D)

    def pred_jac(self, th):
        aN, aD, cN, cD = (th[:, j:j + 1] for j in range(4))
        u = (aN / aD) * (cN - self.lN)
        v = cD - self.lD
        m = np.maximum(u, v)
        eu, ev = np.exp(u - m), np.exp(v - m)
        lse = m + np.log(eu + ev)
        pu = eu / (eu + ev)
        return aD * lse, [pu * (cN - self.lN), lse - pu * u, pu * aN, aD * (1.0 - pu)]

    def to_public(self, th):
        aN, aD, cN, cD = np.atleast_2d(th).T
        with np.errstate(over="ignore"):
            return {"N_c": np.exp(cN + self.mN), "D_c": np.exp(cD + self.mD), "alpha_N": aN, "alpha_D": aD}

    def from_public(self, p):
        return np.array([p["alpha_N"], p["alpha_D"], np.log(p["N_c"]) - self.mN, np.log(p["D_c"]) - self.mD])

    def starts(self, y):
        rows = []
        for aN, aD, dN, dD in itertools.product((0.05, 0.1, 0.3, 1.0), (0.05, 0.1, 0.3, 1.0), (-3, 0, 3), (-3, 0, 3)):
            rows.append((aN, aD, y.mean() / aN + dN, y.mean() / aD + dD))
        return np.array(rows)


class SeedLaw(Parameterisation):
    """laws.seed_law with coefficients a', b', c' on the centred logs n, d, c of N, D, C = 6ND."""

    law = "seed_law"
    names = ("a'", "b'", "c'", "gamma", "delta", "epsilon")

    def __init__(self, N, D, **_):
        self.lN, self.mN = _centred_log(N)
        self.lD, self.mD = _centred_log(D)
        self.lC, self.mC = _centred_log(6.0 * np.asarray(N, dtype=float) * np.asarray(D, dtype=float))

    def _basis(self, gamma, delta, epsilon):
        with np.errstate(over="ignore"):
            return np.exp((1.0 - gamma) * self.lN), np.exp(delta * self.lD), np.exp(epsilon * self.lC)

    def pred_jac(self, th):
        a, b, c, ga, de, ep = (th[:, j:j + 1] for j in range(6))
        eN, eD, eC = self._basis(ga, de, ep)
        return a * eN + b * eD + c * eC, [eN, eD, eC, -a * self.lN * eN, b * self.lD * eD, c * self.lC * eC]

    def to_public(self, th):
        a, b, c, ga, de, ep = np.atleast_2d(th).T
        with np.errstate(over="ignore"):
            return {"a": a * np.exp(-(1.0 - ga) * self.mN), "b": b * np.exp(-de * self.mD),
                    "c": c * np.exp(-ep * self.mC), "gamma": ga, "delta": de, "epsilon": ep}

    def from_public(self, p):
        return np.array([p["a"] * np.exp((1 - p["gamma"]) * self.mN), p["b"] * np.exp(p["delta"] * self.mD),
                         p["c"] * np.exp(p["epsilon"] * self.mC), p["gamma"], p["delta"], p["epsilon"]])

    def starts(self, y):
        """Exponents on a grid; a', b', c' by (ridge) least squares given them (variable projection)."""
        rows = []
        for ga, de, ep in itertools.product((0.9, 0.7, 0.4), (0.1, 0.3, 0.6), (0.05, 0.2, 0.5)):
            X = np.column_stack(self._basis(ga, de, ep))
            coef = np.linalg.solve(X.T @ X + 1e-8 * np.eye(3) * np.trace(X.T @ X), X.T @ y)
            rows.append((*coef, ga, de, ep))
        return np.array(rows)


class Sigmoid(Parameterisation):
    """laws.sigmoid_compute (x = centred log C, s = +1) or laws.sigmoid_loss (x = centred L, s = -1) as lo + (hi - lo)
    logistic(k s (x - x0)) inside LAWS[law].fit_bounds(y_range): k = exp(kappa) > 0 and, for a range [a, b],
    lo = a + (b - a) logistic(p), hi = lo + (b - lo) logistic(q) (without one: lo = p, hi = p + exp(q))."""

    names = ("p", "q", "kappa", "x0")

    def __init__(self, x, of: str, y_range: tuple[float, float] | None = None):
        self.of = of
        if of == "C":
            self.law, self.x, self.m, self.sign, self.mid = "sigmoid_compute", *_centred_log(x), 1.0, "C_mid"
        else:
            x = np.asarray(x, dtype=float)
            self.law, self.x, self.m, self.sign, self.mid = "sigmoid_loss", x - x.mean(), float(x.mean()), -1.0, "L_mid"
        b = LAWS[self.law].fit_bounds(y_range)
        self.range = (b["lo"][0], b["hi"][1]) if np.isfinite([b["lo"][0], b["hi"][1]]).all() else None

    def _levels(self, p, q):
        """(lo, hi, dlo/dp, dhi/dp, dhi/dq) of the internal p, q."""
        if self.range is None:
            eq = np.exp(np.minimum(q, 700.0))
            return p, p + eq, np.ones_like(p), np.ones_like(p), eq
        a, b = self.range
        sp, sq = logistic(p), logistic(q)
        lo = a + (b - a) * sp
        dlo = (b - a) * sp * (1.0 - sp)
        return lo, lo + (b - lo) * sq, dlo, dlo * (1.0 - sq), (b - lo) * sq * (1.0 - sq)

    def pred_jac(self, th):
        p, q, kappa, x0 = (th[:, j:j + 1] for j in range(4))
        lo, hi, dlo_p, dhi_p, dhi_q = self._levels(p, q)
        k = np.exp(np.minimum(kappa, 700.0))
        dx = self.sign * (self.x - x0)
        sg = logistic(k * dx)
        ds = (hi - lo) * sg * (1.0 - sg)
        return lo + (hi - lo) * sg, [(1.0 - sg) * dlo_p + sg * dhi_p, sg * dhi_q, ds * dx * k, -ds * k * self.sign]

    def to_public(self, th):
        p, q, kappa, x0 = np.atleast_2d(th).T
        lo, hi, *_ = self._levels(p, q)
        with np.errstate(over="ignore"):
            mid = np.exp(x0 + self.m) if self.of == "C" else x0 + self.m
            return {"lo": lo, "hi": hi, "k": np.exp(kappa), self.mid: mid}

    def from_public(self, pub):
        x0 = np.log(pub[self.mid]) - self.m if self.of == "C" else pub[self.mid] - self.m
        lo, hi = float(pub["lo"]), float(pub["hi"])
        p, q = lo, np.log(max(hi - lo, 1e-300))
        if self.range is not None:
            a, b = self.range
            f_lo, f_hi = (np.clip(f, 1e-9, 1 - 1e-9) for f in ((lo - a) / (b - a), (hi - lo) / (b - lo)))
            p, q = np.log(f_lo / (1.0 - f_lo)), np.log(f_hi / (1.0 - f_hi))
        return np.array([p, q, np.log(pub["k"]), x0])

    def starts(self, y):
        span = max(float(np.ptp(y)), 1e-12)
        sx = max(float(np.ptp(self.x)), 1e-12)
        x0s = np.linspace(self.x.min() - 0.5 * sx, self.x.max() + 0.5 * sx, 5)
        a, b = self.range or (-np.inf, np.inf)  # starts strictly inside the bounds
        clip = lambda v: float(np.clip(v, a + 1e-3 * (b - a), b - 1e-3 * (b - a))) if self.range else v  # noqa: E731
        return np.array([[*self.from_public({"lo": clip(lo), "hi": max(clip(hi), clip(lo)), "k": k, self.mid: 1.0})[:3], x0]
                         for lo, hi, k, x0 in itertools.product((y.min() - 0.05 * span, y.min() - span),
                         (y.max() + 0.05 * span, y.max() + span, y.max() + 5 * span), (1 / sx, 4 / sx, 16 / sx), x0s)])


# law of benchmark.scaling.laws.LAWS -> (its parameterisation, extra arguments after the law's inputs)
PARAMETERISATIONS: dict[str, tuple[type[Parameterisation], tuple]] = {
    "chinchilla": (Chinchilla, ()), "kaplan_n": (KaplanSingle, ("N",)), "kaplan_d": (KaplanSingle, ("D",)),
    "kaplan_nd": (KaplanND, ()), "seed_law": (SeedLaw, ()), "sigmoid_compute": (Sigmoid, ("C",)),
    "sigmoid_loss": (Sigmoid, ("L",)),
}


def make_model(law: str, y_range: tuple[float, float] | None = None, **inputs) -> Parameterisation:
    """The parameterisation of `law` on its inputs (N, D, C, L: arrays of equal length; LAWS[law].inputs are read);
    a bounded law (LAWS[law].bounded) keeps its levels inside y_range, the target metric's range."""
    if law not in PARAMETERISATIONS:
        raise ValueError(f"no objective for law {law!r}")
    cls, extra = PARAMETERISATIONS[law]
    kw = {"y_range": y_range} if LAWS[law].bounded else {}
    return cls(*(inputs[k] for k in LAWS[law].inputs), *extra, **kw)


class Objective:
    """Summed Huber loss of `model` against targets y for many parameter rows at once.

    weights (R, n) and rows (S,) make problem i use weights[rows[i]] (bootstrap resamples);
    evaluation runs in blocks of rows, spread over a thread pool (numpy releases the GIL).
    """

    def __init__(self, model: Parameterisation, y: np.ndarray, *, delta: float, scale: float = 1.0, weights=None,
                 rows=None, dtype=np.float64, threads: int | None = None):
        self.model, self.y, self.delta, self.scale = model, np.asarray(y, dtype=float), delta, scale
        self.weights = None if weights is None else np.asarray(weights, dtype=dtype)
        self.rows = rows
        self.dtype = dtype
        self.threads = default_threads() if threads is None else threads
        self.block = max(8, BLOCK_ELEMENTS // max(self.y.size, 1))

    def __call__(self, th: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = th.shape[0]
        f = np.empty(k)
        g = np.empty((k, th.shape[1]))
        # Blocks depend on the data size only, never on the thread count: results are bit-identical
        # however many threads run them.
        blocks = [slice(i, min(i + self.block, k)) for i in range(0, k, self.block)]

        def run(sl: slice) -> None:
            w = None if self.weights is None else self.weights[self.rows[idx[sl]]]
            fb, gb = np.empty(sl.stop - sl.start, self.dtype), np.empty((sl.stop - sl.start, th.shape[1]), self.dtype)
            with np.errstate(all="ignore"):
                self.model.loss_grad(th[sl], self.y, w, self.delta, self.scale, fb, gb, dtype=self.dtype)
            f[sl], g[sl] = fb, gb

        if self.threads > 1 and len(blocks) > 1:
            list(_pool(self.threads).map(run, blocks))
        else:
            for sl in blocks:
                run(sl)
        bad = ~np.isfinite(f) | ~np.isfinite(g).all(axis=1)
        f[bad] = np.inf
        return f, g
