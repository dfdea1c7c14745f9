"""Pythia and ObsScaling import whole into runs/metrics/models/sources: exact counts, values against the raw files."""
from __future__ import annotations

import csv
import hashlib
import json
import math

import pytest

from benchmark.results import db
from benchmark.sources import common
from benchmark.stages import importers
from benchmark.sources.pythia import SIZES, param_counts
from tests_paths import shared_data

PYTHIA = shared_data("pythia_zero_shot")
OBS = shared_data("obsscaling") / "base_llm_benchmark_eval.csv"
needs_data = pytest.mark.skipif(not (PYTHIA.is_dir() and OBS.is_file()),
                                reason="published data sets not found (../shared/data or $BENCHMARK_SHARED_DATA)")


def read(db_path, table: str, source: str, where: str = "") -> list[dict]:
    con = db.connect(str(db_path), read_only=True)
    try:
        return db.read_rows(con, table, "source = ?" + (f" AND {where}" if where else ""), [source])
    finally:
        con.close()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("imp") / "r.duckdb"
    assert importers.main(["pythia", str(PYTHIA), "--db", str(db_path)]) == 0
    assert importers.main(["obsscaling", str(OBS), "--db", str(db_path)]) == 0
    return db_path


def test_pythia_parameter_counts_match_the_published_table():
    for size, (*_, total, nonemb) in SIZES.items():
        t, e, n = param_counts(size)
        assert (t, n, t - n) == (total, nonemb, e), size


@needs_data
def test_pythia_rows_counts_and_values(imported):
    files = sorted(PYTHIA.glob("pythia-*/*.json"))
    assert len(files) == 189
    runs = {r["run_id"]: r for r in read(imported, "runs", "pythia")}
    assert len(runs) == 189 and len({r["model_size"] for r in runs.values()}) == 7
    # every numeric harness value is one row (acc/acc_norm x 100), plus ln(ppl) for lambada
    expected = 0
    for f in files:
        for values in json.loads(f.read_text())["results"].values():
            expected += sum(1 for k in values if not k.endswith("_stderr")) + ("ppl" in values)
    metrics = read(imported, "metrics", "pythia")
    assert len(metrics) == expected == 32697
    raw = json.loads((PYTHIA / "pythia-410m" / "410m_step143000.json").read_text())["results"]
    r = runs["pythia-410m-step143000"]
    assert (r["n_params"], r["n_params_nonembedding"], r["tokens"]) == (405_334_016, 302_311_424, 143000 * 2_097_152)
    assert r["flops"] == 6.0 * 405_334_016 * 143000 * 2_097_152 and r["steps"] == 143000 and r["d_model"] == 1024
    m = {(x["task"], x["metric"]): x for x in metrics if x["run_id"] == "pythia-410m-step143000"}
    lam = raw["lambada_openai"]
    assert m[("lambada_openai", "perplexity")]["value"] == lam["ppl"]
    assert m[("lambada_openai", "log_perplexity")]["value"] == pytest.approx(math.log(lam["ppl"]), rel=1e-15)
    assert m[("lambada_openai", "log_perplexity")]["stderr"] == pytest.approx(lam["ppl_stderr"] / lam["ppl"])
    assert m[("lambada_openai", "accuracy")]["value"] == pytest.approx(100 * lam["acc"], rel=1e-15)
    assert m[("arc_easy", "accuracy_norm")]["stderr"] == pytest.approx(100 * raw["arc_easy"]["acc_norm_stderr"], rel=1e-15)
    assert m[("hendrycksTest-anatomy", "accuracy")]["value"] == pytest.approx(100 * raw["hendrycksTest-anatomy"]["acc"])
    assert runs["pythia-70m-step0"]["tokens"] == 0  # imported whole; fits skip D = 0
    models = read(imported, "models", "pythia")
    assert {x["family"] for x in models} == {"Pythia"} and len(models) == 7


@needs_data
def test_obsscaling_rows_counts_and_values(imported):
    with open(OBS, newline="") as f:
        raw = list(csv.DictReader(f))
    assert len(raw) == 148
    with_d = [r for r in raw if r["Pretraining Data Size (T)"] and r["FLOPs (1E21)"]]
    runs = {r["run_id"]: r for r in read(imported, "runs", "obsscaling")}
    assert len(runs) == len(with_d) == 123
    bench = ["MMLU", "ARC-C", "HellaSwag", "Winograd", "TruthfulQA", "GSM8K", "XWinograd", "HumanEval"]
    metrics = read(imported, "metrics", "obsscaling")
    assert len(metrics) == sum(1 for r in with_d for b in bench if r[b]) == 963
    llama = runs["meta-llama/Llama-2-7b-hf"]
    assert (llama["n_params"], llama["tokens"], llama["flops"]) == (7_000_000_000, 2_000_000_000_000, 84.0e21)
    m = {(x["task"]): x["value"] for x in metrics if x["run_id"] == "meta-llama/Llama-2-7b-hf"}
    assert m["mmlu"] == pytest.approx(100 * 0.4379609636092418, rel=1e-15) and m["humaneval"] == pytest.approx(12.80487804878048)
    models = {x["model_size"]: x["family"] for x in read(imported, "models", "obsscaling")}
    assert models["meta-llama/Llama-2-7b-hf"] == "Llama-2" and len(models) == 123
    assert "openai-community/gpt2" not in runs  # no D or C published


@needs_data
def test_sources_table(imported):
    con = db.connect(str(imported), read_only=True)
    try:
        rows = {r["source"]: r for r in db.read_rows(con, "sources")}
    finally:
        con.close()
    assert set(rows) == {"pythia", "obsscaling"}
    p, o = rows["pythia"], rows["obsscaling"]
    assert (p["commit"], p["license"], p["n_runs"], p["n_metrics"]) == ("a19eecb807ec2c79a39ebf18108816e6ffffc1d5", "Apache-2.0", 189, 32697)
    assert "Biderman" in p["citation"] and p["importer"] == "benchmark.sources.pythia" and p["importer_version"] == common.IMPORTER_VERSION
    assert (o["commit"], o["license"], o["n_runs"], o["n_metrics"]) == ("4d6e1e43fd2635d04654aa77d1df9d5266ea0382", "Apache-2.0", 123, 963)
    assert "Ruan" in o["citation"] and "25 left out" in o["note"] and "openai-community/gpt2," in o["note"]
    assert o["input_sha256"] == hashlib.sha256(OBS.name.encode() + b"\0" + OBS.read_bytes() + b"\0").hexdigest()


@needs_data
def test_reimport_replaces_only_its_source(imported, tmp_path):
    before = len(read(imported, "metrics", "pythia"))
    assert importers.main(["obsscaling", str(OBS), "--db", str(imported)]) == 0
    assert len(read(imported, "metrics", "pythia")) == before and len(read(imported, "runs", "obsscaling")) == 123


def test_bad_pythia_file_is_one_line_and_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "pythia-70m"
    folder.mkdir()
    (folder / "70m_step1000.json").write_text(json.dumps({"results": {"piqa": {"acc": "high"}},
                                                          "config": {"model_args": "pretrained=EleutherAI/pythia-v1.1-70m,revision=step1000"}}))
    db_path = tmp_path / "r.duckdb"
    assert importers.main(["pythia", str(tmp_path), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "70m_step1000.json: field 'results.piqa.acc' is not a finite number" in err, err
    assert not db_path.exists()


def local_grid(db_path) -> None:
    """A 3 x 3 local grid on a known chinchilla law (so `local` has a fit beside the imported sources)."""
    from conftest_hub import synthetic_rows

    base = synthetic_rows()["runs"][0]
    runs, metrics = [], []
    for n in (1e6, 3e6, 1e7):
        for d in (1e7, 3e7, 1e8):
            rid = f"n{n:.0e}-d{d:.0e}"
            runs.append({**base, "run_id": rid, "n_params": int(n), "tokens": int(d), "flops": 6 * n * d})
            metrics.append({"source": "local", "run_id": rid, "task": "all", "metric": "val_loss", "n": 100,
                            "value": 1.8 + 400 / n ** 0.34 + 400 / d ** 0.28, "stderr": 0.01, "signature": None})
    con = db.connect(str(db_path))
    try:
        db.replace_rows(con, "runs", runs, source="local")
        db.replace_rows(con, "metrics", metrics, source="local")
    finally:
        con.close()


@needs_data
def test_compare_local_pythia_obsscaling_prints_one_table(imported, tmp_path):
    import os
    import subprocess
    import sys

    from tests_paths import ROOT

    local_grid(imported)
    cmd = [sys.executable, "-m", "benchmark", "compare", "local", "pythia", "obsscaling", "--db", str(imported),
           "--bootstrap", "50", "--plot", str(tmp_path / "cmp")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    (header,) = [x for x in lines if x.startswith("parameter")]
    assert header.split()[1:4] == ["local", "pythia", "obsscaling"]
    target = next(x for x in lines if x.startswith("target"))
    assert "val_loss/all" in target and "log_perplexity/lambada_openai" in target
    for name in ("E", "alpha", "beta"):
        row = next(x for x in lines if x.startswith(name + " "))
        assert row.count("[") == 2, row  # local and pythia fitted; obsscaling has no loss
    held = next(x for x in lines if x.startswith("held-out |rel err|"))
    assert held.count("%") == 2 and "(23 runs)" in held  # pythia: ceil(0.2 x 112) largest-compute checkpoints held out
    assert any(x.startswith("obsscaling: not fitted: source 'obsscaling' has no val_loss/all") for x in lines)
    # a downstream law, each source on its own benchmark: all three fitted in one table
    out = subprocess.run(cmd + ["--law", "sigmoid_compute", "--target", "pythia=accuracy/piqa", "--target",
                                "obsscaling=accuracy/mmlu", "--target", "local=val_loss/all"],
                         cwd=tmp_path, env=env, check=True, capture_output=True, text=True).stdout
    row = next(x for x in out.splitlines() if x.startswith("C_mid "))
    assert row.count("[") == 3, out


@needs_data
def test_fit_stage_fits_pythia_and_the_card_shows_it(imported, tmp_path, monkeypatch):
    """Acceptance: chinchilla on Pythia's lambada log-perplexity over the N x D grid, and downstream laws on
    three Pythia benchmarks, with held-out errors, land in `fits` (via the fit stage) and in the card."""
    from benchmark.scaling import crossfit
    from benchmark.stages import fit, report
    from conftest_hub import make_leaderboard

    monkeypatch.setattr(crossfit, "PYTHIA_BENCHMARKS", ("lambada_openai", "piqa", "arc_easy"))
    local_grid(imported)
    params = tmp_path / "params.yaml"
    params.write_text("fit: {bootstrap: 100, downstream_bootstrap: 100, seed: 0}\n")
    monkeypatch.setattr(crossfit, "imported_sources", lambda con: ["pythia"])  # obsscaling: covered by compare
    fit.run(imported, params, tmp_path / "fits.json")
    rows = read(imported, "fits", "pythia")
    by = {(r["law"], r["target"], r["parameter"]): r for r in rows}
    chin = {p: by[("chinchilla", "log_perplexity/lambada_openai", p)] for p in ("E", "A", "B", "alpha", "beta")}
    assert all(r["n_points"] == 112 for r in chin.values())  # 7 sizes x 16 checkpoints from step 1000 on
    assert 0 < chin["E"]["estimate"] < 3 and 0 < chin["alpha"]["ci95_low"] < chin["alpha"]["estimate"] < chin["alpha"]["ci95_high"]
    assert 0 < chin["E"]["extrapolation_rel_err"] < 0.5
    for task in ("lambada_openai", "piqa", "arc_easy"):
        for law in ("sigmoid_compute", "two_step"):
            r = by[(law, f"accuracy/{task}", "k")]
            assert r["extrapolation_rel_err"] is not None and r["n_points"] == 112, (law, task)
        g, s = by[("sigmoid_compute", f"accuracy/{task}", "C_growth")], by[("sigmoid_compute", f"accuracy/{task}", "C_saturation")]
        assert g["estimate"] < by[("sigmoid_compute", f"accuracy/{task}", "C_mid")]["estimate"] < s["estimate"]
    # the report's card and tables show them
    board = tmp_path / "leaderboard"
    make_leaderboard(board)
    report.report(board / "data", tmp_path / "fits.json", board, "org/name", None, imported)
    card = (board / "README.md").read_text()
    assert "## Imported sources" in card and "## Fits across sources" in card
    line = next(x for x in card.splitlines() if x.startswith("| `pythia` | chinchilla | log_perplexity/lambada_openai"))
    assert f"{100 * chin['E']['extrapolation_rel_err']:.2f} %" in line and "| 112 |" in line
    assert sum(x.startswith("| `pythia` | sigmoid_compute | accuracy/") for x in card.splitlines()) == 3
    assert "pythia: log\\_perplexity/lambada\\_openai" in (board / "tables" / "chinchilla_by_source.tex").read_text()
