"""SE-ShuffleNet: ShuffleNet v1 (1×, g = 3; Zhang et al. 2018) with an SE block on every unit's residual branch.

The paper's configuration (arXiv:1709.01507, Table 3: 140 → 142 MFLOPs, 1.8 M → 2.4 M parameters) is
ShuffleNet 1× with g = 3 groups: a 3×3/2 stem of 24 channels and 3×3/2 max pool, then stages of 4, 8 and
4 units with 240, 480 and 960 output channels. A unit is 1×1 group conv → BN → ReLU → channel shuffle →
3×3 depthwise conv (stride 1 or 2) → BN → 1×1 group conv → BN, with a bottleneck of a quarter of the
unit's output; the first 1×1 of the first unit is not grouped (its input has only 24 channels). Stride-1
units add the input; stride-2 units concatenate a 3×3/2 average pool of it. As in SE-ResNet, the SE
block scales the residual branch before the addition (concatenation), then the final ReLU.

timm has no ShuffleNet v1, so the layout is this file's own; the stem is a Sequential so that
``optimize_for_inference`` folds it as it folds the ResNet family's.
"""

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import torch
from timm.models._manipulate import checkpoint_seq
from torch import nn

from ._builder import create
from ._head import ClassifierHeadMixin
from .se import ModelArgs, SEModule

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SEShuffleNet", "ShuffleUnit", "channel_shuffle", "se_shufflenet"]

default_cfgs: dict[str, Any] = {}  # filled by senet_zoo.registry (timm reads the module's default_cfgs)

STEM_CHS = 24
STAGE_REPEATS = (4, 8, 4)
# Output channels of stages 2–4 for each number of groups (ShuffleNet paper, Table 1, 1×).
STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088), 8: (384, 768, 1536)}


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (N×(g·c)×H×W → N×(c·g)×H×W)."""
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """One ShuffleNet unit with SE on its branch; stride 2 concatenates an average-pooled shortcut."""

    bn_fold_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))  # folded by optimize_for_inference

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        stride: int,
        groups: int,
        first_groups: int,
        se: Callable[..., SEModule],
        **dd: Any,  # device, dtype
    ) -> None:
        super().__init__()
        mid = out_chs // 4
        branch = out_chs - in_chs if stride == 2 else out_chs
        self.shuffle_groups = first_groups
        self.conv1 = nn.Conv2d(in_chs, mid, 1, groups=first_groups, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(mid, **dd)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False, **dd)
        self.bn2 = nn.BatchNorm2d(mid, **dd)
        self.conv3 = nn.Conv2d(mid, branch, 1, groups=groups, bias=False, **dd)
        self.bn3 = nn.BatchNorm2d(branch, **dd)
        self.se = se(branch, **dd)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        if self.shuffle_groups > 1:
            out = channel_shuffle(out, self.shuffle_groups)
        out = self.bn3(self.conv3(self.bn2(self.conv2(out))))
        out = self.se(out)
        if self.pool is None:
            return self.act(out + x)
        return self.act(torch.cat([self.pool(x), out], 1))


class SEShuffleNet(ClassifierHeadMixin, nn.Module):
    """ShuffleNet v1 (1×) with SE.

    Args:
        groups: groups of the 1×1 convolutions (the paper's SE-ShuffleNet: 3).
        num_classes / in_chans / drop_rate / global_pool: timm's model arguments.
        se_reduction / se_squeeze / se_gate: :class:`~senet_zoo.models.se.SEOptions`.
        device / dtype: where and in which precision the parameters are created.
    """

    group_stem, group_stage_prefix = r"^stem|^pool", "stage"
    if TYPE_CHECKING:  # stages are added by name in __init__; TorchScript must not see these annotations
        stage2: nn.Module
        stage3: nn.Module
        stage4: nn.Module

    def __init__(
        self,
        groups: int = 3,
        **kwargs: "Unpack[ModelArgs]",
    ) -> None:
        super().__init__()
        if groups not in STAGE_CHANNELS:
            raise ValueError(f"groups must be one of {tuple(STAGE_CHANNELS)}, got {groups!r}")
        a = self._init_model(**kwargs)
        dd, in_chans = a.dd, a.in_chans
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_chans, STEM_CHS, 3, stride=2, padding=1, bias=False, **dd),
                bn=nn.BatchNorm2d(STEM_CHS, **dd),
                act=nn.ReLU(inplace=True),
            )
        )
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.feature_info = [
            dict(num_chs=STEM_CHS, reduction=2, module="stem"),
            dict(num_chs=STEM_CHS, reduction=4, module="pool"),
        ]
        se_block = a.se_layer
        in_chs = STEM_CHS
        for i, (out_chs, repeats) in enumerate(zip(STAGE_CHANNELS[groups], STAGE_REPEATS)):
            units = [ShuffleUnit(in_chs, out_chs, 2, groups, 1 if i == 0 else groups, se_block, **dd)]
            units += [ShuffleUnit(out_chs, out_chs, 1, groups, groups, se_block, **dd) for _ in range(1, repeats)]
            self.add_module(f"stage{i + 2}", nn.Sequential(*units))
            in_chs = out_chs
            self.feature_info.append(dict(num_chs=out_chs, reduction=8 * 2**i, module=f"stage{i + 2}"))
        self.feature_stages = (("stem",), ("pool",), ("stage2",), ("stage3",), ("stage4",))
        self._init_end(a, in_chs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            for stage in (self.stage2, self.stage3, self.stage4):
                x = checkpoint_seq(stage, x) if isinstance(stage, nn.Sequential) else stage(x)  # pruned: Identity
            return x
        x = self.stage2(x)
        x = self.stage3(x)
        x = self.stage4(x)
        return x


def se_shufflenet(pretrained: Any = False, **kwargs: Any) -> SEShuffleNet:
    """SE-ShuffleNet (ShuffleNet v1 1×, g = 3, with SE; arXiv:1709.01507, Table 3)."""
    return cast(SEShuffleNet, create(SEShuffleNet, "se_shufflenet", pretrained, **kwargs))
