"""The new head versus the backbone: parameter groups, frozen parts, optimizer and learning-rate schedule.

The head is what ``model.get_classifier()`` returns (timm's convention, which every senet_zoo model
follows). Freezing works on the model's top-level modules, in definition order: ``freeze_until="layer2"``
freezes the stem and everything up to and including ``layer2``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["head_parameter_names", "backbone_modules", "modules_until", "build_optimizer", "lr_factor", "OPTIMIZERS"]

OPTIMIZERS = ("sgd", "adamw")


def head_parameter_names(model: nn.Module) -> set[str]:
    """Names of the classifier's parameters (empty when the model has no classifier)."""
    get_classifier = getattr(model, "get_classifier", None)
    if get_classifier is None:
        raise ValueError(
            f"{type(model).__name__} has no get_classifier(): the trainer cannot tell the new head from the backbone"
        )
    head = {id(p) for p in get_classifier().parameters()}
    return {name for name, p in model.named_parameters() if id(p) in head}


def backbone_modules(model: nn.Module) -> list[str]:
    """Top-level modules holding no head parameter: what "freeze the backbone" freezes."""
    head = head_parameter_names(model)
    return [
        name
        for name, child in model.named_children()
        if not any(f"{name}.{p}" in head for p, _ in child.named_parameters())
    ]


def modules_until(model: nn.Module, last: str) -> list[str]:
    """Top-level modules from the first up to and including ``last``."""
    names = [name for name, _ in model.named_children()]
    if last not in names:
        raise ValueError(
            f"freeze_until={last!r} is not a top-level module of {type(model).__name__}; choose one of {names}"
        )
    return names[: names.index(last) + 1]


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    head_lr: float | None = None,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """SGD (Nesterov-free, with momentum) or AdamW over four groups: backbone/head × decayed/not.

    Biases and normalisation parameters (1-D tensors) get no weight decay. Each group records its
    ``base_lr`` (``head_lr`` for the head, default ``lr``); :func:`lr_factor` scales it.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    head = head_parameter_names(model)
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for pname, param in model.named_parameters():
        part = "head" if pname in head else "backbone"
        groups.setdefault((part, param.ndim > 1), []).append(param)
    param_groups = []
    for (part, decay), params in groups.items():
        base_lr = head_lr if part == "head" and head_lr is not None else lr
        param_groups.append(
            dict(params=params, lr=base_lr, base_lr=base_lr, part=part, weight_decay=weight_decay if decay else 0.0)
        )
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=momentum)
    return torch.optim.AdamW(param_groups, lr=lr)


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, min_ratio: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_steps`` (reaching 1 at the last warm-up step), then a half cosine from 1
    that would reach ``min_ratio`` one step after the last: every step of the run trains (the last one
    does not get a zero learning rate).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
