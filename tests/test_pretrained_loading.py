"""Loading weights into the models: lean (meta device), head and first-conv adaptation, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

import senet_zoo


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    state = senet_zoo.create_model("se_resnet50").state_dict()
    state = {k: v * (1 + 0.1 * torch.rand_like(v)) + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path_factory.mktemp("w") / "model.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path, state


def test_pretrained_path_loads_every_tensor(weights_file: tuple[Path, dict]) -> None:
    path, state = weights_file
    model = senet_zoo.create_model("se_resnet50", pretrained=str(path))
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert not any(t.is_meta for t in loaded.values())


def test_new_head_keeps_the_backbone(weights_file: tuple[Path, dict]) -> None:
    path, state = weights_file
    with pytest.raises(ValueError, match="1000 classes but num_classes=10"):  # never a silent random head
        senet_zoo.create_model("se_resnet50", pretrained=path, num_classes=10)
    model = senet_zoo.create_model("se_resnet50", pretrained=path, num_classes=10, new_head=True)
    loaded = model.state_dict()
    for key, value in state.items():
        if key.startswith("last_linear."):
            assert loaded[key].shape[0] == 10
            assert torch.isfinite(loaded[key]).all() and loaded[key].abs().sum() > 0
        else:
            assert torch.equal(loaded[key], value), key
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)


@pytest.mark.parametrize("in_chans", [1, 4])
def test_first_conv_adapts_to_in_chans(weights_file: tuple[Path, dict], in_chans: int) -> None:
    path, state = weights_file
    model = senet_zoo.create_model("se_resnet50", pretrained=path, in_chans=in_chans)
    weight, original = model.layer0.conv1.weight, state["layer0.conv1.weight"]
    assert weight.shape[1] == in_chans
    if in_chans == 1:  # timm's rule: sum over the RGB filters
        assert torch.allclose(weight[:, 0], original.sum(1), atol=1e-5)
    else:  # timm's rule: repeat the RGB filters to in_chans channels and rescale by 3 / in_chans
        expected = original.repeat(1, 2, 1, 1)[:, :in_chans] * (3 / in_chans)
        assert torch.allclose(weight, expected, atol=1e-6)
    assert model.pretrained_cfg["input_size"][0] == in_chans


def test_timm_route_with_file_overlay_matches(weights_file: tuple[Path, dict]) -> None:
    path, _ = weights_file
    ours = senet_zoo.create_model("se_resnet50", pretrained=path).eval()
    via_timm = timm.create_model("se_resnet50", pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    legacy = timm.create_model("legacy_seresnet50", pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.isfinite(ours(x)).all()
        assert torch.equal(ours(x), via_timm(x))
        assert (ours(x) - legacy(x)).abs().max() <= 1e-5


def test_legacy_pth_is_read_without_unpickling_code(weights_file: tuple[Path, dict], tmp_path: Path) -> None:
    _, state = weights_file
    pth = tmp_path / "legacy.pth"
    torch.save(state, pth)
    model = senet_zoo.create_model("se_resnet50", pretrained=pth)
    assert torch.equal(model.state_dict()["layer4.2.conv3.weight"], state["layer4.2.conv3.weight"])

    class Evil:
        def __reduce__(self):  # would run code if unpickled without weights_only
            return (print, ("pwned",))

    bad = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        senet_zoo.create_model("se_resnet50", pretrained=bad)


def test_weights_of_another_architecture_are_refused(weights_file: tuple[Path, dict]) -> None:
    path, _ = weights_file
    with pytest.raises(ValueError, match="do not fit"):
        senet_zoo.create_model("se_resnext50_32x4d", pretrained=path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        senet_zoo.create_model("se_resnet50", pretrained=tmp_path / "nope.safetensors")


def test_pending_weights_say_how_to_convert() -> None:
    with pytest.raises(Exception, match="senet-zoo convert"):
        senet_zoo.create_model("se_bn_inception", pretrained=True)
