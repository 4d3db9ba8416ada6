"""Lean loading: pretrained models keep their weights in the safetensors memory map, with no second copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from support.memory import mapped_spans

import senet_zoo

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux /proc/self/maps")


def _outside_map(model: torch.nn.Module, path: Path) -> list[str]:
    """Names of parameters and buffers whose bytes do not lie in a memory map of ``path``."""
    spans = mapped_spans(path)
    assert spans, f"{path} is not memory-mapped at all"
    outside = []
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        lo, hi = t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()
        if not any(a <= lo and hi <= b for a, b in spans):
            outside.append(name)
    return outside


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in senet_zoo.create_model("se_bn_inception").state_dict().items()}
    path = tmp_path_factory.mktemp("w") / "se_bn_inception.safetensors"
    save_file(state, str(path))
    return path, state


@pytest.fixture
def real_inits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Shapes of the tensors with real storage that torch.nn.init filled with random numbers."""
    calls: list[tuple[int, ...]] = []
    for fn in ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "trunc_normal_"):
        original = getattr(torch.nn.init, fn)

        def spy(tensor, *args, _original=original, **kwargs):
            if not tensor.is_meta:
                calls.append(tuple(tensor.shape))
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.nn.init, fn, spy)
    return calls


def test_pretrained_weights_stay_in_the_file_mapping(weights, real_inits) -> None:
    path, state = weights
    model = senet_zoo.create_model("se_bn_inception", pretrained=str(path)).eval()
    assert _outside_map(model, path) == []  # every tensor is a view of the file: no copy was made
    assert real_inits == []  # and no random init was computed only to be overwritten
    for name, t in model.state_dict().items():
        assert torch.equal(t, state[name]), name


def test_timm_route_loads_lean_too(weights) -> None:
    path, state = weights
    model = timm.create_model("se_bn_inception", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert _outside_map(model, path) == []
    assert torch.equal(model.last_linear.weight, state["last_linear.weight"])


def test_new_classifier_is_the_only_fresh_memory(weights, real_inits) -> None:
    path, _ = weights
    model = senet_zoo.create_model("se_bn_inception", pretrained=str(path), num_classes=10)
    assert sorted(_outside_map(model, path)) == ["last_linear.bias", "last_linear.weight"]
    assert (10, 1024) in real_inits and all(shape in ((10, 1024), (10,)) for shape in real_inits)
