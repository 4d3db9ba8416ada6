"""A fine-tuning run as a shareable model folder: ``model.safetensors``, timm-style ``config.json``, model card.

The folder is what ``timm.create_model("hf-hub:ORG/NAME", pretrained=True)`` reads: ``config.json`` names
the architecture (timm's own for the ResNet family, whose state-dict layout is identical, so plain timm
loads it; senet_zoo's registered name otherwise, with a ``requires`` note), ``num_classes``, the label
names and a ``pretrained_cfg`` with the run's preprocessing and input size. Its ``senet_zoo`` block
records the run (data set, classes, training options, per-epoch metrics, best epoch) and the base
weights with their sha256; the model card (``ModelCardData`` front matter) says the same in prose.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._files import atomic_path, sha256_file, write_text_atomic
from .._version import __version__
from ..catalog import CATALOG, PAPER
from ..hub.weights_file import load_state_dict, save_state_dict
from ..resolve import FOLDER_WEIGHTS, RUN_WEIGHTS, Source, resolve

__all__ = ["package_run", "run_config"]

STATE_FILE = "state.json"
# Options timm's own ResNet-family architectures accept; a run with others needs senet_zoo's.
_TIMM_OPTIONS = frozenset({"in_chans", "drop_rate", "global_pool"})


def _run_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text("utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    return state if isinstance(state, dict) else {}


def run_config(source: Source, weights_sha256: str, dataset: str | None = None) -> dict[str, Any]:
    """The timm-style ``config.json`` of a fine-tuned model (see the module docstring)."""
    if source.arch is None or source.num_classes is None:
        raise ValueError(f"{source}: records no architecture or classes (not a fine-tuning checkpoint)")
    facts = CATALOG[source.arch]
    options = dict(source.model_kwargs)
    plain_timm = facts.timm_legacy is not None and set(options) <= _TIMM_OPTIONS
    architecture = facts.timm_legacy if plain_timm else facts.timm_name
    pre = source.preprocessing
    input_size = list(pre.get("input_size") or [options.get("in_chans", 3), 224, 224])
    state = _run_state(source.folder) if source.kind == "run" and source.folder else {}
    info = source.info
    cfg: dict[str, Any] = {
        "tag": "finetuned",
        "custom_load": False,
        "input_size": input_size,
        "fixed_input_size": False,
        "interpolation": pre.get("interpolation", "bilinear"),
        "crop_pct": pre.get("crop_pct", 0.875),
        "crop_mode": pre.get("crop_mode", "center"),
        "mean": list(pre.get("mean", ())),
        "std": list(pre.get("std", ())),
        "num_classes": source.num_classes,
        "first_conv": facts.first_conv,
        "classifier": facts.classifier,
    }
    config: dict[str, Any] = {
        "architecture": architecture,
        "num_classes": source.num_classes,
        "pretrained_cfg": cfg,
    }
    if source.label_names:
        config["label_names"] = list(source.label_names)
    if options:
        config["model_args"] = options
    zoo: dict[str, Any] = {
        "name": source.arch,
        "tag": "finetuned",
        "senet_zoo_version": __version__,
        "weights": {"file": FOLDER_WEIGHTS, "sha256": weights_sha256},
        "finetune": {
            "dataset": dataset or info.get("dataset"),
            "epoch": info.get("epoch"),
            "best": state.get("best"),
            "options": state.get("config"),
            "augmentation": state.get("augmentation"),
            "history": state.get("history"),
            "base_weights": info.get("base_weights") or {"kind": "unknown"},
        },
    }
    if not plain_timm:
        zoo["requires"] = (
            f"senet_zoo: timm has no {source.arch}{' with these options' if facts.timm_legacy else ''}; "
            "`pip install senet-zoo`, then `import senet_zoo` registers it with timm"
        )
    config["senet_zoo"] = zoo
    return config


def _card(config: dict[str, Any], repo_id: str | None) -> str:
    from huggingface_hub import ModelCardData

    zoo, run = config["senet_zoo"], config["senet_zoo"]["finetune"]
    name = zoo["name"]
    dataset = run.get("dataset") or "a custom image-folder data set"
    data = ModelCardData(
        library_name="timm",
        license="apache-2.0",
        pipeline_tag="image-classification",
        tags=["image-classification", "timm", "senet-zoo", "squeeze-and-excitation", "fine-tuned"],
        datasets=[dataset] if run.get("dataset") else None,
        model_name=f"{name} fine-tuned on {dataset}",
        base_model=None,
    )
    repo = repo_id or "ORG/NAME"
    needs_zoo = "import senet_zoo  # registers the architecture with timm\n" if "requires" in zoo else ""
    base = run["base_weights"]
    base_text = (
        "random initialisation (`--pretrained none`)"
        if base.get("kind") in ("none", "unknown")
        else f"`{base.get('spec')}` (sha256 `{base.get('sha256')}`)"
    )
    rows = ["| epoch | train loss | val loss | val top-1 (%) | val top-5 (%) |", "|---|---|---|---|---|"]
    for row in run.get("history") or []:
        cells = [row.get(k) for k in ("train_loss", "val_loss", "val_top1", "val_top5")]
        rows.append(f"| {row.get('epoch')} | " + " | ".join("-" if c is None else f"{c:.4g}" for c in cells) + " |")
    options = run.get("options") or {}
    cfg = config["pretrained_cfg"]
    labels = config.get("label_names") or []
    return (
        f"---\n{data.to_yaml()}\n---\n"
        f"# {name} fine-tuned on {dataset}\n\n"
        f"A Squeeze-and-Excitation network ({name}, {PAPER['paper_name']}) fine-tuned with "
        f"`senet-zoo finetune`: {config['num_classes']} classes ({', '.join(map(str, labels[:20]))}"
        f"{', ...' if len(labels) > 20 else ''}).\n\n"
        "## Use\n\n"
        f"```python\nimport timm\n{needs_zoo}"
        f'model = timm.create_model("hf-hub:{repo}", pretrained=True).eval()\n'
        "cfg = timm.data.resolve_data_config(model=model)\n"
        "transform = timm.data.create_transform(**cfg)\n```\n\n"
        f"Preprocessing (in `config.json`): input {cfg['input_size']}, mean {cfg['mean']}, std {cfg['std']}, "
        f"crop {cfg['crop_pct']}, {cfg['interpolation']} interpolation. Label names are in `config.json`.\n"
        + (f"\n{zoo['requires']}.\n" if "requires" in zoo else "")
        + "\n## Training\n\n"
        f"- Base weights: {base_text}\n"
        f"- Data set: {dataset}\n"
        f"- Best epoch: {(run.get('best') or {}).get('epoch')} "
        f"(val top-1 {(run.get('best') or {}).get('val_top1')} %)\n"
        f"- Options: `{json.dumps({k: v for k, v in options.items() if v is not None}, sort_keys=True)}`\n\n"
        "Metrics per epoch (validation split of the data set):\n\n" + "\n".join(rows) + "\n\n"
        f"Weights sha256: `{zoo['weights']['sha256']}`\n"
    )


def package_run(
    run: str | os.PathLike[str], out: str | os.PathLike[str], *, repo_id: str | None = None, dataset: str | None = None
) -> Path:
    """Write ``out/`` (model.safetensors, config.json, README.md) for the fine-tuning run ``run`` (a run
    folder or a checkpoint file a run wrote) and return it. ``out`` must not hold other files."""
    source = resolve(run)
    if source.kind not in ("run", "file") or not source.info.get("architecture"):
        raise ValueError(f"{run}: not a fine-tuning run (no {RUN_WEIGHTS} with the run's description)")
    assert source.file is not None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = load_state_dict(source.file)
    with atomic_path(out / FOLDER_WEIGHTS) as tmp:  # the plain state dict, as timm saves it (aligned layout)
        save_state_dict(tmp, tensors, metadata={"format": "pt"})
    digest = sha256_file(out / FOLDER_WEIGHTS)
    config = run_config(source, digest, dataset)
    write_text_atomic(out / "config.json", json.dumps(config, indent=2) + "\n")
    write_text_atomic(out / "README.md", _card(config, repo_id))
    return out
