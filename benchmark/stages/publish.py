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
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmark.results import provenance, schema
from benchmark.results.io import write_text_atomic
from benchmark.errors import CommandError
from benchmark.results.dataset import check_folder, check_repo_id, check_revision, hub_error, scrub

EXCLUDED_NAMES = {"publish_receipt.json", ".gitkeep"}  # and results.duckdb*, see files_to_upload
TEMP_SUFFIXES = (".tmp", ".wal", ".lock", ".swp", "~", ".pyc")


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
