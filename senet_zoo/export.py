"""ONNX export of any senet_zoo model, verified with ONNX Runtime before a byte is written.

The exported graph is the inference graph of :func:`senet_zoo.optimize_for_inference`: BatchNorm
folded into the convolutions, the excitation as ``GlobalAveragePool → Conv → Relu → Conv → Sigmoid``
on N×C×1×1 (as timm's export: ONNX Runtime keeps it in its blocked layout), the SE scale, residual
add and ReLU as ``Mul → Add → Relu`` (ONNX has no fused operator for them; ONNX Runtime fuses what
it can). The batch dimension is dynamic by default.

The file carries what a user of the weights needs in its metadata (``metadata_props``): the weights'
preprocessing (mean, std, input size, crop, interpolation), the class names, the architecture and
weights tag, and the verification result. Before writing, ONNX Runtime runs the graph on random
images at two batch sizes and its outputs are compared with the PyTorch model run in float64; the
export is refused above ``tolerance`` (max |difference| / max |output|, default 1e-4). The file is
written atomically (temporary sibling, fsync, rename).

Needs ``onnx`` and ``onnxruntime``: ``pip install 'senet-zoo[export]'``.

:func:`export_openvino` converts the same graph to OpenVINO IR (``openvino.convert_model``), with the
same metadata in its ``rt_info``, verified with OpenVINO's CPU plugin at float32 or bfloat16
(``pip install 'senet-zoo[openvino]'``).
"""

from __future__ import annotations

import copy
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from timm.models.vgg import ConvMlp
from torch import nn

from ._files import atomic_open, atomic_path
from ._log import get_logger
from ._version import __version__
from .inference import InferenceModel, optimize_for_inference

__all__ = [
    "export_onnx",
    "export_openvino",
    "read_openvino_metadata",
    "ExportReport",
    "ExportError",
    "DEFAULT_OPSET",
    "TOLERANCE",
    "BF16_TOLERANCE",
    "onnx_metadata",
]

_logger = get_logger(__name__)

DEFAULT_OPSET = 17
TOLERANCE = 1e-4
INPUT_NAME = "input"
_PROTOBUF_LIMIT = 2**31 - 1


class ExportError(RuntimeError):
    """The export failed or ONNX Runtime's outputs differ from the PyTorch model's beyond the tolerance."""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` (:func:`export_openvino`) wrote and how well ONNX Runtime (OpenVINO)
    reproduces the PyTorch model."""

    path: Path
    opset: int
    dynamic_batch: bool
    input_size: tuple[int, int, int]
    output_names: tuple[str, ...]
    max_abs_diff: float
    max_rel_diff: float
    tolerance: float
    checks: list[dict[str, Any]] = field(default_factory=list)
    bytes: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    runtime: str = "ONNX Runtime"

    def summary(self) -> str:
        batches = ", ".join(str(c["batch"]) for c in self.checks)
        return (
            f"{self.path} ({self.bytes / 2**20:.1f} MiB, opset {self.opset}, "
            f"{'dynamic' if self.dynamic_batch else 'fixed'} batch): {self.runtime} vs PyTorch (float64) at "
            f"batch {batches}, {self.input_size[1]}×{self.input_size[2]}: max abs diff {self.max_abs_diff:.3g}, "
            f"max rel diff {self.max_rel_diff:.3g} (tolerance {self.tolerance:g}; PyTorch float32: "
            f"{max(c['torch_rel'] for c in self.checks):.3g})"
        )


def _require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ExportError(
            f"ONNX export needs onnx and onnxruntime ({err}); install them with: pip install 'senet-zoo[export]'"
        ) from err
    return onnx, onnxruntime


def _cfg(model: nn.Module) -> dict[str, Any]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return dict(cfg) if isinstance(cfg, dict) else {k: v for k, v in vars(cfg).items() if v is not None}


def _labels(cfg: dict[str, Any], num_classes: int) -> tuple[list[str] | None, list[str] | None]:
    """Class names (and descriptions) of the outputs: the cfg's, else the sorted ImageNet WNIDs that every
    1000-class senet_zoo weight uses (the converter permutes the Caffe classifier into that order)."""
    names, descriptions = cfg.get("label_names"), cfg.get("label_descriptions")
    if names is None and num_classes == 1000:
        from .convert.classes import sorted_wnids, wnid_lemmas

        names = sorted_wnids()
        try:
            descriptions = list(wnid_lemmas(names).values())
        except RuntimeError:  # timm's lemma table missing: names only
            descriptions = None
    if isinstance(descriptions, dict):
        descriptions = [descriptions.get(n, "") for n in names or []]
    if names is not None and len(names) != num_classes:
        raise ExportError(f"{len(names)} label names for a model with {num_classes} outputs")
    return (list(names) if names is not None else None), (list(descriptions) if descriptions is not None else None)


def onnx_metadata(model: nn.Module, input_size: tuple[int, int, int], classifier: bool = True) -> dict[str, str]:
    """The ``metadata_props`` written into the ONNX file: architecture, weights tag, preprocessing, and for
    a ``classifier`` (not a feature extractor) the number of classes and their names."""
    cfg = _cfg(model)
    num_classes = int(getattr(model, "num_classes", cfg.get("num_classes", 0)) or 0) if classifier else 0
    preprocessing = {
        "mean": list(cfg.get("mean", ())),
        "std": list(cfg.get("std", ())),
        "input_size": list(cfg.get("input_size", input_size)),
        "crop_pct": cfg.get("crop_pct"),
        "crop_mode": cfg.get("crop_mode", "center"),
        "interpolation": cfg.get("interpolation"),
        "color_order": "RGB",
        "scale": "divide by 255, then subtract mean and divide by std",
    }
    meta = {
        "senet_zoo.version": __version__,
        "architecture": str(cfg.get("architecture", type(model).__name__)),
        "weights_tag": str(cfg.get("tag", "")),
        "num_classes": str(num_classes),
        "preprocessing": json.dumps(preprocessing),
        "graph": "senet_zoo.optimize_for_inference: BatchNorm folded, SE as GlobalAveragePool+1x1 Conv",
    }
    names, descriptions = _labels(cfg, num_classes) if num_classes else (None, None)
    if names is not None:
        meta["label_names"] = json.dumps(names)
    if descriptions is not None:
        meta["label_descriptions"] = json.dumps(descriptions, ensure_ascii=False)
    return meta


def _outputs(fused: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        out = fused(x)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _onnx_outputs(model: nn.Module, fused: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """``fused``'s outputs on ``x``, refusing (in one line) an input too small for an ONNX graph.

    timm's ``ConvMlp`` (VGG's fc6/fc7 as convolutions) pools a feature map smaller than its kernel up
    to the kernel size with adaptive average pooling, which ONNX cannot express (the exporter needs an
    output size that divides the input size): the graph then needs feature maps of at least that size.
    """
    seen: list[tuple[str, int, int, int]] = []
    hooks = [
        m.register_forward_pre_hook(
            lambda _m, args, name=name, k=m.input_kernel_size: seen.append((name, k, *args[0].shape[-2:]))
        )
        for name, m in fused.named_modules()
        if isinstance(m, ConvMlp)
    ]
    try:
        out = _outputs(fused, x)
    finally:
        for handle in hooks:
            handle.remove()
    info = getattr(model, "feature_info", None)
    for name, k, h, w in seen:
        if h < k or w < k:
            # the feature map's stride: the last feature tap's reduction (timm's feature_info), else estimated
            stride = info[-1]["reduction"] if isinstance(info, list) and info else x.shape[-2] // max(h, 1)
            side = k * stride
            raise ValueError(
                f"{type(model).__name__} cannot be exported to ONNX at {x.shape[-2]}×{x.shape[-1]}: its {name} "
                f"(timm's ConvMlp) gets a {h}×{w} feature map and pools it up to {k}×{k}, which ONNX cannot "
                f"express; the smallest input is {side}×{side} (input_size=(C, {side}, {side}))"
            )
    return out


def _export_bytes(fused: nn.Module, x: torch.Tensor, output_names: list[str], opset: int, dynamic_batch: bool) -> bytes:
    """Trace ``fused`` with TorchScript-based ``torch.onnx.export`` (no onnxscript needed; predictable for
    this plain convolutional graph)."""
    buf = io.BytesIO()
    axes = {name: {0: "batch"} for name in (INPUT_NAME, *output_names)} if dynamic_batch else None
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        torch.onnx.export(
            fused,
            (x,),
            buf,  # type: ignore[arg-type]  # a file object is accepted too
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=output_names,
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    for w in caught:
        _logger.debug("torch.onnx.export: %s", w.message)
    return buf.getvalue()


def _session(onnxruntime: Any, data: bytes) -> Any:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _verify(
    session: Any,
    reference: nn.Module,
    reference64: nn.Module,
    cfg: dict[str, Any],
    input_size: tuple[int, int, int],
    batches: tuple[int, ...],
) -> list[dict[str, Any]]:
    """ONNX Runtime (float32) vs ``reference64`` (the model in float64) on random images normalised with
    ``cfg``; beside it, how far the float32 PyTorch ``reference`` itself is from float64 (``torch_rel``:
    the float32 floor no float32 runtime can be expected to beat)."""
    import numpy as np

    from .convert.verify import model_input, random_images

    c, h, w = input_size
    mean, std = list(cfg.get("mean") or (0.5,) * 3), list(cfg.get("std") or (0.5,) * 3)
    if len(mean) != c:  # in_chans adapted: one mean/std per channel from the RGB ones
        mean, std = [sum(mean) / len(mean)] * c, [sum(std) / len(std)] * c
    checks = []
    for i, batch in enumerate(batches):
        rgb = random_images(batch, max(h, w), seed=1000 + i)[:, :, :h, :w]
        if c != 3:
            rgb = np.repeat(rgb.mean(axis=1, keepdims=True), c, axis=1)
        x = model_input(np.ascontiguousarray(rgb), {"mean": mean, "std": std})
        got = session.run(None, {INPUT_NAME: x.numpy()})
        with torch.no_grad():
            want = _outputs(reference64, x.double())
            own = _outputs(reference, x)
        if len(got) != len(want):
            raise ExportError(f"ONNX Runtime returned {len(got)} outputs, PyTorch {len(want)}")
        for j, (g, r, t) in enumerate(zip(got, want, own)):
            g = torch.from_numpy(g).double()
            if g.shape != r.shape:
                raise ExportError(
                    f"output {j} at batch {batch}: ONNX Runtime {tuple(g.shape)}, PyTorch {tuple(r.shape)}"
                )
            max_abs = float((g - r).abs().max())
            scale = float(r.abs().max()) or 1.0
            torch_rel = float((t.double() - r).abs().max()) / scale
            checks.append(dict(batch=batch, output=j, max_abs=max_abs, max_rel=max_abs / scale, torch_rel=torch_rel))
    return checks


def _fused_for_export(model: nn.Module, caller: str) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(``model`` on the CPU, the float32 fused graph to trace, the float32 model to compare with)."""
    if any(t.device.type != "cpu" for t in model.parameters()):  # traced and checked on the CPU
        model = copy.deepcopy(model).cpu()
    if isinstance(model, InferenceModel):
        if model.precision != "fp32":
            raise ValueError(
                f"{caller}() traces the float32 graph: pass the source model, not one fused at {model.precision}"
            )
        return model, model.model, model.model
    if model.training:
        raise RuntimeError(f"{caller}() needs {type(model).__name__} in eval mode; call model.eval() first")
    return model, optimize_for_inference(model, channels_last=False, onednn=False).model, model


def _verification(runtime: str, tolerance: float, checks: list[dict[str, Any]]) -> str:
    """The ``verification`` metadata entry: which runtime was checked, against what, and how closely."""
    return json.dumps(dict(runtime=runtime, reference="PyTorch float64", tolerance=tolerance, checks=checks))


@dataclass
class _Traced:
    """What both exporters trace and verify: the model, its fused graph, the traced input and outputs."""

    model: nn.Module  # the source model, on the CPU
    fused: nn.Module  # the float32 graph to trace
    reference: nn.Module  # the float32 model to compare with
    cfg: dict[str, Any]
    input_size: tuple[int, int, int]
    x: torch.Tensor
    output_names: list[str]
    batches: tuple[int, ...]  # the batch sizes verified

    @classmethod
    def of(cls, model: nn.Module, caller: str, input_size: Any, dynamic_batch: bool, batch_size: int) -> _Traced:
        model, fused, reference = _fused_for_export(model, caller)
        cfg = _cfg(model)
        input_size = tuple(input_size or cfg.get("input_size") or (3, 224, 224))
        if len(input_size) != 3:
            raise ValueError(f"input_size must be (C, H, W), got {input_size}")
        trace_batch = 2 if dynamic_batch else batch_size  # not 1: a traced size 1 can be mistaken for a broadcast
        x = torch.randn(trace_batch, *input_size, generator=torch.Generator().manual_seed(0))
        n_out = len(_onnx_outputs(model, fused, x))
        output_names = ["output"] if n_out == 1 else [f"output{i}" for i in range(n_out)]
        batches = (1, 3) if dynamic_batch else (batch_size,)
        return cls(model, fused, reference, cfg, input_size, x, output_names, batches)

    def verify(self, session: Any) -> tuple[list[dict[str, Any]], float, float]:
        """:func:`_verify` at ``batches``: the checks, their max abs and max rel diff."""
        ref64 = copy.deepcopy(self.reference).double().eval()
        checks = _verify(session, self.reference, ref64, self.cfg, self.input_size, self.batches)
        return checks, max(c["max_abs"] for c in checks), max(c["max_rel"] for c in checks)

    def report(
        self, path: Path, opset: int, dynamic_batch: bool, tolerance: float, checks: list[dict[str, Any]], **kw: Any
    ) -> ExportReport:
        """The :class:`ExportReport` of a written file (``kw``: ``bytes``, ``metadata``, ``runtime``); logged."""
        report = ExportReport(
            path=path,
            opset=opset,
            dynamic_batch=dynamic_batch,
            input_size=self.input_size,
            output_names=tuple(self.output_names),
            max_abs_diff=max(c["max_abs"] for c in checks),
            max_rel_diff=max(c["max_rel"] for c in checks),
            tolerance=tolerance,
            checks=checks,
            **kw,
        )
        _logger.info("%s", report.summary())
        return report


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    batch_size: int = 1,
    input_size: tuple[int, int, int] | None = None,
    tolerance: float = TOLERANCE,
) -> ExportReport:
    """Export ``model`` (a senet_zoo model in eval mode, or its :func:`optimize_for_inference` result) to
    ONNX at ``path``, verified against ONNX Runtime.

    Args:
        opset: ONNX opset (default 17).
        dynamic_batch: a symbolic batch dimension; otherwise the graph takes exactly ``batch_size``.
        input_size: C×H×W traced and verified; default the model's ``pretrained_cfg["input_size"]``.
        tolerance: the largest accepted max |ORT − PyTorch| / max |PyTorch| over the checks.

    Returns:
        An :class:`ExportReport` (its ``summary()`` is one line). Nothing is written unless the check passes.

    Raises:
        ExportError: onnx/onnxruntime missing, the export failed, or the outputs differ beyond ``tolerance``.
        ValueError: ``input_size`` is malformed or smaller than the graph can take in ONNX (SE-VGG-16:
            224×224, its classifier's 7×7 convolution on the last feature map); the message names the smallest.
        RuntimeError: ``model`` is in training mode.
    """
    onnx, onnxruntime = _require_onnx()
    path = Path(path)
    t = _Traced.of(model, "export_onnx", input_size, dynamic_batch, batch_size)
    model = t.model
    try:
        data = _export_bytes(t.fused, t.x, t.output_names, opset, dynamic_batch)
        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto)
    except Exception as err:  # the exporter raises many kinds; name the model and opset
        raise ExportError(f"exporting {type(model).__name__} to ONNX (opset {opset}) failed: {err}") from err
    meta = onnx_metadata(model, t.input_size, classifier=len(t.output_names) == 1)
    checks, max_abs, max_rel = t.verify(_session(onnxruntime, data))
    if not max_rel <= tolerance:  # also refuses NaN
        floor = max(c["torch_rel"] for c in checks)
        hint = (
            f"; PyTorch's own float32 model is {floor:.3g} from float64 here, so these weights are ill-conditioned "
            "in float32 (untrained?): pass a larger tolerance if that is expected"
            if floor > tolerance / 2
            else ""
        )
        raise ExportError(
            f"{path}: not written: ONNX Runtime's outputs differ from {type(model).__name__}'s (in float64): "
            f"max rel diff {max_rel:.3g} > tolerance {tolerance:g} (max abs diff {max_abs:.3g}){hint}"
        )
    meta["verification"] = _verification(f"onnxruntime {onnxruntime.__version__}", tolerance, checks)
    proto.producer_name, proto.producer_version = "senet-zoo", __version__
    proto.doc_string = f"{meta['architecture']} exported by senet-zoo {__version__}"
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    blob = proto.SerializeToString()
    if len(blob) > _PROTOBUF_LIMIT:
        raise ExportError(f"{path}: the model is {len(blob)} bytes, over ONNX's 2 GiB single-file limit")
    with atomic_open(path, "wb") as fh:
        fh.write(blob)
    return t.report(path, opset, dynamic_batch, tolerance, checks, bytes=len(blob), metadata=meta)


# --------------------------------------------------------------------------------------------- OpenVINO
OPENVINO_PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
BF16_TOLERANCE = 3e-2  # bfloat16 keeps 8 significant bits; measured max rel diffs: scripts/inference_fidelity.py
RT_INFO_SECTION = "senet_zoo"


def _require_openvino() -> Any:
    try:
        import openvino
    except ImportError as err:
        raise ExportError(
            f"OpenVINO export needs openvino ({err}); install it with: pip install 'senet-zoo[openvino]'"
        ) from err
    return openvino


class _OpenVINOSession:
    """A compiled OpenVINO model behind ONNX Runtime's ``run(None, feeds)`` (what :func:`_verify` calls)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled

    def run(self, _outputs: Any, feeds: dict[str, Any]) -> list[Any]:
        result = self.compiled(feeds)
        return [result[out] for out in self.compiled.outputs]


def read_openvino_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The senet-zoo metadata of an OpenVINO IR written by :func:`export_openvino` (the keys of the ONNX
    export's ``metadata_props``, plus ``precision``)."""
    ov = _require_openvino()
    model = ov.Core().read_model(str(path))
    if not model.has_rt_info([RT_INFO_SECTION]):
        raise ExportError(f"{path}: no {RT_INFO_SECTION} metadata (not written by senet-zoo export)")
    section = model.get_rt_info()[RT_INFO_SECTION]
    return {key: section[key].astype(str) for key in section}


def export_openvino(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    precision: str = "fp32",
    dynamic_batch: bool = True,
    batch_size: int = 1,
    input_size: tuple[int, int, int] | None = None,
    tolerance: float | None = None,
) -> ExportReport:
    """Export ``model`` to OpenVINO IR (``path``: the ``.xml``; the ``.bin`` is written beside it), verified
    with OpenVINO's CPU plugin at ``precision`` against the PyTorch model in float64.

    The IR is converted (``openvino.convert_model``) from the same fused ONNX graph :func:`export_onnx`
    writes, with float32 weights, and carries the same metadata in its ``rt_info`` (section
    ``senet_zoo``; read it back with :func:`read_openvino_metadata`) plus the ``precision`` it was
    verified at. ``precision``: ``"fp32"`` (OpenVINO's ``INFERENCE_PRECISION_HINT=f32``, tolerance 1e-4)
    or ``"bf16"`` (OpenVINO's default on CPUs with AVX512-BF16 or AMX; tolerance 3e-2). Where the CPU
    cannot run the asked precision, the verification runs at the one OpenVINO picks and the report and
    metadata say so.

    Needs ``openvino`` (``pip install 'senet-zoo[openvino]'``) and ``onnx`` (``[export]``).
    """
    if precision not in OPENVINO_PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(OPENVINO_PRECISIONS)}, got {precision!r}")
    ov = _require_openvino()
    onnx, _ = _require_onnx()
    tolerance = (TOLERANCE if precision == "fp32" else BF16_TOLERANCE) if tolerance is None else tolerance
    path = Path(path)
    if path.suffix != ".xml":
        raise ValueError(f"{path}: an OpenVINO IR path ends in .xml (the weights go to {path.stem}.bin beside it)")
    t = _Traced.of(model, "export_openvino", input_size, dynamic_batch, batch_size)
    model = t.model
    try:
        data = _export_bytes(t.fused, t.x, t.output_names, DEFAULT_OPSET, dynamic_batch)
        onnx.checker.check_model(onnx.load_from_string(data))
        ov_model = ov.convert_model(io.BytesIO(data))
    except Exception as err:
        raise ExportError(f"converting {type(model).__name__} to OpenVINO failed: {err}") from err
    core = ov.Core()
    config = {
        "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[precision],
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),
    }
    compiled = core.compile_model(ov_model, "CPU", config)
    runs_at = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # an openvino.Type
    if runs_at != OPENVINO_PRECISIONS[precision]:
        _logger.warning("OpenVINO runs this model at %s on this CPU, not %s", runs_at, precision)
    checks, max_abs, max_rel = t.verify(_OpenVINOSession(compiled))
    if not max_rel <= tolerance:
        raise ExportError(
            f"{path}: not written: OpenVINO ({runs_at}) differs from {type(model).__name__} (in float64): "
            f"max rel diff {max_rel:.3g} > tolerance {tolerance:g} (max abs diff {max_abs:.3g})"
        )
    meta = onnx_metadata(model, t.input_size, classifier=len(t.output_names) == 1)
    meta["precision"] = precision
    meta["verification"] = _verification(
        f"openvino {ov.get_version()} CPU, INFERENCE_PRECISION_HINT={runs_at}", tolerance, checks
    )
    for key, value in meta.items():
        ov_model.set_rt_info(value, [RT_INFO_SECTION, key])
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent if path.parent.exists() else None) as tmp:
        staged = Path(tmp) / path.name
        ov.save_model(ov_model, str(staged), compress_to_fp16=False)
        for src, dst in ((staged.with_suffix(".bin"), path.with_suffix(".bin")), (staged, path)):
            with atomic_path(dst) as out:  # the weights first: the .xml appears last, complete
                os.replace(src, out)
    size = path.stat().st_size + path.with_suffix(".bin").stat().st_size
    return t.report(
        path, DEFAULT_OPSET, dynamic_batch, tolerance, checks, bytes=size, metadata=meta, runtime=f"OpenVINO {runs_at}"
    )
