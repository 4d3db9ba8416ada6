"""Verified, resumable, locked download of the weights a manifest entry names, and the cache that keeps them.

Sources are tried in manifest order. Plain URLs are streamed with ``requests`` into
``<torch hub dir>/senet_zoo/<name>/<tag>/<filename>`` under these rules:

* a byte limit is known before the first byte: the manifest ``size``, else a bound from the architecture's
  parameter count (:func:`max_download_bytes`); a longer ``Content-Length`` or body is refused;
* ``Accept-Encoding: identity`` is sent and a compressed answer (``Content-Encoding``) or an HTML page is refused,
  so the bytes hashed are the bytes on the wire;
* less than ``stall_bytes`` in ``stall_window_s`` seconds (a stall or a drip), or more than ``deadline_s`` for
  the whole source, ends the source with a clear error; a name-resolution or connection failure ends it at once
  (it is not retried), while 5xx answers and dropped connections are retried with back-off, resuming with
  ``Range``;
* one process downloads while others wait on a file lock; the file is fsynced, verified (size and sha256, or the
  sha256 prefix of legacy files) and renamed into place.

Verified once, trusted by a stamp: after a successful check a stamp beside the file
(``<filename>.verified.json``) records its size, mtime_ns, ctime_ns, inode and sha256. A later use compares a
``stat`` with the stamp (no hashing); any difference (a restored mtime still changes the ctime) re-hashes the
file before use, and a file that fails is removed from the cache. Hugging Face Hub sources go through
``huggingface_hub`` at the pinned commit (HF's own cache); the blob it returns is checked the same way (stamps
under ``<cache>/.verified``) and a bad blob is deleted. :func:`verify_cache` re-hashes everything.

``SENET_ZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` use the caches only. Every message is passed through
:func:`~senet_zoo.hub.redact.redact`: tokens and URL credentials are never printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

from .._files import WritebackWriter, byte_bar, fsync_dir, hash_file
from .hf_client import configured_hub_client
from .manifest import Manifest, Source, WeightsEntry, load_manifest
from .redact import RedactingFilter, redact, register_url_credentials

logger = logging.getLogger(__name__)
logger.addFilter(RedactingFilter())

OFFLINE_ENVS = ("SENET_ZOO_OFFLINE", "HF_HUB_OFFLINE")
STAMP_SUFFIX = ".verified.json"
_TRUE = {"1", "ON", "YES", "TRUE"}
_CHUNK = 1 << 20
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_FALLBACK_LIMIT = 2 << 30  # names the release table does not know (a private manifest)


class WeightsNotAvailableError(RuntimeError):
    """The manifest lists these weights but their files are not published yet."""


class DownloadError(RuntimeError):
    """No source produced a verified file; ``attempts`` holds ``(source, reason)`` for each one tried."""

    def __init__(self, message: str, attempts: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.attempts = attempts


class _SourceFailed(Exception):
    """This source cannot deliver the file; try the next one."""


class _Retryable(Exception):
    """A transient failure (5xx, dropped connection) worth another attempt."""


@dataclass(frozen=True)
class DownloadSettings:
    """Retry, timeout and stall policy for URL downloads (``from_env`` overrides keep tests and CI fast)."""

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

    @classmethod
    def from_env(cls) -> DownloadSettings:
        """Defaults, each overridable by its ``SENET_ZOO_DOWNLOAD_*`` variable (see ``_ENV``)."""
        values: dict[str, Any] = {}
        for name, var in cls._ENV.items():
            if os.environ.get(var):
                kind = type(getattr(cls, name))
                try:
                    values[name] = kind(os.environ[var])
                except ValueError:
                    raise ValueError(f"${var} must be a {kind.__name__}, got {os.environ[var]!r}") from None
        return cls(**values)

    def delay(self, attempt: int) -> float:
        """Back-off before retry number ``attempt`` (1-based)."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))


def is_offline() -> bool:
    """True when ``SENET_ZOO_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true value."""
    return any(os.environ.get(var, "").upper() in _TRUE for var in OFFLINE_ENVS)


def cache_dir() -> Path:
    """Where URL downloads live: ``<torch hub dir>/senet_zoo`` (``$TORCH_HOME/hub/senet_zoo``).

    Uses ``torch.hub.get_dir()`` when torch is already imported (it honours ``torch.hub.set_dir``); otherwise
    the same rule torch applies, so that fetching does not pay for importing torch.
    """
    if "torch.hub" in sys.modules:
        return Path(sys.modules["torch.hub"].get_dir()) / "senet_zoo"
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch"
    )
    return Path(os.path.expanduser(torch_home)) / "hub" / "senet_zoo"


def cached_path(entry: WeightsEntry) -> Path:
    """The cache location of ``entry``'s file when it comes from a URL source."""
    return cache_dir() / entry.name / entry.tag / entry.filename


def stamp_path(path: Path) -> Path:
    """The stamp beside a file of senet-zoo's own cache."""
    return path.with_name(path.name + STAMP_SUFFIX)


def max_download_bytes(entry: WeightsEntry) -> int:
    """The most bytes a download of ``entry`` may have: its manifest size, else a bound from the architecture.

    Float32 weights take 4 bytes per parameter or buffer; the release table knows each architecture's Caffe
    model size (the same tensors), and the bound allows 25 % + 4 MiB on top for container overhead.
    """
    if entry.size is not None:
        return entry.size
    from ..catalog import CATALOG as RELEASES

    release = RELEASES.get(entry.name)
    if release is None:
        return _FALLBACK_LIMIT
    return int(release.caffemodel_mb * 2**20 * 1.25) + (4 << 20)


def fetch_weights(
    name: str,
    tag: str | None = None,
    *,
    manifest: Manifest | str | os.PathLike[str] | None = None,
    progress: bool = True,
    verify: bool = False,
) -> tuple[Path, WeightsEntry]:
    """Look ``name[.tag]`` up in the manifest (default: the shipped one) and return a verified local file."""
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    entry = manifest.get(name, tag)
    return fetch(entry, progress=progress, verify=verify), entry


def fetch(
    entry: WeightsEntry, *, progress: bool = True, settings: DownloadSettings | None = None, verify: bool = False
) -> Path:
    """Return a local, verified copy of ``entry``'s file, downloading it from the first source that works.

    ``verify`` re-hashes a cached file even when its stamp matches.
    """
    if not entry.available:
        raise WeightsNotAvailableError(_not_available_message(entry))
    settings = settings or DownloadSettings.from_env()
    offline = is_offline()
    attempts: list[tuple[str, str]] = []
    for source in entry.sources:
        register_url_credentials(source.url)
        try:
            if source.kind == "hf":
                return _fetch_hf(entry, source, offline=offline, progress=progress, settings=settings, verify=verify)
            return _fetch_url(entry, source, offline=offline, progress=progress, settings=settings, verify=verify)
        except _SourceFailed as exc:
            reason = redact(exc)
            logger.log(
                logging.INFO if offline else logging.WARNING, "%s: %s failed: %s", entry.spec, source.describe(), reason
            )
            attempts.append((source.describe(), reason))
    raise DownloadError(_failure_message(entry, attempts, offline), attempts)


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a weights file into ``{name: tensor}`` on the CPU without unpickling arbitrary objects.

    ``.safetensors`` is memory-mapped by safetensors; legacy ``.pth/.pt/.bin`` goes through
    ``torch.load(weights_only=True)`` (memory-mapped when the file is in the zip format) and a top-level
    ``state_dict`` or ``model`` wrapper is unwrapped.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for malformed headers
            raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    if suffix not in (".pth", ".pt", ".bin"):
        raise ValueError(f"{path}: unsupported weights format {suffix!r} (expected .safetensors, .pth, .pt, .bin)")
    import torch

    with path.open("rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as a weights-only PyTorch checkpoint ({exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a mapping of parameter names to tensors")
    return obj


# --------------------------------------------------------------------------------------------- messages


def _not_available_message(entry: WeightsEntry) -> str:
    prototxt = entry.provenance.prototxt or "P.prototxt"
    caffemodel = entry.provenance.caffemodel or "M.caffemodel"
    return (
        f"weights {entry.spec} are listed but not published yet (status {entry.status!r}). "
        f"Convert them locally from the original Caffe release:\n"
        f"  senet-zoo convert --prototxt {prototxt} --caffemodel {caffemodel} --out DIR\n"
        f'then load them with create_model({entry.name!r}, pretrained="DIR/model.safetensors").'
    )


def _failure_message(entry: WeightsEntry, attempts: list[tuple[str, str]], offline: bool) -> str:
    """Each source with its short cause, where a file placed by hand goes, what it must match, and the way out."""
    if offline:
        header = f"{entry.spec} is not in the local cache and offline mode is on ({' / '.join(OFFLINE_ENVS)})"
    else:
        header = f"could not download {entry.spec} from any source"
    tried = "\n".join(f"  - {where}: {why}" for where, why in attempts)
    size = f"{entry.size} bytes" if entry.size is not None else "size not recorded"
    return (
        f"{header}. Tried:\n{tried}\n"
        f"To place the file by hand, copy it to {cached_path(entry)}; it must match {entry.digest_description()}"
        f" ({size}).\n"
        f"To go on without these weights: --pretrained none (CLI) or pretrained=False (Python)."
    )


# --------------------------------------------------------------------------------------------- verification


def _check_digest(entry: WeightsEntry, size: int, digest: str) -> str | None:
    """None when ``size``/``digest`` match the entry, else the reason they do not."""
    if entry.size is not None and size != entry.size:
        return f"size mismatch: expected {entry.size} bytes, got {size}"
    if entry.sha256 is not None and digest != entry.sha256:
        return f"sha256 mismatch: expected {entry.sha256}, got {digest}"
    if entry.sha256_prefix is not None and not digest.startswith(entry.sha256_prefix):
        return f"sha256 mismatch: expected prefix {entry.sha256_prefix}, got {digest}"
    return None


def _identity(path: Path, digest: str) -> dict[str, Any]:
    st = path.stat()
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "sha256": digest,
    }


def _stamp_trusted(entry: WeightsEntry, path: Path, stamp: Path) -> bool:
    """The stamp describes this very file (one ``stat``, no hashing) and its digest is the entry's."""
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
        digest = recorded["sha256"]
        return (
            isinstance(recorded, dict)
            and recorded == _identity(path, digest)
            and _check_digest(entry, recorded["size"], digest) is None
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_stamp(path: Path, stamp: Path, digest: str) -> None:
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_identity(path, digest)), encoding="utf-8")
    os.replace(tmp, stamp)


def _verify_file(entry: WeightsEntry, path: Path, stamp: Path, *, progress: bool, force: bool) -> str | None:
    """None when ``path`` holds ``entry``'s bytes (trusting a matching stamp unless ``force``), else why not.

    A full check that passes refreshes the stamp; one that fails removes the stamp (the caller decides about
    the file)."""
    if not force and _stamp_trusted(entry, path, stamp):
        return None
    size, digest = hash_file(path, progress=progress, desc=f"verify {entry.spec}")
    problem = _check_digest(entry, size, digest)
    if problem:
        stamp.unlink(missing_ok=True)
        return problem
    _write_stamp(path, stamp, digest)
    return None


def _bar(total: int | None, initial: int, desc: str, progress: bool) -> tqdm:
    return byte_bar(total, desc, progress, initial=initial)


# --------------------------------------------------------------------------------------------- URL sources


def _fetch_url(
    entry: WeightsEntry, source: Source, *, offline: bool, progress: bool, settings: DownloadSettings, verify: bool
) -> Path:
    dest = cached_path(entry)
    problem = _check_cached(entry, dest, progress=progress, force=verify)
    if problem is None:
        return dest
    if offline:
        raise _SourceFailed(f"offline mode; {problem}")
    from filelock import FileLock, Timeout

    lock_path = cache_dir() / ".locks" / entry.name / f"{entry.tag}.{entry.filename}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info("%s: another process is downloading it; waiting for %s", entry.spec, lock_path)
        lock.acquire()
    try:
        if _check_cached(entry, dest, progress=progress, force=False) is None:  # the process we waited for did it
            return dest
        part = dest.with_name(dest.name + ".part")
        try:
            size, digest = _download_resumable(entry, str(source.url), part, progress, settings)
            problem = _check_digest(entry, size, digest)
            if problem:
                raise _SourceFailed(problem)
            os.replace(part, dest)
            fsync_dir(dest.parent)
            _write_stamp(dest, stamp_path(dest), digest)
        except Exception:
            part.unlink(missing_ok=True)  # a failed transfer leaves nothing behind (an interrupt keeps it)
            raise
    finally:
        lock.release()
    logger.info("%s: downloaded and verified %s", entry.spec, dest)
    return dest


def _check_cached(entry: WeightsEntry, dest: Path, *, progress: bool, force: bool) -> str | None:
    """None when the cached file is there and verified; otherwise why it cannot be used (a bad one is removed)."""
    stamp = stamp_path(dest)
    if not dest.is_file():
        stamp.unlink(missing_ok=True)
        return f"not cached at {dest}"
    problem = _verify_file(entry, dest, stamp, progress=progress, force=force)
    if problem is None:
        return None
    dest.unlink(missing_ok=True)
    logger.warning("%s: cached file %s failed verification (%s); removed", entry.spec, dest, problem)
    return f"the cached file {dest} failed verification ({problem}) and was removed"


class _PartialFile:
    """The ``.part`` file being written, with the running sha256 of everything in it and the byte limit."""

    def __init__(self, path: Path, limit: int, expected_size: int | None, progress: bool, desc: str) -> None:
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.limit = limit
        self.expected_size = expected_size
        if path.exists():  # left by an interrupted run (we hold the lock): hash what is there and resume
            if path.stat().st_size <= limit:
                self.offset = hash_file(path, self.hasher, desc=desc)[0]
            else:
                path.unlink()
        self.fh: IO[bytes] = path.open("ab")
        self.out = WritebackWriter(self.fh)  # written back to disk as it arrives: the closing fsync is short
        self.bar = _bar(expected_size, self.offset, desc, progress)

    def write(self, chunk: bytes) -> None:
        if self.offset + len(chunk) > self.limit:
            raise _SourceFailed(f"server sent more than the {self.limit} bytes allowed for this file")
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
            raise _SourceFailed(f"gave up: no complete transfer within the {self.settings.deadline_s:g} s deadline")

    def start_window(self, offset: int) -> None:
        self.window_start, self.window_offset = time.monotonic(), offset

    def progress(self, offset: int) -> None:
        self.check_deadline()
        now = time.monotonic()
        if now - self.window_start >= self.settings.stall_window_s:
            if offset - self.window_offset < self.settings.stall_bytes:
                raise _SourceFailed(self.stall_message(offset - self.window_offset, now - self.window_start))
            self.window_start, self.window_offset = now, offset

    def stall_message(self, received: int, seconds: float) -> str:
        return (
            f"transfer stalled: {received} bytes in {seconds:.1f} s "
            f"(less than {self.settings.stall_bytes} bytes per {self.settings.stall_window_s:g} s)"
        )


def _download_resumable(
    entry: WeightsEntry, url: str, part: Path, progress: bool, settings: DownloadSettings
) -> tuple[int, str]:
    import requests

    state = _PartialFile(part, max_download_bytes(entry), entry.size, progress, entry.spec)
    clock = _Clock(settings)
    try:
        with requests.Session() as session:
            session.max_redirects = settings.max_redirects
            attempt = 0
            while True:
                try:
                    _stream_once(session, url, state, settings, clock)
                    return state.finish()
                except requests.ConnectionError as exc:
                    cause = _connect_failure(exc)
                    if cause:  # offline, unknown host, refused: retrying will not help
                        raise _SourceFailed(cause) from exc
                    retry_exc: Exception = exc
                except (_Retryable, requests.exceptions.ChunkedEncodingError) as exc:
                    retry_exc = exc
                except requests.Timeout as exc:
                    raise _SourceFailed(f"timed out: {_short(exc)}") from exc
                except requests.RequestException as exc:  # bad URL, redirect loop, ...
                    raise _SourceFailed(f"{type(exc).__name__}: {_short(exc)}") from exc
                attempt += 1
                if attempt > settings.retries:
                    raise _SourceFailed(f"{_short(retry_exc)} (gave up after {attempt} attempts)") from retry_exc
                delay = min(settings.delay(attempt), max(0.0, clock.remaining()))
                logger.warning(
                    "%s: %s; retry %d/%d in %.2gs from byte %d",
                    entry.spec,
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
            raise _SourceFailed(f"HTTP {status} {response.reason}")
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


def _check_headers(headers: Any, state: _PartialFile, start: int) -> None:
    """Refuse before the first body byte: a compressed or HTML answer, or one longer than the limit."""
    encoding = headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise _SourceFailed(f"refused a compressed answer (Content-Encoding: {encoding}; identity was requested)")
    content_type = headers.get("Content-Type", "").lower()
    if content_type.startswith(("text/html", "application/xhtml")):
        raise _SourceFailed(f"the server answered with a web page ({content_type}), not a weights file")
    length = headers.get("Content-Length")
    if length is not None and length.isdigit() and start + int(length) > state.limit:
        raise _SourceFailed(
            f"the server announces {start + int(length)} bytes, more than the {state.limit} allowed for this file"
        )


def _copy_body(raw: Any, state: _PartialFile, clock: _Clock) -> None:
    """Copy the body as it arrives, undecoded: ``read1`` hands over every byte received before a connection drop
    (a buffered ``read(n)`` would discard them), so a retry resumes exactly where the transfer stopped."""
    from urllib3.exceptions import HTTPError as Urllib3Error
    from urllib3.exceptions import ReadTimeoutError

    read = raw.read1 if hasattr(raw, "read1") else raw.read  # read1 needs urllib3 >= 2
    clock.start_window(state.offset)
    try:
        while chunk := read(_CHUNK, decode_content=False):
            state.write(chunk)
            clock.progress(state.offset)
    except (Urllib3Error, OSError) as exc:
        if isinstance(exc, (ReadTimeoutError, TimeoutError)) or "timed out" in str(exc):
            clock.check_deadline()
            received = state.offset - clock.window_offset
            raise _SourceFailed(clock.stall_message(received, time.monotonic() - clock.window_start)) from exc
        raise _Retryable(f"connection lost after {state.offset} bytes: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    text = redact(str(exc) or type(exc).__name__)
    return text if len(text) <= 200 else text[:200] + "..."


# --------------------------------------------------------------------------------------------- HF Hub sources


def _fetch_hf(
    entry: WeightsEntry, source: Source, *, offline: bool, progress: bool, settings: DownloadSettings, verify: bool
) -> Path:
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(str(source.repo_id), str(source.filename), revision=source.revision)
    if isinstance(cached, str):  # a pinned commit in the cache: no network needed
        problem = _check_hf_file(entry, Path(cached), progress=progress, force=verify)
        if problem is None:
            return Path(cached)
        if offline:
            raise _SourceFailed(f"offline mode; {problem}")
    elif offline:
        raise _SourceFailed(f"offline mode and not in the Hugging Face cache {constants.HF_HUB_CACHE}")
    _check_hf_metadata(entry, source, settings)
    try:
        with _guarded_hub_client(entry, settings):
            local = hf_hub_download(
                repo_id=str(source.repo_id),
                filename=str(source.filename),
                revision=source.revision,
                tqdm_class=None if progress else _SilentTqdm,
            )
    except Exception as exc:  # HTTP, transport and cache errors, our own limits: next source
        raise _SourceFailed(_hf_cause(exc)) from exc
    path = Path(local)
    problem = _check_hf_file(entry, path, progress=progress, force=False)
    if problem:
        raise _SourceFailed(problem)
    return path


def _check_hf_metadata(entry: WeightsEntry, source: Source, settings: DownloadSettings) -> None:
    """Ask the Hub what it would send (one HEAD) and refuse a size over the limit or the wrong LFS digest."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(str(source.repo_id), str(source.filename), revision=source.revision)
    try:
        meta = get_hf_file_metadata(url, timeout=settings.connect_timeout_s)
    except Exception as exc:
        raise _SourceFailed(_hf_cause(exc)) from exc
    limit = max_download_bytes(entry)
    if meta.size is not None and meta.size > limit:
        raise _SourceFailed(f"the Hub announces {meta.size} bytes, more than the {limit} allowed for this file")
    etag = (meta.etag or "").strip('"').removeprefix("W/").strip('"')
    if entry.sha256 is not None and len(etag) == 64 and etag != entry.sha256:
        raise _SourceFailed(f"the Hub's file has sha256 {etag}, expected {entry.sha256}; not downloaded")


class _TransferAborted(Exception):
    """Raised inside huggingface_hub's download loop when a limit is crossed (not an httpx error: no retry)."""


@contextlib.contextmanager
def _guarded_hub_client(entry: WeightsEntry, settings: DownloadSettings) -> Iterator[None]:  # noqa: C901  (the client swap and its guards in one place)
    """Give huggingface_hub's downloads made by this thread the limits of URL downloads: the byte limit, the
    stall window (also as the read timeout) and the per-source deadline, by wrapping the transport of the client
    it creates (``set_client_factory``); the previous factory, possibly a user's own, is restored afterwards."""
    import httpx2

    owner = threading.get_ident()
    limit = max_download_bytes(entry)
    clock = _Clock(settings)

    class GuardedStream(httpx2.SyncByteStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __iter__(self) -> Iterator[bytes]:
            received = 0
            clock.start_window(0)
            for chunk in self.inner:
                received += len(chunk)
                if received > limit:
                    raise _TransferAborted(f"the Hub sent more than the {limit} bytes allowed for this file")
                try:
                    clock.progress(received)
                except _SourceFailed as exc:
                    raise _TransferAborted(str(exc)) from None
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class GuardedTransport(httpx2.BaseTransport):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def handle_request(self, request: Any) -> Any:
            if threading.get_ident() != owner:
                return self.inner.handle_request(request)
            if clock.remaining() <= 0:
                raise _TransferAborted(f"gave up: no complete transfer within the {settings.deadline_s:g} s deadline")
            timeout = dict(request.extensions.get("timeout") or {})
            timeout["read"] = min(timeout.get("read") or settings.stall_window_s, settings.stall_window_s)
            request.extensions = {**request.extensions, "timeout": timeout}
            response = self.inner.handle_request(request)
            if request.method == "GET":
                response.stream = GuardedStream(response.stream)
            return response

        def close(self) -> None:
            self.inner.close()

    def configure(client: Any) -> None:
        client._transport = GuardedTransport(client._transport)

    with configured_hub_client(configure):
        yield


def _hf_cause(exc: BaseException) -> str:
    """A one-line cause for a failed Hub call: connection problems by name, HTTP errors by their first line."""
    if isinstance(exc, _TransferAborted):
        return str(exc)
    chain = [exc, exc.__cause__, exc.__context__]
    text = " ".join(f"{type(e).__name__} {e}" for e in chain if e is not None).lower()
    if any(k in text for k in ("name or service not known", "failed to resolve", "name resolution", "nodename nor")):
        return "cannot resolve the Hub's host name (no network or wrong HF_ENDPOINT)"
    if "connection refused" in text or "connecterror" in text:
        return "cannot connect to the Hub"
    if "timeout" in text or "timed out" in text:
        return "the Hub did not answer in time"
    one_line = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {_short(Exception(one_line))}" if one_line else type(exc).__name__


class _SilentTqdm(tqdm):
    """A tqdm that never draws (``hf_hub_download`` takes a class, not a flag)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _hf_stamp(blob: Path) -> Path:
    return cache_dir() / ".verified" / f"{hashlib.sha256(str(blob).encode()).hexdigest()[:32]}.json"


def _check_hf_file(entry: WeightsEntry, path: Path, *, progress: bool, force: bool) -> str | None:
    """Check a file of the Hugging Face cache: its blob's name (the LFS sha256) and, unless a stamp vouches for
    it, its bytes. A bad blob is deleted (with the snapshot link pointing to it)."""
    blob = Path(os.path.realpath(path))
    if not blob.is_file():
        return f"the Hugging Face cache file {blob} is missing"
    problem = None
    if entry.sha256 is not None and len(blob.name) == 64 and blob.name != entry.sha256:
        problem = f"blob {blob.name} is not the expected sha256 {entry.sha256}"
    problem = problem or _verify_file(entry, blob, _hf_stamp(blob), progress=progress, force=force)
    if problem is None:
        return None
    blob.unlink(missing_ok=True)
    _hf_stamp(blob).unlink(missing_ok=True)
    if path.is_symlink():
        path.unlink()
    logger.warning("%s: Hugging Face cache file %s failed verification (%s); deleted", entry.spec, blob, problem)
    return f"{problem} in the Hugging Face cache file {blob} (deleted)"


# --------------------------------------------------------------------------------------------- cache check


@dataclass(frozen=True)
class CacheCheck:
    """The outcome of re-hashing one cached file: ``status`` is "ok", "bad" or "unknown" (no manifest entry)."""

    path: Path
    status: str
    spec: str | None = None
    problem: str | None = None
    removed: bool = False


def verify_cache(
    manifest: Manifest | None = None, *, dry_run: bool = False, progress: bool = False
) -> list[CacheCheck]:
    """Re-hash every cached file the manifest names (senet-zoo's cache and the Hub cache at pinned commits).

    Bad files are removed unless ``dry_run``; only cache files are ever touched. Files in senet-zoo's cache that
    no manifest entry names are reported as "unknown" and left alone.
    """
    manifest = manifest or load_manifest()
    results: list[CacheCheck] = []
    known: set[Path] = set()
    for entry in manifest.entries():
        if not entry.available:
            continue
        dest = cached_path(entry)
        known.add(dest)
        if dest.is_file():
            results.append(_recheck(entry, dest, stamp_path(dest), dry_run, progress, hf=False))
        for source in entry.sources:
            if source.kind == "hf":
                found = _hf_cached(source)
                if found is not None:
                    snapshot = Path(found)
                    blob = Path(os.path.realpath(snapshot))
                    results.append(_recheck(entry, snapshot, _hf_stamp(blob), dry_run, progress, hf=True))
    for own in sorted(_own_files()):
        if own not in known:
            results.append(CacheCheck(own, "unknown"))
    return results


def _own_files() -> Iterator[Path]:
    root = cache_dir()
    if not root.is_dir():
        return
    for path in root.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        if path.is_file() and not hidden and not path.name.endswith((STAMP_SUFFIX, ".part")):
            yield path


def _hf_cached(source: Source) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(str(source.repo_id), str(source.filename), revision=source.revision)
    return found if isinstance(found, str) else None


def _recheck(entry: WeightsEntry, path: Path, stamp: Path, dry_run: bool, progress: bool, *, hf: bool) -> CacheCheck:
    target = Path(os.path.realpath(path)) if hf else path
    size, digest = hash_file(target, progress=progress, desc=f"verify {entry.spec}")
    problem = _check_digest(entry, size, digest)
    if problem is None:
        _write_stamp(target, stamp, digest)
        return CacheCheck(path, "ok", entry.spec)
    if not dry_run:
        target.unlink(missing_ok=True)
        stamp.unlink(missing_ok=True)
        if path.is_symlink():
            path.unlink()
        logger.warning("%s: %s failed verification (%s); removed", entry.spec, path, problem)
    return CacheCheck(path, "bad", entry.spec, problem, removed=not dry_run)
