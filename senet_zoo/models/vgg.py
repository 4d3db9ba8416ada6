"""SE-VGG-16: timm's VGG-16 with BatchNorm and an SE block after the non-linearity of every convolution.

The paper (arXiv:1709.01507, §4) integrates SE into VGGNet "by insertion after the non-linearity
following each convolution"; its SE-VGG-16 (Table 2) is trained with BatchNorm, like timm's
``vgg16_bn``. The network is timm's :class:`~timm.models.vgg.VGG` itself: each ReLU of ``features``
(an index without tensors) becomes :class:`ReLUSE`, so every other tensor keeps the index, name and
shape of ``vgg16_bn`` (``features.N``, ``pre_logits.fc1/fc2``, ``head.fc``) and only ``features.N.se.*``
is new. timm's ``forward_intermediates``, feature taps and ``prune_intermediate_layers`` work unchanged.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from timm.models.vgg import VGG, cfgs
from torch import Tensor, nn

from ._builder import create, init_weights
from .se import ModelArgs, SEModule, split_se

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SEVGG", "ReLUSE", "se_vgg16_bn"]

# timm's register_model reads an entrypoint's pretrained cfgs from its module's `default_cfgs`;
# senet_zoo.registry fills it from the catalog and the weights manifest when it registers.
default_cfgs: dict[str, Any] = {}


class ReLUSE(nn.Module):
    """ReLU, then SE: the slot of VGG's ReLU (no tensors of its own besides the SE block's)."""

    def __init__(self, channels: int, se: Callable[..., SEModule], device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.act = nn.ReLU(inplace=True)
        self.se = se(channels, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.se(self.act(x))


class SEVGG(VGG):
    """VGG with BatchNorm (timm's class, ``norm_layer=BatchNorm2d``) and an SE block after each conv's ReLU.

    Args:
        cfg: timm's VGG configuration name (``"vgg16"``).
        se_reduction / se_squeeze / se_gate: :class:`~senet_zoo.models.se.SEOptions`.
        Other arguments are timm's VGG's (``num_classes``, ``in_chans``, ``drop_rate``, ``global_pool``,
        ``device``, ``dtype``).
    """

    # timm's VGG taps sit inside ``features``: FeatureListNet flattens it (timm's own vgg feature_cfg).
    feature_cfg = dict(flatten_sequential=True)

    def __init__(self, cfg: str = "vgg16", **kwargs: "Unpack[ModelArgs]") -> None:
        se_block, timm_args = split_se(kwargs)
        super().__init__(cfgs[cfg], norm_layer=nn.BatchNorm2d, **timm_args)
        dd = dict(device=kwargs.get("device"), dtype=kwargs.get("dtype"))
        channels = 0  # every ReLU follows a convolution
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.Conv2d):
                channels = layer.out_channels
            elif isinstance(layer, nn.ReLU):
                self.features[i] = ReLUSE(channels, se_block, **dd).apply(init_weights)


def se_vgg16_bn(pretrained: Any = False, **kwargs: Any) -> SEVGG:
    """SE-VGG-16 with BatchNorm (arXiv:1709.01507, Table 2)."""
    return cast(SEVGG, create(SEVGG, "se_vgg16_bn", pretrained, **kwargs))
