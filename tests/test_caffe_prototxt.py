"""senet_zoo.caffe.prototxt: the protobuf text-format reader."""

from __future__ import annotations

import math

import pytest
from support.caffe_proto import encode_net

from senet_zoo.caffe.net import CaffeFormatError
from senet_zoo.caffe.prototxt import parse_prototxt, read_prototxt
from senet_zoo.caffe.wire import parse_caffemodel

EVERY_FEATURE = r"""
# leading comment
name: "feat\"ures\x41\101\n" 'second'  # adjacent strings concatenate
layer {
  name: 'data' type: "Input" top: "data"
  input_param: { shape: { dim: 1 dim: 3 dim: 9 dim: 9 } }
}
layer <
  name: "conv" ; type: "Convolution"
  bottom: "data", top: "conv"
  convolution_param {
    num_output: 0x10
    bias_term: false
    pad: 1 pad: 2            # repeated field, written twice
    kernel_size: [3, 5]      # repeated field, list syntax
    stride: 2
    weight_filler { type: "msra" std: 1e-2 }
  }
  param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
>
layer {
  name: "bn" type: "BatchNorm" bottom: "conv" top: "conv"
  batch_norm_param { use_global_stats: 1 eps: 2.5E-4 moving_average_fraction: .999 }
}
layer {
  name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 global_pooling: False round_mode: 1 }
}
layer {
  name: "reshape" type: "Reshape" bottom: "pool" top: "flat"
  reshape_param { shape { dim: 0 dim: -1 } axis: -4 }
  include { phase: TEST }
}
layer {
  name: "relu" type: "ReLU" bottom: "flat" top: "flat"
  relu_param { negative_slope: -0.5f }
  custom_param { ratio: -inf flag: true mode: FANCY label: "x" }
}
"""


def test_every_syntax_feature():
    net = parse_prototxt(EVERY_FEATURE, source="features.prototxt")
    assert net.name == 'feat"uresAA\nsecond'
    assert net.source == "features.prototxt"
    assert [(layer.name, layer.type) for layer in net.layers] == [
        ("data", "Input"),
        ("conv", "Convolution"),
        ("bn", "BatchNorm"),
        ("pool", "Pooling"),
        ("reshape", "Reshape"),
        ("relu", "ReLU"),
    ]
    data, conv, bn, pool, reshape, relu = net.layers
    assert data.tops == ["data"] and data.bottoms == []
    assert data.params == {"input_param": {"shape": {"dim": [1, 3, 9, 9]}}}
    assert (conv.bottoms, conv.tops) == (["data"], ["conv"])
    assert conv.params == {
        "convolution_param": {
            "num_output": 16,
            "bias_term": False,
            "pad": [1, 2],
            "kernel_size": [3, 5],
            "stride": 2,
            "weight_filler": {"type": "msra", "std": 0.01},
        },
        "param": [{"lr_mult": 1.0}, {"lr_mult": 2.0, "decay_mult": 0.0}],
    }
    bn_param = bn.param("batch_norm_param")
    assert bn_param == {"use_global_stats": True, "eps": 2.5e-4, "moving_average_fraction": 0.999}
    assert bn_param["use_global_stats"] is True  # 1 coerced to the field's bool type
    assert pool.params == {
        "pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2, "global_pooling": False, "round_mode": "FLOOR"}
    }
    assert reshape.params == {"reshape_param": {"shape": {"dim": [0, -1]}, "axis": -4}, "include": {"phase": "TEST"}}
    assert relu.param("relu_param") == {"negative_slope": -0.5}
    custom = relu.params["custom_param"]  # unknown message: kept as written
    assert math.isinf(custom["ratio"]) and custom["ratio"] < 0
    assert (custom["flag"], custom["mode"], custom["label"]) == (True, "FANCY", "x")


def test_same_structure_as_the_binary_reader():
    """Every typed field matches what the wire reader yields for the same net, floats included."""
    text = EVERY_FEATURE.replace('custom_param { ratio: -inf flag: true mode: FANCY label: "x" }', "")
    text = text.replace('weight_filler { type: "msra" std: 1e-2 }', "")
    text = text.replace("param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }", "")
    text = text.replace("include { phase: TEST }", "")
    net = parse_prototxt(text)
    decoded = parse_caffemodel(encode_net(net))
    assert [(layer.name, layer.type, layer.bottoms, layer.tops, layer.params) for layer in decoded.layers] == [
        (layer.name, layer.type, layer.bottoms, layer.tops, layer.params) for layer in net.layers
    ]
    assert decoded.layer("bn").param("batch_norm_param")["eps"] == 2.5e-4  # not 0.00025000001


def test_legacy_v1_layers_and_net_inputs(tmp_path):
    path = tmp_path / "old.prototxt"
    path.write_text("""
name: "Old"
input: "data"
input_dim: 10 input_dim: 3 input_dim: 227 input_dim: 227
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
         blobs_lr: 1 blobs_lr: 2
         convolution_param { num_output: 96 kernel_size: 11 stride: 4 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "fc" type: 14 bottom: "conv1" top: "fc" inner_product_param { num_output: 2 } }
""")
    net = read_prototxt(path)
    assert [(layer.name, layer.type, layer.tops) for layer in net.layers] == [
        ("input", "Input", ["data"]),
        ("conv1", "Convolution", ["conv1"]),
        ("relu1", "ReLU", ["conv1"]),
        ("fc", "InnerProduct", ["fc"]),
    ]
    assert net.layers[0].params == {"input_param": {"shape": {"dim": [10, 3, 227, 227]}}}
    assert net.layer("conv1").params == {
        "convolution_param": {"num_output": 96, "kernel_size": 11, "stride": 4},
        "blobs_lr": [1, 2],
    }


def test_input_shape_and_text_blobs():
    net = parse_prototxt("""
input: "a" input_shape { dim: 1 dim: 2 }
input: "b" input_shape { dim: 3 }
layer { name: "s" type: "Scale" bottom: "a" top: "s"
        blobs { shape { dim: 2 } data: 1.5 data: -2 } }
""")
    assert net.layers[0].tops == ["a", "b"]
    assert net.layers[0].params == {"input_param": {"shape": [{"dim": [1, 2]}, {"dim": 3}]}}
    (blob,) = net.layer("s").blobs
    assert blob.shape == (2,) and blob.tolist() == [1.5, -2.0]


@pytest.mark.parametrize(
    "text, where, words",
    [
        ('layer {\n  name: "x"\n', "3:1", "end of file"),
        ('layer {\n  name: "x"\n  num_output 3\n}', "3:14", "expected ':' or '{'"),
        ('layer {\n  convolution_param { num_output: "many" }\n}', "2:35", "num_output expects a uint"),
        ("layer {\n  pooling_param {\n    pool: MEDIAN\n  }\n}", "3:11", "MEDIAN"),
        ('layer {\n  name: "x" $\n}', "2:13", "unexpected character '$'"),
        ('layer {\n  name: "bad \\q escape"\n}', "2:14", "unknown escape"),
        ("layer {\n  convolution_param: 3\n}", "2:22", "is a message"),
        ('layer {\n  type: "A"\n  bottom { x: 1 }\n}', "3:10", "not a message"),
        ("layers {\n  type: FANCY\n}", "1:1", "unknown V1 layer type"),
        ("layer { convolution_param { pad: -1 } }", "1:34", "must not be negative"),
    ],
)
def test_errors_name_file_line_and_column(text, where, words):
    with pytest.raises(CaffeFormatError) as err:
        parse_prototxt(text, source="net.prototxt")
    assert str(err.value).startswith(f"net.prototxt:{where}: "), str(err.value)
    assert words in str(err.value)


def test_binary_file_is_rejected(tmp_path):
    path = tmp_path / "model.prototxt"
    path.write_bytes(b"\x0a\x04name\xa2\x06\xff\xfe")
    with pytest.raises(CaffeFormatError, match="not a UTF-8 text file"):
        read_prototxt(path)
