"""Facts about the seven networks stated independently of the package (from the SENet release README and
timm), so that tests compare the catalog, the manifest and the models against them."""

from __future__ import annotations

CAFFE_ERRORS = {  # registry name: (Caffe file stem, top-1 err, top-5 err) from the SENet release README
    "se_bn_inception": ("SE-BN-Inception", 23.62, 7.04),
    "se_resnet50": ("SE-ResNet-50", 22.37, 6.36),
    "se_resnet101": ("SE-ResNet-101", 21.75, 5.72),
    "se_resnet152": ("SE-ResNet-152", 21.34, 5.54),
    "se_resnext50_32x4d": ("SE-ResNeXt-50", 20.97, 5.54),
    "se_resnext101_32x4d": ("SE-ResNeXt-101", 19.81, 4.96),
    "senet154": ("SENet-154", 18.68, 4.47),
}
# senet_zoo name -> timm's legacy architecture with the same state-dict layout.
TIMM_LEGACY = {
    "se_resnet50": "legacy_seresnet50",
    "se_resnet101": "legacy_seresnet101",
    "se_resnet152": "legacy_seresnet152",
    "se_resnext50_32x4d": "legacy_seresnext50_32x4d",
    "se_resnext101_32x4d": "legacy_seresnext101_32x4d",
    "senet154": "legacy_senet154",
}
MODEL_NAMES = list(CAFFE_ERRORS)  # every network senet_zoo names
