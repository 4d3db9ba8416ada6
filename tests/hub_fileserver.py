"""A plain HTTP file server on 127.0.0.1 with scripted faults, for testing URL downloads.

Each GET of a path consumes the next behaviour of that path's script (the last one repeats):

* ``ok``        serve the file, honouring ``Range: bytes=N-`` with 206 + Content-Range
* ``no_range``  ignore Range and answer 200 with the whole file
* ``cut:N``     announce the full length, send N body bytes, then drop the connection
* ``short:N``   serve only the first N bytes as if that were the whole file (consistent headers)
* ``corrupt``   same length, one byte flipped
* ``500`` / ``404``  answer with that status
* ``reset``     close the connection with a TCP reset before any answer

``chunk_delay_s`` throttles the body (64 KiB chunks) so that concurrent clients overlap. The server runs in a
daemon thread and shuts itself down after ``lifetime_s``.
"""

from __future__ import annotations

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


class FileServer:
    def __init__(self, *, chunk_delay_s: float = 0.0, lifetime_s: float = 60.0) -> None:
        self.chunk_delay_s = chunk_delay_s
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
            self.wfile.write(body[offset : min(offset + _CHUNK, limit)])
            self.wfile.flush()
            if owner.chunk_delay_s:
                time.sleep(owner.chunk_delay_s)
        if limit < len(body):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        with owner._lock:
            owner.complete[self.path] += 1
