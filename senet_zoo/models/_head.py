"""The classifier head shared by every senet_zoo network (timm's model interface)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from timm.layers import create_classifier
from torch import nn
from torch.nn import functional as F


class ClassifierHeadMixin:
    """Global pooling → dropout → ``last_linear``; ``get_classifier`` / ``reset_classifier`` / ``forward_head``.

    The host module sets ``num_features`` and ``drop_rate`` and calls :meth:`_init_head`.
    """

    num_features: int
    drop_rate: float
    training: bool
    forward_features: Callable[[torch.Tensor], torch.Tensor]  # the host model's

    def _init_head(self, num_classes: int, global_pool: str) -> None:
        self.num_classes = num_classes
        self.head_hidden_size = self.num_features
        self.global_pool, self.last_linear = create_classifier(self.num_features, num_classes, pool_type=global_pool)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.last_linear

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (``num_classes=0`` removes it), keeping the backbone."""
        self._init_head(num_classes, self.global_pool.pool_type if global_pool is None else global_pool)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.last_linear(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
