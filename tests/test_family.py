"""The SE family beyond the Caffe release: SE-Inception-ResNet-v2 and SE-Inception-v3.

Layout against timm's non-SE networks, the catalog's figures, ``pretrained="backbone"`` (a randomly
initialised timm backbone saved to a file: no network), BN folding, ONNX export and excitations.
Full-size networks (the contract is about them), so most tests are marked slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import senet_zoo
from senet_zoo.analysis import se_blocks
from senet_zoo.catalog import CATALOG
from senet_zoo.hub.fetch import WeightsNotAvailableError
from senet_zoo.hub.manifest import load_manifest
from senet_zoo.models._builder import se_keys

FAMILY = {"se_inception_resnet_v2": "inception_resnet_v2", "se_inception_v3": "inception_v3"}
# Every catalog network with backbone weights and the timm network they come from (SE-VGG-16 and
# SE-MobileNet are tested in tests/test_models_paper_light.py).
BACKBONE_ARCHS = {**FAMILY, "se_vgg16_bn": "vgg16_bn", "se_mobilenet": "mobilenetv1_100"}
SE_BLOCKS = {"se_inception_resnet_v2": 3 + 10 + 20 + 10, "se_inception_v3": 11}
SMALLEST = 75  # the smallest input both networks accept (valid-padded stems and reductions)


def _randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Running statistics a trained network could have (fresh ones make every BatchNorm the identity)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


@pytest.fixture(scope="module")
def backbones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[nn.Module, Path]]:
    """Each timm backbone, randomly initialised (BN statistics too), and its state dict as a file."""
    out = {}
    folder = tmp_path_factory.mktemp("backbones")
    for name, timm_name in FAMILY.items():
        torch.manual_seed(0)
        net = _randomise_bn(timm.create_model(timm_name)).eval()
        path = folder / f"{timm_name}.safetensors"
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
        out[name] = (net, path)
    return out


def _macs(model: nn.Module, side: int) -> float:
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, side, side, device="meta"))
    return counter.get_total_flops() / 2e9


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILY))
def test_built_network_matches_the_catalog_and_adds_only_se_to_timms(name: str) -> None:
    facts = CATALOG[name]
    with torch.device("meta"):
        ours, theirs = senet_zoo.create_model(name), timm.create_model(FAMILY[name])
    assert sum(p.numel() for p in ours.parameters()) == facts.params
    assert _macs(ours, facts.input_size) == pytest.approx(facts.gmacs, abs=5e-5)
    overhead = _macs(ours, facts.input_size) - _macs(theirs, facts.input_size)
    assert 0 < overhead < 0.002 * facts.gmacs  # SE is cheap in compute (paper: +0.01 GMACs for IRv2)
    if facts.paper_gmacs is not None:  # the paper's re-implementation is smaller than timm's (see paper_note)
        assert facts.paper_gmacs == pytest.approx(11.76) and "11.75" in facts.paper_note
    own = ours.state_dict()
    assert ours.pretrained_cfg["first_conv"] + ".weight" in own
    assert ours.pretrained_cfg["classifier"] + ".weight" in own


@pytest.mark.slow  # full-size networks: tens of seconds each on a shared 2-core CPU
@pytest.mark.parametrize("name", list(FAMILY))
def test_state_dict_round_trip_with_timms_network_is_exact(name: str) -> None:
    torch.manual_seed(1)
    ours = senet_zoo.create_model(name)
    theirs = timm.create_model(FAMILY[name])
    own = ours.state_dict()
    new = set(own) - set(theirs.state_dict())
    assert new == se_keys(ours) and all(".se." in k for k in new)
    assert len(se_blocks(ours)) == SE_BLOCKS[name]
    theirs.load_state_dict({k: v for k, v in own.items() if k not in new}, strict=True)
    back = senet_zoo.create_model(name)
    missing, unexpected = back.load_state_dict(theirs.state_dict(), strict=False)
    assert set(missing) == new and not unexpected
    for key, value in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[key], own[key]) and torch.equal(value, own[key]), key


@pytest.mark.slow  # full-size networks: tens of seconds each on a shared 2-core CPU
@pytest.mark.parametrize("name", list(FAMILY))
def test_backbone_weights_start_the_se_network_as_the_backbone(
    name: str, backbones: dict[str, tuple[nn.Module, Path]]
) -> None:
    backbone, path = backbones[name]
    model = senet_zoo.create_model(name, pretrained="backbone", pretrained_cfg_overlay=dict(file=str(path))).eval()
    assert set(model.state_dict()) - set(backbone.state_dict()) == se_keys(model)
    for key, value in backbone.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    for se in se_blocks(model).values():
        assert not se.fc2.weight.any() and bool((se.fc2.bias == 9.0).all())
    assert model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5) and model.pretrained_cfg["interpolation"] == "bicubic"
    x = torch.randn(2, 3, SMALLEST, SMALLEST, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = backbone.double()(x)
        got = model.double()(x)
    backbone.float()
    rel = ((got - want).norm() / want.norm()).item()
    assert rel < 1e-2
    with torch.no_grad():  # the gates are open, not skipped: closing them changes the logits
        for se in se_blocks(model).values():
            se.fc2.bias.fill_(0.0)
        assert ((model(x) - want).norm() / want.norm()).item() > 10 * rel


@pytest.mark.slow  # full-size networks: tens of seconds each on a shared 2-core CPU
@pytest.mark.parametrize("name", list(FAMILY))
def test_backbone_through_timm_with_a_new_head(name: str, backbones: dict[str, tuple[nn.Module, Path]]) -> None:
    backbone, path = backbones[name]
    timm_name = CATALOG[name].timm_name
    model = timm.create_model(
        f"{timm_name}.backbone", pretrained=True, num_classes=7, pretrained_cfg_overlay=dict(file=str(path))
    )
    classifier = CATALOG[name].classifier
    assert model.get_classifier().out_features == 7 and model.pretrained_cfg["tag"] == "backbone"
    theirs = backbone.state_dict()
    for key, value in model.state_dict().items():
        if key in theirs and not key.startswith(classifier + "."):
            assert torch.equal(value, theirs[key]), key


@pytest.mark.slow  # full-size networks: tens of seconds each on a shared 2-core CPU
def test_backbone_loading_is_strict(tmp_path: Path, backbones: dict[str, tuple[nn.Module, Path]]) -> None:
    name = "se_inception_v3"
    backbone, _ = backbones[name]
    sd = {k: v.contiguous() for k, v in backbone.state_dict().items()}

    def load(state: dict[str, torch.Tensor]) -> nn.Module:
        path = tmp_path / "w.safetensors"
        save_file(state, str(path))
        return senet_zoo.create_model(name, pretrained="backbone", pretrained_cfg_overlay=dict(file=str(path)))

    with pytest.raises(ValueError, match="missing Mixed_6b.branch1x1.conv.weight"):
        load({k: v for k, v in sd.items() if k != "Mixed_6b.branch1x1.conv.weight"})
    with pytest.raises(ValueError, match="already hold SE tensors"):
        load(dict(sd, **{"Mixed_5b.se.fc1.weight": torch.zeros(16, 256, 1, 1)}))
    with pytest.raises(ValueError, match="unexpected keys"):
        load(dict(sd, **{"AuxLogits.fc.weight": torch.zeros(1000, 768)}))
    with pytest.raises(ValueError, match="has no SE blocks"):
        from senet_zoo.models._builder import load_backbone

        load_backbone(nn.Linear(2, 2), {}, {})


def test_backbone_weights_are_manifest_entries_with_the_backbones_preprocessing() -> None:
    manifest = load_manifest()
    for name, facts in CATALOG.items():
        if facts.backbone is None:
            continue
        entry = manifest.get(name, "backbone")
        assert manifest.default_tag(name) == "backbone" and entry.status == "pending" and not entry.available
        arch, tag = facts.backbone.split(".")
        cfg = timm.get_pretrained_cfg(facts.backbone)
        assert cfg is not None and arch == BACKBONE_ARCHS[name] and tag
        assert entry.preprocessing.mean == tuple(cfg.mean) and entry.preprocessing.std == tuple(cfg.std)
        assert entry.preprocessing.input_size == tuple(cfg.input_size)
        assert (entry.preprocessing.crop_pct, entry.preprocessing.interpolation) == (cfg.crop_pct, cfg.interpolation)
        assert facts.backbone in (entry.provenance.notes or "")
        assert [str(w) for w in senet_zoo.list_weights(name)] == [f"{name}.backbone"]
    with pytest.raises(WeightsNotAvailableError, match="pretrained_cfg_overlay"):
        senet_zoo.create_model("se_inception_v3", pretrained="backbone")


@pytest.mark.slow  # full-size networks: tens of seconds each on a shared 2-core CPU
@pytest.mark.parametrize("name", list(FAMILY))
def test_bn_folded_model_computes_the_same_function(name: str) -> None:
    torch.manual_seed(0)
    model = _randomise_bn(senet_zoo.create_model(name, num_classes=10, dtype=torch.float64)).eval()
    fast = senet_zoo.optimize_for_inference(model, onednn=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    x = torch.randn(2, 3, SMALLEST, SMALLEST, dtype=torch.float64)
    with torch.no_grad():
        want = model(x)
        assert ((fast(x) - want).norm() / want.norm()).item() < 1e-10


@pytest.mark.slow  # full-size networks: tens of seconds each on a shared 2-core CPU
@pytest.mark.parametrize("name", list(FAMILY))
def test_features_and_excitations(name: str) -> None:
    model = senet_zoo.create_model(name, features_only=True).eval()
    x = torch.randn(1, 3, SMALLEST, SMALLEST)
    with torch.no_grad():
        feats = model(x)
    assert [f.shape[1] for f in feats] == model.feature_info.channels()
    full = senet_zoo.create_model(name, num_classes=3).eval()
    blocks = se_blocks(full)
    assert len(blocks) == SE_BLOCKS[name]
    gates = []
    handles = [m.gate.register_forward_hook(lambda _m, _i, out: gates.append(out)) for m in blocks.values()]
    with torch.no_grad():
        full(x)
    for h in handles:
        h.remove()
    assert len(gates) == SE_BLOCKS[name] and all(g.shape[:1] == (1,) and 0 <= g.min() and g.max() <= 1 for g in gates)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILY))
def test_onnx_export_verified_with_onnxruntime(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model = senet_zoo.create_model(name, num_classes=10).eval()
    report = senet_zoo.export_onnx(model, tmp_path / "m.onnx", input_size=(3, SMALLEST, SMALLEST))
    assert (tmp_path / "m.onnx").is_file() and report.max_rel_diff < 1e-4
