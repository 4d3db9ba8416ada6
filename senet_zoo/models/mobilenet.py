"""SE-MobileNet: MobileNet v1 (1.0×, 224) with an SE block at the end of every depthwise-separable block.

The paper (arXiv:1709.01507, Table 3) adds SE to MobileNet; 4.2 M → 4.7 M parameters pins where: an SE
block (r = 16) on the output of each pointwise convolution adds 0.48 M (on the depthwise output it would
add 0.35 M). Tensor names, shapes and the ReLU6 activations are those of timm's ``mobilenetv1_100``
(``conv_stem``, ``bn1``, ``blocks.S.B.conv_dw/bn1/conv_pw/bn2``, ``classifier``): its weights load into
every non-SE tensor and only ``blocks.S.B.se.*`` is new. timm builds that network with its EfficientNet
class, whose depthwise-separable block can only hold SE between the two convolutions, hence this file.
"""

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

__all__ = ["SEMobileNet", "DepthwiseSeparableSE", "se_mobilenet"]

default_cfgs: dict[str, Any] = {}  # filled by senet_zoo.registry (timm reads the module's default_cfgs)

# (output channels, blocks, stride of the first block) per stage: MobileNet v1 1.0× (timm's arch_def).
STAGES = ((64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 6, 2), (1024, 2, 2))
STEM_CHS = 32


class DepthwiseSeparableSE(nn.Module):
    """3×3 depthwise conv → BN → ReLU6 → 1×1 conv → BN → ReLU6 → SE."""

    bn_fold_pairs = (("conv_dw", "bn1"), ("conv_pw", "bn2"))  # folded by optimize_for_inference

    def __init__(
        self, in_chs: int, out_chs: int, stride: int, se: Callable[..., SEModule], **dd: Any
    ) -> None:  # dd: device, dtype
        super().__init__()
        self.conv_dw = nn.Conv2d(in_chs, in_chs, 3, stride=stride, padding=1, groups=in_chs, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(in_chs, **dd)
        self.act1 = nn.ReLU6(inplace=True)
        self.conv_pw = nn.Conv2d(in_chs, out_chs, 1, bias=False, **dd)
        self.bn2 = nn.BatchNorm2d(out_chs, **dd)
        self.act2 = nn.ReLU6(inplace=True)
        self.se = se(out_chs, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_dw(x)))
        return self.se(self.act2(self.bn2(self.conv_pw(x))))


class SEMobileNet(ClassifierHeadMixin, nn.Module):
    """MobileNet v1 with SE; the classifier is ``classifier`` (timm's name), after global pooling and dropout.

    Args:
        num_classes / in_chans / drop_rate / global_pool: timm's model arguments.
        se_reduction / se_squeeze / se_gate: :class:`~senet_zoo.models.se.SEOptions`.
        device / dtype: where and in which precision the parameters are created.
    """

    feature_cfg = dict(flatten_sequential=True)  # taps are blocks.0 … blocks.4, as in timm's EfficientNet
    bn_fold_pairs = (("conv_stem", "bn1"),)
    classifier_name = "classifier"
    group_stem, group_stage_prefix = r"^conv_stem|^bn1", r"blocks\."
    if TYPE_CHECKING:  # set by _init_head; TorchScript must not see this annotation
        classifier: nn.Module

    def __init__(self, **kwargs: "Unpack[ModelArgs]") -> None:
        super().__init__()
        a = self._init_model(**kwargs)
        dd, in_chans = a.dd, a.in_chans
        self.conv_stem = nn.Conv2d(in_chans, STEM_CHS, 3, stride=2, padding=1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(STEM_CHS, **dd)
        self.act1 = nn.ReLU6(inplace=True)
        se_block = a.se_layer
        stages, in_chs, reduction = [], STEM_CHS, 2
        self.feature_info = []
        for i, (out_chs, n, stride) in enumerate(STAGES):
            blocks = [DepthwiseSeparableSE(in_chs, out_chs, stride, se_block, **dd)]
            blocks += [DepthwiseSeparableSE(out_chs, out_chs, 1, se_block, **dd) for _ in range(1, n)]
            stages.append(nn.Sequential(*blocks))
            in_chs, reduction = out_chs, reduction * stride
            self.feature_info.append(dict(num_chs=out_chs, reduction=reduction, module=f"blocks.{i}"))
        self.blocks = nn.Sequential(*stages)
        self.feature_stages = (("conv_stem", "bn1", "act1", "blocks.0"),) + tuple(
            (f"blocks.{i}",) for i in range(1, len(STAGES))
        )
        self._init_end(a, in_chs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_stem(x)))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool_and_drop(x)
        return x if pre_logits else self.classifier(x)


def se_mobilenet(pretrained: Any = False, **kwargs: Any) -> SEMobileNet:
    """SE-MobileNet (MobileNet v1 1.0× with SE; arXiv:1709.01507, Table 3)."""
    return cast(SEMobileNet, create(SEMobileNet, "se_mobilenet", pretrained, **kwargs))
