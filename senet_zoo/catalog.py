"""The one model table: every fact about each of the seven SE networks, stated once.

Pure data (no torch, no timm), so every step of the data flow reads it: ``caffe/synth.py`` (the Caffe
nets), ``convert/`` (release facts, timm's matching architecture), ``models/`` (architecture
arguments, entrypoints), ``registry.py`` (names, timm registration), ``hubconf.py``, ``senet-zoo
list/info`` and the README's model table (a test compares them). Weights (tags, files, checksums,
preprocessing) are facts about weights, not models: they live in ``weights_manifest.json``.

Sources: architecture and accuracy from the authors' Caffe release (github.com/hujie-frank/SENet,
single 224 centre crop of the 256-short-side image, ImageNet val); parameters and multiply-accumulates
at 224×224 counted on the PyTorch models (``torch.utils.flop_counter``, MACs = FLOPs / 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["ModelFacts", "CATALOG", "PAPER", "SOURCE", "Block", "Bottleneck", "BOTTLENECKS"]

Bottleneck = Literal["resnet", "resnext", "senet"]  # the ResNet family's bottleneck (SENet's ``block``)
Block = Literal[Bottleneck, "inception"]  # a network's building block
BOTTLENECKS: tuple[Bottleneck, ...] = get_args(Bottleneck)

PAPER = dict(paper_ids="arXiv:1709.01507", paper_name="Squeeze-and-Excitation Networks")
SOURCE = "Hu et al., Squeeze-and-Excitation Networks (CVPR 2018), Caffe release github.com/hujie-frank/SENet"


@dataclass(frozen=True)
class ModelFacts:
    """One network (``block``: a :data:`Block`)."""

    name: str  # senet_zoo's name (registry, manifest, torch.hub)
    display_name: str  # the release's name in the paper and the authors' repository
    caffe_name: str  # the ``name:`` of the authors' deploy prototxt
    block: Block
    params: int
    gmacs: float  # multiply-accumulates at 224×224, ×1e9
    top1_err: float  # reported for the Caffe release, percent
    top5_err: float
    caffemodel_mb: int  # size of the released caffemodel
    timm_legacy: str | None  # timm's architecture with the identical state-dict layout (None: timm has none)
    first_conv: str  # timm pretrained-cfg keys: the input convolution and the classifier
    classifier: str = "last_linear"
    timm_alias: str = ""  # the name registered with timm instead of ``name`` when timm owns that (``senet154``)
    # Architecture of the ResNet family (SENet class arguments); SE-BN-Inception has a fixed layout.
    layers: tuple[int, ...] = ()
    groups: int = 1
    base_width: int = 4
    stem: str = "7x7"  # or "3x3" (SENet-154: three 3×3 convolutions)
    inplanes: int = 64
    downsample_kernel_size: int = 1  # projection shortcut of stages 2–4 (3 in SENet-154)
    downsample_padding: int = 0
    drop_rate: float = 0.0
    # sha256 of the authors' caffemodel (hujie-frank/SENet download), recorded only after checking a download
    # against the release; none is recorded yet, so no converted card claims the release's accuracy until one is.
    caffemodel_sha256: frozenset[str] = frozenset()

    @property
    def timm_name(self) -> str:
        """The name ``timm.create_model`` knows this network by after ``import senet_zoo``."""
        return self.timm_alias or self.name

    @property
    def top1_acc(self) -> float:
        return round(100.0 - self.top1_err, 2)

    @property
    def top5_acc(self) -> float:
        return round(100.0 - self.top5_err, 2)

    @property
    def model_args(self) -> dict[str, Any]:
        """Keyword arguments of the model class that make this network."""
        if self.block == "inception":
            return {}
        return {name: getattr(self, name) for name in _SENET_ARGS}


# ModelFacts fields that are SENet class arguments (with ``block``)
_SENET_ARGS = ("layers", "block", "groups", "base_width", "stem", "inplanes", "downsample_kernel_size",
               "downsample_padding", "drop_rate")  # fmt: skip
_RESNET = "layer0.conv1"  # first_conv of the ResNet family

CATALOG: dict[str, ModelFacts] = {
    m.name: m
    for m in (
        ModelFacts(
            "se_bn_inception", "SE-BN-Inception", "SE-BN-Inception", "inception",
            params=11_931_622, gmacs=2.0332, top1_err=23.62, top5_err=7.04, caffemodel_mb=46,
            timm_legacy=None, first_conv="conv1.conv",
        ),
        ModelFacts(
            "se_resnet50", "SE-ResNet-50", "SE-ResNet-50", "resnet",
            params=28_088_024, gmacs=3.8605, top1_err=22.37, top5_err=6.36, caffemodel_mb=107,
            timm_legacy="legacy_seresnet50", layers=(3, 4, 6, 3), first_conv=_RESNET,
        ),
        ModelFacts(
            "se_resnet101", "SE-ResNet-101", "SE-ResNet-101", "resnet",
            params=49_326_872, gmacs=7.5749, top1_err=21.75, top5_err=5.72, caffemodel_mb=189,
            timm_legacy="legacy_seresnet101", layers=(3, 4, 23, 3), first_conv=_RESNET,
        ),
        ModelFacts(
            "se_resnet152", "SE-ResNet-152", "SE-ResNet-152", "resnet",
            params=66_821_848, gmacs=11.2890, top1_err=21.34, top5_err=5.54, caffemodel_mb=256,
            timm_legacy="legacy_seresnet152", layers=(3, 8, 36, 3), first_conv=_RESNET,
        ),
        ModelFacts(
            "se_resnext50_32x4d", "SE-ResNeXt-50 (32 x 4d)", "SE-ResNeXt-50 (32 x 4d)", "resnext",
            params=27_559_896, gmacs=4.2330, top1_err=20.97, top5_err=5.54, caffemodel_mb=105,
            timm_legacy="legacy_seresnext50_32x4d", layers=(3, 4, 6, 3), groups=32, first_conv=_RESNET,
        ),
        ModelFacts(
            "se_resnext101_32x4d", "SE-ResNeXt-101 (32 x 4d)", "SE-ResNeXt-101 (32 x 4d)", "resnext",
            params=48_955_416, gmacs=7.9747, top1_err=19.81, top5_err=4.96, caffemodel_mb=187,
            timm_legacy="legacy_seresnext101_32x4d", layers=(3, 4, 23, 3), groups=32, first_conv=_RESNET,
        ),
        ModelFacts(
            "senet154", "SENet-154", "SENet", "senet",
            params=115_088_984, gmacs=20.6884, top1_err=18.68, top5_err=4.47, caffemodel_mb=440,
            timm_legacy="legacy_senet154", timm_alias="senet_zoo_senet154", layers=(3, 8, 36, 3), groups=64,
            stem="3x3", inplanes=128, downsample_kernel_size=3, downsample_padding=1, drop_rate=0.2, first_conv=_RESNET,
        ),
    )
}  # fmt: skip
