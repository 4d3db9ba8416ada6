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
Block = Literal[Bottleneck, "inception", "inception_resnet_v2", "inception_v3", "vgg", "mobilenet", "shufflenet"]
BOTTLENECKS: tuple[Bottleneck, ...] = get_args(Bottleneck)

PAPER = dict(paper_ids="arXiv:1709.01507", paper_name="Squeeze-and-Excitation Networks")
SOURCE = "Hu et al., Squeeze-and-Excitation Networks (CVPR 2018), Caffe release github.com/hujie-frank/SENet"
PAPER_TABLE2 = "Hu et al., Squeeze-and-Excitation Networks (arXiv:1709.01507v4), Table 2, single crop, ImageNet val"
PAPER_TABLE3 = "Hu et al., Squeeze-and-Excitation Networks (arXiv:1709.01507v4), Table 3, single crop, ImageNet val"


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
        if self.block == "shufflenet":
            return dict(groups=self.groups)
        if self.block not in BOTTLENECKS:
            return {}
        return {name: getattr(self, name) for name in _SENET_ARGS}


# ModelFacts fields that are SENet class arguments (with ``block``)
_SENET_ARGS = ("layers", "block", "groups", "base_width", "stem", "inplanes", "downsample_kernel_size",
               "downsample_padding", "drop_rate")  # fmt: skip


def _resnet(
    name: str, display_name: str, block: Block, layers: tuple[int, ...], params: int, gmacs: float,
    top1_err: float, top5_err: float, caffemodel_mb: int, **kw: Any,
) -> ModelFacts:  # fmt: skip
    """A network of the Caffe release's ResNet family: its Caffe name is its display name (unless given),
    its first convolution ``layer0.conv1``, timm's twin ``legacy_`` + its name without its first "_"."""
    kw.setdefault("caffe_name", display_name)
    return ModelFacts(
        name, display_name, block=block, params=params, gmacs=gmacs, top1_err=top1_err, top5_err=top5_err,
        caffemodel_mb=caffemodel_mb, timm_legacy="legacy_" + name.replace("_", "", 1), first_conv="layer0.conv1",
        layers=layers, **kw,
    )  # fmt: skip


def _se_family(name: str, display_name: str, family: Block, **kw: Any) -> ModelFacts:
    """A network of the SE family beyond the Caffe release: no Caffe model, no timm twin; its block is its
    ``senet_zoo.models`` module (``family``)."""
    return ModelFacts(name, display_name, "", family, caffemodel_mb=0, timm_legacy=None, family=family, **kw)


CATALOG: dict[str, ModelFacts] = {}


def _add(*facts: ModelFacts) -> None:
    """Add networks to :data:`CATALOG`, in this order (the registry lists them so)."""
    CATALOG.update({m.name: m for m in facts})


_add(
    ModelFacts(
        "se_bn_inception", "SE-BN-Inception", "SE-BN-Inception", "inception",
        params=11_931_622, gmacs=2.0332, top1_err=23.62, top5_err=7.04, caffemodel_mb=46,
        timm_legacy=None, first_conv="conv1.conv",
    ),
    # name, display name (= Caffe name), block, layers, params, GMACs, top-1 / top-5 error (%), caffemodel MB
    _resnet("se_resnet50", "SE-ResNet-50", "resnet", (3, 4, 6, 3), 28_088_024, 3.8605, 22.37, 6.36, 107),
    _resnet("se_resnet101", "SE-ResNet-101", "resnet", (3, 4, 23, 3), 49_326_872, 7.5749, 21.75, 5.72, 189),
    _resnet("se_resnet152", "SE-ResNet-152", "resnet", (3, 8, 36, 3), 66_821_848, 11.2890, 21.34, 5.54, 256),
    _resnet("se_resnext50_32x4d", "SE-ResNeXt-50 (32 x 4d)", "resnext", (3, 4, 6, 3), 27_559_896, 4.2330,
            20.97, 5.54, 105, groups=32),
    _resnet("se_resnext101_32x4d", "SE-ResNeXt-101 (32 x 4d)", "resnext", (3, 4, 23, 3), 48_955_416, 7.9747,
            19.81, 4.96, 187, groups=32),
    _resnet("senet154", "SENet-154", "senet", (3, 8, 36, 3), 115_088_984, 20.6884, 18.68, 4.47, 440, groups=64,
            caffe_name="SENet", timm_alias="senet_zoo_senet154", stem="3x3", inplanes=128,
            downsample_kernel_size=3, downsample_padding=1, drop_rate=0.2),
)  # fmt: skip

# ------------------------------------------------------------------------------------------------------------
# The SE family beyond the Caffe release (issue #21): no released SE weights; backbone-initialised from timm.
# Parameters and MACs counted on the built models (torch.utils.flop_counter, MACs = FLOPs / 2) at input_size.

_INCEPTION_MEAN, _INCEPTION_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # timm's IMAGENET_INCEPTION_MEAN / _STD

_add(
    _se_family(
        "se_inception_resnet_v2", "SE-Inception-ResNet-v2", "inception_resnet_v2",
        params=65_092_718, gmacs=13.1650, top1_err=19.80, top5_err=4.79,
        first_conv="conv2d_1a.conv", classifier="classif",
        backbone="inception_resnet_v2.tf_in1k", input_size=299, pool_size=8,
        mean=_INCEPTION_MEAN, std=_INCEPTION_STD, crop_pct=0.8975, interpolation="bicubic",
        accuracy_source=PAPER_TABLE2 + " (299×299); no released weights", paper_gmacs=11.76,
        paper_note="timm's (TF-slim) Inception-ResNet-v2 counts 13.16 GMACs at 299 against the paper's "
        "11.75 for its own re-implementation; the SE overhead (+0.01) matches",
    ),
    _se_family(
        "se_inception_v3", "SE-Inception-v3", "inception_v3",
        params=25_496_188, gmacs=5.7149, top1_err=None, top5_err=None,
        first_conv="Conv2d_1a_3x3.conv", classifier="fc",
        backbone="inception_v3.tf_in1k", input_size=299, pool_size=8,
        mean=_INCEPTION_MEAN, std=_INCEPTION_STD, crop_pct=0.875, interpolation="bicubic",
        accuracy_source="not in the paper (moskomule/senet.pytorch ships SE-Inception-v3); no released weights",
        paper_note="not in the paper: compare with timm's inception_v3 (23.83 M, 5.71 GMACs at 299) + SE",
    ),
)  # fmt: skip

# SE-VGG-16, SE-MobileNet, SE-ShuffleNet (paper Tables 2 and 3, 224×224). The paper's "GFLOPs"/"MFLOPs"
# are multiply-adds that include one multiply per element an SE block scales (its +10 M / +3 M / +2 M SE
# increments need them); ``gmacs`` counts convolutions and FC layers only. benchmarks/paper_figures.py
# counts both and compares them with the paper (benchmarks/results/se_family_paper.txt).
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # timm's IMAGENET_DEFAULT_*

_add(
    _se_family(
        "se_vgg16_bn", "SE-VGG-16", "vgg",
        params=138_596_784, gmacs=15.4705, top1_err=25.22, top5_err=7.70,
        first_conv="features.0", classifier="head.fc",
        backbone="vgg16_bn.tv_in1k", mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
        accuracy_source=PAPER_TABLE2 + " (VGG-16 with BN, SE after every convolution's ReLU); "
        "no released weights",
        paper_gmacs=15.48,
        paper_note="15.4705 GMACs of convolutions and FC layers + 0.0135 G SE scaling = 15.484 G "
        "(paper: 15.48; VGG-16 15.47); the paper gives no parameter count",
    ),
    _se_family(
        "se_mobilenet", "SE-MobileNet", "mobilenet",
        params=4_718_044, gmacs=0.5692, top1_err=25.3, top5_err=7.7,
        first_conv="conv_stem", classifier="classifier",
        backbone="mobilenetv1_100.ra4_e3600_r224_in1k",
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic",
        accuracy_source=PAPER_TABLE3 + " (MobileNet 1.0×, SE after every pointwise convolution); "
        "no released weights",
        paper_gmacs=0.572, paper_params=4_700_000,
        paper_note="569.2 M MACs + 2.7 M SE scaling = 571.9 M (paper: 572); 4.718 M parameters "
        "(paper: 4.7 M; MobileNet 4.232 M, paper 4.2 M)",
    ),
    _se_family(
        "se_shufflenet", "SE-ShuffleNet (1×, g = 3)", "shufflenet",
        params=2_484_533, gmacs=0.1381, top1_err=31.0, top5_err=11.1,
        first_conv="stem.conv", groups=3,
        backbone=None, mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
        accuracy_source=PAPER_TABLE3 + " (ShuffleNet 1×, g = 3, SE on every unit's branch); "
        "no released weights",
        paper_gmacs=0.142, paper_params=2_400_000,
        paper_note="138.1 M MACs + 1.6 M SE scaling = 139.7 M (paper: 142, -1.6 %); 2.485 M parameters "
        "against the printed 2.4 M (+3.5 %): the paper truncates to one decimal (its ShuffleNet "
        "'1.8 M' is this network without SE, 1.866 M). No trustworthy ShuffleNet v1 ImageNet "
        "weights in timm: architecture only",
    ),
)  # fmt: skip

CAFFE_RELEASES: dict[str, ModelFacts] = {n: m for n, m in CATALOG.items() if m.is_caffe_release}
