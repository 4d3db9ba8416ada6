"""Excitation statistics of SE blocks over a data set (the paper's §7, "Role of SE blocks").

A forward hook on every :class:`~senet_zoo.models.se.SEModule`'s ``gate`` records the excitation
vector of each image. Aggregated per block and per class they give:

* ``class_means[block]``: K × C mean gate per class and channel (the paper's Fig. 6 curves);
* :meth:`ExcitationStats.class_spread`: per block, the standard deviation across classes of the
  per-class mean gate (population std), averaged over channels: 0 when every class is gated alike,
  growing as the block becomes class-specific;
* :meth:`ExcitationStats.saturation`: per block, the fraction of (image, channel) gates within ``tol`` of
  one (the block passes those channels through almost unchanged; the paper observes this in the last
  stage) and the fraction within ``tol`` of zero (channels switched off).

For NoSqueeze modules (``squeeze="none"``) the gate varies per position; it is averaged over positions.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..models.se import SEModule

__all__ = [
    "se_blocks",
    "select_blocks",
    "default_plot_blocks",
    "ExcitationRecorder",
    "ExcitationStats",
    "collect_excitations",
]


def se_blocks(model: nn.Module) -> dict[str, SEModule]:
    """Every SE module by block name (the name of its parent: ``layer4.2``, ``inception5b``), in order."""
    blocks = {}
    for name, module in model.named_modules():
        if isinstance(module, SEModule):
            blocks[name.rpartition(".")[0] or name] = module
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no SEModule to analyse")
    return blocks


def select_blocks(names: Sequence[str], patterns: Iterable[str] | None) -> list[str]:
    """The block names matching any shell-style pattern (all when ``patterns`` is None), in model order.

    A pattern that matches nothing is an error that lists the blocks, so a typo cannot go unnoticed.
    """
    if patterns is None:
        return list(names)
    patterns = list(patterns)
    for pattern in patterns:
        if not fnmatch.filter(names, pattern):
            raise ValueError(f"no SE block matches {pattern!r}; blocks: {', '.join(names)}")
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def default_plot_blocks(names: Sequence[str]) -> list[str]:
    """The paper's choice: the last block of every stage and every block of the last stage.

    The stage is the name's first component (``layer3`` in ``layer3.5``); for SE-ResNet-50 this is
    SE_2_3, SE_3_4, SE_4_6, SE_5_1, SE_5_2, SE_5_3, and every block for SE-BN-Inception.
    """
    stages: dict[str, list[str]] = {}
    for name in names:
        stages.setdefault(name.split(".")[0], []).append(name)
    last_stage = list(stages.values())[-1]
    chosen = {members[-1] for members in stages.values()} | set(last_stage)
    return [n for n in names if n in chosen]


class ExcitationRecorder:
    """Context manager: hooks the gates of the chosen SE blocks; ``gates`` holds the last forward's N × C."""

    def __init__(self, model: nn.Module, blocks: Sequence[str] | None = None) -> None:
        modules = se_blocks(model)
        self.blocks = select_blocks(list(modules), blocks)
        self._modules = {b: modules[b] for b in self.blocks}
        self.gates: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, block: str):  # noqa: ANN202 - a forward hook
        def record(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            gate = output.detach().float()
            self.gates[block] = gate.mean(dim=(2, 3)) if gate.ndim == 4 else gate

        return record

    def __enter__(self) -> ExcitationRecorder:
        self._handles = [m.gate.register_forward_hook(self._hook(b)) for b, m in self._modules.items()]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


@dataclass
class ExcitationStats:
    """Per-class sums of gates over a data set, and the statistics derived from them."""

    blocks: list[str]
    classes: list[str]
    counts: np.ndarray  # (K,) images per class
    gate_sums: dict[str, np.ndarray]  # block -> (K, C) sum of gates per class and channel (float64)
    near_one: dict[str, int]  # block -> number of (image, channel) gates >= 1 - tol
    near_zero: dict[str, int]  # block -> number of gates <= tol
    tol: float
    channels: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.channels = {b: s.shape[1] for b, s in self.gate_sums.items()}

    @property
    def present(self) -> np.ndarray:
        """Mask of the classes with at least one image."""
        return self.counts > 0

    def class_means(self, block: str) -> np.ndarray:
        """K × C mean gate per class and channel (NaN rows for classes without images)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.gate_sums[block] / self.counts[:, None]

    def overall_mean(self, block: str) -> np.ndarray:
        """C mean gate over all images."""
        return self.gate_sums[block].sum(0) / self.counts.sum()

    def class_spread(self) -> dict[str, float]:
        """Per block: std across classes of the per-class mean gate, averaged over channels."""
        return {b: float(self.class_means(b)[self.present].std(axis=0).mean()) for b in self.blocks}

    def saturation(self) -> dict[str, dict[str, float]]:
        """Per block: fractions of gates within ``tol`` of one and of zero."""
        total = float(self.counts.sum())
        return {
            b: dict(
                near_one=self.near_one[b] / (total * self.channels[b]),
                near_zero=self.near_zero[b] / (total * self.channels[b]),
            )
            for b in self.blocks
        }

    def summary(self) -> dict[str, object]:
        """JSON-able numbers: per block channels, mean gate, class spread, saturation; images per class."""
        spread, saturation = self.class_spread(), self.saturation()
        return dict(
            classes=self.classes,
            images_per_class=self.counts.astype(int).tolist(),
            tol=self.tol,
            blocks={
                b: dict(
                    channels=self.channels[b],
                    mean_gate=float(self.overall_mean(b).mean()),
                    class_spread=spread[b],
                    **saturation[b],
                )
                for b in self.blocks
            },
        )


@torch.no_grad()
def collect_excitations(
    model: nn.Module,
    loader: DataLoader,
    classes: Sequence[str],
    *,
    blocks: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
    max_images: int | None = None,
    tol: float = 0.05,
    progress: bool = False,
) -> ExcitationStats:
    """Run ``model`` (in eval mode) over ``loader``'s ``(images, labels)`` and aggregate the gates.

    ``blocks`` are shell-style patterns over :func:`se_blocks` names (default: every block);
    ``max_images`` stops early; ``tol`` sets the saturation thresholds.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval().to(device)
    k = len(classes)
    counts = np.zeros(k, dtype=np.int64)
    with ExcitationRecorder(model, blocks) as recorder:
        sums: dict[str, np.ndarray] = {}
        near_one = dict.fromkeys(recorder.blocks, 0)
        near_zero = dict.fromkeys(recorder.blocks, 0)
        seen = 0
        for images, labels in tqdm(loader, desc="excitations", disable=not progress):
            if max_images is not None:
                images, labels = images[: max_images - seen], labels[: max_images - seen]
            if labels.numel() and (labels.min() < 0 or labels.max() >= k):
                raise ValueError(f"label {int(labels.max())} outside the {k} classes given")
            model(images.to(device))
            onehot = nn.functional.one_hot(labels, k).double()  # N × K
            for block in recorder.blocks:
                gates = recorder.gates[block].cpu().double()  # N × C
                sums[block] = sums.get(block, 0) + (onehot.T @ gates).numpy()
                near_one[block] += int((gates >= 1 - tol).sum())
                near_zero[block] += int((gates <= tol).sum())
            counts += np.bincount(labels.numpy(), minlength=k)
            seen += len(labels)
            if max_images is not None and seen >= max_images:
                break
    model.train(was_training)
    if seen == 0:
        raise ValueError("no images to analyse")
    return ExcitationStats(
        blocks=recorder.blocks,
        classes=list(classes),
        counts=counts,
        gate_sums=sums,
        near_one=near_one,
        near_zero=near_zero,
        tol=tol,
    )
