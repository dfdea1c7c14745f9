"""The law registry: each scaling-law formula once, with its parameters, bounds and the paper it comes from.

N: parameters, D: training tokens, C: training compute (FLOP, C = 6ND), L: loss (nats/token).
Every law takes its inputs as arrays and its parameters as keyword arguments (or a dict through
`predict`), never as a positional vector. `LAWS` is what fitting, the objectives
(benchmark.scaling.objectives, which refit each formula in a better-conditioned parameterisation, tested
equal to the function here), the report and the Python API read.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

FLOPS_PER_PARAM_TOKEN = 6.0  # C = 6ND (Kaplan et al. 2020, Sec. 2.1; Hoffmann et al. 2022, Sec. 3)


def chinchilla(N, D, *, E: float, A: float, B: float, alpha: float, beta: float):
    """L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2; fitted by Approach 3, Sec. 3.3)."""
    return E + A / np.power(N, alpha) + B / np.power(D, beta)


def kaplan_n(N, *, N_c: float, alpha_N: float):
    """L(N) = (N_c / N)^alpha_N for models trained to convergence (Kaplan et al. 2020, eq. 1.1)."""
    return np.power(N_c / np.asarray(N, dtype=float), alpha_N)


def kaplan_d(D, *, D_c: float, alpha_D: float):
    """L(D) = (D_c / D)^alpha_D for large models trained with early stopping (Kaplan et al. 2020, eq. 1.2)."""
    return np.power(D_c / np.asarray(D, dtype=float), alpha_D)


def kaplan_nd(N, D, *, N_c: float, D_c: float, alpha_N: float, alpha_D: float):
    """L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D (Kaplan et al. 2020, eq. 1.5 / 4.1)."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    return np.power(np.power(N_c / N, alpha_N / alpha_D) + D_c / D, alpha_D)


def seed_law(N, D, *, a: float, b: float, c: float, gamma: float, delta: float, epsilon: float):
    """P = a N^(1-gamma) + b D^delta + c C^epsilon with C = 6ND: downstream performance from
    parameters, data and compute. The project's own hypothesis (its seed brief); no published
    source, so it is always reported beside the saturating laws below."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    C = FLOPS_PER_PARAM_TOKEN * N * D
    return a * np.power(N, 1.0 - gamma) + b * np.power(D, delta) + c * np.power(C, epsilon)


def sigmoid_compute(C, *, lo: float, hi: float, k: float, C_mid: float):
    """P = lo + (hi - lo) / (1 + (C_mid / C)^k): a metric as a sigmoid of log-compute
    (Owen 2024, "How predictable is language model benchmark performance?", Epoch AI)."""
    x = k * (np.log(np.asarray(C, dtype=float)) - np.log(C_mid))
    return lo + (hi - lo) * logistic(x)


def sigmoid_loss(L, *, lo: float, hi: float, k: float, L_mid: float):
    """P = lo + (hi - lo) / (1 + exp(k (L - L_mid))): a metric as a sigmoid of task loss, step 2 of
    the two-step method (Dubey et al. 2024, Llama 3, Sec. 3.2.1; Bhagia et al. 2024, OLMo model ladder)."""
    return lo + (hi - lo) * logistic(-k * (np.asarray(L, dtype=float) - L_mid))


def logistic(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))  # overflow-free logistic


def chinchilla_allocation(C, *, A: float, B: float, alpha: float, beta: float) -> dict[str, object]:
    """Compute-optimal N and D for C = 6ND (Hoffmann et al. 2022, eq. 4):
    N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b, a = beta/(alpha+beta), b = alpha/(alpha+beta),
    G = (alpha A / (beta B))^(1/(alpha+beta))."""
    a = beta / (alpha + beta)
    b = alpha / (alpha + beta)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # degenerate bootstrap draws give NaN
        G = np.power(alpha * A / (beta * B), 1.0 / (alpha + beta))
    c6 = np.asarray(C, dtype=float) / FLOPS_PER_PARAM_TOKEN
    return {"a": a, "b": b, "N_opt": G * np.power(c6, a), "D_opt": np.power(c6, b) / G}


# --- Approach 2 of Hoffmann et al. 2022 (Sec. 3.2): IsoFLOP profiles ----------------------------

def group_budgets(C, tolerance: float = 0.15) -> list[np.ndarray]:
    """Indices of runs grouped into compute budgets: sorted by C, a run joins the current group
    while C <= (1 + tolerance) x the group's smallest C. A grid of N x D has diagonals of nearly
    equal C, not exactly equal C, hence a tolerance."""
    C = np.asarray(C, dtype=float)
    order = np.argsort(C, kind="stable")
    groups: list[list[int]] = []
    for i in order:
        if groups and C[i] <= (1.0 + tolerance) * C[groups[-1][0]]:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return [np.array(g) for g in groups]


def isoflop_minimum(N, L, *, weights=None) -> float:
    """N at the vertex of the parabola L = p0 + p1 log N + p2 (log N)^2 fitted by (weighted) least
    squares to one budget's runs (Hoffmann et al. 2022, Sec. 3.2); NaN when the parabola opens down."""
    x = np.log(np.asarray(N, dtype=float))
    p2, p1, _ = np.polyfit(x, np.asarray(L, dtype=float), 2, w=None if weights is None else np.sqrt(weights))
    return float(np.exp(-p1 / (2.0 * p2))) if p2 > 0 else float("nan")


def power_law_exponent(C, N_opt) -> tuple[float, float]:
    """(a, k) of N_opt = k C^a by least squares in log-log (Hoffmann et al. 2022, Sec. 3.2, Table 2)."""
    a, log_k = np.polyfit(np.log(np.asarray(C, dtype=float)), np.log(np.asarray(N_opt, dtype=float)), 1)
    return float(a), float(np.exp(log_k))


@dataclass(frozen=True)
class Law:
    """A law as the fitting engine sees it: its public parameters and which inputs it reads."""
    name: str
    params: tuple[str, ...]
    inputs: tuple[str, ...]   # the law's arguments, from ('N', 'D', 'C', 'L')
    space: str                # 'log': Huber on log residuals (losses); 'metric': least squares on the metric
    formula: str
    citation: str
    fn: Callable
    min_distinct: dict[str, int]  # distinct values each input needs for the parameters to be identified
    # Where the law means what its paper says. A law with `bounded` False is fitted unconstrained (as in
    # Hoffmann et al. 2022; `outside` says which fitted parameters left this range); one with `bounded`
    # True is fitted inside them (objectives: a logistic/exp reparameterisation), its `levels` (parameters in
    # the target's own units) also inside the target metric's range (benchmark.evaluation.metrics.METRICS).
    bounds: dict[str, tuple[float, float]]
    bounded: bool = False
    levels: tuple[str, ...] = ()

    def predict(self, params: dict[str, float], **inputs):
        """Evaluate with params as a dict, e.g. LAWS['chinchilla'].predict(p, N=N, D=D)."""
        return self.fn(*(inputs[k] for k in self.inputs), **params)

    def outside(self, params: dict[str, float]) -> list[str]:
        """Names of the parameters outside `bounds` (empty when every one is inside)."""
        return [k for k in self.params if not self.bounds[k][0] <= params[k] <= self.bounds[k][1]]

    def fit_bounds(self, y_range: tuple[float, float] | None = None) -> dict[str, tuple[float, float]]:
        """`bounds` with each of `levels` narrowed to the target's range y_range (e.g. (0, 100) for BLEU)."""
        if y_range is None:
            return dict(self.bounds)
        return {k: (max(lo, y_range[0]), min(hi, y_range[1])) if k in self.levels else (lo, hi)
                for k, (lo, hi) in self.bounds.items()}


POS, ANY = (0.0, math.inf), (-math.inf, math.inf)


LAWS: dict[str, Law] = {
    "chinchilla": Law("chinchilla", ("E", "A", "B", "alpha", "beta"), ("N", "D"), "log",
                      "L = E + A/N^alpha + B/D^beta", "Hoffmann et al. 2022, eq. 2 (Approach 3)", chinchilla, {"N": 3, "D": 3},
                      {"E": POS, "A": POS, "B": POS, "alpha": POS, "beta": POS}),
    "kaplan_n": Law("kaplan_n", ("N_c", "alpha_N"), ("N",), "log",
                    "L = (N_c/N)^alpha_N", "Kaplan et al. 2020, eq. 1.1", kaplan_n, {"N": 2}, {"N_c": POS, "alpha_N": POS}),
    "kaplan_d": Law("kaplan_d", ("D_c", "alpha_D"), ("D",), "log",
                    "L = (D_c/D)^alpha_D", "Kaplan et al. 2020, eq. 1.2", kaplan_d, {"D": 2}, {"D_c": POS, "alpha_D": POS}),
    "kaplan_nd": Law("kaplan_nd", ("N_c", "D_c", "alpha_N", "alpha_D"), ("N", "D"), "log",
                     "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D", "Kaplan et al. 2020, eq. 1.5", kaplan_nd, {"N": 3, "D": 3},
                     {"N_c": POS, "D_c": POS, "alpha_N": POS, "alpha_D": POS}),
    "seed_law": Law("seed_law", ("a", "b", "c", "gamma", "delta", "epsilon"), ("N", "D"), "metric",
                    "P = a N^(1-gamma) + b D^delta + c C^epsilon, C = 6ND", "project hypothesis (seed brief)", seed_law, {"N": 3, "D": 3},
                    {k: ANY for k in ("a", "b", "c", "gamma", "delta", "epsilon")}),
    "sigmoid_compute": Law("sigmoid_compute", ("lo", "hi", "k", "C_mid"), ("C",), "metric",
                           "P = lo + (hi-lo)/(1 + (C_mid/C)^k)", "Owen 2024", sigmoid_compute, {"C": 4},
                           {"lo": ANY, "hi": ANY, "k": POS, "C_mid": POS}, bounded=True, levels=("lo", "hi")),
    "sigmoid_loss": Law("sigmoid_loss", ("lo", "hi", "k", "L_mid"), ("L",), "metric",
                        "P = lo + (hi-lo)/(1 + exp(k (L - L_mid)))",
                        "Dubey et al. 2024 (Llama 3), Sec. 3.2.1; Bhagia et al. 2024 (OLMo ladder)", sigmoid_loss, {"L": 4},
                        {"lo": ANY, "hi": ANY, "k": POS, "L_mid": ANY}, bounded=True, levels=("lo", "hi")),
}
