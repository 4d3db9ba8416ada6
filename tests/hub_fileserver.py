"""A plain HTTP file server on 127.0.0.1 with scripted faults, for testing URL downloads.

Each GET of a path consumes the next behaviour of that path's script (the last one repeats):

* ``ok``        serve the file, honouring ``Range: bytes=N-`` with 206 + Content-Range
* ``no_range``  ignore Range and answer 200 with the whole file
* ``cut:N``     announce the full length, send N body bytes, then drop the connection
* ``short:N``   serve only the first N bytes as if that were the whole file (consistent headers)
* ``corrupt``   same length, one byte flipped
* ``500`` / ``404``  answer with that status
* ``reset``     close the connection with a TCP reset before any answer
* ``long:N``    the file plus N extra bytes, no Content-Length (the body ends when the connection closes)
* ``huge``      announce a Content-Length of 1 TB, then send the file
* ``gzip``      ``Content-Encoding: gzip`` with a gzip bomb (64 MiB of zeros in ~64 KiB) as the body
* ``drip:S``    one byte every S seconds (stops after ``hold_s`` or the file, whichever comes first)
* ``stall:N``   N bytes, then silence with the connection open for ``hold_s``
* ``html``      200 with a ``text/html`` login page
* ``loop``      302 redirect to itself
* ``echo``      403 whose reason phrase and body echo the request's Authorization header

``chunk_delay_s`` throttles the body (64 KiB chunks) so that concurrent clients overlap. Every loop is bounded
(by the body, ``hold_s`` or ``lifetime_s``); the server listens on 127.0.0.1 only, runs in a daemon thread and
shuts itself down after ``lifetime_s``.
"""

from __future__ import annotations

import base64
import functools
import gzip
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_CHUNK = 64 * 1024


@functools.cache
def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzip-compressed to about 64 KiB."""
    return gzip.compress(bytes(64 << 20), compresslevel=9)


class FileServer:
    def __init__(self, *, chunk_delay_s: float = 0.0, lifetime_s: float = 60.0, hold_s: float = 5.0) -> None:
        self.chunk_delay_s = chunk_delay_s
        self.hold_s = hold_s
        self.stopped = threading.Event()
        self.lifetime_s = lifetime_s
        self._files: dict[str, bytes] = {}
        self._scripts: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self.gets: Counter[str] = Counter()  # GET requests per path
        self.complete: Counter[str] = Counter()  # responses whose whole body was sent
        self.ranges: list[tuple[str, str]] = []  # (path, Range header) of ranged requests
        self._server: ThreadingHTTPServer | None = None

    def add(self, path: str, data: bytes, script: Sequence[str] = ("ok",)) -> str:
        """Serve ``data`` at ``path`` following ``script``; returns the URL."""
        with self._lock:
            self._files[path] = data
            self._scripts[path] = list(script)
        return self.url(path)

    def wait_complete(self, path: str, count: int, timeout_s: float = 5.0) -> int:
        """The number of complete responses for ``path`` once it reaches ``count`` (or ``timeout_s`` passes):
        the handler thread counts a response after its last byte is sent, possibly after the client is done."""
        deadline = time.monotonic() + timeout_s
        while self.complete[path] < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.complete[path]

    def url(self, path: str) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def _next(self, path: str) -> tuple[bytes | None, str]:
        with self._lock:
            self.gets[path] += 1
            script = self._scripts.get(path)
            if script is None:
                return None, "404"
            return self._files[path], script.pop(0) if len(script) > 1 else script[0]

    def start(self) -> FileServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.owner = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        watchdog = threading.Timer(self.lifetime_s, self.stop)
        watchdog.daemon = True
        watchdog.start()
        return self

    def stop(self) -> None:
        self.stopped.set()  # ends drips and stalls
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner: FileServer = self.server.owner  # type: ignore[attr-defined]
        data, behaviour = owner._next(self.path)
        if behaviour == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if behaviour in ("gzip", "html", "loop", "echo", "huge") or behaviour.startswith(("long:", "drip:", "stall:")):
            self._misbehave(owner, data or b"", behaviour)
            return
        if behaviour in ("500", "404") or data is None:
            body = b"error\n"
            self.send_response(int(behaviour) if behaviour in ("500", "404") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if behaviour.startswith("short:"):
            data = data[: int(behaviour.split(":")[1])]
        elif behaviour == "corrupt":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match:
            with owner._lock:
                owner.ranges.append((self.path, self.headers["Range"]))
        if match and behaviour != "no_range":
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        limit = int(behaviour.split(":")[1]) if behaviour.startswith("cut:") else len(body)
        for offset in range(0, limit, _CHUNK):
            if offset and owner.chunk_delay_s:  # between chunks: "complete" counts as soon as the last is sent
                time.sleep(owner.chunk_delay_s)
            self.wfile.write(body[offset : min(offset + _CHUNK, limit)])
            self.wfile.flush()
        if limit < len(body):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        with owner._lock:
            owner.complete[self.path] += 1

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        if self.close_connection:  # tell the client, so it does not reuse the connection
            self.send_header("Connection", "close")

    def _misbehave(self, owner: FileServer, data: bytes, behaviour: str) -> None:
        self.close_connection = True
        if behaviour == "loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if behaviour == "echo":
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                auth += " = " + base64.b64decode(auth[6:]).decode(errors="replace")
            body = f"denied for {auth}\n".encode()
            self.send_response(403, f"Forbidden for {auth}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if behaviour == "html":
            body = b"<!DOCTYPE html><html><body><form>Sign in</form></body></html>\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        if behaviour == "gzip":
            body = gzip_bomb()
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if behaviour == "huge":
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
            self.wfile.write(data)
            return
        if behaviour.startswith("long:"):
            self.end_headers()
            self.wfile.write(data + bytes(int(behaviour.split(":")[1])))
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        end = time.monotonic() + owner.hold_s
        if behaviour.startswith("drip:"):
            delay = float(behaviour.split(":")[1])
            for i in range(len(data)):
                if time.monotonic() > end or owner.stopped.wait(delay):
                    break
                try:
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                except OSError:  # the client gave up
                    break
            return
        sent = int(behaviour.split(":")[1])  # stall:N
        self.wfile.write(data[:sent])
        self.wfile.flush()
        owner.stopped.wait(owner.hold_s)
