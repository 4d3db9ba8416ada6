"""The paper's integration ablations for the ResNet family: ``se_stages`` (§6.4) and ``se_position`` (§6.5)."""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

import senet_zoo
from senet_zoo.analysis import se_blocks
from senet_zoo.finetune.commands import add_model_options, model_kwargs_from
from senet_zoo.models.senet import SE_POSITIONS, SEBottleneck

SMALL = dict(layers=(2, 1, 1, 1), num_classes=10)  # stage 1 has a first block and a repeated one


def _model(**kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    model = senet_zoo.create_model("se_resnet50", dtype=torch.float64, **{**SMALL, **kwargs}).eval()
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g, dtype=torch.float64) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g, dtype=torch.float64) + 0.5)
    return model


def _residual(b: SEBottleneck, x: torch.Tensor) -> torch.Tensor:
    out = b.relu(b.bn1(b.conv1(x)))
    out = b.relu(b.bn2(b.conv2(out)))
    return b.bn3(b.conv3(out))


def _manual(b: SEBottleneck, x: torch.Tensor, position: str) -> torch.Tensor:
    """Fig. 5 of the paper, written out: where the SE block sits relative to the residual unit."""
    se = b.se_module
    assert se is not None
    shortcut = x if b.downsample is None else b.downsample(x)
    if position == "standard":
        return torch.relu(se(_residual(b, x)) + shortcut)
    if position == "pre":
        return torch.relu(_residual(b, se(x)) + shortcut)
    if position == "post":
        return se(torch.relu(_residual(b, x) + shortcut))
    return torch.relu(_residual(b, x) + se(shortcut))  # identity


@pytest.mark.parametrize("position", SE_POSITIONS)
def test_each_position_computes_the_papers_block(position: str) -> None:
    model = _model(se_position=position)
    x = torch.randn(2, 64, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        for block in (model.layer1[0], model.layer1[1]):  # with and without a projection shortcut
            torch.testing.assert_close(block(x), _manual(block, x, position), rtol=1e-12, atol=1e-12)
            x = block(x)
    channels = {name: se.fc2.out_channels for name, se in se_blocks(model).items()}
    expected_first = 64 if position == "pre" else 256  # "pre" recalibrates the block's input
    assert channels["layer1.0"] == expected_first and channels["layer1.1"] == 256


def test_positions_keep_the_state_dict_keys_and_shapes_where_they_allow() -> None:
    with torch.device("meta"):
        reference = senet_zoo.create_model("se_resnet50").state_dict()
        for position in SE_POSITIONS:
            sd = senet_zoo.create_model("se_resnet50", se_position=position).state_dict()
            assert list(sd) == list(reference)
            differ = {k.rsplit(".se_module.", 1)[0] for k in sd if sd[k].shape != reference[k].shape}
            assert differ == ({"layer1.0", "layer2.0", "layer3.0", "layer4.0"} if position == "pre" else set())


def test_weights_load_across_positions_and_refuse_missing_stages() -> None:
    source = _model()
    post = senet_zoo.create_model("se_resnet50", **SMALL, se_position="post")
    post.load_state_dict(source.state_dict())  # same keys and shapes: the same tensors, used elsewhere
    partial = senet_zoo.create_model("se_resnet50", **SMALL, se_stages=(3, 4))
    with pytest.raises(RuntimeError, match="Unexpected key"):
        partial.load_state_dict(source.state_dict())


@pytest.mark.parametrize("stages", [(1, 2, 3, 4), (3, 4), (4,), ()])
def test_se_stages_choose_the_stages_with_se(stages: tuple[int, ...]) -> None:
    model = _model(se_stages=stages)
    with_se = {int(name.split(".")[0][-1]) for name in (se_blocks(model) if stages else {})}
    assert with_se == set(stages)
    for i in range(1, 5):
        for block in getattr(model, f"layer{i}"):
            assert (block.se_module is not None) == (i in stages)
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        assert model(x).shape == (1, 10)


@pytest.mark.slow
@pytest.mark.parametrize("position", SE_POSITIONS)
def test_fused_scripted_and_eager_agree(position: str) -> None:
    model = _model(se_position=position, se_stages=(2, 3, 4))
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    fast = senet_zoo.optimize_for_inference(model, onednn=False)
    scripted = torch.jit.script(model)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(fast(x), want, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(scripted(x), want, rtol=0, atol=0)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="se_position"):
        senet_zoo.create_model("se_resnet50", se_position="after")
    with pytest.raises(ValueError, match="se_stages"):
        senet_zoo.create_model("se_resnet50", se_stages=(0, 5))


def test_command_line_options_reach_the_model() -> None:
    parser = argparse.ArgumentParser()
    add_model_options(parser)
    args = parser.parse_args(["--se-stages", "4,3", "--se-position", "identity"])
    kwargs = model_kwargs_from(args)
    assert kwargs == dict(se_stages=[3, 4], se_position="identity")
    model = senet_zoo.create_model("se_resnet50", layers=(1, 1, 1, 1), **kwargs)
    assert sorted(se_blocks(model)) == ["layer3.0", "layer4.0"]
    assert parser.parse_args(["--se-stages", "none"]).se_stages == []
    with pytest.raises(SystemExit):
        parser.parse_args(["--se-stages", "5"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--se-position", "middle"])
