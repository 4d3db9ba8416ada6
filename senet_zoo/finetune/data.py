"""ImageFolder data sets with a model's own preprocessing, and the loaders the trainer shards across ranks.

Preprocessing comes from the model's pretrained config (``timm.data.resolve_data_config`` +
``create_transform``): the Caffe mean/std for the converted weights, the crop and interpolation they
were evaluated with. ``img_size`` overrides the input resolution (small images, quick experiments).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .distributed import DistInfo

PREPROCESSING_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")

__all__ = [
    "PREPROCESSING_KEYS",
    "data_config",
    "model_transforms",
    "image_folder",
    "image_folder_datasets",
    "count_classes",
    "dataset_classes",
    "train_loader",
    "eval_loader",
    "ShardSampler",
]

if TYPE_CHECKING:
    from torchvision.datasets import ImageFolder


def data_config(model: nn.Module, img_size: int | None = None, in_chans: int = 3) -> dict[str, Any]:
    """The model's preprocessing (timm data config), at ``img_size`` if given, for ``in_chans`` 1 or 3."""
    from timm.data import resolve_data_config

    if in_chans not in (1, 3):
        raise ValueError(f"image folders hold RGB images: in_chans must be 1 (grayscale) or 3, got {in_chans}")
    cfg = resolve_data_config(model=model)
    if img_size is not None:
        cfg["input_size"] = (cfg["input_size"][0], img_size, img_size)
    if in_chans == 1 and len(cfg["mean"]) == 3:  # one grey channel: the mean of the RGB statistics
        cfg.update(mean=(sum(cfg["mean"]) / 3,), std=(sum(cfg["std"]) / 3,))
    cfg["input_size"] = (in_chans, *cfg["input_size"][1:])
    return cfg


def model_transforms(
    model: nn.Module, img_size: int | None = None, augment: bool = True, in_chans: int = 3
) -> tuple[Callable, Callable]:
    """Training and evaluation transforms for ``model`` (timm's: random-resized crop + flip + colour
    jitter for training unless ``augment`` is False; resize + centre crop for evaluation)."""
    return _transforms(data_config(model, img_size, in_chans), augment)


def _transforms(cfg: dict[str, Any], augment: bool) -> tuple[Callable, Callable]:
    from timm.data import create_transform
    from torchvision import transforms

    common = {k: cfg[k] for k in PREPROCESSING_KEYS}
    train_tf = create_transform(is_training=augment, **common)
    eval_tf = create_transform(is_training=False, **common)
    if cfg["input_size"][0] == 1:
        grey = transforms.Grayscale(num_output_channels=1)
        train_tf, eval_tf = transforms.Compose([grey, train_tf]), transforms.Compose([grey, eval_tf])
    return train_tf, eval_tf


def image_folder(root: str | Path, transform: Callable | None = None) -> ImageFolder:
    """``torchvision.datasets.ImageFolder(root)`` with an error that names the folder when it is unusable."""
    from torchvision.datasets import ImageFolder

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder not found (expected {root}/CLASS/IMAGE files)")
    try:
        return ImageFolder(str(root), transform=transform)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{root}: no usable images ({err})") from err


def image_folder_datasets(
    root: str | Path, model: nn.Module, img_size: int | None = None, augment: bool = True, in_chans: int = 3
) -> tuple[Dataset, Dataset, list[str]]:
    """``root/train`` and ``root/val`` as ImageFolder data sets with the model's transforms, and the classes.

    The two splits must hold the same class folders, otherwise label indices would disagree. Both data
    sets carry the preprocessing as ``.data_config`` (the trainer records it with its checkpoints).
    """
    root = Path(root)
    cfg = data_config(model, img_size, in_chans)
    train_tf, eval_tf = _transforms(cfg, augment)
    train, val = image_folder(root / "train", train_tf), image_folder(root / "val", eval_tf)
    train.data_config = val.data_config = cfg
    if train.classes != val.classes:
        only_train = sorted(set(train.classes) - set(val.classes))
        only_val = sorted(set(val.classes) - set(train.classes))
        raise ValueError(
            f"{root}: train/ and val/ hold different classes (only in train: {only_train}, only in val: {only_val})"
        )
    return train, val, list(train.classes)


def count_classes(root: str | Path) -> int:
    """Number of class folders in ``root/train`` (for ``--num-classes auto``)."""
    return len(image_folder(Path(root) / "train").classes)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...``: every sample exactly once over all ranks, none repeated.

    For evaluation, where ``DistributedSampler``'s padding would count some samples twice.
    """

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = range(rank, length, world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _loader(dataset: Dataset, batch_size: int, sampler: Sampler, num_workers: int, device: torch.device) -> DataLoader:
    # No generator of its own: worker seeds come from the global RNG, which the trainer reseeds every epoch.
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, pin_memory=device.type == "cuda"
    )


def train_loader(dataset: Dataset, batch_size: int, dist_info: DistInfo, seed: int, num_workers: int = 0) -> DataLoader:
    """Shuffled, sharded training batches; call ``loader.sampler.set_epoch(e)`` for epoch ``e``'s order.

    The order depends only on ``seed`` and the epoch, so a resumed run sees the same batches.
    """
    if len(cast(Sized, dataset)) == 0:
        raise ValueError("the training data set is empty")
    sampler: DistributedSampler[Any] = DistributedSampler(
        dataset, num_replicas=dist_info.world_size, rank=dist_info.rank, shuffle=True, seed=seed
    )
    return _loader(dataset, batch_size, sampler, num_workers, dist_info.device)


def eval_loader(dataset: Dataset, batch_size: int, dist_info: DistInfo, num_workers: int = 0) -> DataLoader:
    """In-order evaluation batches, each sample on exactly one rank."""
    sampler = ShardSampler(len(cast(Sized, dataset)), dist_info.rank, dist_info.world_size)
    return _loader(dataset, batch_size, sampler, num_workers, dist_info.device)


def dataset_classes(dataset: Dataset) -> Sequence[str] | None:
    """The class names of an ImageFolder-like data set, if it has them."""
    classes = getattr(dataset, "classes", None)
    return list(classes) if classes is not None else None
