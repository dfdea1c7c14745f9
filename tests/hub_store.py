"""In-memory git-like storage for the test Hub: repos, branches, commits with sha1 ids, LFS objects."""
from __future__ import annotations

import base64
import fnmatch
import hashlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

# What a new repo's first commit holds, like the real Hub: binary data formats go through LFS.
GITATTRIBUTES = "".join(
    f"{p} filter=lfs diff=lfs merge=lfs -text\n"
    for p in ("*.parquet", "*.arrow", "*.duckdb", "*.bin", "*.safetensors", "*.pt", "*.zip", "*.gz")
)
LFS_MIN_SIZE = 10 * 1024 * 1024  # the Hub sends files of 10 MB and more through LFS whatever their type
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)  # commit dates are EPOCH + sequence number: deterministic


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (sha1 over 'blob <size>\\0' + data)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return lfs_pointer(self.sha256, len(self.data))

    @property
    def oid(self) -> str:
        """Git oid: of the content for regular files, of the pointer file for LFS files (as git does)."""
        return git_blob_oid(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        """What `resolve` sends as ETag: the git oid, or the sha256 for LFS files (as the Hub does)."""
        return self.sha256 if self.lfs else self.oid

    def entry(self, path: str) -> dict[str, Any]:
        """Tree / paths-info entry of this file."""
        out: dict[str, Any] = {"type": "file", "oid": self.oid, "size": len(self.data), "path": path}
        if self.lfs:
            out["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(self.pointer)}
        return out


@dataclass(frozen=True)
class Commit:
    id: str
    parent: str | None
    title: str
    message: str
    author: str
    date: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """A branch name or a full commit id."""
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision)

    def history(self, revision: str) -> list[Commit]:
        """Commits reachable from `revision`, newest first."""
        out, commit = [], self.resolve(revision)
        while commit is not None:
            out.append(commit)
            commit = self.commits.get(commit.parent) if commit.parent else None
        return out

    def lfs_patterns(self, revision: str) -> list[str]:
        head = self.resolve(revision)
        blob = head.files.get(".gitattributes") if head else None
        lines = blob.data.decode(errors="replace").splitlines() if blob else []
        return [ln.split()[0] for ln in lines if "filter=lfs" in ln]

    def is_lfs(self, revision: str, path: str, size: int, sample: bytes) -> bool:
        """Upload mode the Hub would answer: LFS for .gitattributes patterns, large or binary files."""
        name = path.rsplit("/", 1)[-1]
        matched = any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in self.lfs_patterns(revision))
        return matched or size >= LFS_MIN_SIZE or b"\0" in sample


class CommitError(Exception):
    """A commit the Hub would refuse; `status` and `code` become the HTTP answer."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


class Store:
    """All repos and LFS objects of one test Hub; every method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self._seq = itertools.count()

    def _now(self) -> str:
        return (EPOCH + timedelta(seconds=next(self._seq))).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        with self.lock:
            return self.repos.get((repo_type, repo_id))

    def create(self, repo_type: str, repo_id: str, private: bool, author: str) -> Repo | None:
        """Create a repo with an initial commit holding .gitattributes; None if it exists."""
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                return None
            repo = Repo(repo_type, repo_id, private, self._now())
            self.repos[(repo_type, repo_id)] = repo
            self._add_commit(repo, "main", None, "initial commit", "", author,
                             {".gitattributes": Blob(GITATTRIBUTES.encode(), lfs=False)})
            return repo

    def delete(self, repo_type: str, repo_id: str) -> bool:
        with self.lock:
            return self.repos.pop((repo_type, repo_id), None) is not None

    def create_branch(self, repo: Repo, branch: str, start: str) -> None:
        with self.lock:
            if branch in repo.branches:
                raise CommitError(409, f"Reference {branch} already exists")
            commit = repo.resolve(start)
            if commit is None:
                raise CommitError(404, f"Invalid rev id: {start}", "RevisionNotFound")
            repo.branches[branch] = commit.id

    def _add_commit(self, repo: Repo, branch: str, parent: str | None, title: str, message: str,
                    author: str, files: dict[str, Blob]) -> Commit:
        date = self._now()
        body = {"parent": parent, "files": {p: b.oid for p, b in sorted(files.items())},
                "title": title, "message": message, "author": author, "date": date}
        cid = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        commit = Commit(cid, parent, title, message, author, date, dict(files))
        repo.commits[cid] = commit
        repo.branches[branch] = cid
        return commit

    def commit(self, repo: Repo, branch: str, header: dict, ops: list[dict], author: str) -> Commit:
        """Apply NDJSON commit operations on top of `branch`.

        Like the real Hub, a commit whose files equal its parent's is still created (an empty commit);
        `huggingface_hub` avoids sending one by skipping files whose preupload oid matches.
        """
        with self.lock:
            if branch not in repo.branches:
                raise CommitError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            head = repo.commits[repo.branches[branch]]
            parent = header.get("parentCommit")
            if parent and parent != head.id:
                raise CommitError(412, f"A commit has happened since. Parent {parent} is not the head {head.id}.")
            files = dict(head.files)
            for op in ops:
                key, value = op.get("key"), op.get("value") or {}
                path = str(value.get("path", "")).strip("/")
                if key == "file":
                    data = value["content"].encode()
                    data = base64.b64decode(data) if value.get("encoding") == "base64" else data
                    files[path] = Blob(data, lfs=False)
                elif key == "lfsFile":
                    data = self.lfs_objects.get(value.get("oid", ""))
                    if data is None:
                        raise CommitError(422, f"LFS object {value.get('oid')} of {path} was never uploaded")
                    files[path] = Blob(data, lfs=True)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise CommitError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    doomed = [p for p in files if p.startswith(path + "/")]
                    if not doomed:
                        raise CommitError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in doomed:
                        del files[p]
                else:
                    raise CommitError(400, f"Unsupported commit operation {key!r}")
            summary = str(header.get("summary") or "").strip()
            if not summary:
                raise CommitError(400, "Commit summary (title) is required")
            return self._add_commit(repo, branch, head.id, summary, header.get("description") or "", author, files)
