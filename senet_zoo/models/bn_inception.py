"""SE-BN-Inception: BN-Inception (Ioffe & Szegedy 2015) with an SE block after every Inception module.

Follows the authors' ``SE-BN-Inception.prototxt`` layer for layer. The SE gate multiplies the
concatenated branches (no residual). Every convolution is followed by BatchNorm and ReLU.
Module names mirror the Caffe names (``inception_3a/double3x3b`` → ``inception3a.double3x3b``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._builder import build_model, init_weights, make_cfg
from ._head import ClassifierHeadMixin
from .se import SEModule

__all__ = ["SEBNInception", "InceptionBlock", "InceptionCfg"]


class ConvBnReLU(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class GridMaxPool(nn.Module):
    """3×3/2 max pool in Caffe's ceil mode whose output grid matches a padded 3×3/2 convolution.

    At even input sizes this is exactly Caffe's pooling. At odd sizes Caffe's ceil-mode pool yields one
    row/column fewer than the strided convolution beside it (the Caffe net cannot run there); padding
    the far edge with -inf adds that last window, so any input size works.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2), value=float("-inf"))
        return F.max_pool2d(x, 3, stride=2, ceil_mode=True)


class InceptionCfg(NamedTuple):
    """Branch widths of one Inception module (0 = branch absent) and its pooling branch."""

    conv1x1: int
    conv3x3_reduce: int
    conv3x3: int
    double3x3_reduce: int
    double3x3: int
    pool: str  # "avg" | "max"
    pool_proj: int  # 0: the pooled input is concatenated as is (stride-2 reduction modules)
    stride: int = 1


class InceptionBlock(nn.Module):
    """Branches 1×1 | 1×1→3×3 | 1×1→3×3→3×3 | pool(→1×1), concatenated, then SE-scaled."""

    def __init__(self, in_chs: int, cfg: InceptionCfg, se_args: dict[str, Any]) -> None:
        super().__init__()
        c = cfg
        self.branch1x1 = ConvBnReLU(in_chs, c.conv1x1) if c.conv1x1 else None
        self.branch3x3_reduce = ConvBnReLU(in_chs, c.conv3x3_reduce)
        self.branch3x3 = ConvBnReLU(c.conv3x3_reduce, c.conv3x3, 3, stride=c.stride)
        self.double3x3_reduce = ConvBnReLU(in_chs, c.double3x3_reduce)
        self.double3x3a = ConvBnReLU(c.double3x3_reduce, c.double3x3, 3)
        self.double3x3b = ConvBnReLU(c.double3x3, c.double3x3, 3, stride=c.stride)
        if c.stride == 2:
            self.pool: nn.Module = GridMaxPool()
        elif c.pool == "max":
            self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        else:  # Caffe's AVE pooling counts the zero padding
            self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)
        self.pool_proj = ConvBnReLU(in_chs, c.pool_proj) if c.pool_proj else None
        self.out_chs = c.conv1x1 + c.conv3x3 + c.double3x3 + (c.pool_proj or in_chs)
        self.se = SEModule(self.out_chs, **se_args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(concat_branches(self, x))


def concat_branches(block: Any, x: torch.Tensor) -> torch.Tensor:
    """The concatenated branch outputs of an Inception module (or of its inference-fused copy)."""
    branches = [] if block.branch1x1 is None else [block.branch1x1(x)]
    branches.append(block.branch3x3(block.branch3x3_reduce(x)))
    branches.append(block.double3x3b(block.double3x3a(block.double3x3_reduce(x))))
    pooled = block.pool(x)
    branches.append(pooled if block.pool_proj is None else block.pool_proj(pooled))
    return torch.cat(branches, 1)


# From SE-BN-Inception.prototxt: (name, config); channels 256, 320, 576, 576, 576, 608, 608, 1056, 1024, 1024.
INCEPTION_CFGS: tuple[tuple[str, InceptionCfg], ...] = (
    ("inception3a", InceptionCfg(64, 64, 64, 64, 96, "avg", 32)),
    ("inception3b", InceptionCfg(64, 64, 96, 64, 96, "avg", 64)),
    ("inception3c", InceptionCfg(0, 128, 160, 64, 96, "max", 0, stride=2)),
    ("inception4a", InceptionCfg(224, 64, 96, 96, 128, "avg", 128)),
    ("inception4b", InceptionCfg(192, 96, 128, 96, 128, "avg", 128)),
    ("inception4c", InceptionCfg(160, 128, 160, 128, 160, "avg", 128)),
    ("inception4d", InceptionCfg(96, 128, 192, 160, 192, "avg", 128)),
    ("inception4e", InceptionCfg(0, 128, 192, 192, 256, "max", 0, stride=2)),
    ("inception5a", InceptionCfg(352, 192, 320, 160, 224, "avg", 128)),
    ("inception5b", InceptionCfg(352, 192, 320, 192, 224, "max", 128)),
)
FEATURE_MODULES = {"conv1": 2, "conv2": 4, "inception3b": 8, "inception4d": 16, "inception5b": 32}


class SEBNInception(ClassifierHeadMixin, nn.Module):
    """SE-BN-Inception. Children are registered in forward order so timm's FeatureListNet can tap them."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        se_reduction: int = 16,
        se_squeeze: str = "avg",
        se_gate: str = "sigmoid",
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.conv1 = ConvBnReLU(in_chans, 64, 7, stride=2)
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2_reduce = ConvBnReLU(64, 64)
        self.conv2 = ConvBnReLU(64, 192, 3)
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        se_args = dict(reduction=se_reduction, squeeze=se_squeeze, gate=se_gate)
        chs = {"conv1": 64, "conv2": 192}
        in_chs = 192
        for name, cfg in INCEPTION_CFGS:
            block = InceptionBlock(in_chs, cfg, se_args)
            self.add_module(name, block)
            in_chs = chs[name] = block.out_chs
        self.feature_info = [dict(num_chs=chs[m], reduction=r, module=m) for m, r in FEATURE_MODULES.items()]
        self.num_features = in_chs
        self._init_head(num_classes, global_pool)
        self.apply(init_weights)

    def _blocks(self) -> list[nn.Module]:
        return [getattr(self, name) for name, _ in INCEPTION_CFGS]

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, str]:
        return dict(stem=r"^conv|^pool", blocks=r"^inception(\d)" if coarse else r"^inception(\d[a-e])")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(self.conv2_reduce(x)))
        for block in self._blocks():
            x = block(x)
        return x


default_cfgs = {"se_bn_inception": make_cfg(first_conv="conv1.conv")}


def se_bn_inception(pretrained: Any = False, **kwargs: Any) -> nn.Module:
    """SE-BN-Inception: 23.62 / 7.04 top-1 / top-5 error in the Caffe release."""
    return build_model(
        SEBNInception, "se_bn_inception", pretrained, default_cfg=default_cfgs["se_bn_inception"], **kwargs
    )
