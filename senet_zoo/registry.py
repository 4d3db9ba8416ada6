"""Names → networks (``arch`` or ``arch.tag``), their facts, and the same names registered with timm.

Every fact comes from :mod:`senet_zoo.catalog`; weights tags from the weights manifest. The timm
registration itself is :mod:`senet_zoo.models._registration` (models register when they are imported,
as timm's own do); ``register_with_timm`` stays importable from here.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Any

from torch import nn

from .catalog import CATALOG, SOURCE, ModelFacts
from .hub.manifest import split_name
from .models import senet
from .models._registration import register_with_timm

__all__ = ["list_models", "create_model", "model_info", "get_spec", "split_name", "register_with_timm"]


def get_spec(name: str) -> ModelFacts:
    """The catalog entry for ``name`` (``arch`` or ``arch.tag``); an unknown name lists close matches."""
    arch = split_name(name)[0]
    try:
        return CATALOG[arch]
    except KeyError:
        close = difflib.get_close_matches(arch, list(CATALOG), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown model {arch!r}.{hint} Available: {', '.join(CATALOG)}") from None


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
        timm_name=m.timm_name,
        timm_legacy=m.timm_legacy,
    )
