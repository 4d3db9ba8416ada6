"""Checkpoints without pickle: tensors in safetensors files, everything else in JSON, every write atomic.

A checkpoint is a model file (``epoch_NNN.safetensors``: the plain state dict, loadable by
``create_model(name, pretrained=path, num_classes=...)``, with the architecture and classes in its
metadata), an optimizer file (``epoch_NNN.optim.safetensors``: the optimizer's tensors) and the run's
``state.json`` (epoch, step, config, metrics history, the optimizer's non-tensor state). ``state.json``
is written last and names the files it belongs to, so a crash mid-save leaves the previous checkpoint
intact.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .._files import atomic_path

__all__ = [
    "write_json",
    "read_json",
    "save_model",
    "read_model_metadata",
    "save_optimizer",
    "load_optimizer",
    "META_KEY",
]

META_KEY = "senet_zoo.finetune"  # safetensors metadata key holding the JSON model description


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a malformed file raises a ValueError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def _cpu_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def save_model(path: str | os.PathLike[str], state_dict: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> None:
    """Save a model state dict as safetensors; ``info`` (JSON-able) goes into the file's metadata."""
    with atomic_path(path) as tmp:
        save_file(_cpu_tensors(state_dict), str(tmp), metadata={META_KEY: json.dumps(dict(info))})


def read_model_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The description :func:`save_model` stored (``{}`` for a safetensors file written elsewhere)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return {}
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for malformed headers
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    return json.loads(meta[META_KEY]) if META_KEY in meta else {}


def save_optimizer(path: str | os.PathLike[str], state: Mapping[str, Any]) -> dict[str, Any]:
    """Save ``optimizer.state_dict()``'s tensors to ``path``; return the JSON-able remainder.

    Tensors are stored as ``state.<param index>.<name>``; non-tensor per-parameter values and the
    param groups are returned for the caller's JSON.
    """
    tensors: dict[str, torch.Tensor] = {}
    rest: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value
            else:
                rest.setdefault(str(index), {})[name] = value
    with atomic_path(path) as tmp:
        save_file(_cpu_tensors(tensors), str(tmp))
    return {"param_groups": state["param_groups"], "state": rest}


def load_optimizer(path: str | os.PathLike[str], rest: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild an ``optimizer.state_dict()`` from :func:`save_optimizer`'s file and JSON remainder."""
    try:
        tensors = load_file(str(path))
    except Exception as err:
        raise ValueError(f"{path}: not a readable optimizer checkpoint ({err})") from err
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        prefix, index, name = key.split(".", 2)
        if prefix != "state":
            raise ValueError(f"{path}: unexpected tensor {key!r} in an optimizer checkpoint")
        state.setdefault(int(index), {})[name] = value
    for index, values in rest.get("state", {}).items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": [dict(g) for g in rest["param_groups"]]}
