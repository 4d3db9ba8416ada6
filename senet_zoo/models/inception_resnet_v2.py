"""SE-Inception-ResNet-v2 (paper §4, Table 2): timm's Inception-ResNet-v2 with SE blocks.

Built from timm's public building blocks (``timm.models.inception_resnet_v2``), so every non-SE tensor
has exactly the key and shape of timm's ``inception_resnet_v2`` and its ImageNet weights load as they
are (``pretrained="backbone"``). As in the paper: in each residual Inception module (A ×10, B ×20,
C ×10) the SE block rescales the residual branch before the scaled addition (Fig. 3, SE-ResNet module);
in the three non-residual Inception modules (``mixed_5b``, ``mixed_6a``, ``mixed_7a``) it rescales the
module's output (Fig. 2, SE-Inception module). Every SE block is a submodule ``se`` of its module.

The entrypoint only names the network: its facts are in :mod:`senet_zoo.catalog`.
"""

from functools import partial
from typing import TYPE_CHECKING, Any, cast

import torch
from timm.layers import ConvNormAct
from timm.models.inception_resnet_v2 import Block8, Block17, Block35, InceptionResnetV2, Mixed_5b, Mixed_6a, Mixed_7a

from ._builder import create
from .se import ModelArgs, WithSE, split_se

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SEInceptionResnetV2", "se_inception_resnet_v2"]

# timm's register_model reads an entrypoint's pretrained cfgs from its module's `default_cfgs`;
# senet_zoo.registry fills it from the catalog and the weights manifest when it registers.
default_cfgs: dict[str, Any] = {}


class SEBlock35(WithSE, Block35):
    """Inception-ResNet-A (35×35) with SE on the residual branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        out = self.se(self.conv2d(out))
        return self.act(out * self.scale + x)


class SEBlock17(WithSE, Block17):
    """Inception-ResNet-B (17×17) with SE on the residual branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        out = self.se(self.conv2d(out))
        return self.act(out * self.scale + x)


class SEBlock8(WithSE, Block8):
    """Inception-ResNet-C (8×8) with SE on the residual branch (the last one without ReLU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x)), 1)
        out = self.se(self.conv2d(out)) * self.scale + x
        if self.relu is not None:
            out = self.relu(out)
        return out


class SEMixed5b(WithSE, Mixed_5b):
    """The stem's last Inception module (35×35, 320 channels), SE on its output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1))


class SEMixed6a(WithSE, Mixed_6a):
    """Reduction-A (35 → 17, 1088 channels), SE on its output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1))


class SEMixed7a(WithSE, Mixed_7a):
    """Reduction-B (17 → 8, 2080 channels), SE on its output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1))


class SEInceptionResnetV2(InceptionResnetV2):
    """timm's ``InceptionResnetV2`` whose Inception modules carry SE blocks.

    Args:
        num_classes / in_chans / drop_rate / global_pool / norm_eps: as timm's ``InceptionResnetV2``.
        se_reduction / se_squeeze / se_gate: :class:`~senet_zoo.models.se.SEOptions` (paper defaults: 16, avg, sigmoid).
        device / dtype: where and in which precision the parameters are created.

    timm's constructor builds the stem, head and feature metadata; the Inception modules are then
    rebuilt with SE (same keys, plus ``.se``), so timm's forward, ``forward_intermediates``,
    ``prune_intermediate_layers`` and ``group_matcher`` apply unchanged.
    """

    def __init__(self, norm_eps: float = 1e-3, **kwargs: "Unpack[ModelArgs]") -> None:
        se, timm_args = split_se(kwargs)
        super().__init__(norm_eps=norm_eps, **timm_args)
        dd = dict(device=kwargs.get("device"), dtype=kwargs.get("dtype"))
        # timm's conv_block of InceptionResnetV2 (unpadded ConvNormAct, BN eps 1e-3, in-place ReLU)
        cb = partial(ConvNormAct, padding=0, norm_kwargs=dict(eps=norm_eps), act_kwargs=dict(inplace=True))
        blk: dict[str, Any] = dict(conv_block=cb, se_layer=se, **dd)
        self.mixed_5b = SEMixed5b(se_chs=320, **blk)
        self.repeat = torch.nn.Sequential(*[SEBlock35(0.17, se_chs=320, **blk) for _ in range(10)])
        self.mixed_6a = SEMixed6a(se_chs=1088, **blk)
        self.repeat_1 = torch.nn.Sequential(*[SEBlock17(0.10, se_chs=1088, **blk) for _ in range(20)])
        self.mixed_7a = SEMixed7a(se_chs=2080, **blk)
        self.repeat_2 = torch.nn.Sequential(*[SEBlock8(0.20, se_chs=2080, **blk) for _ in range(9)])
        self.block8 = SEBlock8(1.0, no_relu=True, se_chs=2080, **blk)


def se_inception_resnet_v2(pretrained: Any = False, **kwargs: Any) -> SEInceptionResnetV2:
    """SE-Inception-ResNet-v2 (299×299)."""
    return cast(SEInceptionResnetV2, create(SEInceptionResnetV2, "se_inception_resnet_v2", pretrained, **kwargs))
