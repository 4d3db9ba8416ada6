"""Upload a converted weights folder to the Hugging Face Hub and record the commit in the manifest.

A converted folder (written by ``senet-zoo convert``) holds ``model.safetensors``, ``config.json`` and a
``README.md`` model card; ``config.json`` names the weights it carries under ``senet_zoo``:
``{"name": <registry name>, "tag": "caffe_in1k", "converter_version": ..., "source": {"sha256": <caffemodel>},
"weights": {"sha256": <model.safetensors>}}`` (the digests are optional; when present the weights digest must
match the file, and the caffemodel digest is recorded as provenance). Publishing creates the repository
if needed and makes ONE commit with every file; identical files produce no new commit (the client compares the
Hub's oids with the local sha256/git hashes and skips an empty commit). The manifest entry then gets status
``published``, the Hub source pinned to the commit sha, and the sha256 and size of ``model.safetensors``.
The token comes from the argument, ``HF_TOKEN`` or the saved login and is never printed or logged: a failed
Hub call (refused, unreachable, too slow: every request has ``timeout_s``, default ``$SENET_ZOO_PUBLISH_TIMEOUT``
or 60 s) becomes a one-line :class:`PublishError` with tokens and credentials redacted, even those a server
echoes back.

The model card is checked too: a card may claim the release's accuracy only when the converter matched the
source caffemodel to the authors' release (:func:`senet_zoo.convert.card.release_claim`); :attr:`PublishResult.card`
says which case a folder is, and a card that claims accuracy for other weights is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import hash_file
from .._log import get_logger
from .._redact import redact
from .download import checked_setting
from .manifest import check_repo_id, load_manifest, record_published, resolve_manifest_path

logger = get_logger(__name__)

WEIGHTS_FILE = "model.safetensors"
REQUIRED_FILES = (WEIGHTS_FILE, "config.json", "README.md")
TIMEOUT_ENV = "SENET_ZOO_PUBLISH_TIMEOUT"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class PublishError(RuntimeError):
    """The folder cannot be published (missing files, bad config, no token, ...)."""


@dataclass(frozen=True)
class UploadFile:
    """One file of the folder: name in the repository, local path, size and sha256."""

    path_in_repo: str
    local_path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class PublishResult:
    """What was (or, for a dry run, would be) published."""

    repo_id: str
    name: str
    tag: str
    files: tuple[UploadFile, ...]
    revision: str | None  # commit sha on the Hub; None for a dry run
    created_commit: bool  # False when the Hub already had identical files
    manifest_path: Path | None  # the manifest that was updated; None for a dry run or a fine-tuned model
    dry_run: bool
    card: str = ""  # what the model card claims, and why (see the module docstring)

    @property
    def weights(self) -> UploadFile:
        """The ``model.safetensors`` entry of :attr:`files`."""
        return next(f for f in self.files if f.path_in_repo == WEIGHTS_FILE)


def publish(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    name: str | None = None,
    tag: str = "caffe_in1k",
    commit_message: str | None = None,
    timeout_s: float | None = None,
) -> PublishResult:
    """Upload ``folder`` to ``repo_id`` in one commit and record the result in the manifest.

    ``name``/``tag`` default to ``config.json``'s ``senet_zoo`` block (an explicit argument must agree with
    it); the manifest must already have an entry for them. A fine-tuned model's folder
    (:func:`senet_zoo.finetune.package.package_run`, ``senet_zoo.finetune`` in config.json) is uploaded
    without a manifest entry. ``dry_run`` validates and hashes the folder only.
    """
    folder = Path(folder)
    try:
        check_repo_id(repo_id)
    except ValueError as err:
        raise PublishError(f"--repo-id must look like ORG/NAME: {err}") from None
    files, config = _read_folder(folder)
    finetuned = isinstance(config.get("senet_zoo"), dict) and "finetune" in config["senet_zoo"]
    if finetuned:  # a fine-tuned model is not a manifest entry: no tag to check or record
        tag = config["senet_zoo"].get("tag") or "finetuned"
    ident = _weights_identity(folder, config, name, tag)
    name, tag = ident.name, ident.tag
    weights = next(f for f in files if f.path_in_repo == WEIGHTS_FILE)
    if ident.weights_sha256 is not None and ident.weights_sha256 != weights.sha256:
        raise PublishError(
            f"{weights.local_path}: sha256 {weights.sha256} differs from the {ident.weights_sha256} "
            f"recorded in config.json at conversion; the file was changed, convert again"
        )
    manifest_file = None if finetuned else resolve_manifest_path(manifest_path)
    if manifest_file is not None:
        load_manifest(manifest_file).get(name, tag)  # the entry must exist before anything is uploaded
    card = "fine-tuned model: its own run's metrics" if finetuned else _check_card(folder, config)
    if dry_run:
        return PublishResult(repo_id, name, tag, files, None, False, None, True, card)

    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    token = token or get_token()
    if not token:
        raise PublishError("no Hugging Face token: set HF_TOKEN or log in with `hf auth login`")
    if timeout_s is None:
        timeout_s = checked_setting(f"${TIMEOUT_ENV}", os.environ.get(TIMEOUT_ENV) or 60.0)
    api = HfApi(token=token)
    operations = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path)) for f in files]
    try:
        with _hub_timeout(timeout_s):
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            head_before = api.repo_info(repo_id, repo_type="model").sha
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=commit_message or f"Add {name}.{tag} weights",
                repo_type="model",
            )
    except Exception as exc:  # HTTP errors, transport errors (httpx), timeouts: one line, no secrets
        raise PublishError(redact(f"{repo_id}: {_cause(exc, timeout_s)}", token)) from None
    revision = str(info.oid)
    created = revision != head_before
    logger.info("%s: %s commit %s", repo_id, "new" if created else "unchanged, head", revision)
    if manifest_file is None:
        return PublishResult(repo_id, name, tag, files, revision, created, None, False, card)
    record_published(
        manifest_file,
        name,
        tag,
        repo_id=repo_id,
        revision=revision,
        filename=WEIGHTS_FILE,
        sha256=weights.sha256,
        size=weights.size,
        converter_version=ident.converter_version,
        caffemodel_sha256=ident.caffemodel_sha256,
    )
    manifest_real = Path(os.path.realpath(manifest_file))
    return PublishResult(repo_id, name, tag, files, revision, created, manifest_real, False, card)


@contextlib.contextmanager
def _hub_timeout(seconds: float) -> Iterator[None]:
    """Give every request huggingface_hub makes a timeout (its shared client has none) for the length of the
    block, through the public ``get_session()``; the client's own timeout is put back afterwards."""
    from huggingface_hub import get_session

    session = get_session()
    previous = session.timeout
    session.timeout = seconds
    try:
        yield
    finally:
        session.timeout = previous


def _cause(exc: BaseException, timeout_s: float) -> str:
    """One line: what went wrong talking to the Hub."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = f"{type(exc).__name__} {text}".lower()
    if "timeout" in lowered or "timed out" in lowered:
        return f"the Hub did not answer within {timeout_s:g} s ({type(exc).__name__})"
    if any(k in lowered for k in ("connecterror", "connection refused", "name or service not known", "resolve")):
        return f"cannot reach the Hub ({type(exc).__name__}: {text[:200]})"
    return f"{type(exc).__name__}: {text[:300]}"


def _check_card(folder: Path, config: dict[str, Any]) -> str:
    """What the card claims; a card claiming the release's accuracy for other weights is refused."""
    from ..convert.card import card_claims_accuracy, release_claim

    reason = release_claim(config)
    card_file = folder / "README.md"
    claims = card_claims_accuracy(card_file.read_text(encoding="utf-8"))
    if claims and reason is not None:
        raise PublishError(
            f"{card_file}: the model card claims the release's accuracy, but {reason}; "
            f"re-render it with `senet-zoo convert` (or write a card without the claim)"
        )
    if claims:
        return "claims the release's reported accuracy (the source caffemodel is the authors' release)"
    return f"no accuracy claim ({reason})" if reason else "no accuracy claim"


def _read_folder(folder: Path) -> tuple[tuple[UploadFile, ...], dict[str, Any]]:
    """Validate the folder and hash its top-level files (hidden files and sub-folders are not uploaded)."""
    if not folder.is_dir():
        raise PublishError(f"{folder}: not a directory")
    missing = [n for n in REQUIRED_FILES if not (folder / n).is_file()]
    if missing:
        raise PublishError(f"{folder}: missing {', '.join(missing)} (expected the output of `senet-zoo convert`)")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishError(f"{folder / 'config.json'}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise PublishError(f"{folder / 'config.json'}: expected a JSON object")
    _check_safetensors(folder / WEIGHTS_FILE)
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            logger.info("not uploading %s", path)
            continue
        files.append(UploadFile(path.name, path, *hash_file(path)))
    return tuple(files), config


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            keys = list(fh.keys())
    except Exception as exc:  # safetensors raises its own error types for malformed headers
        raise PublishError(f"{path}: not a readable safetensors file ({exc})") from exc
    if not keys:
        raise PublishError(f"{path}: holds no tensors")


@dataclass(frozen=True)
class _Identity:
    """What ``config.json``'s ``senet_zoo`` block says about the weights in the folder."""

    name: str
    tag: str
    converter_version: str | None
    caffemodel_sha256: str | None
    weights_sha256: str | None


def _weights_identity(folder: Path, config: dict[str, Any], name: str | None, tag: str) -> _Identity:
    where = folder / "config.json"
    block = config.get("senet_zoo")
    if not isinstance(block, dict):
        block = {}
    config_name, config_tag = block.get("name"), block.get("tag")
    for what, given, found in (("name", name, config_name), ("tag", tag, config_tag)):
        if given is not None and found is not None and given != found:
            raise PublishError(f"{where}: senet_zoo.{what} is {found!r} but {given!r} was asked for")
    name = name or config_name
    if not isinstance(name, str) or not name:
        raise PublishError(f"{where}: no senet_zoo.name (registry name); pass name= explicitly")
    version = block.get("converter_version")
    return _Identity(
        name=name,
        tag=config_tag or tag,
        converter_version=str(version) if version is not None else None,
        caffemodel_sha256=_digest(block, "source", where),
        weights_sha256=_digest(block, "weights", where),
    )


def _digest(block: dict[str, Any], key: str, where: Path) -> str | None:
    """``senet_zoo.<key>.sha256`` when present (64 lowercase hex digits)."""
    section = block.get(key)
    digest = section.get("sha256") if isinstance(section, dict) else None
    if digest is not None and not (isinstance(digest, str) and _SHA256_RE.fullmatch(digest)):
        raise PublishError(f"{where}: senet_zoo.{key}.sha256 is not a sha256 hex digest: {digest!r}")
    return digest
