"""The weights manifest: which weights exist for each registry name, where to get them, how to check them.

``weights_manifest.json`` (repository root; shipped inside the package as ``senet_zoo/weights_manifest.json``)
is the single source of truth for pretrained weights. Its schema is stated once, by the frozen dataclasses
below: every JSON key is a dataclass field whose metadata holds its check (:func:`_key`); a field without a
default is required; a class's ``_validate`` holds the rules that span keys. The document is a
:class:`_Document` (``schema_version``, ``description``, ``models``), each model a :class:`_Model`
(``default_tag``, ``weights``: tag → :class:`WeightsEntry`), each entry's ``sources`` :class:`Source` objects
(tried in order) and its ``preprocessing`` / ``metrics`` / ``provenance`` their own dataclasses.

Default tag rule: each model names its ``default_tag`` explicitly. The converted Caffe weights (``caffe_in1k``)
are the default once published; until then the legacy PyTorch port (``cadene_in1k``) is. Validation enforces
that a model with any published entry defaults to a published one, and :func:`record_published` moves the
default to the entry it publishes.

Every problem raises :class:`ManifestError` naming the file, model, tag and key. Writes (:func:`update_entry`,
:func:`record_published`) re-validate, keep key order and 2-space indentation, and replace the file atomically
(temp file in the same directory, fsync, ``os.replace``) after resolving symlinks, so the packaged symlink keeps
pointing at the canonical file.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .._files import write_text_atomic
from .._log import get_logger
from .._redact import redact

logger = get_logger(__name__)

SCHEMA_VERSION = 1
MANIFEST_ENV = "SENET_ZOO_MANIFEST"
STATUSES = ("published", "pending")
FORMAT_SUFFIXES = {"safetensors": (".safetensors",), "pth": (".pth", ".pt", ".bin")}
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "lanczos", "box", "hamming")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_HEX_PREFIX_RE = re.compile(r"^[0-9a-f]{8,63}$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class ManifestError(ValueError):
    """The manifest file is malformed; the message names the file, model, tag and key."""


class UnknownWeightsError(KeyError):
    """A model name or tag that the manifest does not have; the message lists what exists."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------------------------- value checks


class _Ctx:
    """Builds error messages that name the file, model, tag and key."""

    def __init__(self, label: str, *parts: str) -> None:
        self.label = label
        self.parts = parts

    def sub(self, part: str) -> _Ctx:
        return _Ctx(self.label, *self.parts, part)

    def error(self, problem: str) -> ManifestError:
        where = ", ".join(self.parts)
        message = f"{self.label}: {where}: {problem}" if where else f"{self.label}: {problem}"
        return ManifestError(redact(message))  # a bad value may be a URL with credentials


Check = Callable[[Any, _Ctx], Any]


def _string(nullable: bool = False) -> Check:
    def check(value: Any, ctx: _Ctx) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip():
            raise ctx.error(f"expected a non-empty string{' or null' if nullable else ''}, got {value!r}")
        return value

    return check


def _number(value: Any, ctx: _Ctx) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ctx.error(f"expected a finite number, got {value!r}")
    return float(value)


def _hex(pattern: re.Pattern[str], what: str, nullable: bool = False) -> Check:
    def check(value: Any, ctx: _Ctx) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ctx.error(f"expected {what}{' or null' if nullable else ''}, got {value!r}")
        return value

    return check


def _one_of(choices: tuple[str, ...] | Mapping[str, Any]) -> Check:
    def check(value: Any, ctx: _Ctx) -> str:
        if value not in choices:
            raise ctx.error(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _file_name(nullable: bool = False) -> Check:
    def check(value: Any, ctx: _Ctx) -> str | None:
        name = _string(nullable)(value, ctx)
        if name is not None and (
            "/" in name or "\\" in name or ".." in name or name.startswith(".") or any(ord(c) < 32 for c in name)
        ):
            raise ctx.error(f"file name {name!r} must be a plain name (no path separators, no '..', not hidden)")
        return name

    return check


MAX_WEIGHTS_BYTES = 1 << 40  # 1 TiB: far above any SENet file, far below an absurd download limit
MAX_COUNT = 1 << 31  # images or classes of a measurement


def _size(value: Any, ctx: _Ctx) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ctx.error(f"expected a positive integer (bytes) or null, got {value!r}")
    if value is not None and value > MAX_WEIGHTS_BYTES:
        raise ctx.error(f"{value} bytes is not a plausible weights file size (at most {MAX_WEIGHTS_BYTES})")
    return value


def _triple(positive: bool) -> Check:
    def check(raw: Any, ctx: _Ctx) -> tuple[float, float, float]:
        if not isinstance(raw, list) or len(raw) != 3:
            raise ctx.error(f"expected a list of 3 numbers, got {raw!r}")
        values = tuple(_number(v, ctx) for v in raw)
        if positive and min(values) <= 0:
            raise ctx.error(f"values must be positive, got {raw!r}")
        return values  # type: ignore[return-value]

    return check


def _input_size(raw: Any, ctx: _Ctx) -> tuple[int, int, int]:
    if (
        not isinstance(raw, list)
        or len(raw) != 3
        or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in raw)
        or raw[0] != 3
    ):
        raise ctx.error(f"expected [3, height, width] with positive integers, got {raw!r}")
    return (raw[0], raw[1], raw[2])


def _fraction(value: Any, ctx: _Ctx) -> float:
    number = _number(value, ctx)
    if not 0 < number <= 1:
        raise ctx.error(f"expected a fraction in (0, 1], got {value!r}")
    return number


def _url(value: Any, ctx: _Ctx) -> str:
    url = _string()(value, ctx)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ctx.error(f"expected an http(s) URL, got {url!r}")
    return url


def _repo_id(value: Any, ctx: _Ctx) -> str:
    try:
        return check_repo_id(_string()(value, ctx))
    except ValueError as err:
        raise ctx.error(str(err)) from None


def _schema_version(value: Any, ctx: _Ctx) -> int:
    if value != SCHEMA_VERSION or isinstance(value, bool):
        raise ctx.error(f"unsupported schema version {value!r} (this is {SCHEMA_VERSION})")
    return value


def _nested(cls: type, what: str, nullable: bool = False) -> Check:
    def check(value: Any, ctx: _Ctx) -> Any:
        return None if value is None and nullable else _load(cls, value, ctx, what)

    return check


def _key(check: Check, *, default: Any = MISSING, json_key: str | None = None, kinds: tuple[str, ...] = ()) -> Any:
    """A field that is a JSON key: its check, its default (none: required), its JSON name when it differs
    from the field's, and for :class:`Source` the source types it belongs to."""
    return dataclasses.field(default=default, metadata={"check": check, "json_key": json_key, "kinds": kinds})


T = TypeVar("T")


def _load(cls: type[T], raw: Any, ctx: _Ctx, what: str, *, kind: str | None = None, **context: Any) -> T:
    """Build ``cls`` from a JSON object: unknown and missing keys refused, each value checked, then
    ``cls._validate`` (rules spanning keys). ``context`` fills fields that are not JSON keys."""
    if not isinstance(raw, dict):
        raise ctx.error(f"{what} must be a JSON object, got {type(raw).__name__}")
    keys = {
        f.metadata.get("json_key") or f.name: f
        for f in fields(cls)  # type: ignore[arg-type]
        if "check" in f.metadata and (kind is None or not f.metadata["kinds"] or kind in f.metadata["kinds"])
    }
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise ctx.error(f"unknown key(s) {', '.join(map(repr, unknown))} in {what}; allowed: {', '.join(keys)}")
    missing = [k for k, f in keys.items() if f.default is MISSING and k not in raw]
    if missing:
        raise ctx.error(f"missing required key(s) {', '.join(map(repr, missing))} in {what}")
    values = {
        f.name: f.metadata["check"](raw[k], ctx.sub(f"key {k!r}")) if k in raw else f.default for k, f in keys.items()
    }
    obj = cls(**context, **values)
    validate = getattr(obj, "_validate", None)
    if validate is not None:
        validate(ctx)
    return obj


# --------------------------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class Source:
    """One place to download a weights file from: a pinned Hugging Face Hub file or a plain URL."""

    kind: str = _key(_one_of(("hf", "url")), json_key="type")  # "hf" or "url"
    url: str | None = _key(_url, default=None, kinds=("url",))
    repo_id: str | None = _key(_repo_id, default=None, kinds=("hf",))
    revision: str | None = _key(_hex(_COMMIT_RE, "a 40-hex-digit commit sha"), default=None, kinds=("hf",))
    filename: str | None = _key(_file_name(), default=None, kinds=("hf",))

    def __repr__(self) -> str:  # a mirror URL may carry user:password@
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return redact(f"Source({shown})")

    def describe(self) -> str:
        """A one-line human-readable location (credentials redacted), used in logs and error messages."""
        if self.kind == "hf":
            return f"hf://{self.repo_id}@{self.revision}/{self.filename}"
        return redact(self.url)  # a mirror URL may carry user:password@

    def to_dict(self) -> dict[str, Any]:
        """The manifest JSON form of this source."""
        if self.kind == "hf":
            return {"type": "hf", "repo_id": self.repo_id, "revision": self.revision, "filename": self.filename}
        return {"type": "url", "url": self.url}

    def _validate(self, ctx: _Ctx) -> None:
        required = [f.metadata.get("json_key") or f.name for f in fields(self) if self.kind in f.metadata["kinds"]]
        missing = [k for k in required if getattr(self, k) is None]
        if missing:
            raise ctx.error(f"missing required key(s) {', '.join(map(repr, missing))} in the {self.kind} source")


def _source(value: Any, ctx: _Ctx) -> Source:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("hf", "url"):
        raise ctx.error(f'a source needs "type": "hf" or "url", got {value!r}')
    return _load(Source, value, ctx, f"the {kind} source", kind=kind)


def _sources(raw: Any, ctx: _Ctx) -> tuple[Source, ...]:
    if not isinstance(raw, list):
        raise ctx.error(f"expected a list of sources, got {type(raw).__name__}")
    return tuple(_source(src, ctx.sub(f"source #{i}")) for i, src in enumerate(raw))


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

    mean: tuple[float, float, float] = _key(_triple(positive=False))
    std: tuple[float, float, float] = _key(_triple(positive=True))
    input_size: tuple[int, int, int] = _key(_input_size)
    crop_pct: float = _key(_fraction)
    interpolation: str = _key(_one_of(INTERPOLATIONS))

    def as_pretrained_cfg(self) -> dict[str, Any]:
        """The keys timm's ``pretrained_cfg`` uses for the same information."""
        return {
            "mean": self.mean,
            "std": self.std,
            "input_size": self.input_size,
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
        }


def _count(value: Any, ctx: _Ctx) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_COUNT:
        raise ctx.error(f"expected a positive integer up to {MAX_COUNT}, got {value!r}")
    return value


def _check_accuracy(top1: float, top5: float, ctx: _Ctx) -> None:
    if not 0 <= top1 <= top5 <= 100:
        raise ctx.error(f"expected 0 <= top1_acc <= top5_acc <= 100 (percent), got {top1} and {top5}")


@dataclass(frozen=True)
class Measured(_FieldMapping):
    """Accuracy (percent) that ``senet-zoo release --val`` measured, recorded next to the reported numbers."""

    top1_acc: float = _key(_number)
    top5_acc: float = _key(_number)
    images: int = _key(_count)
    classes: int = _key(_count)
    folder: str = _key(_string())  # the validation folder's name

    def _validate(self, ctx: _Ctx) -> None:
        _check_accuracy(self.top1_acc, self.top5_acc, ctx)


@dataclass(frozen=True)
class Metrics(_FieldMapping):
    """Reported ImageNet accuracy (percent) of these weights and where the numbers come from."""

    dataset: str = _key(_string())
    protocol: str = _key(_string())
    top1_acc: float = _key(_number)
    top5_acc: float = _key(_number)
    source: str = _key(_string())
    measured: Measured | None = _key(_nested(Measured, "measured metrics", nullable=True), default=None)

    def _validate(self, ctx: _Ctx) -> None:
        _check_accuracy(self.top1_acc, self.top5_acc, ctx)


@dataclass(frozen=True)
class Provenance(_FieldMapping):
    """Where the weights come from: the original Caffe files and the tool that converted them."""

    caffemodel: str | None = _key(_file_name(nullable=True))
    caffemodel_sha256: str | None = _key(_hex(_HEX64_RE, "64 lowercase hex digits", nullable=True))
    prototxt: str | None = _key(_file_name(nullable=True))
    converter: str = _key(_string())
    converter_version: str | None = _key(_string(nullable=True))
    notes: str | None = _key(_string(nullable=True), default=None)


@dataclass(frozen=True, kw_only=True)
class WeightsEntry:
    """One set of weights for one registry name, as listed in the manifest (``name``/``tag`` come from where
    the entry sits in the document)."""

    name: str
    tag: str
    status: str = _key(_one_of(STATUSES))  # "published" (downloadable) or "pending"
    filename: str = _key(_file_name())  # the cache file name
    sources: tuple[Source, ...] = _key(_sources)  # tried in order
    sha256: str | None = _key(_hex(_HEX64_RE, "64 lowercase hex digits", nullable=True), default=None)
    sha256_prefix: str | None = _key(  # legacy files whose name carries only a digest prefix
        _hex(_HEX_PREFIX_RE, "8 to 63 lowercase hex digits", nullable=True), default=None
    )
    size: int | None = _key(_size, default=None)  # bytes; may be null only with a prefix
    format: str = _key(_one_of(FORMAT_SUFFIXES))  # "safetensors" or "pth"
    preprocessing: Preprocessing = _key(_nested(Preprocessing, "preprocessing"))
    metrics: Metrics | None = _key(_nested(Metrics, "metrics", nullable=True))
    license: str = _key(_string())
    provenance: Provenance = _key(_nested(Provenance, "provenance"))

    def __repr__(self) -> str:  # its sources' URLs may carry credentials
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return redact(f"WeightsEntry({shown})")

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

    def _validate(self, ctx: _Ctx) -> None:
        suffixes = FORMAT_SUFFIXES[self.format]
        if not self.filename.endswith(suffixes):
            raise ctx.sub("key 'filename'").error(
                f"{self.filename!r} does not match format {self.format!r} (expected suffix {' or '.join(suffixes)})"
            )
        for i, src in enumerate(self.sources):
            if src.kind == "hf" and not str(src.filename).endswith(suffixes):
                raise (
                    ctx.sub("key 'sources'")
                    .sub(f"source #{i}")
                    .sub("key 'filename'")
                    .error(f"{src.filename!r} does not match format {self.format!r}")
                )
        if self.status == "published":
            if not self.sources:
                raise ctx.sub("key 'sources'").error("a published entry needs at least one source")
            if (self.sha256 is None) == (self.sha256_prefix is None):
                raise ctx.error("a published entry needs exactly one of 'sha256' or 'sha256_prefix'")
            if self.size is None and self.sha256 is not None:
                raise ctx.sub("key 'size'").error("size may only be unknown (null) for prefix-checked legacy files")
        elif self.sources or self.sha256 is not None or self.sha256_prefix is not None or self.size is not None:
            raise ctx.error("a pending entry has no sources, digest or size yet (publish it first)")


def _tag_name(what: str) -> Check:
    def check(value: Any, ctx: _Ctx) -> str:
        if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
            raise ctx.error(f"{what} are lowercase letters, digits and underscores")
        return value

    return check


def _weights(raw: Any, ctx: _Ctx) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise ctx.error("expected a non-empty object mapping tags to entries")
    return raw  # entries are loaded by _Model._validate, which knows the model name


@dataclass(frozen=True)
class _Model:
    """One model of the document: its default tag and its entries by tag."""

    name: str
    entries: dict[str, WeightsEntry]
    default_tag: str = _key(_string())
    weights: dict[str, Any] = _key(_weights)

    def _validate(self, ctx: _Ctx) -> None:
        for tag, raw in self.weights.items():
            tctx = ctx.sub(f"tag {tag!r}")
            _tag_name("tags")(tag, tctx)
            self.entries[tag] = _load(WeightsEntry, raw, tctx, "the weights entry", name=self.name, tag=tag)
        dctx = ctx.sub("key 'default_tag'")
        if self.default_tag not in self.weights:
            raise dctx.error(
                f"default tag {self.default_tag!r} is not one of the model's tags ({', '.join(self.weights)})"
            )
        published = [t for t, e in self.entries.items() if e.status == "published"]
        if published and self.default_tag not in published:
            raise dctx.error(f"default tag {self.default_tag!r} is pending while {', '.join(published)} is published")


def _models(raw: Any, ctx: _Ctx) -> dict[str, _Model]:
    if not isinstance(raw, dict) or not raw:
        raise ctx.error("expected a non-empty object mapping model names to weights")
    models = {}
    for name, model in raw.items():
        mctx = _Ctx(ctx.label, f"model {name!r}")
        _tag_name("model names")(name, mctx)
        models[name] = _load(_Model, model, mctx, "the model", name=name, entries={})
    return models


@dataclass(frozen=True, kw_only=True)
class _Document:
    """The whole manifest."""

    schema_version: int = _key(_schema_version)
    description: str | None = _key(_string(), default=None)
    models: dict[str, _Model] = _key(_models)


# --------------------------------------------------------------------------------------------- the document


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


def split_name(name: str) -> tuple[str, str | None]:
    """``"se_resnet50.caffe_in1k"`` → ``("se_resnet50", "caffe_in1k")``; no tag → ``(name, None)``."""
    arch, sep, tag = name.partition(".")
    if not arch or (sep and not tag):
        raise ValueError(f"expected a model name NAME or NAME.TAG, got {name!r}")
    return arch, tag or None


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


MAX_MANIFEST_BYTES = 16 << 20  # the shipped manifest is ~20 KB; a bigger file is not a manifest
MAX_DEPTH = 16  # the schema nests 6 levels deep
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"')


def _read_json(path: Path) -> dict[str, Any]:
    """Read ``path`` defensively: a regular file only (a FIFO or device is never opened for reading and
    waited on), at most :data:`MAX_MANIFEST_BYTES`, strict UTF-8, no duplicate keys, bounded nesting.
    Every problem is a one-line :class:`ManifestError` naming the file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the weights manifest ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ManifestError(f"{path}: the weights manifest must be a regular file, not a FIFO, device or folder")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"{path}: {info.st_size} bytes, over the {MAX_MANIFEST_BYTES >> 20} MiB a weights manifest may have"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the weights manifest ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: over the {MAX_MANIFEST_BYTES >> 20} MiB a weights manifest may have")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    depth = _max_depth(text)
    if depth > MAX_DEPTH:
        raise ManifestError(f"{path}: JSON nested {depth} levels deep (a weights manifest has at most {MAX_DEPTH})")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise ManifestError(
            f"{path}: duplicate key {exc.args[0]!r} in one JSON object (which one counts is unclear)"
        ) from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of thousands of digits
        raise ManifestError(f"{path}: not a usable JSON document ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: the manifest must be a JSON object, got {type(data).__name__}")
    return data


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _max_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (before parsing: the parser recurses)."""
    depth = deepest = 0
    for char in re.sub(r"[^\[\]{}]", "", _STRING_RE.sub("", text)):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _label(path: Path | None) -> str:
    return str(path) if path is not None else "<manifest>"


def _parse(data: dict[str, Any], label: str) -> tuple[dict[tuple[str, str], WeightsEntry], dict[str, str]]:
    """Validate a whole document; return its entries by (name, tag) and each model's default tag."""
    document = _load(_Document, data, _Ctx(label), "the manifest")
    entries = {(name, tag): e for name, model in document.models.items() for tag, e in model.entries.items()}
    return entries, {name: model.default_tag for name, model in document.models.items()}
