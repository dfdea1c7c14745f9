"""The `/api/...` routes of the test Hub: whoami, repos, info, refs, branches, preupload, commit, commits, tree, paths-info."""
from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
from typing import Any, Mapping
from urllib.parse import parse_qs, unquote, urlencode

import yaml

from hub_store import Blob, Commit, CommitError, Repo

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


class HttpError(Exception):
    """An error answer: status, message (also sent as X-Error-Message), Hub error code, extra headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None,
                 body: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, dict(headers or {})
        self.body = {"error": message, **(body or {})}


def card_metadata(readme: bytes) -> dict | None:
    """The YAML header of a README.md, or None (what the Hub serves as `cardData`)."""
    text = readme.decode(errors="replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    data = yaml.safe_load(text[3:end])
    return data if isinstance(data, dict) else None


def folder_entries(files: Mapping[str, Blob]) -> dict[str, str]:
    """Every folder of a file set -> a tree oid (sha1 over the sorted entries below it)."""
    folders: dict[str, list[str]] = {}
    for path, blob in sorted(files.items()):
        parts = path.split("/")
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]), []).append(f"{path} {blob.oid}")
    return {f: hashlib.sha1("\n".join(v).encode()).hexdigest() for f, v in folders.items()}


class ApiRoutes:
    """Handles one `/api/...` request for a `_Handler` (see hub_server)."""

    def __init__(self, handler: Any) -> None:
        self.h = handler
        self.hub = handler.server.hub

    def handle(self, method: str, parts: list[str], query: dict, body: bytes) -> None:
        if parts == ["whoami-v2"] and method == "GET":
            return self.whoami()
        if parts in (["repos", "create"], ["repos", "delete"]) and method in ("POST", "DELETE"):
            return self.create_or_delete(parts[1], json.loads(body or b"{}"))
        if parts == ["validate-yaml"] and method == "POST":
            return self.validate_yaml(json.loads(body or b"{}"))
        if len(parts) >= 3 and parts[0] in REPO_TYPES:
            repo_type, repo_id = REPO_TYPES[parts[0]], f"{unquote(parts[1])}/{unquote(parts[2])}"
            tail = parts[3:]
            name = tail[0] if tail else ""
            arg = unquote(tail[1]) if len(tail) > 1 else "main"
            if method == "GET" and (not tail or (name == "revision" and len(tail) == 2)):
                return self.info(repo_type, repo_id, arg if tail else "main", query)
            if method == "GET" and tail == ["refs"]:
                return self.refs(repo_type, repo_id)
            if method == "POST" and name == "branch" and len(tail) == 2:
                return self.branch(repo_type, repo_id, arg, json.loads(body or b"{}"))
            if method == "POST" and name == "preupload" and len(tail) == 2:
                return self.preupload(repo_type, repo_id, arg, json.loads(body or b"{}"))
            if method == "POST" and name == "commit" and len(tail) == 2:
                return self.commit(repo_type, repo_id, arg, body, query)
            if method == "GET" and name == "commits" and len(tail) == 2:
                return self.list_commits(repo_type, repo_id, arg, query)
            if method == "GET" and name == "tree" and len(tail) >= 2:
                path = "/".join(unquote(p) for p in tail[2:]).strip("/")
                return self.tree(repo_type, repo_id, arg, path, query)
            if method == "POST" and name == "paths-info" and len(tail) == 2:
                return self.paths_info(repo_type, repo_id, arg, parse_form(body))
        raise HttpError(404, f"test hub: no route for {method} /api/{'/'.join(parts)}")

    # ---- account and repos ------------------------------------------------------------------
    def whoami(self) -> None:
        user = self.h.user()
        if user is None:
            raise HttpError(401, "Invalid credentials in Authorization header")
        self.h.send_json(200, {
            "type": "user", "id": hashlib.sha1(user.encode()).hexdigest()[:24], "name": user, "fullname": user,
            "orgs": [{"type": "org", "name": o} for o in self.hub.orgs.get(user, [])],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
        })

    def create_or_delete(self, action: str, req: dict) -> None:
        user = self.h.user()
        if user is None:
            raise HttpError(401, "You must be authenticated to manage repos")
        repo_type = req.get("type") or "model"
        namespace = req.get("organization") or user
        repo_id = f"{namespace}/{req.get('name')}"
        if not self.h.can_write(user, namespace):
            raise HttpError(403, f"You don't have the rights to create a repo under {namespace}")
        url = f"{self.hub.url}/{URL_PREFIX.get(repo_type, '')}{repo_id}"
        if action == "delete":
            if not self.hub.store.delete(repo_type, repo_id):
                raise HttpError(404, "Repository not found", "RepoNotFound")
            return self.h.send_json(200, {})
        private = req.get("visibility") == "private" or bool(req.get("private"))
        if self.hub.store.create(repo_type, repo_id, private, user) is None:
            raise HttpError(409, f"You already created this {repo_type} repo", body={"url": url})
        self.h.send_json(200, {"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self, req: dict) -> None:
        try:
            card_metadata(str(req.get("content", "")).encode())
        except Exception as e:  # yaml.YAMLError and friends: what the Hub reports as a 400
            message = f"Invalid YAML in README.md: {str(e).splitlines()[0]}"
            self.h.send_json(400, {"errors": [{"message": message}]}, {"X-Error-Message": message})
            return
        self.h.send_json(200, {"errors": [], "warnings": []})

    def info(self, repo_type: str, repo_id: str, revision: str, query: dict) -> None:
        repo = self.h.find_repo(repo_type, repo_id)
        commit = self.resolve(repo, revision)
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib.update(size=len(blob.data), blobId=blob.oid)
                if blob.lfs:
                    sib["lfs"] = {"size": len(blob.data), "sha256": blob.sha256, "pointerSize": len(blob.pointer)}
            siblings.append(sib)
        readme = commit.files.get("README.md")
        self.h.send_json(200, {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "author": repo_id.split("/")[0],
            "sha": commit.id, "private": repo.private, "gated": False, "disabled": False, "downloads": 0,
            "likes": 0, "tags": [], "createdAt": repo.created_at, "lastModified": commit.date,
            "siblings": siblings, "cardData": card_metadata(readme.data) if readme else None,
            "usedStorage": sum(len(b.data) for b in commit.files.values()),
        })

    def refs(self, repo_type: str, repo_id: str) -> None:
        repo = self.h.find_repo(repo_type, repo_id)
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in sorted(repo.branches.items())]
        self.h.send_json(200, {"branches": branches, "converts": [], "tags": []})

    def branch(self, repo_type: str, repo_id: str, branch: str, req: dict) -> None:
        repo = self.h.find_repo(repo_type, repo_id, write=True)
        try:
            self.hub.store.create_branch(repo, branch, req.get("startingPoint") or "main")
        except CommitError as e:
            raise HttpError(e.status, str(e), e.code) from None
        self.h.send_json(200, {})

    # ---- uploads ----------------------------------------------------------------------------
    def preupload(self, repo_type: str, repo_id: str, revision: str, req: dict) -> None:
        repo = self.h.find_repo(repo_type, repo_id, write=True)
        commit = self.resolve(repo, revision)
        ignore = [ln.strip() for ln in str(req.get("gitIgnore") or "").splitlines() if ln.strip() and not ln.startswith("#")]
        out = []
        for f in req.get("files", []):
            path, sample = f["path"], base64.b64decode(f.get("sample", ""))
            lfs = repo.is_lfs(revision, path, int(f.get("size", 0)), sample)
            remote = commit.files.get(path)
            # The oid the client compares with its own to skip unchanged files: sha256 for LFS, git sha1 otherwise.
            oid = None if remote is None else (remote.sha256 if lfs else remote.oid)
            ignored = any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in ignore)
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": ignored, "oid": oid})
        self.h.send_json(200, {"files": out, "commitOid": commit.id})

    def commit(self, repo_type: str, repo_id: str, revision: str, body: bytes, query: dict) -> None:
        repo = self.h.find_repo(repo_type, repo_id, write=True)
        if query.get("create_pr", ["0"])[0] in ("1", "true"):
            raise HttpError(400, "test hub: pull requests are not implemented")
        lines = [json.loads(ln) for ln in body.decode().splitlines() if ln.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HttpError(400, "The first line of a commit must be its header")
        try:
            commit = self.hub.store.commit(repo, revision, lines[0]["value"], lines[1:], self.h.user())
        except CommitError as e:
            raise HttpError(e.status, str(e), e.code) from None
        prefix = URL_PREFIX[repo_type]
        self.h.send_json(200, {"success": True, "commitOid": commit.id, "pullRequestUrl": None,
                               "commitUrl": f"{self.hub.url}/{prefix}{repo_id}/commit/{commit.id}"})

    # ---- listings ---------------------------------------------------------------------------
    def list_commits(self, repo_type: str, repo_id: str, revision: str, query: dict) -> None:
        repo = self.h.find_repo(repo_type, repo_id)
        history = [self.commit_json(c) for c in self.history(repo, revision)]
        self.paginate(history, query, "p")

    def tree(self, repo_type: str, repo_id: str, revision: str, path: str, query: dict) -> None:
        repo = self.h.find_repo(repo_type, repo_id)
        commit = self.resolve(repo, revision)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = query.get("expand", ["false"])[0].lower() in ("1", "true")
        folders = folder_entries(commit.files)
        if path and path not in folders:
            raise HttpError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.id})
        base = f"{path}/" if path else ""
        names = [p for p in list(commit.files) + list(folders) if p.startswith(base)]
        if not recursive:
            names = [p for p in names if "/" not in p[len(base):]]
        entries = [self.entry(repo, commit, p, folders, expand) for p in sorted(names)]
        self.paginate(entries, query, "cursor", 50 if expand else None)

    def paths_info(self, repo_type: str, repo_id: str, revision: str, form: dict) -> None:
        repo = self.h.find_repo(repo_type, repo_id)
        commit = self.resolve(repo, revision)
        expand = form.get("expand", ["false"])[0].lower() in ("1", "true")
        folders = folder_entries(commit.files)
        paths = [p.strip("/") for p in form.get("paths", [])]
        found = [p for p in paths if p in commit.files or p in folders]
        self.h.send_json(200, [self.entry(repo, commit, p, folders, expand) for p in found])

    # ---- helpers ----------------------------------------------------------------------------
    def resolve(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def history(self, repo: Repo, revision: str) -> list[Commit]:
        self.resolve(repo, revision)
        return repo.history(revision)

    @staticmethod
    def commit_json(c: Commit) -> dict[str, Any]:
        return {"id": c.id, "title": c.title, "message": c.message, "date": c.date, "authors": [{"user": c.author}]}

    def entry(self, repo: Repo, commit: Commit, path: str, folders: dict[str, str], expand: bool) -> dict[str, Any]:
        out = commit.files[path].entry(path) if path in commit.files else {"type": "directory", "oid": folders[path], "path": path}
        if expand:  # last commit touching the entry: walk back while its oid stays the same
            def oid_at(c: Commit) -> str | None:
                return c.files[path].oid if path in c.files else folder_entries(c.files).get(path)

            last = commit
            for older in repo.history(commit.id)[1:]:
                if oid_at(older) != out["oid"]:
                    break
                last = older
            out["lastCommit"] = {"id": last.id, "title": last.title, "date": last.date}
        return out

    def paginate(self, items: list, query: dict, param: str, page_size: int | None = None) -> None:
        """One page and a GitHub-style `Link: <...>; rel="next"` header, as huggingface_hub follows it."""
        size = min(page_size or self.hub.page_size, self.hub.page_size)
        start = int(query.get(param, ["0"])[0] or 0) * (size if param == "p" else 1)
        page = items[start:start + size]
        headers = {}
        if start + size < len(items):
            nxt = {k: v[0] for k, v in query.items()}
            nxt[param] = str(start // size + 1 if param == "p" else start + size)
            headers["Link"] = f'<{self.hub.url}{self.h.path.split("?")[0]}?{urlencode(nxt)}>; rel="next"'
        self.h.send_json(200, page, headers)


def parse_form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode(), keep_blank_values=True)
