"""The public Python API, called as a notebook would (not through the CLI), and the README's examples run as written."""
from __future__ import annotations

import re

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

import benchmark as bm
from benchmark.stages import importers
from tests_paths import CHINCHILLA_CSV, ROOT, TINY

README_CSV = "../shared/data/chinchilla_svg_extracted.csv"
# Epoch AI's refit (Besiroglu et al. 2024) of the same 240 points: estimate, SE
EPOCH = {"E": (1.817, 0.026), "A": (482.01, 124.52), "B": (2085.43, 1293.28), "alpha": (0.3478, 0.0154), "beta": (0.3658, 0.0206)}


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def chinchilla_fit():
    if not CHINCHILLA_CSV.exists():
        pytest.fail(f"{CHINCHILLA_CSV} is missing: the README example needs the shared Chinchilla points")
    code = readme_blocks()[0].replace(README_CSV, str(CHINCHILLA_CSV))
    assert str(CHINCHILLA_CSV) in code
    ns: dict = {}
    exec(compile(code, "README.md (Python API, block 1)", "exec"), ns)
    return ns["fit"]


def test_readme_example_reproduces_the_chinchilla_numbers(chinchilla_fit):
    fit = chinchilla_fit
    assert fit.n_points == 240 and fit.law == "chinchilla"
    # the README's table for this engine, to its printed digits
    assert fit.params["E"] == pytest.approx(1.817, abs=5e-4) and fit.params["A"] == pytest.approx(477.8, abs=0.05)
    assert fit.params["B"] == pytest.approx(2143, abs=0.5) and fit.params["alpha"] == pytest.approx(0.3473, abs=5e-5)
    assert fit.params["beta"] == pytest.approx(0.3672, abs=5e-5) and fit.allocation["a"] == pytest.approx(0.514, abs=5e-4)
    for k, (est, se) in EPOCH.items():  # and Epoch AI's refit, within a fraction of its standard error
        assert abs(fit.params[k] - est) < 0.5 * se, k
        assert fit.se[k] == pytest.approx(se, rel=0.15), k
    assert fit.extrapolation["rel_err"] < 0.02


def test_readme_results_example_loads_every_kind_of_table(tmp_path, monkeypatch):
    (tmp_path / "leaderboard").mkdir()
    assert importers.main(["chinchilla", str(CHINCHILLA_CSV), "--db", str(tmp_path / "leaderboard" / "results.duckdb")]) == 0
    (tmp_path / "params.yaml").write_text(TINY.read_text())
    monkeypatch.chdir(tmp_path)
    ns: dict = {"bm": bm}
    exec(compile(readme_blocks()[1], "README.md (Python API, block 2)", "exec"), ns)
    runs, loss, fits, grid, points = (ns[k] for k in ("runs", "loss", "fits", "grid", "points"))
    assert isinstance(runs, pd.DataFrame) and set(runs["source"]) == {"chinchilla"} and len(runs) == points.n
    assert isinstance(loss, pa.Table) and loss.schema.names == bm.load_table("metrics").columns.tolist()
    assert isinstance(fits, duckdb.DuckDBPyRelation) and fits.columns[:3] == ["source", "law", "target"]
    assert list(grid["run_id"]) == [q.run_id for q in bm.plan_grid("params.yaml", as_="list")] and len(grid) == 9
    assert set(ns["kaplan"].params) == set(bm.LAWS["kaplan_nd"].params)


def test_load_reads_the_dataset_folder_without_a_database(tmp_path):
    from benchmark.results.parquet import table_to_arrow, write_parquet_atomic

    row = {"source": "local", "run_id": "r", "task": "all", "metric": "val_loss", "value": 3.0, "stderr": 0.1,
           "n": 10, "signature": "s"}
    write_parquet_atomic(table_to_arrow([row, {**row, "source": "other"}], "metrics"), tmp_path / "metrics.parquet")
    kw = {"data_dir": tmp_path}
    assert bm.load_metrics(**kw)["source"].tolist() == ["local", "other"]
    assert bm.load_metrics("other", as_="arrow", **kw).num_rows == 1
    with pytest.raises(FileNotFoundError, match="neither exists"):
        bm.load_runs(**kw)
    with pytest.raises(ValueError, match="as_="):
        bm.load_metrics(as_="csv", **kw)


def test_fit_law_names_unknown_laws_and_public_names_resolve():
    with pytest.raises(ValueError, match="unknown law 'hoffmann'; known: chinchilla"):
        bm.fit_law(bm.Points(y=[1.0, 2.0]), "hoffmann")
    assert bm.LAWS["chinchilla"].formula == "L = E + A/N^alpha + B/D^beta" and "bleu" in bm.METRICS
    with pytest.raises(AttributeError):
        bm.no_such_name  # noqa: B018
