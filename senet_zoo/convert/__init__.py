"""Caffe → PyTorch conversion of the SENet releases: detect, map, stream to safetensors, verify, describe.

    from senet_zoo.convert import convert
    report = convert("SE-ResNet-50.caffemodel", "out/se_resnet50.caffe_in1k", prototxt="SE-ResNet-50.prototxt")

The conversion itself (reading, mapping, sanity checks, writing) is numpy work; shape inference
comes from the Caffe executor's layer rules (:mod:`senet_zoo.caffe.executor`, which imports torch
but runs no tensors for it); verification (:mod:`.verify`) runs the executor and the models in
float64 and is imported only when used.
"""

from .converter import CONVERTER_VERSION, ConversionReport, convert, load_caffe
from .mapping import ConversionError

__all__ = ["convert", "load_caffe", "ConversionReport", "ConversionError", "CONVERTER_VERSION"]
