"""``senet-zoo list`` and ``senet-zoo info``: what the zoo holds."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="table of the models: parameters, compute, reported accuracy, weights")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'se_resnext*'")
    p.add_argument("--json", action="store_true", help="one JSON object per model, in a list")
    p.set_defaults(func=_list)
    p = subparsers.add_parser("info", help="everything known about one model, as JSON")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="accepted for symmetry with list: the output is JSON")
    p.set_defaults(func=_info)


def _manifest() -> Any:
    """The weights manifest, or None (with a warning) when it cannot be used: the architectures are
    listed all the same."""
    from .hub.manifest import ManifestError, load_manifest

    try:
        return load_manifest()
    except ManifestError as err:
        print(f"warning: weights not listed: {err}", file=sys.stderr)
        return None


def _weights_column(name: str, manifest: Any) -> str:
    if manifest is None:
        return "?"
    if name not in manifest.names():
        return "-"
    cells = []
    for tag in manifest.tags(name):
        entry = manifest.get(name, tag)
        size = f" {entry.size / 2**20:.0f}MB" if entry.size else ""
        cells.append(f"{tag}({'ok' if entry.available else entry.status}{size})")
    return " ".join(cells)


def _weights_json(name: str, manifest: Any) -> dict[str, dict[str, object]] | None:
    if manifest is None:
        return None
    if name not in manifest.names():
        return {}
    return {
        tag: dict(status=entry.status, available=entry.available, size=entry.size)
        for tag, entry in ((tag, manifest.get(name, tag)) for tag in manifest.tags(name))
    }


def _list(args: argparse.Namespace) -> int:
    from .registry import list_models, model_info

    manifest = _manifest()
    if args.json:
        models = [dict(model_info(name), weights=_weights_json(name, manifest)) for name in list_models(args.pattern)]
        print(json.dumps(models, indent=2))
        return 0
    rows = [("model", "params(M)", "GMACs", "top-1", "top-5", "timm name", "weights")]
    for name in list_models(args.pattern):
        info = model_info(name)
        rows.append(
            (
                name,
                f"{info['params'] / 1e6:.2f}",
                f"{info['gmacs']:.2f}",
                f"{info['top1_acc']:.2f}",
                f"{info['top5_acc']:.2f}",
                info["timm_name"],
                _weights_column(name, manifest),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print("top-1/top-5: ImageNet val accuracy (%) reported for the Caffe release, single 224 crop.")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .registry import model_info

    info = model_info(args.name)
    manifest = _manifest()
    if manifest is not None and args.name in manifest.names():
        info["weights"] = {tag: manifest.get(args.name, tag).status for tag in manifest.tags(args.name)}
    print(json.dumps(info, indent=2))
    return 0
