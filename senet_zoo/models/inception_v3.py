"""SE-Inception-v3: timm's Inception-v3 with an SE block on the output of every Inception module.

Not a network of the paper (its SE-Inception is BN-Inception); moskomule/senet.pytorch ships one, built
the same way: SE after each of the eleven Inception modules (``Mixed_5b`` … ``Mixed_7c``), the paper's
SE-Inception module (Fig. 2). Built from timm's public building blocks (``timm.models.inception_v3``), so
every non-SE tensor has exactly the key and shape of timm's ``inception_v3`` and its ImageNet weights
load as they are (``pretrained="backbone"``). Every SE block is a submodule ``se`` of its module.

The entrypoint only names the network: its facts are in :mod:`senet_zoo.catalog`.
"""

from functools import partial
from typing import TYPE_CHECKING, Any, cast

import torch
from timm.layers import ConvNormAct
from timm.models.inception_v3 import InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, InceptionV3
from torch import nn

from ._builder import create
from .se import ModelArgs, WithSE, split_se

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SEInceptionV3", "se_inception_v3"]

# timm's register_model reads an entrypoint's pretrained cfgs from its module's `default_cfgs`;
# senet_zoo.registry fills it from the catalog and the weights manifest when it registers.
default_cfgs: dict[str, Any] = {}


class SEOutput(WithSE):
    """SE on the concatenated branches of one of timm's Inception-v3 modules (their ``_forward``)."""

    if TYPE_CHECKING:  # the timm module's branches; no "type:" comment: TorchScript would parse it

        def _forward(self, x: torch.Tensor) -> list[torch.Tensor]: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat(self._forward(x), 1))


class SEInceptionA(SEOutput, InceptionA):
    """``Mixed_5b``, ``Mixed_5c``, ``Mixed_5d`` (35×35)."""


class SEInceptionB(SEOutput, InceptionB):
    """``Mixed_6a`` (35 → 17)."""


class SEInceptionC(SEOutput, InceptionC):
    """``Mixed_6b`` … ``Mixed_6e`` (17×17)."""


class SEInceptionD(SEOutput, InceptionD):
    """``Mixed_7a`` (17 → 8)."""


class SEInceptionE(SEOutput, InceptionE):
    """``Mixed_7b``, ``Mixed_7c`` (8×8)."""


class SEInceptionV3(InceptionV3):
    """timm's ``InceptionV3`` whose eleven Inception modules end in an SE block.

    Args:
        num_classes / in_chans / drop_rate / global_pool / aux_logits / norm_eps: as timm's ``InceptionV3``.
        se_reduction / se_squeeze / se_gate: :class:`~senet_zoo.models.se.SEOptions` (paper defaults: 16, avg, sigmoid).
        device / dtype: where and in which precision the parameters are created.

    timm's constructor builds the stem, head and feature metadata; the Inception modules are then
    rebuilt with SE (same keys, plus ``.se``), so timm's forward and feature API apply unchanged.
    A randomly initialised network gets PyTorch's default init (as timm's Inception-ResNet-v2) instead
    of timm's truncated normal of std 0.1 everywhere: with BatchNorm after every convolution, those
    larger weights shrink the effective learning rate, and the classifier starts with logits of several
    units; from scratch on the digits it reached 49 % val top-1 after two epochs against 86 % for
    SE-Inception-ResNet-v2 with the same defaults.
    """

    def __init__(self, aux_logits: bool = False, norm_eps: float = 1e-3, **kwargs: "Unpack[ModelArgs]") -> None:
        se, timm_args = split_se(kwargs)
        super().__init__(aux_logits=aux_logits, norm_eps=norm_eps, **timm_args)
        dd = dict(device=kwargs.get("device"), dtype=kwargs.get("dtype"))
        # timm's conv_block of InceptionV3 (unpadded ConvNormAct, BN eps 1e-3, in-place ReLU)
        cb = partial(ConvNormAct, padding=0, norm_kwargs=dict(eps=norm_eps), act_kwargs=dict(inplace=True))
        blk: dict[str, Any] = dict(conv_block=cb, se_layer=se, **dd)
        # (the SE block's channels: the module's output channels)
        modules: dict[str, nn.Module] = dict(
            Mixed_5b=SEInceptionA(192, 32, se_chs=256, **blk),
            Mixed_5c=SEInceptionA(256, 64, se_chs=288, **blk),
            Mixed_5d=SEInceptionA(288, 64, se_chs=288, **blk),
            Mixed_6a=SEInceptionB(288, se_chs=768, **blk),
            Mixed_6b=SEInceptionC(768, 128, se_chs=768, **blk),
            Mixed_6c=SEInceptionC(768, 160, se_chs=768, **blk),
            Mixed_6d=SEInceptionC(768, 160, se_chs=768, **blk),
            Mixed_6e=SEInceptionC(768, 192, se_chs=768, **blk),
            Mixed_7a=SEInceptionD(768, se_chs=1280, **blk),
            Mixed_7b=SEInceptionE(1280, se_chs=2048, **blk),
            Mixed_7c=SEInceptionE(2048, se_chs=2048, **blk),
        )
        for name, module in modules.items():
            setattr(self, name, module)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)) and not m.weight.is_meta:
                m.reset_parameters()


def se_inception_v3(pretrained: Any = False, **kwargs: Any) -> SEInceptionV3:
    """SE-Inception-v3 (299×299; not in the paper, as in moskomule/senet.pytorch)."""
    return cast(SEInceptionV3, create(SEInceptionV3, "se_inception_v3", pretrained, **kwargs))
