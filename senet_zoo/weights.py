"""torchvision-style weights objects: one per manifest entry, with its transforms, metadata and verified tensors.

>>> w = senet_zoo.get_weights("se_resnet50.cadene_in1k")   # or get_weights("se_resnet50"): the default tag
>>> preprocess = w.transforms()                            # the exact eval preprocessing of these weights
>>> w.meta["metrics"]["top1_acc"], w.meta["sha256"]
>>> model = senet_zoo.create_model("se_resnet50", pretrained=w)   # or model.load_state_dict(w.get_state_dict())

The manifest is read each time (``$SENET_ZOO_MANIFEST`` or the shipped one), so a bad manifest errors
here, naming the file, and never at import.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .catalog import CATALOG, SOURCE
from .hub.manifest import Manifest, WeightsEntry, load_manifest
from .preprocessing import cfg_eval_transform

__all__ = ["Weights", "get_weights", "list_weights"]


@dataclasses.dataclass(frozen=True)
class Weights:
    """One set of pretrained weights of one network (a ``name.tag`` of the weights manifest)."""

    entry: WeightsEntry

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def tag(self) -> str:
        return self.entry.tag

    @property
    def available(self) -> bool:
        """True when published (downloadable); pending weights are converted locally with ``senet-zoo convert``."""
        return self.entry.available

    @property
    def url(self) -> str | None:
        """Where the file is fetched from first (None while pending)."""
        return self.entry.sources[0].describe() if self.entry.sources else None

    @property
    def meta(self) -> dict[str, Any]:
        """Network size and compute, reported accuracy, provenance, license and the file's checksum."""
        m, e = CATALOG[self.name], self.entry
        return dict(
            name=self.name,
            tag=self.tag,
            status=e.status,
            num_params=m.params,
            gmacs=m.gmacs,
            num_classes=1000,
            metrics=dict(e.metrics) if e.metrics else None,
            reported_caffe=dict(top1_acc=m.top1_acc, top5_acc=m.top5_acc, source=SOURCE),
            provenance=dict(e.provenance),
            license=e.license,
            sha256=e.sha256,
            sha256_prefix=e.sha256_prefix,
            size=e.size,
            format=e.format,
            sources=[s.describe() for s in e.sources],
            preprocessing=dict(e.preprocessing),
        )

    def transforms(self) -> Any:
        """The evaluation transform of these weights (resize, centre crop, tensor, normalize), PIL image in."""
        return cfg_eval_transform(self.entry.preprocessing.as_pretrained_cfg())

    def get_state_dict(self, progress: bool = True) -> dict[str, Any]:
        """The weights as tensors, downloaded (or taken from the cache) and checksum-verified first."""
        from .hub.fetch import fetch, load_state_dict

        return load_state_dict(fetch(self.entry, progress=progress))

    def __str__(self) -> str:
        return f"{self.name}.{self.tag}"


def _manifest(manifest: Manifest | str | None) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest)


def get_weights(name: str, tag: str | None = None, *, manifest: Manifest | str | None = None) -> Weights:
    """The weights ``name.tag`` (``"se_resnet50.caffe_in1k"``), or the default tag of ``name``."""
    from .registry import get_spec, split_name

    arch, named = split_name(name)
    get_spec(arch)  # an unknown model name lists close matches
    if named and tag and named != tag:
        raise ValueError(f"{name!r} and tag={tag!r} name different weights")
    return Weights(_manifest(manifest).get(arch, named or tag))


def list_weights(
    name: str | None = None, *, available_only: bool = False, manifest: Manifest | str | None = None
) -> list[Weights]:
    """Every weights entry of ``name`` (all models when None), default tag first; optionally published only."""
    from .registry import get_spec

    m = _manifest(manifest)
    names = [get_spec(name).name] if name else m.names()
    out = []
    for arch in names:
        if arch not in m.names():
            continue
        default = m.default_tag(arch)
        for tag in [default] + [t for t in m.tags(arch) if t != default]:
            w = Weights(m.get(arch, tag))
            if w.available or not available_only:
                out.append(w)
    return out
