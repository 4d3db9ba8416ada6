"""Rebuild a model for given weights: a fine-tuned checkpoint, any ``.safetensors`` file, or a weights tag."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import torch
from safetensors import safe_open
from torch import nn

from .checkpoint import read_model_metadata

__all__ = ["load_model", "parse_pretrained", "RUN_WEIGHTS"]

RUN_WEIGHTS = "best.safetensors"  # what a fine-tuning run folder stands for


def parse_pretrained(value: str | os.PathLike[str] | bool | None) -> Any:
    """CLI spelling → ``create_model``'s ``pretrained``: ``none``/``false`` → False, ``default``/``true`` →
    True, anything else (a tag or a path) unchanged."""
    if isinstance(value, os.PathLike):
        return value
    if value is None or isinstance(value, bool):
        return bool(value)
    lowered = value.lower()
    if lowered in ("none", "false", "no", "off"):
        return False
    if lowered in ("default", "true", "yes"):
        return True
    return value


def _classifier_size(path: Path, key: str) -> int | None:
    with safe_open(str(path), framework="pt") as fh:
        return fh.get_slice(key).get_shape()[0] if key in fh.keys() else None


def load_model(
    name: str | None, weights: str | os.PathLike[str] | bool, **kwargs: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``name`` with ``weights`` and return it with the description stored in the file (may be empty).

    A fine-tuning run folder stands for its ``best.safetensors``. For a ``.safetensors`` path the
    architecture, classifier size and model options default to those a fine-tuning checkpoint records
    (explicit ``kwargs`` win), and so does the preprocessing in ``model.pretrained_cfg``; for a file from
    elsewhere the classifier size is read from the file. A tag (or ``"default"``) loads the published
    weights. The returned description includes ``path``, the file loaded, for a path.
    """
    from ..registry import create_model

    pretrained = parse_pretrained(weights)
    is_path = isinstance(pretrained, (str, os.PathLike)) and (
        str(pretrained).endswith(".safetensors") or os.sep in str(pretrained) or Path(pretrained).exists()
    )  # a tag never contains a path separator
    if not is_path:
        if name is None:
            raise ValueError("a model name is required unless the weights are a fine-tuning checkpoint")
        return create_model(name, pretrained=pretrained, **kwargs), {}
    path = Path(pretrained)
    if path.is_dir():
        if not (path / RUN_WEIGHTS).is_file():
            raise FileNotFoundError(
                f"{path}: a folder without {RUN_WEIGHTS} (not a fine-tuning run, or no epoch finished); "
                "pass a .safetensors file"
            )
        path = path / RUN_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    info = dict(read_model_metadata(path), path=str(path))
    name = name or info.get("architecture")
    if name is None:
        raise ValueError(f"{path}: the file does not record its architecture; pass the model name")
    options = {**info.get("model_kwargs", {}), **kwargs}
    if info.get("preprocessing"):  # the data config the weights were trained with
        overlay = {k: tuple(v) if isinstance(v, list) else v for k, v in info["preprocessing"].items()}
        options.setdefault("pretrained_cfg_overlay", overlay)
    if "num_classes" not in options:
        options["num_classes"] = info["num_classes"] if "num_classes" in info else _file_classes(name, path, options)
    return create_model(name, pretrained=path, **options), info


def _file_classes(name: str, path: Path, options: dict[str, Any]) -> int:
    """The classifier size stored in ``path`` (0 when it has no classifier)."""
    from ..registry import create_model

    with torch.device("meta"):  # only the config is needed: build without allocating
        classifier = cast(Any, create_model(name, **options)).pretrained_cfg["classifier"]
    return _classifier_size(path, f"{classifier}.weight") or 0
