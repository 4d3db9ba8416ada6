"""``senet-zoo demo``: the whole Caffe → PyTorch path offline, on a synthetic SE-ResNet-50.

No download: a full-size SE-ResNet-50 Caffe model with random weights is synthesized in the authors'
naming scheme and written as prototxt + caffemodel, converted and verified against the Caffe
executor, and the resulting folder is loaded four ways — ``senet_zoo.create_model``,
``torch.hub.load`` (from the repository checkout), ``timm.create_model`` through senet_zoo's timm
registration, and plain timm from the folder (``local-dir:``, the route ``hf-hub:`` takes: config.json
names ``legacy_seresnet50``). Each model normalises the same random RGB images with its own
``pretrained_cfg``; all must give the same logits.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch

from ._cli_helpers import add_command

__all__ = ["run_demo", "register"]

ARCH = "se_resnet50"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "demo", _main)
    p.add_argument("--out", help="folder for the demo files (default: a new temporary folder)")


def _loaders(folder: Path, repo_root: Path | None) -> list[tuple[str, Callable[[], torch.nn.Module] | None, str]]:
    import timm

    from .registry import create_model, model_info

    weights = folder / "model.safetensors"

    def from_hub() -> torch.nn.Module:
        return torch.hub.load(str(repo_root), ARCH, source="local", pretrained=str(weights), trust_repo=True)

    hub = from_hub if repo_root is not None else None
    return [
        ("senet_zoo.create_model", lambda: create_model(ARCH, pretrained=str(weights)), ""),
        (
            "torch.hub.load",
            hub,
            "" if hub else "skipped: senet_zoo is installed without its repository (no hubconf.py next to the package)",
        ),
        (
            "timm.create_model",
            lambda: timm.create_model(  # arch.tag: the converted weights' preprocessing, from this file
                f"{model_info(ARCH)['timm_name']}.caffe_in1k",
                pretrained=True,
                pretrained_cfg_overlay=dict(file=str(weights)),
            ),
            "",
        ),
        (
            "timm local-dir:",
            lambda: timm.create_model(f"local-dir:{folder}", pretrained=True),
            "plain timm: config.json → legacy_seresnet50, as with hf-hub:",
        ),
    ]


def _repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[1]
    return root if (root / "hubconf.py").is_file() else None


def run_demo(out: str | Path | None = None) -> dict[str, Any]:
    """Run the demo; returns paths and the loaders' max abs logit differences (printed by the CLI)."""
    from .caffe.synth import synth_net
    from .caffe.writer import write_caffemodel, write_prototxt
    from .convert.converter import convert
    from .convert.verify import model_input, random_images

    root = Path(out) if out else Path(tempfile.mkdtemp(prefix="senet-zoo-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    net = synth_net(ARCH, seed=0)
    caffemodel, prototxt = root / "SE-ResNet-50.caffemodel", root / "SE-ResNet-50.prototxt"
    write_caffemodel(net, caffemodel)
    write_prototxt(net, prototxt)
    del net
    report = convert(caffemodel, root / f"{ARCH}.caffe_in1k", prototxt=prototxt, overwrite=True)
    rows: list[tuple[str, float | None, int | None, str]] = []
    reference = None
    for name, load, note in _loaders(report.out_dir, _repo_root()):
        if load is None:
            rows.append((name, None, None, note))
            continue
        model = load().eval()
        with torch.inference_mode():
            logits = model(model_input(random_images(2, 224, seed=7), cast(dict[str, Any], model.pretrained_cfg)))
        if reference is None:
            reference = logits
        rows.append((name, float((logits - reference).abs().max()), int(logits[0].argmax()), note))
    return {
        "root": root,
        "caffemodel": caffemodel,
        "prototxt": prototxt,
        "folder": report.out_dir,
        "report": report,
        "rows": rows,
        "seconds": time.perf_counter() - start,
    }


def _main(args: argparse.Namespace) -> int:
    """Offline end-to-end demo: synthetic Caffe SE-ResNet-50 → convert → verify → load with senet_zoo,
    torch.hub and timm."""
    from .convert.classes import sorted_wnids
    from .convert.commands import print_checks

    result = run_demo(args.out)
    report = result["report"]
    print(f"\nsynthetic Caffe model: {result['caffemodel']} (+ {result['prototxt'].name})")
    print(f"converted folder:      {result['folder']} (model.safetensors, config.json, README.md)")
    print_checks(report.verification)
    print(f"\n{'loaded with':<24} {'max |Δ logit| vs first':>22}  top-1 (image 0)")
    wnids = sorted_wnids()
    for name, diff, top1, note in result["rows"]:
        if diff is None:
            print(f"{name:<24} {'-':>22}  {note}")
        else:
            print(f"{name:<24} {diff:>22.3g}  {top1} {wnids[top1]}{'  (' + note + ')' if note else ''}")
    diffs = [d for _, d, _, _ in result["rows"] if d is not None]
    print(f"\nall loaders agree: {max(diffs) == 0.0 if diffs else False}  ({result['seconds']:.0f} s)")
    return 0 if diffs and max(diffs) < 1e-5 else 1
