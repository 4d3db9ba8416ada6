"""ImageFolder data sets with a model's own preprocessing, and the loaders the trainer shards across ranks.

Preprocessing follows the weights: a pretrained model's config (``timm.data.resolve_data_config``)
gives the mean/std, crop and interpolation its weights were evaluated with (the Caffe mean/std for
the converted weights); a randomly initialised model (``pretrained=False``) uses the standard ImageNet
mean/std instead; ``mean``/``std`` override either. ``img_size`` sets the input resolution.

Training augmentation comes from a preset (:data:`AUGMENT_PRESETS`). The default, ``"light"``, suits
fine-tuning on small data sets: a mild random-resized crop, no colour jitter, no flip. ``"imagenet"``
is timm's from-scratch ImageNet recipe (crops down to 8 % of the image, flip, colour jitter), which
destroys the signal of small data sets whose classes differ by colour, orientation or fine detail.
Horizontal flips are a switch of their own (``hflip``): right for photos, wrong for digits and text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence, Sized
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from ..preprocessing import PREPROCESSING_KEYS, cfg_eval_transform
from .distributed import DistInfo

if TYPE_CHECKING:
    from torchvision.datasets import ImageFolder


@dataclass(frozen=True)
class Augmentation:
    """A training augmentation: random-resized-crop area ``scale`` and aspect ``ratio`` ranges, colour
    jitter strength (0: none) and whether horizontal flips are on by default."""

    scale: tuple[float, float]
    ratio: tuple[float, float]
    color_jitter: float
    hflip: bool


AUGMENT_PRESETS: dict[str, Augmentation | None] = {
    "none": None,  # the evaluation transform
    "light": Augmentation(scale=(0.7, 1.0), ratio=(0.9, 1.1), color_jitter=0.0, hflip=False),
    "standard": Augmentation(scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3), color_jitter=0.0, hflip=False),
    "imagenet": Augmentation(scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), color_jitter=0.4, hflip=True),
}
DEFAULT_AUGMENT = "light"

__all__ = [
    "PREPROCESSING_KEYS",
    "AUGMENT_PRESETS",
    "DEFAULT_AUGMENT",
    "Augmentation",
    "augmentation",
    "data_config",
    "model_transforms",
    "model_eval_transform",
    "image_folder",
    "image_folder_datasets",
    "count_classes",
    "dataset_classes",
    "train_loader",
    "eval_loader",
    "ShardSampler",
]


def augmentation(preset: str, hflip: bool | None = None) -> dict[str, Any]:
    """The preset's settings as a JSON-able record (``{"preset": "none"}`` for none); ``hflip`` None: the
    preset's default."""
    if preset not in AUGMENT_PRESETS:
        raise ValueError(f"augment must be one of {tuple(AUGMENT_PRESETS)}, got {preset!r}")
    aug = AUGMENT_PRESETS[preset]
    if aug is None:
        return {"preset": preset}
    return {"preset": preset, **asdict(aug), "hflip": aug.hflip if hflip is None else bool(hflip)}


def data_config(
    model: nn.Module,
    img_size: int | None = None,
    in_chans: int = 3,
    *,
    pretrained: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The preprocessing for ``model`` (timm data config), at ``img_size`` if given, for ``in_chans`` 1 or 3.

    ``pretrained=False`` (random weights) replaces the weights' mean/std by ImageNet's; ``mean``/``std``
    (3 values, or 1 for ``in_chans=1``) override both.
    """
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, resolve_data_config

    if in_chans not in (1, 3):
        raise ValueError(f"image folders hold RGB images: in_chans must be 1 (grayscale) or 3, got {in_chans}")
    cfg = resolve_data_config(model=model)
    if img_size is not None:
        cfg["input_size"] = (cfg["input_size"][0], img_size, img_size)
    if not pretrained:
        cfg.update(mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD)
    if in_chans == 1 and len(cfg["mean"]) == 3:  # one grey channel: the mean of the RGB statistics
        cfg.update(mean=(sum(cfg["mean"]) / 3,), std=(sum(cfg["std"]) / 3,))
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            value = tuple(float(v) for v in value)
            if len(value) != in_chans or (key == "std" and min(value) <= 0):
                raise ValueError(f"{key} needs {in_chans} value(s){' > 0' if key == 'std' else ''}, got {value}")
            cfg[key] = value
    cfg["input_size"] = (in_chans, *cfg["input_size"][1:])
    return cfg


def model_transforms(
    model: nn.Module,
    img_size: int | None = None,
    augment: str = DEFAULT_AUGMENT,
    in_chans: int = 3,
    *,
    hflip: bool | None = None,
    pretrained: bool = True,
) -> tuple[Callable, Callable]:
    """Training (``augment`` preset, see :data:`AUGMENT_PRESETS`) and evaluation (resize + centre crop)
    transforms for ``model``."""
    return _transforms(data_config(model, img_size, in_chans, pretrained=pretrained), augmentation(augment, hflip))


def model_eval_transform(model: nn.Module, img_size: int | None = None, in_chans: int = 3) -> Callable:
    """Resize + centre crop + normalise, as ``model``'s config says (for evaluation and analysis)."""
    return _transforms(data_config(model, img_size, in_chans), augmentation("none"))[1]


def _transforms(cfg: dict[str, Any], aug: dict[str, Any]) -> tuple[Callable, Callable]:
    from timm.data import create_transform
    from torchvision import transforms

    common = {k: cfg[k] for k in PREPROCESSING_KEYS}
    eval_tf = cfg_eval_transform(cfg)
    if aug["preset"] == "none":
        train_tf = eval_tf
    else:
        jitter: dict[str, Any] = {"color_jitter": aug["color_jitter"] or None}  # None: no ColorJitter at all
        train_tf = create_transform(
            is_training=True,
            scale=aug["scale"],
            ratio=aug["ratio"],
            hflip=0.5 if aug["hflip"] else 0.0,
            **jitter,
            **common,
        )
    if cfg["input_size"][0] == 1:
        grey = transforms.Grayscale(num_output_channels=1)
        train_tf, eval_tf = transforms.Compose([grey, train_tf]), transforms.Compose([grey, eval_tf])
    return train_tf, eval_tf


def image_folder(root: str | Path, transform: Callable | None = None, *, strict: bool = False) -> ImageFolder:
    """``root`` as an ImageFolder read safely (:class:`~senet_zoo.finetune.images.SafeImageFolder`: links stay
    inside ``root``, loops end, oversize or corrupt images are skipped, or refused with ``strict``), with an
    error that names the folder when it is unusable."""
    from .images import SafeImageFolder

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder not found (expected {root}/CLASS/IMAGE files)")
    try:
        return SafeImageFolder(root, transform=transform, strict=strict)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{root}: no usable images ({err})") from err


def image_folder_datasets(
    root: str | Path,
    model: nn.Module,
    img_size: int | None = None,
    augment: str = DEFAULT_AUGMENT,
    in_chans: int = 3,
    *,
    hflip: bool | None = None,
    pretrained: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    strict: bool = False,
) -> tuple[ImageFolder, ImageFolder, list[str]]:
    """``root/train`` and ``root/val`` as ImageFolder data sets with the model's transforms, and the classes.

    ``augment``/``hflip``: the training augmentation (:data:`AUGMENT_PRESETS`); ``pretrained=False`` for a
    randomly initialised model (ImageNet mean/std); ``mean``/``std`` override. The two splits must hold
    the same class folders, otherwise label indices would disagree. Both data sets carry the
    preprocessing as ``.data_config`` and the training set its ``.augmentation`` (the trainer records
    both with its checkpoints). ``strict`` refuses a folder with images :func:`image_folder` would skip.
    """
    root = Path(root)
    cfg = data_config(model, img_size, in_chans, pretrained=pretrained, mean=mean, std=std)
    aug = augmentation(augment, hflip)
    train_tf, eval_tf = _transforms(cfg, aug)
    train = image_folder(root / "train", train_tf, strict=strict)
    val = image_folder(root / "val", eval_tf, strict=strict)
    train.data_config = val.data_config = cfg
    train.augmentation = aug
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
    sampler: DistributedSampler = DistributedSampler(
        dataset, num_replicas=dist_info.world_size, rank=dist_info.rank, shuffle=True, seed=seed
    )
    per_rank = len(sampler)
    if per_rank < 2:
        raise ValueError(
            f"the training data set has {len(cast(Sized, dataset))} image(s): at least 2 per process are "
            "needed (BatchNorm cannot train on a batch of one)"
        )
    # A last batch of one image cannot be trained with BatchNorm ("Expected more than 1 value per
    # channel"): it is dropped (the order is reshuffled every epoch, so no image is left out for good).
    drop_last = batch_size > 1 and per_rank % batch_size == 1
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=dist_info.device.type == "cuda",
        drop_last=drop_last,
    )


def eval_loader(dataset: Dataset, batch_size: int, dist_info: DistInfo, num_workers: int = 0) -> DataLoader:
    """In-order evaluation batches, each sample on exactly one rank."""
    sampler = ShardSampler(len(cast(Sized, dataset)), dist_info.rank, dist_info.world_size)
    return _loader(dataset, batch_size, sampler, num_workers, dist_info.device)


def dataset_classes(dataset: Dataset) -> Sequence[str] | None:
    """The class names of an ImageFolder-like data set, if it has them."""
    classes = getattr(dataset, "classes", None)
    return list(classes) if classes is not None else None
