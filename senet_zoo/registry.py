"""Names → networks (``arch`` or ``arch.tag``), their facts, and the same names registered with timm.

Every fact comes from :mod:`senet_zoo.catalog`; weights tags from the weights manifest. ``import
senet_zoo`` registers every model with timm with one pretrained config per weights tag (a tag that
is not published yet is registered without weights, so ``timm.list_pretrained`` leaves it out). A
name timm already owns (``senet154`` is timm's gluon ResNet-D SENet) is registered under a distinct
timm name and never replaces timm's.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from collections.abc import Callable
from typing import Any

from torch import nn

from ._log import get_logger
from .catalog import CATALOG, SOURCE, ModelFacts
from .models import senet
from .models._builder import pretrained_cfg_for

__all__ = ["list_models", "create_model", "model_info", "get_spec", "split_name", "register_with_timm"]

_logger = get_logger(__name__)


def get_spec(name: str) -> ModelFacts:
    """The catalog entry for ``name`` (``arch`` or ``arch.tag``); an unknown name lists close matches."""
    arch = split_name(name)[0]
    try:
        return CATALOG[arch]
    except KeyError:
        close = difflib.get_close_matches(arch, list(CATALOG), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown model {arch!r}.{hint} Available: {', '.join(CATALOG)}") from None


def split_name(name: str) -> tuple[str, str | None]:
    """``"se_resnet50.caffe_in1k"`` → ``("se_resnet50", "caffe_in1k")``; no tag → ``(name, None)``."""
    arch, sep, tag = name.partition(".")
    if not arch or (sep and not tag):
        raise ValueError(f"expected a model name NAME or NAME.TAG, got {name!r}")
    return arch, tag or None


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, optionally filtered by a shell-style pattern (``'se_resne*'``)."""
    names = sorted(CATALOG)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def create_model(
    name: str, pretrained: Any = False, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any
) -> nn.Module:
    """Build ``name`` (``"se_resnet50"`` or ``"se_resnet50.caffe_in1k"``).

    Args:
        pretrained: ``False``; ``True`` for the named tag's weights, else the manifest's default; a
            weights tag (``"caffe_in1k"``) or :class:`~senet_zoo.weights.Weights`; or a path to a
            ``.safetensors`` file (legacy ``.pth`` is read with ``weights_only=True``). Weights are
            fetched from pinned sources and sha256-verified.
        num_classes: classifier size; with pretrained weights of another size the classifier is new
            and every other tensor is kept. ``0`` removes the classifier.
        in_chans: input channels; pretrained first convolutions are adapted (sum / repeat-and-scale).
        **kwargs: architecture options (``drop_rate``, ``se_reduction``, ``se_squeeze``, ``se_gate``,
            ``global_pool``), timm's ``device`` / ``dtype``, and ``features_only=True`` with
            ``out_indices`` / ``feature_cls`` (``"list"``, ``"hook"``, ``"getter"``) for a feature extractor.
    """
    arch = get_spec(name).name
    tag = split_name(name)[1]
    if hasattr(pretrained, "tag") and hasattr(pretrained, "name"):  # a Weights object
        if pretrained.name != arch:
            raise ValueError(f"weights {pretrained.name}.{pretrained.tag} do not belong to {arch}")
        pretrained = pretrained.tag
    if tag is not None:
        if isinstance(pretrained, str) and pretrained != tag:
            raise ValueError(f"{name!r} names weights {tag!r}, pretrained={pretrained!r} names others")
        if pretrained:
            pretrained = tag
        else:  # the tag's config (preprocessing) without its weights
            kwargs.setdefault("pretrained_cfg", tag)
    entrypoint = getattr(senet, arch)
    return entrypoint(pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)


def model_info(name: str) -> dict[str, Any]:
    """Parameter count, compute at 224×224, the Caffe release's reported accuracy, and the names elsewhere."""
    m = get_spec(name)
    return dict(
        name=m.name,
        params=m.params,
        gmacs=m.gmacs,
        gflops=round(2 * m.gmacs, 4),
        top1_err=m.top1_err,
        top5_err=m.top5_err,
        top1_acc=m.top1_acc,
        top5_acc=m.top5_acc,
        caffe_model=m.display_name,
        caffe_net=m.caffe_name,
        source=SOURCE,
        timm_name=m.timm_registered_name,
        timm_legacy=m.timm_arch,
    )


def _timm_entrypoint(m: ModelFacts) -> Callable[..., nn.Module]:
    """The entrypoint timm calls: the family module's own, or a wrapper under the distinct timm name."""
    fn = getattr(senet, m.name)
    if m.timm_registered_name == m.name:
        return fn

    @functools.wraps(fn)
    def entrypoint(pretrained: Any = False, **kwargs: Any) -> nn.Module:
        return fn(pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = m.timm_registered_name
    del entrypoint.__wrapped__
    setattr(senet, m.timm_registered_name, entrypoint)  # timm lists it in the module's __all__
    return entrypoint


def _weights_tags(manifest: Any, name: str) -> list[str]:
    """The manifest's tags for ``name``, default first (timm's order: the first tag is the default)."""
    if manifest is None or name not in manifest.names():
        return []
    default = manifest.default_tag(name)
    return [default] + [t for t in manifest.tags(name) if t != default]


def register_with_timm() -> None:
    """Register every model with timm (idempotent); refuse to shadow a name timm already owns.

    A manifest that cannot be read is logged and the models are registered without weights tags: the
    error is raised where weights are asked for, naming the file.
    """
    from timm.models import is_model, model_entrypoint
    from timm.models._registry import generate_default_cfgs, register_model

    from .hub.manifest import ManifestError, load_manifest

    try:
        manifest = load_manifest()
    except ManifestError as exc:
        _logger.warning("registering senet_zoo models with timm without weights tags: %s", exc)
        manifest = None
    for m in CATALOG.values():
        timm_name = m.timm_registered_name
        if is_model(timm_name):
            if getattr(model_entrypoint(timm_name), "__module__", "") != senet.__name__:
                raise RuntimeError(f"timm already owns {timm_name!r}; give {m.name} a distinct timm_name")
            continue
        fn = _timm_entrypoint(m)
        entries: dict[str, Any] = {
            f"{timm_name}.{tag}": pretrained_cfg_for(m.name, tag, manifest) for tag in _weights_tags(manifest, m.name)
        } or {timm_name: pretrained_cfg_for(m.name)}
        senet.default_cfgs.update(generate_default_cfgs(entries))
        register_model(fn)
