"""Caffe → PyTorch conversion of the SENet releases: detect, map, stream to safetensors, verify, describe.

    from senet_zoo.convert import convert
    report = convert("SE-ResNet-50.caffemodel", "out/se_resnet50.caffe_in1k", prototxt="SE-ResNet-50.prototxt")

The conversion itself (reading, mapping, writing) uses numpy only; verification (:mod:`.verify`) runs
torch, the Caffe executor and the models, and is imported only when used.
"""

from .converter import CONVERTER_VERSION, ConversionReport, convert, load_caffe
from .mapping import ConversionError

__all__ = ["convert", "load_caffe", "ConversionReport", "ConversionError", "CONVERTER_VERSION"]
