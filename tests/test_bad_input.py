"""Bad input costs nothing: every corrupt file or value gives one line naming the file (and line), exit 2, no
traceback, and nothing changes on disk. Property-based: mutated params files and CSVs never give a traceback."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from benchmark.sources import csv_points
from benchmark.results import io, schema
from benchmark.config import params
from synthetic_runs import make_grid
from tests_paths import ROOT, TINY

CSV_HEADER = "Model Size,Training FLOP,loss\n"
CSV_ROWS = [f"{n:.6g},{6 * n * d:.6g},{1.8 + 400 / n ** 0.34 + 400 / d ** 0.28:.6f}\n"
            for n in (1e8, 3e8, 1e9, 3e9) for d in (2e9, 6e9, 2e10)]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, env=env, capture_output=True, text=True)


def one_line_error(r: subprocess.CompletedProcess, *must: str) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for m in must:
        assert m in lines[0], (m, lines[0])
    return lines[0]


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("collected")
    make_grid(repo)
    assert cli(repo, "collect").returncode == 0
    return repo


@pytest.fixture
def repo(collected, tmp_path) -> Path:
    import shutil

    dst = tmp_path / "repo"
    shutil.copytree(collected, dst)
    return dst


def _edit_json(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("corrupt, must", [
    (lambda r: (r / "runs/a-3k/train.json").write_text('{"source": "local", "run_id": "a-'),
     ["runs/a-3k/train.json:1:", "not valid JSON"]),
    (lambda r: (r / "runs/b-6k/predictions.parquet").write_bytes(b"PAR1 this is not parquet"),
     ["runs/b-6k/predictions.parquet", "not a readable parquet file"]),
    (lambda r: _edit_json(r / "runs/a-6k/train.json", lambda d: d.update(status="weird")),
     ["runs/a-6k/train.json", "'status'", "not one of completed, diverged"]),
    (lambda r: _edit_json(r / "runs/c-9k/train.json", lambda d: d.update(tokens=-3000)),
     ["runs/c-9k/train.json", "'tokens' is negative"]),
    (lambda r: _edit_json(r / "runs/c-3k/metrics.json", lambda d: d[0].update(value=float("nan"))),
     ["runs/c-3k/metrics.json row 0", "'value' is not finite"]),
    (lambda r: _edit_json(r / "runs/c-3k/metrics.json", lambda d: d[1].update(metric="blue")),
     ["runs/c-3k/metrics.json row 1", "'metric'", "not one of"]),
    (lambda r: _edit_json(r / "runs/a-3k/metrics.json", lambda d: d[0].update(task="poetry")),
     ["runs/a-3k/metrics.json", "'poetry'"]),
    (lambda r: (r / "runs/b-3k/metrics.json").write_bytes(b'[{"a": "\xff\xfe"}]'),
     ["runs/b-3k/metrics.json", "not UTF-8"]),
    (lambda r: ((r / "runs/b-9k/train.json").unlink(), (r / "runs/b-9k/train.json").mkdir()),
     ["runs/b-9k/train.json", "Is a directory"]),
    (lambda r: (r / "params.yaml").write_text((r / "params.yaml").read_text().replace("tokens: 3000", "tokens: [")),
     ["params.yaml:", "not valid YAML"]),
], ids=["truncated-json", "garbage-parquet", "status", "negative-tokens", "nan-metric", "unknown-metric",
        "unknown-task", "non-utf8-json", "unreadable", "yaml-syntax"])
def test_collect_refuses_corrupt_input_in_one_line_and_changes_nothing(repo, corrupt, must):
    before = tree(repo / "leaderboard")
    corrupt(repo)
    one_line_error(cli(repo, "collect"), *must)
    assert tree(repo / "leaderboard") == before


def test_a_permission_error_is_one_line_naming_the_file(repo, monkeypatch, capsys):
    from benchmark import __main__ as cli_main

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.chdir(repo)
    monkeypatch.setattr(io, "read_json", denied)
    before = tree(repo / "leaderboard")
    assert cli_main.main(["collect"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: runs/a-3k/train.json: Permission denied"]
    assert tree(repo / "leaderboard") == before


def _csv(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "points.csv"
    path.write_bytes(data)
    return path


def test_fit_csv_reads_a_bom_and_refuses_non_utf8_with_the_line(tmp_path):
    plain = csv_points.read_points(_csv(tmp_path, (CSV_HEADER + "".join(CSV_ROWS)).encode()), "Model Size", "loss", "Training FLOP")
    bom = csv_points.read_points(_csv(tmp_path, b"\xef\xbb\xbf" + (CSV_HEADER + "".join(CSV_ROWS)).encode()),
                              "Model Size", "loss", "Training FLOP")
    assert bom.n == plain.n == len(CSV_ROWS) and list(bom.y) == list(plain.y)
    latin1 = (CSV_HEADER + "".join(CSV_ROWS[:3]) + "1e9,6e18,1.9 \u00e9\n").encode("latin-1")
    path = _csv(tmp_path, latin1)
    r = cli(tmp_path, "fit-csv", str(path), "--n-col", "Model Size", "--flops-col", "Training FLOP",
            "--loss-col", "loss", "--out", str(tmp_path / "out.json"))
    one_line_error(r, f"{path}:5:", "not UTF-8")
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("k, must", [(-1, "must be >= 0"), (len(CSV_ROWS), "would drop all"), (100, "would drop all")])
def test_fit_csv_drop_highest_loss_is_bounded(tmp_path, k, must):
    path = _csv(tmp_path, (CSV_HEADER + "".join(CSV_ROWS)).encode())
    r = cli(tmp_path, "fit-csv", str(path), "--n-col", "Model Size", "--flops-col", "Training FLOP",
            "--loss-col", "loss", f"--drop-highest-loss={k}", "--out", str(tmp_path / "out.json"))
    one_line_error(r, must)


def test_fit_csv_drops_exactly_the_highest_losses(tmp_path):
    path = _csv(tmp_path, (CSV_HEADER + "".join(CSV_ROWS)).encode())
    all_pts = csv_points.read_points(path, "Model Size", "loss", "Training FLOP")
    kept = csv_points.read_points(path, "Model Size", "loss", "Training FLOP", drop_highest_loss=3)
    assert sorted(kept.y) == sorted(all_pts.y)[:-3]


def test_params_read_numbers_as_dvc_does_and_yaml_errors_give_line_and_column(tmp_path):
    text = TINY.read_text().replace("lr: 1.0e-2", "lr: 1e-2", 1)
    assert "lr: 1e-2" in text
    (tmp_path / "p.yaml").write_text(text)
    from dvc.utils.serialize import load_yaml

    dvc_value = load_yaml(str(tmp_path / "p.yaml"))["model"]["sizes"]["a"]["lr"]
    assert params.load(tmp_path / "p.yaml").model.sizes["a"].lr == dvc_value == 0.01
    (tmp_path / "p.yaml").write_text(text.replace("runs:\n", "runs:\n  a-1k: {size: a, tokens: 1000\n", 1))
    with pytest.raises(params.ParamsError) as e:
        params.load(tmp_path / "p.yaml")
    line = next(i for i, t in enumerate((tmp_path / "p.yaml").read_text().splitlines(), 1) if "a-1k" in t)
    assert str(e.value).startswith(f"{tmp_path / 'p.yaml'}:{line + 1}:"), str(e.value)


def test_schema_checks_values_not_only_types():
    from synthetic_runs import SIZES  # noqa: F401 (a valid row shape)

    row = {c.name: None for c in schema.columns("runs")}
    row.update(source="local", run_id="a", model_size="a", n_params=10, tokens=10, flops=600.0, seed=0,
               status="completed", schema_version=schema.SCHEMA_VERSION)
    schema.validate_record("runs", row)
    for field, value, why in (("status", "weird", "not one of"), ("tokens", -1, "negative"), ("flops", float("inf"), "not finite"),
                              ("run_id", "", "empty"), ("steps", -2, "negative")):
        with pytest.raises(schema.SchemaError, match=why):
            schema.validate_record("runs", {**row, field: value})
    m = {"source": "local", "run_id": "a", "task": "all", "metric": "val_loss", "value": 2.0, "stderr": None, "n": 1,
         "signature": None}
    schema.validate_record("metrics", m)
    for field, value, why in (("metric", "bleu2", "not one of"), ("value", float("nan"), "not finite"), ("n", -1, "negative")):
        with pytest.raises(schema.SchemaError, match=why):
            schema.validate_record("metrics", {**m, field: value})


def test_bad_repo_ids_and_revisions_are_refused_before_any_network(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from benchmark.stages import publish, pull

    def network(*a, **k):
        raise AssertionError("the Hub was contacted")

    for name in ("dataset_info", "whoami", "create_repo", "list_repo_files", "create_commit"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, network)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", network)
    for spec in ("../etc", "org/../x", "org/na..me", "-org/x", "org/x@../../etc", "org/x@-bad", "org/x@a b", "org/x@x.lock"):
        assert pull.main(["--db", str(tmp_path / "r.duckdb"), "--", spec]) == 2, spec
    for args in (["--repo-id", "../etc"], ["--repo-id", "org/x y"], ["--repo-id", "org/x", "--revision", "../main"]):
        assert publish.main([*args, "--folder", str(tmp_path)]) == 2, args
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 11 and all(line.startswith("error: ") for line in err)
    assert pull.parse_spec("org/name@refs/pr/3") == ("org/name", "refs/pr/3")


def test_written_files_follow_the_umask(tmp_path):
    import pyarrow as pa

    from benchmark.results import transaction
    from benchmark.results.parquet import write_parquet_atomic

    old = os.umask(0o022)
    try:
        io.write_json_atomic(tmp_path / "a.json", {"x": 1})
        write_parquet_atomic(pa.table({"x": [1]}), tmp_path / "b.parquet")
        with io.atomic_path(tmp_path / "model") as tmp:  # a folder, as train writes the model
            tmp.mkdir()
            (tmp / "w.bin").write_bytes(b"1")
            os.chmod(tmp / "w.bin", 0o600)  # as safetensors writes it
        with transaction.Transaction(tmp_path) as txn:
            txn.stage(tmp_path / "c.json").write_text("{}")
        for name in ("a.json", "b.parquet", "model/w.bin", "c.json"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
        assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755
        os.umask(0o077)
        io.write_json_atomic(tmp_path / "d.json", {"x": 1})
        assert stat.S_IMODE((tmp_path / "d.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)


VALID_PARAMS = TINY.read_text()
TOKENS = ["", "-1", "0", "1e-2", "1e400", ".nan", "null", "[", "]", "{", "}", ":", "x: y", "'a", "yes", "~", "[1, 2]",
          "{a: 1}", "3.5", "999999999999999999999", "\t", "&a", "*a", "!!python/object:os.system", "- x", "\udcff"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_params_files_never_give_a_traceback(tmp_path, data):
    lines = VALID_PARAMS.splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        kind = data.draw(st.sampled_from(["value", "delete", "duplicate", "indent", "insert"]))
        if kind == "value" and ":" in lines[i]:
            key = lines[i].split(":")[0]
            lines[i] = f"{key}: {data.draw(st.sampled_from(TOKENS) | st.text(max_size=8))}"
        elif kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "indent":
            lines[i] = " " * data.draw(st.integers(0, 5)) + lines[i].lstrip()
        else:
            lines.insert(i, data.draw(st.text(max_size=20)))
        if not lines:
            lines = [""]
    path = tmp_path / "params.yaml"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
    try:
        params.load(path)
    except params.ParamsError as e:
        assert "\n" not in str(e)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_csvs_never_give_a_traceback(tmp_path, data):
    raw = bytearray((CSV_HEADER + "".join(CSV_ROWS)).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw)))
        kind = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        if kind == "replace" and i < len(raw):
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "delete":
            del raw[i:i + data.draw(st.integers(1, 30))]
        else:
            raw[i:i] = data.draw(st.binary(max_size=6) | st.sampled_from([b",", b"\n", b'"', b"nan", b"-1", b"\xef\xbb\xbf"]))
    path = tmp_path / "points.csv"
    path.write_bytes(bytes(raw))
    k = data.draw(st.integers(-2, 15))
    try:
        csv_points.read_points(path, "Model Size", "loss", "Training FLOP", drop_highest_loss=k)
    except csv_points.CsvError as e:
        assert "\n" not in str(e)


def test_the_check_stage_output_is_constant_and_a_bad_value_writes_nothing(tmp_path):
    """The check stage's outputs (the code pins) may not change with the params (else every stage re-runs on any edit)."""
    from benchmark.config import code

    for i, text in enumerate((TINY.read_text(), TINY.read_text().replace("tokens: 3000", "tokens: 3500"))):
        (tmp_path / "p.yaml").write_text(text)
        assert cli(tmp_path, "check", "--params", "p.yaml", "--pins", f"ok{i}").returncode == 0
    for command in code.PIPELINE:
        assert (tmp_path / "ok0" / f"{command}.sha256").read_text() == (tmp_path / "ok1" / f"{command}.sha256").read_text()
    (tmp_path / "p.yaml").write_text(TINY.read_text().replace("fit:\n", "fit:\n  bootstrapp: 3\n"))
    one_line_error(cli(tmp_path, "check", "--params", "p.yaml", "--pins", "bad"), "fit.bootstrapp: unknown key")
    assert not (tmp_path / "bad").exists()
