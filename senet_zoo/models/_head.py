"""The classifier head and the feature interface shared by every senet_zoo network (timm's model interface).

No ``from __future__ import annotations`` here or in the model files: TorchScript reads the annotations.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from timm.layers import create_classifier, get_device_dtype
from timm.models._features import feature_take_indices
from torch import nn
from torch.nn import functional as F

from ._builder import init_weights
from .se import SEModule, se_layer


class TrunkArgs(NamedTuple):
    """A host's arguments, as :meth:`ClassifierHeadMixin._init_model` hands them back."""

    in_chans: int
    dd: dict[str, Any]  # device, dtype
    se_layer: Callable[..., SEModule]
    num_classes: int
    global_pool: str


class ClassifierHeadMixin:
    """Global pooling → dropout → ``last_linear``, plus timm's intermediate-feature API.

    The host module calls :meth:`_init_model` first, sets ``num_features``, ``feature_info`` and
    ``feature_stages`` (for each entry of ``feature_info``, the modules that run up to that tap, in forward
    order; dotted paths such as ``blocks.0`` allowed) and calls :meth:`_init_head`. The classifier is the
    attribute named by ``classifier_name`` (``last_linear`` as in timm's legacy SENet; a host with another
    layout renames it and overrides :meth:`forward_head`, which TorchScript compiles with a fixed name).
    """

    __jit_ignored_attributes__ = ["feature_info", "feature_stages"]  # Python-side metadata, not script types

    num_features: int
    drop_rate: float
    training: bool
    feature_info: list[dict[str, Any]]
    feature_stages: tuple[tuple[str, ...], ...]
    classifier_name = "last_linear"
    group_stem = ""  # regex of the stem's parameter names (group_matcher)
    group_stage_prefix = ""  # regex: stage i is ``{prefix}i``, its block j ``{prefix}i.j`` (group_matcher)
    if TYPE_CHECKING:  # set by _init_head under classifier_name; TorchScript must not see this annotation
        last_linear: nn.Module

    def _init_model(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        device: Any = None,
        dtype: Any = None,
        **se: Any,
    ) -> "TrunkArgs":
        """Take the host's :class:`~senet_zoo.models.se.ModelArgs`: set timm's model attributes and return
        what the host builds its trunk and (with :meth:`_init_head`) its head from."""
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        return TrunkArgs(in_chans, dict(device=device, dtype=dtype), se_layer(**se), num_classes, global_pool)

    def _init_head(self, num_classes: int, global_pool: str, device: Any = None, dtype: Any = None) -> None:
        self.num_classes = num_classes
        self.global_pool, classifier = create_classifier(
            self.num_features, num_classes, pool_type=global_pool, device=device, dtype=dtype
        )
        setattr(self, self.classifier_name, classifier)
        self.head_hidden_size = self.num_features * self.global_pool.feat_mult()

    def _init_end(self, a: TrunkArgs, num_features: int) -> None:
        """The end of every host's constructor: the head on ``num_features`` channels, then the init."""
        self.num_features = num_features
        self._init_head(a.num_classes, a.global_pool, **a.dd)
        self.apply(init_weights)  # type: ignore[attr-defined]

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for layer-wise decay: the stem, then one group per stage (coarse) or block."""
        stage = self.group_stage_prefix
        return dict(stem=self.group_stem, blocks=rf"^{stage}(\d+)" if coarse else rf"^{stage}(\d+)\.(\d+)")

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return getattr(self, self.classifier_name)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (``num_classes=0`` removes it) on the model's device and dtype."""
        pool_type = self.global_pool.pool_type if global_pool is None else global_pool
        self._init_head(num_classes, pool_type, **get_device_dtype(self))
        self.global_pool.train(self.training)
        self.get_classifier().train(self.training)

    @torch.jit.ignore
    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps at ``feature_info`` taps (all; the last n for an int; or these indices).

        ``norm`` is accepted for timm's interface (these networks have no final norm); ``stop_early``
        skips the stages after the last requested tap; ``output_fmt`` must be ``"NCHW"``.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.feature_stages), indices)
        stages = self.feature_stages[: max_index + 1] if stop_early else self.feature_stages
        intermediates = []
        for i, names in enumerate(stages):
            for name in names:
                x = self.get_submodule(name)(x)  # type: ignore[attr-defined]
            if i in take_indices:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    @torch.jit.ignore
    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Replace every module after the last requested tap by ``Identity``; return the kept indices.

        Features then end at that tap (``forward_features`` returns it); the head goes when asked or
        when the features end early (it was sized for the last stage).
        """
        take_indices, max_index = feature_take_indices(len(self.feature_stages), indices)
        for names in self.feature_stages[max_index + 1 :]:
            for name in names:
                self.set_submodule(name, nn.Identity())  # type: ignore[attr-defined]
        prune_end = max_index < len(self.feature_stages) - 1
        if prune_end:
            self.num_features = self.feature_info[max_index]["num_chs"]
        if prune_head or prune_end:
            self.reset_classifier(0, "")
        return take_indices

    def pool_and_drop(self, x: torch.Tensor) -> torch.Tensor:
        """The head up to the classifier: global pooling, then dropout while training."""
        x = self.global_pool(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pool_and_drop(x)
        return x if pre_logits else self.last_linear(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # the host's trunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
