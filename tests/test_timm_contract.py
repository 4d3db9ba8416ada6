"""timm's model contract in reduced form (small nets, small inputs): what timm's tests/test_models.py checks.

The full check is ``scripts/timm_model_suite.py`` (timm's own test file, downloaded at run time).
"""

from __future__ import annotations

import copy
import warnings

import pytest
import timm
import timm.optim
import torch
from torch import nn
from torch.nn import functional as F

import senet_zoo
from senet_zoo.catalog import CATALOG
from senet_zoo.models.bn_inception import GridMaxPool

SMALL = {"layers": (1, 1, 1, 1)}  # one block per stage keeps every ResNet-family code path
NETS = [("se_resnet50", SMALL), ("senet154", SMALL), ("se_bn_inception", {})]


def _small(name: str, **kwargs: object) -> nn.Module:
    return senet_zoo.create_model(name, **dict(dict(NETS)[name], **kwargs)).eval()


@pytest.mark.parametrize("name", list(CATALOG))
def test_device_and_dtype_factory_kwargs(name: str) -> None:
    timm_name = CATALOG[name].timm_name
    model = timm.create_model(timm_name, device="meta", dtype=torch.float64)
    tensors = [*model.parameters(), *model.buffers()]
    assert all(t.device.type == "meta" for t in tensors)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    with pytest.raises(TypeError):
        timm.create_model(timm_name, device="meta", not_a_model_arg=1)


@pytest.mark.parametrize("name", ["se_resnet50", "se_bn_inception"])
def test_reset_classifier_keeps_device_dtype_and_mode(name: str) -> None:
    model = _small(name).to(torch.float64)
    model.reset_classifier(5)
    assert model.last_linear.weight.dtype == torch.float64 and not model.last_linear.training
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        assert model(x).shape == (1, 5)
    model.to(device="meta").train()
    model.reset_classifier(3, "avgmax")
    assert model.last_linear.weight.device.type == "meta" and model.last_linear.training
    assert model.global_pool.pool_type == "avgmax"


@pytest.mark.parametrize("name", ["se_resnet50", "se_bn_inception"])
def test_layer_decay_optimizer_from_numeric_group_matcher(name: str) -> None:
    model = _small(name)
    optimizer = timm.optim.create_optimizer_v2(model, "sgd", lr=0.1, layer_decay=0.5)
    scales = sorted({g["lr_scale"] for g in optimizer.param_groups})
    assert len(scales) >= 4 and scales[-1] == 1.0  # stem, stages/modules, head: geometric scales
    grouped = sum(len(g["params"]) for g in optimizer.param_groups)
    assert grouped == len(list(model.parameters()))


@pytest.mark.parametrize("name", ["se_resnet50", "senet154", "se_bn_inception"])
def test_torchscript_matches_eager(name: str) -> None:
    model = _small(name)
    x = torch.randn(1, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated, still timm's contract
        scripted = torch.jit.script(model)
    with torch.no_grad():
        assert torch.equal(scripted(x), model(x))


@pytest.mark.parametrize("name", ["se_resnet50", "se_bn_inception"])
def test_fx_feature_extraction_without_leaf_modules(name: str) -> None:
    from torchvision.models.feature_extraction import create_feature_extractor

    model = _small(name)
    extractor = create_feature_extractor(model, return_nodes={model.feature_info[-1]["module"]: "features"})
    x = torch.randn(1, 3, 65, 67)  # odd sizes: SE-BN-Inception's reduction pools pad
    with torch.no_grad():
        assert torch.equal(extractor(x)["features"], model.forward_features(x))


@pytest.mark.parametrize("size", [14, 15, 28, 29])
def test_grid_max_pool_is_caffe_ceil_mode_and_matches_the_strided_conv_grid(size: int) -> None:
    x = torch.randn(2, 3, size, size)
    out = GridMaxPool()(x)
    assert out.shape[-1] == (size + 2 - 3) // 2 + 1  # the grid of the 3×3/2 padded conv beside it
    if size % 2 == 0:  # Caffe's own pooling where the Caffe net runs
        assert torch.equal(out, F.max_pool2d(x, 3, stride=2, ceil_mode=True))
    else:  # the extra window holds the last row/column; the others are Caffe's
        assert torch.equal(out[..., -1, -1], x[..., -1, -1])
        assert torch.equal(out[..., :-1, :-1], F.max_pool2d(x, 3, stride=2, ceil_mode=True))


@pytest.mark.parametrize("name", ["se_resnet50", "se_bn_inception"])
def test_forward_intermediates(name: str) -> None:
    model = _small(name)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, taps = model.forward_intermediates(x)
        listed = senet_zoo.create_model(name, features_only=True, **dict(NETS)[name])
        listed.load_state_dict(model.state_dict(), strict=False)
        reference = listed.eval()(x)
        assert torch.equal(final, model.forward_features(x))
        assert [t.shape[1] for t in taps] == [f["num_chs"] for f in model.feature_info]
        assert all(torch.equal(a, b) for a, b in zip(taps, reference))
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert len(last_two) == 2 and torch.equal(last_two[0], taps[3]) and torch.equal(last_two[1], taps[4])
        early = model.forward_intermediates(x, indices=[1], stop_early=True, norm=True)
        assert torch.equal(early[1][0], taps[1]) and torch.equal(early[0], taps[1])  # stopped at tap 1
    with pytest.raises(ValueError, match="NCHW"):
        model.forward_intermediates(x, output_fmt="NHWC")


@pytest.mark.parametrize("name", ["se_resnet50", "se_bn_inception"])
@pytest.mark.parametrize("index", [0, 2])
def test_prune_intermediate_layers(name: str, index: int) -> None:
    model = _small(name)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        taps = model.forward_intermediates(x, intermediates_only=True)
    pruned = copy.deepcopy(model)
    kept = pruned.prune_intermediate_layers([index])
    assert kept == [index] and pruned.num_classes == 0
    assert pruned.num_features == model.feature_info[index]["num_chs"]
    with torch.no_grad():
        assert torch.equal(pruned.forward_features(x), taps[index])
        assert torch.equal(pruned.forward_intermediates(x, indices=kept, intermediates_only=True)[0], taps[index])
        assert torch.equal(pruned(x), taps[index])  # head and pooling pruned too
    pruned.train()
    pruned.forward_features(x).sum().backward()
    assert all(p.grad is not None for p in pruned.parameters())  # nothing left that the output does not use
    whole = copy.deepcopy(model)
    whole.prune_intermediate_layers([4], prune_head=False)
    with torch.no_grad():
        assert torch.equal(whole(x), model(x))


@pytest.mark.parametrize("feature_cls", ["list", "hook", "getter"])
def test_features_only_wrappers_agree(feature_cls: str) -> None:
    torch.manual_seed(0)
    reference = _small("se_bn_inception")
    torch.manual_seed(0)  # the same initial weights
    model = timm.create_model("se_bn_inception", features_only=True, feature_cls=feature_cls, out_indices=(1, 3, 4))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = model.eval()(x)
        taps = reference.forward_intermediates(x, intermediates_only=True)
    assert model.feature_info.channels() == [192, 608, 1024]
    assert all(torch.equal(f, taps[i]) for f, i in zip(feats, (1, 3, 4)))


@pytest.mark.parametrize("name", ["se_resnet50", "se_bn_inception"])
def test_grad_checkpointing_keeps_outputs_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = _small(name, drop_rate=0.0)
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for enable in (False, True):
        model.set_grad_checkpointing(enable)
        model.zero_grad()
        out = model(x)  # eval mode: BatchNorm statistics stay put across the recomputation
        out.logsumexp(1).sum().backward()
        grads.append((out.detach(), model.get_classifier().weight.grad.clone()))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-6)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-4, atol=1e-6)


def test_registered_from_timms_senet_module() -> None:
    """timm picks the models of its intermediate-feature tests by the registering module's name."""
    in_module = set(timm.list_models(module="senet"))
    assert {m.timm_name for m in CATALOG.values()} <= in_module
    assert "legacy_seresnet50" in in_module


def test_optimized_model_keeps_the_feature_api() -> None:
    model = _small("se_resnet50")
    fast = senet_zoo.optimize_for_inference(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = fast.forward_features(x)
        assert torch.allclose(feats, model.forward_features(x), atol=1e-4)
        assert torch.allclose(fast.forward_head(feats), model(x), atol=1e-4)
