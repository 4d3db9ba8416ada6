"""``senet-zoo export``: a registry model or a converted folder to a verified ONNX file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register", "load_for_export"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX (BatchNorm folded, dynamic batch), verified with ONNX Runtime",
        description="Export a registry model (with its weights) or a converted folder (model.safetensors + "
        "config.json) to ONNX. ONNX Runtime's outputs on random images are compared with the PyTorch "
        "model in float64 and the file is only written if they agree within --tolerance. Needs "
        "pip install 'senet-zoo[export]'.",
    )
    p.add_argument("model", metavar="NAME|FOLDER", help="registry name (se_resnet50) or a converted folder")
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
    p.set_defaults(func=_export)


def load_for_export(model: str, weights: str | None = None) -> Any:
    """The model ``senet-zoo export`` exports, in eval mode: a converted folder (its config's architecture,
    model_args, preprocessing and labels) or a registry name with ``weights``."""
    import senet_zoo

    folder = Path(model)
    if folder.is_dir():
        if weights is not None:
            raise ValueError(f"--weights applies to a registry name; {folder} brings its own model.safetensors")
        return _load_folder(folder)
    if weights == "random":
        return senet_zoo.create_model(model).eval()
    return senet_zoo.create_model(model, pretrained=weights or True).eval()


def _load_folder(folder: Path) -> Any:
    import senet_zoo

    config_path, weights = folder / "config.json", folder / "model.safetensors"
    for f in (config_path, weights):
        if not f.is_file():
            raise FileNotFoundError(f"{folder}: no {f.name} (not a folder written by `senet-zoo convert`)")
    try:
        config = json.loads(config_path.read_text("utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}: not valid JSON ({err})") from err
    zoo = config.get("senet_zoo") if isinstance(config, dict) else None
    if not isinstance(zoo, dict) or not isinstance(zoo.get("name"), str):
        raise ValueError(f"{config_path}: no senet_zoo.name (not a folder written by `senet-zoo convert`)")
    kwargs = dict(config.get("model_args") or {})
    if "num_classes" in config:
        kwargs["num_classes"] = config["num_classes"]
    model: Any = senet_zoo.create_model(zoo["name"], pretrained=str(weights), **kwargs).eval()
    cfg = dict(model.pretrained_cfg)
    cfg.update(config.get("pretrained_cfg") or {})
    for key in ("label_names", "label_descriptions"):
        if key in config:
            cfg[key] = config[key]
    cfg.setdefault("tag", zoo.get("tag", ""))
    model.pretrained_cfg = model.default_cfg = cfg
    return model


def _export(args: argparse.Namespace) -> int:
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
