"""A local weights file and a state dict: read without unpickling arbitrary objects, written aligned."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..convert.safetensors_writer import Entry, aligned_order, write_safetensors

if TYPE_CHECKING:
    import torch

__all__ = ["load_state_dict", "save_state_dict"]


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


def save_state_dict(
    path: str | os.PathLike[str], state_dict: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> int:
    """Write ``state_dict`` to the ``.safetensors`` file ``path`` (fsynced) and return its size in bytes.

    Stored in the aligned layout of :mod:`senet_zoo.convert.safetensors_writer`, so that
    :func:`load_state_dict` maps nearly every tensor in place, aligned as torch allocates it.
    The caller writes to a temporary path and renames it (see ``senet_zoo._files.atomic_path``).
    """
    import torch

    names = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16"}
    names |= {torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    unsupported = sorted({str(t.dtype) for t in tensors.values() if t.dtype not in names})
    if unsupported:
        raise TypeError(f"{path}: cannot store tensors of dtype {', '.join(unsupported)}")
    order = aligned_order(tensors, lambda k: tensors[k].nbytes)
    entries = [Entry(k, names[tensors[k].dtype], tuple(tensors[k].shape)) for k in order]
    arrays = (tensors[k].view(torch.int16) if tensors[k].dtype == torch.bfloat16 else tensors[k] for k in order)
    return write_safetensors(path, entries, (a.numpy() for a in arrays), metadata)
