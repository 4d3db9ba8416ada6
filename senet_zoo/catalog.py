"""The one model table: every fact about each SE network, stated once.

Pure data (no torch, no timm), so every step of the data flow reads it: ``caffe/synth.py`` (the Caffe
nets), ``convert/`` (release facts, timm's matching architecture), ``models/`` (architecture
arguments, entrypoints), ``registry.py`` (names, timm registration), ``hubconf.py``, ``senet-zoo
list/info`` and the README's model table (a test compares them). Weights (tags, files, checksums,
preprocessing) are facts about weights, not models: they live in ``weights_manifest.json``.

Sources: architecture and accuracy from the authors' Caffe release (github.com/hujie-frank/SENet,
single 224 centre crop of the 256-short-side image, ImageNet val); parameters and multiply-accumulates
at 224×224 counted on the PyTorch models (``torch.utils.flop_counter``, MACs = FLOPs / 2).

The SE family beyond the Caffe release (the block after the seven) has no released weights: its
reported accuracy and complexity are the paper's (``paper_*``, ``accuracy_source``), parameters and
MACs are counted on the built models at their own input size (``input_size``), and ``backbone`` names
the non-SE timm network whose ImageNet weights ``pretrained="backbone"`` loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["ModelFacts", "CATALOG", "CAFFE_RELEASES", "PAPER", "SOURCE", "Block", "Bottleneck", "BOTTLENECKS"]

Bottleneck = Literal["resnet", "resnext", "senet"]  # the ResNet family's bottleneck (SENet's ``block``)
# a network's building block: SE-BN-Inception's, or a family beyond the Caffe release (its models/ module)
Block = Literal[Bottleneck, "inception", "inception_resnet_v2", "inception_v3"]
BOTTLENECKS: tuple[Bottleneck, ...] = get_args(Bottleneck)

PAPER = dict(paper_ids="arXiv:1709.01507", paper_name="Squeeze-and-Excitation Networks")
SOURCE = "Hu et al., Squeeze-and-Excitation Networks (CVPR 2018), Caffe release github.com/hujie-frank/SENet"
PAPER_TABLE2 = "Hu et al., Squeeze-and-Excitation Networks (arXiv:1709.01507v4), Table 2, single crop, ImageNet val"


@dataclass(frozen=True)
class ModelFacts:
    """One network (``block``: a :data:`Block`)."""

    name: str  # senet_zoo's name (registry, manifest, torch.hub)
    display_name: str  # the release's name in the paper and the authors' repository
    caffe_name: str  # the ``name:`` of the authors' deploy prototxt ("" when there is no Caffe release)
    block: Block
    params: int
    gmacs: float  # multiply-accumulates at input_size × input_size, ×1e9
    top1_err: float | None  # reported (Caffe release, or the paper: accuracy_source), percent; None: not reported
    top5_err: float | None
    caffemodel_mb: int  # size of the released caffemodel (0: none)
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
    # The SE family beyond the Caffe release.
    family: str = "senet"  # the senet_zoo.models module holding the entrypoint (timm's module name)
    backbone: str | None = None  # timm ``arch.tag`` of the non-SE network that pretrained="backbone" loads
    input_size: int = 224  # the network's native input side (gmacs are counted there)
    pool_size: int = 7  # side of the final feature map at input_size
    mean: tuple[float, float, float] | None = None  # default preprocessing; None: the Caffe release's
    std: tuple[float, float, float] | None = None
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    accuracy_source: str = SOURCE
    paper_gmacs: float | None = None  # the paper's "GFLOPs" (multiply-adds) at input_size, None: not in the paper
    paper_params: int | None = None
    paper_note: str = ""  # how the built model relates to the paper's figures

    @property
    def is_caffe_release(self) -> bool:
        return bool(self.caffe_name)

    @property
    def timm_name(self) -> str:
        """The name ``timm.create_model`` knows this network by after ``import senet_zoo``."""
        return self.timm_alias or self.name

    @property
    def top1_acc(self) -> float | None:
        return None if self.top1_err is None else round(100.0 - self.top1_err, 2)

    @property
    def top5_acc(self) -> float | None:
        return None if self.top5_err is None else round(100.0 - self.top5_err, 2)

    @property
    def model_args(self) -> dict[str, Any]:
        """Keyword arguments of the model class that make this network."""
        if self.block not in BOTTLENECKS:
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

# ------------------------------------------------------------------------------------------------------------
# The SE family beyond the Caffe release (issue #21): no released SE weights; backbone-initialised from timm.
# Parameters and MACs counted on the built models (torch.utils.flop_counter, MACs = FLOPs / 2) at input_size.

_INCEPTION_MEAN, _INCEPTION_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # timm's IMAGENET_INCEPTION_MEAN / _STD

CATALOG.update(
    {
        m.name: m
        for m in (
            ModelFacts(
                "se_inception_resnet_v2", "SE-Inception-ResNet-v2", "", "inception_resnet_v2",
                params=65_092_718, gmacs=13.1650, top1_err=19.80, top5_err=4.79, caffemodel_mb=0,
                timm_legacy=None, first_conv="conv2d_1a.conv", classifier="classif",
                family="inception_resnet_v2", backbone="inception_resnet_v2.tf_in1k", input_size=299, pool_size=8,
                mean=_INCEPTION_MEAN, std=_INCEPTION_STD, crop_pct=0.8975, interpolation="bicubic",
                accuracy_source=PAPER_TABLE2 + " (299×299); no released weights", paper_gmacs=11.76,
                paper_note="timm's (TF-slim) Inception-ResNet-v2 counts 13.16 GMACs at 299 against the paper's "
                "11.75 for its own re-implementation; the SE overhead (+0.01) matches",
            ),
            ModelFacts(
                "se_inception_v3", "SE-Inception-v3", "", "inception_v3",
                params=25_496_188, gmacs=5.7149, top1_err=None, top5_err=None, caffemodel_mb=0,
                timm_legacy=None, first_conv="Conv2d_1a_3x3.conv", classifier="fc",
                family="inception_v3", backbone="inception_v3.tf_in1k", input_size=299, pool_size=8,
                mean=_INCEPTION_MEAN, std=_INCEPTION_STD, crop_pct=0.875, interpolation="bicubic",
                accuracy_source="not in the paper (moskomule/senet.pytorch ships SE-Inception-v3); no released weights",
                paper_note="not in the paper: compare with timm's inception_v3 (23.83 M, 5.71 GMACs at 299) + SE",
            ),
        )
    }
)  # fmt: skip

CAFFE_RELEASES: dict[str, ModelFacts] = {n: m for n, m in CATALOG.items() if m.is_caffe_release}
