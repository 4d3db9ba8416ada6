"""The weights a manifest entry names, as a verified local file: caches, sources, verification.

A cached copy is used first: senet-zoo's own (``<torch hub dir>/senet_zoo/<name>/<tag>/<filename>``), then a Hub
file already in the Hugging Face cache at the pinned commit (``try_to_load_from_cache``). Verified once, a copy is
trusted by a stamp (``<filename>.verified.json``: size, mtime_ns, ctime_ns, inode, sha256); any difference
re-hashes it before use. A copy that fails is removed, and only a cache's own: a link is unlinked as a link, and
the file behind it deleted only when it resolves inside that cache (:func:`_discard`).

Otherwise sources are tried in manifest order, each streamed by :func:`~senet_zoo.hub.download.download`: a URL
as it is, a Hub source as ``huggingface_hub.hf_hub_url`` at its pinned commit with the headers of
``huggingface_hub.utils.build_hf_headers`` (``requests`` drops the token when the Hub redirects to its storage).
One process downloads while others wait on a file lock; the file is fsynced, verified (size and sha256, or the
sha256 prefix of legacy files) and renamed into place. ``SENET_ZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` use the
caches only. Messages go through :func:`~senet_zoo._redact.redact`: tokens and URL credentials are never printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import fsync_dir, hash_file, write_text_atomic
from .._log import get_logger
from .._redact import redact, register_url_credentials
from .download import DownloadFailed, DownloadSettings, download
from .manifest import Manifest, Source, WeightsEntry, load_manifest

logger = get_logger(__name__)

OFFLINE_ENVS = ("SENET_ZOO_OFFLINE", "HF_HUB_OFFLINE")
STAMP_SUFFIX = ".verified.json"


class WeightsNotAvailableError(RuntimeError):
    """The manifest lists these weights but their files are not published yet."""


class DownloadError(RuntimeError):
    """No cache or source gave a verified file; ``attempts`` holds ``(where, reason)`` for each one that failed."""

    def __init__(self, message: str, attempts: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.attempts = attempts


def is_offline() -> bool:
    """True when ``SENET_ZOO_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to a true value."""
    return any(os.environ.get(var, "").upper() in ("1", "ON", "YES", "TRUE") for var in OFFLINE_ENVS)


def cache_dir() -> Path:
    """Where downloads live: ``<torch hub dir>/senet_zoo`` (``$TORCH_HOME/hub/senet_zoo``).

    Uses ``torch.hub.get_dir()`` when torch is already imported (it honours ``torch.hub.set_dir``); otherwise
    the same rule torch applies, so that fetching does not pay for importing torch.
    """
    if "torch.hub" in sys.modules:
        return Path(sys.modules["torch.hub"].get_dir()) / "senet_zoo"
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(torch_home).expanduser() / "hub" / "senet_zoo"


def cached_path(entry: WeightsEntry) -> Path:
    """The cache location of ``entry``'s file."""
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
    from ..catalog import CAFFE_RELEASES

    release = CAFFE_RELEASES.get(entry.name)
    if release is None:  # a private manifest's name
        return 2 << 30
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
    """Return a local, verified copy of ``entry``'s file: a cached copy, else a download from the first source that
    works. ``verify`` re-hashes a cached file even when its stamp matches."""
    if not entry.available:
        raise WeightsNotAvailableError(_not_available_message(entry))
    settings = settings or DownloadSettings.from_env()
    offline = is_offline()
    attempts: list[tuple[str, str]] = []
    for path, stamp, root in _cached_copies(entry):
        problem, fate = _check_file(entry, path, stamp, root, progress=progress, force=verify)
        if problem is None:
            return path
        attempts.append((str(path), f"failed verification ({problem}) ({fate})"))
    if offline:
        from huggingface_hub import constants

        hub = any(source.kind == "hf" for source in entry.sources)
        hf_cache = f" nor in the Hugging Face cache {constants.HF_HUB_CACHE}" if hub else ""
        attempts.append(("offline mode", f"not cached at {cached_path(entry)}{hf_cache}"))
        raise DownloadError(_failure_message(entry, attempts, offline), attempts)
    for source in entry.sources:
        register_url_credentials(source.url)
        try:
            return _download(entry, source, settings, progress)
        except DownloadFailed as exc:
            attempts.append((source.describe(), redact(exc)))
            logger.warning("%s: %s failed: %s", entry.spec, *attempts[-1])
    raise DownloadError(_failure_message(entry, attempts, offline), attempts)


def _not_available_message(entry: WeightsEntry) -> str:
    status = f"weights {entry.spec} are listed but not published yet (status {entry.status!r})"
    if entry.provenance.caffemodel is None:  # a non-SE backbone's weights (pretrained="backbone")
        return (
            f"{status}: {entry.provenance.notes or ''}\nSave the backbone's state dict to a .safetensors file and load "
            f"it with create_model({entry.name!r}, pretrained={entry.tag!r}, pretrained_cfg_overlay=dict(file=PATH))."
        )
    return (
        f"{status}. Convert them locally from the original Caffe release:\n  senet-zoo convert --prototxt "
        f"{entry.provenance.prototxt or 'P.prototxt'} --caffemodel {entry.provenance.caffemodel} --out DIR\n"
        f'then load them with create_model({entry.name!r}, pretrained="DIR/model.safetensors").'
    )


def _failure_message(entry: WeightsEntry, attempts: list[tuple[str, str]], offline: bool) -> str:
    """Each source with its short cause, where a file placed by hand goes, what it must match, and the way out."""
    if offline:
        header = f"{entry.spec} is not in the local cache and offline mode is on ({' / '.join(OFFLINE_ENVS)})"
    else:
        header = f"could not download {entry.spec} from any source"
    tried = "".join(f"\n  - {where}: {why}" for where, why in attempts)
    size = f"{entry.size} bytes" if entry.size is not None else "size not recorded"
    return (
        f"{header}. Tried:{tried}\nTo place the file by hand, copy it to {cached_path(entry)}; it must match "
        f"{entry.digest_description()} ({size}).\n"
        "To go on without these weights: --pretrained none (CLI) or pretrained=False (Python)."
    )


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
    return dict(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, inode=st.st_ino, sha256=digest)


def _stamp_trusted(entry: WeightsEntry, path: Path, stamp: Path) -> bool:
    """The stamp describes this very file (one ``stat``, no hashing) and its digest is the entry's."""
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
        digest = recorded["sha256"]
        return recorded == _identity(path, digest) and _check_digest(entry, recorded["size"], digest) is None
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _check_file(
    entry: WeightsEntry, path: Path, stamp: Path, root: Path, *, progress: bool, force: bool, dry_run: bool = False
) -> tuple[str | None, str]:
    """Verify a file of the cache at ``root``: ``(None, "")`` when it holds ``entry``'s bytes (a matching stamp is
    trusted unless ``force``; a full check that passes refreshes it), else the problem and what became of the
    file. Unless ``dry_run``, a bad file loses its stamp and is discarded (:func:`_discard`)."""
    if not force and _stamp_trusted(entry, path, stamp):
        return None, ""
    size, digest = hash_file(path, progress=progress, desc=f"verify {entry.spec}")
    problem = _check_digest(entry, size, digest)
    if problem is None:
        write_text_atomic(stamp, json.dumps(_identity(path, digest)))
        return None, ""
    if dry_run:
        return problem, "would remove"
    stamp.unlink(missing_ok=True)
    fate = "deleted" if _discard(path, root) else "left in place: outside the cache"
    logger.warning("%s: %s failed verification (%s); %s", entry.spec, path, problem, fate)
    return problem, fate


def _discard(path: Path, root: Path) -> bool:
    """Remove a bad cache file without deleting anything outside ``root``: a link is unlinked as a link, and the
    file behind ``path`` is deleted only when it resolves inside ``root``. True when the bad bytes are gone."""
    target = Path(os.path.realpath(path))
    inside = target.is_relative_to(os.path.realpath(root))
    if inside:
        target.unlink(missing_ok=True)
    if path.is_symlink():
        path.unlink()
    elif not inside and path.exists():
        logger.warning("%s resolves to %s, outside the cache %s: left in place", path, target, root)
        return False
    return True


def _cached_copies(entry: WeightsEntry) -> list[tuple[Path, Path, Path]]:
    """Where ``entry``'s file may already be, as (file, stamp, cache root): senet-zoo's cache, then the Hugging Face
    cache at each Hub source's pinned commit (``try_to_load_from_cache``; that file's stamp lives in senet-zoo's
    cache, named by the blob the file resolves to; the root is the repository's folder, as the cache lays it out)."""
    dest = cached_path(entry)
    copies = [(dest, stamp_path(dest), cache_dir())] if dest.is_file() else []
    if not copies:
        stamp_path(dest).unlink(missing_ok=True)  # a stamp that outlived its file
    for source in entry.sources:
        if source.kind == "hf":
            from huggingface_hub import constants, try_to_load_from_cache

            found = try_to_load_from_cache(str(source.repo_id), str(source.filename), revision=source.revision)
            if isinstance(found, str):
                blob = hashlib.sha256(os.path.realpath(found).encode()).hexdigest()[:32]
                repo = Path(constants.HF_HUB_CACHE) / f"models--{str(source.repo_id).replace('/', '--')}"
                copies.append((Path(found), cache_dir() / ".verified" / f"{blob}.json", repo))
    return copies


def _download(entry: WeightsEntry, source: Source, settings: DownloadSettings, progress: bool) -> Path:
    """Download ``source`` into senet-zoo's cache (one process at a time), verify it and stamp it."""
    from filelock import FileLock, Timeout

    dest = cached_path(entry)
    lock_path = cache_dir() / ".locks" / entry.name / f"{entry.tag}.{entry.filename}.lock"
    for folder in (lock_path.parent, dest.parent):
        folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        held = lock.acquire(timeout=0)
    except Timeout:
        logger.info("%s: another process is downloading it; waiting for %s", entry.spec, lock_path)
        held = lock.acquire()
    with held:
        if dest.is_file():  # the process we waited for may have downloaded it
            if _check_file(entry, dest, stamp_path(dest), cache_dir(), progress=progress, force=False)[0] is None:
                return dest
        url, headers = _source_request(source)
        part = dest.with_name(dest.name + ".part")
        try:
            size, digest = download(
                url,
                part,
                limit=max_download_bytes(entry),
                size=entry.size,
                sha256=entry.sha256,
                headers=headers,
                settings=settings,
                progress=progress,
                desc=entry.spec,
            )
            if problem := _check_digest(entry, size, digest):
                raise DownloadFailed(f"{problem} in the download (deleted)")
            os.replace(part, dest)
            fsync_dir(dest.parent)
            write_text_atomic(stamp_path(dest), json.dumps(_identity(dest, digest)))
        except Exception:
            part.unlink(missing_ok=True)  # a failed transfer leaves nothing behind (an interrupt keeps it)
            raise
    logger.info("%s: downloaded and verified %s", entry.spec, dest)
    return dest


def _source_request(source: Source) -> tuple[str, dict[str, str]]:
    """The URL to stream and the headers to send: a Hub source becomes its file's URL at the pinned commit."""
    if source.kind != "hf":
        return str(source.url), {}
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    from .._version import __version__

    url = hf_hub_url(str(source.repo_id), str(source.filename), revision=source.revision)
    return url, build_hf_headers(library_name="senet-zoo", library_version=__version__)


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

    Bad files are removed unless ``dry_run``, the way :func:`_discard` does: only a cache's own files are ever
    deleted. Files in senet-zoo's cache that no manifest entry names are reported as "unknown" and left alone.
    """
    results: list[CacheCheck] = []
    known: set[Path] = set()
    for entry in (manifest or load_manifest()).entries():
        if not entry.available:
            continue
        known.add(cached_path(entry))
        for path, stamp, root in _cached_copies(entry):
            problem, fate = _check_file(entry, path, stamp, root, progress=progress, force=True, dry_run=dry_run)
            results.append(CacheCheck(path, "bad" if problem else "ok", entry.spec, problem, fate == "deleted"))
    root = cache_dir()
    for path in sorted(root.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
        if path.is_file() and not hidden and not path.name.endswith((STAMP_SUFFIX, ".part")) and path not in known:
            results.append(CacheCheck(path, "unknown"))
    return results
