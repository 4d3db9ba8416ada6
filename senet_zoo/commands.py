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
    p = subparsers.add_parser(
        "info",
        help="everything known about a model, weights tag, run or folder, as JSON",
        description="Facts of the architecture and, for weights, what they bring: a weights tag's entry "
        "(an unknown tag is an error listing the known ones), or the head, labels, preprocessing and "
        "provenance a fine-tuning run, a converted folder, a file or an hf-hub: id records.",
    )
    p.add_argument("name", metavar="NAME[.TAG]|RUN|FOLDER|FILE|hf-hub:ORG/NAME")
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
                "-" if info["top1_acc"] is None else f"{info['top1_acc']:.2f}",
                "-" if info["top5_acc"] is None else f"{info['top5_acc']:.2f}",
                info["timm_name"],
                _weights_column(name, manifest),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(
        "top-1/top-5: ImageNet val accuracy (%) reported for the Caffe release (single 224 crop), or by the paper "
        "for the family beyond it (marked in `info`; '-': not reported); GMACs at each network's input size."
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    from .registry import model_info
    from .resolve import resolve

    source = resolve(args.name)  # an unknown name or tag is an error naming the known ones
    info: dict[str, object] = dict(model_info(source.arch)) if source.arch else {"name": None}
    if source.kind == "arch":
        manifest = _manifest()
        if manifest is not None and source.arch in manifest.names():
            info["weights"] = {tag: manifest.get(source.arch, tag).status for tag in manifest.tags(source.arch)}
    elif source.kind == "tag":
        entry = source.entry
        info["weights"] = dict(
            tag=source.tag,
            status=entry.status,
            sha256=entry.sha256 or entry.sha256_prefix,
            size=entry.size,
            sources=[s.describe() for s in entry.sources],
            preprocessing=dict(source.preprocessing),
        )
    else:
        recorded = source.info.get("senet_zoo") if source.kind != "run" else source.info
        recorded = recorded if isinstance(recorded, dict) else {}
        info["weights"] = dict(
            kind=source.kind,
            file=str(source.file),
            num_classes=source.num_classes,
            label_names=list(source.label_names) if source.label_names else None,
            preprocessing=dict(source.preprocessing),
            model_kwargs=dict(source.model_kwargs),
            base_weights=recorded.get("base_weights") or (recorded.get("finetune") or {}).get("base_weights"),
            dataset=recorded.get("dataset") or (recorded.get("finetune") or {}).get("dataset"),
        )
    print(json.dumps(info, indent=2, default=str))
    return 0
