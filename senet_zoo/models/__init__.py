"""SE architectures: building blocks (``se``), the ResNet family and the seven entrypoints (``senet``),
SE-BN-Inception (``bn_inception``), and one module per family beyond the Caffe release
(``inception_resnet_v2``, ``inception_v3``, ``vgg``, ``mobilenet``, ``shufflenet``), each holding its
entrypoint."""

from .bn_inception import SEBNInception
from .inception_resnet_v2 import SEInceptionResnetV2, se_inception_resnet_v2
from .inception_v3 import SEInceptionV3, se_inception_v3
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
    "SEInceptionResnetV2",
    "SEInceptionV3",
    "se_inception_resnet_v2",
    "se_inception_v3",
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
