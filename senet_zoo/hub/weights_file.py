"""Reading a local weights file into a state dict without unpickling arbitrary objects."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["load_state_dict"]


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a weights file into ``{name: tensor}`` on the CPU without unpickling arbitrary objects.

    ``.safetensors`` is memory-mapped by safetensors; legacy ``.pth/.pt/.bin`` goes through
    ``torch.load(weights_only=True)`` (memory-mapped when the file is in the zip format) and a top-level
    ``state_dict`` or ``model`` wrapper is unwrapped.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for malformed headers
            raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc
    if suffix not in (".pth", ".pt", ".bin"):
        raise ValueError(f"{path}: unsupported weights format {suffix!r} (expected .safetensors, .pth, .pt, .bin)")
    import torch

    with path.open("rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as a weights-only PyTorch checkpoint ({exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a mapping of parameter names to tensors")
    return obj
