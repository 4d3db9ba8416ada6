"""SE architectures: building blocks (``se``), the ResNet family and one entrypoint per network of the
Caffe release (``senet``), SE-BN-Inception (``bn_inception``), and one module per family beyond the
release (``inception_resnet_v2``, ``inception_v3``: a catalog entry's ``family``), each holding its
entrypoint. Importing the package registers every model with timm (:mod:`._registration`), as importing
timm's own model modules does."""

from ..catalog import CATALOG
from ._registration import register_with_timm
from .bn_inception import SEBNInception
from .inception_resnet_v2 import SEInceptionResnetV2, se_inception_resnet_v2  # noqa: F401  (in __all__)
from .inception_v3 import SEInceptionV3, se_inception_v3  # noqa: F401  (in __all__ through CATALOG)
from .se import SEModule
from .senet import ENTRYPOINTS, SENet

globals().update(ENTRYPOINTS)  # se_resnet50, ..., senet154

__all__ = ["SEModule", "SENet", "SEBNInception", "SEInceptionResnetV2", "SEInceptionV3", *CATALOG]

register_with_timm()
