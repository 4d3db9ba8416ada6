"""One small streaming downloader: a URL (and its headers) into a ``.part`` file, within limits, hashed as it comes.

:func:`download` sends ``Accept-Encoding: identity`` and refuses, before the first body byte, a compressed or
HTML answer and one announced longer than ``limit`` (``Content-Length``, or the Hub's ``X-Linked-Size`` on the
redirect to its storage, whose ``X-Linked-Etag`` must also be the expected sha256); a body longer than the limit
is cut. Fewer than ``stall_bytes`` per ``stall_window_s`` (a stall or a drip), or more than ``deadline_s`` for
the whole URL, is an error; a name-resolution or connection failure ends it at once, while 5xx answers and
dropped connections are retried with back-off and resumed with ``Range`` (also from a ``.part`` left by a killed
run). A link at the ``.part`` path is removed, never written through. Failures are :class:`DownloadFailed` with
a one-line, redacted reason.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from .._files import WritebackWriter, byte_bar, hash_file
from .._log import get_logger
from .._redact import redact

logger = get_logger(__name__)

_CHUNK = 1 << 20
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_HUB_ERRORS = {
    "RepoNotFound": "Repository Not Found",
    "RevisionNotFound": "Revision Not Found",
    "EntryNotFound": "Entry Not Found",
    "GatedRepo": "Gated repository (access not granted)",
}


class DownloadFailed(Exception):
    """This source cannot deliver the file (the message says why, on one line); try the next one."""


class _Retryable(Exception):
    """A transient failure (5xx, dropped connection) worth another attempt."""


@dataclass(frozen=True)
class DownloadSettings:
    """Retry, timeout and stall policy of downloads (``from_env`` overrides keep tests and CI fast); every value
    is checked (finite, > 0 or >= 0) and a bad one is a one-line ``ValueError`` naming the field or variable."""

    retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    connect_timeout_s: float = 10.0
    stall_bytes: int = 64 * 1024  # less than this many bytes ...
    stall_window_s: float = 30.0  # ... in this many seconds is a stall (also the socket read timeout)
    deadline_s: float = 4 * 3600.0  # the whole source, retries included
    max_redirects: int = 10

    _ENV = {
        "retries": "SENET_ZOO_DOWNLOAD_RETRIES",
        "backoff_s": "SENET_ZOO_DOWNLOAD_BACKOFF",
        "connect_timeout_s": "SENET_ZOO_DOWNLOAD_CONNECT_TIMEOUT",
        "stall_bytes": "SENET_ZOO_DOWNLOAD_STALL_BYTES",
        "stall_window_s": "SENET_ZOO_DOWNLOAD_STALL_SECONDS",
        "deadline_s": "SENET_ZOO_DOWNLOAD_DEADLINE",
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            checked_setting(f"DownloadSettings.{f.name}", value, type(value), may_be_zero=f.name in _MAY_BE_ZERO)

    @classmethod
    def from_env(cls) -> DownloadSettings:
        """Defaults, each overridable by its ``SENET_ZOO_DOWNLOAD_*`` variable (see ``_ENV``)."""
        values: dict[str, Any] = {}
        for name, var in cls._ENV.items():
            if raw := os.environ.get(var, "").strip():
                values[name] = checked_setting(
                    f"${var}", raw, type(getattr(cls, name)), may_be_zero=name in _MAY_BE_ZERO
                )
        return cls(**values)

    def delay(self, attempt: int) -> float:
        """Back-off before retry number ``attempt`` (1-based)."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))


_MAY_BE_ZERO = ("retries", "backoff_s", "max_backoff_s", "max_redirects")


def checked_setting(label: str, raw: Any, kind: type = float, *, may_be_zero: bool = False) -> Any:
    """``raw`` as a ``kind``, finite and > 0 (>= 0 when ``may_be_zero``), else a one-line error naming ``label``."""
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not may_be_zero):
        what = f"finite {'integer' if kind is int else 'number'} {'>= 0' if may_be_zero else '> 0'}"
        raise ValueError(f"{label} must be a {what}, got {raw!r}")
    return value


class _PartialFile:
    """The ``.part`` file being written, with the running sha256 of everything in it and the byte limit."""

    def __init__(self, path: Path, limit: int, size: int | None, sha256: str | None, desc: str, progress: bool) -> None:
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.limit, self.expected_size, self.sha256 = limit, size, sha256
        if path.is_symlink():  # never written through: a link here is not ours to follow
            path.unlink()
        elif path.exists():  # left by an interrupted run (we hold the lock): hash what is there and resume
            if path.stat().st_size <= limit:
                self.offset = hash_file(path, self.hasher, desc=desc)[0]
            else:
                path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self.fh: IO[bytes] = os.fdopen(fd, "ab")
        self.out = WritebackWriter(self.fh)  # written back to disk as it arrives: the closing fsync is short
        self.bar = byte_bar(size, desc, progress, initial=self.offset)

    def write(self, chunk: bytes) -> None:
        if self.offset + len(chunk) > self.limit:
            raise DownloadFailed(f"server sent more than the {self.limit} bytes allowed for this file")
        self.out.write(chunk)
        self.hasher.update(chunk)
        self.offset += len(chunk)
        self.bar.update(len(chunk))

    def restart(self) -> None:
        self.fh.seek(0)
        self.fh.truncate()
        self.hasher = hashlib.sha256()
        self.bar.reset(total=self.expected_size)
        self.offset = 0

    def finish(self) -> tuple[int, str]:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        return self.offset, self.hasher.hexdigest()

    def close(self) -> None:
        self.fh.close()
        self.bar.close()


class _Clock:
    """The per-source deadline and the stall detector (fewer than ``stall_bytes`` per ``stall_window_s``)."""

    def __init__(self, settings: DownloadSettings) -> None:
        self.settings = settings
        self.deadline = time.monotonic() + settings.deadline_s
        self.window_start = time.monotonic()
        self.window_offset = 0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        if self.remaining() <= 0:
            raise DownloadFailed(f"gave up: no complete transfer within the {self.settings.deadline_s:g} s deadline")

    def start_window(self, offset: int) -> None:
        self.window_start, self.window_offset = time.monotonic(), offset

    def progress(self, offset: int) -> None:
        self.check_deadline()
        now = time.monotonic()
        if now - self.window_start >= self.settings.stall_window_s:
            if offset - self.window_offset < self.settings.stall_bytes:
                raise DownloadFailed(self.stall_message(offset - self.window_offset, now - self.window_start))
            self.window_start, self.window_offset = now, offset

    def stall_message(self, received: int, seconds: float) -> str:
        return (
            f"transfer stalled: {received} bytes in {seconds:.1f} s "
            f"(less than {self.settings.stall_bytes} bytes per {self.settings.stall_window_s:g} s)"
        )


def download(
    url: str,
    part: Path,
    *,
    limit: int,
    size: int | None = None,
    sha256: str | None = None,
    headers: Mapping[str, str] | None = None,
    settings: DownloadSettings | None = None,
    progress: bool = True,
    desc: str = "",
) -> tuple[int, str]:
    """Stream ``url`` into ``part`` (resuming what is there) and return the byte count and sha256 of the whole file.

    ``limit`` caps the bytes; ``size``/``sha256`` (when known) are the expected file's, for the progress bar and
    the Hub's announced digest; the caller compares the result with what it expects."""
    import requests

    settings = settings or DownloadSettings.from_env()
    state = _PartialFile(part, limit, size, sha256, desc, progress)
    clock = _Clock(settings)
    try:
        with requests.Session() as session:
            session.max_redirects = settings.max_redirects
            session.headers.update(headers or {})
            attempt = 0
            while True:
                try:
                    _stream_once(session, url, state, settings, clock)
                    return state.finish()
                except requests.ConnectionError as exc:
                    cause = _connect_failure(exc)
                    if cause:  # offline, unknown host, refused: retrying will not help
                        raise DownloadFailed(cause) from exc
                    retry_exc: Exception = exc
                except (_Retryable, requests.exceptions.ChunkedEncodingError) as exc:
                    retry_exc = exc
                except requests.Timeout as exc:
                    raise DownloadFailed(f"timed out: {_short(exc)}") from exc
                except requests.RequestException as exc:  # bad URL, redirect loop, ...
                    raise DownloadFailed(f"{type(exc).__name__}: {_short(exc)}") from exc
                attempt += 1
                if attempt > settings.retries:
                    raise DownloadFailed(f"{_short(retry_exc)} (gave up after {attempt} attempts)") from retry_exc
                delay = min(settings.delay(attempt), max(0.0, clock.remaining()))
                logger.warning(
                    "%s: %s; retry %d/%d in %.2gs from byte %d",
                    desc or url,
                    _short(retry_exc),
                    attempt,
                    settings.retries,
                    delay,
                    state.offset,
                )
                time.sleep(delay)
                clock.check_deadline()
    finally:
        state.close()


def _connect_failure(exc: BaseException) -> str | None:
    """A short cause when ``exc`` failed before any connection existed (DNS, refused, connect timeout)."""
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, NameResolutionError):
            host = getattr(getattr(item, "conn", None), "host", None) or "the host"
            return f"cannot resolve {host} (no network or unknown host name)"
        if isinstance(item, NewConnectionError):  # a subclass of ConnectTimeoutError: test it first
            errno_text = str(item).rpartition("] ")[2] or "connection failed"
            return f"cannot connect: {errno_text}"
        if isinstance(item, ConnectTimeoutError):
            return "connection timed out (no network?)"
        if isinstance(item, BaseException):
            stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return None


def _stream_once(session: Any, url: str, state: _PartialFile, settings: DownloadSettings, clock: _Clock) -> None:
    headers = {"Accept-Encoding": "identity"}
    resume_from = state.offset
    if resume_from:
        headers["Range"] = f"bytes={resume_from}-"
    read_timeout = max(0.05, min(settings.stall_window_s, clock.remaining()))
    timeout = (max(0.05, min(settings.connect_timeout_s, clock.remaining())), read_timeout)
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        status = response.status_code
        if status == 416 and resume_from:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            if total == str(resume_from):
                return  # everything is already here
            state.restart()
            raise _Retryable(f"HTTP 416 for a resume from byte {resume_from} (server has {total or '?'} bytes)")
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status} {response.reason}")
        if status >= 400 or status not in (200, 206):
            code = response.headers.get("X-Error-Code", "")
            hub = f": {_HUB_ERRORS.get(code, code)} ({response.headers.get('X-Error-Message', '')})" if code else ""
            raise DownloadFailed(f"HTTP {status} {response.reason}{hub}")
        for hop in response.history:  # the Hub's redirect to its storage names the LFS file's size and sha256
            _check_linked(hop.headers, state)
        _check_headers(response.headers, state, resume_from if status == 206 else 0)
        if status == 200 and resume_from:
            logger.info("server ignored the Range request; restarting from byte 0")
            state.restart()
        elif status == 206:
            match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != resume_from:
                state.restart()
                raise _Retryable(f"unexpected Content-Range {response.headers.get('Content-Range')!r}")
        _copy_body(response.raw, state, clock)


def _check_linked(headers: Mapping[str, str], state: _PartialFile) -> None:
    """Refuse, before any byte, a Hub file announced larger than the limit or with another sha256."""
    size = headers.get("X-Linked-Size", "")
    if size.isdigit() and int(size) > state.limit:
        raise DownloadFailed(f"the Hub announces {size} bytes, more than the {state.limit} allowed for this file")
    etag = headers.get("X-Linked-Etag", "").removeprefix("W/").strip('"')
    if state.sha256 is not None and len(etag) == 64 and etag != state.sha256:
        raise DownloadFailed(f"the Hub's file has sha256 {etag}, expected {state.sha256}; not downloaded")


def _check_headers(headers: Mapping[str, str], state: _PartialFile, start: int) -> None:
    """Refuse before the first body byte: a compressed or HTML answer, or one longer than the limit."""
    encoding = headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise DownloadFailed(f"refused a compressed answer (Content-Encoding: {encoding}; identity was requested)")
    content_type = headers.get("Content-Type", "").lower()
    if content_type.startswith(("text/html", "application/xhtml")):
        raise DownloadFailed(f"the server answered with a web page ({content_type}), not a weights file")
    length = headers.get("Content-Length")
    if length is not None and length.isdigit() and start + int(length) > state.limit:
        raise DownloadFailed(
            f"the server announces {start + int(length)} bytes, more than the {state.limit} allowed for this file"
        )


def _copy_body(raw: Any, state: _PartialFile, clock: _Clock) -> None:
    """Copy the body as it arrives, undecoded: ``read1`` hands over every byte received before a connection drop
    (a buffered ``read(n)`` would discard them), so a retry resumes exactly where the transfer stopped."""
    from urllib3.exceptions import HTTPError as Urllib3Error
    from urllib3.exceptions import ReadTimeoutError

    clock.start_window(state.offset)
    try:
        while chunk := raw.read1(_CHUNK, decode_content=False):
            state.write(chunk)
            clock.progress(state.offset)
    except (Urllib3Error, OSError) as exc:
        if isinstance(exc, (ReadTimeoutError, TimeoutError)) or "timed out" in str(exc):
            clock.check_deadline()
            received = state.offset - clock.window_offset
            raise DownloadFailed(clock.stall_message(received, time.monotonic() - clock.window_start)) from exc
        raise _Retryable(f"connection lost after {state.offset} bytes: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    text = redact(str(exc) or type(exc).__name__)
    return text if len(text) <= 200 else text[:200] + "..."
