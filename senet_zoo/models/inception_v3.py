"""SE-Inception-v3: timm's Inception-v3 with an SE block on the output of every Inception module.

Not a network of the paper (its SE-Inception is BN-Inception); moskomule/senet.pytorch ships one, built
the same way: SE after each of the eleven Inception modules (``Mixed_5b`` … ``Mixed_7c``), the paper's
SE-Inception module (Fig. 2). Built from timm's public building blocks (``timm.models.inception_v3``), so
every non-SE tensor has exactly the key and shape of timm's ``inception_v3`` and its ImageNet weights
load as they are (``pretrained="backbone"``). Every SE block is a submodule ``se`` of its module.

The entrypoint only names the network: its facts are in :mod:`senet_zoo.catalog`.
"""

from functools import partial
from typing import Any, cast

import torch
from timm.layers import ConvNormAct
from timm.models.inception_v3 import InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, InceptionV3
from torch import nn

from ._builder import create
from .se import SEModule

__all__ = ["SEInceptionV3", "se_inception_v3"]

# timm's register_model reads an entrypoint's pretrained cfgs from its module's `default_cfgs`;
# senet_zoo.registry fills it from the catalog and the weights manifest when it registers.
default_cfgs: dict[str, Any] = {}


class SEInceptionA(InceptionA):
    def __init__(self, in_channels: int, pool_features: int, conv_block: Any, se_args: dict[str, Any], **dd: Any):
        super().__init__(in_channels, pool_features, conv_block=conv_block, **dd)
        self.se = SEModule(224 + pool_features, **se_args, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat(self._forward(x), 1))


class SEInceptionB(InceptionB):
    def __init__(self, in_channels: int, conv_block: Any, se_args: dict[str, Any], **dd: Any):
        super().__init__(in_channels, conv_block=conv_block, **dd)
        self.se = SEModule(in_channels + 480, **se_args, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat(self._forward(x), 1))


class SEInceptionC(InceptionC):
    def __init__(self, in_channels: int, channels_7x7: int, conv_block: Any, se_args: dict[str, Any], **dd: Any):
        super().__init__(in_channels, channels_7x7, conv_block=conv_block, **dd)
        self.se = SEModule(768, **se_args, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat(self._forward(x), 1))


class SEInceptionD(InceptionD):
    def __init__(self, in_channels: int, conv_block: Any, se_args: dict[str, Any], **dd: Any):
        super().__init__(in_channels, conv_block=conv_block, **dd)
        self.se = SEModule(in_channels + 512, **se_args, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat(self._forward(x), 1))


class SEInceptionE(InceptionE):
    def __init__(self, in_channels: int, conv_block: Any, se_args: dict[str, Any], **dd: Any):
        super().__init__(in_channels, conv_block=conv_block, **dd)
        self.se = SEModule(2048, **se_args, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat(self._forward(x), 1))


class SEInceptionV3(InceptionV3):
    """timm's ``InceptionV3`` whose eleven Inception modules end in an SE block.

    Args:
        num_classes / in_chans / drop_rate / global_pool / aux_logits / norm_eps: as timm's ``InceptionV3``.
        se_reduction / se_squeeze / se_gate: :class:`SEModule` options (paper defaults: 16, avg, sigmoid).
        device / dtype: where and in which precision the parameters are created.

    timm's constructor builds the stem, head and feature metadata; the Inception modules are then
    rebuilt with SE (same keys, plus ``.se``), so timm's forward and feature API apply unchanged.
    A randomly initialised network gets PyTorch's default init (as timm's Inception-ResNet-v2) instead
    of timm's truncated normal of std 0.1 everywhere: with BatchNorm after every convolution, those
    larger weights shrink the effective learning rate, and the classifier starts with logits of several
    units; from scratch on the digits it reached 49 % val top-1 after two epochs against 86 % for
    SE-Inception-ResNet-v2 with the same defaults.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        aux_logits: bool = False,
        norm_eps: float = 1e-3,
        se_reduction: int = 16,
        se_squeeze: str = "avg",
        se_gate: str = "sigmoid",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            in_chans=in_chans,
            drop_rate=drop_rate,
            global_pool=global_pool,
            aux_logits=aux_logits,
            norm_eps=norm_eps,
            device=device,
            dtype=dtype,
        )
        dd = dict(device=device, dtype=dtype)
        # timm's conv_block of InceptionV3 (unpadded ConvNormAct, BN eps 1e-3, in-place ReLU)
        cb = partial(ConvNormAct, padding=0, norm_kwargs=dict(eps=norm_eps), act_kwargs=dict(inplace=True))
        se = dict(reduction=se_reduction, squeeze=se_squeeze, gate=se_gate)
        modules: dict[str, nn.Module] = dict(
            Mixed_5b=SEInceptionA(192, 32, cb, se, **dd),
            Mixed_5c=SEInceptionA(256, 64, cb, se, **dd),
            Mixed_5d=SEInceptionA(288, 64, cb, se, **dd),
            Mixed_6a=SEInceptionB(288, cb, se, **dd),
            Mixed_6b=SEInceptionC(768, 128, cb, se, **dd),
            Mixed_6c=SEInceptionC(768, 160, cb, se, **dd),
            Mixed_6d=SEInceptionC(768, 160, cb, se, **dd),
            Mixed_6e=SEInceptionC(768, 192, cb, se, **dd),
            Mixed_7a=SEInceptionD(768, cb, se, **dd),
            Mixed_7b=SEInceptionE(1280, cb, se, **dd),
            Mixed_7c=SEInceptionE(2048, cb, se, **dd),
        )
        for name, module in modules.items():
            setattr(self, name, module)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)) and not m.weight.is_meta:
                m.reset_parameters()


def se_inception_v3(pretrained: Any = False, **kwargs: Any) -> SEInceptionV3:
    """SE-Inception-v3 (299×299; not in the paper, as in moskomule/senet.pytorch)."""
    return cast(SEInceptionV3, create(SEInceptionV3, "se_inception_v3", pretrained, **kwargs))
