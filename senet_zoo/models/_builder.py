"""Build a model, attach its pretrained config, load weights lean, wrap for features.

``pretrained`` is ``False``, ``True`` (the manifest's default weights), a manifest tag such as
``"caffe_in1k"``, or a path to a ``.safetensors`` (or legacy ``.pth``) file. Pretrained models are built
on the meta device and the weights are assigned, not copied: no random init that is thrown away,
no second copy of the weights. A different ``num_classes`` or ``in_chans`` keeps every other tensor.
The pretrained config of ``name.tag`` is the model's facts (:mod:`senet_zoo.catalog`) plus the
preprocessing, license and sources of that tag in the weights manifest.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from timm.models._builder import pretrained_cfg_for_features
from timm.models._features import FeatureDictNet, FeatureGetterNet, FeatureHookNet, FeatureListNet
from timm.models._manipulate import adapt_input_conv
from torch import nn

from .._log import get_logger
from ..catalog import CATALOG, PAPER
from ._checks import check_weights

__all__ = ["create", "build_model", "pretrained_cfg_for", "init_weights", "load_weights", "CAFFE_MEAN", "CAFFE_STD"]

_logger = get_logger(__name__)

# The Caffe models take BGR 0–255 minus (104, 117, 123); the converted RGB models express it this way.
CAFFE_MEAN = (123 / 255, 117 / 255, 104 / 255)
CAFFE_STD = (1 / 255, 1 / 255, 1 / 255)
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_FEATURE_CLASSES = {"list": FeatureListNet, "dict": FeatureDictNet, "hook": FeatureHookNet, "getter": FeatureGetterNet}


def pretrained_cfg_for(name: str, tag: str | None = None, manifest: Any = None) -> dict[str, Any]:
    """timm's pretrained config of ``name`` (the architecture's defaults) or of ``name.tag``.

    With a tag, the manifest entry's preprocessing, license and sources fill it in (``url`` /
    ``hf_hub_id`` only describe where the weights live: senet_zoo always loads them through the
    manifest's verified download).
    """
    facts = CATALOG[name]
    cfg: dict[str, Any] = dict(
        num_classes=1000,
        input_size=(3, 224, 224),
        pool_size=(7, 7),
        crop_pct=0.875,
        interpolation="bilinear",
        mean=CAFFE_MEAN,
        std=CAFFE_STD,
        first_conv=facts.first_conv,
        classifier=facts.classifier,
        license="apache-2.0",
        **PAPER,
    )
    if tag is None:
        return cfg
    if manifest is None:
        from ..hub.manifest import load_manifest

        manifest = load_manifest()
    entry = manifest.get(name, tag)
    cfg.update(entry.preprocessing.as_pretrained_cfg(), tag=tag, license=entry.license)
    if entry.available:
        for source in entry.sources:
            if source.kind == "hf":
                cfg.setdefault("hf_hub_id", source.repo_id)
            else:
                cfg.setdefault("url", source.url)
    return cfg


def init_weights(m: nn.Module) -> None:
    """Kaiming-normal (fan_out) convolutions, unit BatchNorm; the init of the Caffe-era SENets.

    Modules on the meta device (built only to have weights assigned) are left alone: on meta, init is
    pure overhead (about half of a pretrained se_resnet50's load time).
    """
    if any(p.is_meta for p in m.parameters(recurse=False)):
        return
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        m.reset_parameters()
    elif isinstance(m, nn.Linear):
        m.reset_parameters()


def _validate(kwargs: Mapping[str, Any]) -> None:
    for key in ("num_classes", "in_chans"):
        value = kwargs.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{key} must be a non-negative int, got {value!r}")
    if kwargs.get("in_chans") == 0:
        raise ValueError("in_chans must be at least 1")


def _cfg_dict(cfg: Any) -> dict[str, Any]:
    """timm passes a pretrained cfg as None, a tag string (``'name.tag'`` lookups), a dict or a dataclass."""
    if cfg is None:
        return {}
    if isinstance(cfg, str):
        return {"tag": cfg}
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {k: v for k, v in dataclasses.asdict(cfg).items() if v is not None}
    return dict(cfg)


def _is_path(pretrained: Any) -> bool:
    if isinstance(pretrained, Path):
        return True
    return isinstance(pretrained, str) and (
        pretrained.endswith(_WEIGHT_SUFFIXES) or os.sep in pretrained or os.path.exists(pretrained)
    )


def _resolve_weights(variant: str, pretrained: Any, cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Find, verify and read the weights: a file, a Hub repo (timm's ``hf-hub:`` route) or a manifest tag."""
    from ..hub.fetch import fetch_weights, load_state_dict

    if _is_path(pretrained):
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights file not found: {path}")
        return load_state_dict(path)
    if cfg.get("file"):
        return load_state_dict(Path(cfg["file"]))
    if cfg.get("hf_hub_id"):  # a Hub repo the manifest lists is fetched at its pinned commit and verified
        return _load_hf_hub(cfg["hf_hub_id"], cfg.get("hf_hub_filename") or "model.safetensors")
    path, _ = fetch_weights(variant, cfg.get("tag"))
    return load_state_dict(path)


def _load_hf_hub(repo_id: str, filename: str) -> dict[str, torch.Tensor]:
    """A Hub repo the manifest knows is fetched at its pinned commit and sha256-verified; others as timm would."""
    from ..hub.fetch import fetch, load_state_dict
    from ..hub.manifest import load_manifest

    for entry in load_manifest().entries():
        if any(src.kind == "hf" and src.repo_id == repo_id for src in entry.sources):
            return load_state_dict(fetch(entry))
    from huggingface_hub import hf_hub_download

    _logger.warning("%s is not in the weights manifest: loading it unpinned and unverified", repo_id)
    return load_state_dict(Path(hf_hub_download(repo_id, filename)))


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], cfg: Mapping[str, Any]) -> None:
    """Assign ``state_dict`` to ``model`` (possibly on the meta device), adapting head and first conv.

    Tensors the weights cannot provide (a classifier of another size) are initialised fresh; a key the
    model does not have, or any other shape mismatch, is an error.
    """
    own = model.state_dict()
    state_dict = dict(state_dict)
    first_conv, classifier = cfg.get("first_conv"), cfg.get("classifier")
    if first_conv and f"{first_conv}.weight" in state_dict:
        key = f"{first_conv}.weight"
        in_chans = own[key].shape[1]
        if state_dict[key].shape[1] != in_chans:
            _logger.info("adapting %s from %d to %d input channels", key, state_dict[key].shape[1], in_chans)
            state_dict[key] = adapt_input_conv(in_chans, state_dict[key])
    if classifier:
        for key in (f"{classifier}.weight", f"{classifier}.bias"):
            if key in state_dict and (key not in own or own[key].shape != state_dict[key].shape):
                _logger.info(
                    "not loading %s: the weights have %s, the model %s",
                    key,
                    tuple(state_dict[key].shape),
                    tuple(own[key].shape) if key in own else "none",
                )
                del state_dict[key]
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(k for k in state_dict if k in own and own[k].shape != state_dict[k].shape)
    if unexpected or mismatched:
        raise ValueError(
            f"weights do not fit {type(model).__name__}: unexpected keys {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}, shape mismatches "
            + ", ".join(f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}" for k in mismatched[:5])
        )
    missing = {k for k in own if k not in state_dict}
    for key in sorted(missing):
        if not (key.endswith("num_batches_tracked") or (classifier and key.startswith(f"{classifier}."))):
            raise ValueError(f"weights do not fit {type(model).__name__}: missing {key}")
    _materialize_missing(model, missing)
    model.load_state_dict(state_dict, strict=False, assign=True)


def _materialize_missing(model: nn.Module, missing: set[str]) -> None:
    """Give real, freshly initialised storage to the modules whose tensors the weights lack."""
    owners = {key.rpartition(".")[0] for key in missing}
    for name in owners:
        module = model.get_submodule(name)
        if any(t.is_meta for t in module.state_dict().values()):
            module.to_empty(device="cpu", recurse=False)
            init_weights(module)
            if isinstance(module, nn.BatchNorm2d):
                module.reset_running_stats()


def _cfg_for(variant: str, tag: str | None, given: dict[str, Any], pretrained: Any) -> dict[str, Any]:
    """The pretrained config a new model carries.

    Named weights (a tag, or ``pretrained=True``: the manifest's default tag) bring their tag's config;
    weights from elsewhere (a file, timm's ``hf-hub:`` route) and a randomly initialised model keep the
    architecture's own (the Caffe release's preprocessing), without reading the manifest.
    """
    if any(given.get(k) for k in ("hf_hub_id", "file", "url")) or _is_path(pretrained):
        return pretrained_cfg_for(variant)
    if tag is None and pretrained:
        from ..hub.manifest import load_manifest

        tag = load_manifest().default_tag(variant)
    return pretrained_cfg_for(variant, tag)


def create(model_cls: type[nn.Module], name: str, pretrained: Any = False, **kwargs: Any) -> nn.Module:
    """Build the catalog network ``name`` (its architecture arguments, overridable) with :func:`build_model`."""
    return build_model(model_cls, name, pretrained, **{**CATALOG[name].model_args, **kwargs})


def build_model(
    model_cls: type[nn.Module],
    variant: str,
    pretrained: Any = False,
    *,
    features_only: bool = False,
    out_indices: Any = None,
    feature_cls: Any = "list",
    pretrained_cfg: Any = None,
    pretrained_cfg_overlay: Mapping[str, Any] | None = None,
    pretrained_model_args: Mapping[str, Any] | None = None,
    cache_dir: Any = None,
    device: Any = None,
    dtype: Any = None,
    **kwargs: Any,
) -> nn.Module:
    """Build ``model_cls(**kwargs)``; load weights per ``pretrained``; optionally wrap as a feature extractor.

    ``pretrained_cfg``, ``pretrained_cfg_overlay``, ``pretrained_model_args``, ``cache_dir``, ``device``
    and ``dtype`` are what ``timm.create_model`` passes; ``feature_cls`` is timm's (``"list"``,
    ``"dict"``, ``"hook"``, ``"getter"`` or a class).
    """
    _validate(kwargs)
    given = _cfg_dict(pretrained_cfg)
    tag = pretrained if isinstance(pretrained, str) and not _is_path(pretrained) else given.get("tag")
    cfg = {**_cfg_for(variant, tag, given, pretrained), **given, **dict(pretrained_cfg_overlay or {})}
    cfg.update(architecture=variant, num_classes=kwargs.get("num_classes", cfg["num_classes"]))
    if "in_chans" in kwargs:
        cfg["input_size"] = (kwargs["in_chans"], *cfg["input_size"][1:])
    if pretrained:
        state_dict = _resolve_weights(variant, pretrained, cfg)
        with torch.device("meta"):
            model: Any = model_cls(**kwargs)  # gets timm's cfg attributes below
        source = str(pretrained) if _is_path(pretrained) else cfg.get("file") or f"weights {variant}.{cfg.get('tag')}"
        check_weights(state_dict, model.state_dict(), source)
        try:
            load_weights(model, state_dict, cfg)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
        if device is not None or dtype is not None:
            model.to(device=device, dtype=dtype)
    else:
        model = model_cls(**kwargs, device=device, dtype=dtype)
    model.pretrained_cfg = model.default_cfg = cfg
    model.pretrained_model_args = dict(pretrained_model_args or {})
    if features_only:
        wrapper = _FEATURE_CLASSES[feature_cls.lower()] if isinstance(feature_cls, str) else feature_cls
        model = wrapper(model, out_indices=tuple(range(5)) if out_indices is None else out_indices)
        model.pretrained_cfg = model.default_cfg = pretrained_cfg_for_features(cfg)
    return model
