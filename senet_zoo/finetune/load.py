"""Rebuild a model for given weights: a fine-tuned checkpoint, any ``.safetensors`` file, or a weights tag."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from ..resolve import RUN_WEIGHTS  # what a fine-tuning run folder stands for

__all__ = ["load_model", "parse_pretrained", "RUN_WEIGHTS"]


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


def load_model(
    name: str | None, weights: str | os.PathLike[str] | bool, **kwargs: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``name`` with ``weights`` and return it with the description recorded with the weights.

    ``weights`` is anything :func:`senet_zoo.resolve.resolve` accepts (a run folder, a converted folder,
    a file, an ``hf-hub:`` id) or a tag / ``"default"`` for the published weights of ``name``. Weights
    that record their architecture, head, labels, preprocessing and model options bring them (explicit
    ``kwargs`` win; a ``num_classes`` other than the trained head is refused). The description is the
    run's metadata or the folder's config.json, with ``path``, the file loaded.
    """
    from ..registry import create_model
    from ..resolve import HF_HUB_PREFIX, is_path, resolve

    pretrained = parse_pretrained(weights)
    if not (is_path(pretrained) or (isinstance(pretrained, str) and pretrained.startswith(HF_HUB_PREFIX))):
        if name is None:
            raise ValueError("a model name is required unless the weights record their architecture")
        return create_model(name, pretrained=pretrained, **kwargs), {}
    source = resolve(pretrained, name)
    if source.arch is None:
        raise ValueError(f"{source}: the file does not record its architecture; pass the model name")
    info = dict(source.info, path=str(source.file))
    return create_model(source.arch, pretrained=source, **kwargs), info
