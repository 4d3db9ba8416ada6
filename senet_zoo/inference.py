"""An inference-only fast path for every senet_zoo model: :func:`optimize_for_inference`.

The training model stays the default; this builds a second, eval-only model from it that

* folds every BatchNorm into the convolution before it (one pass over memory fewer per convolution),
* keeps activations in ``channels_last`` (CPU and CUDA; oneDNN and cuDNN run NHWC without reorders),
* on CPU runs each convolution and its ReLU as one oneDNN kernel with weights packed once,
* applies the SE scale and the residual add in one in-place ``addcmul``, then the ReLU in place, and
  runs the excitation as ``Linear`` layers on the N×C squeezed vector,
* squeezes before the last 1×1 convolution where that reads less memory (the mean of a 1×1
  convolution's output is that convolution applied to the mean of its input),
* with ``precision="bf16"``, runs convolutions and activations in bfloat16 (weights converted once),
  keeping the stem, the SE excitation and the classifier in float32,
* on request (``reuse_memory=True``; process-wide, so off by default), lets glibc reuse freed activation
  memory instead of returning it to the system (what ONNX Runtime's arena does; :func:`reuse_freed_memory`),
* runs under :func:`torch.inference_mode`, optionally through :func:`torch.compile`.

Exported to ONNX (:mod:`senet_zoo.export`), the same fused blocks trace to plain ONNX operators.

benchmarks/README.md has what each step gives. The result gives the unfused model's logits to float
rounding (about 1e-5 at logits of ±15). It refuses training: the source model must be in eval mode
(folding uses the BatchNorm running statistics) and the result cannot be switched to ``train()``.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import sys
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast

import torch
from timm.layers import BatchNormAct2d, ConvNormAct
from torch import nn
from torch.nn import functional as F

from ._log import get_logger
from .models.bn_inception import ConvBnReLU, InceptionBlock, concat_branches
from .models.se import SEModule
from .models.senet import SEBottleneck

__all__ = ["optimize_for_inference", "InferenceModel", "fold_bn", "reuse_freed_memory", "PRECISIONS"]

_logger = get_logger(__name__)

_TRAIN_ERROR = (
    "{name} is fused for inference (BatchNorm folded, in-place ops) and cannot be trained; "
    "train the model you passed to optimize_for_inference() and fuse it again afterwards"
)


def _exporting() -> bool:
    """True while the fused model is traced (ONNX, ``jit.trace``, ``torch.export`` / ``torch.compile``):
    the blocks then take plain, out-of-place ops and no packed oneDNN weights."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.compiler.is_compiling()


def fold_bn(
    conv: nn.Conv2d, bn: nn.BatchNorm2d, memory_format: torch.memory_format = torch.contiguous_format
) -> nn.Conv2d:
    """A new convolution (with bias) equal to ``bn(conv(x))`` in eval mode, its weight in ``memory_format``.

    The per-channel scale and bias are computed in float64; the weight takes one rounding.
    """
    if not bn.track_running_stats or bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"cannot fold {bn}: it has no running statistics")
    dtype = conv.weight.dtype
    gamma = bn.weight.detach().double() if bn.affine else torch.ones_like(bn.running_var, dtype=torch.float64)
    beta = bn.bias.detach().double() if bn.affine else torch.zeros_like(gamma)
    scale = gamma / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = beta - bn.running_mean.double() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.detach().double() * scale
    w = conv.weight.detach()
    weight = torch.mul(
        w, scale.to(dtype).reshape(-1, *([1] * (w.dim() - 1))), out=torch.empty_like(w, memory_format=memory_format)
    )
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        cast(tuple[int, int], conv.kernel_size),
        stride=cast(tuple[int, int], conv.stride),
        padding=cast(Any, conv.padding),
        dilation=cast(tuple[int, int], conv.dilation),
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device="meta",
    )
    fused.weight = nn.Parameter(weight, requires_grad=False)
    fused.bias = nn.Parameter(bias.to(dtype), requires_grad=False)
    return fused


_Fold = Callable[[nn.Conv2d, nn.BatchNorm2d], nn.Conv2d]


class _InferenceOnly(nn.Module):
    """Base of the fused blocks: switching one to training mode is an error."""

    def train(self, mode: bool = True) -> _InferenceOnly:
        if mode:
            raise RuntimeError(_TRAIN_ERROR.format(name=type(self).__name__))
        return super().train(False)


class ConvAct(_InferenceOnly):
    """A BatchNorm-folded convolution, optionally followed by a ReLU.

    With ``onednn`` (CPU, float32) it runs as one oneDNN kernel, ``mkldnn::_convolution_pointwise``
    (the kernel PyTorch's inductor emits): the ReLU is a post-op instead of a pass over the output, and
    the weights are reordered once into oneDNN's blocked layout instead of on every call (this copy
    is a cache beside ``conv.weight``, dropped on pickling and device moves, re-made on demand).
    Otherwise, and for inputs on other devices, it is ``conv`` then an in-place ``relu_``.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool, onednn: bool = False) -> None:
        super().__init__()
        self.conv = conv
        self.relu = relu
        self.onednn = onednn
        self.out_dtype: torch.dtype | None = None  # cast the output to this (a float32 stem in a bf16 model)
        self._packed: tuple[tuple[int, ...], torch.Tensor] | None = None

    def packed_weight(self, input_size: list[int]) -> torch.Tensor:
        """``conv.weight`` in the oneDNN layout for inputs of ``input_size``; re-packed when that size
        or the weight changes (a layout packed without the size can be 50x slower for some shapes)."""
        w, c = self.conv.weight, self.conv
        # inference tensors (weights made under torch.inference_mode) have no version counter
        key = (w.data_ptr(), -1 if w.is_inference() else w._version, *input_size)
        if self._packed is None or self._packed[0] != key:
            with torch.no_grad():
                packed = torch.ops.mkldnn._reorder_convolution_weight(
                    w.detach(), list(c.padding), list(c.stride), list(c.dilation), c.groups, input_size
                )
            self._packed = (key, packed)
        return self._packed[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._forward(x.to(self.conv.weight.dtype))
        return x if self.out_dtype is None else x.to(self.out_dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if self.onednn and x.device.type == "cpu" and x.dtype in _ONEDNN_DTYPES and not _exporting():
            return torch.ops.mkldnn._convolution_pointwise(
                x,
                self.packed_weight(list(x.shape)),
                c.bias,
                c.padding,
                c.stride,
                c.dilation,
                c.groups,
                "relu" if self.relu else "none",
                [],
                "",
            )
        x = c(x)
        if not self.relu:
            return x
        return torch.relu(x) if _exporting() else x.relu_()

    def _apply(self, fn: Callable, recurse: bool = True) -> ConvAct:
        self._packed = None
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict[str, Any]:
        return dict(super().__getstate__(), _packed=None)

    def extra_repr(self) -> str:
        dtype = "" if self.conv.weight.dtype == torch.float32 else f", dtype={self.conv.weight.dtype}"
        return f"relu={self.relu}, onednn={self.onednn}{dtype}"


_ONEDNN_DTYPES = (torch.float32, torch.bfloat16)


_INPLACE_GATES: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.Sigmoid: torch.Tensor.sigmoid_,
    nn.Tanh: torch.Tensor.tanh_,
    nn.ReLU: torch.Tensor.relu_,
}
_GATES: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.Sigmoid: torch.sigmoid,
    nn.Tanh: torch.tanh,
    nn.ReLU: torch.relu,
}


def _as_linear(conv: nn.Conv2d) -> nn.Linear:
    """The 1×1 convolution on a N×C×1×1 vector as a ``Linear`` on N×C (a copy of the weights)."""
    linear = nn.Linear(conv.in_channels, conv.out_channels, bias=conv.bias is not None, device="meta")
    linear.weight = nn.Parameter(conv.weight.detach().flatten(1).clone(), requires_grad=False)
    if conv.bias is not None:
        linear.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
    return linear


def _spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """``x.mean((2, 3))`` as N×C. On CPU, for channels_last maps, a matmul with a 1/HW row instead:
    the reduction over the strided spatial axes runs far below memory bandwidth there, BLAS does not."""
    n, c, h, w = x.shape
    if x.device.type != "cpu" or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return x.mean((2, 3))
    rows = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
    return torch.matmul(x.new_full((1, h * w), 1.0 / (h * w)), rows).squeeze(1)


class FusedSE(_InferenceOnly):
    """The excitation of an :class:`SEModule` computed lean: matmuls on N×C, activations in place."""

    def __init__(self, se: SEModule) -> None:
        super().__init__()
        self.squeeze = se.squeeze
        pointwise = se.squeeze == "none"  # NoSqueeze: the excitation runs on the full map
        self.fc1 = copy.deepcopy(se.fc1) if pointwise else _as_linear(se.fc1)
        self.fc2 = copy.deepcopy(se.fc2) if pointwise else _as_linear(se.fc2)
        self._gate = _INPLACE_GATES[type(se.gate)]
        self._gate_exported = _GATES[type(se.gate)]

    def excite(self, s: torch.Tensor) -> torch.Tensor:
        """The gate from the squeezed N×C vector (from the N×C×H×W map for NoSqueeze), computed in the
        weights' precision (float32 in a bfloat16 model) and returned in the input's."""
        dtype = s.dtype
        s = s.to(self.fc1.weight.dtype)
        if _exporting():  # out of place (NoSqueeze's 1×1 convolutions on the map)
            return self._gate_exported(self.fc2(torch.relu(self.fc1(s)))).to(dtype)
        return self._gate(self.fc2(self.fc1(s).relu_())).to(dtype)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """N×C×1×1 (N×C×H×W for NoSqueeze) gate, broadcastable against ``x``."""
        if self.squeeze == "none":
            return self.excite(x)
        if _exporting():
            return self._excite_pooled(x)
        return self.excite(_squeeze(x, self.squeeze))[:, :, None, None]

    def _excite_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The exported excitation: ``GlobalAveragePool → Conv → Relu → Conv → Sigmoid`` on N×C×1×1, as
        timm's export has it: ONNX Runtime keeps that chain in its blocked (NCHWc) layout, where the
        ``Gemm`` on a flattened N×C vector needs reorders (measured in benchmarks/inference.py --peers)."""
        dtype = x.dtype
        pooled = F.adaptive_avg_pool2d(x, 1) if self.squeeze == "avg" else F.adaptive_max_pool2d(x, 1)
        pooled = pooled.to(self.fc1.weight.dtype)
        h = torch.relu(F.conv2d(pooled, self.fc1.weight[:, :, None, None], self.fc1.bias))
        return self._gate_exported(F.conv2d(h, self.fc2.weight[:, :, None, None], self.fc2.bias)).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def _squeeze(x: torch.Tensor, how: str) -> torch.Tensor:
    """Global average or max pooling to N×C."""
    return _spatial_mean(x) if how == "avg" else x.amax((2, 3))


class FusedBottleneck(_InferenceOnly):
    """:class:`SEBottleneck` with folded BatchNorm; SE scale + residual add in one in-place ``addcmul``.

    With the average squeeze, the gate is computed from the input of the last 1×1 convolution when
    that reads less memory than its output: ``mean(conv3(h)) = W3 · mean(h) + b3`` (a 1×1
    convolution is linear per position), so the squeeze reads the map with a quarter of the channels.
    """

    def __init__(self, block: SEBottleneck, fold: _Fold) -> None:
        super().__init__()
        self.conv1 = ConvAct(fold(block.conv1, block.bn1), relu=True)
        self.conv2 = ConvAct(fold(block.conv2, block.bn2), relu=True)
        self.conv3 = ConvAct(fold(block.conv3, block.bn3), relu=False)
        self.downsample = None if block.downsample is None else _fuse(block.downsample, fold)
        assert block.se_module is not None  # _fuse sends only standard SE blocks here
        self.se = FusedSE(block.se_module)

    def _early_gate(self, h: torch.Tensor) -> torch.Tensor | None:
        """The SE gate from ``h``, the last convolution's input, where that is cheaper; else ``None``.

        Squeezing the output reads N·HW·C values; squeezing ``h`` reads N·HW·C/4 plus the C×C/4 weight.
        """
        c = self.conv3.conv
        if self.se.squeeze != "avg" or c.kernel_size != (1, 1) or c.stride != (1, 1) or c.padding != (0, 0):
            return None
        n, _, hh, ww = h.shape
        if n * hh * ww * (c.out_channels - c.in_channels) <= c.out_channels * c.in_channels:
            return None
        dtype = self.se.fc1.weight.dtype  # float32 in a bfloat16 model: the excitation's precision
        bias = None if c.bias is None else c.bias.to(dtype)
        s = F.linear(_spatial_mean(h).to(dtype), c.weight.flatten(1).to(dtype), bias)
        return self.se.excite(s).to(h.dtype)[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        if _exporting():
            out = self.conv3(self.conv2(self.conv1(x)))
            return torch.relu(out * self.se.gate(out) + shortcut)
        h = self.conv2(self.conv1(x))
        gate = self._early_gate(h)
        out = self.conv3(h)
        if gate is None:
            gate = self.se.gate(out)
        # out = shortcut + out * gate, written over `out` (x may still be needed by the caller)
        torch.addcmul(shortcut.to(out.dtype), out, gate, out=out)
        return out.relu_()


class FusedInceptionBlock(_InferenceOnly):
    """:class:`InceptionBlock` with folded BatchNorm and the SE scale applied in place on the concat."""

    def __init__(self, block: InceptionBlock, fold: _Fold) -> None:
        super().__init__()
        self.branch1x1 = None if block.branch1x1 is None else _fold_conv_bn_relu(block.branch1x1, fold)
        self.branch3x3_reduce = _fold_conv_bn_relu(block.branch3x3_reduce, fold)
        self.branch3x3 = _fold_conv_bn_relu(block.branch3x3, fold)
        self.double3x3_reduce = _fold_conv_bn_relu(block.double3x3_reduce, fold)
        self.double3x3a = _fold_conv_bn_relu(block.double3x3a, fold)
        self.double3x3b = _fold_conv_bn_relu(block.double3x3b, fold)
        self.pool = copy.deepcopy(block.pool)
        self.pool_proj = None if block.pool_proj is None else _fold_conv_bn_relu(block.pool_proj, fold)
        self.se = FusedSE(block.se)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = concat_branches(self, x)
        return out * self.se.gate(out) if _exporting() else out.mul_(self.se.gate(out))


def _fold_conv_bn_relu(m: ConvBnReLU, fold: _Fold) -> ConvAct:
    return ConvAct(fold(m.conv, m.bn), relu=True)


def _fold_conv_norm_act(m: ConvNormAct, fold: _Fold) -> nn.Module | None:
    """timm's ConvNormAct (the Inception families' conv → BN → ReLU) as a :class:`ConvAct`; None if not plain."""
    bn, aa = m.bn, getattr(m, "aa", None)
    plain = (
        isinstance(bn, BatchNormAct2d)
        and isinstance(bn.drop, nn.Identity)
        and (aa is None or isinstance(aa, nn.Identity))
    )
    if not plain or not isinstance(bn.act, (nn.ReLU, nn.Identity)):
        return None
    return ConvAct(fold(m.conv, bn), relu=isinstance(bn.act, nn.ReLU))


def _fold_bottleneck(block: SEBottleneck, fold: _Fold) -> nn.Module:
    """An :class:`SEBottleneck` ablation (``se_position`` other than standard, or no SE) with BN folded.

    A copy of the block whose convolutions carry their BatchNorm (now ``Identity``) and whose SE block is
    fused: its own forward then computes the same function.
    """
    clone = copy.copy(block)
    modules = {name: None if child is None else _fuse(child, fold) for name, child in block._modules.items()}
    for i, conv, bn in ((1, block.conv1, block.bn1), (2, block.conv2, block.bn2), (3, block.conv3, block.bn3)):
        modules[f"conv{i}"], modules[f"bn{i}"] = fold(conv, bn), nn.Identity()
    clone._modules = modules
    return clone


def _fold_sequential(seq: nn.Sequential, fold: _Fold) -> nn.Sequential:
    """Fold each Conv2d→BatchNorm2d(→ReLU) run of a Sequential into a :class:`ConvAct`; keep the rest."""
    mods = list(seq.named_children())
    out: list[tuple[str, nn.Module]] = []
    i = 0
    while i < len(mods):
        name, m = mods[i]
        nxt = mods[i + 1][1] if i + 1 < len(mods) else None
        if isinstance(m, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            relu = i + 2 < len(mods) and isinstance(mods[i + 2][1], nn.ReLU)
            out.append((name, ConvAct(fold(m, nxt), relu=relu)))
            i += 3 if relu else 2
        else:
            out.append((name, _fuse(m, fold)))
            i += 1
    return nn.Sequential(OrderedDict(out))


def _fuse(module: nn.Module, fold: _Fold) -> nn.Module:
    """The fused counterpart of ``module``, sharing no module or tensor with it (so that training the
    source later leaves the fused model alone); containers are rebuilt with their children fused."""
    if isinstance(module, SEBottleneck):
        if module.se_module is not None and module.se_position == "standard":
            return FusedBottleneck(module, fold)
        return _fold_bottleneck(module, fold)
    if isinstance(module, InceptionBlock):
        return FusedInceptionBlock(module, fold)
    if isinstance(module, ConvBnReLU):
        return _fold_conv_bn_relu(module, fold)
    if isinstance(module, ConvNormAct) and (folded := _fold_conv_norm_act(module, fold)) is not None:
        return folded
    if isinstance(module, SEModule):
        return FusedSE(module)
    if isinstance(module, nn.Sequential):
        return _fold_sequential(module, fold)
    if not module._modules:
        return copy.deepcopy(module)
    # Any other container (SENet, SEBNInception, timm's FeatureListNet): a copy whose children are fused.
    clone = copy.copy(module)
    clone._modules = {name: None if child is None else _fuse(child, fold) for name, child in module._modules.items()}
    # A module whose convolutions and BatchNorms are direct children names each pair in ``bn_fold_pairs``
    # (SE-MobileNet's stem and blocks, SE-ShuffleNet's units): the convolution is folded into a
    # :class:`ConvAct` (so that the oneDNN and reduced-precision paths cover it), the BatchNorm becomes
    # an Identity.
    for conv_name, bn_name in getattr(module, "bn_fold_pairs", ()):
        conv, bn = module.get_submodule(conv_name), module.get_submodule(bn_name)
        clone._modules[conv_name] = ConvAct(fold(cast(nn.Conv2d, conv), cast(nn.BatchNorm2d, bn)), relu=False)
        clone._modules[bn_name] = nn.Identity()
    clone._parameters = copy.deepcopy(module._parameters)
    clone._buffers = copy.deepcopy(module._buffers)
    return clone


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_KEEP_FREED_BYTES = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB of freed memory at the heap top
_reusing_freed_memory = False


def reuse_freed_memory() -> bool:
    """Let glibc reuse freed memory for the next forward instead of returning it to the system.

    glibc serves large blocks (activations) with ``mmap`` and unmaps them on ``free``: every
    forward then page-faults its activations in again (at batch 16 on SE-ResNet-50 ~110 000 faults,
    ~20 % of the time on a 2-core CPU). This asks glibc's ``mallopt`` to serve every block from its
    heap and to keep up to 2 GiB of freed memory there, as ONNX Runtime's memory arena keeps its own.
    Process-wide and permanent: the process's resident memory stays at its peak. Returns whether
    it is in effect (``False`` off Linux/glibc). Called by :func:`optimize_for_inference` for CPU
    models only with ``reuse_memory=True`` (opt-in: a library call does not change the allocator).
    """
    global _reusing_freed_memory
    if _reusing_freed_memory:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # glibc; musl and others have no mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES) != 1 or mallopt(_M_MMAP_MAX, 0) != 1:
        return False
    _logger.info("glibc malloc: large blocks from the heap, freed memory kept for reuse (reuse_freed_memory)")
    _reusing_freed_memory = True
    return True


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_PRECISION_NAMES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


class _CastInput(_InferenceOnly):
    """Runs ``module`` (kept in float32) on its input cast to the module's precision: the classifier
    and any layer the fusion does not know, inside a reduced-precision model."""

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.module = module
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.to(self.dtype))


def _reduce_precision(
    fused: nn.Module, dtype: torch.dtype, onednn: bool, float32_stem: bool = True, float32_excitation: bool = True
) -> nn.Module | None:
    """Convert the fused model's convolutions to ``dtype`` (weights converted once, here), keeping in
    float32 what the fidelity measurements (scripts/inference_fidelity.py) show must stay there:

    * the stem, the first convolution (it sees the image; its output is cast to ``dtype``),
    * the SE excitation (squeezed vector → gate; a few hundred FLOPs per channel),
    * every other layer with parameters, the classifier among them (they take their input cast back).

    Activations between convolutions, the SE scale and the residual sums run in ``dtype``.
    ``float32_stem`` / ``float32_excitation`` off convert those too (the script's ablation).
    ``None`` (``fused`` untouched) where the fusion found no convolution to convert.
    """
    convs = [m for m in fused.modules() if isinstance(m, ConvAct)]
    if len(convs) < 2:  # nothing but a stem: no fused convolution would run in ``dtype``
        return None
    for i, m in enumerate(convs):
        if i == 0 and float32_stem:
            m.out_dtype = dtype
            continue
        c = m.conv
        c.weight = nn.Parameter(c.weight.detach().to(dtype), requires_grad=False)  # keeps its memory format
        if not onednn and c.bias is not None:  # oneDNN takes a float32 bias beside bfloat16 weights
            c.bias = nn.Parameter(c.bias.detach().to(dtype), requires_grad=False)

    if not float32_excitation:
        for se in fused.modules():
            if isinstance(se, FusedSE):
                se.to(dtype)

    def wrap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, (ConvAct, FusedSE)):
                continue
            if any(True for _ in child.parameters(recurse=False)):
                setattr(module, name, _CastInput(child, torch.float32))
            else:
                wrap(child)

    wrap(fused)
    return fused


def _bf16_supported(device: torch.device) -> str | None:
    """``None`` if ``device`` runs bfloat16 convolutions natively, else why not."""
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else f"{torch.cuda.get_device_name(device)} has no bfloat16"
    if device.type != "cpu":
        return f"no bfloat16 fast path on {device.type}"
    if not _onednn_available():
        return "PyTorch is built without oneDNN (torch.backends.mkldnn)"
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None and not check():
        return (
            f"this CPU has no native bfloat16 instructions (AVX512-BF16 or AMX; PyTorch's CPU capability: "
            f"{torch.backends.cpu.get_cpu_capability()}): emulated bfloat16 is slower than float32"
        )
    return None


def _use_onednn(onednn: bool | None, compile: bool) -> bool:
    if onednn is None:
        return _onednn_available() and not compile  # under compile, inductor packs and fuses itself
    if onednn and (compile or not _onednn_available()):
        raise ValueError("onednn=True needs PyTorch built with oneDNN (torch.backends.mkldnn) and compile=False")
    return onednn


def _runnable_precision(precision: str, device: torch.device) -> str:
    """``precision`` where ``device`` runs it natively; ``"bf16"`` falls back to ``"fp32"`` with a warning."""
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' is for CUDA; on CPU use 'bf16'")
    if precision == "bf16":
        why_not = _bf16_supported(device)
        if why_not is not None:
            _logger.warning("optimize_for_inference(precision='bf16'): %s; running in float32 instead", why_not)
            return "fp32"
    return precision


def _onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def _prefers_channels_last(device: torch.device) -> bool:
    """channels_last pays on CPU (oneDNN runs NHWC without reorders; measured, see benchmarks/README.md)
    and on CUDA (cuDNN's NHWC tensor-core kernels)."""
    return device.type in ("cpu", "cuda")


def _already_fused(model: InferenceModel, precision: str) -> InferenceModel:
    if model.precision != precision:
        raise ValueError(f"{type(model).__name__} is already fused at {model.precision}; fuse the source model")
    return model


class InferenceModel(nn.Module):
    """An eval-only model produced by :func:`optimize_for_inference`; ``train()`` raises.

    ``forward`` runs under :func:`torch.inference_mode` (outputs carry no autograd history) and, if
    ``channels_last``, converts 4-D inputs to that memory format. ``pretrained_cfg`` is the source model's.
    """

    def __init__(self, model: nn.Module, channels_last: bool, compiled: bool, precision: str = "fp32") -> None:
        super().__init__()
        self.model = model
        self.channels_last = channels_last
        self.compiled = compiled
        self.precision = precision
        self._run: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model) if compiled else model
        for attr in ("pretrained_cfg", "default_cfg", "num_classes", "feature_info"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))
        super().train(False)

    def train(self, mode: bool = True) -> InferenceModel:
        if mode:
            raise RuntimeError(_TRAIN_ERROR.format(name=type(self).__name__))
        return super().train(False)

    def _call(self, fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Any:
        if self.training or self.model.training:  # set behind train()'s back; fused blocks refuse train()
            raise RuntimeError(_TRAIN_ERROR.format(name=type(self).__name__) + " (it is in training mode)")
        with torch.inference_mode():
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            out = fn(x)
        if self.precision == "fp32":
            return out
        # reduced precision inside, float32 outputs (as the source model's)
        return [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()

    def forward(self, x: torch.Tensor) -> Any:
        return self._call(self._run, x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The source model's ``forward_features``, fused (not compiled)."""
        return self._call(cast(Callable[[torch.Tensor], torch.Tensor], self.model.forward_features), x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The source model's ``forward_head``, fused (not compiled)."""
        head = cast(Callable[..., torch.Tensor], self.model.forward_head)
        return self._call(functools.partial(head, pre_logits=pre_logits), x)

    def extra_repr(self) -> str:
        return f"channels_last={self.channels_last}, compiled={self.compiled}, precision={self.precision}"


def optimize_for_inference(
    model: nn.Module,
    *,
    channels_last: bool | None = None,
    onednn: bool | None = None,
    compile: bool = False,
    precision: str = "fp32",
    reuse_memory: bool = False,
) -> InferenceModel:
    """An eval-only, faster copy of ``model`` (any senet_zoo model, also ``features_only``).

    Args:
        model: a senet_zoo model in eval mode (call ``model.eval()`` first). It is left untouched and
            shares no tensor with the result, so it can go on training. An :class:`InferenceModel`
            is returned as it is.
        channels_last: keep activations in ``channels_last``; ``None``: on CPU and CUDA.
        onednn: on CPU, run convolution+ReLU as one oneDNN kernel with packed weights (a second copy of
            the convolution weights, made on the first call per input size); ``None``: when PyTorch has
            oneDNN and ``compile`` is off.
        compile: run the fused model through :func:`torch.compile` (off by default: on a 2-core CPU
            the first call takes over a minute per input shape).
        precision: ``"fp32"`` (default: the unfused model's logits to float rounding, ~1e-5),
            ``"bf16"`` (CPU with AVX512-BF16 or AMX, or CUDA: convolutions, activations, SE scale and
            residual sums in bfloat16; stem, SE excitation and classifier in float32; logits within
            ~1e-2 relative, measured per model by scripts/inference_fidelity.py) or ``"fp16"`` (CUDA
            only). Outputs are float32 either way. Where bfloat16 is not native (a CPU without
            AVX512-BF16/AMX), ``"bf16"`` logs a warning saying why and stays in float32.
        reuse_memory: opt-in, for a CPU model: call :func:`reuse_freed_memory` (process-wide and
            permanent: glibc keeps freed activation memory for the next call instead of unmapping it;
            measured 1.0–1.2× at batch 16, see benchmarks/README.md). Off by default: a library call
            does not change the process's allocator.

    Raises:
        RuntimeError: ``model`` is in training mode.
        ValueError: a BatchNorm could not be folded (the model is not a senet_zoo architecture), the
            model is on the meta device, ``onednn`` was asked for where it cannot be used, or
            ``precision`` is unknown (or ``"fp16"`` off CUDA).
    """
    precision = _PRECISION_NAMES.get(precision, precision)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    if isinstance(model, InferenceModel):
        return _already_fused(model, precision)
    if model.training:
        raise RuntimeError(
            f"optimize_for_inference() needs {type(model).__name__} in eval mode: "
            "folding BatchNorm uses its running statistics; call model.eval() first"
        )
    params = [*model.parameters(), *model.buffers()]
    if any(t.is_meta for t in params):
        raise ValueError(f"{type(model).__name__} has tensors on the meta device; load its weights first")
    device = params[0].device if params else torch.device("cpu")
    precision = _runnable_precision(precision, device)
    if channels_last is None:
        channels_last = _prefers_channels_last(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    fused = _fuse(model, functools.partial(fold_bn, memory_format=memory_format)).eval().requires_grad_(False)
    left = [name for name, m in fused.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ValueError(
            f"cannot fold BatchNorm {left[0]!r} of {type(model).__name__}: "
            "it does not follow a convolution in a known senet_zoo block"
        )
    if channels_last:  # the folded weights already are; this converts the rest (NoSqueeze SE convolutions)
        fused = fused.to(memory_format=torch.channels_last)
    onednn = _use_onednn(onednn, compile)
    for m in fused.modules():
        if isinstance(m, ConvAct):
            m.onednn = onednn
    if precision != "fp32":
        reduced = _reduce_precision(fused, PRECISIONS[precision], onednn=onednn and device.type == "cpu")
        if reduced is None:
            _logger.warning(
                "optimize_for_inference(precision=%r): %s has no convolution the fusion runs in reduced "
                "precision; running in float32 instead",
                precision,
                type(model).__name__,
            )
            precision = "fp32"
        else:
            fused = reduced
    reusing = reuse_memory and device.type == "cpu" and reuse_freed_memory()
    _logger.info(
        "fused %s for inference (channels_last=%s, onednn=%s, compile=%s, precision=%s, reuse_memory=%s)",
        type(model).__name__,
        channels_last,
        onednn,
        compile,
        precision,
        reusing,
    )
    return InferenceModel(fused, channels_last=channels_last, compiled=compile, precision=precision)
