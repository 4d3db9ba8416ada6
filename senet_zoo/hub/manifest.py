"""The weights manifest: which weights exist for each registry name, where to get them, how to check them.

``weights_manifest.json`` (repository root; shipped inside the package as ``senet_zoo/weights_manifest.json``)
is the single source of truth for pretrained weights. Layout::

    {"schema_version": 1,
     "description": "...",
     "models": {"<registry name>": {"default_tag": "<tag>",
                                    "weights": {"<tag>": <entry>, ...}}}}

An entry holds ``status`` ("published" or "pending"), ``format`` ("safetensors" or "pth"), ``filename`` (the
cache file name), ``sources`` (tried in order: ``{"type": "hf", "repo_id", "revision" (40-hex commit),
"filename"}`` or ``{"type": "url", "url"}``), exactly one of ``sha256`` (full digest) or ``sha256_prefix``
(legacy files whose name only carries a digest prefix) once published, ``size`` (bytes; may be null only with
a prefix), and the ``preprocessing`` / ``metrics`` / ``license`` / ``provenance`` that belong to these weights.

Default tag rule: each model names its ``default_tag`` explicitly. The converted Caffe weights (``caffe_in1k``)
are the default once published; until then the legacy PyTorch port (``cadene_in1k``) is. Validation enforces
that a model with any published entry defaults to a published one, and :func:`record_published` moves the
default to the entry it publishes.

The file is validated on load; every problem raises :class:`ManifestError` naming the file, model, tag and key.
Writes (:func:`update_entry`, :func:`record_published`) re-validate, keep key order and 2-space indentation,
and replace the file atomically (temp file in the same directory, fsync, ``os.replace``) after resolving
symlinks, so the packaged symlink keeps pointing at the canonical file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._files import write_text_atomic
from .redact import redact

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST_ENV = "SENET_ZOO_MANIFEST"
STATUSES = ("published", "pending")
FORMAT_SUFFIXES = {"safetensors": (".safetensors",), "pth": (".pth", ".pt", ".bin")}
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos", "box", "hamming")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_HEX_PREFIX_RE = re.compile(r"^[0-9a-f]{8,63}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")

_TOP_KEYS = {"schema_version": True, "description": False, "models": True}
_MODEL_KEYS = {"default_tag": True, "weights": True}
_ENTRY_KEYS = {
    "status": True,
    "format": True,
    "filename": True,
    "sources": True,
    "sha256": False,
    "sha256_prefix": False,
    "size": False,
    "preprocessing": True,
    "metrics": True,
    "license": True,
    "provenance": True,
}
_HF_SOURCE_KEYS = {"type": True, "repo_id": True, "revision": True, "filename": True}
_URL_SOURCE_KEYS = {"type": True, "url": True}
_PREPROCESSING_KEYS = {"mean": True, "std": True, "input_size": True, "crop_pct": True, "interpolation": True}
_METRICS_KEYS = {"dataset": True, "protocol": True, "top1_acc": True, "top5_acc": True, "source": True}
_PROVENANCE_KEYS = {
    "caffemodel": True,
    "caffemodel_sha256": True,
    "prototxt": True,
    "converter": True,
    "converter_version": True,
    "notes": False,
}


class ManifestError(ValueError):
    """The manifest file is malformed; the message names the file, model, tag and key."""


class UnknownWeightsError(KeyError):
    """A model name or tag that the manifest does not have; the message lists what exists."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Source:
    """One place to download a weights file from: a pinned Hugging Face Hub file or a plain URL."""

    kind: str  # "hf" or "url"
    url: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    filename: str | None = None

    def describe(self) -> str:
        """A one-line human-readable location, used in logs and error messages."""
        if self.kind == "hf":
            return f"hf://{self.repo_id}@{self.revision}/{self.filename}"
        return redact(self.url)  # a mirror URL may carry user:password@

    def to_dict(self) -> dict[str, Any]:
        """The manifest JSON form of this source."""
        if self.kind == "hf":
            return {"type": "hf", "repo_id": self.repo_id, "revision": self.revision, "filename": self.filename}
        return {"type": "url", "url": self.url}


class _FieldMapping(Mapping[str, Any]):
    """Read-only dict view of a frozen dataclass: ``entry.preprocessing["mean"]`` equals ``.mean``."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._field_names())

    def __len__(self) -> int:
        return len(self._field_names())

    def _field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Preprocessing(_FieldMapping):
    """Input transform these weights were trained/evaluated with (belongs to the weights, not the architecture)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int, int]
    crop_pct: float
    interpolation: str

    def as_pretrained_cfg(self) -> dict[str, Any]:
        """The keys timm's ``pretrained_cfg`` uses for the same information."""
        return {
            "mean": self.mean,
            "std": self.std,
            "input_size": self.input_size,
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
        }


@dataclass(frozen=True)
class Metrics(_FieldMapping):
    """Reported ImageNet accuracy (percent) of these weights and where the numbers come from."""

    dataset: str
    protocol: str
    top1_acc: float
    top5_acc: float
    source: str


@dataclass(frozen=True)
class Provenance(_FieldMapping):
    """Where the weights come from: the original Caffe files and the tool that converted them."""

    caffemodel: str | None
    caffemodel_sha256: str | None
    prototxt: str | None
    converter: str
    converter_version: str | None
    notes: str | None = None


@dataclass(frozen=True)
class WeightsEntry:
    """One set of weights for one registry name, as listed in the manifest."""

    name: str
    tag: str
    status: str
    filename: str
    sources: tuple[Source, ...]
    sha256: str | None
    sha256_prefix: str | None
    size: int | None
    format: str
    preprocessing: Preprocessing
    metrics: Metrics | None
    license: str
    provenance: Provenance

    @property
    def available(self) -> bool:
        """True when the files are published and can be downloaded."""
        return self.status == "published" and bool(self.sources)

    @property
    def spec(self) -> str:
        """``name.tag``, the form the CLI accepts."""
        return f"{self.name}.{self.tag}"

    def digest_description(self) -> str:
        """The expected digest, marked as a prefix when only a prefix is known."""
        if self.sha256 is not None:
            return f"sha256 {self.sha256}"
        return f"sha256 prefix {self.sha256_prefix} (prefix check only)"


class Manifest:
    """A validated, parsed manifest. Use :func:`load_manifest` to get one."""

    def __init__(self, data: Mapping[str, Any], path: Path | None = None) -> None:
        self.path = path
        self._data = copy.deepcopy(dict(data))
        self._entries, self._defaults = _parse(self._data, _label(path))

    @property
    def schema_version(self) -> int:
        """Version of the manifest layout."""
        return int(self._data["schema_version"])

    def names(self) -> list[str]:
        """Registry names that have at least one weights entry, sorted."""
        return sorted(self._defaults)

    def tags(self, name: str) -> list[str]:
        """Tags available for ``name``, in manifest order."""
        self._check_name(name)
        return [tag for (n, tag) in self._entries if n == name]

    def default_tag(self, name: str) -> str:
        """The tag used when none is given (see the module docstring for the rule)."""
        self._check_name(name)
        return self._defaults[name]

    def get(self, name: str, tag: str | None = None) -> WeightsEntry:
        """The entry for ``name`` and ``tag`` (default tag when None); unknown names/tags list what exists."""
        self._check_name(name)
        tag = self._defaults[name] if tag is None else tag
        try:
            return self._entries[(name, tag)]
        except KeyError:
            raise UnknownWeightsError(
                f"model {name!r} has no weights tagged {tag!r}; known tags: {', '.join(self.tags(name))}"
            ) from None

    def entries(self) -> Iterator[WeightsEntry]:
        """All entries, model by model in sorted name order, tags in manifest order."""
        for name in self.names():
            for tag in self.tags(name):
                yield self._entries[(name, tag)]

    def to_json_dict(self) -> dict[str, Any]:
        """A deep copy of the raw manifest data (key order preserved)."""
        return copy.deepcopy(self._data)

    def _check_name(self, name: str) -> None:
        if name not in self._defaults:
            raise UnknownWeightsError(
                f"no weights for model {name!r} in {_label(self.path)}; known models: {', '.join(self.names())}"
            )


def check_repo_id(repo_id: Any) -> str:
    """A Hub model repository id ``namespace/name``, checked with huggingface_hub's own rule."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ValueError(f"expected 'namespace/name', got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"expected 'namespace/name', got {repo_id!r} ({err})") from None
    return repo_id


def split_spec(spec: str) -> tuple[str, str | None]:
    """Split ``NAME[.TAG]`` into ``(name, tag or None)``."""
    name, sep, tag = spec.partition(".")
    if not name or (sep and not tag):
        raise ValueError(f"expected NAME or NAME.TAG, got {spec!r}")
    return name, (tag if sep else None)


def shipped_manifest_path() -> Path:
    """The manifest shipped with the package (a symlink to the repository root file in a source checkout)."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "weights_manifest.json", package_dir.parent / "weights_manifest.json"):
        if candidate.is_file():
            return candidate
    raise ManifestError(f"no weights_manifest.json shipped with senet_zoo (looked in {package_dir})")


def resolve_manifest_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path`` if given, else ``$SENET_ZOO_MANIFEST``, else the shipped manifest."""
    if path is not None:
        return Path(path)
    env = os.environ.get(MANIFEST_ENV)
    return Path(env) if env else shipped_manifest_path()


_CACHE: dict[tuple[str, int, int], Manifest] = {}


def load_manifest(path: str | os.PathLike[str] | None = None) -> Manifest:
    """Load and validate a manifest (None: ``$SENET_ZOO_MANIFEST`` or the shipped one).

    Parsed manifests are cached per file and reparsed when the file changes (mtime or size).
    """
    resolved = resolve_manifest_path(path)
    try:
        stat = resolved.stat()
    except OSError as exc:
        raise ManifestError(f"{resolved}: cannot read the weights manifest ({exc.strerror})") from exc
    key = (os.path.realpath(resolved), stat.st_mtime_ns, stat.st_size)
    cached = _CACHE.get(key)
    if cached is None:
        cached = Manifest(_read_json(resolved), resolved)
        _CACHE.clear()  # one live manifest is the common case; stale versions must not linger
        _CACHE[key] = cached
    return cached


def update_entry(
    path: str | os.PathLike[str] | None,
    name: str,
    tag: str,
    changes: Mapping[str, Any],
    *,
    remove: tuple[str, ...] = (),
    default_tag: str | None = None,
) -> Manifest:
    """Set keys of one entry (existing keys keep their position, new ones are appended), drop ``remove`` keys,
    optionally change the model's default tag, validate the result and rewrite the file atomically."""

    def edit(model: dict[str, Any], entry: dict[str, Any]) -> None:
        for key in remove:
            entry.pop(key, None)
        entry.update(copy.deepcopy(dict(changes)))
        if default_tag is not None:
            model["default_tag"] = default_tag

    return _edit(path, name, tag, edit)


def record_published(
    path: str | os.PathLike[str] | None,
    name: str,
    tag: str,
    *,
    repo_id: str,
    revision: str,
    filename: str,
    sha256: str,
    size: int,
    converter_version: str | None = None,
    caffemodel_sha256: str | None = None,
    make_default: bool = True,
) -> WeightsEntry:
    """Mark ``name.tag`` as published on the Hub at commit ``revision`` with the given digest and size.

    The Hub source goes first (replacing an older source of the same repository); URL mirrors stay.
    A full ``sha256`` replaces any ``sha256_prefix``; ``converter_version`` / ``caffemodel_sha256``, when given,
    update the provenance. With ``make_default`` the entry becomes the model default.
    """
    hf_source = Source("hf", repo_id=repo_id, revision=revision, filename=filename).to_dict()

    def edit(model: dict[str, Any], entry: dict[str, Any]) -> None:
        others = [s for s in entry["sources"] if not (s.get("type") == "hf" and s.get("repo_id") == repo_id)]
        entry.pop("sha256_prefix", None)
        entry.update(status="published", sources=[hf_source, *others], sha256=sha256, size=size)
        for key, value in (("converter_version", converter_version), ("caffemodel_sha256", caffemodel_sha256)):
            if value is not None:
                entry["provenance"][key] = value
        if make_default:
            model["default_tag"] = tag

    return _edit(path, name, tag, edit).get(name, tag)


def _edit(
    path: str | os.PathLike[str] | None,
    name: str,
    tag: str,
    edit: Callable[[dict[str, Any], dict[str, Any]], None],
) -> Manifest:
    """Read-modify-write one entry under a lock: validate before and after, then replace the file atomically."""
    from filelock import FileLock

    target = Path(os.path.realpath(resolve_manifest_path(path)))
    lock_name = f"senet_zoo-manifest-{hashlib.sha1(str(target).encode()).hexdigest()[:16]}.lock"
    with FileLock(Path(tempfile.gettempdir()) / lock_name):
        data = _read_json(target)
        Manifest(data, target)  # refuse to edit a file that is already invalid
        try:
            model = data["models"][name]
            entry = model["weights"][tag]
        except KeyError:
            raise UnknownWeightsError(f"{target}: no entry {name}.{tag} to update") from None
        edit(model, entry)
        manifest = Manifest(data, target)  # validate before anything touches the disk
        write_text_atomic(target, dump_manifest_json(data))
    logger.info("updated %s.%s in %s", name, tag, target)
    return manifest


def dump_manifest_json(data: Mapping[str, Any]) -> str:
    """The canonical text form: 2-space indentation, key order kept, trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the weights manifest ({exc.strerror})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: the manifest must be a JSON object, got {type(data).__name__}")
    return data


def _label(path: Path | None) -> str:
    return str(path) if path is not None else "<manifest>"


# --------------------------------------------------------------------------------------------- validation


class _Ctx:
    """Builds error messages that name the file, model, tag and key."""

    def __init__(self, label: str, *parts: str) -> None:
        self.label = label
        self.parts = parts

    def sub(self, part: str) -> _Ctx:
        return _Ctx(self.label, *self.parts, part)

    def error(self, problem: str) -> ManifestError:
        where = ", ".join(self.parts)
        return ManifestError(f"{self.label}: {where}: {problem}" if where else f"{self.label}: {problem}")


def _check_keys(obj: Any, allowed: Mapping[str, bool], ctx: _Ctx, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ctx.error(f"{what} must be a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise ctx.error(f"unknown key(s) {', '.join(map(repr, unknown))} in {what}; allowed: {', '.join(allowed)}")
    missing = [k for k, required in allowed.items() if required and k not in obj]
    if missing:
        raise ctx.error(f"missing required key(s) {', '.join(map(repr, missing))} in {what}")
    return obj


def _string(value: Any, ctx: _Ctx, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(f"expected a non-empty string{' or null' if nullable else ''}, got {value!r}")
    return value


def _number(value: Any, ctx: _Ctx) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ctx.error(f"expected a finite number, got {value!r}")
    return float(value)


def _hex(value: Any, pattern: re.Pattern[str], what: str, ctx: _Ctx, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ctx.error(f"expected {what}, got {value!r}")
    return value


def _file_name(value: Any, ctx: _Ctx) -> str:
    name = _string(value, ctx)
    assert name is not None
    if "/" in name or "\\" in name or ".." in name or name.startswith(".") or any(ord(c) < 32 for c in name):
        raise ctx.error(f"file name {name!r} must be a plain name (no path separators, no '..', not hidden)")
    return name


def _parse(data: dict[str, Any], label: str) -> tuple[dict[tuple[str, str], WeightsEntry], dict[str, str]]:
    top = _Ctx(label)
    _check_keys(data, _TOP_KEYS, top, "the manifest")
    version = data["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise top.sub("key 'schema_version'").error(
            f"unsupported schema version {version!r} (this is {SCHEMA_VERSION})"
        )
    if "description" in data:
        _string(data["description"], top.sub("key 'description'"))
    models = data["models"]
    if not isinstance(models, dict) or not models:
        raise top.sub("key 'models'").error("expected a non-empty object mapping model names to weights")
    entries: dict[tuple[str, str], WeightsEntry] = {}
    defaults: dict[str, str] = {}
    for name, model in models.items():
        mctx = top.sub(f"model {name!r}")
        if not _NAME_RE.fullmatch(name):
            raise mctx.error("model names are lowercase letters, digits and underscores")
        _check_keys(model, _MODEL_KEYS, mctx, "the model")
        weights = model["weights"]
        if not isinstance(weights, dict) or not weights:
            raise mctx.sub("key 'weights'").error("expected a non-empty object mapping tags to entries")
        for tag, raw in weights.items():
            tctx = mctx.sub(f"tag {tag!r}")
            if not _NAME_RE.fullmatch(tag):
                raise tctx.error("tags are lowercase letters, digits and underscores")
            entries[(name, tag)] = _parse_entry(name, tag, raw, tctx)
        default = model["default_tag"]
        dctx = mctx.sub("key 'default_tag'")
        if default not in weights:
            raise dctx.error(f"default tag {default!r} is not one of the model's tags ({', '.join(weights)})")
        published = [t for t in weights if entries[(name, t)].status == "published"]
        if published and default not in published:
            raise dctx.error(f"default tag {default!r} is pending while {', '.join(published)} is published")
        defaults[name] = default
    return entries, defaults


def _parse_entry(name: str, tag: str, raw: Any, ctx: _Ctx) -> WeightsEntry:
    _check_keys(raw, _ENTRY_KEYS, ctx, "the weights entry")
    status = raw["status"]
    if status not in STATUSES:
        raise ctx.sub("key 'status'").error(f"expected one of {', '.join(STATUSES)}, got {status!r}")
    fmt = raw["format"]
    if fmt not in FORMAT_SUFFIXES:
        raise ctx.sub("key 'format'").error(f"expected one of {', '.join(FORMAT_SUFFIXES)}, got {fmt!r}")
    filename = _file_name(raw["filename"], ctx.sub("key 'filename'"))
    if not filename.endswith(FORMAT_SUFFIXES[fmt]):
        raise ctx.sub("key 'filename'").error(
            f"{filename!r} does not match format {fmt!r} (expected suffix {' or '.join(FORMAT_SUFFIXES[fmt])})"
        )
    sources = _parse_sources(raw["sources"], fmt, ctx.sub("key 'sources'"))
    sha256 = _hex(
        raw.get("sha256"), _HEX64_RE, "64 lowercase hex digits or null", ctx.sub("key 'sha256'"), nullable=True
    )
    prefix = _hex(
        raw.get("sha256_prefix"),
        _HEX_PREFIX_RE,
        "8 to 63 lowercase hex digits or null",
        ctx.sub("key 'sha256_prefix'"),
        nullable=True,
    )
    size = raw.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ctx.sub("key 'size'").error(f"expected a positive integer (bytes) or null, got {size!r}")
    if status == "published":
        if not sources:
            raise ctx.sub("key 'sources'").error("a published entry needs at least one source")
        if (sha256 is None) == (prefix is None):
            raise ctx.error("a published entry needs exactly one of 'sha256' or 'sha256_prefix'")
        if size is None and sha256 is not None:
            raise ctx.sub("key 'size'").error("size may only be unknown (null) for prefix-checked legacy files")
    elif sources or sha256 is not None or prefix is not None or size is not None:
        raise ctx.error("a pending entry has no sources, digest or size yet (publish it first)")
    return WeightsEntry(
        name=name,
        tag=tag,
        status=status,
        filename=filename,
        sources=sources,
        sha256=sha256,
        sha256_prefix=prefix,
        size=size,
        format=fmt,
        preprocessing=_parse_preprocessing(raw["preprocessing"], ctx.sub("key 'preprocessing'")),
        metrics=_parse_metrics(raw["metrics"], ctx.sub("key 'metrics'")),
        license=str(_string(raw["license"], ctx.sub("key 'license'"))),
        provenance=_parse_provenance(raw["provenance"], ctx.sub("key 'provenance'")),
    )


def _parse_sources(raw: Any, fmt: str, ctx: _Ctx) -> tuple[Source, ...]:
    if not isinstance(raw, list):
        raise ctx.error(f"expected a list of sources, got {type(raw).__name__}")
    sources = []
    for i, src in enumerate(raw):
        sctx = ctx.sub(f"source #{i}")
        kind = src.get("type") if isinstance(src, dict) else None
        if kind == "hf":
            _check_keys(src, _HF_SOURCE_KEYS, sctx, "the hf source")
            repo_id = _string(src["repo_id"], sctx.sub("key 'repo_id'"))
            assert repo_id is not None
            try:
                check_repo_id(repo_id)
            except ValueError as err:
                raise sctx.sub("key 'repo_id'").error(str(err)) from None
            revision = _hex(src["revision"], _COMMIT_RE, "a 40-hex-digit commit sha", sctx.sub("key 'revision'"))
            filename = _file_name(src["filename"], sctx.sub("key 'filename'"))
            if not filename.endswith(FORMAT_SUFFIXES[fmt]):
                raise sctx.sub("key 'filename'").error(f"{filename!r} does not match format {fmt!r}")
            sources.append(Source("hf", repo_id=repo_id, revision=revision, filename=filename))
        elif kind == "url":
            _check_keys(src, _URL_SOURCE_KEYS, sctx, "the url source")
            url = _string(src["url"], sctx.sub("key 'url'"))
            assert url is not None
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise sctx.sub("key 'url'").error(f"expected an http(s) URL, got {url!r}")
            sources.append(Source("url", url=url))
        else:
            raise sctx.error(f'a source needs "type": "hf" or "url", got {src!r}')
    return tuple(sources)


def _triple(raw: Any, ctx: _Ctx, *, positive: bool) -> tuple[float, float, float]:
    if not isinstance(raw, list) or len(raw) != 3:
        raise ctx.error(f"expected a list of 3 numbers, got {raw!r}")
    values = tuple(_number(v, ctx) for v in raw)
    if positive and min(values) <= 0:
        raise ctx.error(f"values must be positive, got {raw!r}")
    return values  # type: ignore[return-value]


def _parse_preprocessing(raw: Any, ctx: _Ctx) -> Preprocessing:
    _check_keys(raw, _PREPROCESSING_KEYS, ctx, "preprocessing")
    size = raw["input_size"]
    if (
        not isinstance(size, list)
        or len(size) != 3
        or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in size)
        or size[0] != 3
    ):
        raise ctx.sub("key 'input_size'").error(f"expected [3, height, width] with positive integers, got {size!r}")
    crop = _number(raw["crop_pct"], ctx.sub("key 'crop_pct'"))
    if not 0 < crop <= 1:
        raise ctx.sub("key 'crop_pct'").error(f"expected a fraction in (0, 1], got {crop!r}")
    interpolation = raw["interpolation"]
    if interpolation not in INTERPOLATIONS:
        raise ctx.sub("key 'interpolation'").error(
            f"expected one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}"
        )
    return Preprocessing(
        mean=_triple(raw["mean"], ctx.sub("key 'mean'"), positive=False),
        std=_triple(raw["std"], ctx.sub("key 'std'"), positive=True),
        input_size=(size[0], size[1], size[2]),
        crop_pct=crop,
        interpolation=interpolation,
    )


def _parse_metrics(raw: Any, ctx: _Ctx) -> Metrics | None:
    if raw is None:
        return None
    _check_keys(raw, _METRICS_KEYS, ctx, "metrics")
    top1 = _number(raw["top1_acc"], ctx.sub("key 'top1_acc'"))
    top5 = _number(raw["top5_acc"], ctx.sub("key 'top5_acc'"))
    if not 0 <= top1 <= top5 <= 100:
        raise ctx.error(f"expected 0 <= top1_acc <= top5_acc <= 100 (percent), got {top1} and {top5}")
    return Metrics(
        dataset=str(_string(raw["dataset"], ctx.sub("key 'dataset'"))),
        protocol=str(_string(raw["protocol"], ctx.sub("key 'protocol'"))),
        top1_acc=top1,
        top5_acc=top5,
        source=str(_string(raw["source"], ctx.sub("key 'source'"))),
    )


def _parse_provenance(raw: Any, ctx: _Ctx) -> Provenance:
    _check_keys(raw, _PROVENANCE_KEYS, ctx, "provenance")
    caffemodel = _string(raw["caffemodel"], ctx.sub("key 'caffemodel'"), nullable=True)
    prototxt = _string(raw["prototxt"], ctx.sub("key 'prototxt'"), nullable=True)
    for key, value in (("caffemodel", caffemodel), ("prototxt", prototxt)):
        if value is not None:
            _file_name(value, ctx.sub(f"key {key!r}"))
    return Provenance(
        caffemodel=caffemodel,
        caffemodel_sha256=_hex(
            raw["caffemodel_sha256"],
            _HEX64_RE,
            "64 lowercase hex digits or null",
            ctx.sub("key 'caffemodel_sha256'"),
            nullable=True,
        ),
        prototxt=prototxt,
        converter=str(_string(raw["converter"], ctx.sub("key 'converter'"))),
        converter_version=_string(raw["converter_version"], ctx.sub("key 'converter_version'"), nullable=True),
        notes=_string(raw.get("notes"), ctx.sub("key 'notes'"), nullable=True),
    )
