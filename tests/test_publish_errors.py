"""Each way publish/pull can fail gives one clear line on stderr, exit 1 or 2, and leaves every file as it was."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark.results import schema
from conftest_hub import REPO, TOKEN, hub, hub_env, make_project, online, run_cli, synthetic_rows, tree_digest  # noqa: F401

PUBLISH = ["publish", "--repo-id", REPO]


def assert_one_line_failure(result, code: int, *words: str) -> None:
    err = result.stderr.strip()
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "\n" not in err and err.startswith("error: ") and "Traceback" not in err, err
    assert all(w in err for w in words), err
    assert TOKEN not in result.stdout + result.stderr


def corrupt(path: Path) -> None:
    path.write_bytes(b"PAR1 this is not parquet PAR1")


def wrong_type(path: Path) -> None:  # n_params written as text
    rows = [{**r, "n_params": str(r["n_params"])} for r in synthetic_rows()["runs"]]
    fields = [pa.field("n_params", pa.string()) if f.name == "n_params" else f for f in schema.arrow_schema("runs")]
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(fields)), path)


def missing_column(path: Path) -> None:
    pq.write_table(pq.read_table(path).drop_columns(["tokens"]), path)


def null_in_required(path: Path) -> None:  # right types, but a null where schema.py forbids one
    table = pq.read_table(path)
    i = table.schema.get_field_index("tokens")
    nulls = pa.array([None] * table.num_rows, pa.int64())
    pq.write_table(table.set_column(i, pa.field("tokens", pa.int64(), nullable=True), nulls), path)


@pytest.mark.parametrize("damage, words", [
    (corrupt, ["runs.parquet", "not a readable parquet file"]),
    (wrong_type, ["runs.parquet", "'n_params' is string", "int64"]),
    (missing_column, ["runs.parquet", "missing ['tokens']"]),
    (null_in_required, ["runs.parquet", "'tokens' is null"]),
])
def test_invalid_parquet_is_refused_before_upload(tmp_path, hub, damage, words):
    proj = make_project(tmp_path / "proj")
    damage(proj / "leaderboard" / "data" / "runs.parquet")
    before = tree_digest(tmp_path)
    result = run_cli(PUBLISH, hub_env(hub, tmp_path), proj)
    assert_one_line_failure(result, 2, *words)
    assert tree_digest(tmp_path) == before and hub.requests == []


@pytest.mark.parametrize("case, code, words", [
    ("dirty", 2, ["git tree is dirty", "params.yaml", "--allow-dirty"]),
    ("stale", 2, ["leaderboard is stale", "record.json", "--allow-stale"]),
    ("bad_card", 2, ["README.md", "invalid YAML"]),
    ("no_token", 2, ["no Hugging Face token", "HF_TOKEN"]),
    ("wrong_token", 1, ["rejected the token", "401"]),
    ("no_network", 1, ["cannot talk to the Hub", "ConnectError"]),
])
def test_publish_refusals(tmp_path, hub, case, code, words):
    proj = make_project(tmp_path / "proj")
    env = hub_env(hub, tmp_path)
    if case == "dirty":
        (proj / "params.yaml").write_text("grid: large\n")
    elif case == "stale":
        record = proj / "runs" / "xs-20000000-s0" / "record.json"
        os.utime(record, (time.time() + 60, time.time() + 60))
    elif case == "bad_card":
        readme = proj / "leaderboard" / "README.md"
        readme.write_text(readme.read_text().replace("configs:", "configs: [unclosed", 1))
    elif case == "no_token":
        env = hub_env(hub, tmp_path, token=None)
    elif case == "wrong_token":
        env = hub_env(hub, tmp_path, token="hf_NotTheRightToken_0000000000")
    elif case == "no_network":
        env = hub_env(None, tmp_path)  # endpoint on a closed local port
    before = tree_digest(tmp_path)
    result = run_cli(PUBLISH, env, proj)
    assert_one_line_failure(result, code, *words)
    assert tree_digest(tmp_path) == before
    assert hub.store.repos == {}
    if code == 2:
        assert hub.requests == []  # refused before contacting the Hub


def test_allow_flags_override_dirty_and_stale(tmp_path, hub):
    proj = make_project(tmp_path / "proj")
    (proj / "params.yaml").write_text("grid: large\n")
    os.utime(proj / "runs" / "xs-20000000-s0" / "record.json", (time.time() + 60, time.time() + 60))
    result = run_cli(PUBLISH + ["--allow-dirty", "--allow-stale", "--private"], hub_env(hub, tmp_path), proj)
    assert result.returncode == 0, result.stderr
    repo = hub.store.get("dataset", REPO)
    assert repo.private and repo.resolve("main").title.endswith("+dirty")


@pytest.mark.parametrize("spec, words", [
    ("bench-org/no-such-dataset", ["dataset bench-org/no-such-dataset@main not found"]),
    ("not-a-repo-id", ["expected ORG/NAME[@revision]"]),
])
def test_pull_failures_leave_the_database_alone(tmp_path, hub, spec, words):
    proj = make_project(tmp_path / "proj")
    before = tree_digest(tmp_path)
    result = run_cli(["pull", spec, "--db", "leaderboard/results.duckdb"], hub_env(hub, tmp_path), proj)
    assert_one_line_failure(result, 1 if "/" in spec else 2, *words)
    assert tree_digest(tmp_path) == before


def test_pull_refuses_a_dataset_of_another_format(tmp_path, hub, online):
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=hub.url, token=TOKEN)
    api.create_repo("bench-org/other", repo_type="dataset")
    api.create_commit("bench-org/other", [CommitOperationAdd("data/runs.csv", b"a,b\n1,2\n")],
                      commit_message="csv", repo_type="dataset")
    proj = make_project(tmp_path / "proj")
    before = tree_digest(tmp_path)
    result = run_cli(["pull", "bench-org/other", "--db", "leaderboard/results.duckdb"], hub_env(hub, tmp_path), proj)
    assert_one_line_failure(result, 2, "no data/runs.parquet")
    assert tree_digest(tmp_path) == before
