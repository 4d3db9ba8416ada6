"""Name rules, architecture detection and the class permutation, checked against the models themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.convert_helpers import caffemodel, tensors

import senet_zoo.models as models
from senet_zoo.caffe.executor import param_shapes
from senet_zoo.caffe.synth import ARCHS, synth_net
from senet_zoo.catalog import CATALOG
from senet_zoo.convert import convert
from senet_zoo.convert.classes import caffe_to_sorted_index, caffe_wnids, sorted_row_order, sorted_wnids
from senet_zoo.convert.detect import detect_architecture
from senet_zoo.convert.mapping import FAMILY_RULES, ConversionError, plan_tensors
from senet_zoo.registry import model_info


def _plan(arch: str, layers=None):
    net = synth_net(arch, layers=layers, blobs=False)
    rules = FAMILY_RULES["inception" if arch == "se_bn_inception" else "senet"]
    return plan_tensors(net, param_shapes(net), rules)


def _meta_state(arch: str, **kwargs) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = getattr(models, arch)(**kwargs)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_blob_fills_exactly_the_model_state_dict(arch: str) -> None:
    """Full-size release → the senet_zoo model's state dict: same keys, same shapes, nothing left over."""
    plan = _plan(arch)
    got = {t.key: tuple(t.shape) for t in plan}
    assert len(got) == len(plan)
    assert got == _meta_state(arch)
    assert sum(1 for t in plan if t.flip_in) == 1
    assert {t.key for t in plan if t.permute_rows} == {"last_linear.weight", "last_linear.bias"}


@pytest.mark.parametrize("arch", ["se_resnet152", "se_resnext101_32x4d", "senet154"])
def test_reduced_depth_maps_onto_model_with_same_layers(arch: str) -> None:
    layers = (2, 1, 3, 1)
    assert {t.key: tuple(t.shape) for t in _plan(arch, layers)} == _meta_state(arch, layers=layers)


def test_bn_and_scale_fill_one_batchnorm() -> None:
    plan = {t.key: t for t in _plan("senet154")}
    assert plan["layer0.bn3.running_mean"].layer == "conv1_3/3x3/bn"
    assert plan["layer0.bn3.weight"].layer == "conv1_3/3x3/bn/scale"
    assert plan["layer3.0.downsample.1.running_var"].layer == "conv4_1_1x1_proj/bn"
    assert plan["layer3.0.downsample.0.weight"].shape == (1024, 512, 3, 3)
    assert plan["layer2.3.se_module.fc2.bias"].layer == "conv3_4_1x1_up"
    inc = {t.key: t for t in _plan("se_bn_inception")}
    assert inc["inception4e.double3x3b.bn.bias"].layer == "inception_4e/double3x3b/bn/scale"
    assert inc["inception3a.branch1x1.conv.weight"].layer == "inception_3a/1x1"
    assert inc["inception5b.se.fc1.weight"].layer == "inception_5b_1x1_down"
    assert inc["conv2_reduce.bn.num_batches_tracked"].kind == "count"


def test_unmapped_blob_is_an_error() -> None:
    net = synth_net("se_resnet50", layers=(1, 1, 1, 1), blobs=False)
    shapes = param_shapes(net)
    net.layers[1].name = "conv1/7x7_s2_renamed"
    shapes["conv1/7x7_s2_renamed"] = shapes.pop("conv1/7x7_s2")
    with pytest.raises(ConversionError, match="conv1/7x7_s2_renamed.*no rule"):
        plan_tensors(net, shapes, FAMILY_RULES["senet"])


@pytest.mark.parametrize("arch", list(ARCHS))
def test_detection_by_name_and_by_structure(arch: str) -> None:
    shapes = param_shapes(synth_net(arch, blobs=False))
    assert detect_architecture(ARCHS[arch].caffe_name, shapes).arch == arch
    anonymous = detect_architecture("", shapes)  # no name: the structure decides
    assert (anonymous.arch, anonymous.layers) == (arch, None)


def test_detection_of_reduced_nets_and_misleading_names() -> None:
    shapes = param_shapes(synth_net("se_resnet152", layers=(1, 2, 1, 1), blobs=False))
    det = detect_architecture("SE-ResNet-152", shapes)
    assert (det.arch, det.layers, det.model_args) == ("se_resnet152", (1, 2, 1, 1), {"layers": [1, 2, 1, 1]})
    wrong_name = detect_architecture("SE-ResNet-50", param_shapes(synth_net("se_resnext50_32x4d", blobs=False)))
    assert wrong_name.arch == "se_resnext50_32x4d" and "named 'SE-ResNet-50'" in wrong_name.notes[0]
    with pytest.raises(ConversionError, match="does not match architecture se_bn_inception"):
        detect_architecture("SE-ResNet-50", shapes, arch="se_bn_inception")


def test_registry_reports_the_release_table() -> None:
    for arch, release in CATALOG.items():
        info = model_info(arch)
        assert (info["top1_err"], info["top5_err"], info["timm_legacy"]) == (
            release.top1_err,
            release.top5_err,
            release.timm_legacy,
        )
        assert ARCHS[arch].caffe_name.replace("SENet", "SENet-154") in (
            info["caffe_model"],
            info["caffe_model"] + "-154",
        )


def test_class_order_facts() -> None:
    """Known WNIDs (NOTES.md): Caffe 0 = kit fox, 448 = tench (sorted 0), 489 = sea snake."""
    wnids, idx = caffe_wnids(), caffe_to_sorted_index()
    assert (wnids[0], wnids[448], wnids[489]) == ("n02119789", "n01440764", "n01751748")
    assert idx[448] == 0 and sorted_wnids()[0] == "n01440764"
    assert sorted(idx.tolist()) == list(range(1000))
    assert all(sorted_wnids()[idx[k]] == wnids[k] for k in range(1000))
    assert sorted_row_order()[0] == 448


def test_classifier_rows_land_in_sorted_order(tmp_path) -> None:
    """A classifier whose Caffe row k holds k everywhere: after conversion row j must hold the Caffe
    index of sorted class j, i.e. the WNID of Caffe row weight[j] is sorted_wnids()[j]."""

    def encode_rows(net) -> None:
        layer = net.layer("classifier")
        rows = np.arange(1000, dtype=np.float32)
        layer.blobs = [np.repeat(rows[:, None], layer.blobs[0].shape[1], axis=1), rows.copy()]

    path = caffemodel(tmp_path, "se_resnet50", mutate=encode_rows)
    out = tmp_path / "out"
    convert(path, out, verify=False, progress=False)
    weight, bias = tensors(out)["last_linear.weight"], tensors(out)["last_linear.bias"]
    caffe_index = weight[:, 0].long().tolist()
    assert (weight == weight[:, :1]).all() and bias.long().tolist() == caffe_index
    assert caffe_index[0] == 448  # tench
    wnids = caffe_wnids()
    assert [wnids[k] for k in caffe_index] == sorted_wnids()
