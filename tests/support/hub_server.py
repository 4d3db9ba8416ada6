"""Loopback HTTP servers for the hub tests, one implementation: a file server and a Hugging Face Hub emulator.

:class:`LoopbackServer` listens on 127.0.0.1 only, in daemon threads, logs every request, and shuts itself down
after ``lifetime_s``; every loop is bounded (by the body, ``hold_s`` or the lifetime). Its handler serves bytes
honouring ``Range: bytes=N-[M]`` and plays the scripted faults that both servers share:

* ``ok``        serve the file (206 + Content-Range for a Range request)
* ``no_range``  ignore Range and answer 200 with the whole file
* ``cut:N``     announce the full length, send N body bytes, then drop the connection
* ``short:N``   serve only the first N bytes as if that were the whole file (consistent headers)
* ``corrupt``   same length, one byte flipped
* ``500`` / ``404``  answer with that status (JSON body, ``X-Error-Message``)
* ``reset``     close the connection with a TCP reset before any answer
* ``hang``      no answer for ``hold_s``, then the connection closes
* ``long:N``    the file plus N extra bytes, no Content-Length (the body ends when the connection closes)
* ``huge``      announce a Content-Length of 1 TB, then send the file
* ``gzip``      ``Content-Encoding: gzip`` with a gzip bomb (64 MiB of zeros in ~64 KiB) as the body
* ``drip:S``    announce the file's length, then one byte every S seconds (for at most ``hold_s``)
* ``stall:N``   N bytes, then silence with the connection open for ``hold_s``
* ``html``      200 with a ``text/html`` login page
* ``loop``      302 redirect to itself
* ``echo[:STATUS]``  an error (403 unless STATUS) whose reason phrase, body and ``X-Error-Message`` echo the
  request's Authorization header (a Basic one decoded too)

:class:`FileServer` serves files added with a script of those behaviours (each GET consumes the next one, the last
repeats). :class:`HubEmulator` is an in-memory Hub: the endpoints huggingface_hub 2.x calls to publish (create
repo, repo info, validate-yaml, preupload, LFS batch + verify, NDJSON commit) and to download
(``/{repo}/resolve/{rev}/{path}``, a 302 with ``X-Linked-Etag``/``X-Linked-Size`` to a second origin, the "CDN",
for LFS files). Writes need ``Authorization: Bearer <token>``, private repositories need it for reads too; the
CDN is another port, hence another origin, so clients do not send it the token. Faults are injected per request
with :meth:`HubEmulator.fault`. Run Hub clients in a subprocess with :meth:`HubEmulator.client_env`
(huggingface_hub reads ``HF_ENDPOINT`` at import time).
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import gzip
import hashlib
import hmac
import json
import re
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

_CHUNK = 64 * 1024
_REPO = r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)"
LFS_PATTERNS = ("*.bin", "*.ckpt", "*.h5", "*.onnx", "*.pt", "*.pth", "*.safetensors", "*.zip")
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS)


@functools.cache
def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzip-compressed to about 64 KiB."""
    return gzip.compress(bytes(64 << 20), compresslevel=9)


@dataclass(frozen=True)
class RequestRecord:
    server: str  # "files", "api" or "cdn"
    method: str
    path: str
    status: int
    authorized: bool  # the request carried the emulator's token


class _HttpError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, headers: Mapping[str, str] = {}):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, dict(headers)


class LoopbackServer:
    """HTTP servers on 127.0.0.1 (one per name in ``servers``), their request log and their lifetime."""

    token: str | None = None

    def __init__(self, servers: Mapping[str, type[_Handler]], *, lifetime_s: float, hold_s: float) -> None:
        self.lifetime_s, self.hold_s = lifetime_s, hold_s
        self.stopped = threading.Event()  # ends hangs, drips and stalls
        self._lock = threading.RLock()
        self._handlers = dict(servers)
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._log: list[RequestRecord] = []
        self.gets: Counter[str] = Counter()  # GET requests per path
        self.complete: Counter[str] = Counter()  # responses whose whole body was sent
        self.ranges: list[tuple[str, str]] = []  # (path, Range header) of ranged requests

    def start(self) -> LoopbackServer:
        for name, handler in self._handlers.items():
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            server.owner, server.name = self, name  # type: ignore[attr-defined]
            self._servers[name] = server
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        watchdog = threading.Timer(self.lifetime_s, self.stop)
        watchdog.daemon = True
        watchdog.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def origin(self, name: str) -> str:
        assert name in self._servers, "start the server first"
        return f"http://127.0.0.1:{self._servers[name].server_address[1]}"

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def count(self, method: str, path_contains: str = "", *, server: str | None = None) -> int:
        """Number of logged requests with this method whose path contains ``path_contains``."""
        return sum(r.method == method and path_contains in r.path and server in (None, r.server) for r in self.requests)

    def wait_complete(self, path: str, count: int, timeout_s: float = 5.0) -> int:
        """The number of complete responses for ``path`` once it reaches ``count`` (or ``timeout_s`` passes):
        the handler thread counts a response after its last byte is sent, possibly after the client is done."""
        deadline = time.monotonic() + timeout_s
        while self.complete[path] < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.complete[path]

    def take_fault(self, server: str, method: str, path: str) -> str | None:
        """The behaviour scripted for this request, if any (see the module docstring)."""
        return None

    def route(self, handler: _Handler, method: str, path: str, query: dict[str, list[str]]) -> None:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    """One request: take the scripted fault, route it, answer errors as JSON, log it."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean; the server keeps a log
        pass

    @property
    def owner(self) -> LoopbackServer:
        return self.server.owner  # type: ignore[attr-defined]

    @property
    def authorized(self) -> bool:
        return self.owner.token is not None and self.headers.get("Authorization", "") == f"Bearer {self.owner.token}"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        self._status, self._body = 0, None  # one handler serves every request of a keep-alive connection
        parts, owner = urlsplit(self.path), self.owner
        if method == "GET":
            with owner._lock:
                owner.gets[parts.path] += 1
        try:
            self.fault = owner.take_fault(self.server.name, method, parts.path)  # type: ignore[attr-defined]
            if self.fault == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
            elif self.fault == "hang":
                owner.stopped.wait(owner.hold_s)
                self.close_connection = True
            elif self.fault in ("500", "404"):
                raise _HttpError(int(self.fault), "Internal Error" if self.fault == "500" else "Not Found")
            elif self.fault and self.fault.startswith("echo"):
                auth = self.headers.get("Authorization", "no credentials")
                if auth.startswith("Basic "):
                    auth += " = " + base64.b64decode(auth[6:]).decode(errors="replace")
                raise _HttpError(int(self.fault.partition(":")[2] or 403), f"Bad request: malformed {auth}")
            elif self.fault == "loop":
                self.send_bytes(302, b"", {"Location": self.path})
            elif self.fault == "html":
                page = b"<!DOCTYPE html><html><body><form>Sign in</form></body></html>\n"
                self.send_bytes(200, page, {"Content-Type": "text/html; charset=utf-8"})
            else:
                owner.route(self, method, unquote(parts.path), parse_qs(parts.query))
        except _HttpError as err:
            self._read_body()
            headers = {
                **err.headers,
                "X-Error-Message": err.message,
                **({"X-Error-Code": err.code} if err.code else {}),
            }
            self.send_json({"error": err.message}, status=err.status, headers=headers, reason=err.message)
        finally:
            with owner._lock:
                owner._log.append(RequestRecord(self.server.name, method, parts.path, self._status, self.authorized))  # type: ignore[attr-defined]

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)
        if self.close_connection:  # tell the client, so it does not reuse the connection
            self.send_header("Connection", "close")

    def _read_body(self) -> bytes:
        if self._body is not None:
            return self._body
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            self._body = b"".join(chunks)
        else:
            self._body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return self._body

    def json_body(self) -> Any:
        try:
            return json.loads(self._read_body() or b"null") or {}
        except ValueError:
            raise _HttpError(400, "body is not JSON") from None

    def send_bytes(self, status: int, body: bytes, headers: Mapping[str, str], *, reason: str | None = None) -> None:
        self.send_response(status, reason)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, obj: Any, *, status: int = 200, headers: Mapping[str, str] = {}, **kwargs: Any) -> None:
        self._read_body()
        body = json.dumps(obj).encode()
        self.send_bytes(status, body, {"Content-Type": "application/json", **headers}, **kwargs)

    def send_file(self, data: bytes, headers: Mapping[str, str] = {}) -> None:
        """Serve ``data`` honouring ``Range``, as the scripted fault of this request says."""
        owner, fault, path = self.owner, self.fault or "ok", urlsplit(self.path).path
        kind, _, arg = fault.partition(":")
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", **headers}
        if kind in ("gzip", "huge", "long", "drip", "stall"):
            return self._send_bad_body(kind, arg, data, headers)
        if kind == "short":
            data = data[: int(arg)]
        elif kind == "corrupt":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            with owner._lock:
                owner.ranges.append((path, self.headers["Range"]))
        if match and kind != "no_range":
            start, status = int(match.group(1)), 206
            if start >= len(data):
                return self.send_bytes(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
            end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data = data[: end + 1]
        body = data[start:]
        self.send_bytes(status, b"", {**headers, "Content-Length": str(len(body))})
        if self.command == "HEAD":
            return
        limit = int(arg) if kind == "cut" else len(body)
        for offset in range(0, limit, _CHUNK):
            if offset and getattr(owner, "chunk_delay_s", 0):  # "complete" counts as soon as the last is sent
                time.sleep(owner.chunk_delay_s)  # type: ignore[attr-defined]
            self.wfile.write(body[offset : min(offset + _CHUNK, limit)])
            self.wfile.flush()
        if limit < len(body):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        with owner._lock:
            owner.complete[path] += 1

    def _send_bad_body(self, kind: str, arg: str, data: bytes, headers: dict[str, str]) -> None:
        """The faults that misbehave in the body: a gzip bomb, a lying length, a drip, a stall."""
        owner = self.owner
        self.close_connection = True
        if kind == "gzip":
            return self.send_bytes(200, gzip_bomb(), {**headers, "Content-Encoding": "gzip"})
        if kind == "huge":
            self.send_bytes(200, b"", {**headers, "Content-Length": str(10**12)})
            return self.wfile.write(data) and None
        if kind == "long":  # no Content-Length: the body ends when the connection closes
            self.send_response(200)
            self.end_headers()
            return self.wfile.write(data + bytes(int(arg))) and None
        self.send_bytes(200, b"", {**headers, "Content-Length": str(len(data))})
        end, sent = time.monotonic() + owner.hold_s, int(arg) if kind == "stall" else 0
        self.wfile.write(data[:sent])
        while kind == "drip" and sent < len(data) and time.monotonic() < end and not owner.stopped.wait(float(arg)):
            try:
                self.wfile.write(data[sent : sent + 1])
                self.wfile.flush()
                sent += 1
            except OSError:  # the client gave up
                return
        self.wfile.flush()
        owner.stopped.wait(max(0.0, end - time.monotonic()) if kind == "stall" else 0)
        return


class FileServer(LoopbackServer):
    """Files served at paths, each with its script of behaviours (see the module docstring)."""

    def __init__(self, *, chunk_delay_s: float = 0.0, lifetime_s: float = 60.0, hold_s: float = 5.0) -> None:
        super().__init__({"files": _Handler}, lifetime_s=lifetime_s, hold_s=hold_s)
        self.chunk_delay_s = chunk_delay_s  # throttles bodies (64 KiB chunks) so that concurrent clients overlap
        self._files: dict[str, tuple[bytes, list[str]]] = {}

    def add(self, path: str, data: bytes, script: Sequence[str] = ("ok",)) -> str:
        """Serve ``data`` at ``path`` following ``script``; returns the URL."""
        with self._lock:
            self._files[path] = (data, list(script))
        return self.url(path)

    def url(self, path: str) -> str:
        return self.origin("files") + path

    def take_fault(self, server: str, method: str, path: str) -> str | None:
        with self._lock:
            script = self._files[path][1] if path in self._files else ["404"]
            return script.pop(0) if len(script) > 1 else script[0]

    def route(self, handler: _Handler, method: str, path: str, query: dict[str, list[str]]) -> None:
        handler.send_file(self._files[path][0])


# --------------------------------------------------------------------------------------------- the Hub emulator


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

    @classmethod
    def regular(cls, data: bytes) -> FileRecord:
        return cls(len(data), hashlib.sha256(data).hexdigest(), False, data)


@dataclass(frozen=True)
class CommitRecord:
    oid: str
    parent: str | None
    message: str
    files: Mapping[str, FileRecord]


@dataclass
class _Repo:
    repo_id: str
    private: bool
    commits: list[CommitRecord] = field(default_factory=list)
    lfs: dict[str, bytes] = field(default_factory=dict)
    tampered: set[str] = field(default_factory=set)


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

    @property
    def hub(self) -> HubEmulator:
        return self.owner  # type: ignore[return-value]

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        for route_method, pattern, name in self._ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                with self.hub._lock:
                    return getattr(self, name)(query=query, **match.groupdict())
        raise _HttpError(404, f"{method} {path} is not emulated")

    def readable_repo(self, repo_id: str) -> _Repo:
        repo = self.hub._repo(repo_id)
        if repo.private and not self.authorized:
            raise _HttpError(401, f"Repository {repo_id} not found", code="RepoNotFound")
        return repo

    def require_token(self) -> None:
        if not self.authorized:
            auth = self.headers.get("Authorization")
            raise _HttpError(401, "Invalid credentials in Authorization header" if auth else "Unauthorized")

    def writable_repo(self, repo_id: str) -> _Repo:
        self.require_token()
        return self.hub._repo(repo_id)

    def create_repo(self, query: dict[str, list[str]]) -> None:
        self.require_token()
        body = self.json_body()
        repo_id = f"{body.get('organization')}/{body.get('name')}"
        url = f"{self.hub.endpoint}/{repo_id}"
        if body.get("type", "model") != "model":
            raise _HttpError(400, "the emulator only hosts model repositories")
        if repo_id in self.hub._repos:
            return self.send_json({"error": "You already created this model repo", "url": url}, status=409)
        self.hub.create_repo(repo_id, private=body.get("visibility") == "private" or bool(body.get("private")))
        self.send_json({"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self, query: dict[str, list[str]]) -> None:
        content = self.json_body().get("content", "")
        self.send_json({"errors": [], "warnings": [] if content.startswith("---\n") else [{"message": "no yaml"}]})

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
        info = {
            "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
            "id": repo,
            "modelId": repo,
            "private": record.private,
        }
        info.update(author=repo.split("/")[0], sha=commit.oid, gated=False, disabled=False, downloads=0, likes=0)
        self.send_json({**info, "tags": [], "siblings": siblings})

    def preupload(self, repo: str, rev: str, query: dict[str, list[str]]) -> None:
        record = self.writable_repo(repo)
        commit = self.hub._commit(record, rev)
        files = []
        for item in self.json_body().get("files", []):
            path, size = item["path"], int(item["size"])
            mode = "lfs" if size > 0 and self.hub._is_lfs(record, path) else "regular"
            answer: dict[str, Any] = {"path": path, "uploadMode": mode, "shouldIgnore": False}
            if (existing := commit.files.get(path)) is not None:
                answer["oid"] = existing.sha256 if existing.lfs else existing.git_oid
            files.append(answer)
        self.send_json({"files": files, "commitOid": commit.oid})

    def lfs_batch(self, repo: str, query: dict[str, list[str]]) -> None:
        record = self.writable_repo(repo)
        body, objects = self.json_body(), []
        if body.get("operation") != "upload":
            raise _HttpError(400, "only the upload operation is emulated")
        for obj in body.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in record.lfs:
                upload = f"{self.hub.cdn_endpoint}/upload/{repo}/{oid}?size={size}&sig={self.hub._sign(repo + oid)}"
                verify = f"{self.hub.endpoint}/{repo}.git/info/lfs/objects/verify"
                answer["actions"] = {"upload": {"href": upload, "expires_in": 900},
                                     "verify": {"href": verify, "header": {}, "expires_in": 900}}  # fmt: skip
            objects.append(answer)
        content = {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}
        self.send_json(content, headers={"Content-Type": "application/vnd.git-lfs+json"})

    def lfs_verify(self, repo: str, query: dict[str, list[str]]) -> None:
        body = self.json_body()
        data = self.writable_repo(repo).lfs.get(body.get("oid", ""))
        if data is None or len(data) != body.get("size"):
            raise _HttpError(404, f"LFS object {body.get('oid')} was not uploaded")
        self.send_json({"success": True})

    def commit(self, repo: str, rev: str, query: dict[str, list[str]]) -> None:
        record = self.writable_repo(repo)
        if rev != "main" or query.get("create_pr"):
            raise _HttpError(400, "the emulator only commits to main, without a pull request")
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header" or not lines[0]["value"].get("summary"):
            raise _HttpError(400, "the first NDJSON line must be the commit header, with a summary")
        header = lines[0]["value"]
        if header.get("parentCommit") and not record.commits[-1].oid.startswith(header["parentCommit"]):
            raise _HttpError(412, f"parent commit {header['parentCommit']} is not the head of main")
        files = dict(record.commits[-1].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            if key == "file":
                content = value["content"]
                data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                files[value["path"]] = FileRecord.regular(data)
            elif key == "lfsFile" and value.get("oid") in record.lfs:
                files[value["path"]] = FileRecord(len(record.lfs[value["oid"]]), value["oid"], True)
            else:
                raise _HttpError(422, f"commit operation {key!r} on {value.get('path')} is not possible here")
        oid = self.hub._add_commit(record, files, header["summary"])
        self.send_json({"success": True, "commitOid": oid, "commitUrl": f"{self.hub.endpoint}/{repo}/commit/{oid}"})

    def resolve(self, repo: str, rev: str, path: str, query: dict[str, list[str]]) -> None:
        commit = self.hub._commit(self.readable_repo(repo), rev)
        f = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.oid}
        if f is None:
            raise _HttpError(404, f"{path} does not exist at {commit.oid}", code="EntryNotFound", headers=headers)
        headers["ETag"] = f'"{f.git_oid}"'
        if not f.lfs:
            return self.send_file(f.data or b"", headers)
        location = f"{self.hub.cdn_endpoint}/lfs/{repo}/{f.sha256}?sig={self.hub._sign(repo + f.sha256)}"
        headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size), "Location": location})
        self.send_bytes(302, b"", headers)


class _CdnHandler(_Handler):
    _UPLOAD = re.compile(rf"^/upload/{_REPO}/(?P<oid>[0-9a-f]{{64}})$")
    _OBJECT = re.compile(rf"^/lfs/{_REPO}/(?P<oid>[0-9a-f]{{64}})$")

    @property
    def hub(self) -> HubEmulator:
        return self.owner  # type: ignore[return-value]

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        upload, obj = self._UPLOAD.match(path), self._OBJECT.match(path)
        if method == "PUT" and upload:
            self.upload(upload["repo"], upload["oid"], query)
        elif method in ("GET", "HEAD") and obj:
            self.download(obj["repo"], obj["oid"], query)
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

    def download(self, repo: str, oid: str, query: dict[str, list[str]]) -> None:
        self.check_signature(repo, oid, query)
        with self.hub._lock:
            record = self.hub._repo(repo)
            data, tampered = record.lfs.get(oid), oid in record.tampered
        if data is None:
            raise _HttpError(404, "no such object")
        if tampered:
            data = data[:-1] + bytes([data[-1] ^ 0xFF])
        self.send_file(data, {"ETag": f'"{oid}"', "Content-Disposition": f'attachment; filename="{oid}"'})


class HubEmulator(LoopbackServer):
    """In-memory Hub (API server + CDN server) on 127.0.0.1; see the module docstring."""

    def __init__(self, token: str = "hf_emulator_token", *, lifetime_s: float = 120.0, hold_s: float = 10.0) -> None:
        super().__init__({"api": _ApiHandler, "cdn": _CdnHandler}, lifetime_s=lifetime_s, hold_s=hold_s)
        self.token = token
        self._faults: list[list[Any]] = []
        self._repos: dict[str, _Repo] = {}
        self._secret = secrets.token_bytes(16)
        self._counter = 0

    @property
    def endpoint(self) -> str:
        return self.origin("api")

    @property
    def cdn_endpoint(self) -> str:
        return self.origin("cdn")

    def client_env(self, hf_home: str | Path) -> dict[str, str]:
        """Environment for a client subprocess talking to this emulator."""
        env = {"HF_ENDPOINT": self.endpoint, "HF_HOME": str(hf_home), "HF_TOKEN": self.token, "HF_HUB_DISABLE_XET": "1"}
        quiet = ("TELEMETRY", "PROGRESS_BARS", "UPDATE_CHECK")
        return {**env, **{f"HF_HUB_DISABLE_{k}": "1" for k in quiet}, "HF_HUB_ETAG_TIMEOUT": "5",
                "HF_HUB_DOWNLOAD_TIMEOUT": "10"}  # fmt: skip

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
        return self.commits(repo_id)[-1].oid

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

    def create_repo(self, repo_id: str, *, private: bool = False) -> str:
        """Create a repository directly (no HTTP) with an initial commit holding ``.gitattributes``."""
        with self._lock:
            if repo_id in self._repos:
                raise ValueError(f"{repo_id} exists")
            repo = self._repos[repo_id] = _Repo(repo_id, private)
            return self._add_commit(repo, {".gitattributes": FileRecord.regular(GITATTRIBUTES.encode())}, "initial")

    def fault(self, method: str, path_contains: str, behaviour: str, times: int = 1000, *, server: str = "api") -> None:
        """Play ``behaviour`` (see the module docstring) on the next ``times`` matching requests to ``server``."""
        with self._lock:
            self._faults.append([server, method, path_contains, behaviour, times])

    def take_fault(self, server: str, method: str, path: str) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault[:2] == [server, method] and fault[2] in path and fault[4] > 0:
                    fault[4] -= 1
                    return str(fault[3])
        return None

    def route(self, handler: _Handler, method: str, path: str, query: dict[str, list[str]]) -> None:
        handler.route(method, path, query)  # type: ignore[call-arg]

    def tamper(self, repo_id: str, path: str, revision: str = "main") -> None:
        """Make the CDN serve altered bytes (same length, same headers) for this LFS file."""
        with self._lock:
            record = self.file_record(repo_id, path, revision)
            if not record.lfs:
                raise ValueError(f"{path} is not an LFS file")
            self._repo(repo_id).tampered.add(record.sha256)

    def _repo(self, repo_id: str) -> _Repo:
        if repo_id not in self._repos:
            raise _HttpError(404, f"Repository {repo_id} not found", code="RepoNotFound")
        return self._repos[repo_id]

    def _commit(self, repo: _Repo, revision: str) -> CommitRecord:
        for commit in repo.commits[::-1]:
            if revision in ("main", commit.oid):
                return commit
        raise _HttpError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")

    def _add_commit(self, repo: _Repo, files: Mapping[str, FileRecord], message: str) -> str:
        self._counter += 1
        parent = repo.commits[-1].oid if repo.commits else None
        body = json.dumps([parent, message, self._counter, sorted((p, f.git_oid) for p, f in files.items())])
        oid = hashlib.sha1(body.encode()).hexdigest()
        repo.commits.append(CommitRecord(oid, parent, message, dict(files)))
        return oid

    def _is_lfs(self, repo: _Repo, path: str) -> bool:
        return any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in LFS_PATTERNS)

    def _sign(self, oid: str) -> str:
        return hmac.new(self._secret, oid.encode(), hashlib.sha256).hexdigest()
