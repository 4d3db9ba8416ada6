"""SE architectures: building blocks (``se``), the ResNet family and the seven entrypoints (``senet``),
SE-BN-Inception (``bn_inception``). Importing the package registers every model with timm
(:mod:`._registration`), as importing timm's own model modules does."""

from ._registration import register_with_timm
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

register_with_timm()
