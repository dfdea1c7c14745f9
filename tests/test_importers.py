"""Epoch's Chinchilla CSV becomes runs + metrics rows of the result schema: D = C / (6N), whole, idempotent."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmark.results import db
from benchmark.stages import importers
from conftest_hub import synthetic_rows
from tests_paths import CHINCHILLA_CSV

EPOCH_CSV = CHINCHILLA_CSV


def write_csv(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", "color", "Model Size", "Training FLOP", "hex_color", "loss"])
        for n, c, loss in rows:
            w.writerow([1.0, 2.0, "#fff", n, c, "#fff", loss])
    return path


def read(db_path: Path, table: str, source: str = "chinchilla") -> list[dict]:
    con = db.connect(str(db_path), read_only=True)
    try:
        return db.read_rows(con, table, "source = ?", [source])
    finally:
        con.close()


def test_hand_checkable_points(tmp_path, capsys):
    # 1e9 params on 6e18 FLOP: D = 6e18 / (6 * 1e9) = 1e9 tokens; 70e9 params on 5.88e23 FLOP: D = 1.4e12.
    path = write_csv(tmp_path / "c.csv", [(1e9, 6e18, 2.5), (70e9, 5.88e23, 1.9)])
    db_path = tmp_path / "r.duckdb"
    assert importers.main(["chinchilla", str(path), "--db", str(db_path)]) == 0
    assert "runs 2 rows, metrics 2 rows" in capsys.readouterr().out
    runs = {r["run_id"]: r for r in read(db_path, "runs")}
    assert sorted(runs) == ["chinchilla-1e+09-1000000000-s0", "chinchilla-7e+10-1400000000000-s0"]
    big = runs["chinchilla-7e+10-1400000000000-s0"]
    assert (big["model_size"], big["n_params"], big["tokens"], big["flops"]) == ("chinchilla-7e+10", 70_000_000_000, 1_400_000_000_000, 5.88e23)
    assert (big["seed"], big["status"], big["d_model"], big["lr"], big["git_sha"]) == (0, "completed", None, None, None)
    metrics = {m["run_id"]: m for m in read(db_path, "metrics")}
    assert (metrics[big["run_id"]]["task"], metrics[big["run_id"]]["metric"], metrics[big["run_id"]]["value"]) == ("all", "val_loss", 1.9)


def test_import_is_idempotent_and_leaves_local_rows_alone(tmp_path):
    db_path = tmp_path / "r.duckdb"
    con = db.connect(str(db_path))
    db.replace_rows(con, "runs", synthetic_rows()["runs"])
    con.close()
    path = write_csv(tmp_path / "c.csv", [(1e9, 6e18, 2.5), (2e9, 2.4e19, 2.3)])
    assert importers.main(["chinchilla", str(path), "--db", str(db_path)]) == 0
    first = read(db_path, "runs"), read(db_path, "metrics")
    assert importers.main(["chinchilla", str(path), "--db", str(db_path)]) == 0
    assert (read(db_path, "runs"), read(db_path, "metrics")) == first and len(first[0]) == 2
    assert len(read(db_path, "runs", "local")) == 3


@pytest.mark.skipif(not EPOCH_CSV.is_file(), reason="reference CSV not available")
def test_epoch_csv_is_imported_whole(tmp_path):
    db_path = tmp_path / "r.duckdb"
    assert importers.main(["chinchilla", str(EPOCH_CSV), "--db", str(db_path)]) == 0
    runs, metrics = read(db_path, "runs"), read(db_path, "metrics")
    assert len(runs) == len(metrics) == 245  # the 5 highest-loss points are kept: dropping them is a fit option
    assert max(m["value"] for m in metrics) == pytest.approx(5.005581996196243)
    for r in runs:  # C = 6 N D up to rounding D (and N) to integers
        assert 6 * r["n_params"] * r["tokens"] == pytest.approx(r["flops"], rel=1e-8)


HEADER = "x,y,color,Model Size,Training FLOP,hex_color,loss\n"


@pytest.mark.parametrize("text, words", [
    ("Model Size,FLOPs,loss\n1e9,6e18,2.5\n", "missing column 'Training FLOP'"),
    (HEADER + "1,2,#fff,1e9,-6e18,#fff,2.5\n", "line 2: 'Training FLOP' must be a positive finite number"),
    (HEADER + "1,2,#fff,1e9,6e18,#fff,nan\n", "line 2: 'loss' must be a positive finite number"),
    (HEADER + "1,2,#fff,1e9,6e18,#fff,2.5\n1,2,#fff,1.0001e9,6.0006e18,#fff,2.4\n", "line 3: duplicate point"),
    (HEADER, "no data rows"),
])
def test_bad_csv_gives_one_line_and_writes_nothing(tmp_path, capsys, text, words):
    path = tmp_path / "c.csv"
    path.write_text(text)
    db_path = tmp_path / "r.duckdb"
    assert importers.main(["chinchilla", str(path), "--db", str(db_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ") and words in err, err
    assert not db_path.exists()
