"""What the SENet authors reported for each Caffe release, and timm's name for the same weights layout.

Accuracy: single 224 centre crop of the 256-short-side image, ImageNet validation, as published with
the models (hujie-frank/SENet). ``timm_arch`` is the timm architecture whose state-dict keys and
shapes equal senet_zoo's, so a converted folder loads with plain timm; SE-BN-Inception has none.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Release", "RELEASES"]


@dataclass(frozen=True)
class Release:
    timm_arch: str | None
    top1_err: float
    top5_err: float
    caffemodel_mb: int

    @property
    def top1_acc(self) -> float:
        return round(100.0 - self.top1_err, 2)

    @property
    def top5_acc(self) -> float:
        return round(100.0 - self.top5_err, 2)


RELEASES: dict[str, Release] = {
    "se_bn_inception": Release(None, 23.62, 7.04, 46),
    "se_resnet50": Release("legacy_seresnet50", 22.37, 6.36, 107),
    "se_resnet101": Release("legacy_seresnet101", 21.75, 5.72, 189),
    "se_resnet152": Release("legacy_seresnet152", 21.34, 5.54, 256),
    "se_resnext50_32x4d": Release("legacy_seresnext50_32x4d", 20.97, 5.54, 105),
    "se_resnext101_32x4d": Release("legacy_seresnext101_32x4d", 19.81, 4.96, 187),
    "senet154": Release("legacy_senet154", 18.68, 4.47, 440),
}
