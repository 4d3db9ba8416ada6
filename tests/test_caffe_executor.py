"""senet_zoo.caffe.executor: Caffe layer semantics against hand-computed numpy references."""

from __future__ import annotations

import math
import weakref

import numpy as np
import pytest
import torch

from senet_zoo.caffe import executor
from senet_zoo.caffe.executor import (
    ExecutionError,
    Executor,
    infer_shapes,
    pool_output_size,
    random_blobs,
    run,
)
from senet_zoo.caffe.net import Layer, Net
from senet_zoo.caffe.prototxt import parse_prototxt

RNG = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def net_of(input_shape, *layers: Layer) -> Net:
    data = Layer("data", "Input", [], ["data"], {"input_param": {"shape": {"dim": list(input_shape)}}})
    return Net("test", [data, *layers])


def on_data(name: str, type_: str, params: dict, blobs: list[np.ndarray]) -> Layer:
    """A layer that reads the input blob ``data`` and writes the blob ``name``."""
    return Layer(name, type_, ["data"], [name], params, blobs)


def fc_net(shape: tuple[int, ...], param: dict, blobs: list[np.ndarray]) -> Net:
    """data → InnerProduct ``fc`` with ``inner_product_param`` ``param``."""
    return net_of(shape, on_data("fc", "InnerProduct", {"inner_product_param": param}, blobs))


def bn_net(shape: tuple[int, ...], param: dict, mean: np.ndarray, var: np.ndarray, factor: float) -> Net:
    """data → BatchNorm ``bn`` with ``batch_norm_param`` ``param`` and Caffe's three blobs as given."""
    blobs = [np.asarray(mean, np.float32), np.asarray(var, np.float32), np.array([factor], np.float32)]
    return net_of(shape, on_data("bn", "BatchNorm", {"batch_norm_param": param}, blobs))


def run1(net: Net, x: np.ndarray, output: str | None = None, dtype=torch.float64) -> np.ndarray:
    out = run(net, torch.from_numpy(x), [output] if output else None, dtype=dtype)
    (value,) = out.values()
    return value.numpy()


# -- pooling: a literal transcription of Caffe's PoolingLayer::Forward_cpu ----------------------


def caffe_pool(x: np.ndarray, method: str, k: int, s: int, p: int) -> np.ndarray:
    n, c, height, width = x.shape
    ph_out = int(math.ceil(float(height + 2 * p - k) / s)) + 1
    pw_out = int(math.ceil(float(width + 2 * p - k) / s)) + 1
    if p:
        if (ph_out - 1) * s >= height + p:
            ph_out -= 1
        if (pw_out - 1) * s >= width + p:
            pw_out -= 1
    out = np.zeros((n, c, ph_out, pw_out))
    for ph in range(ph_out):
        for pw in range(pw_out):
            hstart, wstart = ph * s - p, pw * s - p
            if method == "MAX":
                hend, wend = min(hstart + k, height), min(wstart + k, width)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                out[:, :, ph, pw] = x[:, :, hstart:hend, wstart:wend].max(axis=(2, 3))
            else:
                hend, wend = min(hstart + k, height + p), min(wstart + k, width + p)
                pool_size = (hend - hstart) * (wend - wstart)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                hend, wend = min(hend, height), min(wend, width)
                out[:, :, ph, pw] = x[:, :, hstart:hend, wstart:wend].sum(axis=(2, 3)) / pool_size
    return out


def pool_net(shape, **param) -> Net:
    return net_of(shape, Layer("pool", "Pooling", ["data"], ["pool"], {"pooling_param": param}))


@pytest.mark.parametrize(
    "size, k, s, p",
    [
        (7, 3, 2, 1),
        (8, 3, 2, 0),
        (5, 2, 2, 1),
        (6, 3, 2, 1),
        (9, 3, 3, 1),
        (112, 3, 2, 0),
        (7, 7, 1, 0),
        (10, 3, 1, 2),
    ],
)
@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_pooling_matches_caffe(size, k, s, p, method):
    x = rand(2, 3, size, size + 1) if size < 20 else rand(1, 2, size, size)  # small ones not square
    got = run1(pool_net(x.shape, pool=method, kernel_size=k, stride=s, pad=p), x)
    np.testing.assert_allclose(got, caffe_pool(x.astype(np.float64), method, k, s, p), rtol=1e-12, atol=1e-12)


def test_pooling_output_sizes_by_hand():
    assert pool_output_size(7, 3, 2, 1) == 4
    assert pool_output_size(8, 3, 2, 0) == 4  # ceil: floor mode would give 3
    assert pool_output_size(8, 3, 2, 0, ceil_mode=False) == 3
    assert pool_output_size(5, 2, 2, 1) == 3  # ceil gives 4, the last window starts in the padding
    assert pool_output_size(112, 3, 2, 0) == 56  # SE-ResNet pool1


def test_ave_pool_divisor_by_hand():
    """2x2 ones, k3 s2 p1: windows cover 3x3, 3x2, 2x3 and 2x2 of the padded image."""
    got = run1(pool_net((1, 1, 2, 2), pool="AVE", kernel_size=3, stride=2, pad=1), np.ones((1, 1, 2, 2), np.float32))
    np.testing.assert_allclose(got[0, 0], [[4 / 9, 2 / 6], [2 / 6, 1 / 4]], rtol=1e-12)


def test_max_pool_ignores_padding():
    x = -np.ones((1, 1, 3, 3), np.float32) * np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    got = run1(pool_net(x.shape, pool="MAX", kernel_size=2, stride=2, pad=1), x)
    np.testing.assert_array_equal(got[0, 0], [[-1, -2], [-4, -5]])  # never the zero padding


def test_pooling_h_w_fields_and_floor_mode():
    x = rand(1, 2, 9, 8)
    got = run1(pool_net(x.shape, pool="AVE", kernel_h=3, kernel_w=2, stride_h=2, stride_w=3, pad_h=1, pad_w=0), x)
    assert got.shape == (1, 2, 5, 3)
    np.testing.assert_allclose(got[0, 1, 0, 0], x[0, 1, 0:2, 0:2].sum() / 6, rtol=1e-6)
    floor = run1(pool_net((1, 2, 8, 8), pool="MAX", kernel_size=3, stride=2, round_mode="FLOOR"), x[:, :, :8])
    assert floor.shape == (1, 2, 3, 3)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(method):
    x = rand(2, 3, 5, 7)
    got = run1(pool_net(x.shape, pool=method, global_pooling=True), x)
    want = (
        x.max(axis=(2, 3), keepdims=True) if method == "MAX" else x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)


# -- convolution / inner product -------------------------------------------------------------


def numpy_conv(x, w, b, stride, pad, dilation, group):
    n, c, height, width = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (height + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (width + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    per_group = o // group
    for oc in range(o):
        g = oc // per_group
        for i in range(oh):
            for j in range(ow):
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    i * stride[0] : i * stride[0] + dilation[0] * (kh - 1) + 1 : dilation[0],
                    j * stride[1] : j * stride[1] + dilation[1] * (kw - 1) + 1 : dilation[1],
                ]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3)) + (b[oc] if b is not None else 0)
    return out


@pytest.mark.parametrize(
    "param, wshape, stride, pad, dilation, group",
    [
        ({"num_output": 4, "kernel_size": 3, "pad": 1, "stride": 2}, (4, 6, 3, 3), (2, 2), (1, 1), (1, 1), 1),
        (
            {
                "num_output": 6,
                "kernel_h": 1,
                "kernel_w": 3,
                "pad_h": 0,
                "pad_w": 1,
                "stride_h": 1,
                "stride_w": 2,
                "group": 3,
                "bias_term": False,
            },
            (6, 2, 1, 3),
            (1, 2),
            (0, 1),
            (1, 1),
            3,
        ),
        (
            {"num_output": 2, "kernel_size": [3, 2], "pad": [2, 0], "stride": [1, 2], "dilation": 2},
            (2, 6, 3, 2),
            (1, 2),
            (2, 0),
            (2, 2),
            1,
        ),
    ],
)
def test_convolution(param, wshape, stride, pad, dilation, group):
    x = rand(2, 6, 7, 8)
    w = rand(*wshape)
    b = rand(wshape[0]) if param.get("bias_term", True) else None
    net = net_of(
        x.shape,
        on_data("conv", "Convolution", {"convolution_param": param}, [w] + ([b] if b is not None else [])),
    )
    want = numpy_conv(x.astype(np.float64), w.astype(np.float64), b, stride, pad, dilation, group)
    np.testing.assert_allclose(run1(net, x), want, rtol=1e-10, atol=1e-10)


def test_inner_product_with_legacy_4d_weight_and_transpose():
    x = rand(2, 3, 2, 2)
    w = rand(5, 12)
    b = rand(5)
    legacy = fc_net(x.shape, {"num_output": 5}, [w.reshape(1, 1, 5, 12), b.reshape(1, 1, 1, 5)])
    want = x.reshape(2, 12).astype(np.float64) @ w.T.astype(np.float64) + b
    np.testing.assert_allclose(run1(legacy, x), want, rtol=1e-10)
    transposed = fc_net(x.shape, {"num_output": 5, "transpose": True, "bias_term": False}, [w.T.copy()])
    np.testing.assert_allclose(run1(transposed, x), want - b, rtol=1e-10, atol=1e-12)


# -- normalisation, scaling, SE arithmetic ------------------------------------------------------


@pytest.mark.parametrize("s", [1.0, 999.982, 0.0])
def test_batch_norm_scale_factor(s):
    x = rand(2, 3, 4, 4)
    mean, var = rand(3), np.abs(rand(3)) + 0.1
    net = bn_net(x.shape, {"use_global_stats": True}, mean * s, var * s, s)
    m, v = (mean.astype(np.float64), var.astype(np.float64)) if s else (np.zeros(3), np.zeros(3))
    # blobs are float32: mean * s was rounded, so compare at float32 precision
    want = (x - m.reshape(1, 3, 1, 1)) / np.sqrt(v.reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(run1(net, x), want, rtol=1e-5, atol=1e-5)


def test_batch_norm_eps_and_batch_statistics():
    x = rand(4, 2, 3, 3)
    eps_net = bn_net(x.shape, {"eps": 0.5}, np.zeros(2, np.float32), np.ones(2, np.float32), 1)
    np.testing.assert_allclose(run1(eps_net, x), x / np.sqrt(1.5), rtol=1e-6)
    batch = bn_net(x.shape, {"use_global_stats": False}, np.zeros(2, np.float32), np.ones(2, np.float32), 1)
    xd = x.astype(np.float64)
    want = (xd - xd.mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(xd.var(axis=(0, 2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(run1(batch, x), want, rtol=1e-6, atol=1e-9)


def test_scale_with_bias_in_place():
    x = rand(2, 3, 4, 4)
    gamma, beta = rand(3), rand(3)
    net = net_of(
        x.shape, Layer("scale", "Scale", ["data"], ["data"], {"scale_param": {"bias_term": True}}, [gamma, beta])
    )
    want = x.astype(np.float64) * gamma.reshape(1, 3, 1, 1) + beta.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(run1(net, x, "data"), want, rtol=1e-12)


def test_se_bn_inception_gate_reshape_then_scale_axis0():
    """SE-BN-Inception's SE scale: Reshape {0, 0} to N x C, then Scale(axis 0) with two bottoms."""
    x = rand(2, 4, 3, 3)
    net = parse_prototxt("""
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 3 dim: 3 } } }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool"
        pooling_param { pool: AVE global_pooling: true } }
layer { name: "prob" type: "Sigmoid" bottom: "pool" top: "pool" }
layer { name: "reshape" type: "Reshape" bottom: "pool" top: "gate" reshape_param { shape { dim: 0 dim: 0 } } }
layer { name: "scale" type: "Scale" bottom: "data" bottom: "gate" top: "out"
        scale_param { axis: 0 bias_term: false } }
""")
    shapes = infer_shapes(net, x.shape)
    assert shapes["gate"] == (2, 4) and shapes["out"] == (2, 4, 3, 3)
    gate = 1 / (1 + np.exp(-x.astype(np.float64).mean(axis=(2, 3))))
    np.testing.assert_allclose(run1(net, x), x * gate[:, :, None, None], rtol=1e-6)


def test_axpy():
    a, x, y = rand(2, 3, 1, 1), rand(2, 3, 4, 5), rand(2, 3, 4, 5)
    net = Net("axpy", [Layer("in", "Input", [], ["a", "x", "y"]), Layer("axpy", "Axpy", ["a", "x", "y"], ["out"])])
    got = run(net, {"a": torch.from_numpy(a), "x": torch.from_numpy(x), "y": torch.from_numpy(y)}, dtype=torch.float64)
    np.testing.assert_allclose(got["out"].numpy(), a * x.astype(np.float64) + y, rtol=1e-12)


def test_relu_sigmoid_softmax_dropout_concat_eltwise():
    x = rand(2, 3, 2, 2)
    net = net_of(
        x.shape,
        Layer("leaky", "ReLU", ["data"], ["leaky"], {"relu_param": {"negative_slope": 0.1}}),
        Layer("relu", "ReLU", ["data"], ["relu"]),
        Layer("sig", "Sigmoid", ["data"], ["sig"]),
        Layer("drop", "Dropout", ["sig"], ["sig"], {"dropout_param": {"dropout_ratio": 0.5}}),
        Layer("cat", "Concat", ["relu", "sig", "leaky"], ["cat"]),
        Layer("cat0", "Concat", ["relu", "sig"], ["cat0"], {"concat_param": {"axis": 0}}),
        Layer("sum", "Eltwise", ["relu", "sig"], ["sum"], {"eltwise_param": {"coeff": [2, -0.5]}}),
        Layer("prod", "Eltwise", ["relu", "sig", "leaky"], ["prod"], {"eltwise_param": {"operation": "PROD"}}),
        Layer("max", "Eltwise", ["leaky", "sig"], ["max"], {"eltwise_param": {"operation": "MAX"}}),
        Layer("soft", "Softmax", ["data"], ["soft"]),
        Layer("split", "Split", ["max"], ["s1", "s2"]),
    )
    out = {
        k: v.numpy()
        for k, v in run(
            net,
            torch.from_numpy(x),
            ["leaky", "relu", "sig", "cat", "cat0", "sum", "prod", "max", "soft", "s2"],
            dtype=torch.float64,
        ).items()
    }
    xd = x.astype(np.float64)
    leaky, relu, sig = np.where(xd > 0, xd, 0.1 * xd), np.maximum(xd, 0), 1 / (1 + np.exp(-xd))
    np.testing.assert_allclose(out["leaky"], leaky, rtol=1e-12)
    np.testing.assert_allclose(out["relu"], relu)
    np.testing.assert_allclose(out["sig"], sig, rtol=1e-12)
    np.testing.assert_allclose(out["cat"], np.concatenate([relu, sig, leaky], axis=1), rtol=1e-12)
    np.testing.assert_allclose(out["cat0"], np.concatenate([relu, sig], axis=0), rtol=1e-12)
    np.testing.assert_allclose(out["sum"], 2 * relu - 0.5 * sig, rtol=1e-12)
    np.testing.assert_allclose(out["prod"], relu * sig * leaky, rtol=1e-12)
    np.testing.assert_allclose(out["max"], np.maximum(leaky, sig), rtol=1e-12)
    np.testing.assert_allclose(out["s2"], out["max"])
    e = np.exp(xd - xd.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out["soft"], e / e.sum(axis=1, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize(
    "param, want",
    [
        ({"shape": {"dim": [0, -1]}}, (2, 60)),
        ({"shape": {"dim": [0, 0, -1, 2]}}, (2, 3, 10, 2)),
        ({"shape": {"dim": [6, 2]}, "axis": 1, "num_axes": 2}, (2, 6, 2, 5)),
        ({"shape": {"dim": [1]}, "axis": 1, "num_axes": 0}, (2, 1, 3, 4, 5)),
        ({"shape": {"dim": [-1]}, "axis": -3}, (2, 3, 20)),
    ],
)
def test_reshape(param, want):
    x = rand(2, 3, 4, 5)
    got = run1(net_of(x.shape, Layer("r", "Reshape", ["data"], ["r"], {"reshape_param": param})), x)
    assert got.shape == want
    np.testing.assert_array_equal(got.ravel(), x.ravel())


# -- the pass: in-place chains, freeing, shapes, errors -----------------------------------------


def test_in_place_chain_conv_bn_scale_relu():
    x = rand(1, 2, 5, 5)
    w, mean, var, gamma, beta = rand(3, 2, 3, 3), rand(3), np.abs(rand(3)) + 0.5, rand(3), rand(3)
    s = np.float32(7.5)
    net = net_of(
        x.shape,
        on_data(
            "conv",
            "Convolution",
            {"convolution_param": {"num_output": 3, "kernel_size": 3, "pad": 1, "bias_term": False}},
            [w],
        ),
        Layer("bn", "BatchNorm", ["conv"], ["conv"], {}, [mean * s, var * s, np.array([s])]),
        Layer("scale", "Scale", ["conv"], ["conv"], {"scale_param": {"bias_term": True}}, [gamma, beta]),
        Layer("relu", "ReLU", ["conv"], ["conv"]),
    )
    c = numpy_conv(x.astype(np.float64), w.astype(np.float64), None, (1, 1), (1, 1), (1, 1), 1)
    bn = (c - (mean * s / s).reshape(1, 3, 1, 1)) / np.sqrt((var * s / s).reshape(1, 3, 1, 1) + 1e-5)
    want = np.maximum(bn * gamma.reshape(1, 3, 1, 1) + beta.reshape(1, 3, 1, 1), 0)
    np.testing.assert_allclose(run1(net, x, "conv"), want, rtol=1e-5, atol=1e-6)
    got32 = run(net, torch.from_numpy(x))["conv"]
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), want, rtol=1e-4, atol=1e-5)


def test_blobs_are_freed_after_their_last_reader():
    net = net_of(
        (1, 1, 2, 2), *[Layer(f"r{i}", "Sigmoid", [f"b{i}" if i else "data"], [f"b{i + 1}"]) for i in range(5)]
    )
    refs: dict[str, weakref.ref] = {}
    alive_at: dict[str, list[str]] = {}

    def weights(layer, bottoms):
        refs[layer.bottoms[0]] = weakref.ref(bottoms[0])
        alive_at[layer.name] = sorted(name for name, ref in refs.items() if ref() is not None)
        return []

    feeds = {"data": torch.zeros(1, 1, 2, 2)}
    out = executor._forward(net, feeds, ["b5", "b2"], weights)
    assert sorted(out) == ["b2", "b5"]
    assert alive_at["r4"] == ["b2", "b4"]  # b1, b3 (and data) were freed, b2 kept as requested


def test_infer_shapes_and_random_blobs_on_a_bare_prototxt():
    net = parse_prototxt("""
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 7 stride: 2 pad: 3 bias_term: false } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" batch_norm_param { use_global_stats: true } }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 4 } }
layer { name: "gp" type: "Pooling" bottom: "conv2" top: "gp" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "gp" top: "fc" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
""")
    shapes = infer_shapes(net, (2, 3, 32, 32))
    assert shapes["conv1"] == (2, 8, 16, 16) and shapes["pool1"] == (2, 8, 8, 8)
    assert shapes["conv2"] == (2, 8, 8, 8) and shapes["fc"] == (2, 10) and shapes["prob"] == (2, 10)
    assert all(not layer.blobs for layer in net.layers)  # shape inference does not touch the net
    random_blobs(net, (2, 3, 32, 32), seed=3)
    assert [b.shape for b in net.layer("conv1").blobs] == [(8, 3, 7, 7)]
    assert [b.shape for b in net.layer("conv2").blobs] == [(8, 2, 3, 3), (8,)]
    assert [b.shape for b in net.layer("fc").blobs] == [(10, 8), (10,)]
    mean_s, var_s, s = net.layer("bn1").blobs
    assert s.shape == (1,) and s[0] > 1 and (var_s > 0).all()
    bn_out = run(net, torch.from_numpy(rand(2, 3, 32, 32) * 50), ["conv1"])["conv1"]
    assert torch.isfinite(bn_out).all() and 0.05 < bn_out.std() < 20  # calibrated: O(1) activations
    prob = run(net, torch.from_numpy(rand(2, 3, 32, 32) * 50))["prob"]
    np.testing.assert_allclose(prob.sum(1).numpy(), 1, rtol=1e-5)
    before = [b.copy() for layer in net.layers for b in layer.blobs]
    random_blobs(net, (2, 3, 32, 32), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(before, [b for layer in net.layers for b in layer.blobs]))
    random_blobs(net, (2, 3, 32, 32), seed=3, calibrate=False)  # meta pass: shapes only, random statistics
    assert [b.shape for b in net.layer("bn1").blobs] == [(8,), (8,), (1,)]
    assert not np.array_equal(net.layer("bn1").blobs[0], before[1])


def test_executor_caches_weights_and_checks_shapes():
    x = rand(1, 2, 4, 4)
    net = net_of(
        x.shape,
        on_data(
            "conv",
            "Convolution",
            {"convolution_param": {"num_output": 3, "kernel_size": 1}},
            [rand(3, 2, 1, 1), rand(3)],
        ),
    )
    ex = Executor(net)
    first = ex(torch.from_numpy(x))["conv"]
    torch.testing.assert_close(ex(torch.from_numpy(x))["conv"], first)
    net.layer("conv").blobs[0] = rand(3, 5, 1, 1)
    with pytest.raises(
        ExecutionError, match=r"'conv' \(Convolution\): blob 0 has shape \(3, 5, 1, 1\), expected \(3, 2, 1, 1\)"
    ):
        run(net, torch.from_numpy(x))


@pytest.mark.parametrize(
    "layer, words",
    [
        (Layer("lrn", "LRN", ["data"], ["lrn"]), "type 'LRN' is not supported"),
        (Layer("r", "ReLU", ["nope"], ["r"]), "reads 'nope', which no earlier layer produced"),
    ],
)
def test_errors(layer, words):
    with pytest.raises(ExecutionError, match=words):
        run(net_of((1, 1, 2, 2), layer), torch.zeros(1, 1, 2, 2))


def test_requested_blob_must_exist():
    with pytest.raises(ExecutionError, match="do not exist"):
        run(net_of((1, 1, 2, 2), Layer("r", "ReLU", ["data"], ["r"])), torch.zeros(1, 1, 2, 2), ["missing"])


@pytest.mark.parametrize("arch", ["se_resnext50_32x4d", "senet154", "se_bn_inception"])
def test_shape_rules_match_the_ops(arch: str) -> None:
    """The data-free shape pass (rules beside each op) gives every blob the shape the ops produce."""
    from senet_zoo.caffe.executor import _forward
    from senet_zoo.caffe.synth import synth_net

    net = synth_net(arch, layers=None if arch == "se_bn_inception" else (1, 1, 1, 1), seed=0)
    trunk = Net(net.name, net.layers[: net.layers.index(net.layer("pool5/7x7_s1"))])
    executor = Executor(trunk)
    with torch.inference_mode():
        blobs = _forward(trunk, {"data": torch.zeros(1, 3, 259, 259)}, (), executor._weights, keep_all=True)
    assert infer_shapes(trunk, (1, 3, 259, 259)) == {name: tuple(value.shape) for name, value in blobs.items()}


@pytest.mark.parametrize(
    "param, value, words",
    [
        ("stride", 0, r"stride \(0, 0\) must be in \[1,"),
        ("group", 0, "group must be a positive count"),
        ("group", 3, "group 3 does not divide"),
        ("kernel_size", 0, r"kernel \(0, 0\) must be in"),
        ("num_output", 0, "num_output must be a positive count"),
        ("pad", 1 << 40, "pad .* must be in"),
    ],
)
def test_bad_convolution_parameters_name_the_layer(param, value, words):
    params = {"num_output": 4, "kernel_size": 3}
    params[param] = value
    net = net_of((1, 2, 8, 8), on_data("conv", "Convolution", {"convolution_param": params}, []))
    with pytest.raises(ExecutionError, match=r"layer 'conv' \(Convolution\): " + words):
        infer_shapes(net, (1, 2, 8, 8))


def test_missing_bottom_and_zero_pool_stride_name_the_layer():
    net = net_of((1, 2, 8, 8), Layer("relu", "ReLU", [], ["relu"]))
    with pytest.raises(ExecutionError, match=r"layer 'relu' \(ReLU\): reads 0 bottom\(s\), needs 1"):
        infer_shapes(net, (1, 2, 8, 8))
    pool = {"pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 0}}
    net = net_of((1, 2, 8, 8), Layer("pool", "Pooling", ["data"], ["pool"], pool))
    with pytest.raises(ExecutionError, match=r"layer 'pool' \(Pooling\): stride"):
        run(net, torch.zeros(1, 2, 8, 8))
