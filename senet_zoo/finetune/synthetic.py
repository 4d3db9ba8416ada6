"""A toy ImageFolder with a learnable signal (each class is a dominant colour) for demos and smoke tests.

Brightness and pixel noise vary per image, so a network must learn the hue, not memorise pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["COLOURS", "make_colour_folder"]

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
