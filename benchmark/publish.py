"""Stage `publish`: check leaderboard/ (git state, freshness, parquet schemas, card) and upload it as one Hub dataset commit.

Publishing files identical to the branch head makes no commit: huggingface_hub compares each file with the oid
the Hub's preupload answer gives (sha256 for LFS, git sha1 otherwise) and skips the commit when nothing changed;
the receipt then names the existing head with `new_commit: false`. Remote files absent from the folder are deleted
in the same commit, so the dataset mirrors the folder.

Exit status: 0 published (or nothing changed), 2 refused by a local check before any upload, 1 the Hub or the
network failed. Every failure is one line on stderr, and nothing is written (no receipt) when it fails.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmark import provenance, schema
from benchmark.io import write_text_atomic
from benchmark.card import TableSummary
from benchmark.export import CONFIGS

EXCLUDED_NAMES = {"publish_receipt.json", ".gitkeep"}  # and results.duckdb*, see files_to_upload
TEMP_SUFFIXES = (".tmp", ".wal", ".lock", ".swp", "~", ".pyc")


class CommandError(Exception):
    """A refusal or failure reported as one line; `code` is the exit status (2 local check, 1 Hub/network)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


_REVISION = re.compile(r"^(?!-)(?!.*(?:\.\.|//|@\{|\.lock$|/$|\.$))[A-Za-z0-9._/-]{1,255}$")


def check_repo_id(repo_id: str, what: str = "--repo-id") -> str:
    """Refuse a malformed dataset id ('ORG/NAME', as the Hub names repos) before any network."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise CommandError(f"{what} must be ORG/NAME, got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise CommandError(f"{what} {repo_id!r} is not a valid dataset id ({str(e).splitlines()[0]})") from None
    return repo_id


def check_revision(revision: str, what: str = "--revision") -> str:
    """Refuse a revision that is no branch, tag or commit name (git's ref rules: no '..', no leading '-', ...)."""
    if not isinstance(revision, str) or not _REVISION.match(revision):
        raise CommandError(f"{what} {revision!r} is not a valid branch, tag or commit name")
    return revision


def read_checked(path: Path, table: str) -> list[dict[str, Any]]:
    """Rows of a parquet file, after checking it against schema.arrow_schema(table): names, order, types, nulls."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise CommandError(f"{path}: not a readable parquet file ({str(e).splitlines()[0]})") from None
    expected = schema.arrow_schema(table)
    if data.schema.names != expected.names:
        missing = [n for n in expected.names if n not in data.schema.names]
        extra = [n for n in data.schema.names if n not in expected.names]
        what = f"missing {missing}" if missing else f"unexpected {extra}" if extra else "columns in another order"
        raise CommandError(f"{path}: columns do not match schema.py table {table!r} ({what})")
    for field in expected:
        actual = data.schema.field(field.name).type
        if actual != field.type:
            raise CommandError(f"{path}: column {field.name!r} is {actual}, schema.py table {table!r} says {field.type}")
    rows = data.to_pylist()
    for i, row in enumerate(rows):
        try:
            schema.validate_record(table, row, where=f"row {i}")
        except schema.SchemaError as e:
            raise CommandError(f"{path}: {e}") from None
    return rows


def table_summaries(folder: Path) -> list[TableSummary]:
    """Columns and row counts of the exported parquet files, in config order (what card.render takes)."""
    import pyarrow.parquet as pq

    out = []
    for name in CONFIGS:
        path = folder / "data" / f"{name}.parquet"
        out.append(TableSummary(name, tuple(pq.read_schema(path).names), pq.read_metadata(path).num_rows,
                                hashlib.sha256(path.read_bytes()).hexdigest()))
    return out


def git_sha(allow_dirty: bool) -> str:
    """HEAD of the checkout in the working directory, '+dirty' appended when allowed; refuses a dirty tree."""
    state = provenance.git_state(untracked=True)
    if state is None:
        if allow_dirty:
            return "unknown"
        raise CommandError("not inside a git checkout with a commit: cannot record which code produced the "
                           "results (pass --allow-dirty to publish anyway)")
    sha, changed = state
    if changed:
        if not allow_dirty:
            raise CommandError(f"git tree is dirty ({len(changed)} changed paths, e.g. {changed[0].strip()!r}): "
                               "commit first, or pass --allow-dirty")
        return sha + "+dirty"
    return sha


def check_fresh(folder: Path, runs_dir: Path) -> None:
    """Refuse a leaderboard whose parquet files are older than any file under runs/."""
    parquets = sorted((folder / "data").glob("*.parquet"))
    run_files = [p for p in runs_dir.rglob("*") if p.is_file() and p.name != ".gitkeep"] if runs_dir.is_dir() else []
    if not parquets or not run_files:
        return
    oldest = min(parquets, key=lambda p: p.stat().st_mtime)
    newest = max(run_files, key=lambda p: p.stat().st_mtime)
    if newest.stat().st_mtime > oldest.stat().st_mtime:
        raise CommandError(f"leaderboard is stale: {newest} is newer than {oldest}; run `dvc repro` "
                           "(or pass --allow-stale)")


def check_folder(folder: Path) -> dict[str, int]:
    """Every config's parquet file valid, no unknown one, and a card whose YAML lists them and documents each column."""
    from huggingface_hub import DatasetCard

    if not (folder / "data").is_dir():
        raise CommandError(f"{folder}/data: no such folder (run `dvc repro` first)")
    found = {p.stem for p in (folder / "data").glob("*.parquet")}
    if found - set(CONFIGS):
        raise CommandError(f"{folder}/data: unknown table file {sorted(found - set(CONFIGS))[0]}.parquet")
    counts, columns = {}, {}
    for table in CONFIGS:
        path = folder / "data" / f"{table}.parquet"
        if not path.is_file():
            raise CommandError(f"{path}: missing (run `dvc repro` first)")
        rows = read_checked(path, table)
        counts[table], columns[table] = len(rows), schema.column_names(table)
    readme = folder / "README.md"
    if not readme.is_file():
        raise CommandError(f"{readme}: missing dataset card (the report stage writes it)")
    text = readme.read_text(encoding="utf-8")
    try:
        configs = DatasetCard(text).data.to_dict().get("configs") or []
    except Exception as e:  # yaml errors, non-mapping headers: DatasetCard raises several types
        raise CommandError(f"{readme}: invalid YAML header ({str(e).splitlines()[0]})") from None
    listed = {c.get("config_name"): c.get("data_files") for c in configs if isinstance(c, dict)}
    for table in CONFIGS:
        if table not in listed:
            raise CommandError(f"{readme}: YAML `configs` has no entry for {table!r}")
        files = listed[table]
        paths = [files] if isinstance(files, str) else [f.get("path") if isinstance(f, dict) else f for f in files or []]
        if f"data/{table}.parquet" not in paths:
            raise CommandError(f"{readme}: config {table!r} does not point at data/{table}.parquet")
        undocumented = [c for c in columns[table] if f"`{c}`" not in text]
        if undocumented:
            raise CommandError(f"{readme}: column {table}.{undocumented[0]} is not documented (regenerate the card)")
    return counts


def files_to_upload(folder: Path, receipt: Path) -> list[str]:
    """Paths (relative, posix) under folder, without the DuckDB, receipts, hidden and temporary files."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or path.resolve() == receipt.resolve() or path.name in EXCLUDED_NAMES:
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts) or path.name.endswith(TEMP_SUFFIXES):
            continue
        if path.name.startswith("results.duckdb"):  # the database and its .wal: rebuilt from the parquet files
            continue
        out.append(rel.as_posix())
    return out


def manifest(folder: Path, files: list[str]) -> list[dict[str, Any]]:
    """Path, size and sha256 of each file, for the receipt (taken before the upload)."""
    return [{"path": f, "size": (folder / f).stat().st_size,
             "sha256": hashlib.sha256((folder / f).read_bytes()).hexdigest()} for f in files]


def upload(args: argparse.Namespace, folder: Path, files: list[str], sha: str, counts: dict[str, int]) -> dict[str, Any]:
    """Create the repo if needed and send one commit; returns the receipt."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants

    listed = manifest(folder, files)
    api = HfApi()
    user = api.whoami()["name"]
    url = api.create_repo(args.repo_id, repo_type="dataset", private=args.private or None, exist_ok=True)
    if args.revision != constants.DEFAULT_REVISION:
        api.create_branch(args.repo_id, branch=args.revision, repo_type="dataset", exist_ok=True)
    before = api.dataset_info(args.repo_id, revision=args.revision).sha
    remote = set(api.list_repo_files(args.repo_id, repo_type="dataset", revision=args.revision))
    stale = sorted(remote - set(files) - {".gitattributes"})  # the dataset mirrors the folder
    ops: list[Any] = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(folder / f)) for f in files]
    ops += [CommitOperationDelete(path_in_repo=f) for f in stale]
    info = api.create_commit(
        args.repo_id, ops, repo_type="dataset", revision=args.revision, parent_commit=before,
        commit_message=f"Publish leaderboard at git {sha[:12]}{'+dirty' if sha.endswith('+dirty') else ''}",
        commit_description=f"git sha {sha}; schema {schema.SCHEMA_VERSION}; rows: "
        + ", ".join(f"{t} {n}" for t, n in counts.items()),
    )
    return {
        "repo_id": args.repo_id, "repo_type": "dataset", "repo_url": str(url), "revision": args.revision,
        "commit_id": info.oid, "commit_url": info.commit_url, "new_commit": info.oid != before,
        "parent_commit": before, "uploaded_by": user, "git_sha": sha, "schema_version": schema.SCHEMA_VERSION,
        "files": listed, "deleted": stale, "rows": counts, "endpoint": constants.ENDPOINT,
        "published_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def hub_error(e: Exception, endpoint: str, repo: str) -> CommandError:
    """One line for an exception raised while talking to the Hub about `repo` ('ORG/NAME[@revision]')."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    status = getattr(getattr(e, "response", None), "status_code", None)
    detail = getattr(e, "server_message", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
    detail = " ".join(str(detail).split())
    if isinstance(e, RepositoryNotFoundError):
        return CommandError(f"dataset {repo} not found on {endpoint} (or it is private and this token has no access)", 1)
    if isinstance(e, RevisionNotFoundError):
        return CommandError(f"dataset {repo}: revision not found on {endpoint} ({detail})", 1)
    if status == 401:
        return CommandError(f"the Hub at {endpoint} rejected the token (401): check HF_TOKEN or `hf auth login`", 1)
    if isinstance(e, HfHubHTTPError):
        return CommandError(f"the Hub at {endpoint} answered {status} for {repo}: {detail}", 1)
    return CommandError(f"cannot talk to the Hub at {endpoint}: {type(e).__name__}: {detail}", 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    check_repo_id(args.repo_id)  # before anything else, the network included
    check_revision(args.revision)
    from huggingface_hub import constants, get_token
    from huggingface_hub.utils import disable_progress_bars, logging as hf_logging

    disable_progress_bars()
    hf_logging.set_verbosity_error()  # library warnings would add lines to the one-line errors
    folder = Path(args.folder)
    receipt = Path(args.receipt) if args.receipt else folder / "publish_receipt.json"
    sha = git_sha(args.allow_dirty)
    if not args.allow_stale:
        check_fresh(folder, Path(args.runs))
    counts = check_folder(folder)
    files = files_to_upload(folder, receipt)
    if get_token() is None:
        raise CommandError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    try:
        out = upload(args, folder, files, sha, counts)
    except Exception as e:  # any Hub/network failure becomes one line (see hub_error)
        raise hub_error(e, constants.ENDPOINT, f"{args.repo_id}@{args.revision}") from None
    write_text_atomic(receipt, json.dumps(out, indent=2) + "\n")
    return out


def scrub(text: str) -> str:
    """Remove the token from a message, should any library put it there."""
    from huggingface_hub import get_token

    token = os.environ.get("HF_TOKEN") or get_token() or ""
    return text.replace(token, "***") if len(token) >= 8 else text


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark publish", description=__doc__.splitlines()[0])
    ap.add_argument("--repo-id", required=True, help="ORG/NAME of the dataset repo")
    ap.add_argument("--folder", default="leaderboard")
    ap.add_argument("--revision", default="main", help="branch to commit to (created from main if missing)")
    ap.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)")
    ap.add_argument("--allow-dirty", action="store_true", help="publish from a git tree with uncommitted changes")
    ap.add_argument("--allow-stale", action="store_true", help="publish even if runs/ changed after the leaderboard was written")
    ap.add_argument("--runs", default="runs", help="run records folder for the staleness check")
    ap.add_argument("--receipt", help="where to write the receipt JSON (default: <folder>/publish_receipt.json)")
    args = ap.parse_args(argv)
    try:
        out = run(args)
    except CommandError as e:
        print(scrub(f"error: {e}"), file=sys.stderr)
        return e.code
    if out["new_commit"]:
        print(f"published {len(out['files'])} files to {out['repo_url']} ({out['revision']}): {out['commit_url']}")
    else:
        print(f"no changes: {out['repo_id']}@{out['revision']} already holds these files (commit {out['commit_id']})")
    return 0
