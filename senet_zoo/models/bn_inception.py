"""SE-BN-Inception: BN-Inception (Ioffe & Szegedy 2015) with an SE block after every Inception module.

Follows the authors' ``SE-BN-Inception.prototxt`` layer for layer. The SE gate multiplies the
concatenated branches (no residual). Every convolution is followed by BatchNorm and ReLU.
Module names mirror the Caffe names (``inception_3a/double3x3b`` → ``inception3a.double3x3b``).
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from timm.models._manipulate import checkpoint
from torch import nn
from torch.nn import functional as F

from ._head import ClassifierHeadMixin
from .se import ModelArgs, SEModule

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SEBNInception", "InceptionBlock", "InceptionCfg"]


class ConvBnReLU(nn.Module):
    def __init__(
        self, in_chs: int, out_chs: int, kernel_size: int = 1, stride: int = 1, device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv = nn.Conv2d(
            in_chs, out_chs, kernel_size, stride=stride, padding=pad, bias=False, device=device, dtype=dtype
        )
        self.bn = nn.BatchNorm2d(out_chs, device=device, dtype=dtype)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class GridMaxPool(nn.Module):
    """3×3/2 max pool in Caffe's ceil mode whose output grid matches a padded 3×3/2 convolution.

    At odd sizes Caffe's ceil-mode pool yields one row/column fewer than the strided convolution beside
    it (the Caffe net cannot run there); one -inf row and column on the far edge add that last window.
    At even sizes the same padding changes nothing (the last ceil-mode window already reaches past the
    edge), so it is always applied: no shape-dependent branch, which FX tracing could not follow.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, [0, 1, 0, 1], value=float("-inf")), 3, stride=2, ceil_mode=True)


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

    def __init__(
        self, in_chs: int, cfg: InceptionCfg, se: Callable[..., SEModule], device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        c = cfg
        dd = dict(device=device, dtype=dtype)
        self.branch1x1 = ConvBnReLU(in_chs, c.conv1x1, **dd) if c.conv1x1 else None
        self.branch3x3_reduce = ConvBnReLU(in_chs, c.conv3x3_reduce, **dd)
        self.branch3x3 = ConvBnReLU(c.conv3x3_reduce, c.conv3x3, 3, stride=c.stride, **dd)
        self.double3x3_reduce = ConvBnReLU(in_chs, c.double3x3_reduce, **dd)
        self.double3x3a = ConvBnReLU(c.double3x3_reduce, c.double3x3, 3, **dd)
        self.double3x3b = ConvBnReLU(c.double3x3, c.double3x3, 3, stride=c.stride, **dd)
        if c.stride == 2:
            self.pool: nn.Module = GridMaxPool()
        elif c.pool == "max":
            self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        else:  # Caffe's AVE pooling counts the zero padding
            self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True)
        self.pool_proj = ConvBnReLU(in_chs, c.pool_proj, **dd) if c.pool_proj else None
        self.out_chs = c.conv1x1 + c.conv3x3 + c.double3x3 + (c.pool_proj or in_chs)
        self.se = se(self.out_chs, **dd)

    def concat_branches(self, x: torch.Tensor) -> torch.Tensor:
        """The concatenated branch outputs (TorchScript-compatible; the fused copy calls it too)."""
        branches: list[torch.Tensor] = []
        if self.branch1x1 is not None:
            branches.append(self.branch1x1(x))
        branches.append(self.branch3x3(self.branch3x3_reduce(x)))
        branches.append(self.double3x3b(self.double3x3a(self.double3x3_reduce(x))))
        pooled = self.pool(x)
        branches.append(pooled if self.pool_proj is None else self.pool_proj(pooled))
        return torch.cat(branches, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.concat_branches(x))


def concat_branches(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The concatenated branch outputs of an Inception module (or of its inference-fused copy)."""
    return InceptionBlock.concat_branches(block, x)  # type: ignore[arg-type]


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
# The modules up to each feature tap, in forward order.
FEATURE_STAGES = (
    ("conv1",),
    ("pool1", "conv2_reduce", "conv2"),
    ("pool2", "inception3a", "inception3b"),
    ("inception3c", "inception4a", "inception4b", "inception4c", "inception4d"),
    ("inception4e", "inception5a", "inception5b"),
)


class SEBNInception(ClassifierHeadMixin, nn.Module):
    """SE-BN-Inception. Children are registered in forward order so timm's FeatureListNet can tap them."""

    if TYPE_CHECKING:  # blocks are added by name in __init__; TorchScript must not see these annotations
        inception3a: InceptionBlock
        inception3b: InceptionBlock
        inception3c: InceptionBlock
        inception4a: InceptionBlock
        inception4b: InceptionBlock
        inception4c: InceptionBlock
        inception4d: InceptionBlock
        inception4e: InceptionBlock
        inception5a: InceptionBlock
        inception5b: InceptionBlock

    def __init__(self, **kwargs: "Unpack[ModelArgs]") -> None:
        super().__init__()
        a = self._init_model(**kwargs)
        dd, in_chans = a.dd, a.in_chans
        self.conv1 = ConvBnReLU(in_chans, 64, 7, stride=2, **dd)
        self.pool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2_reduce = ConvBnReLU(64, 64, **dd)
        self.conv2 = ConvBnReLU(64, 192, 3, **dd)
        self.pool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        se_block = a.se_layer
        chs = {"conv1": 64, "conv2": 192}
        in_chs = 192
        for name, cfg in INCEPTION_CFGS:
            block = InceptionBlock(in_chs, cfg, se_block, **dd)
            self.add_module(name, block)
            in_chs = chs[name] = block.out_chs
        self.feature_info = [dict(num_chs=chs[m], reduction=r, module=m) for m, r in FEATURE_MODULES.items()]
        self.feature_stages = FEATURE_STAGES
        self._init_end(a, in_chs)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for layer-wise decay: the stem, then one group per stage (coarse) or module."""
        if coarse:
            return dict(stem=r"^conv|^pool", blocks=r"^inception(\d)")
        return dict(stem=r"^conv|^pool", blocks=[(rf"^{name}\.", (i,)) for i, (name, _) in enumerate(INCEPTION_CFGS)])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(self.conv2_reduce(x)))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            for name, _ in INCEPTION_CFGS:
                x = checkpoint(getattr(self, name), x)
            return x
        x = self.inception3a(x)  # spelled out: TorchScript cannot iterate over a list of modules
        x = self.inception3b(x)
        x = self.inception3c(x)
        x = self.inception4a(x)
        x = self.inception4b(x)
        x = self.inception4c(x)
        x = self.inception4d(x)
        x = self.inception4e(x)
        x = self.inception5a(x)
        x = self.inception5b(x)
        return x
