"""Synthesize the SENet authors' Caffe nets: same layer names, types, wiring and parameters, random blobs.

The seven releases (``SE-ResNet-50/101/152``, ``SE-ResNeXt-50/101 (32 x 4d)``, ``SENet``, i.e.
SENet-154, and ``SE-BN-Inception``) are described here from the Caffe side: at full size
:func:`synth_net` reproduces the released deploy prototxts layer for layer. ``layers`` (blocks per
stage) and ``width`` (channel divisor) shrink a net for fast tests while keeping the naming scheme.

This module only builds nets. Caffe's semantics (shape inference, blob shapes, random weights
that keep activations in range, BatchNorm blobs stored as ``[mean·s, var·s, s]``) live in
:mod:`.executor`, stated once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..catalog import CATALOG
from .executor import BN_SCALE_FACTOR, infer_shapes, random_blobs
from .net import Layer, Net

__all__ = ["ARCHS", "CaffeArch", "INPUT_SIZE", "synth_net"]

INPUT_SIZE = 224
SE_REDUCTION = 16
STAGE_PLANES = (64, 128, 256, 512)


@dataclass(frozen=True)
class CaffeArch:
    """One released net. ``block``: ``resnet`` | ``resnext`` | ``senet`` | ``inception``."""

    caffe_name: str
    block: str
    layers: tuple[int, ...] = ()
    groups: int = 1
    stem: str = "7x7"  # or "3x3" (SENet-154)
    inplanes: int = 64
    proj_kernel: int = 1  # projection shortcut kernel of stages 3-5 (3 in SENet-154)
    dropout: float = 0.0


ARCHS: dict[str, CaffeArch] = {
    m.name: CaffeArch(
        m.caffe_name, m.block, m.layers, m.groups, m.stem, m.inplanes, m.downsample_kernel_size, m.drop_rate
    )
    for m in CATALOG.values()
}

# SE-BN-Inception modules: (id, 1x1, 3x3_reduce, 3x3, double3x3_reduce, double3x3, pool, pool_proj);
# pool_proj 0 marks the stride-2 reduction modules (no 1x1 branch, max pool concatenated as is).
INCEPTION_MODULES = (
    ("3a", 64, 64, 64, 64, 96, "AVE", 32),
    ("3b", 64, 64, 96, 64, 96, "AVE", 64),
    ("3c", 0, 128, 160, 64, 96, "MAX", 0),
    ("4a", 224, 64, 96, 96, 128, "AVE", 128),
    ("4b", 192, 96, 128, 96, 128, "AVE", 128),
    ("4c", 160, 128, 160, 128, 160, "AVE", 128),
    ("4d", 96, 128, 192, 160, 192, "AVE", 128),
    ("4e", 0, 128, 192, 192, 256, "MAX", 0),
    ("5a", 352, 192, 320, 160, 224, "AVE", 128),
    ("5b", 352, 192, 320, 192, 224, "MAX", 128),
)


class _Builder:
    """Appends layers in prototxt order; each helper mirrors one recurring pattern of the releases."""

    def __init__(self, name: str, num_classes: int) -> None:
        self.net = Net(name=name)
        self.num_classes = num_classes
        self.add("data", "Input", [], ["data"], input_param={"shape": {"dim": [1, 3, INPUT_SIZE, INPUT_SIZE]}})

    def add(self, name: str, type_: str, bottoms: list[str], tops: list[str], **params: Any) -> str:
        self.net.layers.append(Layer(name, type_, list(bottoms), list(tops), params))
        return tops[0] if tops else name

    def conv(
        self,
        name: str,
        bottom: str,
        out: int,
        kernel: int,
        stride: int | None = None,
        *,
        group: int = 1,
        bias: bool = False,
        pad: bool = True,
    ) -> str:
        param: dict[str, Any] = {"num_output": out}
        if not bias:
            param["bias_term"] = False
        if pad and kernel > 1:
            param["pad"] = kernel // 2
        param["kernel_size"] = kernel
        if group > 1:
            param["group"] = group
        if stride is not None:
            param["stride"] = stride
        return self.add(name, "Convolution", [bottom], [name], convolution_param=param)

    def bn_scale(self, top: str, relu: str | None = None) -> str:
        self.add(f"{top}/bn", "BatchNorm", [top], [top], batch_norm_param={"use_global_stats": True})
        self.add(f"{top}/bn/scale", "Scale", [top], [top], scale_param={"bias_term": True})
        if relu:
            self.add(relu, "ReLU", [top], [top])
        return top

    def conv_bn(self, *args: Any, relu: str | None = None, **kwargs: Any) -> str:
        """:meth:`conv` (same arguments) without bias, then BatchNorm + Scale (+ ReLU ``relu``)."""
        return self.bn_scale(self.conv(*args, **kwargs), relu)

    def max_pool(self, name: str, bottom: str) -> str:
        return self.add(name, "Pooling", [bottom], [name], pooling_param={"pool": "MAX", "kernel_size": 3, "stride": 2})

    def se_gate(self, prefix: str, bottom: str, channels: int) -> str:
        """``<prefix>_global_pool`` → ``_1x1_down`` → ReLU → ``_1x1_up`` → Sigmoid; returns the gate blob."""
        pooled = self.add(
            f"{prefix}_global_pool",
            "Pooling",
            [bottom],
            [f"{prefix}_global_pool"],
            pooling_param={"pool": "AVE", "engine": "CAFFE", "global_pooling": True},
        )
        down = self.conv(f"{prefix}_1x1_down", pooled, channels // SE_REDUCTION, 1, 1, bias=True)
        self.add(f"{down}/relu", "ReLU", [down], [down])
        up = self.conv(f"{prefix}_1x1_up", down, channels, 1, 1, bias=True)
        self.add(f"{prefix}_prob", "Sigmoid", [up], [up])
        return up

    def head(self, bottom: str, dropout: float) -> Net:
        pool = self.add(
            "pool5/7x7_s1",
            "Pooling",
            [bottom],
            ["pool5/7x7_s1"],
            pooling_param={"pool": "AVE", "kernel_size": 7, "stride": 1},
        )
        if dropout:
            self.add("pool5/dropout_7x7_s1", "Dropout", [pool], [pool], dropout_param={"dropout_ratio": dropout})
        self.add(
            "classifier", "InnerProduct", [pool], ["classifier"], inner_product_param={"num_output": self.num_classes}
        )
        self.add("prob", "Softmax", ["classifier"], ["prob"])
        return self.net


def _divide(channels: int, width: int, what: str) -> int:
    if channels % width:
        raise ValueError(f"width {width} does not divide the {channels} channels of {what}")
    return channels // width


def _resnet_family(arch: CaffeArch, layers: tuple[int, ...], width: int, b: _Builder) -> Net:
    groups = max(1, arch.groups // width)
    if arch.stem == "3x3":
        x = b.conv_bn("conv1_1/3x3_s2", "data", _divide(64, width, "conv1_1"), 3, 2, relu="conv1_1/relu_3x3_s2")
        x = b.conv_bn("conv1_2/3x3", x, _divide(64, width, "conv1_2"), 3, 1, relu="conv1_2/relu_3x3")
        x = b.conv_bn("conv1_3/3x3", x, _divide(arch.inplanes, width, "conv1_3"), 3, 1, relu="conv1_3/relu_3x3")
    else:
        x = b.conv_bn("conv1/7x7_s2", "data", _divide(arch.inplanes, width, "conv1"), 7, 2, relu="conv1/relu_7x7_s2")
    x = b.max_pool("pool1/3x3_s2", x)
    for stage, (planes, blocks) in enumerate(zip(STAGE_PLANES, layers), start=2):
        planes = _divide(planes, width, f"stage {stage}")
        out = planes * 4
        if arch.block == "resnet":
            mid1 = mid2 = planes
        elif arch.block == "resnext":
            mid1 = mid2 = planes * 2  # 32 groups × 4d at 64 planes
        else:
            mid1, mid2 = planes * 2, planes * 4
        for block in range(1, blocks + 1):
            p = f"conv{stage}_{block}"
            stride = 2 if block == 1 and stage > 2 else 1
            s1, s3 = (stride, 1) if arch.block == "resnet" else (1, stride)
            y = b.conv_bn(f"{p}_1x1_reduce", x, mid1, 1, s1, relu=f"{p}_1x1_reduce/relu")
            y = b.conv_bn(
                f"{p}_3x3", y, mid2, 3, s3, group=1 if arch.block == "resnet" else groups, relu=f"{p}_3x3/relu"
            )
            y = b.conv_bn(f"{p}_1x1_increase", y, out, 1, 1)
            gate = b.se_gate(p, y, out)
            shortcut = x
            if block == 1:
                kernel = arch.proj_kernel if stage > 2 else 1
                shortcut = b.conv_bn(f"{p}_1x1_proj", x, out, kernel, stride)
            x = b.add(p, "Axpy", [gate, y, shortcut], [p])
            b.add(f"{p}/relu", "ReLU", [p], [p])
    return b.head(x, arch.dropout)


def _inception(width: int, b: _Builder) -> Net:
    def conv(name: str, bottom: str, out: int, kernel: int, stride: int | None = None, relu: str = "") -> str:
        return b.conv_bn(name, bottom, _divide(out, width, name), kernel, stride, relu=relu)

    x = conv("conv1/7x7_s2", "data", 64, 7, 2, relu="conv1/relu_7x7")
    x = b.max_pool("pool1/3x3_s2", x)
    x = conv("conv2/3x3_reduce", x, 64, 1, relu="conv2/relu_3x3_reduce")
    x = conv("conv2/3x3", x, 192, 3, relu="conv2/relu_3x3")
    x = b.max_pool("pool2/3x3_s2", x)
    for mid, c1, c3r, c3, cdr, cd, pool, proj in INCEPTION_MODULES:
        m = f"inception_{mid}"
        stride = None if proj else 2
        branches = [conv(f"{m}/1x1", x, c1, 1, relu=f"{m}/relu_1x1")] if c1 else []
        y = conv(f"{m}/3x3_reduce", x, c3r, 1, relu=f"{m}/relu_3x3_reduce")
        branches.append(conv(f"{m}/3x3", y, c3, 3, stride, relu=f"{m}/relu_3x3"))
        y = conv(f"{m}/double3x3_reduce", x, cdr, 1, relu=f"{m}/relu_double3x3_reduce")
        y = conv(f"{m}/double3x3a", y, cd, 3, relu=f"{m}/relu_double3x3a")
        branches.append(conv(f"{m}/double3x3b", y, cd, 3, stride, relu=f"{m}/relu_double3x3b"))
        if proj:
            y = b.add(
                f"{m}/pool",
                "Pooling",
                [x],
                [f"{m}/pool"],
                pooling_param={"pool": pool, "kernel_size": 3, "stride": 1, "pad": 1},
            )
            branches.append(conv(f"{m}/pool_proj", y, proj, 1, relu=f"{m}/relu_pool_proj"))
        else:
            branches.append(b.max_pool(f"{m}/pool/3x3_s2", x))
        concat = b.add(f"{m}/concat", "Concat", branches, [f"{m}/concat"])
        channels = sum(_divide(c, width, m) for c in (c1, c3, cd)) + (
            _divide(proj, width, m) if proj else _channels_of(b.net, x)
        )
        gate = b.se_gate(m, concat, channels)
        gate = b.add(
            f"{m}_prob_reshape", "Reshape", [gate], [f"{m}_prob_reshape"], reshape_param={"shape": {"dim": [0, 0]}}
        )
        x = b.add(f"{m}_scale", "Scale", [concat, gate], [f"{m}/output"], scale_param={"axis": 0, "bias_term": False})
    return b.head(x, 0.0)


def _channels_of(net: Net, blob: str) -> int:
    return infer_shapes(net)[blob][1]


def synth_net(
    arch: str,
    *,
    layers: Iterable[int] | None = None,
    width: int = 1,
    num_classes: int = 1000,
    blobs: bool = True,
    seed: int = 0,
    bn_scale_factor: float = BN_SCALE_FACTOR,
    ill_conditioned: bool = False,
) -> Net:
    """The Caffe net ``arch`` (a key of :data:`ARCHS`) in the authors' naming scheme.

    ``layers`` overrides the blocks per stage (ResNet family only), ``width`` divides every channel
    count (groups too, down to 1). With ``blobs`` the net gets random weights
    (:func:`senet_zoo.caffe.executor.random_blobs`: uncalibrated, instant; calibrated on a forward
    pass when ``ill_conditioned``, whose BatchNorm statistics then come "from other inputs").
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    spec = ARCHS[arch]
    if width < 1:
        raise ValueError(f"width must be a positive divisor of the channel counts, got {width}")
    builder = _Builder(spec.caffe_name, num_classes)
    if spec.block == "inception":
        if layers is not None:
            raise ValueError("SE-BN-Inception has no per-stage depth to override")
        net = _inception(width, builder)
    else:
        depth = tuple(spec.layers if layers is None else layers)
        if len(depth) != 4 or min(depth) < 1:
            raise ValueError(f"layers must be four positive block counts, got {depth}")
        net = _resnet_family(spec, depth, width, builder)
    if blobs:
        random_blobs(net, seed=seed, calibrate=False, ill_conditioned=ill_conditioned, bn_scale_factor=bn_scale_factor)
    return net
