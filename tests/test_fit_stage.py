"""End to end: the fit stage on a small DuckDB of synthetic runs (one diverged) shaped like the default grid."""
import contextlib
import io
import json

import numpy as np
import pytest

from benchmark.results import db, schema
from benchmark.scaling import targets
from benchmark.stages import fit
from benchmark.scaling import laws, literature
from benchmark.results.parquet import table_to_arrow, write_parquet_atomic

SIZES = {"xs": 104_000, "s": 213_000, "m": 430_000, "l": 917_000}   # N of the default grid's sizes
TOKENS = (250_000, 500_000, 1_000_000)
TASKS = ("translation", "classification")


def run_row(run_id, size, n, d, status="completed"):
    row = {c.name: None for c in schema.columns("runs")}
    row.update(source="local", run_id=run_id, model_size=size, n_params=n, tokens=d, flops=6.0 * n * d, seed=0,
               status=status, schema_version=schema.SCHEMA_VERSION, diverged_step=None if status == "completed" else 40)
    return row


def metric_row(run_id, task, metric, value):
    return {"source": "local", "run_id": run_id, "task": task, "metric": metric, "value": float(value), "stderr": None,
            "n": 300, "signature": None}


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    rng = np.random.default_rng(0)
    runs, metrics = [], []
    for size, n in SIZES.items():
        for d in TOKENS:
            rid = f"{size}-{d // 1000}k"
            runs.append(run_row(rid, size, n, d))
            losses = {}
            for i, task in enumerate(TASKS):
                loss = laws.chinchilla(n, d, E=1.2 + 0.3 * i, A=40.0, B=300.0, alpha=0.3, beta=0.35) * np.exp(rng.normal(0, 0.005))
                losses[task] = loss
                metrics.append(metric_row(rid, task, "val_loss", loss))
            metrics.append(metric_row(rid, "all", "val_loss", np.mean(list(losses.values()))))
            bleu = laws.sigmoid_loss(losses["translation"], lo=0.5, hi=40.0, k=3.0, L_mid=2.0) + rng.normal(0, 0.3)
            metrics.append(metric_row(rid, "translation", "bleu", max(bleu, 0.0)))
            metrics.append(metric_row(rid, "classification", "accuracy", 100 * laws.sigmoid_loss(losses["classification"], lo=0.33, hi=0.95, k=4.0, L_mid=2.3)))
    # A diverged run: a blown-up loss (the schema refuses NaN values), excluded from every fit by its status.
    runs.append(run_row("xl-1000k", "xl", 2_000_000, 1_000_000, status="diverged"))
    for task in (*TASKS, "all"):
        metrics.append(metric_row("xl-1000k", task, "val_loss", 25.0))
    metrics.append(metric_row("xl-1000k", "translation", "bleu", 0.0))
    path = tmp / "results.duckdb"
    con = db.connect(str(path))
    db.replace_rows(con, "runs", runs, source="local")
    db.replace_rows(con, "metrics", metrics, source="local")
    con.close()
    params = tmp / "params.yaml"
    params.write_text("fit:\n  bootstrap: 300\n  downstream_bootstrap: 200\n  seed: 0\n  huber_delta: 1e-3\n")
    out = tmp / "leaderboard" / "fits.json"
    log = io.StringIO()
    with contextlib.redirect_stderr(log):
        rc = fit.main(["--db", str(path), "--params", str(params), "--out", str(out), "--data-dir", str(tmp / "data")])
    return rc, path, json.loads(out.read_text()), log.getvalue()


def test_fits_json_is_a_list_of_fits_with_intervals(stage):
    rc, _, fits, log = stage
    assert rc == 0 and isinstance(fits, list)
    keys = {"law", "target", "params", "se", "ci95", "allocation", "n_points", "extrapolation", "method", "identified",
            "unidentified", "identification", "lack_of_fit"}
    assert all(set(f) == keys for f in fits)
    got = {(f["law"], f["target"]) for f in fits}
    for target in ("val_loss/all", "val_loss/translation", "val_loss/classification"):
        assert {("chinchilla", target), ("kaplan_nd", target), ("kaplan_n", target), ("kaplan_d", target)} <= got
    # Diagonals (xs-1m, s-500k, m-250k) share a budget within 15 %, but 3 runs do not bracket a minimum:
    assert ("approach2", "val_loss/all") not in got
    assert "skipped approach2 on val_loss/all: approach2: fewer than 2 of the" in log
    assert "held-out extrapolation" in log and "seed_law" in log
    for target in ("bleu/translation", "accuracy/classification"):
        assert {("seed_law", target), ("sigmoid_compute", target), ("two_step", target)} <= got
    chin = next(f for f in fits if f["law"] == "chinchilla" and f["target"] == "val_loss/all")
    assert set(chin["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert all(lo <= chin["params"][k] <= hi for k, (lo, hi) in chin["ci95"].items() if k in chin["params"])
    assert chin["extrapolation"]["n_heldout"] == 3 and chin["extrapolation"]["cutoff_flops"] == pytest.approx(6 * 430_000 * 1_000_000)  # l-1m, l-500k, m-1m
    assert chin["extrapolation"]["rel_err"] < 0.05
    assert chin["method"]["bootstrap"] == 300 and chin["method"]["bootstrap_used"] + chin["method"]["bootstrap_degenerate"] <= 300
    assert chin["allocation"]["a"] == pytest.approx(chin["params"]["beta"] / (chin["params"]["alpha"] + chin["params"]["beta"]))
    # one seed per point: the lack-of-fit test has no pure error to set the misses against, and says so
    assert chin["lack_of_fit"]["p"] is None and chin["lack_of_fit"]["reason"] == "no grid point has seed replicates"
    draws = json.loads((out_dir(stage) / "fit_draws.json").read_text())["chinchilla|val_loss/all"]
    assert len(draws) == 100 and set(draws[0]) == {"E", "A", "B", "alpha", "beta"}
    seed = next(f for f in fits if f["law"] == "seed_law" and f["target"] == "bleu/translation")
    assert seed["method"]["bootstrap"] == 200 and seed["extrapolation"]["abs_err"] >= 0


def out_dir(stage):
    return stage[1].parent / "leaderboard"


def test_diverged_run_is_excluded(stage):
    _, _, fits, _ = stage
    for f in fits:
        if f["law"] in ("chinchilla", "kaplan_nd", "seed_law", "sigmoid_compute", "two_step"):
            assert f["n_points"] == 12, (f["law"], f["target"])


def test_duckdb_rows(stage):
    _, path, fits, _ = stage
    con = db.connect(str(path), read_only=True)
    rows = db.read_rows(con, "fits", "source = 'local'")
    lit = db.read_rows(con, "literature")
    con.close()
    assert len(lit) == len(literature.ROWS)
    chin = {r["parameter"]: r for r in rows if r["law"] == "chinchilla" and r["target"] == "val_loss/all"}
    assert set(chin) == {"E", "A", "B", "alpha", "beta", "a", "b", "N_opt", "D_opt"}
    assert chin["E"]["se"] > 0 and chin["E"]["ci95_low"] < chin["E"]["estimate"] < chin["E"]["ci95_high"]
    assert chin["E"]["n_points"] == 12 and chin["E"]["extrapolation_rel_err"] is not None
    assert json.loads(chin["E"]["method"])["starts"] == 4500
    assert {(r["law"], r["target"]) for r in rows} == {(f["law"], f["target"]) for f in fits}


def test_parquet_outputs_and_parquet_inputs(stage, tmp_path):
    import pyarrow.parquet as pq

    _, path, fits, _ = stage
    data = path.parent / "data"
    con = db.connect(str(path), read_only=True)
    assert pq.read_table(data / "fits.parquet").num_rows == len(db.read_rows(con, "fits")) > 2 * len(fits)
    assert pq.read_table(data / "literature.parquet").num_rows == len(literature.ROWS)
    # A DVC checkout restores collect's parquet files, not the database: the stage reads those.
    for table in ("runs", "metrics"):
        write_parquet_atomic(table_to_arrow(db.read_rows(con, table), table), tmp_path / f"{table}.parquet")
    from_db = targets.load_targets(con)
    con.close()
    empty = db.connect(str(tmp_path / "empty.duckdb"))
    from_parquet = targets.load_targets(empty, data_dir=tmp_path)
    empty.close()
    assert sorted(from_parquet) == sorted(from_db)
    np.testing.assert_array_equal(from_parquet["val_loss/all"].y, from_db["val_loss/all"].y)
    assert from_db["val_loss/all"].n == 12


def test_bad_settings_name_the_key(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("fit:\n  bootstraps: 10\n")
    with pytest.raises(fit.SettingsError, match=r"^fit\.bootstraps: unknown key"):
        targets.read_settings(p)
    p.write_text("fit:\n  holdout: 1.5\n")
    with pytest.raises(fit.SettingsError, match=r"^fit\.holdout: invalid value 1\.5 \(a fraction in \(0, 1\)"):
        targets.read_settings(p)
    p.write_text("data: {}\n")
    assert targets.read_settings(p)["bootstrap"] == 4000


def test_the_two_step_task_loss_is_the_target_loss_where_every_run_has_it(tmp_path):
    """With data.loss_on "text", val_loss carries the input's entropy; the two-step law reads the answer's loss
    (target_loss), as Bhagia et al. 2024 score a task, and falls back to val_loss where a run lacks it."""
    runs, metrics = [], []
    for k, (size, n) in enumerate(SIZES.items()):
        rid = f"{size}-100k"
        runs.append(run_row(rid, size, n, 100_000))
        metrics += [metric_row(rid, "translation", "val_loss", 2.0 + k), metric_row(rid, "translation", "bleu", 10.0 + k),
                    metric_row(rid, "classification", "val_loss", 1.5 + k), metric_row(rid, "classification", "accuracy", 60.0)]
        metrics.append(metric_row(rid, "translation", "target_loss", 0.5 + k))
        if k:  # the first run has no target_loss for classification: its task loss stays val_loss
            metrics.append(metric_row(rid, "classification", "target_loss", 0.25 + k))
    con = db.connect(str(tmp_path / "t.duckdb"))
    db.replace_rows(con, "runs", runs, source="local")
    db.replace_rows(con, "metrics", metrics, source="local")
    got = targets.load_targets(con, downstream=["bleu", "accuracy"])
    con.close()
    k = np.arange(len(SIZES))
    assert "target_loss/translation" not in got and "val_loss/translation" in got  # no law is fitted to it
    np.testing.assert_array_equal(np.sort(got["bleu/translation"].L), 0.5 + k)
    np.testing.assert_array_equal(np.sort(got["accuracy/classification"].L), 1.5 + k)
