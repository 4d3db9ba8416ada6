"""Verified, resumable, locked download of the weights a manifest entry names.

Sources are tried in manifest order. Plain URLs are streamed with ``requests`` into
``<torch hub dir>/senet_zoo/<name>/<tag>/<filename>``: the sha256 is computed while streaming, an interrupted
transfer resumes with an HTTP ``Range`` request (and restarts cleanly if the server answers 200 instead of 206),
connection errors and 5xx answers are retried a bounded number of times with exponential back-off, one process
downloads while others wait on a file lock, and the file is fsynced and verified (size and sha256, or the
sha256 prefix for legacy files) before an atomic rename. A file in the cache is therefore always verified.
Hugging Face Hub sources go through ``huggingface_hub.hf_hub_download`` at the pinned commit (HF's own cache);
the file it returns is verified too and deleted on mismatch (a small stamp under ``<cache>/.verified`` records a
good check, so later loads do not hash the file again). ``SENET_ZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` use the
caches only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

from .._files import fsync_dir, hash_file
from .manifest import Manifest, Source, WeightsEntry, load_manifest

logger = logging.getLogger(__name__)

OFFLINE_ENVS = ("SENET_ZOO_OFFLINE", "HF_HUB_OFFLINE")
_TRUE = {"1", "ON", "YES", "TRUE"}
_CHUNK = 1 << 20
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


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
    """A transient failure (connection error, 5xx) worth another attempt."""


@dataclass(frozen=True)
class DownloadSettings:
    """Retry and timeout policy for URL downloads (environment overrides keep tests and CI fast)."""

    retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0

    @classmethod
    def from_env(cls) -> DownloadSettings:
        """Defaults, overridden by ``SENET_ZOO_DOWNLOAD_RETRIES`` / ``SENET_ZOO_DOWNLOAD_BACKOFF``."""
        return cls(
            retries=int(os.environ.get("SENET_ZOO_DOWNLOAD_RETRIES", cls.retries)),
            backoff_s=float(os.environ.get("SENET_ZOO_DOWNLOAD_BACKOFF", cls.backoff_s)),
        )

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


def fetch_weights(
    name: str,
    tag: str | None = None,
    *,
    manifest: Manifest | str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> tuple[Path, WeightsEntry]:
    """Look ``name[.tag]`` up in the manifest (default: the shipped one) and return a verified local file."""
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    entry = manifest.get(name, tag)
    return fetch(entry, progress=progress), entry


def fetch(entry: WeightsEntry, *, progress: bool = True, settings: DownloadSettings | None = None) -> Path:
    """Return a local, verified copy of ``entry``'s file, downloading it from the first source that works."""
    if not entry.available:
        raise WeightsNotAvailableError(_not_available_message(entry))
    settings = settings or DownloadSettings.from_env()
    offline = is_offline()
    attempts: list[tuple[str, str]] = []
    for source in entry.sources:
        try:
            if source.kind == "hf":
                return _fetch_hf(entry, source, offline=offline, progress=progress)
            return _fetch_url(entry, source, offline=offline, progress=progress, settings=settings)
        except _SourceFailed as exc:
            logger.log(
                logging.INFO if offline else logging.WARNING, "%s: %s failed: %s", entry.spec, source.describe(), exc
            )
            attempts.append((source.describe(), str(exc)))
    tried = "\n".join(f"  - {where}: {why}" for where, why in attempts)
    if offline:
        header = (
            f"{entry.spec} is not in the local cache and offline mode is on "
            f"({' / '.join(OFFLINE_ENVS)}); unset it to download"
        )
    else:
        header = f"could not download {entry.spec} ({entry.digest_description()}) from any source"
    raise DownloadError(f"{header}. Tried:\n{tried}", attempts)


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


def _bar(total: int | None, initial: int, desc: str, progress: bool) -> tqdm:
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not progress,
        leave=False,
    )


# --------------------------------------------------------------------------------------------- URL sources


def _fetch_url(
    entry: WeightsEntry, source: Source, *, offline: bool, progress: bool, settings: DownloadSettings
) -> Path:
    dest = cached_path(entry)
    if _usable_cached(entry, dest):
        return dest
    if offline:
        raise _SourceFailed(f"offline mode and not cached at {dest}")
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
        if _usable_cached(entry, dest):  # the process we waited for finished the job
            return dest
        part = dest.with_name(dest.name + ".part")
        try:
            size, digest = _download_resumable(entry, str(source.url), part, progress, settings)
            problem = _check_digest(entry, size, digest)
            if problem:
                raise _SourceFailed(problem)
            os.replace(part, dest)
            fsync_dir(dest.parent)
        except Exception:
            part.unlink(missing_ok=True)  # a failed transfer leaves nothing behind (an interrupt keeps it)
            raise
    finally:
        lock.release()
    logger.info("%s: downloaded and verified %s", entry.spec, dest)
    return dest


def _usable_cached(entry: WeightsEntry, dest: Path) -> bool:
    """A cached file was verified before its rename; a wrong size means someone else touched it."""
    if not dest.is_file():
        return False
    if entry.size is not None and dest.stat().st_size != entry.size:
        logger.warning("%s: cached file %s has the wrong size; downloading again", entry.spec, dest)
        dest.unlink()
        return False
    return True


class _PartialFile:
    """The ``.part`` file being written, with the running sha256 of everything in it."""

    def __init__(self, path: Path, expected_size: int | None, progress: bool, desc: str) -> None:
        self.hasher = hashlib.sha256()
        self.offset = 0
        self.expected_size = expected_size
        if path.exists():  # left by an interrupted run (we hold the lock): hash what is there and resume
            self.offset = hash_file(path, self.hasher, desc=desc)[0]
            if expected_size is not None and self.offset > expected_size:
                path.unlink()
                self.hasher, self.offset = hashlib.sha256(), 0
        self.fh: IO[bytes] = path.open("ab")
        self.bar = _bar(expected_size, self.offset, desc, progress)

    def write(self, chunk: bytes) -> None:
        if self.expected_size is not None and self.offset + len(chunk) > self.expected_size:
            raise _SourceFailed(f"server sent more than the expected {self.expected_size} bytes")
        self.fh.write(chunk)
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


def _download_resumable(
    entry: WeightsEntry, url: str, part: Path, progress: bool, settings: DownloadSettings
) -> tuple[int, str]:
    import requests

    state = _PartialFile(part, entry.size, progress, entry.spec)
    try:
        with requests.Session() as session:
            attempt = 0
            while True:
                try:
                    _stream_once(session, url, state, settings)
                    return state.finish()
                except (
                    _Retryable,
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                ) as exc:
                    attempt += 1
                    if attempt > settings.retries:
                        raise _SourceFailed(f"{_short(exc)} (gave up after {attempt} attempts)") from exc
                    delay = settings.delay(attempt)
                    logger.warning(
                        "%s: %s; retry %d/%d in %.2gs from byte %d",
                        entry.spec,
                        _short(exc),
                        attempt,
                        settings.retries,
                        delay,
                        state.offset,
                    )
                    time.sleep(delay)
                except requests.RequestException as exc:  # bad URL, redirect loop, undecodable body, ...
                    raise _SourceFailed(f"{type(exc).__name__}: {_short(exc)}") from exc
    finally:
        state.close()


def _stream_once(session: Any, url: str, state: _PartialFile, settings: DownloadSettings) -> None:
    headers = {"Accept-Encoding": "identity"}
    resume_from = state.offset
    if resume_from:
        headers["Range"] = f"bytes={resume_from}-"
    timeout = (settings.connect_timeout_s, settings.read_timeout_s)
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
        if status == 200 and resume_from:
            logger.info("server ignored the Range request; restarting from byte 0")
            state.restart()
        elif status == 206:
            match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != resume_from:
                state.restart()
                raise _Retryable(f"unexpected Content-Range {response.headers.get('Content-Range')!r}")
        _copy_body(response.raw, state)


def _copy_body(raw: Any, state: _PartialFile) -> None:
    """Copy the body as it arrives: ``read1`` hands over every byte received before a connection drop (a
    buffered ``read(n)`` would discard them), so a retry resumes exactly where the transfer stopped."""
    from urllib3.exceptions import HTTPError as Urllib3Error

    read = raw.read1 if hasattr(raw, "read1") else raw.read  # read1 needs urllib3 >= 2
    try:
        while chunk := read(_CHUNK, decode_content=True):
            state.write(chunk)
    except (Urllib3Error, OSError) as exc:
        raise _Retryable(f"connection lost after {state.offset} bytes: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


# --------------------------------------------------------------------------------------------- HF Hub sources


def _fetch_hf(entry: WeightsEntry, source: Source, *, offline: bool, progress: bool) -> Path:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        local = hf_hub_download(
            repo_id=str(source.repo_id),
            filename=str(source.filename),
            revision=source.revision,
            local_files_only=offline,
            tqdm_class=None if progress else _SilentTqdm,
        )
    except LocalEntryNotFoundError as exc:
        where = constants.HF_HUB_CACHE
        if offline:
            raise _SourceFailed(f"offline mode and not cached in the Hugging Face cache {where}") from exc
        raise _SourceFailed(f"not reachable and not cached in {where}: {_short(exc)}") from exc
    except Exception as exc:  # HTTP, transport (httpx/requests by hub version) and cache errors: next source
        raise _SourceFailed(f"{type(exc).__name__}: {_short(exc)}") from exc
    path = Path(local)
    _verify_hf_file(entry, path, progress)
    return path


class _SilentTqdm(tqdm):
    """A tqdm that never draws (``hf_hub_download`` takes a class, not a flag)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _verify_hf_file(entry: WeightsEntry, path: Path, progress: bool) -> None:
    """Check the file ``hf_hub_download`` returned; remember a good result, delete a bad file."""
    blob = Path(os.path.realpath(path))
    stat = blob.stat()
    identity = {
        "path": str(blob),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
        "sha256": entry.sha256 or entry.sha256_prefix,
    }
    stamp = cache_dir() / ".verified" / f"{hashlib.sha256(str(blob).encode()).hexdigest()[:32]}.json"
    try:
        if json.loads(stamp.read_text()) == identity:
            return
    except (OSError, ValueError):
        pass
    hasher = hashlib.sha256()
    size = hash_file(blob, hasher, progress=progress, desc=f"verify {entry.spec}")[0]
    problem = _check_digest(entry, size, hasher.hexdigest())
    if problem:
        blob.unlink(missing_ok=True)
        if path.is_symlink():
            path.unlink()
        raise _SourceFailed(f"{problem} in the Hugging Face cache file {blob} (deleted)")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(identity))
    os.replace(tmp, stamp)
