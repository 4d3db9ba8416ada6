"""The subset of Caffe's ``caffe.proto`` that senet_zoo reads and writes, as plain tables.

Field numbers and types follow BVLC caffe.proto (``src/caffe/proto/caffe.proto``). Both readers
(binary :mod:`.wire`, text :mod:`.prototxt`) and the writer use these tables, so the three agree on
names, numbers, types and enum values. Fields outside this subset are skipped by the binary reader
and kept verbatim (untyped) by the text reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Field",
    "MESSAGES",
    "NET_FIELDS",
    "LAYER_FIELDS",
    "V1_LAYER_FIELDS",
    "V1_LAYER_TYPES",
    "V2_TO_V1_NUMBER",
    "VARINT_KINDS",
    "float32",
    "normalize_value",
]

# kind: "uint" (uint32/uint64), "int" (int32/int64, two's complement), "bool", "float", "double",
# "string", "enum" (ref = {number: name}), "message" (ref = message name in MESSAGES).
VARINT_KINDS = frozenset({"uint", "int", "bool", "enum"})


@dataclass(frozen=True)
class Field:
    number: int
    name: str
    kind: str
    repeated: bool = False
    packed: bool = False
    ref: Any = None  # message name, or {number: name} for enums


def _enum(*names: str, start: int = 0) -> dict[int, str]:
    return {start + i: name for i, name in enumerate(names)}


ENGINE = _enum("DEFAULT", "CAFFE", "CUDNN")
PHASE = _enum("TRAIN", "TEST")


def _f(number: int, name: str, kind: str, ref: Any = None, *, rep: bool = False, packed: bool = False) -> Field:
    return Field(number, name, kind, rep, packed, ref)


MESSAGES: dict[str, dict[int, Field]] = {
    name: {f.number: f for f in fields}
    for name, fields in {
        "BlobShape": [_f(1, "dim", "int", rep=True, packed=True)],
        "FillerParameter": [
            _f(1, "type", "string"),
            _f(2, "value", "float"),
            _f(3, "min", "float"),
            _f(4, "max", "float"),
            _f(5, "mean", "float"),
            _f(6, "std", "float"),
            _f(7, "sparse", "int"),
            _f(8, "variance_norm", "enum", _enum("FAN_IN", "FAN_OUT", "AVERAGE")),
        ],
        "ParamSpec": [
            _f(1, "name", "string"),
            _f(2, "share_mode", "enum", _enum("STRICT", "PERMISSIVE")),
            _f(3, "lr_mult", "float"),
            _f(4, "decay_mult", "float"),
        ],
        "NetStateRule": [
            _f(1, "phase", "enum", PHASE),
            _f(2, "min_level", "int"),
            _f(3, "max_level", "int"),
            _f(4, "stage", "string", rep=True),
            _f(5, "not_stage", "string", rep=True),
        ],
        "NetState": [
            _f(1, "phase", "enum", PHASE),
            _f(2, "level", "int"),
            _f(3, "stage", "string", rep=True),
        ],
        "ConvolutionParameter": [
            _f(1, "num_output", "uint"),
            _f(2, "bias_term", "bool"),
            _f(3, "pad", "uint", rep=True),
            _f(4, "kernel_size", "uint", rep=True),
            _f(5, "group", "uint"),
            _f(6, "stride", "uint", rep=True),
            _f(7, "weight_filler", "message", "FillerParameter"),
            _f(8, "bias_filler", "message", "FillerParameter"),
            _f(9, "pad_h", "uint"),
            _f(10, "pad_w", "uint"),
            _f(11, "kernel_h", "uint"),
            _f(12, "kernel_w", "uint"),
            _f(13, "stride_h", "uint"),
            _f(14, "stride_w", "uint"),
            _f(15, "engine", "enum", ENGINE),
            _f(16, "axis", "int"),
            _f(17, "force_nd_im2col", "bool"),
            _f(18, "dilation", "uint", rep=True),
        ],
        "PoolingParameter": [
            _f(1, "pool", "enum", _enum("MAX", "AVE", "STOCHASTIC")),
            _f(2, "kernel_size", "uint", rep=True),
            _f(3, "stride", "uint", rep=True),
            _f(4, "pad", "uint", rep=True),
            _f(5, "kernel_h", "uint"),
            _f(6, "kernel_w", "uint"),
            _f(7, "stride_h", "uint"),
            _f(8, "stride_w", "uint"),
            _f(9, "pad_h", "uint"),
            _f(10, "pad_w", "uint"),
            _f(11, "engine", "enum", ENGINE),
            _f(12, "global_pooling", "bool"),
            _f(13, "round_mode", "enum", _enum("CEIL", "FLOOR")),
        ],
        "BatchNormParameter": [
            _f(1, "use_global_stats", "bool"),
            _f(2, "moving_average_fraction", "float"),
            _f(3, "eps", "float"),
        ],
        "ScaleParameter": [
            _f(1, "axis", "int"),
            _f(2, "num_axes", "int"),
            _f(3, "filler", "message", "FillerParameter"),
            _f(4, "bias_term", "bool"),
            _f(5, "bias_filler", "message", "FillerParameter"),
        ],
        "InnerProductParameter": [
            _f(1, "num_output", "uint"),
            _f(2, "bias_term", "bool"),
            _f(3, "weight_filler", "message", "FillerParameter"),
            _f(4, "bias_filler", "message", "FillerParameter"),
            _f(5, "axis", "int"),
            _f(6, "transpose", "bool"),
        ],
        "ReshapeParameter": [
            _f(1, "shape", "message", "BlobShape"),
            _f(2, "axis", "int"),
            _f(3, "num_axes", "int"),
        ],
        "FlattenParameter": [_f(1, "axis", "int"), _f(2, "end_axis", "int")],
        "DropoutParameter": [_f(1, "dropout_ratio", "float"), _f(2, "scale_train", "bool")],
        "ConcatParameter": [_f(1, "concat_dim", "uint"), _f(2, "axis", "int")],
        "EltwiseParameter": [
            _f(1, "operation", "enum", _enum("PROD", "SUM", "MAX")),
            _f(2, "coeff", "float", rep=True),
            _f(3, "stable_prod_grad", "bool"),
        ],
        "InputParameter": [_f(1, "shape", "message", "BlobShape", rep=True)],
        "SoftmaxParameter": [_f(1, "engine", "enum", ENGINE), _f(2, "axis", "int")],
        "ReLUParameter": [_f(1, "negative_slope", "float"), _f(2, "engine", "enum", ENGINE)],
        "SigmoidParameter": [_f(1, "engine", "enum", ENGINE)],
    }.items()
}

# Net-level fields other than the layers themselves (which the readers handle directly).
NET_FIELDS: dict[int, Field] = {
    f.number: f
    for f in [
        _f(1, "name", "string"),
        _f(3, "input", "string", rep=True),
        _f(4, "input_dim", "int", rep=True),
        _f(5, "force_backward", "bool"),
        _f(6, "state", "message", "NetState"),
        _f(7, "debug_info", "bool"),
        _f(8, "input_shape", "message", "BlobShape", rep=True),
    ]
}

# (name, V2 LayerParameter number, V1LayerParameter number or None, kind, ref, repeated)
_LAYER_PARAMS = [
    ("loss_weight", 5, 35, "float", None, True),
    ("param", 6, None, "message", "ParamSpec", True),
    ("include", 8, 32, "message", "NetStateRule", True),
    ("exclude", 9, 33, "message", "NetStateRule", True),
    ("phase", 10, None, "enum", PHASE, False),
    ("propagate_down", 11, None, "bool", None, True),
    ("concat_param", 104, 9, "message", "ConcatParameter", False),
    ("convolution_param", 106, 10, "message", "ConvolutionParameter", False),
    ("dropout_param", 108, 12, "message", "DropoutParameter", False),
    ("eltwise_param", 110, 24, "message", "EltwiseParameter", False),
    ("inner_product_param", 117, 17, "message", "InnerProductParameter", False),
    ("pooling_param", 121, 19, "message", "PoolingParameter", False),
    ("relu_param", 123, 30, "message", "ReLUParameter", False),
    ("sigmoid_param", 124, 38, "message", "SigmoidParameter", False),
    ("softmax_param", 125, 39, "message", "SoftmaxParameter", False),
    ("reshape_param", 133, None, "message", "ReshapeParameter", False),
    ("flatten_param", 135, None, "message", "FlattenParameter", False),
    ("batch_norm_param", 139, None, "message", "BatchNormParameter", False),
    ("scale_param", 142, None, "message", "ScaleParameter", False),
    ("input_param", 143, None, "message", "InputParameter", False),
]
# Layer fields besides name/type/bottom/top/blobs, which the readers handle directly:
# V2 LayerParameter: name 1, type 2 (string), bottom 3, top 4, blobs 7.
# V1LayerParameter: bottom 2, top 3, name 4, type 5 (enum), blobs 6.
LAYER_FIELDS: dict[int, Field] = {
    v2: Field(v2, name, kind, rep, False, ref) for name, v2, _, kind, ref, rep in _LAYER_PARAMS
}
V1_LAYER_FIELDS: dict[int, Field] = {
    v1: Field(v1, name, kind, rep, False, ref) for name, _, v1, kind, ref, rep in _LAYER_PARAMS if v1 is not None
}

# V1LayerParameter.LayerType number -> (V1 enum name, V2 type string), as Caffe's own upgrade does.
V1_LAYER_TYPES: dict[int, tuple[str, str]] = {
    0: ("NONE", ""),
    35: ("ABSVAL", "AbsVal"),
    1: ("ACCURACY", "Accuracy"),
    30: ("ARGMAX", "ArgMax"),
    2: ("BNLL", "BNLL"),
    3: ("CONCAT", "Concat"),
    37: ("CONTRASTIVE_LOSS", "ContrastiveLoss"),
    4: ("CONVOLUTION", "Convolution"),
    39: ("DECONVOLUTION", "Deconvolution"),
    5: ("DATA", "Data"),
    6: ("DROPOUT", "Dropout"),
    32: ("DUMMY_DATA", "DummyData"),
    7: ("EUCLIDEAN_LOSS", "EuclideanLoss"),
    25: ("ELTWISE", "Eltwise"),
    38: ("EXP", "Exp"),
    8: ("FLATTEN", "Flatten"),
    9: ("HDF5_DATA", "HDF5Data"),
    10: ("HDF5_OUTPUT", "HDF5Output"),
    28: ("HINGE_LOSS", "HingeLoss"),
    11: ("IM2COL", "Im2col"),
    12: ("IMAGE_DATA", "ImageData"),
    13: ("INFOGAIN_LOSS", "InfogainLoss"),
    14: ("INNER_PRODUCT", "InnerProduct"),
    15: ("LRN", "LRN"),
    29: ("MEMORY_DATA", "MemoryData"),
    16: ("MULTINOMIAL_LOGISTIC_LOSS", "MultinomialLogisticLoss"),
    34: ("MVN", "MVN"),
    17: ("POOLING", "Pooling"),
    26: ("POWER", "Power"),
    18: ("RELU", "ReLU"),
    19: ("SIGMOID", "Sigmoid"),
    27: ("SIGMOID_CROSS_ENTROPY_LOSS", "SigmoidCrossEntropyLoss"),
    36: ("SILENCE", "Silence"),
    20: ("SOFTMAX", "Softmax"),
    21: ("SOFTMAX_LOSS", "SoftmaxWithLoss"),
    22: ("SPLIT", "Split"),
    33: ("SLICE", "Slice"),
    23: ("TANH", "TanH"),
    24: ("WINDOW_DATA", "WindowData"),
    31: ("THRESHOLD", "Threshold"),
}
V2_TO_V1_NUMBER: dict[str, int] = {v2: n for n, (_, v2) in V1_LAYER_TYPES.items() if v2}


def float32(value: float) -> float:
    """Round to float32 and back to the shortest decimal that float32 prints as.

    Both readers apply it to ``float`` fields, so ``0.2`` read from a prototxt equals ``0.2`` read
    from a caffemodel (where it is stored as the float32 0.20000000298...).
    """
    return float(str(np.float32(value)))


def normalize_value(field: Field, value: Any) -> Any:
    """Coerce a text-format scalar to the Python type the binary reader yields for ``field``.

    Raises ValueError with a short reason when the value cannot belong to the field.
    """
    kind = field.kind
    integer = isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool" and (isinstance(value, bool) or (integer and value in (0, 1))):
        return bool(value)
    if kind in ("uint", "int") and integer:
        if kind == "uint" and value < 0:
            raise ValueError(f"{field.name} must not be negative, got {value}")
        return value
    if kind in ("float", "double") and (integer or isinstance(value, float)):
        return float32(value) if kind == "float" else float(value)
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "enum":
        if isinstance(value, str) and value in field.ref.values():
            return value
        if integer and value in field.ref:
            return field.ref[value]
        raise ValueError(f"{field.name}: {value!r} is not one of {sorted(field.ref.values())}")
    raise ValueError(f"{field.name} expects a {kind} value, got {value!r}")
