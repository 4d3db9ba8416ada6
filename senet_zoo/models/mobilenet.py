"""SE-MobileNet: MobileNet v1 (1.0×, 224) with an SE block at the end of every depthwise-separable block.

The paper (arXiv:1709.01507, Table 3) adds SE to MobileNet; 4.2 M → 4.7 M parameters pins where: an SE
block (r = 16) on the output of each pointwise convolution adds 0.48 M (on the depthwise output it would
add 0.35 M). Tensor names, shapes and the ReLU6 activations are those of timm's ``mobilenetv1_100``
(``conv_stem``, ``bn1``, ``blocks.S.B.conv_dw/bn1/conv_pw/bn2``, ``classifier``): its weights load into
every non-SE tensor and only ``blocks.S.B.se.*`` is new. timm builds that network with its EfficientNet
class, whose depthwise-separable block can only hold SE between the two convolutions, hence this file.
"""

from typing import Any, cast

import torch
from timm.layers import create_classifier, get_device_dtype
from timm.models._manipulate import checkpoint_seq
from torch import nn
from torch.nn import functional as F

from ._builder import create, init_weights
from ._head import ClassifierHeadMixin
from .se import SEModule

__all__ = ["SEMobileNet", "DepthwiseSeparableSE", "se_mobilenet"]

default_cfgs: dict[str, Any] = {}  # filled by senet_zoo.registry (timm reads the module's default_cfgs)

# (output channels, blocks, stride of the first block) per stage: MobileNet v1 1.0× (timm's arch_def).
STAGES = ((64, 1, 1), (128, 2, 2), (256, 2, 2), (512, 6, 2), (1024, 2, 2))
STEM_CHS = 32


class DepthwiseSeparableSE(nn.Module):
    """3×3 depthwise conv → BN → ReLU6 → 1×1 conv → BN → ReLU6 → SE."""

    bn_fold_pairs = (("conv_dw", "bn1"), ("conv_pw", "bn2"))  # folded by optimize_for_inference

    def __init__(
        self, in_chs: int, out_chs: int, stride: int, se_args: dict[str, Any], device: Any = None, dtype: Any = None
    ) -> None:
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.conv_dw = nn.Conv2d(in_chs, in_chs, 3, stride=stride, padding=1, groups=in_chs, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(in_chs, **dd)
        self.act1 = nn.ReLU6(inplace=True)
        self.conv_pw = nn.Conv2d(in_chs, out_chs, 1, bias=False, **dd)
        self.bn2 = nn.BatchNorm2d(out_chs, **dd)
        self.act2 = nn.ReLU6(inplace=True)
        self.se = SEModule(out_chs, **se_args, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_dw(x)))
        return self.se(self.act2(self.bn2(self.conv_pw(x))))


class SEMobileNet(ClassifierHeadMixin, nn.Module):
    """MobileNet v1 with SE; the classifier is ``classifier`` (timm's name), after global pooling and dropout.

    Args:
        num_classes / in_chans / drop_rate / global_pool: timm's model arguments.
        se_reduction / se_squeeze / se_gate: :class:`SEModule` options.
        device / dtype: where and in which precision the parameters are created.
    """

    feature_cfg = dict(flatten_sequential=True)  # taps are blocks.0 … blocks.4, as in timm's EfficientNet
    bn_fold_pairs = (("conv_stem", "bn1"),)

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        se_reduction: int = 16,
        se_squeeze: str = "avg",
        se_gate: str = "sigmoid",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.conv_stem = nn.Conv2d(in_chans, STEM_CHS, 3, stride=2, padding=1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(STEM_CHS, **dd)
        self.act1 = nn.ReLU6(inplace=True)
        se_args = dict(reduction=se_reduction, squeeze=se_squeeze, gate=se_gate)
        stages, in_chs, reduction = [], STEM_CHS, 2
        self.feature_info = []
        for i, (out_chs, n, stride) in enumerate(STAGES):
            blocks = [DepthwiseSeparableSE(in_chs, out_chs, stride, se_args, **dd)]
            blocks += [DepthwiseSeparableSE(out_chs, out_chs, 1, se_args, **dd) for _ in range(1, n)]
            stages.append(nn.Sequential(*blocks))
            in_chs, reduction = out_chs, reduction * stride
            self.feature_info.append(dict(num_chs=out_chs, reduction=reduction, module=f"blocks.{i}"))
        self.blocks = nn.Sequential(*stages)
        self.feature_stages = (("conv_stem", "bn1", "act1", "blocks.0"),) + tuple(
            (f"blocks.{i}",) for i in range(1, len(STAGES))
        )
        self.num_features = in_chs
        self._init_head(num_classes, global_pool, **dd)
        self.apply(init_weights)

    def _init_head(self, num_classes: int, global_pool: str, device: Any = None, dtype: Any = None) -> None:
        self.num_classes = num_classes
        self.global_pool, self.classifier = create_classifier(
            self.num_features, num_classes, pool_type=global_pool, device=device, dtype=dtype
        )
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (``num_classes=0`` removes it) on the model's device and dtype."""
        pool_type = self.global_pool.pool_type if global_pool is None else global_pool
        self._init_head(num_classes, pool_type, **get_device_dtype(self))
        self.global_pool.train(self.training)
        self.classifier.train(self.training)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^conv_stem|^bn1", blocks=r"^blocks\.(\d+)" if coarse else r"^blocks\.(\d+)\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_stem(x)))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.classifier(x)


def se_mobilenet(pretrained: Any = False, **kwargs: Any) -> SEMobileNet:
    """SE-MobileNet (MobileNet v1 1.0× with SE; arXiv:1709.01507, Table 3)."""
    return cast(SEMobileNet, create(SEMobileNet, "se_mobilenet", pretrained, **kwargs))
