"""Bad input: one clear error naming the file and the layer, and no output folder left behind."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from support.convert_helpers import caffemodel, listing

from senet_zoo.caffe.net import CaffeFormatError, Layer, Net
from senet_zoo.caffe.synth import synth_net
from senet_zoo.caffe.writer import write_prototxt
from senet_zoo.convert import ConversionError, convert


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    return caffemodel(tmp_path, "se_resnet50", seed=1, package_writer=True)


def _fails(tmp_path: Path, error: type[Exception], match: str, caffemodel_path: Path, **kwargs) -> None:
    before = listing(tmp_path)
    with pytest.raises(error, match=match):
        convert(caffemodel_path, tmp_path / "out", progress=False, **kwargs)
    assert listing(tmp_path) == before  # no output folder, no temporary folder


def test_truncated_caffemodel(tmp_path, good) -> None:
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])
    _fails(tmp_path, CaffeFormatError, r"se_resnet50\.caffemodel", good, verify=False)


@pytest.mark.parametrize(
    "content", [b"\x89PNG\r\n\x1a\n" + bytes(200), b'name: "SE-ResNet-50"\nlayer {\n'], ids=["png", "prototxt-text"]
)
def test_not_a_caffemodel(tmp_path, content) -> None:
    path = tmp_path / "model.caffemodel"
    path.write_bytes(content)
    _fails(tmp_path, CaffeFormatError, r"model\.caffemodel", path, verify=False)


def test_prototxt_of_another_network(tmp_path, good) -> None:
    other = tmp_path / "SE-BN-Inception.prototxt"
    write_prototxt(synth_net("se_bn_inception", blobs=False), other)
    _fails(
        tmp_path,
        ConversionError,
        r"SE-BN-Inception\.prototxt.*does not describe.*se_resnet50\.caffemodel",
        good,
        prototxt=other,
        verify=False,
    )


def _mutated(tmp_path: Path, mutate) -> Path:
    return caffemodel(tmp_path, "se_resnet50", seed=1, name="bad", mutate=mutate, package_writer=True)


def _drop_se_layer(net: Net) -> None:
    net.layers = [layer for layer in net.layers if layer.name != "conv4_1_1x1_up"]


def _extra_blob(net: Net) -> None:
    layer = net.layer("conv3_1_1x1_increase")
    layer.blobs = layer.blobs + [np.zeros(512, np.float32)]


def _leftover_layer(net: Net) -> None:
    blobs = [np.zeros((10, 1000), np.float32), np.zeros(10, np.float32)]
    params = {"inner_product_param": {"num_output": 10}}
    net.layers.append(Layer("fc_extra", "InnerProduct", ["classifier"], ["fc_extra"], params, blobs))


def _reshape(net: Net) -> None:
    net.layer("conv2_1_3x3").blobs = [np.zeros((64, 32, 3, 3), np.float32)]


def _move_stride(net: Net) -> None:
    """Same blobs, different computation: caught from the caffemodel's own layers."""
    net.layer("conv3_1_1x1_reduce").params["convolution_param"]["stride"] = 1
    net.layer("conv3_1_3x3").params["convolution_param"]["stride"] = 2


MUTATIONS = {  # a caffemodel that is not the release's structure → the error that names the layer
    "missing-layer": (_drop_se_layer, r"bad\.caffemodel.*'conv4_1_1x1_up' \(Convolution\) is missing"),
    "extra-blob": (_extra_blob, r"'conv3_1_1x1_increase' has 2 blob\(s\)"),
    "leftover-layer": (_leftover_layer, r"'fc_extra' carries 2 blob\(s\).*no place"),
    "shape-mismatch": (_reshape, r"'conv2_1_3x3' blob 0 has shape \(64, 32, 3, 3\), expected \(64, 64, 3, 3\)"),
    "changed-layer-parameter": (
        _move_stride,
        r"'conv3_1_1x1_reduce': stride is \(1, 1\), the se_resnet50 release has \(2, 2\)",
    ),
}


@pytest.mark.parametrize("mutate, match", MUTATIONS.values(), ids=list(MUTATIONS))
def test_structure_differs_from_the_release(tmp_path, mutate, match) -> None:
    _fails(tmp_path, ConversionError, match, _mutated(tmp_path, mutate), verify=False)


def test_prototxt_and_caffemodel_disagree_on_eps(tmp_path, good) -> None:
    deploy = synth_net("se_resnet50", layers=(1, 1, 1, 1), blobs=False)
    deploy.layer("conv4_1_3x3/bn").params["batch_norm_param"]["eps"] = 1e-3
    write_prototxt(deploy, tmp_path / "deploy.prototxt")
    _fails(
        tmp_path,
        ConversionError,
        r"'conv4_1_3x3/bn': BatchNorm eps differs: 1e-05 in .*se_resnet50\.caffemodel, "
        r"0\.001 in .*deploy\.prototxt",
        good,
        prototxt=tmp_path / "deploy.prototxt",
        verify=False,
    )


def test_forced_wrong_architecture(tmp_path, good) -> None:
    _fails(
        tmp_path,
        ConversionError,
        r"does not match architecture se_resnext50_32x4d.*'conv2_1_1x1_reduce' "
        r"blob 0 has shape \(64, 64, 1, 1\), expected \(128, 64, 1, 1\)",
        good,
        arch="se_resnext50_32x4d",
        verify=False,
    )


def test_existing_output_is_kept(tmp_path, good) -> None:
    """A user's folder is never replaced, with or without --force."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="out"):
        convert(good, out, verify=False, progress=False)
    with pytest.raises(ConversionError, match="only a folder written by senet-zoo convert"):
        convert(good, out, verify=False, progress=False, overwrite=True)
    assert listing(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_failed_verification_leaves_nothing(tmp_path, good, monkeypatch) -> None:
    """A converter that forgot the class permutation is caught by verification, and cleaned up."""
    converter = importlib.import_module("senet_zoo.convert.converter")
    monkeypatch.setattr(converter, "sorted_row_order", lambda: np.arange(1000))
    _fails(tmp_path, ConversionError, r"differs from the Caffe net: logits", good)


def _set_blob(layer: str, index: int, change):
    def mutate(net: Net) -> None:
        blobs = net.layer(layer).blobs
        blobs[index] = change(np.array(blobs[index]))

    return mutate


@pytest.mark.parametrize(
    "mutate, words",
    [
        (_set_blob("conv2_1_3x3/bn", 2, lambda s: s * 0), r"'conv2_1_3x3/bn': BatchNorm scale factor 0 "),
        (_set_blob("conv2_1_3x3/bn", 2, lambda s: s * 0 + 1e38), r"'conv2_1_3x3/bn': BatchNorm scale factor 1e\+38"),
        (_set_blob("conv3_1_1x1_proj/bn", 1, lambda v: -v), r"'conv3_1_1x1_proj/bn': \d+ negative BatchNorm variance"),
        (
            _set_blob("conv4_1_1x1_up", 0, lambda w: np.where(np.arange(w.size).reshape(w.shape) == 7, np.nan, w)),
            r"'conv4_1_1x1_up' blob 0 holds 1 non-finite value",
        ),
    ],
    ids=["bn-factor-0", "bn-factor-1e38", "negative-variance", "nan-weight"],
)
def test_suspicious_values_are_refused_unless_allowed(tmp_path, mutate, words) -> None:
    bad = _mutated(tmp_path, mutate)
    _fails(tmp_path, ConversionError, r"bad\.caffemodel: layer " + words + ".*--allow-suspicious", bad, verify=False)
    report = convert(bad, tmp_path / "out", progress=False, verify=False, allow_suspicious=True)
    assert report.suspicious and any("--allow-suspicious" in note for note in report.notes)
    config = (tmp_path / "out" / "config.json").read_text()
    assert "--allow-suspicious" in config and "--allow-suspicious" in (tmp_path / "out" / "README.md").read_text()
