"""An independent Caffe encoder for tests: google.protobuf with a subset of caffe.proto declared here.

It shares no encoding or decoding code with ``senet_zoo.caffe`` (only the Net/Layer dataclasses;
field numbers and types are copied from BVLC caffe.proto), so
files it writes check the project's own reader and writer against a real protobuf implementation.

    encode_net(net, v1=False, packed=True, double=False, legacy_dims=False) -> bytes
    write_caffemodel(net, path, **same options)
    decode_net(data) -> the google.protobuf NetParameter message
    message_classes(packed=True) -> {message name: google.protobuf class} of the declared subset
    net_message(net, **same options) -> the message encode_net serializes

Variants: ``v1`` writes legacy ``layers`` (V1LayerParameter, enum types; an ``Input`` layer becomes
top-level ``input``/``input_dim`` fields as in V1-era nets), ``packed=False`` writes one tag per
float, ``double`` writes ``double_data``, ``legacy_dims`` writes num/channels/height/width instead
of ``shape`` (blobs of fewer than 4 dims are padded with leading 1s, as Caffe's old blobs were).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from senet_zoo.caffe.net import Layer, Net, as_list

_ENUMS = {
    "PoolingParameter.PoolMethod": ["MAX", "AVE", "STOCHASTIC"],
    "PoolingParameter.Engine": ["DEFAULT", "CAFFE", "CUDNN"],
    "PoolingParameter.RoundMode": ["CEIL", "FLOOR"],
    "ConvolutionParameter.Engine": ["DEFAULT", "CAFFE", "CUDNN"],
    "EltwiseParameter.EltwiseOp": ["PROD", "SUM", "MAX"],
    "SoftmaxParameter.Engine": ["DEFAULT", "CAFFE", "CUDNN"],
    "ReLUParameter.Engine": ["DEFAULT", "CAFFE", "CUDNN"],
}
_V1_TYPES = {  # V1LayerParameter.LayerType
    "Concat": 3,
    "Convolution": 4,
    "Data": 5,
    "Dropout": 6,
    "Eltwise": 25,
    "InnerProduct": 14,
    "Pooling": 17,
    "ReLU": 18,
    "Sigmoid": 19,
    "Softmax": 20,
    "Split": 22,
    "Flatten": 8,
}
# (label, type, name, number): type is a scalar type, a message or an enum declared above.
_PARAMS = {
    "ConvolutionParameter": [
        ("optional", "uint32", "num_output", 1),
        ("optional", "bool", "bias_term", 2),
        ("repeated", "uint32", "pad", 3),
        ("repeated", "uint32", "kernel_size", 4),
        ("optional", "uint32", "group", 5),
        ("repeated", "uint32", "stride", 6),
        ("optional", "uint32", "pad_h", 9),
        ("optional", "uint32", "pad_w", 10),
        ("optional", "uint32", "kernel_h", 11),
        ("optional", "uint32", "kernel_w", 12),
        ("optional", "uint32", "stride_h", 13),
        ("optional", "uint32", "stride_w", 14),
        ("optional", "ConvolutionParameter.Engine", "engine", 15),
        ("optional", "int32", "axis", 16),
        ("repeated", "uint32", "dilation", 18),
    ],
    "PoolingParameter": [
        ("optional", "PoolingParameter.PoolMethod", "pool", 1),
        ("repeated", "uint32", "kernel_size", 2),
        ("repeated", "uint32", "stride", 3),
        ("repeated", "uint32", "pad", 4),
        ("optional", "uint32", "kernel_h", 5),
        ("optional", "uint32", "kernel_w", 6),
        ("optional", "uint32", "stride_h", 7),
        ("optional", "uint32", "stride_w", 8),
        ("optional", "uint32", "pad_h", 9),
        ("optional", "uint32", "pad_w", 10),
        ("optional", "PoolingParameter.Engine", "engine", 11),
        ("optional", "bool", "global_pooling", 12),
        ("optional", "PoolingParameter.RoundMode", "round_mode", 13),
    ],
    "BatchNormParameter": [
        ("optional", "bool", "use_global_stats", 1),
        ("optional", "float", "moving_average_fraction", 2),
        ("optional", "float", "eps", 3),
    ],
    "ScaleParameter": [
        ("optional", "int32", "axis", 1),
        ("optional", "int32", "num_axes", 2),
        ("optional", "bool", "bias_term", 4),
    ],
    "InnerProductParameter": [
        ("optional", "uint32", "num_output", 1),
        ("optional", "bool", "bias_term", 2),
        ("optional", "int32", "axis", 5),
        ("optional", "bool", "transpose", 6),
    ],
    "ReshapeParameter": [
        ("optional", "BlobShape", "shape", 1),
        ("optional", "int32", "axis", 2),
        ("optional", "int32", "num_axes", 3),
    ],
    "DropoutParameter": [("optional", "float", "dropout_ratio", 1)],
    "ConcatParameter": [("optional", "uint32", "concat_dim", 1), ("optional", "int32", "axis", 2)],
    "EltwiseParameter": [
        ("optional", "EltwiseParameter.EltwiseOp", "operation", 1),
        ("repeated", "float", "coeff", 2),
    ],
    "InputParameter": [("repeated", "BlobShape", "shape", 1)],
    "SoftmaxParameter": [
        ("optional", "SoftmaxParameter.Engine", "engine", 1),
        ("optional", "int32", "axis", 2),
    ],
    "ReLUParameter": [
        ("optional", "float", "negative_slope", 1),
        ("optional", "ReLUParameter.Engine", "engine", 2),
    ],
}
# layer field name -> (LayerParameter number, V1LayerParameter number or None)
_LAYER_PARAMS = {
    "concat_param": ("ConcatParameter", 104, 9),
    "convolution_param": ("ConvolutionParameter", 106, 10),
    "dropout_param": ("DropoutParameter", 108, 12),
    "eltwise_param": ("EltwiseParameter", 110, 24),
    "inner_product_param": ("InnerProductParameter", 117, 17),
    "pooling_param": ("PoolingParameter", 121, 19),
    "relu_param": ("ReLUParameter", 123, 30),
    "softmax_param": ("SoftmaxParameter", 125, 39),
    "reshape_param": ("ReshapeParameter", 133, None),
    "batch_norm_param": ("BatchNormParameter", 139, None),
    "scale_param": ("ScaleParameter", 142, None),
    "input_param": ("InputParameter", 143, None),
}
_SCALARS = {
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
}


def _add_field(msg: Any, label: str, type_: str, name: str, number: int, packed: bool = False) -> None:
    fdp = descriptor_pb2.FieldDescriptorProto
    field = msg.field.add(
        name=name, number=number, label=fdp.LABEL_REPEATED if label == "repeated" else fdp.LABEL_OPTIONAL
    )
    if type_ in _SCALARS:
        field.type = _SCALARS[type_]
    elif type_ in _ENUMS or type_.endswith("LayerType"):
        field.type = fdp.TYPE_ENUM
        field.type_name = f".caffe.{type_}"
    else:
        field.type = fdp.TYPE_MESSAGE
        field.type_name = f".caffe.{type_}"
    if packed:
        field.options.packed = True


@functools.cache
def message_classes(packed: bool) -> dict[str, type]:  # noqa: C901  (builds the .proto in one place)
    """Message classes of the declared subset, in a private pool; ``packed`` marks BlobProto data."""
    fdp = descriptor_pb2.FileDescriptorProto(name=f"caffe_subset_{int(packed)}.proto", package="caffe", syntax="proto2")
    messages: dict[str, Any] = {}

    def message(name: str) -> Any:
        messages[name] = fdp.message_type.add(name=name)
        return messages[name]

    _add_field(message("BlobShape"), "repeated", "int64", "dim", 1, packed=True)
    blob = message("BlobProto")
    for label, type_, name, number, pack in [
        ("optional", "int32", "num", 1, False),
        ("optional", "int32", "channels", 2, False),
        ("optional", "int32", "height", 3, False),
        ("optional", "int32", "width", 4, False),
        ("repeated", "float", "data", 5, packed),
        ("repeated", "float", "diff", 6, True),
        ("optional", "BlobShape", "shape", 7, False),
        ("repeated", "double", "double_data", 8, packed),
    ]:
        _add_field(blob, label, type_, name, number, pack)
    for name, fields in _PARAMS.items():
        msg = message(name)
        for field in fields:
            _add_field(msg, *field)
    for full, values in _ENUMS.items():
        owner, enum_name = full.split(".")
        enum = messages[owner].enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    layer = message("LayerParameter")
    for label, type_, name, number in [
        ("optional", "string", "name", 1),
        ("optional", "string", "type", 2),
        ("repeated", "string", "bottom", 3),
        ("repeated", "string", "top", 4),
        ("repeated", "BlobProto", "blobs", 7),
    ]:
        _add_field(layer, label, type_, name, number)
    v1 = message("V1LayerParameter")
    enum = v1.enum_type.add(name="LayerType")
    enum.value.add(name="NONE", number=0)
    for _type_name, number in sorted(_V1_TYPES.items(), key=lambda kv: kv[1]):
        enum.value.add(name=f"T{number}", number=number)
    for label, type_, name, number in [
        ("repeated", "string", "bottom", 2),
        ("repeated", "string", "top", 3),
        ("optional", "string", "name", 4),
        ("optional", "V1LayerParameter.LayerType", "type", 5),
        ("repeated", "BlobProto", "blobs", 6),
    ]:
        _add_field(v1, label, type_, name, number)
    for name, (type_, number, v1_number) in _LAYER_PARAMS.items():
        _add_field(layer, "optional", type_, name, number)
        if v1_number is not None:
            _add_field(v1, "optional", type_, name, v1_number)
    net = message("NetParameter")
    for label, type_, name, number in [
        ("optional", "string", "name", 1),
        ("repeated", "V1LayerParameter", "layers", 2),
        ("repeated", "string", "input", 3),
        ("repeated", "int32", "input_dim", 4),
        ("repeated", "BlobShape", "input_shape", 8),
        ("repeated", "LayerParameter", "layer", 100),
    ]:
        _add_field(net, label, type_, name, number)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}")) for name in messages}


def _fill(msg: Any, params: dict[str, Any]) -> None:
    """Set a message's fields from a senet_zoo params dict (scalar or list per field)."""
    for key, value in params.items():
        field = msg.DESCRIPTOR.fields_by_name[key]
        repeated = field.is_repeated
        values = as_list(value) if repeated else [value]
        for item in values:
            if field.message_type is not None:
                _fill(getattr(msg, key).add() if repeated else getattr(msg, key), item)
                continue
            if field.enum_type is not None:
                item = field.enum_type.values_by_name[item].number
            if repeated:
                getattr(msg, key).append(item)
            else:
                setattr(msg, key, item)


def _fill_blob(msg: Any, array: np.ndarray, *, double: bool, legacy_dims: bool) -> None:
    shape = list(np.shape(array))
    if legacy_dims:
        if len(shape) > 4:
            raise ValueError(f"legacy blob dims hold at most 4 axes, got {shape}")
        msg.num, msg.channels, msg.height, msg.width = [1] * (4 - len(shape)) + shape
    else:
        msg.shape.dim.extend(shape)
    values = np.asarray(array).ravel().tolist()
    (msg.double_data if double else msg.data).extend(values)


def net_message(
    net: Net, *, v1: bool = False, packed: bool = True, double: bool = False, legacy_dims: bool = False
) -> Any:
    """The google.protobuf NetParameter for ``net`` (see the module docstring for the options)."""
    classes = message_classes(packed)
    msg = classes["NetParameter"]()
    if net.name:
        msg.name = net.name
    for layer in net.layers:
        if v1 and layer.type == "Input":
            _legacy_inputs(msg, layer)
            continue
        out = msg.layers.add() if v1 else msg.layer.add()
        out.name = layer.name
        if v1:
            if layer.type not in _V1_TYPES:
                raise ValueError(f"layer type {layer.type!r} does not exist in V1 Caffe")
            out.type = _V1_TYPES[layer.type]
        else:
            out.type = layer.type
        out.bottom.extend(layer.bottoms)
        out.top.extend(layer.tops)
        for blob in layer.blobs:
            _fill_blob(out.blobs.add(), blob, double=double, legacy_dims=legacy_dims)
        _fill(out, layer.params)
    return msg


def _legacy_inputs(msg: Any, layer: Layer) -> None:
    msg.input.extend(layer.tops)
    for shape in as_list(layer.param("input_param").get("shape")):
        msg.input_dim.extend(as_list(shape.get("dim")))


def encode_net(net: Net, **options: bool) -> bytes:
    """Serialize ``net`` (blobs included) to caffemodel bytes with google.protobuf."""
    return net_message(net, **options).SerializeToString()


def write_caffemodel(net: Net, path: str | os.PathLike, **options: bool) -> None:
    """Write ``net`` as a caffemodel file with google.protobuf (see :func:`encode_net`)."""
    with open(path, "wb") as f:
        f.write(encode_net(net, **options))


def decode_net(data: bytes) -> Any:
    """Parse caffemodel bytes into the google.protobuf NetParameter message of this subset."""
    msg = message_classes(True)["NetParameter"]()
    msg.ParseFromString(data)
    return msg
