"""Whatever a user names → the weights it stands for, resolved once.

A *source* is any of: a registry name ``arch`` (no weights) or ``arch.tag`` (a manifest entry); a weights
:class:`~senet_zoo.weights.Weights` object; a ``.safetensors`` (or legacy ``.pth``) file; a converted or
published folder (``model.safetensors`` + timm-style ``config.json``); a fine-tuning run folder (its
``best.safetensors``, whose metadata records the run); an ``hf-hub:ORG/NAME[@REV]`` id. :func:`resolve`
turns it into a :class:`Source`: the architecture, the weights (manifest entry or local file), the head
stored with them (number of classes, label names), the preprocessing they expect and the model options.
``create_model`` and every command (``export``, ``publish``, ``evaluate``, ``excitations``, ``info``)
go through it, so a name is looked up in the manifest once and a path is recognised once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any

from ._log import get_logger
from .catalog import CATALOG
from .preprocessing import PREPROCESSING_KEYS

__all__ = [
    "Source",
    "resolve",
    "resolve_pretrained",
    "is_path",
    "arch_for",
    "RUN_WEIGHTS",
    "FOLDER_WEIGHTS",
    "HF_HUB_PREFIX",
]

_logger = get_logger(__name__)

RUN_WEIGHTS = "best.safetensors"  # what a fine-tuning run folder stands for
FOLDER_WEIGHTS = "model.safetensors"  # the weights of a converted or published folder
HF_HUB_PREFIX = "hf-hub:"
RUN_META_KEY = "senet_zoo.finetune"  # safetensors metadata key of a fine-tuning checkpoint's description
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


@dataclasses.dataclass(frozen=True)
class Source:
    """What a name stands for.

    ``kind`` is ``"arch"`` (no weights), ``"tag"`` (a manifest entry, :attr:`entry`), ``"file"``,
    ``"folder"`` (converted / published), ``"run"`` (fine-tuning run) or ``"hf-hub"``; the last four
    bring a local :attr:`file`. :attr:`num_classes` is the classifier size stored with the weights
    (None when unknown), :attr:`preprocessing` the timm data-config keys they expect ({} when unknown).
    """

    spec: str
    kind: str
    arch: str | None
    tag: str | None = None
    entry: Any = None  # hub.manifest.WeightsEntry for kind "tag"
    file: Path | None = None
    num_classes: int | None = None
    label_names: tuple[str, ...] | None = None
    label_descriptions: Any = None  # a list, or a dict keyed by label name (config.json's)
    preprocessing: dict[str, Any] = dataclasses.field(default_factory=dict)
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # run metadata / config.json

    @property
    def has_weights(self) -> bool:
        return self.kind != "arch"

    @property
    def folder(self) -> Path | None:
        """The run or converted folder, when the source is one."""
        return self.file.parent if self.file is not None and self.kind in ("run", "folder", "hf-hub") else None

    def cfg_overlay(self) -> dict[str, Any]:
        """The pretrained-cfg keys these weights bring (preprocessing, classes, labels)."""
        cfg: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in self.preprocessing.items()}
        if self.num_classes is not None:
            cfg["num_classes"] = self.num_classes
        if self.label_names is not None:
            cfg["label_names"] = self.label_names
        if self.label_descriptions is not None:
            cfg["label_descriptions"] = self.label_descriptions
        if self.tag:
            cfg["tag"] = self.tag
        return cfg

    def provenance(self) -> dict[str, Any]:
        """Where these weights come from, for the records of what is built on them (sha256 of the bytes)."""
        if self.kind == "arch":
            return dict(kind="none", spec="none (random initialisation)")
        out: dict[str, Any] = dict(kind=self.kind, spec=self.spec, architecture=self.arch)
        if self.kind == "tag":
            out.update(
                sha256=self.entry.sha256 or self.entry.sha256_prefix, sources=[s.describe() for s in self.entry.sources]
            )
        elif self.file is not None:
            from ._files import sha256_file

            out.update(file=self.file.name, sha256=sha256_file(self.file))
        return out

    def __str__(self) -> str:
        return str(self.file) if self.file is not None else self.spec


def is_path(value: Any) -> bool:
    """A path (to a file or folder), as opposed to a name, tag or ``hf-hub:`` id (which hold no separator).

    A bare word is a path when it exists, unless it is a registry name (``arch`` or ``arch.tag``): a model
    name stays a name when the working directory holds a file or folder of that name (write ``./NAME``).
    """
    if isinstance(value, os.PathLike):
        return True
    if not isinstance(value, str) or value.startswith(HF_HUB_PREFIX):
        return False
    if value.endswith(_WEIGHT_SUFFIXES) or os.sep in value or "/" in value:
        return True
    return os.path.exists(value) and not _shadowed_by_name(value)


@functools.lru_cache(maxsize=64)
def _shadowed_by_name(word: str) -> bool:
    """True when ``word`` (a file or folder here) is also a registry name, which wins; said once per word."""
    if _known_arch(word.partition(".")[0]) is None:
        return False
    _logger.warning("%r is read as the model name; write ./%s for the file or folder of that name here", word, word)
    return True


def arch_for(name: str) -> str:
    """The senet_zoo architecture of ``name``: a registry name or the timm architecture it has the layout of."""
    if (arch := _known_arch(name)) is not None:
        return arch
    import difflib

    close = difflib.get_close_matches(name, list(CATALOG), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"Unknown model {name!r}.{hint} Available: {', '.join(CATALOG)}")


def _known_arch(name: str) -> str | None:
    """The registry architecture ``name`` stands for (its own name or one of its timm names), else None."""
    if name in CATALOG:
        return name
    return next((f.name for f in CATALOG.values() if name in (f.timm_legacy, f.timm_name, f.timm_alias)), None)


def resolve(spec: Any, arch: str | None = None, *, manifest: Any = None) -> Source:
    """Resolve ``spec`` (see the module docstring); ``arch``, when given, must agree with what it records."""
    if hasattr(spec, "entry") and hasattr(spec, "tag"):  # a Weights object
        spec = spec.entry
    if hasattr(spec, "sources") and hasattr(spec, "tag"):  # a manifest WeightsEntry
        found = Source(f"{spec.name}.{spec.tag}", "tag", spec.name, spec.tag, spec, num_classes=1000)
        found = dataclasses.replace(found, preprocessing=dict(spec.preprocessing.as_pretrained_cfg()))
    elif isinstance(spec, str) and spec.startswith(HF_HUB_PREFIX):
        found = _from_hub(spec[len(HF_HUB_PREFIX) :])
    elif is_path(spec):
        found = _from_path(Path(spec), arch)
    elif isinstance(spec, str):
        return _from_name(spec, manifest)
    else:
        raise TypeError(f"cannot resolve {spec!r}: expected a name, a path, an hf-hub: id or Weights")
    if arch is not None:
        arch = arch_for(arch)
        if found.arch is not None and found.arch != arch:
            raise ValueError(f"{found}: these weights are a {found.arch}, not a {arch}")
        found = dataclasses.replace(found, arch=arch)
    return found


def resolve_pretrained(name: str, pretrained: Any = False, *, manifest: Any = None) -> tuple[str, Source | None]:
    """``create_model``'s ``(name, pretrained)`` → the architecture and the weights to load (None: none).

    ``name`` is ``arch`` or ``arch.tag``, or weights that name their architecture (a path, an ``hf-hub:``
    id), which are then always loaded. ``pretrained`` is ``False``, ``True`` (the tag of ``name``, else
    the manifest's default), a tag, a path, an ``hf-hub:`` id, a ``Weights`` object or a resolved
    :class:`Source`.
    """
    if name.startswith(HF_HUB_PREFIX) or is_path(name):
        if pretrained not in (False, True):
            raise ValueError(f"{name!r} brings its own weights; pretrained={pretrained!r} names others")
        source = resolve(name)
        if source.arch is None:
            raise ValueError(f"{name}: the file does not record its architecture; pass the model name")
        return source.arch, source
    from .hub.manifest import split_name

    arch, tag = split_name(name)
    arch = arch_for(arch)
    if isinstance(pretrained, Source) or hasattr(pretrained, "entry"):  # resolved, or a Weights object
        source = pretrained if isinstance(pretrained, Source) else resolve(pretrained)
        if source.arch is not None and source.arch != arch:
            raise ValueError(f"weights {source} do not belong to {arch}")
        if tag is not None and source.kind == "tag" and source.tag != tag:
            raise ValueError(f"{name!r} names weights {tag!r}, pretrained={source} names others")
        return arch, source
    if isinstance(pretrained, os.PathLike) or (
        isinstance(pretrained, str) and (pretrained.startswith(HF_HUB_PREFIX) or is_path(pretrained))
    ):
        return arch, resolve(pretrained, arch)
    if isinstance(pretrained, str) and tag is not None and pretrained != tag:
        raise ValueError(f"{name!r} names weights {tag!r}, pretrained={pretrained!r} names others")
    if not pretrained:
        return arch, None
    if manifest is None:
        from .hub.manifest import load_manifest

        manifest = load_manifest()
    chosen = tag or (pretrained if isinstance(pretrained, str) else None) or manifest.default_tag(arch)
    return arch, resolve(manifest.get(arch, chosen))


def _from_name(name: str, manifest: Any) -> Source:
    from .hub.manifest import split_name

    arch, tag = split_name(name)
    arch = arch_for(arch)
    if tag is None:
        return Source(name, "arch", arch)
    if manifest is None:
        from .hub.manifest import load_manifest

        manifest = load_manifest()
    return resolve(manifest.get(arch, tag))


def _from_path(path: Path, arch: str | None) -> Source:
    if path.is_dir():
        if (path / RUN_WEIGHTS).is_file():
            return _from_file(path / RUN_WEIGHTS, arch, kind="run")
        if (path / "config.json").is_file() and (path / FOLDER_WEIGHTS).is_file():
            return _from_folder(path / "config.json", path / FOLDER_WEIGHTS, str(path), "folder")
        raise FileNotFoundError(
            f"{path}: neither a fine-tuning run ({RUN_WEIGHTS}) nor a converted folder (config.json + "
            f"{FOLDER_WEIGHTS}); no epoch finished, or pass a weights file"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    if path.name == FOLDER_WEIGHTS and (path.parent / "config.json").is_file():
        # a converted or published folder's weights file: its config.json says what it is (preprocessing,
        # labels) and records the file's sha256, which the folder route checks
        return _from_folder(path.parent / "config.json", path, str(path), "folder")
    return _from_file(path, arch)


def _safetensors_header(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """``{tensor: shape}`` and the metadata of a safetensors file, read from its header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:  # the header only: no torch needed
            shapes = {k: fh.get_slice(k).get_shape() for k in fh.keys()}
            return shapes, dict(fh.metadata() or {})
    except Exception as err:  # safetensors raises its own error types for malformed headers
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err


def _from_file(path: Path, arch: str | None, kind: str = "file") -> Source:
    """A weights file; a fine-tuning checkpoint's metadata says what it is, otherwise its shapes do."""
    if path.suffix != ".safetensors":
        return Source(str(path), kind, arch, file=path)
    shapes, meta = _safetensors_header(path)
    info: dict[str, Any] = {}
    if RUN_META_KEY in meta:
        try:
            info = json.loads(meta[RUN_META_KEY])
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: malformed {RUN_META_KEY} metadata ({err})") from err
        if not isinstance(info, dict):
            raise ValueError(f"{path}: malformed {RUN_META_KEY} metadata (not a JSON object)")
    recorded = info.get("architecture")
    name = arch_for(recorded) if isinstance(recorded, str) else (arch_for(arch) if arch else None)
    num_classes = info.get("num_classes")
    if num_classes is None and name is not None:
        shape = shapes.get(f"{CATALOG[name].classifier}.weight")
        num_classes = int(shape[0]) if shape else 0
    classes = info.get("classes")
    return Source(
        str(path),
        kind,
        name,
        file=path,
        num_classes=num_classes,
        label_names=tuple(classes) if classes else None,
        preprocessing={k: v for k, v in (info.get("preprocessing") or {}).items() if k in PREPROCESSING_KEYS},
        model_kwargs=dict(info.get("model_kwargs") or {}),
        info=info,
    )


def _from_folder(config_path: Path, weights: Path, spec: str, kind: str) -> Source:
    """A folder with a timm-style ``config.json`` (written by ``convert`` or ``publish``)."""
    try:
        config = json.loads(config_path.read_text("utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{config_path}: not valid JSON ({err})") from err
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: expected a JSON object")
    zoo: dict[str, Any] = config["senet_zoo"] if isinstance(config.get("senet_zoo"), dict) else {}
    name = zoo.get("name") or config.get("architecture")
    if not isinstance(name, str):
        raise ValueError(f"{config_path}: names no architecture (no 'architecture' or senet_zoo.name)")
    recorded = (zoo.get("weights") or {}).get("sha256") if isinstance(zoo.get("weights"), dict) else None
    if kind == "hf-hub" and recorded:  # the config names the bytes it was published with
        from ._files import sha256_file

        digest = sha256_file(weights)
        if digest != recorded:
            raise ValueError(f"{spec}: {weights.name} has sha256 {digest}, config.json records {recorded}")
    cfg: dict[str, Any] = config["pretrained_cfg"] if isinstance(config.get("pretrained_cfg"), dict) else {}
    labels = config.get("label_names")
    return Source(
        spec,
        kind,
        arch_for(name),
        tag=zoo.get("tag") or cfg.get("tag"),
        file=weights,
        num_classes=config.get("num_classes", cfg.get("num_classes")),
        label_names=tuple(labels) if isinstance(labels, list) else None,
        label_descriptions=config.get("label_descriptions"),
        preprocessing={k: v for k, v in cfg.items() if k in PREPROCESSING_KEYS},
        model_kwargs=dict(config.get("model_args") or {}),
        info=config,
    )


def _from_hub(repo: str) -> Source:
    """``ORG/NAME[@REV]`` on the Hugging Face Hub: its config.json and model.safetensors (cached by
    huggingface_hub). A repository the weights manifest lists is fetched at its pinned commit and verified."""
    from huggingface_hub import hf_hub_download

    repo_id, _, revision = repo.partition("@")
    from .hub.manifest import load_manifest

    for entry in load_manifest().entries():
        if any(src.kind == "hf" and src.repo_id == repo_id for src in entry.sources):
            return resolve(entry)
    config = Path(hf_hub_download(repo_id, "config.json", revision=revision or None))
    weights = Path(hf_hub_download(repo_id, FOLDER_WEIGHTS, revision=revision or None))
    return _from_folder(config, weights, HF_HUB_PREFIX + repo, "hf-hub")
