"""A small Hugging Face Hub emulator for tests: the endpoints ``huggingface_hub`` uses to publish and download.

No installable Hub server supports publishing, so this one implements, on 127.0.0.1 only, what the installed
client (huggingface_hub 2.x, read from its sources: hf_api.py, _commit_api.py, lfs.py, file_download.py) calls:

* ``POST /api/repos/create`` (409 when it exists, which ``exist_ok=True`` accepts); a new repository gets an
  initial commit holding a ``.gitattributes`` that tracks weights files with LFS, as the Hub does;
* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}`` (repo info: ``sha``, ``siblings``);
* ``POST /api/validate-yaml`` (model card check done before committing a README.md);
* ``POST /api/models/{repo}/preupload/{rev}`` (upload mode per file, and the remote ``oid`` of files that exist,
  which is how the client drops unchanged files and skips empty commits);
* ``POST /{repo}.git/info/lfs/objects/batch`` (basic transfer), ``PUT`` to a signed upload URL on a separate
  "CDN" origin, ``POST .../objects/verify``;
* ``POST /api/models/{repo}/commit/{rev}`` (NDJSON: header, file, lfsFile, deletedFile, deletedFolder);
* ``HEAD/GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag``, and for LFS files a 302 to the
  CDN with ``X-Linked-Etag`` / ``X-Linked-Size`` / ``Location``; the CDN serves ``GET``/``HEAD`` with ``Range``.

Writes need ``Authorization: Bearer <token>``; private repositories need it for reads too. The CDN is a second
server (another port, hence another origin), so the client treats it like the real CDN and does not send the
token there. Both servers run in daemon threads and shut themselves down after ``lifetime_s``.

Usage::

    with HubEmulator(token="hf_secret") as hub:
        env = hub.client_env(hf_home)          # HF_ENDPOINT, HF_HOME, HF_TOKEN, HF_HUB_DISABLE_XET=1, ...
        subprocess.run([...], env={**os.environ, **env})
        hub.head("org/name"); hub.commits("org/name"); hub.file_bytes("org/name", "model.safetensors")
        hub.count("GET", "/lfs/", server="cdn")  # downloads of LFS objects

Run the client in a subprocess with that environment: huggingface_hub builds its URL templates from
HF_ENDPOINT at import time.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_THRESHOLD = 10 * 1024 * 1024
GITATTRIBUTES = (
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
    "*.h5 filter=lfs diff=lfs merge=lfs -text\n"
    "*.onnx filter=lfs diff=lfs merge=lfs -text\n"
    "*.pt filter=lfs diff=lfs merge=lfs -text\n"
    "*.pth filter=lfs diff=lfs merge=lfs -text\n"
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.zip filter=lfs diff=lfs merge=lfs -text\n"
)
_REPO = r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)"
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub uses as ETag / oid of a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file stored in git in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class FileRecord:
    """A file at one commit: regular files carry their bytes, LFS files point into the LFS store."""

    size: int
    sha256: str
    lfs: bool
    data: bytes | None = field(default=None, repr=False)

    @property
    def git_oid(self) -> str:
        return git_blob_oid(lfs_pointer(self.sha256, self.size) if self.lfs else self.data or b"")


@dataclass(frozen=True)
class CommitRecord:
    oid: str
    parent: str | None
    message: str
    files: Mapping[str, FileRecord]


@dataclass(frozen=True)
class RequestRecord:
    server: str  # "api" or "cdn"
    method: str
    path: str
    status: int
    authorized: bool  # the request carried the emulator's token


@dataclass
class _Repo:
    repo_id: str
    private: bool
    commits: list[CommitRecord] = field(default_factory=list)
    lfs: dict[str, bytes] = field(default_factory=dict)
    tampered: set[str] = field(default_factory=set)


class _HttpError(Exception):
    def __init__(
        self, status: int, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, dict(headers or {})


class HubEmulator:
    """In-memory Hub (API server + CDN server) on 127.0.0.1; see the module docstring."""

    def __init__(self, token: str = "hf_emulator_token", *, lifetime_s: float = 120.0, hold_s: float = 10.0) -> None:
        self.token = token
        self.lifetime_s = lifetime_s
        self.hold_s = hold_s  # how long a "hang" fault keeps a request unanswered
        self._stopped = threading.Event()
        self._faults: list[list[Any]] = []
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._log: list[RequestRecord] = []
        self._secret = secrets.token_bytes(16)
        self._counter = 0
        self._servers: list[ThreadingHTTPServer] = []
        self.endpoint = ""
        self.cdn_endpoint = ""

    # ----------------------------------------------------------------------------------- lifecycle

    def start(self) -> HubEmulator:
        api = _Server(("127.0.0.1", 0), _ApiHandler, self, "api")
        cdn = _Server(("127.0.0.1", 0), _CdnHandler, self, "cdn")
        self._servers = [api, cdn]
        self.endpoint = f"http://127.0.0.1:{api.server_address[1]}"
        self.cdn_endpoint = f"http://127.0.0.1:{cdn.server_address[1]}"
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        watchdog = threading.Timer(self.lifetime_s, self.stop)
        watchdog.daemon = True
        watchdog.start()
        return self

    def stop(self) -> None:
        self._stopped.set()  # releases hanging requests
        servers, self._servers = self._servers, []
        for server in servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> HubEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client_env(self, hf_home: str | Path) -> dict[str, str]:
        """Environment for a client subprocess talking to this emulator."""
        return {
            "HF_ENDPOINT": self.endpoint,
            "HF_HOME": str(hf_home),
            "HF_TOKEN": self.token,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_ETAG_TIMEOUT": "5",
            "HF_HUB_DOWNLOAD_TIMEOUT": "10",
        }

    # ----------------------------------------------------------------------------------- inspection

    def repo_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._repos)

    def commits(self, repo_id: str) -> list[CommitRecord]:
        """Commits of ``main``, oldest first."""
        with self._lock:
            return list(self._repo(repo_id).commits)

    def is_private(self, repo_id: str) -> bool:
        with self._lock:
            return self._repo(repo_id).private

    def head(self, repo_id: str) -> str:
        with self._lock:
            return self._repo(repo_id).commits[-1].oid

    def file_record(self, repo_id: str, path: str, revision: str = "main") -> FileRecord:
        with self._lock:
            commit = self._commit(self._repo(repo_id), revision)
            if path not in commit.files:
                raise KeyError(f"{repo_id}@{revision} has no {path}")
            return commit.files[path]

    def file_bytes(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        with self._lock:
            record = self.file_record(repo_id, path, revision)
            return self._repo(repo_id).lfs[record.sha256] if record.lfs else record.data or b""

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def count(self, method: str, path_contains: str = "", *, server: str | None = None) -> int:
        """Number of logged requests with this method whose path contains ``path_contains``."""
        return sum(
            1
            for r in self.requests
            if r.method == method and path_contains in r.path and (server is None or r.server == server)
        )

    # ----------------------------------------------------------------------------------- seeding / faults

    def create_repo(self, repo_id: str, *, private: bool = False) -> str:
        """Create a repository directly (no HTTP); returns its initial commit."""
        with self._lock:
            if repo_id in self._repos:
                raise ValueError(f"{repo_id} exists")
            repo = self._repos[repo_id] = _Repo(repo_id, private)
            data = GITATTRIBUTES.encode()
            files = {".gitattributes": FileRecord(len(data), hashlib.sha256(data).hexdigest(), False, data)}
            return self._add_commit(repo, files, "initial commit")

    def commit_files(self, repo_id: str, files: Mapping[str, bytes], message: str = "seed") -> str:
        """Commit files directly (no HTTP), choosing LFS as the Hub would; returns the commit oid."""
        with self._lock:
            repo = self._repo(repo_id)
            current = dict(repo.commits[-1].files)
            for path, data in files.items():
                sha = hashlib.sha256(data).hexdigest()
                if self._is_lfs(repo, path, len(data)):
                    repo.lfs[sha] = data
                    current[path] = FileRecord(len(data), sha, True)
                else:
                    current[path] = FileRecord(len(data), sha, False, data)
            return self._add_commit(repo, current, message)

    def fault(self, method: str, path_contains: str, behaviour: str, times: int = 1000, *, server: str = "api") -> None:
        """Misbehave on the next ``times`` matching requests to ``server`` ("api" or "cdn"): ``hang`` (no answer
        for ``hold_s``, then the connection closes), ``echo`` (a 400 whose message repeats the request's
        Authorization header), ``500``, or ``drip`` (announce 1 MiB, then send one byte every 0.05 s for at
        most ``hold_s``)."""
        if behaviour not in ("hang", "echo", "500", "drip"):
            raise ValueError(f"unknown fault {behaviour!r}")
        with self._lock:
            self._faults.append([server, method, path_contains, behaviour, times])

    def _take_fault(self, server: str, method: str, path: str) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault[:2] == [server, method] and fault[2] in path and fault[4] > 0:
                    fault[4] -= 1
                    return fault[3]
        return None

    def tamper(self, repo_id: str, path: str, revision: str = "main") -> None:
        """Make the CDN serve altered bytes (same length, same headers) for this LFS file."""
        with self._lock:
            record = self.file_record(repo_id, path, revision)
            if not record.lfs:
                raise ValueError(f"{path} is not an LFS file")
            self._repo(repo_id).tampered.add(record.sha256)

    # ----------------------------------------------------------------------------------- internals

    def _repo(self, repo_id: str) -> _Repo:
        try:
            return self._repos[repo_id]
        except KeyError:
            raise _HttpError(404, f"Repository {repo_id} not found", code="RepoNotFound") from None

    def _commit(self, repo: _Repo, revision: str) -> CommitRecord:
        if revision == "main":
            return repo.commits[-1]
        for commit in repo.commits:
            if _COMMIT_RE.fullmatch(revision) and commit.oid == revision:
                return commit
        raise _HttpError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")

    def _add_commit(self, repo: _Repo, files: Mapping[str, FileRecord], message: str) -> str:
        self._counter += 1
        parent = repo.commits[-1].oid if repo.commits else None
        body = json.dumps([parent, message, self._counter, sorted((p, f.git_oid) for p, f in files.items())])
        oid = hashlib.sha1(body.encode()).hexdigest()
        repo.commits.append(CommitRecord(oid, parent, message, dict(files)))
        return oid

    def _is_lfs(self, repo: _Repo, path: str, size: int) -> bool:
        if size >= LFS_THRESHOLD:
            return True
        attributes = repo.commits[-1].files.get(".gitattributes")
        patterns = (
            [line.split()[0] for line in (attributes.data or b"").decode().splitlines() if "filter=lfs" in line]
            if attributes
            else []
        )
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns)

    def _sign(self, oid: str) -> str:
        return hmac.new(self._secret, oid.encode(), hashlib.sha256).hexdigest()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, hub: HubEmulator, name: str) -> None:
        super().__init__(address, handler)
        self.hub = hub
        self.name = name


class _Handler(BaseHTTPRequestHandler):
    """Shared plumbing: body reading (Content-Length or chunked), JSON answers, errors, request log."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean; the hub keeps a log
        pass

    @property
    def hub(self) -> HubEmulator:
        return self.server.hub

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        raise NotImplementedError

    def _dispatch(self, method: str) -> None:
        self._status = 0
        self._body: bytes | None = None  # one handler serves every request of a keep-alive connection
        parts = urlsplit(self.path)
        try:
            fault = self.hub._take_fault(self.server.name, method, parts.path)
            if fault == "hang":
                self.hub._stopped.wait(self.hub.hold_s)
                self.close_connection = True
                return
            if fault == "drip":
                self._drip()
                return
            if fault == "echo":
                raise _HttpError(400, f"Bad request: malformed {self.headers.get('Authorization', 'no credentials')}")
            if fault == "500":
                raise _HttpError(500, "Internal Error")
            self.route(method, unquote(parts.path), parse_qs(parts.query))
        except _HttpError as err:
            self._read_body()
            headers = {**err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = err.message
            self.send_json({"error": err.message}, status=err.status, headers=headers)
        finally:
            self.hub._record(RequestRecord(self.server.name, method, parts.path, self._status, self.authorized))

    def _drip(self) -> None:
        self._status = 200
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        end = time.monotonic() + self.hub.hold_s
        while time.monotonic() < end and not self.hub._stopped.wait(0.05):
            try:
                self.wfile.write(b"\0")
                self.wfile.flush()
            except OSError:  # the client gave up
                return

    @property
    def authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.hub.token}"

    def require_token(self) -> None:
        auth = self.headers.get("Authorization")
        if not self.authorized:
            message = "Invalid credentials in Authorization header" if auth else "Unauthorized: token required"
            raise _HttpError(401, message)

    def _read_body(self) -> bytes:
        if self._body is not None:
            return self._body
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._body = body
        return body

    def json_body(self) -> Any:
        try:
            return json.loads(self._read_body() or b"null")
        except ValueError:
            raise _HttpError(400, "body is not JSON") from None

    def send_bytes(self, status: int, body: bytes, headers: Mapping[str, str], *, head: bool = False) -> None:
        self._status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_json(
        self,
        obj: Any,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self._read_body()
        body = json.dumps(obj).encode()
        self.send_bytes(status, body, {"Content-Type": content_type, **(headers or {})}, head=self.command == "HEAD")

    def send_file(self, data: bytes, headers: Mapping[str, str], *, head: bool) -> None:
        """Serve ``data`` honouring a ``Range: bytes=N-[M]`` request."""
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **headers}
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data):
                self.send_bytes(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"}, head=head)
                return
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            self.send_bytes(206, data[start : end + 1], headers, head=head)
            return
        self.send_bytes(200, data, headers, head=head)


class _ApiHandler(_Handler):
    _ROUTES = [
        ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
        ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
        ("GET", re.compile(rf"^/api/models/{_REPO}(?:/revision/(?P<rev>[^/]+))?$"), "repo_info"),
        ("POST", re.compile(rf"^/api/models/{_REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
        ("POST", re.compile(rf"^/api/models/{_REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
        ("POST", re.compile(rf"^/{_REPO}\.git/info/lfs/objects/batch$"), "lfs_batch"),
        ("POST", re.compile(rf"^/{_REPO}\.git/info/lfs/objects/verify$"), "lfs_verify"),
        ("GET", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
        ("HEAD", re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ]

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        for route_method, pattern, handler in self._ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                with self.hub._lock:
                    getattr(self, handler)(query=query, **match.groupdict())
                return
        raise _HttpError(404, f"{method} {path} is not emulated")

    def readable_repo(self, repo_id: str) -> _Repo:
        repo = self.hub._repo(repo_id)
        if repo.private and not self.authorized:
            raise _HttpError(401, f"Repository {repo_id} not found", code="RepoNotFound")
        return repo

    def writable_repo(self, repo_id: str) -> _Repo:
        self.require_token()
        return self.hub._repo(repo_id)

    def create_repo(self, query: dict[str, list[str]]) -> None:
        self.require_token()
        body = self.json_body() or {}
        if body.get("type", "model") != "model":
            raise _HttpError(400, "the emulator only hosts model repositories")
        repo_id = f"{body.get('organization')}/{body.get('name')}"
        url = f"{self.hub.endpoint}/{repo_id}"
        if repo_id in self.hub._repos:
            self.send_json({"error": "You already created this model repo", "url": url}, status=409)
            return
        self.hub.create_repo(repo_id, private=body.get("visibility") == "private" or bool(body.get("private")))
        self.send_json({"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self, query: dict[str, list[str]]) -> None:
        body = self.json_body() or {}
        content = body.get("content", "")
        warnings = [] if content.startswith("---\n") else [{"message": "empty or missing yaml metadata"}]
        self.send_json({"errors": [], "warnings": warnings})

    def repo_info(self, repo: str, rev: str | None, query: dict[str, list[str]]) -> None:
        record = self.readable_repo(repo)
        commit = self.hub._commit(record, rev or "main")
        blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
        siblings = []
        for path, f in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=f.size, blobId=f.git_oid)
                if f.lfs:
                    sibling["lfs"] = {
                        "size": f.size,
                        "sha256": f.sha256,
                        "pointerSize": len(lfs_pointer(f.sha256, f.size)),
                    }
            siblings.append(sibling)
        self.send_json(
            {
                "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
                "id": repo,
                "modelId": repo,
                "author": repo.split("/")[0],
                "sha": commit.oid,
                "private": record.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            }
        )

    def preupload(self, repo: str, rev: str, query: dict[str, list[str]]) -> None:
        record = self.writable_repo(repo)
        commit = self.hub._commit(record, rev)
        files = []
        for item in (self.json_body() or {}).get("files", []):
            path, size = item["path"], int(item["size"])
            mode = "lfs" if size > 0 and self.hub._is_lfs(record, path, size) else "regular"
            answer: dict[str, Any] = {"path": path, "uploadMode": mode, "shouldIgnore": False}
            existing = commit.files.get(path)
            if existing is not None:
                answer["oid"] = existing.sha256 if existing.lfs else existing.git_oid
            files.append(answer)
        self.send_json({"files": files, "commitOid": commit.oid})

    def lfs_batch(self, repo: str, query: dict[str, list[str]]) -> None:
        record = self.writable_repo(repo)
        body = self.json_body() or {}
        if body.get("operation") != "upload":
            raise _HttpError(400, "only the upload operation is emulated")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in record.lfs:
                answer["actions"] = {
                    "upload": {
                        "href": f"{self.hub.cdn_endpoint}/upload/{repo}/{oid}?size={size}"
                        f"&sig={self.hub._sign(repo + oid)}",
                        "expires_in": 900,
                    },
                    "verify": {
                        "href": f"{self.hub.endpoint}/{repo}.git/info/lfs/objects/verify",
                        "header": {},
                        "expires_in": 900,
                    },
                }
            objects.append(answer)
        self.send_json(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            content_type="application/vnd.git-lfs+json",
        )

    def lfs_verify(self, repo: str, query: dict[str, list[str]]) -> None:
        record = self.writable_repo(repo)
        body = self.json_body() or {}
        data = record.lfs.get(body.get("oid", ""))
        if data is None or len(data) != body.get("size"):
            raise _HttpError(404, f"LFS object {body.get('oid')} was not uploaded")
        self.send_json({"success": True})

    def commit(self, repo: str, rev: str, query: dict[str, list[str]]) -> None:  # noqa: C901  (the Hub's commit API)
        record = self.writable_repo(repo)
        if rev != "main":
            raise _HttpError(400, f"the emulator only commits to main, not {rev!r}")
        if query.get("create_pr"):
            raise _HttpError(400, "pull requests are not emulated")
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HttpError(400, "the first NDJSON line must be the commit header")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and not record.commits[-1].oid.startswith(parent):
            raise _HttpError(412, f"parent commit {parent} is not the head of main")
        files = dict(record.commits[-1].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = value.get("path", "")
            if key == "file":
                data = (
                    base64.b64decode(value["content"])
                    if value.get("encoding") == "base64"
                    else value["content"].encode()
                )
                files[path] = FileRecord(len(data), hashlib.sha256(data).hexdigest(), False, data)
            elif key == "lfsFile":
                data = record.lfs.get(value.get("oid", ""))
                if data is None:
                    raise _HttpError(422, f"LFS object {value.get('oid')} for {path} was never uploaded")
                files[path] = FileRecord(len(data), value["oid"], True)
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise _HttpError(404, f"cannot delete missing file {path}", code="EntryNotFound")
            elif key == "deletedFolder":
                prefix = path.rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(prefix)}
            else:
                raise _HttpError(400, f"unknown commit operation {key!r}")
        summary = header.get("summary") or ""
        if not summary:
            raise _HttpError(400, "commit summary is required")
        oid = self.hub._add_commit(record, files, summary)
        self.send_json(
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.hub.endpoint}/{repo}/commit/{oid}",
                "hookOutput": "",
            }
        )

    def resolve(self, repo: str, rev: str, path: str, query: dict[str, list[str]]) -> None:
        record = self.readable_repo(repo)
        commit = self.hub._commit(record, rev)
        f = commit.files.get(path)
        head = self.command == "HEAD"
        if f is None:
            raise _HttpError(
                404,
                f"{path} does not exist at {commit.oid}",
                code="EntryNotFound",
                headers={"X-Repo-Commit": commit.oid},
            )
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{f.git_oid}"'}
        if f.lfs:
            location = f"{self.hub.cdn_endpoint}/lfs/{repo}/{f.sha256}?sig={self.hub._sign(repo + f.sha256)}"
            headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size), "Location": location})
            self.send_bytes(302, b"", headers, head=head)
            return
        self.send_file(f.data or b"", headers, head=head)


class _CdnHandler(_Handler):
    _UPLOAD = re.compile(rf"^/upload/{_REPO}/(?P<oid>[0-9a-f]{{64}})$")
    _OBJECT = re.compile(rf"^/lfs/{_REPO}/(?P<oid>[0-9a-f]{{64}})$")

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        upload, obj = self._UPLOAD.match(path), self._OBJECT.match(path)
        if method == "PUT" and upload:
            self.upload(upload["repo"], upload["oid"], query)
        elif method in ("GET", "HEAD") and obj:
            self.download(obj["repo"], obj["oid"], query, head=method == "HEAD")
        else:
            raise _HttpError(404, f"{method} {path} is not emulated")

    def check_signature(self, repo: str, oid: str, query: dict[str, list[str]]) -> None:
        if not hmac.compare_digest(query.get("sig", [""])[0], self.hub._sign(repo + oid)):
            raise _HttpError(403, "bad signature")

    def upload(self, repo: str, oid: str, query: dict[str, list[str]]) -> None:
        self.check_signature(repo, oid, query)
        data = self._read_body()
        if hashlib.sha256(data).hexdigest() != oid or len(data) != int(query.get("size", ["-1"])[0]):
            raise _HttpError(400, "uploaded content does not match the announced oid/size")
        with self.hub._lock:
            self.hub._repo(repo).lfs[oid] = data
        self.send_bytes(200, b"", {"ETag": f'"{oid}"'})

    def download(self, repo: str, oid: str, query: dict[str, list[str]], *, head: bool) -> None:
        self.check_signature(repo, oid, query)
        with self.hub._lock:
            record = self.hub._repo(repo)
            data = record.lfs.get(oid)
            tampered = oid in record.tampered
        if data is None:
            raise _HttpError(404, "no such object")
        if tampered:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        self.send_file(data, {"ETag": f'"{oid}"', "Content-Disposition": f'attachment; filename="{oid}"'}, head=head)
