"""``senet-zoo export``: a registry model or a converted folder to a verified ONNX file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._cli_helpers import add_command

__all__ = ["register", "load_for_export"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "export", _export)
    p.add_argument("model", metavar="NAME|FOLDER", help="registry name (se_resnet50) or a converted folder")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="output format (default: onnx)")
    p.add_argument("--out", required=True, type=Path, help="output file, e.g. se_resnet50.onnx")
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
    """The model ``senet-zoo export`` exports, in eval mode: a converted folder (its config's architecture,
    model_args, preprocessing and labels) or a registry name with ``weights``."""
    from .registry import create_model

    folder = Path(model)
    if folder.is_dir():
        if weights is not None:
            raise ValueError(f"--weights applies to a registry name; {folder} brings its own model.safetensors")
        return _load_folder(folder)
    if weights == "random":
        return create_model(model).eval()
    return create_model(model, pretrained=weights or True).eval()


def _load_folder(folder: Path) -> Any:
    from .registry import create_model

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
    model: Any = create_model(zoo["name"], pretrained=str(weights), **kwargs).eval()
    cfg = dict(model.pretrained_cfg)
    cfg.update(config.get("pretrained_cfg") or {})
    for key in ("label_names", "label_descriptions"):
        if key in config:
            cfg[key] = config[key]
    cfg.setdefault("tag", zoo.get("tag", ""))
    model.pretrained_cfg = model.default_cfg = cfg
    return model


def _export(args: argparse.Namespace) -> int:
    """Export a model to ONNX (BatchNorm folded, dynamic batch), verified with ONNX Runtime.

    Export a registry model (with its weights) or a converted folder (model.safetensors + config.json)
    to ONNX. ONNX Runtime's outputs on random images are compared with the PyTorch model in float64 and
    the file is only written if they agree within --tolerance. Needs pip install 'senet-zoo[export]'.
    """
    from .export import DEFAULT_OPSET, TOLERANCE, export_onnx

    if args.batch == "dynamic":
        dynamic, batch = True, 1
    elif args.batch.isdigit() and int(args.batch) > 0:
        dynamic, batch = False, int(args.batch)
    else:
        raise ValueError(f"--batch must be 'dynamic' or a positive integer, got {args.batch!r}")
    model = load_for_export(args.model, args.weights)
    input_size = None
    if args.size is not None:
        input_size = (int(model.pretrained_cfg.get("input_size", (3,))[0]), args.size, args.size)
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
