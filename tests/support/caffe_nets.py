"""Small Caffe nets for the caffe tests (and the converter's), plus a structural comparison."""

from __future__ import annotations

import numpy as np

from senet_zoo.caffe.net import Layer, Net


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def small_net(seed: int = 0, *, v1_compatible: bool = False) -> Net:
    """A tiny net touching every decoded param message (V1-compatible: only V1 layer types)."""
    rng = np.random.default_rng(seed)
    layers = [
        Layer("input", "Input", [], ["data"], {"input_param": {"shape": {"dim": [2, 3, 9, 9]}}}),
        Layer(
            "conv1",
            "Convolution",
            ["data"],
            ["conv1"],
            {
                "convolution_param": {
                    "num_output": 4,
                    "bias_term": True,
                    "pad": [1, 2],
                    "kernel_size": 3,
                    "stride": 2,
                    "group": 1,
                    "dilation": 1,
                }
            },
            [rand(rng, 4, 3, 3, 3), rand(rng, 4)],
        ),
        Layer(
            "conv2",
            "Convolution",
            ["conv1"],
            ["conv2"],
            {
                "convolution_param": {
                    "num_output": 4,
                    "bias_term": False,
                    "kernel_h": 1,
                    "kernel_w": 3,
                    "pad_h": 0,
                    "pad_w": 1,
                    "stride_h": 1,
                    "stride_w": 1,
                    "group": 2,
                    "engine": "CAFFE",
                }
            },
            [rand(rng, 4, 2, 1, 3)],
        ),
        Layer("relu", "ReLU", ["conv2"], ["conv2"], {"relu_param": {"negative_slope": 0.1}}),
        Layer(
            "pool",
            "Pooling",
            ["conv2"],
            ["pool"],
            {"pooling_param": {"pool": "AVE", "kernel_size": 3, "stride": 2, "pad": 1}},
        ),
        Layer(
            "gpool",
            "Pooling",
            ["pool"],
            ["gpool"],
            {"pooling_param": {"pool": "MAX", "global_pooling": True, "engine": "CAFFE"}},
        ),
        Layer(
            "sum",
            "Eltwise",
            ["gpool", "gpool"],
            ["sum"],
            {"eltwise_param": {"operation": "SUM", "coeff": [0.5, -2.25]}},
        ),
        Layer("cat", "Concat", ["sum", "gpool"], ["cat"], {"concat_param": {"axis": 1}}),
        Layer("drop", "Dropout", ["cat"], ["cat"], {"dropout_param": {"dropout_ratio": 0.2}}),
        Layer(
            "fc",
            "InnerProduct",
            ["cat"],
            ["fc"],
            {"inner_product_param": {"num_output": 5, "bias_term": True, "axis": 1}},
            [rand(rng, 5, 8), rand(rng, 5)],
        ),
        Layer("prob", "Softmax", ["fc"], ["prob"], {"softmax_param": {"axis": 1}}),
    ]
    if not v1_compatible:
        layers[1:1] = [
            Layer(
                "bn",
                "BatchNorm",
                ["data"],
                ["data"],
                {"batch_norm_param": {"use_global_stats": True, "eps": 1e-3}},
                [rand(rng, 3), np.abs(rand(rng, 3)), np.array([999.5], np.float32)],
            ),
            Layer(
                "scale",
                "Scale",
                ["data"],
                ["data"],
                {"scale_param": {"bias_term": True, "axis": 1}},
                [rand(rng, 3), rand(rng, 3)],
            ),
        ]
        layers.append(
            Layer(
                "reshape",
                "Reshape",
                ["prob"],
                ["flat"],
                {"reshape_param": {"shape": {"dim": [0, -1, 1]}, "axis": 0, "num_axes": -1}},
            )
        )
    return Net(name="tiny", layers=layers)


def assert_same_net(expected: Net, actual: Net, *, legacy_dims: bool = False) -> None:
    assert actual.name == expected.name
    assert [layer.name for layer in actual.layers] == [layer.name for layer in expected.layers]
    for want, got in zip(expected.layers, actual.layers):
        assert (got.type, got.bottoms, got.tops, got.params) == (want.type, want.bottoms, want.tops, want.params)
        assert len(got.blobs) == len(want.blobs)
        for w, g in zip(want.blobs, got.blobs):
            shape = (1,) * (4 - w.ndim) + w.shape if legacy_dims else w.shape
            assert g.shape == shape and g.dtype == np.float32
            np.testing.assert_array_equal(g.reshape(w.shape), w.astype(np.float32))
