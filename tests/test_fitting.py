"""The engine: analytic gradients, the batched L-BFGS, recovery of every law from synthetic data, errors."""
import numpy as np
import pytest

from benchmark.scaling import engine as fitting, laws, lbfgs, objectives
from benchmark.scaling.engine import FitError, FitSettings, Points
from benchmark.scaling.isoflop import fit_approach2

QUICK = FitSettings(bootstrap=200, seed=0)


def grid(n_lo, n_hi, d_lo, d_hi, k=6):
    N, D = np.meshgrid(np.logspace(n_lo, n_hi, k), np.logspace(d_lo, d_hi, k))
    return N.ravel(), D.ravel()


# --- gradients -----------------------------------------------------------------------------------

def _models(rng):
    N, D = grid(6, 9, 8, 10, 4)
    C = 6 * N * D
    L = rng.uniform(2, 5, N.size)
    return {"chinchilla": objectives.Chinchilla(N, D), "kaplan_n": objectives.KaplanSingle(N, "N"),
            "kaplan_d": objectives.KaplanSingle(D, "D"), "kaplan_nd": objectives.KaplanND(N, D),
            "seed_law": objectives.SeedLaw(N, D), "sigmoid_compute": objectives.Sigmoid(C, "C"),
            "sigmoid_loss": objectives.Sigmoid(L, "L")}, N.size


@pytest.mark.parametrize("law", ["chinchilla", "kaplan_n", "kaplan_d", "kaplan_nd", "seed_law", "sigmoid_compute", "sigmoid_loss"])
@pytest.mark.parametrize("delta,weighted", [(1e-3, False), (np.inf, True)])
def test_gradient_matches_finite_differences(law, delta, weighted):
    rng = np.random.default_rng(1)
    model, n = _models(rng)[0][law], _models(rng)[1]
    y = rng.normal(1.0, 0.3, n)
    st = model.starts(y)
    th = st[np.arange(6) % len(st)] + rng.normal(0, 0.05, (6, len(model.names)))
    W = rng.integers(0, 3, (6, n)).astype(float) if weighted else None
    obj = objectives.Objective(model, y, delta=delta, scale=0.7, weights=W, rows=np.arange(6), threads=1)
    f, g = obj(th, np.arange(6))
    for j in range(th.shape[1]):
        h = 1e-6 * np.maximum(1.0, np.abs(th[:, j]))
        up, dn = th.copy(), th.copy()
        up[:, j] += h
        dn[:, j] -= h
        fd = (obj(up, np.arange(6))[0] - obj(dn, np.arange(6))[0]) / (2 * h)
        np.testing.assert_allclose(g[:, j], fd, rtol=1e-4, atol=1e-9 * (1 + np.abs(f)).max())


def test_float32_objective_agrees_with_float64():
    rng = np.random.default_rng(2)
    model = _models(rng)[0]["chinchilla"]
    y = np.log(rng.uniform(2, 4, 16))
    th = model.starts(y)[::97]
    f64, g64 = objectives.Objective(model, y, delta=1e-3)(th, np.arange(len(th)))
    f32, g32 = objectives.Objective(model, y, delta=1e-3, dtype=np.float32)(th, np.arange(len(th)))
    np.testing.assert_allclose(f32, f64, rtol=1e-4)
    # A term far below float32's range (exponent floored, no subnormals) still gives E + B/D^beta.
    far = np.array([[-200.0, 0.5, 0.7, 0.3, 0.3], [-95.0, 0.5, 0.7, -4.0, 0.3]])
    f64, _ = objectives.Objective(model, y, delta=1e-3)(far, np.arange(2))
    f32, g32 = objectives.Objective(model, y, delta=1e-3, dtype=np.float32)(far, np.arange(2))
    np.testing.assert_allclose(f32, f64, rtol=1e-4)
    assert np.isfinite(g32).all()


# --- the optimiser -------------------------------------------------------------------------------

def test_batched_lbfgs_minimises_rosenbrock_from_many_starts():
    def rosen(x, idx):
        a, b = x[:, 0], x[:, 1]
        f = (1 - a) ** 2 + 100 * (b - a * a) ** 2
        g = np.column_stack([-2 * (1 - a) - 400 * a * (b - a * a), 200 * (b - a * a)])
        return f, g
    x0 = np.random.default_rng(0).uniform(-2, 2, (64, 2))
    res = lbfgs.minimize(rosen, x0, ftol=1e-15, gtol=1e-10)
    assert res.converged.all()
    np.testing.assert_allclose(res.x, 1.0, atol=1e-5)
    assert res.n_iter.max() < 200


# --- recovery of every law -----------------------------------------------------------------------

def rel(a, b):
    return abs(a / b - 1)


def test_recovers_chinchilla():
    rng = np.random.default_rng(0)
    N, D = grid(7, 9, 8, 10.5)
    true = dict(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
    pts = Points(y=laws.chinchilla(N, D, **true) * np.exp(rng.normal(0, 0.003, N.size)), N=N, D=D)
    r = fitting.fit("chinchilla", pts, QUICK)
    assert rel(r.params["E"], 1.8) < 0.03 and rel(r.params["alpha"], 0.34) < 0.05 and rel(r.params["beta"], 0.37) < 0.05
    assert rel(r.params["A"], 400) < 0.3 and rel(r.params["B"], 2000) < 0.3
    assert r.allocation["a"] == pytest.approx(0.37 / 0.71, abs=0.02)
    for k in ("E", "alpha", "beta"):  # bootstrap SEs of the right size: the truth within 4 SE
        assert 0 < r.se[k] and abs(r.params[k] - true[k]) < 4 * r.se[k], k
    assert r.extrapolation["n_heldout"] == 8 and r.extrapolation["rel_err"] < 0.01


def test_recovers_kaplan_single_variable_laws():
    rng = np.random.default_rng(1)
    N = np.logspace(5, 9, 12)
    r = fitting.fit("kaplan_n", Points(y=laws.kaplan_n(N, N_c=8.8e13, alpha_N=0.076) * np.exp(rng.normal(0, 0.002, 12)),
                                       N=N, D=np.full(12, 1e10)), QUICK)
    assert rel(r.params["alpha_N"], 0.076) < 0.03 and rel(np.log(r.params["N_c"]), np.log(8.8e13)) < 0.01
    D = np.logspace(6, 10, 12)
    r = fitting.fit("kaplan_d", Points(y=laws.kaplan_d(D, D_c=5.4e13, alpha_D=0.095) * np.exp(rng.normal(0, 0.002, 12)),
                                       N=np.full(12, 1e9), D=D), QUICK)
    assert rel(r.params["alpha_D"], 0.095) < 0.03 and rel(np.log(r.params["D_c"]), np.log(5.4e13)) < 0.01


def test_recovers_kaplan_joint_law():
    rng = np.random.default_rng(2)
    N, D = grid(6, 9, 8, 11)
    true = dict(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103)
    r = fitting.fit("kaplan_nd", Points(y=laws.kaplan_nd(N, D, **true) * np.exp(rng.normal(0, 0.002, N.size)), N=N, D=D), QUICK)
    assert rel(r.params["alpha_N"], 0.076) < 0.03 and rel(r.params["alpha_D"], 0.103) < 0.03
    assert rel(np.log(r.params["N_c"]), np.log(6.4e13)) < 0.01 and rel(np.log(r.params["D_c"]), np.log(1.8e13)) < 0.01


def test_recovers_seed_law():
    rng = np.random.default_rng(3)
    N, D = grid(5, 8, 6, 9, 7)
    true = dict(a=0.5, b=0.2, c=1e-3, gamma=0.7, delta=0.25, epsilon=0.3)
    y = laws.seed_law(N, D, **true)
    r = fitting.fit("seed_law", Points(y=y + rng.normal(0, 0.01 * y.std(), y.size), N=N, D=D), QUICK)
    for k in ("gamma", "delta", "epsilon"):
        assert abs(r.params[k] - true[k]) < 0.02, k
    for k in ("a", "b", "c"):
        assert rel(r.params[k], true[k]) < 0.25, k


def test_recovers_sigmoid_of_compute_and_of_loss():
    rng = np.random.default_rng(4)
    C = np.logspace(14, 20, 25)
    N = np.sqrt(C / 120)
    true = dict(lo=5.0, hi=80.0, k=1.2, C_mid=1e17)
    r = fitting.fit("sigmoid_compute", Points(y=laws.sigmoid_compute(C, **true) + rng.normal(0, 0.5, 25), N=N, D=C / (6 * N)), QUICK)
    assert abs(r.params["lo"] - 5) < 1.0 and abs(r.params["hi"] - 80) < 1.0
    assert rel(r.params["k"], 1.2) < 0.05 and abs(np.log(r.params["C_mid"] / 1e17)) < 0.05
    L = np.linspace(2, 6, 25)
    true = dict(lo=2.0, hi=90.0, k=2.0, L_mid=4.0)
    r = fitting.fit("sigmoid_loss", Points(y=laws.sigmoid_loss(L, **true) + rng.normal(0, 0.5, 25), L=L,
                                           C=np.logspace(20, 15, 25)), QUICK)
    assert abs(r.params["lo"] - 2) < 1.0 and abs(r.params["hi"] - 90) < 1.0
    assert rel(r.params["k"], 2.0) < 0.05 and abs(r.params["L_mid"] - 4.0) < 0.02


def test_recovers_two_step():
    rng = np.random.default_rng(5)
    N, D = grid(6, 8, 7, 9, 5)
    loss = laws.chinchilla(N, D, E=1.5, A=300.0, B=900.0, alpha=0.35, beta=0.33)
    metric = laws.sigmoid_loss(loss, lo=1.0, hi=60.0, k=2.0, L_mid=4.5) + rng.normal(0, 0.2, N.size)  # loss 3..8
    r = fitting.fit_two_step(Points(y=metric, N=N, D=D, L=loss * np.exp(rng.normal(0, 0.002, N.size))), QUICK)
    assert r.law == "two_step"
    assert rel(r.params["alpha"], 0.35) < 0.1 and abs(r.params["L_mid"] - 4.5) < 0.05 and rel(r.params["k"], 2.0) < 0.1
    assert r.extrapolation["abs_err"] < 1.0  # held-out metric predicted from N and D alone
    # both steps refitted on the same resamples of the runs below the cutoff give the prediction's interval
    b = fitting.fit_two_step(Points(y=metric, N=N, D=D, L=loss * np.exp(rng.normal(0, 0.002, N.size))),
                             FitSettings(bootstrap=100, seed=0), y_range=(0.0, 100.0))
    e = b.extrapolation
    assert e["identified"] is True and 50 < e["n_draws"] <= 100 and len(e["predicted_ci95"]) == e["n_heldout_points"]
    true = laws.sigmoid_loss(laws.chinchilla(N, D, E=1.5, A=300.0, B=900.0, alpha=0.35, beta=0.33), lo=1.0, hi=60.0, k=2.0,
                             L_mid=4.5)
    held = 6 * N * D >= e["cutoff_flops"]
    assert all(lo < p < hi for (lo, hi), p in zip(e["predicted_ci95"], e["predicted"]))
    assert np.mean([lo - 0.5 <= t <= hi + 0.5 for (lo, hi), t in zip(e["predicted_ci95"], true[held])]) >= 0.8


def test_recovers_approach2_exponent():
    # IsoFLOP slices of a known Chinchilla surface: N_opt ∝ C^a with a = beta / (alpha + beta)
    p = dict(E=1.8, A=400.0, B=2000.0, alpha=0.34, beta=0.37)
    N, C = [], []
    for c in (1e18, 1e19, 1e20, 1e21):
        n_opt = laws.chinchilla_allocation(c, **{k: p[k] for k in ("A", "B", "alpha", "beta")})["N_opt"]
        n = n_opt * np.exp(np.linspace(-0.4, 0.4, 7))
        N += list(n)
        C += list(c * np.exp(np.random.default_rng(6).uniform(-0.05, 0.05, 7)))  # diagonals: nearly equal C
    N, C = np.array(N), np.array(C)
    r = fit_approach2(Points(y=laws.chinchilla(N, C / (6 * N), **p), N=N, C=C), QUICK, tolerance=0.15)
    assert r.params["a"] == pytest.approx(0.37 / 0.71, abs=0.01)
    assert len(r.method["budgets"]) == 4 and r.extrapolation["rel_err"] < 0.05
    assert 0 < r.se["a"] < 0.1 and r.ci95["a"][0] < 0.37 / 0.71 < r.ci95["a"][1]
    with pytest.raises(FitError, match="budgets"):
        fit_approach2(Points(y=laws.chinchilla(N, C / (6 * N), **p), N=N, C=C), QUICK, tolerance=0.0)


def _parabola_budgets(seed: int):
    """Budgets whose loss is a parabola in log N around N_opt = 1e-3 C^0.5 (the form Approach 2 fits, so its vertex
    is unbiased), 6 sizes x 2 runs each, 0.2 % noise; the last budget samples only N far below its optimum."""
    rng = np.random.default_rng(seed)
    N, D, y, truth = [], [], [], []
    for c, shift in ((1e18, 0.1), (1e19, -0.2), (1e20, 0.0), (1e21, -2.5)):
        n_opt = 1e-3 * c ** 0.5
        n = np.repeat(n_opt * np.exp(shift + np.linspace(-1.0, 1.0, 6)), 2)
        N += list(n)
        D += list(c / (6 * n))
        y += list((3.0 - 0.1 * np.log10(c) + 0.05 * (np.log(n) - np.log(n_opt)) ** 2) * np.exp(rng.normal(0, 0.002, n.size)))
        truth.append(n_opt)
    return Points(y=np.array(y), N=np.array(N), D=np.array(D)), truth


def test_approach2_gives_each_budget_its_minimum_and_an_interval_that_holds_the_truth():
    """Per IsoFLOP budget: whether the parabola's minimum lies inside the sampled N, and N_opt's 95 % bootstrap
    interval. A budget sampled only below its optimum is reported as having no minimum inside. Over 15 synthetic
    grids (45 intervals) the intervals hold the true N_opt 41 times (91 %); the test asks for 80 %, as a percentile
    bootstrap over 12 runs per budget may cover less than its nominal 95 %."""
    held, total = 0, 0
    for seed in range(15):
        pts, truth = _parabola_budgets(seed)
        r = fit_approach2(pts, FitSettings(bootstrap=300, seed=0), tolerance=0.15)
        budgets = r.method["budgets"]
        assert [b["interior"] for b in budgets] == [True, True, True, False]
        assert budgets[3]["N_opt"] is None and budgets[3]["interior_share"] < 0.05
        for b, n_opt in zip(budgets[:3], truth):
            assert b["n_sizes"] == 6 and b["n_runs"] == 12 and b["interior_share"] > 0.9
            assert b["N_opt_ci95"][0] <= b["N_opt"] <= b["N_opt_ci95"][1] and abs(b["N_opt"] / n_opt - 1) < 0.05
            assert b["tokens_per_param"][0] < b["tokens_per_param"][1]
            held += b["N_opt_ci95"][0] < n_opt < b["N_opt_ci95"][1]
            total += 1
        assert r.params["a"] == pytest.approx(0.5, abs=0.05)  # N_opt = 1e-3 C^0.5 over the three budgets inside
    assert held / total >= 0.8, f"{held} of {total}"


# --- bootstrap and held-out bookkeeping -----------------------------------------------------------

def test_small_grid_drops_degenerate_resamples():
    rng = np.random.default_rng(7)
    N, D = [a.ravel() for a in np.meshgrid([1e5, 2.2e5, 4.6e5, 1e6], [5e5, 1e6, 2e6])]
    pts = Points(y=laws.chinchilla(N, D, E=2.0, A=50.0, B=300.0, alpha=0.3, beta=0.35) * np.exp(rng.normal(0, 0.005, 12)),
                 N=N, D=D)
    point = fitting.fit_point("chinchilla", pts, QUICK)
    samples, used, degenerate = fitting.bootstrap("chinchilla", pts, point, FitSettings(bootstrap=2000))
    assert degenerate > 0 and used <= 2000 - degenerate and used > 1500
    assert all(np.isfinite(v).all() and v.size == used for v in samples.values())


def test_holdout_split_takes_the_largest_compute():
    C = np.array([5.0, 1.0, 4.0, 3.0, 2.0, 5.0, 0.5, 0.7, 0.8, 0.9])
    held, cutoff = fitting.holdout_split(C, 0.2)
    assert cutoff == 5.0 and held.tolist() == [True] + [False] * 4 + [True] + [False] * 4
    held, cutoff = fitting.holdout_split(C, 0.3)  # 3 runs: 5, 5 and 4
    assert cutoff == 4.0 and held.sum() == 3


# --- errors ------------------------------------------------------------------------------------------

def test_errors_are_one_line_and_name_rows():
    N, D = grid(6, 8, 8, 10, 3)
    y = laws.chinchilla(N, D, E=2.0, A=100.0, B=100.0, alpha=0.3, beta=0.3)
    ids = tuple(f"run-{i}" for i in range(9))
    with pytest.raises(FitError, match="5 parameters but only 4 points"):
        fitting.fit_point("chinchilla", Points(y=y[:4], N=N[:4], D=D[:4]))
    with pytest.raises(FitError, match=r"variation in D: at least 3 distinct values \(seed replicates, a few tokens "
                                       r"apart, count once\), but the 9 points have 1"):
        fitting.fit_point("chinchilla", Points(y=y, N=N, D=np.full(9, 1e9)))
    with pytest.raises(FitError, match="vary independently"):
        fitting.fit_point("chinchilla", Points(y=y, N=N, D=20 * N))  # fixed tokens per parameter
    bad = y.copy()
    bad[4] = np.nan
    with pytest.raises(FitError, match="NaN or infinite at run-4") as e:
        fitting.fit_point("chinchilla", Points(y=bad, N=N, D=D, ids=ids))
    assert "\n" not in str(e.value)
    with pytest.raises(FitError, match="N must be positive; it is not at run-2"):
        fitting.fit_point("chinchilla", Points(y=y, N=np.where(np.arange(9) == 2, 0.0, N), D=D, ids=ids))
    with pytest.raises(FitError, match="D has 8 values but y has 9"):
        Points(y=y, N=N, D=D[:8])
    with pytest.raises(FitError, match="unknown law"):
        fitting.fit_point("gpt_law", Points(y=y, N=N, D=D))
    with pytest.raises(FitError, match="needs L"):
        fitting.fit_point("sigmoid_loss", Points(y=y, N=N, D=D))
    with pytest.raises(FitError, match="constant"):
        fitting.fit_point("seed_law", Points(y=np.zeros(9), N=N, D=D))
    assert issubclass(FitError, ValueError)


def test_metric_laws_accept_zero_but_loss_laws_do_not():
    N, D = grid(6, 8, 8, 10, 3)
    y = np.linspace(0.0, 30.0, 9)
    fitting.check("sigmoid_compute", Points(y=y, N=N, D=D))
    with pytest.raises(FitError, match="y must be positive"):
        fitting.check("kaplan_nd", Points(y=y, N=N, D=D))


@pytest.mark.parametrize("of", ["C", "L"])
def test_bounded_sigmoid_gradient_and_public_round_trip(of):
    """The bounded parameterisation (lo, hi inside [0, 100], k > 0): analytic gradient = finite differences, and
    from_public inverts to_public."""
    rng = np.random.default_rng(4)
    x = np.geomspace(1e10, 1e13, 9) if of == "C" else rng.uniform(2, 5, 9)
    model = objectives.Sigmoid(x, of, y_range=(0.0, 100.0))
    y = rng.uniform(5, 60, 9)
    th = model.starts(y)[::7][:6] + rng.normal(0, 0.05, (6, 4))
    obj = objectives.Objective(model, y, delta=np.inf, scale=3.0, threads=1)
    f, g = obj(th, np.arange(6))
    for j in range(4):
        h = 1e-6 * np.maximum(1.0, np.abs(th[:, j]))
        up, dn = th.copy(), th.copy()
        up[:, j] += h
        dn[:, j] -= h
        np.testing.assert_allclose(g[:, j], (obj(up, np.arange(6))[0] - obj(dn, np.arange(6))[0]) / (2 * h), rtol=1e-4, atol=1e-8)
    pub = {k: float(v[0]) for k, v in model.to_public(th[0]).items()}
    assert 0.0 <= pub["lo"] <= pub["hi"] <= 100.0 and pub["k"] > 0
    np.testing.assert_allclose(model.from_public(pub), th[0], rtol=1e-6, atol=1e-8)
