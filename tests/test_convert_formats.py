"""Every encoding a real caffemodel may use converts to the same tensors; BatchNorm bookkeeping variants.

The reference file comes from senet_zoo's own writer, the variants from the independent encoder, so
these tests also check that both encoders' files convert to identical tensors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.caffe_proto import write_caffemodel
from support.convert_helpers import caffemodel, tensors

from senet_zoo.caffe.net import Layer, Net
from senet_zoo.caffe.synth import synth_net
from senet_zoo.caffe.writer import write_prototxt
from senet_zoo.convert import ConversionError, convert


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    root = tmp_path_factory.mktemp("reference")
    convert(caffemodel(root, "se_resnet50", seed=9, package_writer=True), root / "out", verify=False, progress=False)
    return tensors(root / "out")


def _assert_equal(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> None:
    assert state.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize(
    "encode",
    [dict(packed=False), dict(double=True), dict(legacy_dims=True)],
    ids=["unpacked-floats", "double-data", "legacy-blob-dims"],
)
def test_encodings_convert_identically(tmp_path, reference, encode) -> None:
    path = caffemodel(tmp_path, "se_resnet50", seed=9, encode=encode)
    report = convert(path, tmp_path / "out", verify=False, progress=False)
    assert report.arch == "se_resnet50"
    _assert_equal(tensors(tmp_path / "out"), reference)


def _strip(net: Net) -> None:
    """Only names, types and blobs, as in a weights-only caffemodel."""
    net.layers = [Layer(layer.name, layer.type, blobs=layer.blobs) for layer in net.layers if layer.blobs]


@pytest.mark.slow
def test_weights_only_caffemodel_with_and_without_prototxt(tmp_path, reference) -> None:
    path = caffemodel(tmp_path, "se_resnet50", seed=9, mutate=_strip)
    report = convert(path, tmp_path / "bare", verify=False, progress=False)
    assert any("no layer definitions" in note for note in report.notes)
    _assert_equal(tensors(tmp_path / "bare"), reference)
    prototxt = tmp_path / "deploy.prototxt"
    write_prototxt(synth_net("se_resnet50", layers=(1, 1, 1, 1), blobs=False), prototxt)
    report = convert(path, tmp_path / "with-prototxt", prototxt=prototxt, progress=False)  # verified
    assert report.notes == [] and report.verification["max_rel"] <= 1e-4
    _assert_equal(tensors(tmp_path / "with-prototxt"), reference)


def _as_training_net(net: Net) -> None:
    """What a solver snapshot holds: a Data layer (data + label), training-phase BatchNorm, loss layers."""
    net.layers[0] = Layer("data", "Data", [], ["data", "label"])
    for layer in net.layers:
        if layer.type == "BatchNorm":
            layer.params["batch_norm_param"] = {"use_global_stats": False}
    net.layers = [layer for layer in net.layers if layer.type != "Softmax"]
    net.layers += [
        Layer("loss", "SoftmaxWithLoss", ["classifier", "label"], ["loss"]),
        Layer("accuracy", "Accuracy", ["classifier", "label"], ["accuracy"]),
    ]


@pytest.mark.slow
def test_caffemodel_saved_from_the_training_net(tmp_path, reference) -> None:
    """Layer definitions of the training net (as solver snapshots store them) are accepted and
    checked; verification runs the release's deploy structure with the caffemodel's blobs."""
    path = caffemodel(tmp_path, "se_resnet50", seed=9, mutate=_as_training_net)
    report = convert(path, tmp_path / "out", progress=False)
    assert report.notes == [] and report.verification["max_rel"] <= 1e-4
    _assert_equal(tensors(tmp_path / "out"), reference)


@pytest.mark.slow
def test_scale_factor_one_and_zero(tmp_path, reference) -> None:
    """BatchNorm blobs with s = 1 give the same statistics as s = 999.98; s = 0 means zero statistics
    (Caffe's rule), converted only with allow_suspicious: no trained net has it."""
    convert(
        caffemodel(tmp_path, "se_resnet50", seed=9, bn_scale_factor=1.0, package_writer=True),
        tmp_path / "one",
        verify=False,
        progress=False,
    )
    one = tensors(tmp_path / "one")
    for key, value in reference.items():
        assert torch.allclose(one[key], value, rtol=2e-6, atol=0), key

    def zero_scale(net: Net) -> None:
        bn = net.layer("conv3_1_3x3/bn")
        bn.blobs = [bn.blobs[0], bn.blobs[1], np.zeros(1, np.float32)]

    convert(
        caffemodel(tmp_path, "se_resnet50", seed=9, name="zero", mutate=zero_scale, package_writer=True),
        tmp_path / "zero",
        verify=False,
        progress=False,
        allow_suspicious=True,
    )
    zero = tensors(tmp_path / "zero")
    assert not zero["layer2.0.bn2.running_mean"].any() and not zero["layer2.0.bn2.running_var"].any()
    assert torch.equal(zero["layer2.0.bn1.running_var"], reference["layer2.0.bn1.running_var"])


@pytest.mark.slow
def test_batchnorm_eps_is_folded_exactly(tmp_path) -> None:
    """A BatchNorm eps other than PyTorch's 1e-5 is folded into running_var; verification proves it."""

    def eps(net: Net) -> None:
        for layer in net.layers:
            if layer.type == "BatchNorm":
                layer.params["batch_norm_param"]["eps"] = 1e-3

    report = convert(
        caffemodel(tmp_path, "se_resnext50_32x4d", seed=2, mutate=eps, package_writer=True),
        tmp_path / "out",
        progress=False,
    )
    assert report.verification["max_rel"] <= 1e-4
    assert any("eps" in note and "folded" in note for note in report.notes)
    reduced = synth_net("se_resnext50_32x4d", layers=(1, 1, 1, 1), blobs=False)
    bn_layers = sum(layer.type == "BatchNorm" for layer in reduced.layers)
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"- note: {bn_layers} BatchNorm layer(s) use an eps other than 1e-5" in card


def test_v1_caffemodel_is_read_but_cannot_hold_an_senet(tmp_path) -> None:
    """V1 (``layers``) files are read, but V1 Caffe had no BatchNorm/Scale/Axpy: only the convolutions
    and the classifier of an SENet fit, and the converter names the first BatchNorm it then misses."""
    net = synth_net("se_resnet50", layers=(1, 1, 1, 1), seed=1)
    net.layers = [layer for layer in net.layers if layer.type in ("Input", "Convolution", "InnerProduct")]
    path = tmp_path / "v1.caffemodel"
    write_caffemodel(net, path, v1=True)
    with pytest.raises(ConversionError, match=r"v1\.caffemodel.*conv1/7x7_s2/bn.*missing"):
        convert(path, tmp_path / "out", verify=False, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1.caffemodel"]
