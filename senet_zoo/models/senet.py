"""SE-ResNet, SE-ResNeXt and SENet-154: one class configured by arguments; the entrypoints of all seven SENets.

State-dict keys and shapes are exactly those of timm's ``legacy_seresnet*``, ``legacy_seresnext*`` and
``legacy_senet154`` (the Cadene layout), so weights move between the two without renaming. Details
follow the Caffe originals: stride on the first 1×1 for SE-ResNet and on the grouped 3×3 otherwise,
3×3 stem and 3×3 projection shortcuts after stage 2 for SENet-154, ceil-mode max pooling.

The entrypoints only name a network: its architecture arguments are in :mod:`senet_zoo.catalog`.
They live in a module named ``senet`` because timm selects models for its intermediate-feature
tests (and users filter ``timm.list_models(module="senet")``) by the registering module's name.
"""

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from timm.models._manipulate import checkpoint_seq
from torch import nn

from ..catalog import BOTTLENECKS, CATALOG, Bottleneck, ModelFacts
from ._builder import create, init_weights
from ._head import ClassifierHeadMixin
from .bn_inception import SEBNInception
from .se import SEModule

__all__ = ["SENet", "SEBottleneck", "ENTRYPOINTS", *CATALOG]


# timm's register_model reads an entrypoint's pretrained cfgs from its module's `default_cfgs`;
# senet_zoo.registry fills it from the catalog and the weights manifest when it registers.
default_cfgs: dict[str, Any] = {}


def _bottleneck_widths(kind: Bottleneck, planes: int, groups: int, base_width: int) -> tuple[int, int]:
    """Output channels of the first 1×1 and of the 3×3 convolution for each family."""
    if kind == "resnet":
        return planes, planes
    if kind == "resnext":
        width = math.floor(planes * base_width / 64) * groups
        return width, width
    return planes * 2, planes * 4  # senet: SENet-154's wider grouped bottleneck


class SEBottleneck(nn.Module):
    """1×1 → 3×3 (grouped) → 1×1, each with BN, then SE, residual add and ReLU (Caffe's ``Axpy``)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        *,
        kind: Bottleneck,
        groups: int,
        base_width: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        se_args: dict[str, Any] | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        mid1, mid2 = _bottleneck_widths(kind, planes, groups, base_width)
        stride_1x1, stride_3x3 = (stride, 1) if kind == "resnet" else (1, stride)
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, mid1, 1, stride=stride_1x1, bias=False, **dd)
        self.bn1 = nn.BatchNorm2d(mid1, **dd)
        self.conv2 = nn.Conv2d(mid1, mid2, 3, stride=stride_3x3, padding=1, groups=groups, bias=False, **dd)
        self.bn2 = nn.BatchNorm2d(mid2, **dd)
        self.conv3 = nn.Conv2d(mid2, out, 1, bias=False, **dd)
        self.bn3 = nn.BatchNorm2d(out, **dd)
        self.relu = nn.ReLU(inplace=True)
        self.se_module = SEModule(out, **(se_args or {}), **dd)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self.se_module(out) + shortcut)


def _conv_bn_relu(
    idx: int, in_chs: int, out_chs: int, kernel_size: int, stride: int, dd: dict[str, Any]
) -> list[tuple[str, nn.Module]]:
    pad = kernel_size // 2
    return [
        (f"conv{idx}", nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=pad, bias=False, **dd)),
        (f"bn{idx}", nn.BatchNorm2d(out_chs, **dd)),
        (f"relu{idx}", nn.ReLU(inplace=True)),
    ]


class SENet(ClassifierHeadMixin, nn.Module):
    """The SE-ResNet / SE-ResNeXt / SENet-154 family.

    Args:
        layers: blocks per stage (four stages).
        block: ``"resnet"``, ``"resnext"`` or ``"senet"`` bottleneck.
        groups: groups of the 3×3 convolution (1, 32, 64).
        base_width: width per group for ResNeXt (4 for 32×4d).
        stem: ``"7x7"`` (one 7×7/2 conv) or ``"3x3"`` (SENet-154's three 3×3 convs).
        inplanes: stem output channels (64, or 128 for SENet-154).
        downsample_kernel_size / downsample_padding: projection shortcut of stages 2–4 (3/1 for SENet-154).
        drop_rate: dropout before the classifier (0.2 only in SENet-154).
        se_reduction / se_squeeze / se_gate: :class:`SEModule` options.
        device / dtype: where and in which precision the parameters are created (timm's factory kwargs).
    """

    if TYPE_CHECKING:  # stages are added by name in __init__; TorchScript must not see these annotations
        layer1: nn.Module
        layer2: nn.Module
        layer3: nn.Module
        layer4: nn.Module

    def __init__(
        self,
        layers: tuple[int, int, int, int],
        block: Bottleneck = "resnet",
        groups: int = 1,
        base_width: int = 4,
        stem: str = "7x7",
        inplanes: int = 64,
        downsample_kernel_size: int = 1,
        downsample_padding: int = 0,
        drop_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
        se_reduction: int = 16,
        se_squeeze: str = "avg",
        se_gate: str = "sigmoid",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dd = dict(device=device, dtype=dtype)
        if block not in BOTTLENECKS:
            raise ValueError(f"block must be one of {BOTTLENECKS}, got {block!r}")
        if stem not in ("7x7", "3x3"):
            raise ValueError(f"stem must be '7x7' or '3x3', got {stem!r}")
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        if stem == "3x3":
            stem_layers = (
                _conv_bn_relu(1, in_chans, 64, 3, 2, dd)
                + _conv_bn_relu(2, 64, 64, 3, 1, dd)
                + _conv_bn_relu(3, 64, inplanes, 3, 1, dd)
            )
        else:
            stem_layers = _conv_bn_relu(1, in_chans, inplanes, 7, 2, dd)
        self.layer0 = nn.Sequential(OrderedDict(stem_layers))
        # Caffe rounds pooled sizes up; ceil_mode reproduces it exactly (no padding).
        self.pool0 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.feature_info = [dict(num_chs=inplanes, reduction=2, module="layer0")]

        block_args = dict(
            kind=block,
            groups=groups,
            base_width=base_width,
            se_args=dict(reduction=se_reduction, squeeze=se_squeeze, gate=se_gate),
        )
        self.inplanes = inplanes
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            first = i == 0  # stage 1 keeps the resolution and always uses a 1×1 projection
            stage = self._make_stage(
                planes,
                blocks,
                stride=1 if first else 2,
                kernel_size=1 if first else downsample_kernel_size,
                padding=0 if first else downsample_padding,
                block_args=block_args,
                dd=dd,
            )
            self.add_module(f"layer{i + 1}", stage)
            self.feature_info.append(dict(num_chs=self.inplanes, reduction=4 * 2**i, module=f"layer{i + 1}"))
        # The modules up to each feature tap (the stem tap is taken before pool0, as in timm's legacy SENet).
        self.feature_stages = (("layer0",), ("pool0", "layer1"), ("layer2",), ("layer3",), ("layer4",))
        self.num_features = self.inplanes
        self._init_head(num_classes, global_pool, **dd)
        self.apply(init_weights)

    def _make_stage(
        self,
        planes: int,
        blocks: int,
        stride: int,
        kernel_size: int,
        padding: int,
        block_args: dict[str, Any],
        dd: dict[str, Any],
    ) -> nn.Sequential:
        out = planes * SEBottleneck.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out, kernel_size, stride=stride, padding=padding, bias=False, **dd),
                nn.BatchNorm2d(out, **dd),
            )
        stage = [SEBottleneck(self.inplanes, planes, stride=stride, downsample=downsample, **block_args, **dd)]
        self.inplanes = out
        stage += [SEBottleneck(out, planes, **block_args, **dd) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, str]:
        return dict(stem=r"^layer0", blocks=r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool0(self.layer0(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
                x = checkpoint_seq(stage, x) if isinstance(stage, nn.Sequential) else stage(x)  # pruned: Identity
            return x
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return x


def _entrypoint(facts: ModelFacts) -> Callable[..., nn.Module]:
    """The entrypoint that names one network of the catalog: it only passes its arguments on."""
    cls = SEBNInception if facts.block == "inception" else SENet

    def entrypoint(pretrained: Any = False, **kwargs: Any) -> nn.Module:
        return create(cls, facts.name, pretrained, **kwargs)  # a feature wrapper when features_only

    entrypoint.__name__ = entrypoint.__qualname__ = facts.name
    entrypoint.__doc__ = f"{facts.display_name} (its architecture: ``senet_zoo.catalog.CATALOG[{facts.name!r}]``)."
    return entrypoint


ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {name: _entrypoint(facts) for name, facts in CATALOG.items()}
globals().update(ENTRYPOINTS)  # se_resnet50, ..., senet154: one per network of the catalog
