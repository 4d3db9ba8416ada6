"""``senet-zoo export``: a registry model or a converted folder to a verified ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._cli_helpers import add_command

__all__ = ["register", "load_for_export"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "export", _export)
    p.add_argument(
        "model",
        metavar="NAME|RUN|FOLDER|FILE",
        help="registry name (se_resnet50), a fine-tuning run or converted folder, a .safetensors file a run wrote, "
        "or hf-hub:ORG/NAME",
    )
    p.add_argument(
        "--format",
        choices=("onnx", "openvino"),
        default="onnx",
        help="onnx (default) or openvino (IR .xml + .bin, pip install 'senet-zoo[openvino]')",
    )
    p.add_argument("--out", required=True, type=Path, help="output file, e.g. se_resnet50.onnx (.xml for openvino)")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="openvino: the precision the IR is verified at and meant to run at (bf16: OpenVINO's default on "
        "CPUs with AVX512-BF16/AMX; tolerance 3e-2); onnx: fp32 only",
    )
    p.add_argument(
        "--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size the graph is built for"
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")
    p.add_argument(
        "--weights",
        default=None,
        help="for NAME: a weights tag or .safetensors file (default: the default tag); 'random' for untrained "
        "weights (their float32 rounding alone can exceed 1e-4 at 224: raise --tolerance)",
    )
    p.add_argument("--size", type=int, default=None, help="input height and width (default: the weights' 224)")
    p.add_argument("--tolerance", type=float, default=None, help="largest accepted relative difference (1e-4)")


def load_for_export(model: str, weights: str | None = None) -> Any:
    """The model ``senet-zoo export`` exports, in eval mode: weights that name their architecture (a
    fine-tuning run, a converted folder, a file a run wrote, an ``hf-hub:`` id) with their head, labels,
    preprocessing and input size, or a registry name with ``weights``."""
    from .finetune.load import load_model
    from .resolve import HF_HUB_PREFIX, is_path

    if is_path(model) or model.startswith(HF_HUB_PREFIX):
        if weights is not None:
            raise ValueError(f"--weights applies to a registry name; {model} brings its own weights")
        return load_model(None, model)[0].eval()
    if weights == "random":
        return load_model(model, False)[0].eval()
    return load_model(model, weights or True)[0].eval()


def _export(args: argparse.Namespace) -> int:
    """Export a model to ONNX or OpenVINO IR (BatchNorm folded, dynamic batch), verified before writing.

    Export a registry model (with its weights) or a converted folder (model.safetensors + config.json)
    to ONNX (--format onnx, checked with ONNX Runtime) or OpenVINO IR (--format openvino, checked with
    OpenVINO's CPU plugin at --precision). The outputs on random images are compared with the PyTorch
    model in float64 and the file is only written if they agree within --tolerance. Needs
    pip install 'senet-zoo[export]' (and 'senet-zoo[openvino]' for OpenVINO).
    """
    from .export import DEFAULT_OPSET, TOLERANCE, export_onnx, export_openvino

    if args.batch == "dynamic":
        dynamic, batch = True, 1
    elif args.batch.isdigit() and int(args.batch) > 0:
        dynamic, batch = False, int(args.batch)
    else:
        raise ValueError(f"--batch must be 'dynamic' or a positive integer, got {args.batch!r}")
    if args.format == "openvino" and args.opset is not None:
        raise ValueError("--opset applies to --format onnx")
    if args.format == "onnx" and args.precision != "fp32":
        raise ValueError("--precision bf16 applies to --format openvino (ONNX Runtime's CPU provider runs float32)")
    model = load_for_export(args.model, args.weights)
    input_size = None
    if args.size is not None:
        input_size = (int(model.pretrained_cfg.get("input_size", (3,))[0]), args.size, args.size)
    if args.format == "openvino":
        report = export_openvino(
            model,
            args.out,
            precision=args.precision,
            dynamic_batch=dynamic,
            batch_size=batch,
            input_size=input_size,
            tolerance=args.tolerance,
        )
    else:
        report = export_onnx(
            model,
            args.out,
            opset=args.opset or DEFAULT_OPSET,
            dynamic_batch=dynamic,
            batch_size=batch,
            input_size=input_size,
            tolerance=TOLERANCE if args.tolerance is None else args.tolerance,
        )
    print(report.summary())
    return 0
