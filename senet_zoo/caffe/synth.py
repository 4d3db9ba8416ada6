"""Synthesize the SENet authors' Caffe nets: same layer names, types, wiring and parameters, random blobs.

The seven releases (``SE-ResNet-50/101/152``, ``SE-ResNeXt-50/101 (32 x 4d)``, ``SENet``, i.e.
SENet-154, and ``SE-BN-Inception``) are described here from the Caffe side: at full size
:func:`synth_net` reproduces the released deploy prototxts layer for layer. ``layers`` (blocks per
stage) and ``width`` (channel divisor) shrink a net for fast tests while keeping the naming scheme.

:func:`infer_shapes` walks a net with Caffe's shape rules (ceil-mode pooling, ``Axpy``, two-bottom
``Scale``, ``Reshape`` with 0 dims), :func:`param_shapes` gives every layer's expected blob shapes
and :func:`random_blobs` fills a net (synthesized or parsed from a prototxt) with weights that keep
activations in a sane range through 50 residual blocks, and BatchNorm blobs stored the Caffe way:
``[mean·s, var·s, s]`` with a scale factor ``s`` ≠ 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..catalog import CATALOG
from .net import CaffeFormatError, Layer, Net, as_list

__all__ = [
    "ARCHS",
    "CaffeArch",
    "INPUT_SIZE",
    "BN_SCALE_FACTOR",
    "synth_net",
    "infer_shapes",
    "param_shapes",
    "random_blobs",
    "hw_pair",
]

INPUT_SIZE = 224
BN_SCALE_FACTOR = 999.98  # what Caffe's moving-average bookkeeping leaves in real SENet caffemodels
INPUT_STD = 60.0  # typical spread of 0–255 pixel values minus the mean
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

    def conv_bn(
        self,
        name: str,
        bottom: str,
        out: int,
        kernel: int,
        stride: int | None = None,
        *,
        group: int = 1,
        relu: str | None = None,
    ) -> str:
        return self.bn_scale(self.conv(name, bottom, out, kernel, stride, group=group), relu)

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
) -> Net:
    """The Caffe net ``arch`` (a key of :data:`ARCHS`) in the authors' naming scheme.

    ``layers`` overrides the blocks per stage (ResNet family only), ``width`` divides every channel
    count (groups too, down to 1). With ``blobs`` the net gets random weights (:func:`random_blobs`).
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
        random_blobs(net, seed=seed, bn_scale_factor=bn_scale_factor)
    return net


# ---------------------------------------------------------------------------------------- shapes


def hw_pair(param: dict[str, Any], name: str, default: int) -> tuple[int, int]:
    """Caffe's (h, w) for kernel/stride/pad: ``<name>_h``/``_w`` or the repeated ``<name>``/``<name>_size``."""
    h, w = param.get(f"{name}_h"), param.get(f"{name}_w")
    if h is not None or w is not None:
        return int(h if h is not None else default), int(w if w is not None else default)
    values = as_list(param.get(name, param.get(f"{name}_size")))
    if not values:
        return default, default
    return (int(values[0]), int(values[-1]))


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _pool_out(size: int, kernel: int, stride: int, pad: int) -> int:
    out = math.ceil((size + 2 * pad - kernel) / stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _input_shape(layer: Layer) -> tuple[int, ...]:
    shape = as_list(layer.param("input_param").get("shape"))
    if not shape:
        raise CaffeFormatError(f"layer {layer.name!r}: Input without input_param.shape")
    return tuple(int(d) for d in as_list(shape[0].get("dim")))


def _layer_out(layer: Layer, ins: list[tuple[int, ...]], source: str) -> tuple[int, ...]:
    """Output shape of one layer (first top) from its bottoms' shapes."""
    t, where = layer.type, f"{source}: layer {layer.name!r} ({layer.type})"
    if t in ("BatchNorm", "ReLU", "Sigmoid", "TanH", "Dropout", "Softmax", "Split"):
        return ins[0]
    if t == "Scale":  # one bottom: learned scale; two bottoms: x scaled by the second input
        return ins[0]
    if t == "Axpy":
        return ins[1]
    if t == "Eltwise":
        return ins[0]
    if t == "Concat":
        axis = int(layer.param("concat_param").get("axis", 1))
        shape = list(ins[0])
        shape[axis] = sum(s[axis] for s in ins)
        return tuple(shape)
    if t == "Convolution":
        p = layer.param("convolution_param")
        (kh, kw), (sh, sw), (ph, pw) = hw_pair(p, "kernel", 1), hw_pair(p, "stride", 1), hw_pair(p, "pad", 0)
        n, _, h, w = ins[0]
        return (n, int(p["num_output"]), _conv_out(h, kh, sh, ph), _conv_out(w, kw, sw, pw))
    if t == "Pooling":
        p = layer.param("pooling_param")
        n, c, h, w = ins[0]
        if p.get("global_pooling"):
            return (n, c, 1, 1)
        (kh, kw), (sh, sw), (ph, pw) = hw_pair(p, "kernel", 1), hw_pair(p, "stride", 1), hw_pair(p, "pad", 0)
        out = (n, c, _pool_out(h, kh, sh, ph), _pool_out(w, kw, sw, pw))
        if min(out[2:]) < 1:
            raise CaffeFormatError(f"{where}: {h}×{w} input is smaller than the {kh}×{kw} window")
        return out
    if t == "InnerProduct":
        return (ins[0][0], int(layer.param("inner_product_param")["num_output"]))
    if t == "Reshape":
        dims = [int(d) for d in as_list(layer.param("reshape_param").get("shape", {}).get("dim"))]
        shape = [ins[0][i] if d == 0 else d for i, d in enumerate(dims)]
        if -1 in shape:
            known = math.prod(d for d in shape if d != -1)
            shape[shape.index(-1)] = math.prod(ins[0]) // known
        return tuple(shape)
    raise CaffeFormatError(f"{where}: layer type not supported by shape inference")


def infer_shapes(net: Net, input_shape: tuple[int, ...] | None = None) -> dict[str, tuple[int, ...]]:
    """Shape of every blob (top) after the whole net ran; ``input_shape`` overrides the Input layer's."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in net.layers:
        if layer.type in ("Input", "Data"):
            shape = tuple(input_shape) if input_shape is not None else _input_shape(layer)
            for top in layer.tops:
                shapes[top] = shape
            continue
        missing = [b for b in layer.bottoms if b not in shapes]
        if missing:
            raise CaffeFormatError(
                f"{net.source or net.name}: layer {layer.name!r} reads blob "
                f"{missing[0]!r} that no earlier layer produces"
            )
        out = _layer_out(layer, [shapes[b] for b in layer.bottoms], net.source or net.name)
        for top in layer.tops:
            shapes[top] = out
    return shapes


def param_shapes(net: Net, input_shape: tuple[int, ...] | None = None) -> dict[str, list[tuple[int, ...]]]:
    """Expected blob shapes of every layer that has learned parameters, in Caffe's conventions."""
    shapes: dict[str, tuple[int, ...]] = {}
    result: dict[str, list[tuple[int, ...]]] = {}
    for layer in net.layers:
        if layer.type in ("Input", "Data"):
            shape = tuple(input_shape) if input_shape is not None else _input_shape(layer)
            shapes.update({top: shape for top in layer.tops})
            continue
        ins = [shapes[b] for b in layer.bottoms]
        blobs = _blob_shapes(layer, ins)
        if blobs:
            result[layer.name] = blobs
        out = _layer_out(layer, ins, net.source or net.name)
        shapes.update({top: out for top in layer.tops})
    return result


def _blob_shapes(layer: Layer, ins: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    t = layer.type
    if t == "Convolution":
        p = layer.param("convolution_param")
        out, group = int(p["num_output"]), int(p.get("group", 1))
        kh, kw = hw_pair(p, "kernel", 1)
        blobs = [(out, ins[0][1] // group, kh, kw)]
        return blobs + [(out,)] if p.get("bias_term", True) else blobs
    if t == "InnerProduct":
        p = layer.param("inner_product_param")
        out = int(p["num_output"])
        blobs = [(out, math.prod(ins[0][1:]))]
        return blobs + [(out,)] if p.get("bias_term", True) else blobs
    if t == "BatchNorm":
        c = ins[0][1]
        return [(c,), (c,), (1,)]
    if t == "Scale" and len(ins) == 1:
        c = ins[0][1]
        return [(c,), (c,)] if layer.param("scale_param").get("bias_term", False) else [(c,)]
    return []


# ---------------------------------------------------------------------------------------- weights


def _reading_input(net: Net) -> set[str]:
    """BatchNorm layers that normalize a convolution of the raw input (pixels, not unit-scale activations)."""
    inputs = {top for layer in net.layers if layer.type in ("Input", "Data") for top in layer.tops}
    first = {
        layer.tops[0]
        for layer in net.layers
        if layer.type == "Convolution" and layer.bottoms and layer.bottoms[0] in inputs
    }
    return {layer.name for layer in net.layers if layer.type == "BatchNorm" and layer.bottoms[0] in first}


def _gating(net: Net) -> set[str]:
    """Convolutions whose output goes through a Sigmoid: the SE excitation (``*_1x1_up``)."""
    gated = {layer.bottoms[0] for layer in net.layers if layer.type == "Sigmoid" and layer.bottoms}
    return {layer.name for layer in net.layers if layer.type == "Convolution" and layer.tops[0] in gated}


def _following_axpy(net: Net) -> set[str]:
    """Scale layers whose output is a residual branch (the bottom Axpy scales and adds)."""
    producer: dict[str, str] = {}
    last_scale: set[str] = set()
    for layer in net.layers:
        if layer.type == "Axpy" and len(layer.bottoms) == 3:
            name = producer.get(layer.bottoms[1])
            if name:
                last_scale.add(name)
        for top in layer.tops:
            producer[top] = layer.name
    return last_scale


def random_blobs(
    net: Net,
    *,
    seed: int = 0,
    bn_scale_factor: float = BN_SCALE_FACTOR,
    input_shape: tuple[int, ...] | None = None,
    input_std: float = INPUT_STD,
) -> Net:
    """Give every parametrised layer random float32 blobs of the right shape (in place; returns ``net``).

    The values keep activations of order 1 everywhere, as in a trained net, without a forward pass:
    convolutions are He-normal (fan-in), which preserves the second moment through conv + ReLU, and
    BatchNorm variances are ~U(0.5, 2) times the variance its input actually has: ``2·input_std²``
    after the first convolution (which sees 0–255 pixels minus the mean), ≈ 1 after that. Means and
    Scale betas ~ N(0, 0.1), gammas ~ U(0.5, 1.5), but U(0.1, 0.3) on the residual branch before an
    ``Axpy`` so the sum over 50 blocks grows slowly. The SE excitation biases ~ N(3, 0.5) keep the
    gates near 0.95 (not 0.5), or ten SE-BN-Inception modules would shrink the signal 1000-fold.
    BatchNorm blobs are stored the Caffe way,
    ``[mean·s, var·s, [s]]`` with ``s = bn_scale_factor``.
    """
    rng = np.random.default_rng(seed)
    residual = _following_axpy(net)
    on_pixels = _reading_input(net)
    gates = _gating(net)
    expected = param_shapes(net, input_shape)
    s = np.float32(bn_scale_factor)
    for layer in net.layers:
        shapes = expected.get(layer.name, [])
        if not shapes:
            layer.blobs = []
            continue
        if layer.type in ("Convolution", "InnerProduct"):
            fan_in = math.prod(shapes[0][1:])
            gain = 2.0 if layer.type == "Convolution" else 1.0
            blobs = [(rng.standard_normal(shapes[0], dtype=np.float32) * np.float32(math.sqrt(gain / fan_in)))]
            if len(shapes) > 1:
                blobs.append(
                    rng.normal(
                        3.0 if layer.name in gates else 0.0, 0.5 if layer.name in gates else 0.1, shapes[1]
                    ).astype(np.float32)
                )
        elif layer.type == "BatchNorm":
            mean = rng.normal(0.0, 0.1, shapes[0]).astype(np.float32)
            var = rng.uniform(0.5, 2.0, shapes[1]) * (2 * input_std**2 if layer.name in on_pixels else 1.0)
            var = var.astype(np.float32)
            blobs = [mean * s, var * s, np.full(shapes[2], s, dtype=np.float32)]
        else:  # Scale
            low, high = (0.1, 0.3) if layer.name in residual else (0.5, 1.5)
            blobs = [rng.uniform(low, high, shapes[0]).astype(np.float32)]
            if len(shapes) > 1:
                blobs.append(rng.normal(0.0, 0.1, shapes[1]).astype(np.float32))
        layer.blobs = blobs
    return net
