"""The parsed Caffe net: plain dataclasses shared by the readers, the executor and the converter.

Layer parameters keep protobuf's own field names. A field seen once is stored as a scalar (or a
dict for a nested message), a field seen several times as a list; use :func:`as_list` to read
repeated fields such as ``kernel_size`` or ``pad`` whichever way they were written. Enum values
are their names (``"MAX"``, ``"AVE"``). Legacy V1 layer types are mapped to their V2 names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CaffeFormatError", "Layer", "Net", "as_list", "copy_trained_layers", "legacy_input_layer"]


class CaffeFormatError(ValueError):
    """A Caffe file (prototxt or caffemodel) that cannot be read; the message names file and place."""


def as_list(value: Any) -> list:
    """Return a repeated field as a list, whether it was stored once (scalar) or several times."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass
class Layer:
    name: str
    type: str
    bottoms: list[str] = field(default_factory=list)
    tops: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    blobs: list[np.ndarray] = field(default_factory=list)

    def param(self, message: str) -> dict[str, Any]:
        """The ``<type>_param`` message of this layer as a dict (empty when absent)."""
        value = self.params.get(message, {})
        return value if isinstance(value, dict) else {}


@dataclass
class Net:
    name: str
    layers: list[Layer] = field(default_factory=list)
    source: str = ""  # file the net was read from, for error messages

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"{self.source or self.name}: no layer named {name!r}")

    def __contains__(self, name: str) -> bool:
        return any(layer.name == name for layer in self.layers)


def legacy_input_layer(names: list[str], dims: list[int], shapes: list[dict]) -> Layer:
    """The ``Input`` layer Caffe substitutes for a net's deprecated top-level input fields."""
    if not shapes and dims:
        chunks = [dims[i : i + 4] for i in range(0, len(dims), 4)]
        shapes = [{"dim": chunk[0] if len(chunk) == 1 else chunk} for chunk in chunks]
    params: dict[str, Any] = {}
    if shapes:
        params["input_param"] = {"shape": shapes[0] if len(shapes) == 1 else list(shapes)}
    return Layer(name="input", type="Input", tops=list(names), params=params)


def copy_trained_layers(net: Net, weights: Net) -> list[str]:
    """Give each layer of ``net`` the blobs of the same-named layer in ``weights``, in place.

    Caffe's ``CopyTrainedLayersFrom``: a deploy prototxt supplies the structure, a caffemodel (often
    saved from the training net) the blobs. Returns the names of ``weights`` layers that carry blobs
    but have no counterpart in ``net`` (ignored, as Caffe does); blob shapes are checked when the
    net runs or is converted.
    """
    by_name = {layer.name: layer for layer in net.layers}
    ignored = []
    for source in weights.layers:
        target = by_name.get(source.name)
        if target is None:
            if source.blobs:
                ignored.append(source.name)
            continue
        target.blobs = list(source.blobs)
    return ignored
