"""Checkpoints without pickle: tensors in safetensors files, everything else in JSON, every write atomic.

A checkpoint is a model file (``epoch_NNN.safetensors``: the plain state dict, loadable by
``create_model(name, pretrained=path, num_classes=...)``, with the architecture and classes in its
metadata), an optimizer file (``epoch_NNN.optim.safetensors``: the optimizer's tensors) and the run's
``state.json`` (epoch, step, config, metrics history, the optimizer's non-tensor state). ``state.json``
is written last and names the files it belongs to with their sha256, so a crash mid-save leaves the
previous checkpoint intact and a changed or damaged file is refused on resume (:func:`read_verified`
hashes the very bytes it then parses).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load as load_bytes

from .._files import atomic_path, sha256_file
from ..hub.weights_file import save_state_dict

__all__ = [
    "write_json",
    "read_json",
    "save_model",
    "read_model_metadata",
    "save_optimizer",
    "load_optimizer",
    "read_verified",
    "non_finite",
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


def _save_tensors(
    path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], tmp: Path, metadata: dict[str, str] | None = None
) -> None:
    """The tensors into ``tmp`` (aligned safetensors, :func:`save_state_dict`); a failure (disk full, file
    size limit) is an ``OSError`` naming ``path``, the file being written."""
    try:
        save_state_dict(tmp, tensors, metadata)
    except OSError as err:
        raise OSError(err.errno, f"{path}: cannot be written ({err.strerror or err})") from None


def save_model(path: str | os.PathLike[str], state_dict: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> str:
    """Save a model state dict as safetensors; ``info`` (JSON-able) goes into the file's metadata.

    Returns the file's sha256 (hashed before it is moved into place)."""
    with atomic_path(path) as tmp:
        _save_tensors(path, state_dict, tmp, metadata={META_KEY: json.dumps(dict(info))})
        digest = sha256_file(tmp)
    return digest


def read_verified(path: str | os.PathLike[str], sha256: str, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file whose bytes hash to ``sha256``; a ValueError naming the file
    otherwise (missing, changed, truncated, unreadable)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ValueError(f"{path}: cannot read the {what} ({err.strerror or err})") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"{path}: the {what} is corrupt or was changed ({len(data)} bytes, sha256 {digest[:12]}…, "
            f"state.json recorded {sha256[:12]}…)"
        )
    try:
        return load_bytes(data)
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable {what} ({err})") from err


def non_finite(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or infinity."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


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


def save_optimizer(path: str | os.PathLike[str], state: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Save ``optimizer.state_dict()``'s tensors to ``path``; return the JSON-able remainder and the
    file's sha256.

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
        _save_tensors(path, tensors, tmp)
        digest = sha256_file(tmp)
    return {"param_groups": state["param_groups"], "state": rest}, digest


def load_optimizer(path: str | os.PathLike[str], rest: Mapping[str, Any], sha256: str | None = None) -> dict[str, Any]:
    """Rebuild an ``optimizer.state_dict()`` from :func:`save_optimizer`'s file and JSON remainder.

    With ``sha256`` the file must hash to it (:func:`read_verified`). Every tensor must be finite and
    every key of the form ``state.<index>.<name>``; a ValueError names the file otherwise.
    """
    path = Path(path)
    if sha256 is not None:
        tensors = read_verified(path, sha256, "optimizer checkpoint")
    else:
        try:
            tensors = load_bytes(path.read_bytes())
        except Exception as err:
            raise ValueError(f"{path}: not a readable optimizer checkpoint ({err})") from err
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        prefix, index, name = (key.split(".", 2) + ["", ""])[:3]
        if prefix != "state" or not index.isdigit() or not name:
            raise ValueError(f"{path}: unexpected tensor {key!r} in an optimizer checkpoint")
        state.setdefault(int(index), {})[name] = value
    bad = non_finite(tensors)
    if bad:
        raise ValueError(f"{path}: optimizer state holds NaN or infinite values ({', '.join(bad[:3])})")
    for index, values in rest.get("state", {}).items():
        if not str(index).isdigit() or not isinstance(values, dict):
            raise ValueError(f"{path}: malformed optimizer state entry {index!r} in state.json")
        for name, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{path}: optimizer state {index}.{name} is {value} in state.json")
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": [dict(g) for g in rest["param_groups"]]}


_SHA256_HEX = frozenset("0123456789abcdef")


def _check(ok: bool, path: Path, where: str, expected: str, value: Any) -> None:
    if not ok:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ValueError(f"{path}: {where} must be {expected}, got {shown}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite_numbers(value: Any, path: Path, where: str) -> None:
    """Every number inside ``value`` (nested lists/dicts) is finite."""
    if isinstance(value, float):
        _check(math.isfinite(value), path, where, "a finite number", value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _finite_numbers(item, path, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _finite_numbers(item, path, f"{where}[{i}]")


def _relative_file(value: Any, path: Path, where: str) -> None:
    _check(isinstance(value, str) and bool(value), path, where, "a file name", value)
    parts = Path(value).parts
    _check(not Path(value).is_absolute() and ".." not in parts, path, where, "a path inside the run folder", value)


def validate_state(state: Any, path: str | os.PathLike[str], fmt: int) -> None:
    """Check the structure of a run's ``state.json`` (types, ranges, finite numbers, file names with a
    sha256 each) before anything in it is used; a ValueError names the file and the field otherwise."""
    path = Path(path)
    _check(isinstance(state, dict), path, "the top level", "a JSON object", state)
    if state.get("format") != fmt:
        raise ValueError(
            f"{path}: unsupported state format {state.get('format')!r} (this senet-zoo writes {fmt}; "
            "older checkpoints carry no checksums and cannot be resumed — start a new run)"
        )
    _finite_numbers(state, path, "state")
    for key, minimum in (("epoch", 1), ("step", 0), ("world_size", 1)):
        _check(_is_int(state.get(key)) and state[key] >= minimum, path, key, f"an integer >= {minimum}", state.get(key))
    for key in ("config", "model", "checkpoint", "optimizer", "scaler", "best"):
        _check(isinstance(state.get(key), dict), path, key, "a JSON object", state.get(key))
    files = state["checkpoint"]
    for key in ("model", "optimizer"):
        _relative_file(files.get(key), path, f"checkpoint.{key}")
        digest = files.get(f"{key}_sha256")
        ok = isinstance(digest, str) and len(digest) == 64 and set(digest) <= _SHA256_HEX
        _check(ok, path, f"checkpoint.{key}_sha256", "64 hex digits", digest)
    optim = state["optimizer"]
    groups = optim.get("param_groups")
    _check(isinstance(groups, list) and bool(groups), path, "optimizer.param_groups", "a non-empty list", groups)
    for i, group in enumerate(groups):
        where = f"optimizer.param_groups[{i}]"
        _check(isinstance(group, dict), path, where, "a JSON object", group)
        params = group.get("params")
        ok = isinstance(params, list) and all(_is_int(p) and p >= 0 for p in params)
        _check(ok, path, f"{where}.params", "a list of parameter indices", params)
        for key in ("lr", "base_lr", "weight_decay"):
            value = group.get(key)
            _check(_is_number(value) and value >= 0, path, f"{where}.{key}", "a finite number >= 0", value)
    _check(isinstance(optim.get("state"), dict), path, "optimizer.state", "a JSON object", optim.get("state"))
    for key, value in state["scaler"].items():
        ok = _is_number(value) and value >= 0 if key != "_growth_tracker" else _is_int(value) and value >= 0
        _check(ok, path, f"scaler.{key}", "a finite number >= 0", value)
    best = state["best"]
    if best:
        _check(_is_int(best.get("epoch")), path, "best.epoch", "an integer", best.get("epoch"))
        _check(_is_number(best.get("val_top1")), path, "best.val_top1", "a finite number", best.get("val_top1"))
    history = state.get("history")
    ok = isinstance(history, list) and len(history) == state["epoch"] and all(isinstance(r, dict) for r in history)
    _check(ok, path, "history", f"a list of {state['epoch']} JSON objects (one per epoch)", history)
    for i, row in enumerate(history):
        _check(row.get("epoch") == i + 1, path, f"history[{i}].epoch", str(i + 1), row.get("epoch"))
        for key, value in row.items():
            ok = value is None or _is_number(value)
            _check(ok, path, f"history[{i}].{key}", "a finite number or null", value)
