"""Build a model, attach its pretrained config, load weights lean, wrap for features.

``pretrained`` is ``False``, ``True`` (the manifest's default weights), a manifest tag such as
``"caffe_in1k"``, anything :mod:`senet_zoo.resolve` resolves (a file, a converted folder, a fine-tuning
run, an ``hf-hub:`` id) or a resolved ``Source``. Pretrained models are built on the meta device and the
weights are assigned: no random init that is thrown away, and tensors of the memory-mapped file stay
views of it unless misaligned (copied once, see :func:`_aligned`). The weights' head is rebuilt; another
``num_classes`` follows :func:`_head`; another ``in_chans`` adapts the first convolution.
The pretrained config of ``name.tag`` is the model's facts (:mod:`senet_zoo.catalog`) plus the
preprocessing, license and sources of that tag in the weights manifest.

``pretrained="backbone"`` (the weights tag :data:`BACKBONE_TAG`, for networks whose catalog entry names a
``backbone``) loads the state dict of the non-SE timm network: every non-SE tensor must come from it and
only SE tensors may be missing; the SE blocks then start open (:meth:`SEModule.open_gate_`), so the model
computes what the backbone computes. A family plugs in by building its SE blocks as :class:`SEModule`
submodules and, when its keys differ from the timm backbone's, giving its model class a static method
``backbone_state_dict(state_dict) -> state_dict`` that renames the backbone's keys to its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models._builder import pretrained_cfg_for_features
from timm.models._features import FeatureDictNet, FeatureGetterNet, FeatureHookNet, FeatureListNet
from timm.models._manipulate import adapt_input_conv
from torch import nn

from .._log import get_logger
from ..catalog import CATALOG, PAPER
from ._checks import check_weights
from .se import SEModule

__all__ = [
    "create",
    "build_model",
    "pretrained_cfg_for",
    "init_weights",
    "load_weights",
    "load_backbone",
    "se_keys",
    "BACKBONE_TAG",
]

_logger = get_logger(__name__)

_ALIGNMENT = 64  # bytes: torch's CPU allocator's alignment
_FEATURE_CLASSES = {"list": FeatureListNet, "dict": FeatureDictNet, "hook": FeatureHookNet, "getter": FeatureGetterNet}
BACKBONE_TAG = "backbone"  # weights tag: the non-SE timm network's ImageNet weights, SE blocks opened


def pretrained_cfg_for(name: str, tag: str | None = None, manifest: Any = None) -> dict[str, Any]:
    """timm's pretrained config of ``name`` (the architecture's defaults) or of ``name.tag``.

    With a tag, the manifest entry's preprocessing, license and sources fill it in (``url`` /
    ``hf_hub_id`` only describe where the weights live: senet_zoo always loads them through the
    manifest's verified download).
    """
    facts = CATALOG[name]
    side, pool = facts.input_size, facts.pool_size
    cfg: dict[str, Any] = dict(
        num_classes=1000,
        input_size=(3, side, side),
        pool_size=(pool, pool),
        crop_pct=facts.crop_pct,
        interpolation=facts.interpolation,
        mean=facts.mean or IMAGENET_DEFAULT_MEAN,  # timm's, for a network trained from scratch; tags bring theirs
        std=facts.std or IMAGENET_DEFAULT_STD,
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


def _source(variant: str, pretrained: Any, cfg: dict[str, Any]) -> Any:
    """What ``pretrained`` (or timm's ``file`` / ``hf_hub_id`` cfg keys) names, resolved once; None: no weights."""
    from ..resolve import HF_HUB_PREFIX, Source, is_path, resolve

    if isinstance(pretrained, Source):
        return pretrained
    if not pretrained:
        return None
    if is_path(pretrained):
        return resolve(pretrained, variant)
    if cfg.get("file"):
        return resolve(Path(cfg["file"]), variant)
    if cfg.get("hf_hub_id"):  # timm's hf-hub: route (a manifest-listed repo resolves to its verified entry)
        return resolve(HF_HUB_PREFIX + cfg["hf_hub_id"], variant)
    from ..hub.manifest import load_manifest

    manifest = load_manifest()
    tag = pretrained if isinstance(pretrained, str) else cfg.get("tag") or manifest.default_tag(variant)
    return resolve(manifest.get(variant, tag))


def _state_dict(source: Any) -> dict[str, torch.Tensor]:
    """The source's tensors: a manifest entry is fetched (pinned, sha256-verified), a file is read."""
    from ..hub.fetch import fetch
    from ..hub.weights_file import load_state_dict

    return load_state_dict(fetch(source.entry) if source.kind == "tag" else source.file)


def _head(source: Any, kwargs: dict[str, Any], new_head: bool) -> bool:
    """Settle ``num_classes`` against the classifier the weights hold; True when the head is kept.

    Without ``num_classes`` the weights' head is rebuilt. A different explicit ``num_classes`` gets a
    new, randomly initialised head (every other tensor kept) only for the ImageNet weights of the
    manifest or when ``new_head=True``; otherwise it is refused naming both sizes: never a silent
    random head.
    """
    stored, asked = source.num_classes, kwargs.get("num_classes")
    if stored is None:
        return asked is None
    if asked is None or asked == stored:
        kwargs["num_classes"] = stored
        return True
    if source.kind == "tag" or new_head:
        log = _logger.info if source.kind == "tag" else _logger.warning
        log(
            "%s: new %d-class head (random init) instead of the weights' %d classes; every other tensor loaded",
            source,
            asked,
            stored,
        )
        return False
    raise ValueError(
        f"{source}: the weights' classifier has {stored} classes but num_classes={asked} was asked; "
        f"leave num_classes out to use the trained head, or pass new_head=True for a new random one"
    )


def se_keys(model: nn.Module) -> set[str]:
    """The state-dict keys of ``model``'s SE blocks (every :class:`SEModule`'s parameters)."""
    return {
        f"{name}.{key}" if name else key
        for name, module in model.named_modules()
        if isinstance(module, SEModule)
        for key in module.state_dict()
    }


def load_backbone(model: nn.Module, state_dict: dict[str, torch.Tensor], cfg: Mapping[str, Any]) -> None:
    """Load a non-SE backbone's weights into every non-SE tensor of ``model``; open its SE blocks.

    The backbone's keys go through the model class's ``backbone_state_dict`` when it has one. Strict:
    the weights must not hold SE tensors (then they are not a backbone's), and every tensor they lack
    must be an SE tensor (or the classifier, when its size differs, as in :func:`load_weights`).
    """
    remap = getattr(type(model), "backbone_state_dict", None)
    state_dict = dict(remap(state_dict) if remap is not None else state_dict)
    new = se_keys(model)
    if not new:
        raise ValueError(f"{type(model).__name__} has no SE blocks: load its weights without the backbone tag")
    present = sorted(new & set(state_dict))
    if present:
        raise ValueError(f"these weights already hold SE tensors ({', '.join(present[:3])}...): not a backbone's")
    load_weights(model, state_dict, cfg, new_keys=new)
    for module in model.modules():
        if isinstance(module, SEModule):
            module.open_gate_()


def load_weights(
    model: nn.Module, state_dict: dict[str, torch.Tensor], cfg: Mapping[str, Any], new_keys: Set[str] = frozenset()
) -> None:
    """Assign ``state_dict`` to ``model`` (possibly on the meta device), adapting head and first conv.

    Tensors the weights cannot provide (a classifier of another size, and ``new_keys``) are initialised
    fresh; a key the model does not have, or any other shape mismatch, is an error.
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
        if not (
            key in new_keys or key.endswith("num_batches_tracked") or (classifier and key.startswith(f"{classifier}."))
        ):
            se = se_keys(model)
            hint = (
                "; the weights hold no SE tensor: a non-SE backbone's? load them with pretrained='backbone', "
                "pretrained_cfg_overlay=dict(file=PATH) (CLI: --pretrained backbone --pretrained-path PATH)"
                if key in se and not se & set(state_dict)
                else ""
            )
            raise ValueError(f"weights do not fit {type(model).__name__}: missing {key}{hint}")
    _materialize_missing(model, missing)
    model.load_state_dict(_aligned(state_dict), strict=False, assign=True)


def _aligned(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors whose data is 64-byte aligned, as torch allocates them.

    A memory-mapped safetensors file aligns tensors to 8 bytes only, and CPU kernels take other code paths
    for misaligned data: logits then differ in the last bits from the same weights loaded by timm's
    ``load_state_dict`` or held by the trainer. Misaligned tensors are copied (the mapping is then dropped).
    """
    return {k: v if v.data_ptr() % _ALIGNMENT == 0 else v.clone() for k, v in state_dict.items()}


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


def _base_cfg(variant: str, source: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The pretrained config a new model carries before the caller's overrides.

    Manifest weights bring their tag's config; weights from a file, folder, run or the Hub bring what
    they record (preprocessing, classes, labels) over the architecture's defaults; without weights the
    tag the caller named (timm passes its default tag's) or else the architecture's defaults.
    """
    if source is not None and source.kind == "tag":
        return pretrained_cfg_for(variant, source.tag)
    tag = given.get("tag")  # a tag the caller named (timm: "name.tag") keeps its preprocessing
    base = pretrained_cfg_for(variant, tag) if tag and _is_manifest_tag(variant, tag) else pretrained_cfg_for(variant)
    return base if source is None else {**base, **source.cfg_overlay()}


def _is_manifest_tag(variant: str, tag: str) -> bool:
    from ..hub.manifest import load_manifest

    manifest = load_manifest()
    return variant in manifest.names() and tag in manifest.tags(variant)


def _adjacent_conv_bn(wrapper: nn.Module) -> tuple[tuple[str, str], ...]:
    """Conv2d → BatchNorm2d neighbours among the children of a feature wrapper, which runs its children in
    order: the pairs ``optimize_for_inference`` folds (flattening lifted them out of their Sequential)."""
    children = list(wrapper.named_children())
    return tuple(
        (a, b)
        for (a, conv), (b, bn) in zip(children, children[1:])
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    )


def create(model_cls: type[nn.Module], name: str, pretrained: Any = False, **kwargs: Any) -> nn.Module:
    """Build the catalog network ``name`` (its architecture arguments, overridable) with :func:`build_model`."""
    return build_model(model_cls, name, pretrained, arch_args=CATALOG[name].model_args, **kwargs)


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
    new_head: bool = False,
    arch_args: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build ``model_cls(**kwargs)``; load weights per ``pretrained``; optionally wrap as a feature extractor.

    ``pretrained_cfg``, ``pretrained_cfg_overlay``, ``pretrained_model_args``, ``cache_dir``, ``device``
    and ``dtype`` are what ``timm.create_model`` passes; ``feature_cls`` is timm's (``"list"``,
    ``"dict"``, ``"hook"``, ``"getter"`` or a class). ``pretrained`` may also be a resolved
    :class:`~senet_zoo.resolve.Source`; ``new_head=True`` accepts a ``num_classes`` other than the
    weights' classifier (see :func:`_head`).
    """
    _validate(kwargs)
    given = _cfg_dict(pretrained_cfg)
    source = _source(variant, pretrained, {**given, **dict(pretrained_cfg_overlay or {})})
    # a non-SE backbone's ImageNet weights (the manifest's tag, or a local copy with that tag asked for)
    backbone = source is not None and BACKBONE_TAG in (
        pretrained,
        given.get("tag"),
        source.entry.tag if source.kind == "tag" else None,
    )
    keep_head = source is not None and _head(source, kwargs, new_head or backbone)
    # the architecture's arguments < the options the weights were trained with < the caller's
    kwargs = {**dict(arch_args or {}), **(source.model_kwargs if source is not None else {}), **kwargs}
    cfg = {**_base_cfg(variant, source, given), **given, **dict(pretrained_cfg_overlay or {})}
    if source is not None and source.kind != "tag":  # timm's cfg of the default tag is not these weights'
        cfg.update(source.cfg_overlay())
        cfg.update(dict(pretrained_cfg_overlay or {}))
    cfg.update(architecture=variant, num_classes=kwargs.get("num_classes", cfg["num_classes"]))
    if not keep_head:
        cfg.pop("label_names", None)
        cfg.pop("label_descriptions", None)
    if "in_chans" in kwargs:
        cfg["input_size"] = (kwargs["in_chans"], *cfg["input_size"][1:])
    if source is not None:
        state_dict = _state_dict(source)
        with torch.device("meta"):
            model: Any = model_cls(**kwargs)  # gets timm's cfg attributes below
        where = f"weights {source.spec}" if source.kind == "tag" else str(source.file)
        check_weights(state_dict, model.state_dict(), where)
        try:
            if backbone:
                load_backbone(model, state_dict, cfg)
            else:
                load_weights(model, state_dict, cfg)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if device is not None or dtype is not None:
            model.to(device=device, dtype=dtype)
    else:
        model = model_cls(**kwargs, device=device, dtype=dtype)
    model.pretrained_cfg = model.default_cfg = cfg
    model.pretrained_model_args = dict(pretrained_model_args or {})
    if features_only:
        wrapper = _FEATURE_CLASSES[feature_cls.lower()] if isinstance(feature_cls, str) else feature_cls
        # A family whose taps sit inside a Sequential (timm's VGG and MobileNet layouts) asks for flattening.
        feature_cfg = dict(getattr(model_cls, "feature_cfg", {}))
        if wrapper is FeatureGetterNet:  # calls forward_intermediates: no module rewriting
            feature_cfg.pop("flatten_sequential", None)
        out_indices = tuple(range(len(model.feature_info))) if out_indices is None else out_indices
        model = wrapper(model, out_indices=out_indices, **feature_cfg)
        model.pretrained_cfg = model.default_cfg = pretrained_cfg_for_features(cfg)
        if feature_cfg.get("flatten_sequential") and isinstance(model, (FeatureDictNet, FeatureHookNet)):
            setattr(model, "bn_fold_pairs", _adjacent_conv_bn(model))  # noqa: B010 - nn.Module types its attributes
    return model
