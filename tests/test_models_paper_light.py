"""SE-VGG-16, SE-MobileNet and SE-ShuffleNet: the paper's figures, timm's layouts, folding, features, export."""

from __future__ import annotations

import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

import senet_zoo
from senet_zoo.catalog import CATALOG
from senet_zoo.models import SEModule
from senet_zoo.models.shufflenet import channel_shuffle

NAMES = ("se_vgg16_bn", "se_mobilenet", "se_shufflenet")
BACKBONES = {"se_vgg16_bn": "vgg16_bn", "se_mobilenet": "mobilenetv1_100"}
SMALL = [pytest.param(n, marks=pytest.mark.slow) if n == "se_vgg16_bn" else n for n in NAMES]


def _randomize_bn(model: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so that a mis-mapped or unfolded statistic shows."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)


def _paper_count(model: torch.nn.Module) -> tuple[int, float]:
    """Parameters and the paper's multiply-adds at 224×224: convolutions and FC layers, plus the SE scaling."""
    scaled = [0]
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: scaled.__setitem__(0, scaled[0] + out[0].numel()))
        for m in model.modules()
        if isinstance(m, SEModule)
    ]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2 + scaled[0]


@pytest.mark.parametrize("name", SMALL)
def test_params_and_multiply_adds_agree_with_the_paper(name: str) -> None:
    facts = CATALOG[name]
    params, macs = _paper_count(senet_zoo.create_model(name))
    assert params == facts.params  # the catalog states what the code builds
    assert macs == pytest.approx(facts.paper_gmacs * 1e9, rel=0.02)
    if name == "se_shufflenet":
        # The paper prints parameters truncated to one decimal (its ShuffleNet 1× g=3 "1.8 M" has 1.87 M).
        assert 2.4e6 <= params < 2.5e6
    elif facts.paper_params is not None:
        assert params == pytest.approx(facts.paper_params, rel=0.02)


@pytest.mark.parametrize("name", [pytest.param("se_vgg16_bn", marks=pytest.mark.slow), "se_mobilenet"])
def test_non_se_tensors_are_timms_backbone_both_ways(name: str) -> None:
    torch.manual_seed(0)
    backbone = timm.create_model(BACKBONES[name])
    _randomize_bn(backbone)
    model = senet_zoo.create_model(name)
    missing, unexpected = model.load_state_dict(backbone.state_dict(), strict=False)
    assert not unexpected
    assert missing and all(".se." in k for k in missing)
    ours = model.state_dict()
    for key, value in backbone.state_dict().items():
        assert torch.equal(ours[key], value), key
    # ... and back: the SE model's non-SE tensors are a complete, strict timm state dict.
    again = timm.create_model(BACKBONES[name])
    again.load_state_dict({k: v for k, v in ours.items() if ".se." not in k}, strict=True)
    for key, value in again.state_dict().items():
        assert torch.equal(value, backbone.state_dict()[key]), key


@pytest.mark.parametrize("name", SMALL)
def test_optimize_for_inference_folds_every_batchnorm(name: str) -> None:
    torch.manual_seed(0)
    model = senet_zoo.create_model(name, num_classes=10).eval()
    _randomize_bn(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.double()(x.double())
    fused = senet_zoo.optimize_for_inference(model.float(), channels_last=False, onednn=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    got = fused(x).double()
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize("name", ["se_mobilenet", "se_shufflenet"])
def test_feature_taps_and_intermediates_agree(name: str) -> None:
    torch.manual_seed(0)
    model = senet_zoo.create_model(name).eval()
    torch.manual_seed(0)  # the same initial weights: the wrapper renames the flattened modules' tensors
    feats = senet_zoo.create_model(name, features_only=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        taps = feats(x)
        _, inter = model.forward_intermediates(x)
    assert [t.shape[1] for t in taps] == [i["num_chs"] for i in model.feature_info]
    assert [64 // t.shape[-1] for t in taps] == [i["reduction"] for i in model.feature_info]
    assert all(torch.equal(a, b) for a, b in zip(taps, inter))


def test_channel_shuffle_interleaves_groups() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert torch.equal(channel_shuffle(channel_shuffle(x, 3), 2), x)  # g·c then c·g: the inverse


def test_shufflenet_units_follow_the_paper() -> None:
    """g = 3: stages of 4/8/4 units, 240/480/960 channels; the first 1×1 of stage 2 is not grouped."""
    model = senet_zoo.create_model("se_shufflenet")
    stages = [model.stage2, model.stage3, model.stage4]
    assert [len(s) for s in stages] == [4, 8, 4]
    assert [s[-1].conv3.out_channels for s in stages] == [240, 480, 960]
    assert model.stage2[0].conv1.groups == 1 and model.stage2[1].conv1.groups == 3
    assert [s[0].se.fc1.in_channels for s in stages] == [240 - 24, 480 - 240, 960 - 480]  # SE on the branch


@pytest.mark.parametrize("name", NAMES)
def test_listed_with_the_papers_reported_accuracy(name: str) -> None:
    info = senet_zoo.model_info(name)
    assert name in senet_zoo.list_models()
    assert "no released weights" in info["source"] and "arXiv:1709.01507" in info["source"]
    assert info["top1_err"] == CATALOG[name].top1_err
    assert timm.is_model(name)


@pytest.mark.parametrize("name", [pytest.param("se_vgg16_bn", marks=pytest.mark.slow), "se_mobilenet"])
def test_backbone_weights_start_the_se_network_as_the_backbone(name: str, tmp_path) -> None:
    """A randomly initialised timm backbone saved to a file (no network): strict load, logits within 1e-2."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    backbone = timm.create_model(BACKBONES[name]).eval()
    _randomize_bn(backbone)
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(path))
    model = senet_zoo.create_model(name, pretrained="backbone", pretrained_cfg_overlay=dict(file=str(path))).eval()
    ours, theirs = model.state_dict(), backbone.state_dict()
    assert {k for k in ours if k not in theirs} == {k for k in ours if ".se." in k} != set()
    assert all(torch.equal(ours[k], v) for k, v in theirs.items())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = backbone(x), model(x)
    assert (got - expected).abs().max() <= 1e-2 * expected.abs().max()
    assert model.pretrained_cfg["mean"] == backbone.pretrained_cfg["mean"]


def test_backbone_weights_refuse_a_file_that_is_not_the_backbone(tmp_path) -> None:
    from safetensors.torch import save_file

    state = timm.create_model("mobilenetv1_100").state_dict()
    del state["blocks.3.2.conv_pw.weight"]  # a non-SE tensor missing: not silently left random
    path = tmp_path / "partial.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(ValueError, match=r"blocks\.3\.2\.conv_pw\.weight"):
        senet_zoo.create_model("se_mobilenet", pretrained="backbone", pretrained_cfg_overlay=dict(file=str(path)))


@pytest.mark.parametrize("name", ["se_mobilenet", "se_shufflenet"])
def test_feature_extractor_folds_for_inference(name: str) -> None:
    """features_only flattens timm's layout (conv_stem / bn1 become the wrapper's children): still folded."""
    model = senet_zoo.create_model(name, features_only=True).eval()
    _randomize_bn(model)
    fused = senet_zoo.optimize_for_inference(model, channels_last=False, onednn=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for got, want in zip(fused(x), model(x)):
            assert (got - want).abs().max() <= 1e-5 * want.abs().max()
