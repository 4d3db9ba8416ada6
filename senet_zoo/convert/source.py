"""Read a caffemodel (and its prototxt) for conversion: its blobs, the release it is, and the deploy
net that verification runs, with every structural check between them. numpy only (the executor's
shape rules), no tensors run."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..caffe.executor import ExecutionError, hw_pair, param_shapes
from ..caffe.net import Net, copy_trained_layers
from ..caffe.prototxt import read_prototxt
from ..caffe.synth import ARCHS
from ..caffe.wire import read_caffemodel
from .detect import Detection, blob_differences, detect_architecture
from .mapping import TORCH_BN_EPS, ConversionError

__all__ = ["CaffeSource", "load_caffe"]

# Compute-relevant parameters compared between a caffemodel/prototxt and the release (with defaults);
# kernel, stride and pad are compared as (h, w) pairs, however they were written.
_COMPUTE_PARAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "Convolution": ("convolution_param", {"num_output": None, "bias_term": True, "group": 1, "dilation": 1}),
    "Pooling": ("pooling_param", {"pool": "MAX", "global_pooling": False, "round_mode": "CEIL"}),
    "InnerProduct": ("inner_product_param", {"num_output": None, "bias_term": True}),
    "Scale": ("scale_param", {"axis": 1, "bias_term": False}),
    "Concat": ("concat_param", {"axis": 1}),
    "Reshape": ("reshape_param", {"shape": None}),
}


@dataclass
class CaffeSource:
    """A caffemodel read for conversion: its blobs, the structure that runs them, the detected release."""

    path: Path
    blobs: dict[str, list[np.ndarray]]
    topology: Net  # the deploy net (prototxt, else the release's layers) with the caffemodel's blobs
    detection: Detection
    notes: list[str]
    bn_eps: dict[str, float]  # BatchNorm layer → eps (from the layer definitions; Caffe's default 1e-5)


def _blob_table(net: Net) -> dict[str, list[np.ndarray]]:
    table: dict[str, list[np.ndarray]] = {}
    for layer in net.layers:
        if layer.blobs:
            if layer.name in table:
                raise ConversionError(f"{net.source}: two layers named {layer.name!r} carry blobs")
            table[layer.name] = layer.blobs
    return table


def _shapes(blobs: dict[str, list[np.ndarray]]) -> dict[str, list[tuple[int, ...]]]:
    return {name: [tuple(b.shape) for b in arrays] for name, arrays in blobs.items()}


def _check_same_net(proto: Net, blobs: dict[str, list[np.ndarray]], weights: Net) -> None:
    """A prototxt must describe the net whose blobs the caffemodel holds (names and shapes)."""
    try:
        expected = param_shapes(proto)
    except (ValueError, ExecutionError) as err:
        raise ConversionError(f"{proto.source}: cannot infer its blob shapes: {err}") from None
    types = {layer.name: layer.type for layer in proto.layers}
    problems = blob_differences(expected, _shapes(blobs), types)
    if problems:
        more = f" (and {len(problems) - 1} more difference(s))" if len(problems) > 1 else ""
        raise ConversionError(
            f"{proto.source} (net {proto.name!r}) does not describe the network in "
            f"{weights.source} (net {weights.name!r}): {problems[0]}{more}"
        )


def _compute_params(layer: Any) -> dict[str, Any]:
    message, defaults = _COMPUTE_PARAMS.get(layer.type, ("", {}))
    given = layer.param(message) if message else {}
    params = {key: given.get(key, default) for key, default in defaults.items()}
    if layer.type in ("Convolution", "Pooling"):
        params.update(
            kernel=hw_pair(given, "kernel", 1), stride=hw_pair(given, "stride", 1), pad=hw_pair(given, "pad", 0)
        )
    return params


def _check_topology(net: Net, expected: Net, arch: str, *, wiring: bool) -> None:
    """Every layer of the release must exist in ``net`` with the same type and parameters (and, with
    ``wiring``, the same bottoms and tops: a deploy prototxt; a caffemodel saved from the training net
    may name its data blobs differently)."""
    where = net.source or net.name
    have = {layer.name: layer for layer in net.layers}
    for want in expected.layers:
        if want.type in ("Input", "Softmax"):
            continue  # deploy-only layers; a training net has Data and a loss instead
        got = have.get(want.name)
        if got is None:
            raise ConversionError(f"{where}: layer {want.name!r} ({want.type}) of the {arch} release is missing")
        if got.type != want.type:
            raise ConversionError(f"{where}: layer {want.name!r} is a {got.type}, the {arch} release has a {want.type}")
        if wiring and (got.bottoms, got.tops) != (want.bottoms, want.tops):
            raise ConversionError(
                f"{where}: layer {want.name!r} reads {got.bottoms} and writes {got.tops}; "
                f"the {arch} release reads {want.bottoms} and writes {want.tops}"
            )
        a, b = _compute_params(got), _compute_params(want)
        for key in a:
            if a[key] != b[key]:
                raise ConversionError(
                    f"{where}: layer {want.name!r}: {key} is {a[key]!r}, the {arch} release has {b[key]!r}"
                )


def load_caffe(
    caffemodel: str | os.PathLike, prototxt: str | os.PathLike | None = None, arch: str | None = None
) -> CaffeSource:
    """Read a caffemodel (and prototxt), identify the release, check the structures; no torch needed.

    The net that verification runs is the deploy structure: the prototxt when given, else the
    release's own layers (identical to its published deploy prototxt), with the caffemodel's blobs.
    """
    path = Path(caffemodel)
    weights = read_caffemodel(path)
    blobs = _blob_table(weights)
    if not blobs:
        raise ConversionError(f"{path}: the caffemodel holds no blobs (a prototxt saved as .caffemodel?)")
    notes: list[str] = []
    proto = read_prototxt(prototxt) if prototxt is not None else None
    if proto is not None:
        _check_same_net(proto, blobs, weights)
    own = weights if any(layer.bottoms or layer.tops for layer in weights.layers) else None
    name = weights.name or (proto.name if proto is not None else "")
    detection = detect_architecture(name, _shapes(blobs), arch=arch, where=str(path))
    notes += detection.notes
    definitions = [net for net, wiring in ((own, False), (proto, True)) if net is not None]
    for net in definitions:
        _check_topology(net, detection.expected, detection.arch, wiring=net is proto)
    bn_eps = {
        layer.name: _bn_eps(definitions, layer.name) for layer in detection.expected.layers if layer.type == "BatchNorm"
    }
    # Caffe's CopyTrainedLayersFrom: the deploy layers (with the definitions' BatchNorm eps), the blobs.
    if proto is not None:
        deploy = proto
    else:
        deploy = dataclasses.replace(
            detection.expected,
            source=str(path),
            layers=[
                dataclasses.replace(
                    layer,
                    params={
                        **layer.params,
                        "batch_norm_param": {**layer.param("batch_norm_param"), "eps": bn_eps[layer.name]},
                    },
                )
                if layer.name in bn_eps
                else layer
                for layer in detection.expected.layers
            ],
        )
    copy_trained_layers(deploy, weights)
    if own is None and proto is None:
        notes.append(
            f"{path.name} carries no layer definitions and no prototxt was given: the layers of the "
            f"{ARCHS[detection.arch].caffe_name} release were used (its blobs match them exactly)"
        )
    return CaffeSource(path, blobs, deploy, detection, notes, bn_eps)


def _bn_eps(definitions: list[Net], layer: str) -> float:
    """A BatchNorm's eps as the caffemodel's and the prototxt's definitions give it (they must agree)."""
    found = {
        float(net.layer(layer).param("batch_norm_param").get("eps", TORCH_BN_EPS)): net.source for net in definitions
    }
    if len(found) > 1:
        raise ConversionError(
            f"layer {layer!r}: BatchNorm eps differs: "
            + ", ".join(f"{eps:g} in {where}" for eps, where in found.items())
        )
    eps = next(iter(found), TORCH_BN_EPS)
    if not 0 < eps < 1:  # also false for NaN
        raise ConversionError(f"{next(iter(found.values()))}: layer {layer!r}: BatchNorm eps {eps:g} is not in (0, 1)")
    return eps
