"""Names → architectures, release metadata and weights; the same names registered with timm.

``import senet_zoo`` registers every model with timm. A name timm already owns (``senet154`` is
timm's gluon ResNet-D SENet) is registered under a distinct timm name and never replaces timm's.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from . import models
from .convert.releases import RELEASES, Release
from .models import bn_inception, senet

__all__ = ["ModelSpec", "list_models", "create_model", "model_info", "get_spec", "register_with_timm"]


@dataclass(frozen=True)
class ModelSpec:
    """A registered network: how to build it, its size, and the Caffe release it reproduces."""

    name: str
    entrypoint: Callable[..., nn.Module]
    display_name: str  # the release's name in the paper and the authors' repository
    params: int
    gmacs: float  # multiply-accumulates at 224×224, ×1e9
    timm_name: str = ""  # name registered with timm; defaults to `name`

    @property
    def timm_registered_name(self) -> str:
        return self.timm_name or self.name

    @property
    def release(self) -> Release:
        """Reported accuracy and timm's architecture with the identical state-dict layout."""
        return RELEASES[self.name]


_SPECS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("se_bn_inception", models.se_bn_inception, "SE-BN-Inception", 11_931_622, 2.033),
        ModelSpec("se_resnet50", models.se_resnet50, "SE-ResNet-50", 28_088_024, 3.860),
        ModelSpec("se_resnet101", models.se_resnet101, "SE-ResNet-101", 49_326_872, 7.575),
        ModelSpec("se_resnet152", models.se_resnet152, "SE-ResNet-152", 66_821_848, 11.289),
        ModelSpec("se_resnext50_32x4d", models.se_resnext50_32x4d, "SE-ResNeXt-50 (32 x 4d)", 27_559_896, 4.233),
        ModelSpec("se_resnext101_32x4d", models.se_resnext101_32x4d, "SE-ResNeXt-101 (32 x 4d)", 48_955_416, 7.975),
        ModelSpec("senet154", models.senet154, "SENet-154", 115_088_984, 20.688, timm_name="senet_zoo_senet154"),
    )
}


def get_spec(name: str) -> ModelSpec:
    """The spec for ``name``; an unknown name raises a ValueError that lists close matches."""
    try:
        return _SPECS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_SPECS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Available: {', '.join(_SPECS)}") from None


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, optionally filtered by a shell-style pattern (``'se_resne*'``)."""
    names = sorted(_SPECS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def create_model(
    name: str, pretrained: Any = False, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any
) -> nn.Module:
    """Build ``name``.

    Args:
        pretrained: ``False``; ``True`` for the default weights in the manifest; a weights tag
            (``"caffe_in1k"``); or a path to a ``.safetensors`` file (legacy ``.pth`` is read with
            ``weights_only=True``). Weights are fetched from pinned sources and sha256-verified.
        num_classes: classifier size; with pretrained weights of another size the classifier is new
            and every other tensor is kept. ``0`` removes the classifier.
        in_chans: input channels; pretrained first convolutions are adapted (sum / repeat-and-scale).
        **kwargs: architecture options (``drop_rate``, ``se_reduction``, ``se_squeeze``, ``se_gate``,
            ``global_pool``) and ``features_only=True`` / ``out_indices`` for a feature extractor.
    """
    return get_spec(name).entrypoint(pretrained=pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)


def model_info(name: str) -> dict[str, Any]:
    """Parameter count, compute at 224×224, the Caffe release's reported error, and the source."""
    spec = get_spec(name)
    release = spec.release
    return dict(
        name=spec.name,
        params=spec.params,
        gmacs=spec.gmacs,
        gflops=round(2 * spec.gmacs, 3),
        top1_err=release.top1_err,
        top5_err=release.top5_err,
        top1_acc=release.top1_acc,
        top5_acc=release.top5_acc,
        caffe_model=spec.display_name,
        source="Hu et al., Squeeze-and-Excitation Networks (CVPR 2018), Caffe release github.com/hujie-frank/SENet",
        timm_name=spec.timm_registered_name,
        timm_legacy=release.timm_arch,
    )


def _timm_entrypoint(spec: ModelSpec) -> Callable[..., nn.Module]:
    @functools.wraps(spec.entrypoint)
    def entrypoint(pretrained: Any = False, **kwargs: Any) -> nn.Module:
        return spec.entrypoint(pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = spec.timm_registered_name
    entrypoint.__module__ = __name__
    return entrypoint


# timm's register_model reads pretrained cfgs from the entrypoint module's `default_cfgs`.
default_cfgs: dict[str, Any] = {}


def register_with_timm() -> None:
    """Register every model with timm (idempotent); refuse to shadow a name timm already owns."""
    from timm.models import is_model, model_entrypoint
    from timm.models._registry import generate_default_cfgs, register_model

    from .hub.manifest import load_manifest

    manifest = load_manifest()
    family_cfgs = {**senet.default_cfgs, **bn_inception.default_cfgs}
    for spec in _SPECS.values():
        timm_name = spec.timm_registered_name
        fn = _timm_entrypoint(spec)
        if is_model(timm_name):
            if getattr(model_entrypoint(timm_name), "__module__", "") != __name__:
                raise RuntimeError(f"timm already owns {timm_name!r}; give {spec.name} a distinct timm_name")
            continue
        tags = list(manifest.tags(spec.name)) if spec.name in manifest.names() else []
        default = manifest.default_tag(spec.name) if tags else None
        ordered = ([default] if default else []) + [t for t in tags if t != default]
        cfg = {k: v for k, v in family_cfgs[spec.name].items() if k not in ("paper_ids", "paper_name")}
        entries: dict[str, Any] = {
            f"{timm_name}.{tag}": dict(cfg, **manifest.get(spec.name, tag).preprocessing.as_pretrained_cfg())
            for tag in ordered
        } or {timm_name: cfg}
        default_cfgs.update(generate_default_cfgs(entries))
        register_model(fn)
