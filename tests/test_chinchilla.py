"""Golden test: Hoffmann et al. 2022's Fig. 4 data as extracted by Besiroglu et al. 2024 (Epoch AI), whose
Approach-3 refit is the reference: E=1.817, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658 with bootstrap
SEs 0.026, 124.52, 1293.28, 0.0154, 0.0206 (4000 resamples), a = beta/(alpha+beta) = 0.513.

Uses ../shared/data/chinchilla_svg_extracted.csv beside the repository (or $BENCHMARK_SHARED_DATA); skipped only
where it is absent.
"""
import json

import pytest

from benchmark.sources import csv_points
from benchmark.stages import fit_csv
from benchmark.scaling.engine import FitSettings, fit
from tests_paths import CHINCHILLA_CSV

CSV = CHINCHILLA_CSV
EPOCH = {"E": 1.817, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
EPOCH_SE = {"E": 0.026, "A": 124.52, "B": 1293.28, "alpha": 0.0154, "beta": 0.0206}

pytestmark = pytest.mark.skipif(not CSV.exists(), reason=f"reference data {CSV} not present")


@pytest.fixture(scope="module")
def points():
    return csv_points.read_points(CSV, "Model Size", "loss", flops_col="Training FLOP", drop_highest_loss=5)


@pytest.fixture(scope="module")
def result(points):
    return fit("chinchilla", points, FitSettings(bootstrap=4000, seed=0))  # Epoch's resample count


def test_240_points_after_dropping_the_5_highest_losses(points):
    assert points.n == 240
    assert points.y.max() < 3.5


def test_point_estimates_match_epoch(result):
    p = result.params
    for k in ("E", "alpha", "beta"):
        assert p[k] == pytest.approx(EPOCH[k], rel=0.01), k
    for k in ("A", "B"):
        assert p[k] == pytest.approx(EPOCH[k], rel=0.05), k
    assert result.allocation["a"] == pytest.approx(0.513, abs=0.01)
    assert result.method["objective"] < 1.0183e-3  # summed Huber at the optimum, checkable with the bench script


def test_bootstrap_standard_errors_match_epoch(result):
    assert result.method["bootstrap_used"] == 4000
    for k in ("E", "alpha", "beta"):
        assert result.se[k] == pytest.approx(EPOCH_SE[k], rel=0.20), k
    for k in ("A", "B"):
        assert result.se[k] == pytest.approx(EPOCH_SE[k], rel=0.35), k
    lo, hi = result.ci95["alpha"]
    assert lo < EPOCH["alpha"] < hi


def test_fit_csv_command_writes_the_fits_json_shape(tmp_path):
    out = tmp_path / "fits.json"
    rc = fit_csv.main([str(CSV), "--n-col", "Model Size", "--flops-col", "Training FLOP", "--loss-col", "loss",
                       "--drop-highest-loss", "5", "--bootstrap", "100", "--out", str(out)])
    assert rc == 0
    (fit_json,) = json.loads(out.read_text())
    assert set(fit_json) == {"law", "target", "params", "se", "ci95", "allocation", "n_points", "extrapolation", "method",
                             "identified", "unidentified", "identification", "lack_of_fit"}
    assert fit_json["n_points"] == 240 and fit_json["law"] == "chinchilla"
    assert fit_json["extrapolation"]["n_heldout"] == 48 and fit_json["extrapolation"]["rel_err"] < 0.05
    assert set(fit_json["ci95"]) >= {"E", "A", "B", "alpha", "beta", "a", "N_opt", "D_opt"}
