"""The evaluation transform of a set of weights: resize, centre crop, to tensor, normalise (timm's).

Defined once for every place that evaluates: ``Weights.transforms()``, fine-tuning's validation
transform and ``senet-zoo release --val``. Plain data in, no senet_zoo imports: any step may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["PREPROCESSING_KEYS", "cfg_eval_transform"]

PREPROCESSING_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def cfg_eval_transform(cfg: Mapping[str, Any]) -> Callable:
    """timm's evaluation transform (PIL image in, normalised tensor out) for a preprocessing config:
    ``input_size``, ``interpolation``, ``mean``, ``std``, ``crop_pct`` and optionally ``crop_mode``
    (default ``"center"``), as in a timm ``pretrained_cfg`` or a manifest's preprocessing block."""
    from timm.data import create_transform

    return create_transform(
        input_size=tuple(cfg["input_size"]),
        is_training=False,
        interpolation=cfg["interpolation"],
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        crop_pct=cfg["crop_pct"],
        crop_mode=cfg.get("crop_mode") or "center",
    )
