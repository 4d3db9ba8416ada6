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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from .._files import WritebackWriter, byte_bar, hash_file
from .._log import get_logger
from .._redact import redact

logger = get_logger(__name__)

_CHUNK = 1 << 20
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
    """Retry, timeout and stall policy of downloads (``stall_window_s`` is also the socket read timeout);
    :meth:`from_env` reads each value's ``SENET_ZOO_DOWNLOAD_*`` variable. Every value must be finite and > 0
    (>= 0 where zero is allowed): else a one-line ``ValueError``."""

    retries: int = field(default=4, metadata={"env": "RETRIES", "zero": True})
    backoff_s: float = field(default=1.0, metadata={"env": "BACKOFF", "zero": True})  # doubled per retry, to 30 s
    connect_timeout_s: float = field(default=10.0, metadata={"env": "CONNECT_TIMEOUT"})
    stall_bytes: int = field(default=64 * 1024, metadata={"env": "STALL_BYTES"})  # less than this many bytes ...
    stall_window_s: float = field(default=30.0, metadata={"env": "STALL_SECONDS"})  # ... in this many s: a stall
    deadline_s: float = field(default=4 * 3600.0, metadata={"env": "DEADLINE"})  # the source, retries included

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            checked_setting(f"DownloadSettings.{f.name}", value, type(f.default), may_be_zero="zero" in f.metadata)

    @classmethod
    def from_env(cls) -> DownloadSettings:
        """The defaults, each overridden by its ``SENET_ZOO_DOWNLOAD_<env>`` variable where that is set."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = f"SENET_ZOO_DOWNLOAD_{f.metadata['env']}"
            if raw := os.environ.get(var, "").strip():
                values[f.name] = checked_setting(f"${var}", raw, type(f.default), may_be_zero="zero" in f.metadata)
        return cls(**values)


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


class _Transfer:
    """One source's transfer into the ``.part`` file: its running sha256, the byte limit, the deadline and the stall
    window (fewer than ``stall_bytes`` per ``stall_window_s``)."""

    def __init__(self, part: Path, limit: int, sha256: str | None, settings: DownloadSettings, bar: Any) -> None:
        self.limit, self.sha256, self.settings, self.bar = limit, sha256, settings, bar
        self.deadline = time.monotonic() + settings.deadline_s
        self.hasher, self.offset = hashlib.sha256(), 0
        if part.is_symlink() or (part.exists() and part.stat().st_size > limit):  # a link is never written through
            part.unlink()
        elif part.exists():  # left by an interrupted run (we hold the lock): hash what is there and resume
            self.offset = hash_file(part, self.hasher)[0]
            bar.update(self.offset)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o644)
        self.fh: IO[bytes] = os.fdopen(fd, "ab")
        self.out = WritebackWriter(self.fh)  # written back to disk as it arrives: the closing fsync is short
        self.window = (time.monotonic(), self.offset)

    def remaining(self) -> float:
        """Seconds left before the deadline; past it, the source has failed."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DownloadFailed(f"gave up: no complete transfer within the {self.settings.deadline_s:g} s deadline")
        return left

    def restart(self) -> None:
        self.fh.seek(0)
        self.fh.truncate()
        self.hasher, self.offset = hashlib.sha256(), 0
        self.bar.reset(total=self.bar.total)

    def attempt(self, session: Any, url: str) -> None:
        """One GET of ``url``, from byte ``offset`` on; raises :class:`_Retryable` for what another attempt may cure."""
        start, remaining = self.offset, max(0.05, self.remaining())
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={start}-"} if start else {})}
        timeout = (min(self.settings.connect_timeout_s, remaining), min(self.settings.stall_window_s, remaining))
        with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
            status, content_range = response.status_code, response.headers.get("Content-Range", "")
            if status == 416 and start:
                if content_range.rpartition("/")[2] == str(start):
                    return  # everything is already here
                self.restart()
                raise _Retryable(f"HTTP 416 for a resume from byte {start} ({content_range or 'no Content-Range'})")
            if status == 429 or status >= 500:
                raise _Retryable(f"HTTP {status} {response.reason}")
            if status not in (200, 206):
                code = response.headers.get("X-Error-Code", "")
                hub = f": {_HUB_ERRORS.get(code, code)} ({response.headers.get('X-Error-Message', '')})" if code else ""
                raise DownloadFailed(f"HTTP {status} {response.reason}{hub}")
            self.refuse_early(response, start if status == 206 else 0)
            if status == 200 and start:
                logger.info("server ignored the Range request; restarting from byte 0")
                self.restart()
            elif status == 206 and not content_range.startswith(f"bytes {start}-"):
                self.restart()
                raise _Retryable(f"unexpected Content-Range {content_range!r}")
            self.copy_body(response.raw)

    def refuse_early(self, response: Any, start: int) -> None:
        """Refuse before the first body byte: a compressed or HTML answer, one announced longer than the limit
        (``Content-Length``, or ``X-Linked-Size`` on the Hub's redirect), or a Hub file with another sha256."""
        length = response.headers.get("Content-Length", "")
        announced = [hop.headers.get("X-Linked-Size", "") for hop in response.history]
        for size in [*announced, str(start + int(length)) if length.isdigit() else ""]:
            if size.isdigit() and int(size) > self.limit:
                raise DownloadFailed(f"the server announces {size} bytes, more than the {self.limit} allowed")
        for hop in response.history:
            etag = hop.headers.get("X-Linked-Etag", "").removeprefix("W/").strip('"')
            if self.sha256 is not None and len(etag) == 64 and etag != self.sha256:
                raise DownloadFailed(f"the Hub's file has sha256 {etag}, expected {self.sha256}; not downloaded")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise DownloadFailed(f"refused a compressed answer (Content-Encoding: {encoding}; identity was requested)")
        content_type = response.headers.get("Content-Type", "").lower()
        if content_type.startswith(("text/html", "application/xhtml")):
            raise DownloadFailed(f"the server answered with a web page ({content_type}), not a weights file")

    def copy_body(self, raw: Any) -> None:
        """Copy the body as it arrives, undecoded: ``read1`` hands over every byte received before a connection
        drop (a buffered ``read(n)`` would discard them), so a retry resumes exactly where the transfer stopped."""
        from urllib3.exceptions import HTTPError as Urllib3Error
        from urllib3.exceptions import ReadTimeoutError

        self.window = (time.monotonic(), self.offset)
        try:
            while chunk := raw.read1(_CHUNK, decode_content=False):
                self.write(chunk)
        except (Urllib3Error, OSError) as exc:
            if isinstance(exc, (ReadTimeoutError, TimeoutError)) or "timed out" in str(exc):
                self.remaining()
                raise DownloadFailed(self.stalled()) from exc
            raise _Retryable(f"connection lost after {self.offset} bytes: {_short(exc)}") from exc

    def write(self, chunk: bytes) -> None:
        if self.offset + len(chunk) > self.limit:
            raise DownloadFailed(f"server sent more than the {self.limit} bytes allowed for this file")
        self.out.write(chunk)
        self.hasher.update(chunk)
        self.offset += len(chunk)
        self.bar.update(len(chunk))
        self.remaining()  # raises past the deadline
        if time.monotonic() - self.window[0] >= self.settings.stall_window_s:
            if self.offset - self.window[1] < self.settings.stall_bytes:
                raise DownloadFailed(self.stalled())
            self.window = (time.monotonic(), self.offset)

    def stalled(self) -> str:
        seconds, received, s = time.monotonic() - self.window[0], self.offset - self.window[1], self.settings
        return (
            f"transfer stalled: {received} bytes in {seconds:.1f} s "
            f"(less than {s.stall_bytes} bytes per {s.stall_window_s:g} s)"
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
    with byte_bar(size, desc, progress) as bar, requests.Session() as session:
        session.max_redirects = 10
        session.headers.update(headers or {})
        transfer = _Transfer(part, limit, sha256, settings, bar)
        try:
            for attempt in range(1, settings.retries + 2):
                try:
                    transfer.attempt(session, url)
                    transfer.fh.flush()
                    os.fsync(transfer.fh.fileno())
                    return transfer.offset, transfer.hasher.hexdigest()
                except (_Retryable, requests.RequestException) as exc:
                    if fatal := _fatal(exc):
                        raise DownloadFailed(fatal) from exc
                    failure = exc
                if attempt <= settings.retries:
                    delay = min(30.0, settings.backoff_s * 2 ** (attempt - 1), transfer.remaining())
                    note = f"retry {attempt}/{settings.retries} in {delay:.2g}s from byte {transfer.offset}"
                    logger.warning("%s: %s; %s", desc or url, _short(failure), note)
                    time.sleep(delay)
            raise DownloadFailed(f"{_short(failure)} (gave up after {attempt} attempts)") from failure
        finally:
            transfer.fh.close()


def _fatal(exc: BaseException) -> str | None:
    """Why retrying cannot help with ``exc`` (no connection could be made, a timeout, a bad URL or redirect loop),
    or None for a transient failure. A failed connection is urllib3's ``MaxRetryError`` (wrapped by requests),
    whose ``reason`` says what failed."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    if isinstance(reason, NameResolutionError):
        return f"cannot resolve {getattr(reason.conn, 'host', None) or 'the host'} (no network or unknown host name)"
    if isinstance(reason, NewConnectionError):  # a subclass of ConnectTimeoutError: test it first
        return f"cannot connect: {str(reason).rpartition('] ')[2] or 'connection failed'}"
    if isinstance(reason, ConnectTimeoutError):
        return "connection timed out (no network?)"
    if isinstance(exc, requests.Timeout):
        return f"timed out: {_short(exc)}"
    if isinstance(exc, (_Retryable, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        return None
    return f"{type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = redact(str(exc) or type(exc).__name__)
    return text if len(text) <= 200 else text[:200] + "..."
