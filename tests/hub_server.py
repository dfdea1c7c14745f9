"""A local Hugging Face Hub for tests: the HTTP API that huggingface_hub 2.4 and datasets 5.2 call, on 127.0.0.1.

Two listeners share one in-memory `Store`: the Hub (API, `resolve`, LFS batch) and a storage host on another
port standing in for the LFS/CDN bucket (presigned PUT uploads, redirected downloads). Being another origin, the
client sends no Authorization header there, as with the real CDN; `requests` records what each side received
(never header values). Error answers carry `X-Error-Code` / `X-Error-Message` as the Hub does, so the client
raises its usual `RepositoryNotFoundError`, `RevisionNotFoundError`, `EntryNotFoundError`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping, Sequence
from urllib.parse import parse_qs, quote, unquote, urlsplit

from hub_routes import REPO_TYPES, ApiRoutes, HttpError
from hub_store import Store


@dataclass(frozen=True)
class RequestRecord:
    host: str  # "hub" or "storage"
    method: str
    path: str
    status: int
    has_authorization: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: "HubServer", role: str) -> None:
        self.hub, self.role = hub, role
        super().__init__(("127.0.0.1", 0), _Handler)


class HubServer:
    """Start with `with HubServer(tokens={"hf_xxx": "alice"}) as hub:`; point HF_ENDPOINT at `hub.url`."""

    def __init__(self, tokens: Mapping[str, str], orgs: Mapping[str, Sequence[str]] | None = None,
                 page_size: int = 1000) -> None:
        self.tokens = dict(tokens)  # token -> user name
        self.orgs = {user: list(names) for user, names in (orgs or {}).items()}  # user -> organisations
        self.page_size = page_size  # entries per page of tree / commit listings (the Hub: 1000)
        self.store = Store()
        self.requests: list[RequestRecord] = []
        self._secret = secrets.token_bytes(16)  # signs storage URLs, like presigned S3 links
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> "HubServer":
        for role in ("hub", "storage"):
            server = _Server(self, role)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def storage_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def sign(self, oid: str) -> str:
        return hmac.new(self._secret, oid.encode(), hashlib.sha256).hexdigest()[:32]

    def commits(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> list[str]:
        """Commit ids of `revision`, newest first (for assertions)."""
        repo = self.store.get(repo_type, repo_id)
        return [c.id for c in repo.history(revision)] if repo else []


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer has a Content-Length
    server: _Server
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: the request log is `HubServer.requests`

    # ---- plumbing -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self, method: str) -> None:
        self.status = 500
        body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
        url = urlsplit(self.path)
        parts = url.path.split("/")[1:]
        query = parse_qs(url.query)
        try:
            if self.server.role == "storage":
                self._storage(method, parts, query, body)
            else:
                self._hub(method, parts, query, body)
        except HttpError as e:
            self.send_json(e.status, e.body, {"X-Error-Message": e.message, **({"X-Error-Code": e.code} if e.code else {}), **e.headers})
        except Exception as e:  # a bug in the test server: answer 500 with the reason rather than hang
            self.send_json(500, {"error": f"test hub: {type(e).__name__}: {e}"})
        finally:
            self.server.hub.requests.append(RequestRecord(
                self.server.role, method, url.path, self.status, "Authorization" in self.headers))

    def send(self, status: int, data: bytes, headers: Mapping[str, str] | None = None,
             content_type: str = "application/json") -> None:
        self.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self.send(status, json.dumps(obj).encode(), headers)

    def send_bytes(self, data: bytes, headers: dict[str, str]) -> None:
        """200 with the whole content, or 206 for a single `Range: bytes=a-b` (what resumes and fsspec send)."""
        headers = {"Accept-Ranges": "bytes", **headers}
        rng = self.headers.get("Range")
        if not rng:
            return self.send(200, data, headers, "application/octet-stream")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
        total = len(data)
        if not m or m.groups() == ("", ""):
            raise HttpError(416, f"unsupported range {rng!r}", headers={"Content-Range": f"bytes */{total}"})
        a, b = m.groups()
        start, end = (total - int(b), total - 1) if a == "" else (int(a), min(int(b) if b else total - 1, total - 1))
        start = max(start, 0)
        if start >= total and total > 0 or start > end + 1:
            raise HttpError(416, "range not satisfiable", headers={"Content-Range": f"bytes */{total}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        self.send(206, data[start:end + 1], headers, "application/octet-stream")

    # ---- auth -------------------------------------------------------------------------------
    def user(self) -> str | None:
        """The token's user; None when no token was sent; 401 for an unknown token (as the Hub)."""
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if token not in self.server.hub.tokens:
            raise HttpError(401, "Invalid credentials in Authorization header")
        return self.server.hub.tokens[token]

    def can_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (namespace == user or namespace in self.server.hub.orgs.get(user, []))

    # ---- hub --------------------------------------------------------------------------------
    def _hub(self, method: str, parts: list[str], query: dict, body: bytes) -> None:
        if parts[:1] == ["api"]:
            return ApiRoutes(self).handle(method, parts[1:], query, body)
        if parts[:1] == ["lfs-verify"] and method == "POST":
            info = json.loads(body or b"{}")
            data = self.server.hub.store.lfs_objects.get(unquote(parts[1]) if len(parts) > 1 else "")
            if data is None or len(data) != info.get("size"):
                raise HttpError(404, "LFS object not found or size mismatch")
            return self.send_json(200, {"success": True})
        repo_type = REPO_TYPES.get(parts[0], "model") if parts else "model"
        rest = parts[1:] if parts and parts[0] in ("datasets", "spaces") else parts
        if len(rest) >= 5 and rest[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(repo_type, f"{unquote(rest[0])}/{unquote(rest[1])}", unquote(rest[3]),
                                 "/".join(unquote(p) for p in rest[4:]))
        if len(rest) == 6 and rest[1].endswith(".git") and rest[2:] == ["info", "lfs", "objects", "batch"]:
            return self._lfs_batch(repo_type, f"{unquote(rest[0])}/{unquote(rest[1])[:-4]}", body)
        raise HttpError(404, f"test hub: no route for {method} /{'/'.join(parts)}")

    def find_repo(self, repo_type: str, repo_id: str, write: bool = False):
        """The repo if this request may read (or write) it; RepoNotFound otherwise, as the Hub hides private repos."""
        user = self.user()
        repo = self.server.hub.store.get(repo_type, repo_id)
        namespace = repo_id.split("/")[0]
        if repo is None or (repo.private and not self.can_write(user, namespace)):
            raise HttpError(404 if user else 401, "Repository not found", "RepoNotFound")
        if write and not self.can_write(user, namespace):
            raise HttpError(403 if user else 401, f"You don't have the rights to write to {repo_id}")
        return repo

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self.find_repo(repo_type, repo_id)
        commit = repo.resolve(revision)
        if commit is None:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        blob = commit.files.get(path)
        if blob is None:
            raise HttpError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.id})
        headers = {"X-Repo-Commit": commit.id, "ETag": f'"{blob.etag}"'}
        if not blob.lfs:
            return self.send_bytes(blob.data, headers)
        # LFS: redirect to the storage host; the headers of this answer carry the file's metadata.
        sha = blob.sha256
        headers.update({"ETag": f'"{blob.oid}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(blob.data)),
                        "Location": f"{self.server.hub.storage_url}/lfs/{sha}?sig={self.server.hub.sign(sha)}"})
        self.send(302, b"", headers, "text/plain")

    def _lfs_batch(self, repo_type: str, repo_id: str, body: bytes) -> None:
        req = json.loads(body or b"{}")
        self.find_repo(repo_type, repo_id, write=req.get("operation") == "upload")
        hub = self.server.hub
        objects = []
        for obj in req.get("objects", []):
            oid, size = str(obj.get("oid")), int(obj.get("size", 0))
            out: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if req.get("operation") != "upload":
                out["error"] = {"code": 400, "message": "test hub: only the upload operation is implemented"}
            elif oid not in hub.store.lfs_objects:  # objects already stored get no action: nothing to send
                out["actions"] = {
                    "upload": {"href": f"{hub.storage_url}/lfs/{oid}?size={size}&sig={hub.sign(oid)}", "header": {}},
                    "verify": {"href": f"{hub.url}/lfs-verify/{quote(oid)}", "header": {}},
                }
            objects.append(out)
        self.send(200, json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
                  content_type="application/vnd.git-lfs+json")

    # ---- storage (CDN / S3 stand-in) --------------------------------------------------------
    def _storage(self, method: str, parts: list[str], query: dict, body: bytes) -> None:
        if len(parts) != 2 or parts[0] != "lfs":
            raise HttpError(404, "no such object")
        oid = unquote(parts[1])
        if query.get("sig", [""])[0] != self.server.hub.sign(oid):
            raise HttpError(403, "bad signature")
        store = self.server.hub.store
        if method == "PUT":
            if hashlib.sha256(body).hexdigest() != oid or str(len(body)) != query.get("size", [""])[0]:
                raise HttpError(400, "content does not match the announced sha256/size")
            with store.lock:
                store.lfs_objects[oid] = body
            return self.send(200, b"", {"ETag": f'"{oid}"'}, "text/plain")
        if method in ("GET", "HEAD") and oid in store.lfs_objects:
            return self.send_bytes(store.lfs_objects[oid], {"ETag": f'"{oid}"'})
        raise HttpError(404, "no such object")
