"""Architectures: exact equivalence with timm's legacy SENets, SE-BN-Inception, blocks and options."""

from __future__ import annotations

import pytest
import timm
import torch
from support.expected import TIMM_LEGACY

import senet_zoo
from senet_zoo.models import SEModule


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TIMM_LEGACY))
def test_state_dict_moves_both_ways_with_identical_logits(name: str) -> None:
    torch.manual_seed(0)
    ours = senet_zoo.create_model(name).eval()
    theirs = timm.create_model(TIMM_LEGACY[name]).eval()
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    assert {k: v.shape for k, v in ours_sd.items()} == {k: v.shape for k, v in theirs_sd.items()}
    # Make BN statistics non-trivial so a mis-mapped running stat would show.
    for module in ours.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 96, 96)

    theirs.load_state_dict(ours.state_dict(), strict=True)
    assert (_logits(ours, x) - _logits(theirs, x)).abs().max().item() <= 1e-5

    before = ours.layer0.conv1.weight.detach().clone()
    with torch.no_grad():  # new weights on the timm side, then move them back
        for tensor in theirs.state_dict().values():
            if tensor.is_floating_point():
                tensor.mul_(torch.empty_like(tensor).uniform_(0.9, 1.1))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert not torch.equal(ours.layer0.conv1.weight, before)
    assert (_logits(ours, x) - _logits(theirs, x)).abs().max().item() <= 1e-5


def test_se_bn_inception_parameter_count_and_sizes() -> None:
    model = senet_zoo.create_model("se_bn_inception").eval()
    # Counted once from ../shared/caffe-reference/SE-BN-Inception.prototxt by walking its layers:
    # Convolution weights (+ bias where bias_term is not false: the SE 1x1_down/1x1_up convs),
    # each Scale's gamma and beta, and the InnerProduct weight + bias. BatchNorm blobs are statistics
    # (buffers here), not parameters.
    assert sum(p.numel() for p in model.parameters()) == 11_931_622
    for size in (224, 299):
        out = _logits(model, torch.randn(2, 3, size, size))
        assert out.shape == (2, 1000) and torch.isfinite(out).all()


def test_se_bn_inception_mirrors_the_prototxt_widths() -> None:
    model = senet_zoo.create_model("se_bn_inception")
    expected = {
        "inception3a": 256,
        "inception3b": 320,
        "inception3c": 576,
        "inception4a": 576,
        "inception4b": 576,
        "inception4c": 608,
        "inception4d": 608,
        "inception4e": 1056,
        "inception5a": 1024,
        "inception5b": 1024,
    }
    for name, chs in expected.items():
        se = getattr(model, name).se
        assert se.fc2.out_channels == chs and se.fc1.out_channels == chs // 16


def test_se_module_defaults_are_the_paper_block() -> None:
    torch.manual_seed(0)
    se = SEModule(64)
    x = torch.randn(2, 64, 5, 7)
    s = x.mean((2, 3))
    gate = torch.sigmoid(
        se.fc2.weight.flatten(1) @ torch.relu(se.fc1.weight.flatten(1) @ s.T + se.fc1.bias[:, None])
        + se.fc2.bias[:, None]
    ).T
    assert torch.allclose(se(x), x * gate[:, :, None, None], atol=1e-6)
    assert se.fc1.out_channels == 4


@pytest.mark.parametrize("squeeze,gate", [("max", "sigmoid"), ("avg", "tanh"), ("avg", "relu"), ("none", "sigmoid")])
def test_se_module_ablation_options(squeeze: str, gate: str) -> None:
    torch.manual_seed(0)
    se = SEModule(32, reduction=8, squeeze=squeeze, gate=gate)
    x = torch.randn(2, 32, 4, 4)
    s = {"max": x.amax((2, 3), keepdim=True), "avg": x.mean((2, 3), keepdim=True), "none": x}[squeeze]
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[gate]
    expected = x * act(se.fc2(torch.relu(se.fc1(s))))
    assert torch.allclose(se(x), expected, atol=1e-6)
    assert se.fc1.out_channels == 4


def test_se_options_keep_the_state_dict_layout() -> None:
    base = senet_zoo.create_model("se_resnet50").state_dict()
    variant = senet_zoo.create_model("se_resnet50", se_squeeze="max", se_gate="tanh").state_dict()
    assert {k: v.shape for k, v in base.items()} == {k: v.shape for k, v in variant.items()}


def test_only_senet154_has_dropout() -> None:
    assert senet_zoo.create_model("senet154").drop_rate == 0.2
    assert all(senet_zoo.create_model(n).drop_rate == 0.0 for n in ("se_resnet50", "se_bn_inception"))


@pytest.mark.parametrize("name", ["se_resnet50", "se_bn_inception"])
def test_timm_model_interface(name: str) -> None:
    model = senet_zoo.create_model(name, num_classes=7).eval()
    x = torch.randn(2, 3, 160, 192)  # global pooling: any input size works
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape[1] == model.num_features
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
        assert model.forward_head(feats).shape == (2, 7)
    assert model.get_classifier().out_features == 7
    model.reset_classifier(3)
    assert _logits(model, x).shape == (2, 3)
    model.reset_classifier(0)
    assert _logits(model, x).shape == (2, model.num_features)


def test_in_chans_builds_matching_first_conv() -> None:
    model = senet_zoo.create_model("se_resnext50_32x4d", in_chans=1, num_classes=5)
    assert model.layer0.conv1.in_channels == 1
    assert _logits(model, torch.randn(1, 1, 64, 64)).shape == (1, 5)
