"""Run a parsed Caffe net with Caffe's own layer semantics: the yardstick for the converter.

Written from Caffe's layer definitions and independent of senet_zoo's model code. Every layer is
computed from its prototxt parameters and blobs with plain tensor primitives (``conv2d`` and matrix
products as math; pooling windows, including Caffe's ceil-mode output size, its clipping rule and
its average divisor, are computed here). Intermediate blobs are freed as soon as no later layer
reads them, so full-size SENet-154 at batch 2 fits in a few GB.

Blob values returned are those at the end of the pass (like ``net.blobs[name]`` in pycaffe): a blob
later modified by an in-place layer (``top == bottom``) is returned after that modification.

    run(net, data, outputs=None) -> {blob name: tensor}
    Executor(net, dtype=torch.float32)(data, outputs=None)   # caches the weights as tensors
    infer_shapes(net, input_shape=None) -> {blob name: shape}     # default: the Input layer's shape
    param_shapes(net, input_shape=None) -> {layer name: [blob shape, ...]}
    expected_blob_shapes(layer, bottom_shapes) -> [shape, ...]
    random_blobs(net, input_shape=None, seed=0, calibrate=True, ill_conditioned=False)

This module states Caffe's semantics once: each layer's shape rule sits beside its op and shares its
parameter checks (pooling geometry, convolution output, reshape), shape inference, blob shapes and
random weights for tests all go through it.
Every malformed parameter or wiring is an :class:`ExecutionError` naming the file and the layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .net import Layer, Net, as_list

__all__ = [
    "Executor",
    "ExecutionError",
    "run",
    "infer_shapes",
    "expected_blob_shapes",
    "random_blobs",
    "param_shapes",
    "pool_output_size",
    "hw_pair",
    "BN_SCALE_FACTOR",
]

Shape = tuple[int, ...]
Tensors = list[torch.Tensor]
WeightFn = Callable[[Layer, Tensors], Tensors]
_DATA_LAYERS = frozenset({"Input", "Data"})
_MAX_DIM = 1 << 31  # any size, count or kernel beyond this is a corrupt file, not a net
_MAX_WINDOW = 1024  # pooling window elements (the executor loops over them; SENets use at most 49)
# bottoms each layer type reads: (least, most); None = any number
_BOTTOMS: dict[str, tuple[int, int | None]] = {
    **dict.fromkeys(
        ("Convolution", "Pooling", "BatchNorm", "ReLU", "Sigmoid", "Reshape", "InnerProduct", "Dropout", "Softmax",
         "Flatten", "Split"),
        (1, 1),
    ),
    "Scale": (1, 2),  # the second bottom: per-channel factors instead of a blob
    "Axpy": (3, 3),
    "Concat": (1, None),
    "Eltwise": (2, None),
    "Silence": (1, None),
}  # fmt: skip


class ExecutionError(RuntimeError):
    """A net that cannot run: missing inputs or blobs, wrong blob shapes, unsupported layers."""


def hw_pair(param: Mapping, name: str, default: int | None) -> tuple[int, int] | None:
    """A 2-D size written as ``name_h``/``name_w`` or as one or two ``name`` values (``kernel_size``
    for the kernel); ``(default, default)`` when absent (None when ``default`` is None)."""
    if f"{name}_h" in param or f"{name}_w" in param:
        h, w = param.get(f"{name}_h", default), param.get(f"{name}_w", default)
        return None if h is None or w is None else (int(h), int(w))
    values = as_list(param.get("kernel_size" if name == "kernel" else name))
    if not values:
        return None if default is None else (default, default)
    return int(values[0]), int(values[-1])


def _hw(param: Mapping, name: str, default: int | None, layer: Layer, minimum: int = 1) -> tuple[int, int]:
    """:func:`hw_pair`, checked: given (or defaulted), 2-D, and each value at least ``minimum``."""
    values = as_list(param.get("kernel_size" if name == "kernel" else name))
    if len(values) > 2:
        raise ExecutionError(f"layer {layer.name!r} ({layer.type}): {len(values)} {name} values, only 2-D is supported")
    pair = hw_pair(param, name, default)
    if pair is None:
        raise ExecutionError(f"layer {layer.name!r} ({layer.type}): no {name} size given")
    if min(pair) < minimum or max(pair) > _MAX_DIM:
        raise ExecutionError(f"layer {layer.name!r} ({layer.type}): {name} {pair} must be in [{minimum}, {_MAX_DIM}]")
    return pair


def _positive(param: Mapping, key: str, default: int | None, layer: Layer) -> int:
    value = param.get(key, default)
    if value is None:
        raise ExecutionError(f"layer {layer.name!r} ({layer.type}): {key} is not given")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= _MAX_DIM:
        raise ExecutionError(f"layer {layer.name!r} ({layer.type}): {key} must be a positive count, got {value!r}")
    return value


def _axis(axis: int, ndim: int, layer: Layer) -> int:
    if not -ndim <= axis < ndim + (1 if axis < 0 else 0):
        raise ExecutionError(f"layer {layer.name!r}: axis {axis} out of range for a {ndim}-D blob")
    return axis + ndim if axis < 0 else axis


def expected_blob_shapes(layer: Layer, bottom_shapes: Sequence[Shape]) -> list[Shape]:
    """The shapes of ``layer``'s parameter blobs in a current Caffe file, given its input shapes."""
    kind = layer.type
    x = tuple(bottom_shapes[0]) if bottom_shapes else ()
    if kind == "Convolution":
        p = layer.param("convolution_param")
        kh, kw = _hw(p, "kernel", None, layer)
        out, group = _positive(p, "num_output", None, layer), _positive(p, "group", 1, layer)
        if len(x) != 4:
            raise ExecutionError(f"layer {layer.name!r} (Convolution): input {x} is not N x C x H x W")
        if x[1] % group or out % group:
            raise ExecutionError(
                f"layer {layer.name!r} (Convolution): group {group} does not divide "
                f"{x[1]} input and {out} output channels"
            )
        shapes: list[Shape] = [(out, x[1] // group, kh, kw)]
        return shapes + [(out,)] if p.get("bias_term", True) else shapes
    if kind == "InnerProduct":
        p = layer.param("inner_product_param")
        out = _positive(p, "num_output", None, layer)
        k = math.prod(x[_axis(p.get("axis", 1), len(x), layer) :])
        ip_shapes: list[Shape] = [(k, out) if p.get("transpose", False) else (out, k)]
        return ip_shapes + [(out,)] if p.get("bias_term", True) else ip_shapes
    if kind == "BatchNorm":
        channels = x[1] if len(x) > 1 else 1
        return [(channels,), (channels,), (1,)]
    if kind == "Scale":
        p = layer.param("scale_param")
        axis = _axis(p.get("axis", 1), len(x), layer)
        if len(bottom_shapes) > 1:
            return [tuple(bottom_shapes[1])] if p.get("bias_term", False) else []
        num_axes = p.get("num_axes", 1)
        shape = x[axis:] if num_axes == -1 else x[axis : axis + num_axes]
        return [shape, shape] if p.get("bias_term", False) else [shape]
    return []


def pool_output_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool = True) -> int:
    """Caffe's pooled size: ceil (or floor) division, then drop a last window starting in the padding."""
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    return out


# -- layers ------------------------------------------------------------------------------------


def _convolution(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    p = layer.param("convolution_param")
    x = bottoms[0]
    _conv_output(layer, tuple(x.shape), tuple(blobs[0].shape[2:]))  # checks the parameters
    stride, pad, dilation = _hw(p, "stride", 1, layer), _hw(p, "pad", 0, layer, minimum=0), _hw(p, "dilation", 1, layer)
    bias = blobs[1] if len(blobs) > 1 else None
    return [F.conv2d(x, blobs[0], bias, stride, pad, dilation, int(p.get("group", 1)))]


def _pool_geometry(layer: Layer, height: int, width: int) -> tuple[tuple[int, int], ...]:
    """Kernel, stride, pad and output size of a (non-global) pooling layer, all checked."""
    p = layer.param("pooling_param")
    kh, kw = _hw(p, "kernel", None, layer)
    (sh, sw), (ph, pw) = _hw(p, "stride", 1, layer), _hw(p, "pad", 0, layer, minimum=0)
    if kh * kw > _MAX_WINDOW:
        raise ExecutionError(f"layer {layer.name!r} (Pooling): a {kh}x{kw} window is larger than supported")
    if ph >= kh or pw >= kw:
        raise ExecutionError(f"layer {layer.name!r} (Pooling): pad {(ph, pw)} must be smaller than the kernel")
    ceil_mode = p.get("round_mode", "CEIL") == "CEIL"
    oh = pool_output_size(height, kh, sh, ph, ceil_mode)
    ow = pool_output_size(width, kw, sw, pw, ceil_mode)
    if oh < 1 or ow < 1:
        raise ExecutionError(f"layer {layer.name!r} (Pooling): a {height}x{width} input is smaller than the window")
    return (kh, kw), (sh, sw), (ph, pw), (oh, ow)


def _conv_output(layer: Layer, x: Shape, kernel: Shape) -> Shape:
    """Output shape of a convolution (parameters checked), from its input shape and kernel size."""
    p = layer.param("convolution_param")
    if p.get("axis", 1) != 1:
        raise ExecutionError(f"layer {layer.name!r}: convolution axis {p['axis']} is not supported")
    stride = _hw(p, "stride", 1, layer)
    pad = _hw(p, "pad", 0, layer, minimum=0)
    dilation = _hw(p, "dilation", 1, layer)
    out = []
    for size, k, st, d, q in zip(x[2:], kernel, stride, dilation, pad):
        span = d * (k - 1) + 1
        if size + 2 * q < span:
            raise ExecutionError(
                f"layer {layer.name!r} (Convolution): a {tuple(x[2:])} input is smaller than the kernel"
            )
        out.append((size + 2 * q - span) // st + 1)
    return (x[0], _positive(p, "num_output", None, layer), *out)


def _reshape_shape(layer: Layer, x: Shape) -> Shape:
    p = layer.param("reshape_param")
    dims = [int(d) for d in as_list(p.get("shape", {}).get("dim"))]
    axis, num_axes = p.get("axis", 0), p.get("num_axes", -1)
    start = axis if axis >= 0 else len(x) + axis + 1
    end = len(x) if num_axes == -1 else start + num_axes
    if not 0 <= start <= end <= len(x) or any(d < -1 for d in dims):
        raise ExecutionError(
            f"layer {layer.name!r} (Reshape): dims {dims}, axis {axis}, num_axes {num_axes} do not fit"
        )
    if any(d == 0 and start + i >= len(x) for i, d in enumerate(dims)):
        raise ExecutionError(f"layer {layer.name!r} (Reshape): a 0 (copy) dim beyond the input's {len(x)} axes")
    part = [x[start + i] if d == 0 else d for i, d in enumerate(dims)]
    shape = list(x[:start]) + part + list(x[end:])
    if shape.count(-1) > 1:
        raise ExecutionError(f"layer {layer.name!r}: more than one -1 in the reshape dims {dims}")
    count = math.prod(x)
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        shape[shape.index(-1)] = count // known if known else 0
    if math.prod(shape) != count:
        raise ExecutionError(f"layer {layer.name!r}: cannot reshape {tuple(x)} to {tuple(shape)}")
    return tuple(shape)


def _pooling(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    p = layer.param("pooling_param")
    x = bottoms[0]
    if x.dim() != 4:
        raise ExecutionError(f"layer {layer.name!r} (Pooling): input {tuple(x.shape)} is not N x C x H x W")
    method = p.get("pool", "MAX")
    if method not in ("MAX", "AVE"):
        raise ExecutionError(f"layer {layer.name!r}: {method} pooling is not supported")
    if p.get("global_pooling", False):  # one window covering the whole map, no padding
        return [x.amax((2, 3), keepdim=True) if method == "MAX" else x.mean((2, 3), keepdim=True)]
    height, width = x.shape[2], x.shape[3]
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = _pool_geometry(layer, height, width)
    # Pad so every window lies inside: ``p`` before, and after as far as the last window reaches.
    extra_h = max(0, (oh - 1) * sh + kh - height - ph)
    extra_w = max(0, (ow - 1) * sw + kw - width - pw)
    fill = float("-inf") if method == "MAX" else 0.0
    xp = F.pad(x, (pw, extra_w, ph, extra_h), value=fill)
    out: torch.Tensor | None = None
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i : i + (oh - 1) * sh + 1 : sh, j : j + (ow - 1) * sw + 1 : sw]
            if out is None:
                out = window.clone()
            elif method == "MAX":
                out = torch.maximum(out, window)
            else:
                out += window
    assert out is not None  # the kernel is at least 1x1
    if method == "AVE":  # divide by the window clipped to the padded image (padding counts)
        rows = [min(r * sh - ph + kh, height + ph) - (r * sh - ph) for r in range(oh)]
        cols = [min(c * sw - pw + kw, width + pw) - (c * sw - pw) for c in range(ow)]
        divisor = torch.tensor(rows, dtype=x.dtype)[:, None] * torch.tensor(cols, dtype=x.dtype)[None, :]
        out = out / divisor.to(x.device)
    return [out]


def _batch_norm(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    p = layer.param("batch_norm_param")
    x = bottoms[0]
    view = (1, -1) + (1,) * (x.dim() - 2)
    if p.get("use_global_stats", True):  # deploy nets run in TEST phase: stored statistics
        # Caffe (a float net) computes 1/s and the scaled statistics in float32, whatever dtype runs here.
        s = blobs[2].reshape(()).float()
        factor = torch.where(s == 0, torch.zeros_like(s), 1 / s)
        mean, var = (blobs[0].float() * factor).to(x.dtype), (blobs[1].float() * factor).to(x.dtype)
    else:
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        mean = flat.mean(1)
        var = ((flat - mean[:, None]) ** 2).mean(1)
    return [(x - mean.reshape(view)) / torch.sqrt(var.reshape(view) + p.get("eps", 1e-5))]


def _scale(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    p = layer.param("scale_param")
    x = bottoms[0]
    axis = _axis(p.get("axis", 1), x.dim(), layer)
    if len(bottoms) > 1:
        scale, bias = bottoms[1], (blobs[0] if blobs else None)
    else:
        scale, bias = blobs[0], (blobs[1] if len(blobs) > 1 else None)
    covered = scale.dim()
    if tuple(x.shape[axis : axis + covered]) != tuple(scale.shape):
        raise ExecutionError(
            f"layer {layer.name!r}: scale of shape {tuple(scale.shape)} does not match "
            f"axes {axis}.. of the input {tuple(x.shape)}"
        )
    view = (1,) * axis + tuple(scale.shape) + (1,) * (x.dim() - axis - covered)
    out = x * scale.reshape(view)
    return [out + bias.reshape(view) if bias is not None else out]


def _relu(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    slope = layer.param("relu_param").get("negative_slope", 0.0)
    x = bottoms[0]
    return [F.relu(x) if slope == 0 else torch.clamp(x, min=0) + slope * torch.clamp(x, max=0)]


def _axpy(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    a, x, y = bottoms
    if a.numel() != x.shape[0] * x.shape[1]:
        raise ExecutionError(f"layer {layer.name!r}: Axpy scale {tuple(a.shape)} is not N x C of {tuple(x.shape)}")
    return [a.reshape(x.shape[0], x.shape[1], *([1] * (x.dim() - 2))) * x + y]


def _reshape(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    return [bottoms[0].reshape(_reshape_shape(layer, tuple(bottoms[0].shape)))]


def _concat(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    p = layer.param("concat_param")
    axis = p["concat_dim"] if "concat_dim" in p else p.get("axis", 1)
    return [torch.cat(bottoms, _axis(axis, bottoms[0].dim(), layer))]


def _eltwise(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    p = layer.param("eltwise_param")
    op = p.get("operation", "SUM")
    if op == "PROD":
        out = bottoms[0]
        for b in bottoms[1:]:
            out = out * b
        return [out]
    if op == "MAX":
        out = bottoms[0]
        for b in bottoms[1:]:
            out = torch.maximum(out, b)
        return [out]
    coeff = as_list(p.get("coeff")) or [1.0] * len(bottoms)
    if len(coeff) != len(bottoms):
        raise ExecutionError(f"layer {layer.name!r}: {len(coeff)} coefficients for {len(bottoms)} inputs")
    out = bottoms[0] * coeff[0] if coeff[0] != 1 else bottoms[0]
    for c, b in zip(coeff[1:], bottoms[1:]):
        out = out + (b * c if c != 1 else b)
    return [out]


def _inner_product(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    p = layer.param("inner_product_param")
    x = bottoms[0]
    axis = _axis(p.get("axis", 1), x.dim(), layer)
    weight = blobs[0].t() if p.get("transpose", False) else blobs[0]
    out = x.reshape(*x.shape[:axis], -1) @ weight.t()
    return [out + blobs[1] if len(blobs) > 1 else out]


def _softmax(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    x = bottoms[0]
    return [torch.softmax(x, _axis(layer.param("softmax_param").get("axis", 1), x.dim(), layer))]


def _flatten(layer: Layer, bottoms: Tensors, blobs: Tensors) -> Tensors:
    p = layer.param("flatten_param")
    x = bottoms[0]
    return [x.flatten(_axis(p.get("axis", 1), x.dim(), layer), _axis(p.get("end_axis", -1), x.dim(), layer))]


_OPS: dict[str, Callable[[Layer, Tensors, Tensors], Tensors]] = {
    "Convolution": _convolution,
    "Pooling": _pooling,
    "BatchNorm": _batch_norm,
    "Scale": _scale,
    "ReLU": _relu,
    "Sigmoid": lambda layer, b, w: [torch.sigmoid(b[0])],
    "Axpy": _axpy,
    "Reshape": _reshape,
    "Concat": _concat,
    "Eltwise": _eltwise,
    "InnerProduct": _inner_product,
    "Dropout": lambda layer, b, w: [b[0]],
    "Softmax": _softmax,
    "Flatten": _flatten,
    "Split": lambda layer, b, w: [b[0]] * len(layer.tops),
    "Silence": lambda layer, b, w: [],
}


# -- the pass ----------------------------------------------------------------------------------


def _first_input(net: Net) -> str:
    first = next((layer for layer in net.layers if layer.type in _DATA_LAYERS and layer.tops), None)
    if first is None:
        raise ExecutionError(f"{net.source or net.name}: the net has no Input layer to feed")
    return first.tops[0]


def _feeds(
    net: Net, data: torch.Tensor | np.ndarray | Mapping[str, torch.Tensor | np.ndarray]
) -> dict[str, torch.Tensor]:
    """Map the caller's input(s) to the data layers' tops (a single input goes to the first one)."""
    if isinstance(data, Mapping):
        return {name: torch.as_tensor(value) for name, value in data.items()}
    return {_first_input(net): torch.as_tensor(data)}


def _forward(
    net: Net, feeds: dict[str, torch.Tensor], outputs: Iterable[str] | None, weights: WeightFn, keep_all: bool = False
) -> dict[str, torch.Tensor]:
    """One pass over ``net``; blobs are dropped after their last reader unless requested.

    Takes ownership of ``feeds`` (entries are removed as they are used, so inputs can be freed too).
    """
    where = net.source or net.name
    wanted = set(outputs) if outputs is not None else set(net.layers[-1].tops if net.layers else ())
    last_read: dict[str, int] = {}
    for index, layer in enumerate(net.layers):
        for name in layer.bottoms:
            last_read[name] = index
    blobs: dict[str, torch.Tensor] = {}
    for index, layer in enumerate(net.layers):
        if layer.type in _DATA_LAYERS:
            tops = _take_inputs(layer, feeds, where)
        else:
            tops = _run_layer(layer, blobs, weights, where)
        for name, value in zip(layer.tops, tops):
            blobs[name] = value
        if keep_all:
            continue
        for name in set(layer.bottoms) | set(layer.tops):
            if last_read.get(name, -1) <= index and name not in wanted:
                blobs.pop(name, None)
    absent = wanted - blobs.keys()
    if absent:
        raise ExecutionError(f"{where}: requested blob(s) {sorted(absent)} do not exist in the net")
    return blobs if keep_all else {name: blobs[name] for name in wanted}


def _take_inputs(layer: Layer, feeds: dict[str, torch.Tensor], where: str) -> list[torch.Tensor]:
    """The fed values of an input layer's tops (a Data layer's label top is not fed)."""
    tops = []
    for name in layer.tops[:1] if layer.type == "Data" else layer.tops:
        if name not in feeds:
            raise ExecutionError(f"{where}: no input given for blob {name!r} of layer {layer.name!r}")
        tops.append(feeds.pop(name))
    return tops


def _run_layer(layer: Layer, blobs: dict[str, torch.Tensor], weights: WeightFn, where: str) -> list[Any]:
    op = _OPS.get(layer.type)
    if op is None:
        raise ExecutionError(f"{where}: layer {layer.name!r}: type {layer.type!r} is not supported")
    missing = [name for name in layer.bottoms if name not in blobs]
    if missing:
        raise ExecutionError(f"{where}: layer {layer.name!r} reads {missing[0]!r}, which no earlier layer produced")
    return _apply(op, layer, [blobs[name] for name in layer.bottoms], weights, where)


def _apply(op: Callable, layer: Layer, bottoms: Sequence[Any], weights: Callable, where: str) -> list[Any]:
    """Run one layer; any failure becomes an :class:`ExecutionError` naming the file and the layer."""
    least, most = _BOTTOMS.get(layer.type, (0, None))
    if not least <= len(bottoms) <= (most if most is not None else len(bottoms)):
        wanted = f"{least}" if least == most else f"at least {least}" if most is None else f"{least} to {most}"
        raise ExecutionError(
            f"{where}: layer {layer.name!r} ({layer.type}): reads {len(bottoms)} bottom(s), needs {wanted}"
        )
    if not layer.tops and layer.type != "Silence":
        raise ExecutionError(f"{where}: layer {layer.name!r} ({layer.type}): has no top")
    try:
        return op(layer, bottoms, weights(layer, bottoms))
    except ExecutionError as err:
        raise ExecutionError(str(err) if str(err).startswith(where) else f"{where}: {err}") from None
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, ArithmeticError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExecutionError(f"{where}: layer {layer.name!r} ({layer.type}): {message}") from None


def _check_blobs(layer: Layer, blobs: Sequence, bottoms: Tensors) -> list[Shape]:
    """Expected shapes for ``layer``'s blobs; raises when the stored blobs cannot be them."""
    expected = expected_blob_shapes(layer, [tuple(b.shape) for b in bottoms])
    if len(blobs) != len(expected):
        raise ExecutionError(
            f"layer {layer.name!r} ({layer.type}): has {len(blobs)} blobs, expected "
            f"{len(expected)} of shapes {expected}"
        )
    for i, (blob, shape) in enumerate(zip(blobs, expected)):
        if math.prod(blob.shape) != math.prod(shape):
            raise ExecutionError(
                f"layer {layer.name!r} ({layer.type}): blob {i} has shape {tuple(blob.shape)}, expected {shape}"
            )
    return expected


class Executor:
    """A net ready to run: its blobs converted once to tensors of ``dtype`` on ``device``."""

    def __init__(self, net: Net, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
        self.net = net
        self.dtype = dtype
        self.device = torch.device(device)
        self._cache: dict[int, Tensors] = {}

    def _weights(self, layer: Layer, bottoms: Tensors) -> Tensors:
        key = id(layer)
        if key not in self._cache:
            shapes = _check_blobs(layer, layer.blobs, bottoms)
            np_dtype = torch.empty((), dtype=self.dtype).numpy().dtype
            self._cache[key] = [
                torch.from_numpy(np.array(blob, dtype=np_dtype).reshape(shape)).to(self.device)
                for blob, shape in zip(layer.blobs, shapes)
            ]
        return self._cache[key]

    @torch.inference_mode()
    def __call__(
        self,
        data: torch.Tensor | np.ndarray | Mapping[str, torch.Tensor | np.ndarray],
        outputs: Iterable[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run on Caffe input (N x C x H x W, BGR, mean subtracted); returns the requested blobs."""
        feeds = {name: value.to(self.device, self.dtype) for name, value in _feeds(self.net, data).items()}
        return _forward(self.net, feeds, outputs, self._weights)


def run(
    net: Net,
    data: torch.Tensor | np.ndarray | Mapping[str, torch.Tensor | np.ndarray],
    outputs: Iterable[str] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Run ``net`` once on ``data``; ``outputs`` names the blobs to return (default: the last layer's tops)."""
    return Executor(net, dtype=dtype)(data, outputs)


def _declared_inputs(net: Net) -> dict[str, Shape]:
    """The input shapes the net's own Input layers declare (one shape per top, or one for all)."""
    shapes: dict[str, Shape] = {}
    for layer in net.layers:
        if layer.type not in _DATA_LAYERS:
            continue
        declared = as_list(layer.param("input_param").get("shape"))
        if not declared:
            raise ExecutionError(f"{net.source or net.name}: layer {layer.name!r} ({layer.type}) declares no shape")
        for i, top in enumerate(layer.tops):
            dims = as_list((declared[i] if i < len(declared) else declared[0]).get("dim"))
            if not dims or not all(isinstance(d, int) and 1 <= d <= _MAX_DIM for d in dims):
                raise ExecutionError(f"{net.source or net.name}: layer {layer.name!r}: input shape {dims} is invalid")
            shapes[top] = tuple(dims)
    return shapes


class _ShapeError(Exception):
    """Raised by a shape rule; :func:`_output_shapes` names the layer."""


def _nchw(layer: Layer, x: Shape) -> None:
    if len(x) != 4:
        raise _ShapeError(f"input {x} is not N x C x H x W")


def _conv_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    _nchw(layer, ins[0])
    return [_conv_output(layer, ins[0], expected_blob_shapes(layer, ins)[0][2:])]


def _pool_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    x = ins[0]
    _nchw(layer, x)
    p = layer.param("pooling_param")
    if p.get("pool", "MAX") not in ("MAX", "AVE"):
        raise _ShapeError(f"{p.get('pool')} pooling is not supported")
    return [(*x[:2], 1, 1) if p.get("global_pooling", False) else (*x[:2], *_pool_geometry(layer, x[2], x[3])[3])]


def _same_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    expected_blob_shapes(layer, ins)
    return [ins[0]]


def _scale_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    x = ins[0]
    expected_blob_shapes(layer, ins)
    if len(ins) == 2:
        axis = _axis(layer.param("scale_param").get("axis", 1), len(x), layer)
        if tuple(x[axis : axis + len(ins[1])]) != tuple(ins[1]):
            raise _ShapeError(f"scale of shape {ins[1]} does not match axes {axis}.. of the input {x}")
    return [x]


def _axpy_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    a, x, y = ins
    if len(x) < 2 or math.prod(a) != x[0] * x[1] or x != y:
        raise _ShapeError(f"needs a (N x C), x and y of one shape; got {a}, {x}, {y}")
    return [x]


def _eltwise_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    if any(shape != ins[0] for shape in ins):
        raise _ShapeError(f"inputs of different shapes {ins}")
    return [ins[0]]


def _concat_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    x, p = ins[0], layer.param("concat_param")
    axis = _axis(p["concat_dim"] if "concat_dim" in p else p.get("axis", 1), len(x), layer)
    if any(len(s) != len(x) or s[:axis] + s[axis + 1 :] != x[:axis] + x[axis + 1 :] for s in ins):
        raise _ShapeError(f"inputs {ins} differ outside axis {axis}")
    return [(*x[:axis], sum(s[axis] for s in ins), *x[axis + 1 :])]


def _inner_product_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    x = ins[0]
    axis = _axis(layer.param("inner_product_param").get("axis", 1), len(x), layer)
    return [(*x[:axis], expected_blob_shapes(layer, ins)[0][0 if not _transposed(layer) else 1])]


def _flatten_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    x, p = ins[0], layer.param("flatten_param")
    start, end = _axis(p.get("axis", 1), len(x), layer), _axis(p.get("end_axis", -1), len(x), layer)
    return [(*x[:start], math.prod(x[start : end + 1]), *x[end + 1 :])]


# layer type → the shapes of its tops from its bottoms' shapes: the ops' rules without the data
_SHAPE_RULES: dict[str, Callable[[Layer, list[Shape]], list[Shape]]] = {
    "Convolution": _conv_shapes,
    "Pooling": _pool_shapes,
    **dict.fromkeys(("BatchNorm", "ReLU", "Sigmoid", "Dropout", "Softmax"), _same_shapes),
    "Scale": _scale_shapes,
    "Axpy": _axpy_shapes,
    "Eltwise": _eltwise_shapes,
    "Concat": _concat_shapes,
    "InnerProduct": _inner_product_shapes,
    "Reshape": lambda layer, ins: [_reshape_shape(layer, ins[0])],
    "Flatten": _flatten_shapes,
    "Split": lambda layer, ins: [ins[0]] * len(layer.tops),
    "Silence": lambda layer, ins: [],
}


def _output_shapes(layer: Layer, ins: list[Shape]) -> list[Shape]:
    """The shapes of ``layer``'s tops from its bottoms' shapes: the ops' rules without the data."""
    rule = _SHAPE_RULES.get(layer.type)
    try:
        if rule is None:
            raise _ShapeError(f"type {layer.type!r} is not supported")
        return [tuple(shape) for shape in rule(layer, ins)]
    except _ShapeError as err:
        raise ExecutionError(f"layer {layer.name!r} ({layer.type}): {err}") from None


def _transposed(layer: Layer) -> bool:
    return bool(layer.param("inner_product_param").get("transpose", False))


def _shape_pass(
    net: Net,
    input_shape: Shape | Mapping[str, Shape] | None,
    on_layer: Callable[[Layer, list[Shape]], None] | None = None,
) -> dict[str, Shape]:
    """Every blob's shape, layer by layer with the ops' rules and checks, but no data (instant).

    ``input_shape`` defaults to the Input layers' declared shapes; ``on_layer(layer, bottom_shapes)``
    is called before each layer is applied.
    """
    where = net.source or net.name
    if input_shape is None:
        shapes: dict[str, Shape] = dict(_declared_inputs(net))
    elif isinstance(input_shape, Mapping):
        shapes = {name: tuple(shape) for name, shape in input_shape.items()}
    else:
        shapes = {_first_input(net): tuple(input_shape)}
    for layer in net.layers:
        if layer.type in _DATA_LAYERS:
            continue
        missing = [name for name in layer.bottoms if name not in shapes]
        if missing:
            raise ExecutionError(f"{where}: layer {layer.name!r} reads {missing[0]!r}, which no earlier layer produced")
        ins = [shapes[name] for name in layer.bottoms]

        def op(layer: Layer, bottoms: list, blobs: list, ins: list[Shape] = ins) -> list[Shape]:
            if on_layer is not None:
                on_layer(layer, ins)
            return _output_shapes(layer, ins)

        outs: list[Any] = _apply(op, layer, ins, lambda layer, bottoms: [], where)
        shapes.update(zip(layer.tops, outs))
    return shapes


def infer_shapes(net: Net, input_shape: Shape | Mapping[str, Shape] | None = None) -> dict[str, Shape]:
    """The shape of every blob for the given input shape(s) (default: the Input layer's), without data.

    Works on nets without blobs (a bare prototxt): shapes come from the layers' parameters.
    """
    return _shape_pass(net, input_shape)


def param_shapes(net: Net, input_shape: Shape | Mapping[str, Shape] | None = None) -> dict[str, list[Shape]]:
    """The expected blob shapes of every layer that has parameters, in Caffe's conventions."""
    result: dict[str, list[Shape]] = {}

    def record(layer: Layer, ins: list[Shape]) -> None:
        shapes = expected_blob_shapes(layer, ins)
        if shapes:
            result[layer.name] = shapes

    _shape_pass(net, input_shape, record)
    return result


# -- random weights ----------------------------------------------------------------------------

BN_SCALE_FACTOR = 999.98  # what Caffe's moving-average bookkeeping leaves in real SENet caffemodels
INPUT_STD = 60.0  # typical spread of 0-255 pixel values minus the mean


def _roles(net: Net) -> dict[str, str]:
    """Layers whose random values follow a special rule: ``pixels`` (a BatchNorm right after a
    convolution of the raw input), ``gate`` (a convolution feeding a Sigmoid: the SE excitation),
    ``residual`` (a Scale whose output is the residual branch an ``Axpy`` adds)."""
    inputs = {top for layer in net.layers if layer.type in _DATA_LAYERS for top in layer.tops}
    first = {
        layer.tops[0]
        for layer in net.layers
        if layer.type == "Convolution" and layer.bottoms and layer.tops and layer.bottoms[0] in inputs
    }
    gated = {layer.bottoms[0] for layer in net.layers if layer.type == "Sigmoid" and layer.bottoms}
    roles: dict[str, str] = {}
    producer: dict[str, str] = {}
    for layer in net.layers:
        if layer.type == "BatchNorm" and layer.bottoms and layer.bottoms[0] in first:
            roles[layer.name] = "pixels"
        if layer.type == "Convolution" and layer.tops and layer.tops[0] in gated:
            roles[layer.name] = "gate"
        if layer.type == "Axpy" and len(layer.bottoms) == 3 and layer.bottoms[1] in producer:
            roles[producer[layer.bottoms[1]]] = "residual"
        for top in layer.tops:
            producer[top] = layer.name
    return roles


def random_blobs(
    net: Net,
    input_shape: Shape | None = None,
    seed: int = 0,
    *,
    calibrate: bool = True,
    ill_conditioned: bool = False,
    bn_scale_factor: float | None = None,
    input_std: float = INPUT_STD,
) -> Net:
    """Give every parametric layer of ``net`` random float32 blobs of plausible values (in place).

    Convolutions and inner products are He-normal (fan-in). Scale gammas ~ U(0.5, 1.5), but
    U(0.1, 0.3) on a residual branch before an ``Axpy`` so 50 summed blocks grow slowly; betas and
    biases ~ N(0, 0.1); the SE excitation biases ~ N(3, 0.5) keep the gates near 0.95. BatchNorm
    blobs are stored the Caffe way, ``[mean·s, var·s, [s]]``, with ``s = bn_scale_factor`` (default
    random in [1, 1000), as a trained model's moving-average factor).

    BatchNorm statistics: with ``calibrate`` a forward pass on random input (std ``input_std``, at
    ``input_shape``, default the Input layer's) sets each one near those of its actual input, so
    activations stay O(1); without it they are drawn from the variance the input is expected to
    have (``2·input_std²`` after the first convolution, ~1 after that) and only shapes are
    computed (instant). ``ill_conditioned`` (implies ``calibrate``) gives statistics "from other
    inputs": means off by several standard deviations and variances 10²-10⁴ times too small, so
    every BatchNorm amplifies and offsets its input: activations reach ~10³ and float32 rounding
    visibly moves the outputs, as with a badly calibrated real model.
    """
    rng = np.random.default_rng(seed)
    calibrate = calibrate or ill_conditioned
    roles = _roles(net)
    fixed_s = None if bn_scale_factor is None else np.float32(bn_scale_factor)

    def fill(layer: Layer, ins: list[Shape], x: torch.Tensor | None) -> None:
        shapes = expected_blob_shapes(layer, ins)
        layer.blobs = []
        if shapes:
            s = fixed_s if fixed_s is not None else np.float32(rng.uniform(1.0, 1000.0))
            role = roles.get(layer.name, "")
            layer.blobs = _random_layer_blobs(layer, shapes, x, rng, role, s, ill_conditioned, input_std)

    def weights(layer: Layer, bottoms: Tensors) -> Tensors:
        fill(layer, [tuple(b.shape) for b in bottoms], bottoms[0] if bottoms else None)
        return [torch.from_numpy(b) for b in layer.blobs]

    if calibrate:
        shape = tuple(input_shape) if input_shape is not None else next(iter(_declared_inputs(net).values()))
        data = torch.from_numpy((rng.standard_normal(shape) * input_std).astype(np.float32))
        with torch.inference_mode():
            _forward(net, _feeds(net, data), (), weights)
    else:
        _shape_pass(net, input_shape, lambda layer, ins: fill(layer, ins, None))
    return net


def _random_layer_blobs(
    layer: Layer,
    shapes: list[Shape],
    x: torch.Tensor | None,
    rng: np.random.Generator,
    role: str,
    s: np.float32,
    ill: bool,
    input_std: float,
) -> list[np.ndarray]:
    def normal(shape: Shape, mean: float, std: float) -> np.ndarray:
        return (mean + rng.standard_normal(shape) * std).astype(np.float32)

    if layer.type == "BatchNorm":
        channels = shapes[0][0]
        if x is None:
            mean = rng.normal(0.0, 0.1, channels)
            var = rng.uniform(0.5, 2.0, channels) * (2 * input_std**2 if role == "pixels" else 1.0)
        else:
            flat = x.detach().transpose(0, 1).reshape(channels, -1).double()
            std = flat.std(1, unbiased=False).numpy() + 1e-6
            if ill:  # statistics "from other inputs"
                mean = flat.mean(1).numpy() + rng.normal(0, 3.0, channels) * std
                var = std**2 * 10.0 ** rng.uniform(-4.0, -2.0, channels)
            else:
                mean = flat.mean(1).numpy() + rng.normal(0, 0.05, channels) * std
                var = std**2 * rng.uniform(0.8, 1.25, channels)
        mean32, var32 = mean.astype(np.float32), np.maximum(var, 1e-6).astype(np.float32)
        return [mean32 * s, var32 * s, np.full(shapes[2], s, dtype=np.float32)]
    if layer.type == "Scale":
        low, high = (0.1, 0.3) if role == "residual" else (0.5, 1.5)
        out = [rng.uniform(low, high, shapes[0]).astype(np.float32)] if len(layer.bottoms) == 1 else []
        return out + [normal(shape, 0.0, 0.1) for shape in shapes[len(out) :]]
    weight_shape = shapes[0]
    fan_in = (
        math.prod(weight_shape[1:])
        if layer.type == "Convolution"
        else (weight_shape[0] if layer.param("inner_product_param").get("transpose", False) else weight_shape[1])
    )
    gain = 2.0 if layer.type == "Convolution" else 1.0
    bias_mean, bias_std = (3.0, 0.5) if role == "gate" else (0.0, 0.1)
    return [normal(weight_shape, 0.0, math.sqrt(gain / max(fan_in, 1)))] + [
        normal(shape, bias_mean, bias_std) for shape in shapes[1:]
    ]
