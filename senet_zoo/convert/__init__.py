"""Caffe → PyTorch conversion of the SENet releases: detect, map, stream to safetensors, verify, describe.

    from senet_zoo.convert import convert
    report = convert("SE-ResNet-50.caffemodel", "out/se_resnet50.caffe_in1k", prototxt="SE-ResNet-50.prototxt")

The conversion itself (reading, mapping, sanity checks, writing) is numpy work; shape inference
comes from the Caffe executor's layer rules (:mod:`senet_zoo.caffe.executor`, which imports torch
but runs no tensors for it); verification (:mod:`.verify`) runs the executor and the models in
float64 and is imported only when used. The names below load on first use (PEP 562), so
``import senet_zoo.convert`` imports neither torch nor timm.
"""

from __future__ import annotations

from .._lazy import lazy_api

# public name → the module of this package that defines it
_API = {
    "convert": "converter",
    "load_caffe": "source",
    "ConversionReport": "report",
    "CONVERTER_VERSION": "report",
    "ConversionError": "mapping",
}

__all__ = list(_API)


__getattr__, __dir__ = lazy_api(__name__, _API)
