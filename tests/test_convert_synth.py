"""senet_zoo.caffe.synth: the synthesized Caffe nets have the releases' structure and sane random weights."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from senet_zoo.caffe import executor
from senet_zoo.caffe.executor import BN_SCALE_FACTOR, infer_shapes, param_shapes, random_blobs
from senet_zoo.caffe.synth import ARCHS, synth_net
from senet_zoo.convert.verify import caffe_input, random_images

# Layer-type counts of the seven released deploy prototxts (hujie-frank/SENet), counted in those files.
RELEASE_LAYER_TYPES = {
    "se_resnet50": dict(total=309, Axpy=16, BatchNorm=53, Convolution=85, Pooling=18, Sigmoid=16),
    "se_resnet101": dict(total=615, Axpy=33, BatchNorm=104, Convolution=170, Pooling=35, Sigmoid=33),
    "se_resnet152": dict(total=921, Axpy=50, BatchNorm=155, Convolution=255, Pooling=52, Sigmoid=50),
    "se_resnext50_32x4d": dict(total=309, Axpy=16, BatchNorm=53, Convolution=85, Pooling=18, Sigmoid=16),
    "se_resnext101_32x4d": dict(total=615, Axpy=33, BatchNorm=104, Convolution=170, Pooling=35, Sigmoid=33),
    "senet154": dict(total=930, Axpy=50, BatchNorm=157, Convolution=257, Pooling=52, Sigmoid=50, Dropout=1),
    "se_bn_inception": dict(
        total=372, BatchNorm=69, Concat=10, Convolution=89, Pooling=23, Reshape=10, Sigmoid=10, Scale=79
    ),
}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_full_size_structure_matches_release_counts(arch: str) -> None:
    net = synth_net(arch, blobs=False)
    counts = Counter(layer.type for layer in net.layers)
    expected = RELEASE_LAYER_TYPES[arch]
    assert len(net.layers) == expected["total"]
    for kind, n in expected.items():
        if kind != "total":
            assert counts[kind] == n, kind
    assert net.name == ARCHS[arch].caffe_name
    assert len({layer.name for layer in net.layers}) == len(net.layers)


def test_release_details() -> None:
    """Spot checks against the prototxts: stride placement, groups, SENet-154's stem and 3×3 projections."""
    r50 = synth_net("se_resnet50", blobs=False)
    assert r50.layer("conv3_1_1x1_reduce").params["convolution_param"]["stride"] == 2
    assert r50.layer("conv3_1_3x3").params["convolution_param"]["stride"] == 1
    x50 = synth_net("se_resnext50_32x4d", blobs=False)
    assert x50.layer("conv3_1_3x3").params["convolution_param"] == dict(
        num_output=256, bias_term=False, pad=1, kernel_size=3, group=32, stride=2
    )
    s154 = synth_net("senet154", blobs=False)
    assert s154.layer("conv3_1_1x1_proj").params["convolution_param"] == dict(
        num_output=512, bias_term=False, pad=1, kernel_size=3, stride=2
    )
    assert s154.layer("conv2_1_1x1_proj").params["convolution_param"]["kernel_size"] == 1
    assert [layer.name for layer in s154.layers[1:14:4]] == [
        "conv1_1/3x3_s2",
        "conv1_2/3x3",
        "conv1_3/3x3",
        "pool1/3x3_s2",
    ]
    assert s154.layer("pool5/dropout_7x7_s1").params == {"dropout_param": {"dropout_ratio": 0.2}}
    inc = synth_net("se_bn_inception", blobs=False)
    scale = inc.layer("inception_4e_scale")
    assert scale.bottoms == ["inception_4e/concat", "inception_4e_prob_reshape"]
    assert scale.params == {"scale_param": {"axis": 0, "bias_term": False}}
    assert inc.layer("inception_4e_1x1_down").params["convolution_param"]["num_output"] == 1056 // 16
    assert inc.layer("inception_3a_1x1_up").bottoms == ["inception_3a_1x1_down"]


@pytest.mark.parametrize("arch", ["se_resnet50", "se_resnext101_32x4d", "senet154", "se_bn_inception"])
def test_shapes_of_the_synthesized_nets(arch: str) -> None:
    """Shape inference (the executor's, the only one) on the full-size nets: 7×7 before pool5 at 224,
    9×9 (ResNets) / 8×8 (Inception) at 259 where ceil-mode pooling matters, 1000 logits."""
    net = synth_net(arch, blobs=False)
    shapes = infer_shapes(net)  # the Input layer's 1×3×224×224
    last = net.layer("pool5/7x7_s1").bottoms[0]
    assert shapes[last][2:] == (7, 7) and shapes["classifier"] == (1, 1000)
    assert shapes["pool5/7x7_s1"] == (1, shapes[last][1], 1, 1)
    trunk = type(net)(name=net.name, layers=net.layers[: net.layers.index(net.layer("pool5/7x7_s1"))])
    assert infer_shapes(trunk, (2, 3, 259, 259))[last][2:] == ((8, 8) if arch == "se_bn_inception" else (9, 9))


def test_reduced_nets() -> None:
    net = synth_net("se_resnet101", layers=(1, 2, 1, 1), blobs=False)
    names = {layer.name for layer in net.layers}
    assert {"conv3_2_1x1_reduce", "conv5_1"} <= names and "conv3_3_1x1_reduce" not in names
    assert net.name == "SE-ResNet-101"
    narrow = synth_net("senet154", layers=(1, 1, 1, 1), width=4, blobs=False)
    assert narrow.layer("conv2_1_3x3").params["convolution_param"]["group"] == 16
    assert param_shapes(narrow)["conv5_1_1x1_increase"] == [(512, 512, 1, 1)]  # 2048/4 from 4·512/4
    with pytest.raises(ValueError, match="width 3"):
        synth_net("se_resnet50", width=3)
    with pytest.raises(ValueError, match="depth"):
        synth_net("se_bn_inception", layers=(1, 1, 1, 1))


def test_random_blobs_caffe_conventions() -> None:
    net = synth_net("se_resnet50", layers=(1, 1, 1, 1), seed=3)
    expected = param_shapes(net)
    for layer in net.layers:
        assert [b.shape for b in layer.blobs] == expected.get(layer.name, [])
        assert all(b.dtype == np.float32 for b in layer.blobs)
    bn = net.layer("conv2_1_3x3/bn")
    assert bn.blobs[2][0] == np.float32(BN_SCALE_FACTOR)
    assert (bn.blobs[1] > 0).all()
    assert not np.allclose(bn.blobs[1] / bn.blobs[2][0], 1.0)
    again = synth_net("se_resnet50", layers=(1, 1, 1, 1), seed=3)
    assert all(np.array_equal(a, b) for x, y in zip(net.layers, again.layers) for a, b in zip(x.blobs, y.blobs))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["senet154", "se_bn_inception"])
def test_random_weights_keep_activations_in_range(arch: str) -> None:
    """Through 50 residual blocks (SENet-154 at full depth) or ten SE-gated Inception modules the
    signal neither explodes nor vanishes, and different images give different logits."""
    net = synth_net(arch, seed=1) if arch == "se_bn_inception" else synth_net(arch, layers=(3, 8, 36, 3), width=8)
    probes = ["conv5_3", "conv3_8"] if arch == "senet154" else ["inception_5b/output", "inception_3c/output"]
    out = executor.run(net, caffe_input(random_images(2, 224, 0)), outputs=probes + ["classifier"])
    for name in probes:
        std = float(out[name].std())
        assert 0.1 < std < 10, (name, std)
    logits = out["classifier"]
    assert torch.isfinite(logits).all()
    assert float((logits[0] - logits[1]).abs().max()) > 0.05 * float(logits.abs().max())


@pytest.mark.slow
def test_random_blobs_for_a_parsed_net() -> None:
    """random_blobs also fills a net that came without blobs (e.g. a parsed prototxt)."""
    net = synth_net("se_bn_inception", blobs=False)
    assert not any(layer.blobs for layer in net.layers)
    random_blobs(net, seed=0, bn_scale_factor=1.0)
    assert net.layer("conv1/7x7_s2/bn").blobs[2][0] == 1.0
    assert len(net.layer("inception_5b_1x1_up").blobs) == 2
