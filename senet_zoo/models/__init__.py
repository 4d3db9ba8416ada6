"""SE architectures: building blocks (``se``), the ResNet family and one entrypoint per network of the
catalog (``senet``), SE-BN-Inception (``bn_inception``). Importing the package registers every model
with timm (:mod:`._registration`), as importing timm's own model modules does."""

from ..catalog import CATALOG
from ._registration import register_with_timm
from .bn_inception import SEBNInception
from .se import SEModule
from .senet import ENTRYPOINTS, SENet

globals().update(ENTRYPOINTS)  # se_resnet50, ..., senet154

__all__ = ["SEModule", "SENet", "SEBNInception", *CATALOG]

register_with_timm()
