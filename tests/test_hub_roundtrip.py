"""Publish to the local test Hub, read back with datasets and `pull`: same rows as the local DuckDB; no token anywhere."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmark.results import db, schema
from benchmark.results.parquet import CONFIGS
from conftest_hub import ORG, REPO, TOKEN, USER, files_containing, hub_env, make_project, online, run_cli, run_python  # noqa: F401
from hub_server import HubServer

LOAD_ALL = """
import json, sys, datasets
datasets.disable_progress_bars()
out = {c: datasets.load_dataset(sys.argv[1], c, split="train").to_list() for c in sys.argv[2:]}
print(json.dumps(out))
"""


def local_rows(db_path: Path, table: str, source: str = "local") -> list[dict]:
    con = db.connect(str(db_path), read_only=True)
    try:
        return db.read_rows(con, table) if table == "literature" else db.read_rows(con, table, "source = ?", [source])
    finally:
        con.close()


def dump(db_path: Path) -> dict[str, list[tuple]]:
    con = db.connect(str(db_path), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall())) for t in schema.TABLES}
    finally:
        con.close()


def canonical(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One project, published once to a Hub that lives for the module; every process output is kept."""
    tmp = tmp_path_factory.mktemp("roundtrip")
    with HubServer(tokens={TOKEN: USER}, orgs={USER: [ORG]}, page_size=2) as hub:  # page 2: pagination exercised
        proj = make_project(tmp / "proj")
        env = hub_env(hub, tmp)
        first = run_cli(["publish", "--repo-id", REPO], env, proj)
        yield SimpleNamespace(hub=hub, tmp=tmp, proj=proj, env=env, outputs=[first], first=first,
                              db=proj / "leaderboard" / "results.duckdb")


def test_publish_makes_one_commit_with_every_file(published):
    p = published
    assert p.first.returncode == 0, p.first.stderr
    receipt = json.loads((p.proj / "leaderboard" / "publish_receipt.json").read_text())
    commits = p.hub.commits(REPO)
    assert len(commits) == 2 and receipt["commit_id"] == commits[0] and receipt["new_commit"]  # initial + publish
    repo = p.hub.store.get("dataset", REPO)
    files = repo.resolve("main").files
    expected = sorted(["README.md"] + [f"data/{c}.parquet" for c in CONFIGS])
    assert sorted(f for f in files if f != ".gitattributes") == expected == sorted(f["path"] for f in receipt["files"])
    for f in expected:  # byte-identical, parquet through LFS, nothing else (no DuckDB, no receipt)
        assert files[f].data == (p.proj / "leaderboard" / f).read_bytes()
        assert files[f].lfs == f.endswith(".parquet")
    head = repo.resolve("main")
    assert head.title == f"Publish leaderboard at git {receipt['git_sha'][:12]}" and len(receipt["git_sha"]) == 40
    assert all(not r.has_authorization for r in p.hub.requests if r.host == "storage")


def test_load_dataset_returns_the_local_rows(published):
    p = published
    env = {**p.env, "HF_HOME": str(p.tmp / "reader"), "HF_HUB_CACHE": str(p.tmp / "reader" / "hub"),
           "HF_DATASETS_CACHE": str(p.tmp / "reader" / "datasets")}
    del env["HF_TOKEN"]  # a public dataset reads without a token
    r = run_python(LOAD_ALL, env, p.tmp, [REPO, "runs", "metrics", "literature"])
    p.outputs.append(r)
    assert r.returncode == 0, r.stderr[-3000:]
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    for table in ("runs", "metrics", "literature"):
        expected = local_rows(p.db, table)
        assert len(loaded[table]) == len(expected) > 0
        assert canonical(loaded[table]) == canonical(expected)


def test_publish_twice_makes_no_new_commit_until_a_file_changes(published):
    p = published
    before = p.hub.commits(REPO)
    again = run_cli(["publish", "--repo-id", REPO], p.env, p.proj)
    p.outputs.append(again)
    assert again.returncode == 0, again.stderr
    assert "no changes" in again.stdout
    assert p.hub.commits(REPO) == before  # the client skips unchanged files (preupload oids) and sends no commit
    receipt = json.loads((p.proj / "leaderboard" / "publish_receipt.json").read_text())
    assert receipt["commit_id"] == before[0] and receipt["new_commit"] is False

    readme = p.proj / "leaderboard" / "README.md"
    readme.write_text(readme.read_text() + "\nErratum: none.\n")
    changed = run_cli(["publish", "--repo-id", REPO], p.env, p.proj)
    p.outputs.append(changed)
    assert changed.returncode == 0, changed.stderr
    after = p.hub.commits(REPO)
    assert len(after) == len(before) + 1 and after[1] == before[0]
    repo = p.hub.store.get("dataset", REPO)
    new, old = repo.commits[after[0]].files, repo.commits[before[0]].files
    assert [f for f in new if new[f] != old.get(f)] == ["README.md"]


def test_pull_loads_the_same_rows_and_is_idempotent(published):
    p = published
    local_before = {t: local_rows(p.db, t) for t in CONFIGS}
    first = run_cli(["pull", REPO, "--db", str(p.db)], p.env, p.proj)
    p.outputs.append(first)
    assert first.returncode == 0, first.stderr
    head = p.hub.commits(REPO)[0]
    source = f"hub:{REPO}@{head[:12]}"
    assert repr(source) in first.stdout
    for table in ("runs", "metrics", "fits", "predictions"):
        pulled = local_rows(p.db, table, source)
        assert len(pulled) == len(local_before[table]) > 0
        assert canonical([{**r, "source": "local"} for r in pulled]) == canonical(local_before[table])
        assert local_rows(p.db, table) == local_before[table]  # local rows untouched
    assert local_rows(p.db, "literature") == local_before["literature"]  # merged, not duplicated
    snapshot = dump(p.db)

    second = run_cli(["pull", f"{REPO}@{head}", "--db", str(p.db)], p.env, p.proj)  # same revision by its sha
    p.outputs.append(second)
    assert second.returncode == 0, second.stderr
    assert dump(p.db) == snapshot


def test_hub_protocol_details(published, online):
    """Pagination, token check, create conflicts, private repos and the Hub's empty-commit behaviour."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    hub = published.hub
    api = HfApi(endpoint=hub.url, token=TOKEN)
    assert api.whoami()["name"] == USER
    with pytest.raises(HfHubHTTPError) as e:
        HfApi(endpoint=hub.url, token="hf_wrong").whoami()
    assert e.value.response.status_code == 401
    commits = api.list_repo_commits(REPO, repo_type="dataset")  # 3+ commits over pages of 2
    assert [c.commit_id for c in commits] == hub.commits(REPO)
    tree = [f.path for f in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)]
    assert sorted(tree) == sorted([".gitattributes", "README.md", "data"] + [f"data/{c}.parquet" for c in CONFIGS])
    with pytest.raises(HfHubHTTPError) as e:
        api.create_repo(REPO, repo_type="dataset")
    assert e.value.response.status_code == 409
    api.create_repo(f"{ORG}/secret", repo_type="dataset", private=True)
    api.create_commit(f"{ORG}/secret", [CommitOperationAdd("a.txt", b"x")], commit_message="a", repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).dataset_info(f"{ORG}/secret")
    # An empty commit sent directly is created, as on the real Hub (the client itself avoids sending one).
    before = hub.commits(f"{ORG}/secret")
    body = json.dumps({"key": "header", "value": {"summary": "empty"}}).encode() + b"\n"
    req = urllib.request.Request(f"{hub.url}/api/datasets/{ORG}/secret/commit/main", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req) as r:
        assert r.status == 200 and hub.commits(f"{ORG}/secret") == [json.load(r)["commitOid"], *before]


def test_token_never_appears_in_output_or_on_disk(published):
    p = published
    assert p.outputs and all(TOKEN not in o.stdout + o.stderr for o in p.outputs)
    assert files_containing(p.tmp, TOKEN) == []
    assert any(r.has_authorization for r in p.hub.requests if r.host == "hub")  # the token was really sent
