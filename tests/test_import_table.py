"""`import table FILE --map MAP.yaml`: a paper's table without code; bad maps and files are refused in one line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.results import db
from benchmark.stages import importers

ROOT = Path(__file__).resolve().parents[1]
# Hoffmann et al. 2022, Table 1 (parameters, training tokens) and Table 6 (MMLU, 5-shot; MT-NLG has no entry there).
PAPER_CSV = """Model,Size (# Parameters),Training Tokens,MMLU 5-shot,Family
LaMDA,137 Billion,168 Billion,,LaMDA
GPT-3,175,300,43.9,GPT-3
Jurassic,178,300,,Jurassic
Gopher,280,300,60.0,Gopher
MT-NLG 530B,530,270,,Megatron
Chinchilla,70,1400,67.6,Chinchilla
"""
MAP = """source: hoffmann2022-table1
citation: "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, Tables 1 and 6"
url: https://arxiv.org/abs/2203.15556
license: paper data
columns:
  model: Model
  family: Family
  N: Size (# Parameters)
  D: Training Tokens
scale: {N: 1.0e9, D: 1.0e9}
metrics:
  - {column: MMLU 5-shot, task: mmlu, metric: accuracy}
"""


def setup(tmp_path: Path, csv_text: str = PAPER_CSV, map_text: str = MAP) -> tuple[Path, Path, Path]:
    (tmp_path / "t.csv").write_text(csv_text.replace("137 Billion,168 Billion", "137,168"))
    (tmp_path / "m.yaml").write_text(map_text)
    return tmp_path / "t.csv", tmp_path / "m.yaml", tmp_path / "r.duckdb"


def rows(db_path: Path, table: str, source: str = "hoffmann2022-table1") -> list[dict]:
    con = db.connect(str(db_path), read_only=True)
    try:
        return db.read_rows(con, table, "source = ?", [source])
    finally:
        con.close()


def test_a_papers_table_imports_with_a_map(tmp_path, capsys):
    csv_path, map_path, db_path = setup(tmp_path)
    assert importers.main(["table", str(csv_path), "--map", str(map_path), "--db", str(db_path)]) == 0
    assert "runs 6 rows, metrics 3 rows, models 6 rows, sources 1 rows" in capsys.readouterr().out
    runs = {r["run_id"]: r for r in rows(db_path, "runs")}
    chin = runs["Chinchilla"]
    assert (chin["n_params"], chin["tokens"], chin["flops"]) == (70_000_000_000, 1_400_000_000_000, 6.0 * 70e9 * 1400e9)
    metrics = {m["run_id"]: m for m in rows(db_path, "metrics")}
    assert sorted(metrics) == ["Chinchilla", "GPT-3", "Gopher"]  # empty cells: no value published, no row
    assert (metrics["Gopher"]["task"], metrics["Gopher"]["metric"], metrics["Gopher"]["value"]) == ("mmlu", "accuracy", 60.0)
    assert {m["model_size"]: m["family"] for m in rows(db_path, "models")}["MT-NLG 530B"] == "Megatron"
    (src,) = rows(db_path, "sources")
    assert (src["url"], src["n_runs"], src["n_metrics"], src["importer"]) == ("https://arxiv.org/abs/2203.15556", 6, 3, "benchmark.sources.table")


def test_json_lines_and_parquet_give_the_same_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_path, map_path, db_path = setup(tmp_path)
    assert importers.main(["table", str(csv_path), "--map", str(map_path), "--db", str(db_path)]) == 0
    want = rows(db_path, "runs"), rows(db_path, "metrics")
    import csv
    recs = list(csv.DictReader(csv_path.open()))
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    num = [{**r, "Size (# Parameters)": float(r["Size (# Parameters)"]), "Training Tokens": int(r["Training Tokens"]),
            "MMLU 5-shot": float(r["MMLU 5-shot"]) if r["MMLU 5-shot"] else None} for r in recs]
    pq.write_table(pa.Table.from_pylist(num), tmp_path / "t.parquet")
    for name in ("t.jsonl", "t.parquet"):
        other = tmp_path / f"{name}.duckdb"
        assert importers.main(["table", str(tmp_path / name), "--map", str(map_path), "--db", str(other)]) == 0
        got = rows(other, "runs"), rows(other, "metrics")
        strip = lambda ms: [{k: v for k, v in m.items() if k != "signature"} for m in ms]  # noqa: E731
        assert got[0] == want[0] and strip(got[1]) == strip(want[1]), name


@pytest.mark.parametrize("map_edit, csv_edit, words", [
    (("N: Size (# Parameters)", "N: Params"), None, "m.yaml, line 8: columns.N: column 'Params' is not in the file"),
    (("  D: Training Tokens\n", ""), None, "m.yaml, line 5: columns: D or C is required"),
    (("  family: Family\n", "  family: Family\n  flops: F\n"), None, "m.yaml, line 8: columns.flops: unknown key"),
    (("metric: accuracy}", "metric: accuracy, scale: -1}"), None, "m.yaml, line 12: metrics.0.scale: must be a positive number"),
    (("metrics:\n", "metrics: [\n"), None, "m.yaml, line 12, column 3: not valid YAML"),
    (("source: hoffmann2022-table1\n", ""), None, "m.yaml, line 1: source: a source name is required"),
    (None, ("Gopher,280,300,60.0,Gopher", "Gopher,280,300,60.0"), "t.csv, line 5: column 'Family' is missing"),
    (None, ("Gopher,280,300,60.0,Gopher", "Gopher,,300,60.0,Gopher"), "t.csv, line 5: column 'Size (# Parameters)' (N) is empty"),
    (None, ("Gopher,280,300,60.0,Gopher", "Gopher,280,300,sixty,Gopher"), "t.csv, line 5: column 'MMLU 5-shot' is not a number"),
    (None, ("Gopher,280,300,60.0,Gopher", "Gopher,280,-300,60.0,Gopher"), "t.csv, line 5: 'Training Tokens' must be a positive finite number"),
    (None, ("Gopher,280,300,60.0,Gopher", "GPT-3,280,300,60.0,Gopher"), "t.csv, line 5: column 'Model': duplicate model 'GPT-3'"),
])
def test_bad_map_or_file_is_one_line_naming_where_and_writes_nothing(tmp_path, map_edit, csv_edit, words):
    map_text = MAP.replace(*map_edit) if map_edit else MAP
    csv_text = PAPER_CSV.replace(*csv_edit) if csv_edit else PAPER_CSV
    assert map_text != MAP or csv_text != PAPER_CSV
    csv_path, map_path, db_path = setup(tmp_path, csv_text, map_text)
    r = subprocess.run([sys.executable, "-m", "benchmark", "import", "table", str(csv_path), "--map", str(map_path),
                        "--db", str(db_path)], cwd=ROOT, capture_output=True, text=True)
    err = r.stderr.strip()
    assert r.returncode == 2 and "\n" not in err and err.startswith("error: ") and words in err, err
    assert r.stdout == "" and not db_path.exists()
