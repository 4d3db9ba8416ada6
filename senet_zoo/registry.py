"""Names → networks (``arch`` or ``arch.tag``), their facts, and the same names registered with timm.

Every fact comes from :mod:`senet_zoo.catalog`; weights tags from the weights manifest. The timm
registration itself is :mod:`senet_zoo.models._registration` (models register when they are imported,
as timm's own do); ``register_with_timm`` stays importable from here.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import TYPE_CHECKING, Any

from .catalog import CATALOG, SOURCE, ModelFacts
from .hub.manifest import split_name

if TYPE_CHECKING:  # torch and the models are imported where a model is built: names and facts stay cheap
    from torch import nn

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
    name: str,
    pretrained: Any = False,
    num_classes: int | None = None,
    in_chans: int = 3,
    *,
    new_head: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build ``name``: ``"se_resnet50"``, ``"se_resnet50.caffe_in1k"``, or weights that name their own
    architecture (a fine-tuning run folder, a converted folder, a ``.safetensors`` file a run wrote, an
    ``"hf-hub:ORG/NAME"`` id), which are always loaded.

    Args:
        pretrained: ``False``; ``True`` for the named tag's weights, else the manifest's default; a
            weights tag (``"caffe_in1k"``) or :class:`~senet_zoo.weights.Weights`; or a file, folder,
            run folder or ``hf-hub:`` id (see :mod:`senet_zoo.resolve`). Weights are fetched from
            pinned sources and sha256-verified; legacy ``.pth`` is read with ``weights_only=True``.
        num_classes: classifier size. Default: the head stored with the weights (the trained head of
            a fine-tuned model, with its label names and preprocessing), else 1000. With the manifest's
            ImageNet weights another size gets a new head and every other tensor is kept (logged); with
            other weights a size that differs from theirs is refused unless ``new_head=True``. ``0``
            removes the classifier.
        in_chans: input channels; pretrained first convolutions are adapted (sum / repeat-and-scale).
        new_head: accept a ``num_classes`` other than the weights' classifier: a new random head.
        **kwargs: architecture options (``drop_rate``, ``se_reduction``, ``se_squeeze``, ``se_gate``,
            ``global_pool``), timm's ``device`` / ``dtype``, and ``features_only=True`` with
            ``out_indices`` / ``feature_cls`` (``"list"``, ``"hook"``, ``"getter"``) for a feature extractor.
    """
    from .resolve import resolve_pretrained

    source: Any
    overlay_file = (kwargs.get("pretrained_cfg_overlay") or {}).get("file")
    if overlay_file and isinstance(pretrained, str) and pretrained and not split_name(name)[1]:
        # timm's spelling of "this tag's weights, from this local file" (e.g. pretrained="backbone"):
        # the builder reads the file and applies the tag's loading rules
        arch, source = get_spec(name).name, pretrained
    else:
        arch, source = resolve_pretrained(name, pretrained)
    tag = split_name(name)[1] if source is None else None
    if tag is not None:  # no weights; the named tag's config (preprocessing)
        kwargs.setdefault("pretrained_cfg", tag)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    from .models._registration import family_module

    entrypoint = getattr(family_module(get_spec(arch)), arch)
    return entrypoint(pretrained=source or False, in_chans=in_chans, new_head=new_head, **kwargs)


def model_info(name: str) -> dict[str, Any]:
    """Parameter count, compute at the input size, the reported accuracy (Caffe release or paper), names elsewhere."""
    m = get_spec(name)
    info: dict[str, Any] = dict(
        name=m.name,
        params=m.params,
        gmacs=m.gmacs,
        gflops=round(2 * m.gmacs, 4),
        input_size=m.input_size,
        top1_err=m.top1_err,
        top5_err=m.top5_err,
        top1_acc=m.top1_acc,
        top5_acc=m.top5_acc,
        caffe_model=m.display_name,
        caffe_net=m.caffe_name,
        source=m.accuracy_source if not m.is_caffe_release else SOURCE,
        timm_name=m.timm_name,
        timm_legacy=m.timm_legacy,
    )
    if not m.is_caffe_release:
        info.update(backbone=m.backbone, paper_gmacs=m.paper_gmacs, paper_params=m.paper_params, note=m.paper_note)
    return info


def register_with_timm() -> None:
    """Register every model with timm (idempotent): :func:`senet_zoo.models._registration.register_with_timm`."""
    from .models._registration import register_with_timm as register

    register()
