"""SE architectures: building blocks (``se``), the ResNet family and the seven entrypoints (``senet``),
SE-BN-Inception (``bn_inception``)."""

from .bn_inception import SEBNInception
from .se import SEModule
from .senet import (
    SENet,
    se_bn_inception,
    se_resnet50,
    se_resnet101,
    se_resnet152,
    se_resnext50_32x4d,
    se_resnext101_32x4d,
    senet154,
)

__all__ = [
    "SEModule",
    "SENet",
    "SEBNInception",
    "se_bn_inception",
    "se_resnet50",
    "se_resnet101",
    "se_resnet152",
    "se_resnext50_32x4d",
    "se_resnext101_32x4d",
    "senet154",
]
