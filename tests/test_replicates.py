"""Seed replicates as one grid point with spread, held-out errors against the noise, bounded and identified fits, phases."""
import json
import math

import numpy as np
import pytest
import yaml

from benchmark.config import params as params_mod
from benchmark.results import db
from benchmark.results.points import f_sf, point_stats, points_rows
from benchmark.scaling import crossfit, laws, quality
from benchmark.scaling.engine import FitSettings, Points, extrapolation_error, fit, fit_point, lack_of_fit
from benchmark.stages import collect
from synthetic_runs import make_grid, write_run

TRUE = {"E": 1.5, "A": 300.0, "B": 200.0, "alpha": 0.4, "beta": 0.3}  # synthetic_runs' law (E + A/N^alpha + B/D^beta)


# --- (a) collect: replicates are kept as runs and derived into one point with spread -------------------------

def test_collect_keeps_every_replicate_and_derives_points(tmp_path):
    ids = ["a-3k", "b-3k", "c-3k", "a-6k", "b-6k", "c-6k"]
    make_grid(tmp_path, ids=ids, tasks=("translation",))
    offsets = {"a-6k-s1": 0.02, "a-6k-s2": -0.05}  # two more seeds of a-6k, with known val_loss offsets
    for rid, off in offsets.items():
        write_run(tmp_path / "runs", rid, tasks=("translation",), shift=off)
    raw = yaml.safe_load((tmp_path / "params.yaml").read_text())
    raw["runs"].update({rid: {"size": "a", "tokens": 6000, "seed": i + 1} for i, rid in enumerate(offsets)})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    p = params_mod.load(str(tmp_path / "params.yaml"))
    counts = collect.collect(p, tmp_path / "runs", tmp_path / "lb" / "results.duckdb", tmp_path / "lb")
    assert counts["runs"] == 8  # every replicate is a run of its own
    con = db.connect(str(tmp_path / "lb" / "results.duckdb"), read_only=True)
    rows = db.read_rows(con, "points", "metric = 'val_loss' AND task = 'all'")
    runs = {r["run_id"]: r for r in db.read_rows(con, "runs")}
    loss = {r["run_id"]: r["value"] for r in db.read_rows(con, "metrics", "metric = 'val_loss' AND task = 'all'")}
    con.close()
    assert len(rows) == 6
    a6 = next(r for r in rows if r["model_size"] == "a" and r["tokens"] == 6000)
    vals = [loss[i] for i in ("a-6k", "a-6k-s1", "a-6k-s2")]
    assert a6["n_seeds"] == 3 and a6["run_ids"] == "a-6k,a-6k-s1,a-6k-s2"
    assert a6["mean"] == pytest.approx(np.mean(vals)) and a6["std"] == pytest.approx(np.std(vals, ddof=1))
    assert a6["std"] == pytest.approx(np.std([0.0, 0.02, -0.05], ddof=1))  # the offsets' spread, exactly
    assert a6["rel_std"] == pytest.approx(a6["std"] / a6["mean"]) and (a6["min"], a6["max"]) == (min(vals), max(vals))
    assert a6["flops"] == runs["a-6k"]["flops"]
    single = [r for r in rows if r is not a6]
    assert all(r["n_seeds"] == 1 and r["std"] is None and r["rel_std"] is None for r in single)
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "lb" / "data" / "points.parquet").num_rows == len(points_rows(list(runs.values()), [
        {"source": "local", "run_id": k, "metric": m, "task": t, "value": 1.0}
        for k in runs for m, t in (("val_loss", "all"), ("val_loss", "translation"), ("bleu", "translation"))]))


def test_points_leave_out_runs_that_did_not_complete():
    runs = [{"source": "local", "run_id": f"x-{i}", "model_size": "x", "n_params": 10, "tokens": 20, "flops": 1200.0,
             "status": "completed" if i < 2 else "diverged"} for i in range(3)]
    metrics = [{"source": "local", "run_id": f"x-{i}", "metric": "val_loss", "task": "all", "value": v}
               for i, v in enumerate((2.0, 2.2, 99.0))]
    (row,) = points_rows(runs, metrics)
    assert row["n_seeds"] == 2 and row["mean"] == pytest.approx(2.1) and row["max"] == 2.2 and row["run_ids"] == "x-0,x-1"
    assert point_stats([3.0]) == {"n_seeds": 1, "mean": 3.0, "std": None, "rel_std": None, "rel_std_low": None,
                                  "rel_std_high": None, "min": 3.0, "max": 3.0}


def test_the_seed_spread_interval_covers_the_true_spread_at_its_level():
    """point_stats' rel_std interval (chi-square, std_interval): over many simulated grid points of 3 and of 5 normal
    seeds, about 95 % of intervals hold the true relative std; more seeds give a narrower one."""
    from benchmark.results.points import STD_LEVEL, std_interval

    rng = np.random.default_rng(7)
    true_rel, mean = 0.012, 1.3
    for n in (3, 5):
        hits = 0
        for _ in range(4000):
            s = point_stats(rng.normal(mean, true_rel * mean, n))
            assert s["rel_std_low"] < s["rel_std"] < s["rel_std_high"]
            hits += s["rel_std_low"] <= true_rel * mean / abs(s["mean"]) <= s["rel_std_high"]
        assert abs(hits / 4000 - STD_LEVEL) < 0.015, (n, hits)
    widths = [np.subtract(*std_interval(1.0, n)[::-1]) for n in (3, 5, 10, 30)]
    assert widths == sorted(widths, reverse=True)
    with pytest.raises(ValueError, match="at least 2"):
        std_interval(0.1, 1)


def test_pooled_spread_covers_the_true_spread_and_tests_whether_points_share_it():
    """pooled_spread over grid points with a known spread: the pooled interval holds the truth about 95 % of the time
    and is narrower than one point's; Bartlett's test rejects one shared spread about 5 % of the time when the points
    share it and mostly when one point's spread is 5x the others' (5 seeds a point leave it little power); its statistic equals scipy.stats.bartlett's
    (13.962, p = 9.293e-4, computed once with scipy 1.17.1 on these three samples)."""
    from benchmark.results.points import pooled_spread, std_interval

    rng = np.random.default_rng(11)
    true_rel, sims, covered, rejected, rejected_odd = 0.009, 1000, 0, 0, 0
    for _ in range(sims):
        same = [point_stats(rng.normal(1.5, true_rel * 1.5, 5)) for _ in range(19)]
        pool = pooled_spread([(s["n_seeds"], s["rel_std"]) for s in same])
        covered += pool["rel_std_low"] <= true_rel <= pool["rel_std_high"]
        rejected += pool["homogeneity_p"] < 0.05
        odd = same[:-1] + [point_stats(rng.normal(1.5, 5 * true_rel * 1.5, 5))]
        rejected_odd += pooled_spread([(s["n_seeds"], s["rel_std"]) for s in odd])["homogeneity_p"] < 0.05
    assert abs(covered / sims - 0.95) < 0.025 and abs(rejected / sims - 0.05) < 0.025 and rejected_odd / sims > 0.8
    assert pool["df"] == 76 and pool["n_points"] == 19
    assert np.subtract(*std_interval(1.0, 77)[::-1]) < np.subtract(*std_interval(1.0, 5)[::-1]) / 3
    samples = [np.array([1.0, 1.02, 0.99]), np.array([2.0, 2.1, 1.9, 2.05, 1.98]),
               np.array([1.5, 1.49, 1.51, 1.5, 1.52, 1.48, 1.5, 1.505, 1.495, 1.5])]
    pool = pooled_spread([(x.size, point_stats(x)["rel_std"]) for x in samples] + [(1, None)])
    assert pool["n_points"] == 3 and pool["df"] == 15 and pool["homogeneity_p"] == pytest.approx(9.292967769e-4, rel=1e-6)
    rels = [point_stats(x)["rel_std"] for x in samples]
    assert pool["rel_std"] == pytest.approx(np.sqrt((2 * rels[0] ** 2 + 4 * rels[1] ** 2 + 9 * rels[2] ** 2) / 15))
    assert pooled_spread([(5, 0.01)])["homogeneity_p"] is None and pooled_spread([])["rel_std"] is None


def test_chi_square_quantiles_match_the_published_table():
    """points.chi2_quantile (no scipy at run time) against the NIST/SEMATECH e-Handbook's table of chi-square critical
    values (1.3.6.7.4), to its 3 decimals: the lower and upper 2.5 % points at 1, 2, 4, 9 and 30 degrees of freedom."""
    from benchmark.results.points import chi2_cdf, chi2_quantile

    table = {1: (0.001, 5.024), 2: (0.051, 7.378), 4: (0.484, 11.143), 9: (2.700, 19.023), 30: (16.791, 46.979)}
    for k, (lower, upper) in table.items():
        assert round(chi2_quantile(0.025, k), 3) == lower and round(chi2_quantile(0.975, k), 3) == upper, k
        assert chi2_cdf(chi2_quantile(0.3, k), k) == pytest.approx(0.3, abs=1e-12)
    assert chi2_cdf(0.0, 3) == 0.0 and chi2_cdf(1e4, 3) == 1.0


def test_a_database_from_before_a_new_column_gains_it(tmp_path):
    """A results.duckdb written before points gained its interval columns: connect adds them (null in the old rows)
    and a newer collect writes into it."""
    import duckdb

    from benchmark.results import schema

    path = tmp_path / "results.duckdb"
    old_cols = [c for c in schema.columns("points") if c.name not in ("rel_std_low", "rel_std_high")]
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE points (" + ", ".join(f"{c.name} {schema.DTYPES[c.dtype][0]}" for c in old_cols) + ")")
    con.execute("INSERT INTO points (source, model_size, n_params, tokens, metric, task, flops, n_seeds, mean, min, max, "
                "run_ids) VALUES ('old', 'xs', 10, 20, 'val_loss', 'all', 1200.0, 1, 2.0, 2.0, 2.0, 'xs-1')")
    con.close()
    con = db.connect(str(path))
    runs = [{"source": "local", "run_id": f"x-{i}", "model_size": "x", "n_params": 10, "tokens": 20, "flops": 1200.0,
             "status": "completed"} for i in range(3)]
    rows = points_rows(runs, [{"source": "local", "run_id": f"x-{i}", "metric": "val_loss", "task": "all", "value": v}
                              for i, v in enumerate((2.0, 2.2, 2.1))])
    db.replace_rows(con, "points", rows, source="local")
    got = {r["source"]: r for r in db.read_rows(con, "points")}
    con.close()
    assert got["old"]["rel_std_low"] is None and got["old"]["mean"] == 2.0
    assert got["local"]["rel_std_low"] == pytest.approx(rows[0]["rel_std_low"]) and got["local"]["rel_std_high"] > 0.05


def test_replicates_that_stop_a_few_tokens_apart_are_one_point():
    """A run stops at the first step past its budget, and each seed packs its batches differently: the default
    grid's xs-500k trained 500,099, 500,610 and 500,688 tokens. Those are one point; 2 % more tokens is another."""
    toks = {"xs-500k": 500_099, "xs-500k-s1": 500_610, "xs-500k-s2": 500_688, "xs-510k": 510_200, "l-500k": 500_099}
    runs = [{"source": "local", "run_id": rid, "model_size": rid.split("-")[0], "n_params": 10 if rid[0] == "x" else 40,
             "tokens": d, "flops": 6.0 * (10 if rid[0] == "x" else 40) * d, "status": "completed"} for rid, d in toks.items()]
    vals = {"xs-500k": 2.0, "xs-500k-s1": 2.2, "xs-500k-s2": 2.4, "xs-510k": 1.9, "l-500k": 1.5}
    metrics = [{"source": "local", "run_id": rid, "metric": "val_loss", "task": "all", "value": v} for rid, v in vals.items()]
    rows = points_rows(runs, metrics)
    assert [(r["model_size"], r["n_seeds"], r["run_ids"]) for r in rows] == [
        ("xs", 3, "xs-500k,xs-500k-s1,xs-500k-s2"), ("xs", 1, "xs-510k"), ("l", 1, "l-500k")]
    assert rows[0]["tokens"] == round((500_099 + 500_610 + 500_688) / 3) and rows[0]["mean"] == pytest.approx(2.2)
    N = np.array([r["n_params"] for r in runs], float)
    D = np.array([r["tokens"] for r in runs], float)
    assert sorted(map(list, quality.replicate_groups(N, D, 6 * N * D))) == [[0, 1, 2], [3], [4]]


def test_heldout_error_is_against_the_mean_of_the_replicates():
    obs = np.array([2.0, 2.2, 2.4, 3.0])            # a point with 3 seeds, one with 1
    pred = np.array([2.1, 2.1, 2.1, 3.3])
    e = extrapolation_error(pred, obs, 1e12, 10, [np.array([0, 1, 2]), np.array([3])])
    assert e["observed"] == pytest.approx([2.2, 3.0]) and e["n_heldout"] == 4 and e["n_heldout_points"] == 2
    assert e["rel_err"] == pytest.approx((0.1 / 2.2 + 0.3 / 3.0) / 2)   # not the mean over the 4 runs
    assert e["seed_std"] == pytest.approx(0.2) and e["seed_rel_std"] == pytest.approx(0.2 / 2.2) and e["n_replicated"] == 1
    assert e["within_2x_seed_spread"] is bool(e["rel_err"] <= 2 * 0.2 / 2.2)
    single = extrapolation_error(pred, obs, 1e12, 10)
    assert single["seed_std"] is None and single["within_2x_seed_spread"] is None


# --- (b) a known law plus known noise: the noise and held-out estimates match the truth ------------------------

SIGMA = 0.01  # relative seed noise
SEEDS = 4


@pytest.fixture(scope="module")
def noisy_grid():
    rng = np.random.default_rng(7)
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(3e4, 1e6, 5), np.geomspace(3e5, 1e7, 5)))
    N, D = np.repeat(N, SEEDS), np.repeat(D, SEEDS)
    truth = laws.chinchilla(N, D, **TRUE)
    y = truth * (1.0 + SIGMA * rng.standard_normal(N.size))
    ids = [f"p{i // SEEDS}-s{i % SEEDS}" for i in range(N.size)]
    pts = Points(y=y, N=N, D=D, ids=ids)
    return pts, truth, fit("chinchilla", pts, FitSettings(bootstrap=200, seed=0), target="val_loss/all")


def _chi2(q_z: float, dof: int) -> float:
    """Quantile of chi-square with dof degrees of freedom at standard-normal quantile q_z (Wilson and Hilferty 1931)."""
    return dof * (1 - 2 / (9 * dof) + q_z * math.sqrt(2 / (9 * dof))) ** 3


def test_seed_spread_estimate_covers_the_true_noise(noisy_grid):
    pts, _, res = noisy_grid
    groups = quality.replicate_groups(pts.N, pts.D, pts.C)
    assert len(groups) == 25 and all(len(g) == SEEDS for g in groups)
    rel_var = np.mean([point_stats(pts.y[g])["rel_std"] ** 2 for g in groups])  # pooled relative variance
    dof = len(groups) * (SEEDS - 1)
    lo, hi = dof * rel_var / _chi2(1.96, dof), dof * rel_var / _chi2(-1.96, dof)
    assert lo < SIGMA ** 2 < hi, (math.sqrt(lo), math.sqrt(hi))
    # The fit's record carries the held-out points' spread: 5 points x 4 seeds, each std within its own
    # chi-square interval (3 degrees of freedom: a factor ~0.3 to ~1.8 on sigma), their mean close to sigma.
    e = res.extrapolation
    assert e["n_heldout_points"] * SEEDS == e["n_heldout"] and e["n_replicated"] == e["n_heldout_points"]
    assert 0.5 * SIGMA < e["seed_rel_std"] < 1.5 * SIGMA


def test_heldout_error_and_parameters_are_consistent_with_the_truth(noisy_grid):
    pts, truth, res = noisy_grid
    assert res.identified, res.identification
    e = res.extrapolation
    held = pts.C >= e["cutoff_flops"]
    true_pred = [truth[held][(pts.N[held] == n) & (pts.D[held] == d)][0]
                 for n, d in dict.fromkeys(zip(pts.N[held], pts.D[held]))]
    true_err = np.mean(np.abs(np.array(true_pred) - e["observed"]) / e["observed"])
    # The true law misses the replicate means by the noise of a mean of 4 seeds (~ sigma / 2) ...
    assert true_err < 2 * SIGMA / math.sqrt(SEEDS) * 1.5
    # ... and so does the fitted law: within 3 % and within twice the measured seed spread, as the issue asks.
    assert e["rel_err"] < quality.LOSS_REL_TARGET and e["within_2x_seed_spread"] is True
    assert e["rel_err"] < true_err + 2 * SIGMA
    for name in ("E", "alpha", "beta"):
        lo, hi = res.ci95[name]
        assert lo <= TRUE[name] <= hi, (name, lo, hi)
    line = quality.verdict(res.to_json(), downstream=False)
    assert line.startswith("chinchilla on val_loss/all: held-out ") and line.endswith("meets both targets")
    # The held-out prediction's own interval (a bootstrap of the runs below the cutoff): identified, one interval per
    # held-out point, and it holds the true law at (nearly) every point; the verdict says how many observations it holds.
    assert e["identified"] is True and e["n_draws"] > 150 and len(e["predicted_ci95"]) == e["n_heldout_points"]
    assert all(lo < p < hi for (lo, hi), p in zip(e["predicted_ci95"], e["predicted"]))
    assert sum(lo <= t <= hi for (lo, hi), t in zip(e["predicted_ci95"], true_pred)) >= e["n_heldout_points"] - 1
    assert f"its 95 % interval holds {e['inside_ci95']} of {e['n_heldout_points']} observed points" in line
    assert len(e["point_ids"]) == e["n_heldout_points"] and all(i.endswith("-s0") for i in e["point_ids"])  # its first id in sort order


def test_holdout_takes_whole_budgets_so_no_point_is_split_across_the_cutoff():
    from benchmark.scaling.engine import holdout_split

    # two budgets of 1e12 and 2e12 FLOPs; the larger holds 3 seeds of one point a few tokens apart and one other point
    C = np.array([1.0e12, 1.02e12, 1.05e12, 2.0e12, 2.0003e12, 2.0001e12, 2.1e12, 1.01e12])
    held, cutoff = holdout_split(C, 0.25)  # 2 runs by C alone: the point's 3 seeds straddle the cutoff
    assert held.sum() == 2 and held[[3, 4, 5]].sum() == 1
    held, cutoff = holdout_split(C, 0.25, tolerance=0.15)
    assert held.tolist() == [False] * 3 + [True] * 4 + [False] and cutoff == 2.0e12
    held, _ = holdout_split(C, 0.6, tolerance=0.15)  # more than the top budget holds: the next budget joins whole
    assert held.all()


def test_a_prediction_is_identified_by_its_own_interval_not_by_every_parameter():
    ok, why = quality.identify_prediction([[1.30, 1.52], [1.41, 1.60]], 0, 400, positive=True)
    assert ok and why == ""
    assert quality.identify_prediction([[1.3, 1.5]], 30, 400, positive=True) == (
        False, "30 of 400 resampled held-out predictions are not finite")
    assert not quality.identify_prediction([[-3.0, 1.5]], 0, 400, positive=True)[0]
    assert not quality.identify_prediction([[1e-9, 1.5]], 0, 400, positive=True)[0]  # spans > 6 decades
    assert "leaves the target's range" in quality.identify_prediction([[50.0, 140.0]], 0, 400, (0.0, 100.0))[1]
    assert quality.identify_prediction(None, 0, 0)[1] == "no bootstrap interval of the held-out prediction"
    # the verdict: parameters not identified on every point, the prediction from below the cutoff identified ...
    base = {"law": "chinchilla", "target": "val_loss/all", "identified": False,
            "identification": "95 % interval of E [8.5e-09, 1.19] spans > 6 decades"}
    e = {"rel_err": 0.029, "abs_err": 0.04, "seed_rel_std": 0.0013, "seed_std": 0.002, "within_2x_seed_spread": False,
         "identified": True, "predicted_ci95": [[1.3, 1.5], [1.4, 1.6]], "inside_ci95": 2}
    assert quality.verdict({**base, "extrapolation": e}, False) == (
        "chinchilla on val_loss/all: not identified (95 % interval of E [8.5e-09, 1.19] spans > 6 decades); fitted below "
        "the cutoff, its prediction is identified: held-out 2.9 % (seed spread 0.13 %; its 95 % interval holds 2 of 2 "
        "observed points): fails: 2.9 % > 2 x seed spread 0.13 %")
    # ... or not, or never assessed (a fits.json from before): no numbers
    assert quality.verdict({**base, "extrapolation": {**e, "identified": False, "identification": "why"}}, False) == (
        "chinchilla on val_loss/all: not identified (95 % interval of E [8.5e-09, 1.19] spans > 6 decades)")
    assert quality.verdict({**base, "extrapolation": {k: v for k, v in e.items() if k != "identified"}}, False) == (
        "chinchilla on val_loss/all: not identified (95 % interval of E [8.5e-09, 1.19] spans > 6 decades)")
    assert quality.verdict({**base, "identified": True, "extrapolation": {**e, "identified": False, "identification": "why"}},
                           False) == "chinchilla on val_loss/all: held-out prediction not identified (why)"


def test_verdict_says_plainly_when_a_law_fails():
    base = {"law": "chinchilla", "target": "val_loss/all", "identified": True}
    e = {"rel_err": 0.179, "abs_err": 0.15, "seed_rel_std": 0.006, "seed_std": 0.005, "within_2x_seed_spread": False}
    assert quality.verdict({**base, "extrapolation": e}, False) == (
        "chinchilla on val_loss/all: held-out 17.9 % (seed spread 0.6 %): fails: 17.9 % > 3 %; 17.9 % > 2 x seed spread 0.6 %")
    down = {"law": "two_step", "target": "bleu/translation", "identified": True,
            "extrapolation": {"rel_err": 0.3, "abs_err": 7.0, "seed_std": 1.2}}
    assert quality.verdict(down, True).endswith("held-out 7.00 points (seed spread 1.20 points): fails: 7.00 > 5 points")
    assert quality.verdict({**base, "identified": False, "identification": "SE(a) = 2.7e+22"}, False) == (
        "chinchilla on val_loss/all: not identified (SE(a) = 2.7e+22)")


# --- (c) bounded sigmoids, identification -------------------------------------------------------------------

def test_bounded_sigmoid_keeps_its_ceiling_inside_the_metric_range():
    rng = np.random.default_rng(0)
    C = np.geomspace(1e11, 1e13, 12)  # the accelerating start of a curve: 1 to 60 points, no sign of saturation
    y = laws.sigmoid_compute(C, lo=0.0, hi=300.0, k=1.0, C_mid=4e13) + rng.normal(0, 0.5, C.size)
    pts = Points(y=y, C=C)
    free = fit("sigmoid_compute", pts, FitSettings(bootstrap=60, seed=0), target="bleu/translation")
    assert free.params["hi"] > 100 and free.params["lo"] < 0  # unbounded, lo and hi leave the metric's range ...
    res = fit("sigmoid_compute", pts, FitSettings(bootstrap=60, seed=0), target="bleu/translation", y_range=(0.0, 100.0))
    p = res.params
    assert 0.0 <= p["lo"] <= p["hi"] <= 100.0 and p["k"] > 0  # ... bounded, it never does
    assert all(0.0 <= d["lo"] <= d["hi"] <= 100.0 and d["k"] > 0 for d in res.draws) and len(res.draws) == 60
    assert all(0.0 <= v <= 100.0 for k in ("lo", "hi") for v in res.ci95[k])
    assert res.method["bounds"]["hi"] == [0.0, 100.0]
    assert all(0.0 <= v <= 100.0 for v in res.extrapolation["predicted"])


def test_unidentifiable_seed_law_is_flagged():
    rng = np.random.default_rng(0)
    N, D = (g.ravel() for g in np.meshgrid([1e5, 2e5, 4e5, 9e5], [2.5e5, 5e5, 1e6]))
    y = 60.0 + rng.normal(0, 3.5, N.size)  # accuracy with no trend in N or D: only noise of 200 test examples
    res = fit("seed_law", Points(y=y, N=N, D=D), FitSettings(bootstrap=100, seed=0), target="accuracy/classification",
              y_range=(0.0, 100.0))
    assert res.identified is False and res.identification
    out = res.to_json()
    assert out["identified"] is False and out["identification"] == res.identification
    assert "not identified (" in quality.verdict(out, True)


def test_identification_rules():
    ci = {"A": [12.0, 2.29e132], "alpha": [0.3, 0.4], "E": [0.0, 0.02], "lo": [1e-9, 3.0]}
    params = {"A": 406.0, "alpha": 0.35, "E": 1e-12, "lo": 0.5}
    se = {"A": 1e3, "alpha": 0.02, "E": 0.01, "lo": 1.0}
    bounds = {"A": (0, math.inf), "alpha": (0, math.inf), "E": (0, math.inf), "lo": (0, 100)}
    ok, bad, why = quality.identify(("A", "alpha", "E", "lo"), params, se, ci, bounds, levels=("lo",))
    assert not ok and bad == ["A"] and "spans > 6 decades" in why  # E at its bound and the level lo are not flagged
    ok, bad, why = quality.identify(("alpha",), params, {"alpha": 0.02}, {}, bounds)
    assert not ok and "no bootstrap interval" in why
    ok, bad, why = quality.identify(("a",), {"a": 3.0}, {"a": 2.7e22}, {"a": [-5.0, 9.0]}, {})
    assert not ok and why.startswith("SE(a)")
    ok, _, why = quality.identify(("alpha",), params, se, ci, bounds, predicted=[55.0, 2e9], y_range=(0.0, 100.0))
    assert not ok and "2e+09 outside" in why
    assert quality.identify(("alpha",), params, se, ci, bounds, predicted=[55.0], y_range=(0.0, 100.0))[0]
    assert quality.spans_decades(1.0, -1e7, 5.0) and not quality.spans_decades(1.0, -0.5, 2.0)


def test_phases_mark_the_inflection_and_where_the_gain_per_doubling_halves():
    from benchmark.scaling.engine import FitResult

    p = {"lo": 5.0, "hi": 80.0, "k": 1.3, "C_mid": 1e12}
    draws = [{**p, "k": k, "C_mid": c} for k, c in zip(np.linspace(1.1, 1.5, 20), np.geomspace(5e11, 2e12, 20))]
    res = crossfit.phases(FitResult("sigmoid_compute", "bleu/translation", p, {}, {}, None, 12, None, {}, draws))
    c = res.params["C_slowdown"]
    assert c == pytest.approx(1e12 * math.exp(math.log(3 + 2 * math.sqrt(2)) / 1.3))

    def gain(C, h=1e-4):  # d metric / d log2 C: the gain per doubling of compute, by central differences
        return (laws.sigmoid_compute(C * math.exp(h), **p) - laws.sigmoid_compute(C * math.exp(-h), **p)) / (2 * h) * math.log(2)

    peak = max(gain(x) for x in np.geomspace(1e10, 1e14, 4001))
    assert gain(1e12) == pytest.approx(peak, rel=1e-4)  # the peak is at the inflection C_mid
    assert gain(c) == pytest.approx(peak / 2, rel=1e-4)
    lo, hi = res.ci95["C_slowdown"]
    assert lo < c < hi and res.params["C_growth"] < res.params["C_mid"] < c < res.params["C_saturation"]
    assert json.dumps(res.to_json())  # plain JSON


def test_phases_are_not_located_when_the_rise_holds_no_sampled_compute_level():
    from benchmark.scaling.engine import FitResult

    # three budgets of runs, each spread by 0.3 % in C (as an IsoFLOP budget's sizes are)
    C = np.array([2.49e11, 2.5e11, 2.51e11, 4.99e11, 5e11, 5.01e11, 9.97e11, 9.98e11, 1.0e12])
    gradual = {"lo": 9.0, "hi": 24.0, "k": 3.7, "C_mid": 4.5e11}  # rises over 2.5e11..8.2e11: C2 inside
    step = {"lo": 52.0, "hi": 60.0, "k": 5.7e4, "C_mid": 9.98e11}  # rises inside C3's own scatter
    between = {"lo": 52.0, "hi": 60.0, "k": 40.0, "C_mid": 7e11}  # rises between C2 and C3
    for p, located in ((gradual, True), (step, False), (between, False)):
        draws = [dict(p) for _ in range(20)]
        res = crossfit.phases(FitResult("sigmoid_compute", "accuracy/classification", p, {}, {}, None, 9, None, {}, draws), C)
        assert res.identified is located, p
        if not located:
            assert {"k", "C_mid"} <= set(res.unidentified)
            assert "holds no sampled compute level: a step the grid cannot place" in res.identification
        assert crossfit.phases(FitResult("sigmoid_compute", "t", p, {}, {}, None, 9, None, {}, draws)).identified  # no C


def test_card_and_latex_print_not_identified_instead_of_numbers():
    from benchmark.reporting import card
    from benchmark.stages import report

    bad = {"law": "chinchilla", "target": "val_loss/all", "params": {"E": 1.2, "A": 3.3e21, "B": 9.0, "alpha": 4.1, "beta": 0.5},
           "ci95": {"A": [1.0, 1e40]}, "allocation": {"a": 0.1}, "n_points": 12, "identified": False,
           "identification": "95 % interval of A [1, 1e+40] spans > 6 decades"}
    tex = report.fits_tex([bad], [])
    assert "not identified (95 \\% interval of A [1, $" in tex and "10^{40}$] spans \\textgreater{} 6 decades)" in tex
    assert "3.3" not in tex and "4.1" not in tex
    from benchmark.reporting import latex

    # a bounded floor at exactly 0 (lo of a sigmoid at the bottom of [0, 100]) prints, with or without a spread
    assert latex.interval_cell("lo", 0.0, [0.0, 0.0]) == ("$0\\ [0,\\ 0]$", None)
    assert latex.interval_cell("lo", 0.0, [0.0, 1.5])[0] == "$0.0\\ [0.0,\\ 1.5]$"
    rows = [{"law": "chinchilla", "target": "val_loss/all", "parameter": p, "estimate": v, "se": 1.0, "ci95_low": None,
             "ci95_high": None, "n_points": 12, "identified": False, "identification": "A has no bootstrap interval"}
            for p, v in (("A", 3.3e21), ("alpha", 4.1))]
    text = card.fits_section(rows, "method")
    assert text.count("not identified (A has no bootstrap interval)") == 1 and "3.3e+21" not in text
    assert "- bleu/translation: not identified (k has no bootstrap interval)" in card.phases_section(
        [{"law": "sigmoid_compute", "target": "bleu/translation", "identified": False, "identification": "k has no bootstrap interval"}])


def test_phases_section_says_what_each_budget_observed():
    """A sigmoid the grid does not identify still says how far its metric moved: the highest and lowest point per
    compute budget (runs within the tolerance share one), from the points table's seed means."""
    from benchmark.reporting import card

    def row(n, d, mean, metric="accuracy", task="classification"):
        return {"metric": metric, "task": task, "n_params": n, "tokens": d, "flops": 6.0 * n * d, "mean": mean}

    points = [row(1e4, 2e6, 50.5), row(2e4, 1.05e6, 48.0), row(4e4, 2e6, 53.0), row(8e4, 1.02e6, 51.0),
              row(1e4, 2e6, 9.0, metric="bleu", task="translation")]
    fits = [{"law": "sigmoid_compute", "target": "accuracy/classification", "identified": False,
             "identification": "k has no bootstrap interval"}]
    text = card.phases_section(fits, points, tolerance=0.15)
    assert ("- accuracy/classification: not identified (k has no bootstrap interval); observed, highest (lowest) point "
            "per budget: C1 1.23e+11 FLOP 50.5 (48), C2 4.85e+11 FLOP 53 (51)") in text
    assert card.budget_levels(points, "rougeL/summarization") == ""
    # a tolerance that parts the two runs of a budget gives each its own level
    assert card.budget_levels(points, "accuracy/classification", tolerance=0.01).count("FLOP") == 4


def test_card_says_whether_every_point_is_within_one_percent():
    from benchmark.reporting import card

    from benchmark.results.points import std_interval

    def row(size, n, d, metric, task, mean, std, seeds=3):
        rel = None if std is None else std / mean
        low, high = (None, None) if rel is None else std_interval(rel, seeds)
        return {"model_size": size, "n_params": n, "tokens": d, "metric": metric, "task": task, "n_seeds": seeds,
                "mean": mean, "std": std, "rel_std": rel, "rel_std_low": low, "rel_std_high": high}
    pts = [row("xs", 1, 2, "val_loss", "all", 2.0, 0.01), row("l", 5, 2, "val_loss", "all", 1.5, 0.03),
           row("l", 5, 2, "bleu", "translation", 20.0, 0.4), row("m", 3, 2, "val_loss", "all", 1.7, None, 1)]
    text = card.seed_spread_section(pts)
    assert text.startswith("2 of 3 points have seed replicates. Not every point is within 1 %: l N=5 D=2 (2.00 %).")
    # 3 seeds: the 95 % interval is 0.52-6.3 x the estimate: 2 % just rules the 1 % target out, 0.5 % cannot confirm it
    assert "| l | 5 | 2 | 3 | 1.5000 | 2.00 % [1.04, 12.57] | 0.40 |" in text and "| m | 3 | 2 | 1 | 1.7000 | – |" in text
    assert ("Read with its uncertainty (chi-square interval for the std of normal draws): the 95 % interval lies above "
            "1 % at l N=5 D=2 (3 seeds); holds 1 % at xs N=1 D=2 (3 seeds), where these seeds can neither confirm nor "
            "rule out the target.") in text
    many = card.seed_spread_section([row("xs", 1, 2, "val_loss", "all", 2.0, 0.01, 40),
                                     row("l", 5, 2, "val_loss", "all", 1.5, 0.03, 40)])
    assert ("the 95 % interval lies above 1 % at l N=5 D=2 (40 seeds); below it at xs N=1 D=2 (40 seeds).") in many
    # pooled over the replicated points, with Bartlett's test: 0.5 % and 2 % over 39 df each cannot share one spread
    assert ("Pooled over the 2 replicated points (78 degrees of freedom): 1.46 % [1.26, 1.73], which rules out the 1 % "
            "target on average; Bartlett's test that they share one spread: p = 2.6e-14 (") in many
    assert "(the points differ, so the pool does not speak for each)." in many
    assert "Pooled over the 2 replicated points (4 degrees of freedom): 1.46 % [0.87, 4.19], which neither rules in " \
           "nor out the 1 % target on average; Bartlett's test that they share one spread: p = 0.12 (no point is " \
           "shown to differ)." in text
    assert "Where it comes from" not in text  # no task's loss is in the rows
    pts += [row("l", 5, 2, "val_loss", "summarization", 0.5, 0.04), row("l", 5, 2, "val_loss", "translation", 2.0, 0.01),
            row("m", 3, 2, "val_loss", "translation", 2.0, None, 1)]
    assert ("Where it comes from, the relative std of each task's validation loss: l N=5 D=2: summarization 8.00 %, "
            "translation 0.50 % (") in card.seed_spread_section(pts)
    text = card.seed_spread_section(pts[:1])
    assert text.startswith("1 of 1 points have seed replicates. Every one is within 1 %")
    assert card.seed_spread_section([row("m", 3, 2, "val_loss", "all", 1.7, None, 1)]).startswith(
        "No grid point has more than one seed: the seed spread is not measured.")


# --- (d) lack of fit: a law's form against the seed noise of its own points --------------------------------------

def test_f_distribution_matches_its_closed_forms_and_a_reference():
    for f in (0.01, 0.5, 3.0, 100.0):
        assert f_sf(f, 1, 1) == pytest.approx(1 - 2 / math.pi * math.atan(math.sqrt(f)), rel=1e-12)
        for d2 in (1, 4, 38):
            assert f_sf(f, 2, d2) == pytest.approx((1 + 2 * f / d2) ** (-d2 / 2), rel=1e-12)
        for d1 in (1, 3, 14):
            x = d1 * f / (d1 * f + 2)
            assert f_sf(f, d1, 2) == pytest.approx(1 - x ** (d1 / 2), rel=1e-10, abs=1e-13)
    assert f_sf(28.36, 14, 4) == pytest.approx(0.0026764219922077734, rel=1e-10)  # scipy.stats.f.sf, computed once
    assert f_sf(0.0, 3, 5) == 1.0


def test_lack_of_fit_holds_its_level_and_finds_a_wrong_form():
    """A straight line by least squares, 6 points x 3 replicates: on straight-line data the test rejects at its level
    and its p is uniform; on a curve whose bend is about the noise it rejects most of the time."""
    rng = np.random.default_rng(3)
    x = np.repeat(np.linspace(0.0, 1.0, 6), 3)
    groups = quality.replicate_groups(None, None, x)
    X = np.column_stack([np.ones_like(x), x])

    def p_of(y):
        resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        out = quality.lack_of_fit(resid, groups, 2, "metric")
        assert (out["df_lack"], out["df_pure"], out["n_points"]) == (4, 12, 6)
        return out["p"]

    sims = 2000
    right = np.array([p_of(1 + 2 * x + 0.1 * rng.standard_normal(x.size)) for _ in range(sims)])
    wrong = np.array([p_of(1 + 2 * x + 1.5 * x * x + 0.1 * rng.standard_normal(x.size)) for _ in range(sims)])
    # binomial standard error of a 5 % rate over 2,000 draws: 0.49 points
    assert 0.035 < np.mean(right < 0.05) < 0.065 and 0.47 < np.mean(right < 0.5) < 0.53
    assert np.mean(wrong < 0.05) > 0.95  # 99.5 % measured


def test_lack_of_fit_says_why_it_is_not_tested():
    one = [np.array([i]) for i in range(5)]
    assert quality.lack_of_fit(np.ones(5), one, 2, "log")["reason"] == "no grid point has seed replicates"
    two = [np.array([0, 1]), np.array([2, 3])]
    out = quality.lack_of_fit(np.array([0.1, -0.1, 0.2, 0.0]), two, 2, "log")
    assert out["p"] is None and out["reason"] == "2 grid points for 2 parameters: no degree of freedom left for it"
    assert quality.lack_of_fit_words(out) == (
        "lack of fit not tested (2 grid points for 2 parameters: no degree of freedom left for it)")
    assert quality.lack_of_fit_words(None) == ""


def test_a_law_on_its_own_data_fits_within_the_noise_and_a_wrong_form_does_not(noisy_grid):
    pts, _, res = noisy_grid
    lof = res.lack_of_fit
    # 25 points x 4 seeds: pure error on 75 degrees of freedom, its std within ~20 % of the true 1 %
    assert (lof["n_points"], lof["df_pure"], lof["df_lack"]) == (25, 75, 20)
    assert 0.8 * SIGMA < lof["pure_std"] < 1.2 * SIGMA and lof["p"] > quality.LACK_OF_FIT_LEVEL
    assert quality.lack_of_fit_words(res.to_json()["lack_of_fit"]).endswith(": no lack of fit detected")
    # The same grid drawn from Kaplan's L(N, D), where the return on data depends on N: chinchilla's additive form
    # misses it by more than the noise (the default grid's own finding); Kaplan's form does not.
    rng = np.random.default_rng(11)
    y = laws.kaplan_nd(pts.N, pts.D, N_c=3e5, D_c=2e6, alpha_N=0.3, alpha_D=0.25) * (1 + SIGMA * rng.standard_normal(pts.n))
    kap = Points(y=y, N=pts.N, D=pts.D, ids=pts.ids)
    settings = FitSettings(bootstrap=0)
    wrong = lack_of_fit("chinchilla", kap, fit_point("chinchilla", kap, settings), settings)
    right = lack_of_fit("kaplan_nd", kap, fit_point("kaplan_nd", kap, settings), settings)
    assert wrong["p"] < 1e-3 and wrong["lack_std"] > 2 * wrong["pure_std"], wrong
    assert right["p"] > quality.LACK_OF_FIT_LEVEL and right["fit"] == "least squares on log y", right
    words = quality.lack_of_fit_words(wrong)
    assert words.startswith(f"misses its own grid points by {100 * wrong['lack_std']:.3g} % (root lack-of-fit mean "
                            f"square) where seeds scatter {100 * wrong['pure_std']:.3g} % (F(20, 75) = ")
    assert words.endswith(": the law's form does not describe this grid within its seed noise")


def test_card_sets_each_law_beside_the_noise_in_sample_too():
    from benchmark.reporting import card

    lof = {"space": "log", "df_lack": 14, "df_pure": 4, "lack_std": 0.0163, "pure_std": 0.00307, "F": 28.3, "p": 0.0027}
    fits = [{"law": "chinchilla", "target": "val_loss/all", "identified": False, "identification": "E spans 6 decades",
             "lack_of_fit": lof},
            {"law": "two_step", "target": "bleu/translation", "identified": True, "lack_of_fit": None,
             "extrapolation": {"rel_err": 0.2, "abs_err": 3.47, "seed_std": 1.04}}]
    text = card.heldout_section(fits, lambda target: not target.startswith("val_loss"))
    assert ("- chinchilla on val_loss/all: not identified (E spans 6 decades); misses its own grid points by 1.63 % "
            "(root lack-of-fit mean square) where seeds scatter 0.307 % (F(14, 4) = 28.3, p = 0.0027): the law's form "
            "does not describe this grid within its seed noise") in text
    assert "- two_step on bleu/translation: held-out 3.47 points (seed spread 1.04 points): meets the target\n" in text
    assert "lack-of-fit F test, Draper and Smith 1998" in text


def test_residual_figure_draws_each_law_s_misses_against_the_seed_noise():
    from benchmark.reporting import figures

    # two sizes x two token counts, the first point with 3 seeds whose losses are 1 %, 2 % and 3 % above the law
    grid = [("s", 3e4, 3e5, [1.01, 1.02, 1.03]), ("s", 3e4, 6e5, [1.0]), ("l", 1e5, 3e5, [0.98]), ("l", 1e5, 6e5, [1.0])]
    runs, loss = [], {}
    for size, n, d, factors in grid:
        for seed, k in enumerate(factors):
            rid = f"{size}-{int(d)}-s{seed}"
            runs.append({"run_id": rid, "model_size": size, "n_params": int(n), "tokens": int(d) + seed, "flops": 6 * n * d,
                         "seed": seed})
            loss[rid] = k * float(laws.chinchilla(n, d + seed, **TRUE))
    fit_ = {"law": "chinchilla", "target": "val_loss/all", "params": TRUE, "identified": True,
            "extrapolation": {"cutoff_flops": 6 * 1e5 * 6e5},
            "lack_of_fit": {"lack_std": 0.0163, "pure_std": 0.004, "F": 28.3, "p": 0.0027}}
    pts = figures.residual_points(runs, loss, fit_, laws.LAWS["chinchilla"].predict)
    C, V, err = pts["s"]
    assert V == pytest.approx([2.0, 0.0]) and err == pytest.approx([1.0, 0.0])  # mean and std of 1, 2, 3 %
    assert pts["l"][1] == pytest.approx([-2.0, 0.0])
    fig = figures.residuals(runs, loss, [fit_, {**fit_, "law": "kaplan_nd", "identified": False, "lack_of_fit": None,
                                                "params": {"N_c": 1e5, "D_c": 1e6, "alpha_N": 0.3, "alpha_D": 0.3}}],
                            {"chinchilla": laws.LAWS["chinchilla"].predict, "kaplan_nd": laws.LAWS["kaplan_nd"].predict})
    left, right = fig.axes
    assert left.get_title() == ("chinchilla on val_loss/all\nmisses 1.6 % where seeds scatter 0.4 % (p = 0.0027)")
    assert right.get_title() == "kaplan_nd on val_loss/all (not identified)"
    (band,) = [p for p in left.patches if p.get_label().startswith("±2 × seed spread")]
    assert band.get_y() == pytest.approx(-0.8) and band.get_height() == pytest.approx(1.6)  # +-2 x 0.4 %
    assert not [p for p in right.patches if p.get_label().startswith("±2")]  # no pure error: no band
    assert [t.get_text() for t in left.get_xticklabels()] == ["5.4e+10", "1.1e+11", "1.8e+11", "3.6e+11"]  # its budgets


def test_heldout_figure_draws_each_prediction_with_its_interval_beside_the_observation():
    from benchmark.reporting import figures

    e = {"observed": [1.44, 1.48], "predicted": [1.45, 1.52], "predicted_ci95": [[1.34, 1.56], [1.50, 1.53]],
         "inside_ci95": 1, "rel_err": 0.0198, "abs_err": 0.025, "identified": True, "point_ids": ["d64-c3", "d28-c3"]}
    fits = [{"law": "chinchilla", "target": "val_loss/all", "extrapolation": e},
            {"law": "two_step", "target": "bleu/translation", "extrapolation": {**e, "abs_err": 8.38, "rel_err": 0.5}},
            {"law": "kaplan_nd", "target": "val_loss/all", "extrapolation": {**e, "identified": False}}]
    fig = figures.heldout(fits)
    a, b, c = fig.axes
    assert a.get_title() == "chinchilla on val_loss/all\nheld-out 2 %; interval holds 1 of 2"
    assert b.get_title() == "two_step on bleu/translation\nheld-out 8.38 points; interval holds 1 of 2"
    assert c.get_title() == "kaplan_nd on val_loss/all\nheld-out prediction not identified"
    assert [t.get_text() for t in a.get_xticklabels()] == ["d64-c3", "d28-c3"]
    (bars,) = a.containers  # one errorbar: the prediction, its caps at the interval's ends
    lo, hi = (np.asarray(cap.get_ydata()) for cap in bars[1][:2])
    assert lo == pytest.approx([1.34, 1.50]) and hi == pytest.approx([1.56, 1.53])
    assert not c.containers  # nothing predicted where the prediction is not identified


def test_replicates_of_one_point_are_one_level_when_a_law_needs_variation():
    """Three seeds of one point stop a few tokens apart: their D are 3 raw values but 1 level, so L(D) is not fitted to
    them (it was, and 'met' the held-out target on one point); 2 levels a factor 2 apart are enough for its 2
    parameters."""
    from benchmark.scaling.engine import FitError, check

    N = np.full(3, 1.66e5)
    D = np.array([1_000_398.0, 1_000_512.0, 1_000_200.0])
    with pytest.raises(FitError, match=r"kaplan_d needs variation in D: at least 2 distinct values \(seed replicates, "
                                       r"a few tokens apart, count once\), but the 3 points have 1"):
        check("kaplan_d", Points(y=np.array([1.42, 1.43, 1.425]), N=N, D=D))
    check("kaplan_d", Points(y=np.array([1.42, 1.43, 1.3]), N=N, D=np.array([1e6, 1.0002e6, 2e6])))
    # a loss as a law's input is not a grid coordinate: every distinct value counts
    check("sigmoid_loss", Points(y=np.array([10.0, 12.0, 15.0, 20.0]), L=np.array([2.0, 1.995, 1.99, 1.985])))


def test_a_held_out_point_is_named_by_its_seed_zero_run_whatever_the_order_of_its_runs():
    """Replicates are named <id>-s<k> beside the seed-0 run <id>; a point takes the first of its ids in sort order."""
    obs = np.array([1.0, 1.1, 0.9, 2.0])
    groups = [np.array([0, 1, 2]), np.array([3])]
    e = extrapolation_error(obs, obs, 1e12, 10, groups, ["d96-c4-s2", "d96-c4", "d96-c4-s1", "d64-c4"])
    assert e["point_ids"] == ["d96-c4", "d64-c4"]
