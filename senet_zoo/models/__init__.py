"""SE architectures: building blocks (``se``), the ResNet family and the seven entrypoints (``senet``),
SE-BN-Inception (``bn_inception``); the paper's further networks, one module per family: SE-VGG
(``vgg``), SE-MobileNet (``mobilenet``), SE-ShuffleNet (``shufflenet``)."""

from .bn_inception import SEBNInception
from .mobilenet import SEMobileNet, se_mobilenet
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
from .shufflenet import SEShuffleNet, se_shufflenet
from .vgg import SEVGG, se_vgg16_bn

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
    "SEVGG",
    "SEMobileNet",
    "SEShuffleNet",
    "se_vgg16_bn",
    "se_mobilenet",
    "se_shufflenet",
]
