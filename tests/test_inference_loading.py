"""Lean loading: no random init thrown away, each tensor read once into 64-byte-aligned memory.

Weights are assigned, not copied into a randomly initialised model. A tensor of the safetensors memory map
that is 64-byte aligned stays a view of the file; a misaligned one is copied once, because CPU kernels
take other code paths for misaligned data and the logits would differ in the last bits from the same
weights held in torch's (aligned) memory: by the trainer, by timm's ``load_state_dict``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from support.memory import mapped_spans

import senet_zoo
from senet_zoo.hub.weights_file import save_state_dict

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


def _misaligned(model: torch.nn.Module) -> list[str]:
    return [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.numel() and t.data_ptr() % 64]


def test_pretrained_weights_are_read_once_into_aligned_memory(weights, real_inits) -> None:
    path, state = weights
    model = senet_zoo.create_model("se_bn_inception", pretrained=str(path)).eval()
    assert _misaligned(model) == []
    assert real_inits == []  # no random init was computed only to be overwritten
    for name, t in model.state_dict().items():
        assert torch.equal(t, state[name]), name
    assert len(_outside_map(model, path)) < len(state)  # the aligned tensors are still views of the file


def test_timm_route_loads_lean_too(weights, real_inits) -> None:
    path, state = weights
    model = timm.create_model("se_bn_inception", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert _misaligned(model) == [] and real_inits == []
    assert torch.equal(model.last_linear.weight, state["last_linear.weight"])


def test_the_new_classifier_is_the_only_random_init(weights, real_inits) -> None:
    path, _ = weights
    model = senet_zoo.create_model("se_bn_inception", pretrained=str(path), num_classes=10, new_head=True)
    assert _misaligned(model) == []
    assert (10, 1024) in real_inits and all(shape in ((10, 1024), (10,)) for shape in real_inits)


def test_senet_zoo_files_load_in_place(tmp_path, weights) -> None:
    """The layout senet-zoo writes (converter, runs, packages) keeps all but a few small tensors mapped."""
    _, state = weights
    path = tmp_path / "aligned.safetensors"
    save_state_dict(path, state)
    model = senet_zoo.create_model("se_bn_inception", pretrained=str(path)).eval()
    assert _misaligned(model) == []
    outside = set(_outside_map(model, path))
    tensors = dict([*model.named_parameters(), *model.named_buffers()])
    copied = sum(tensors[n].nbytes for n in outside)
    assert copied <= 0.01 * sum(t.nbytes for t in tensors.values()), sorted(outside)
    assert all(tensors[n].nbytes % 64 for n in outside)  # only the odd-sized ones were copied
    for name, t in model.state_dict().items():
        assert torch.equal(t, state[name]), name
