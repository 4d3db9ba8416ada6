"""Small ImageFolders for demos, tests and the fine-tuning benchmark, written offline.

* :func:`make_colour_folder`: a toy set with a learnable signal (each class is a dominant colour);
  brightness and pixel noise vary per image, so a network must learn the hue, not memorise pixels.
* :func:`make_digits_folder`: scikit-learn's bundled handwritten digits (1,797 8×8 greyscale images,
  10 classes; real data no one here made), split into train/ and val/ — nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["COLOURS", "make_colour_folder", "make_digits_folder"]

COLOURS: dict[str, tuple[float, float, float]] = {
    "blue": (0.15, 0.25, 0.9),
    "green": (0.2, 0.85, 0.2),
    "red": (0.9, 0.2, 0.15),
    "yellow": (0.9, 0.85, 0.15),
}


def make_colour_folder(
    root: str | Path,
    per_split: Mapping[str, int],
    size: int = 32,
    seed: int = 0,
    classes: Sequence[str] = ("blue", "green", "red"),
    noise: float = 0.12,
) -> Path:
    """Write ``root/<split>/<class>/<i>.png`` with ``per_split[split]`` images per class, e.g.
    ``{"train": 16, "val": 8}``; return ``root``."""
    from PIL import Image

    unknown = [c for c in classes if c not in COLOURS]
    if unknown:
        raise ValueError(f"unknown colours {unknown}; choose from {list(COLOURS)}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in per_split.items():
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = np.array(COLOURS[name]) * rng.uniform(0.6, 1.0) + rng.normal(0.0, noise, (size, size, 3))
                Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def make_digits_folder(root: str | Path, val_size: int = 360, seed: int = 0, train_size: int | None = None) -> Path:
    """Write scikit-learn's digits as ``root/{train,val}/<digit>/<i>.png`` (8×8 greyscale PNGs); return ``root``.

    The split is stratified: ``val_size`` images for validation (360 of 1,797 by default, leaving
    1,437 for training), ``train_size`` caps the training images (quick tests). Needs scikit-learn.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # values 0..16 -> 0..255
    train_x, val_x, train_y, val_y = train_test_split(
        pixels, digits.target, test_size=val_size, stratify=digits.target, random_state=seed
    )
    if train_size is not None and train_size < len(train_x):
        train_x, _, train_y, _ = train_test_split(
            train_x, train_y, train_size=train_size, stratify=train_y, random_state=seed
        )
    root = Path(root)
    for split, images, labels in (("train", train_x, train_y), ("val", val_x, val_y)):
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, mode="L").save(folder / f"{i:04d}.png")
    return root
