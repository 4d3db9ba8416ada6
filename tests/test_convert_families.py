"""End to end per family: independent encoder → convert → matches the Caffe executor, loads into timm."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import timm
import torch
from support.convert_helpers import FAMILIES, caffemodel, listing, tensors

import senet_zoo
import senet_zoo.models as models
from senet_zoo.caffe.wire import read_caffemodel
from senet_zoo.catalog import CATALOG
from senet_zoo.convert import convert
from senet_zoo.convert.card import card_claims_accuracy, model_card
from senet_zoo.convert.verify import FEATURE_SIZE, model_input, random_images

pytestmark = pytest.mark.slow  # full conversions / releases: run by CI and the full command


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, object]]:
    """Each family converted once with verification (SE-ResNet-50 at full size), shared below.

    The weights are deliberately ill-conditioned (BatchNorm statistics "from other inputs",
    activations ~10³): a correct conversion must verify whatever the weights' conditioning."""
    root = tmp_path_factory.mktemp("families")
    result = {}
    for arch, layers in FAMILIES.items():
        path = caffemodel(root, arch, layers, seed=11, ill_conditioned=True)
        result[arch] = (root / f"{arch}.caffe_in1k", convert(path, root / f"{arch}.caffe_in1k", progress=False))
    return result


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_family_matches_caffe_executor(converted, arch: str) -> None:
    folder, report = converted[arch]
    assert listing(folder) == ["README.md", "config.json", "model.safetensors"]
    checks = {c["name"]: c for c in report.verification["checks"]}
    assert checks["logits"]["size"] == 224 and checks["logits"]["batch"] >= 2
    assert checks["features"]["size"] == FEATURE_SIZE and FEATURE_SIZE % 2 == 1
    assert report.verification["dtype"] == "float64"
    for check in checks.values():  # decided in float64 at 1e-9; a correct conversion is at rounding level
        assert check["max_rel"] <= 1e-9 and check["tolerance"] <= 1e-7 and check["scale"] > 100
    assert checks["logits"]["top1_agreement"] == 1.0
    float32 = {c["name"]: c for c in report.verification["float32"]["checks"]}
    assert all(0 < c["max_rel"] for c in float32.values())  # reported for information
    if arch == "se_bn_inception":  # ill-conditioned enough that a float32 check at 1e-4 would refuse it
        assert max(c["max_rel"] for c in float32.values()) > 1e-4
    config = json.loads((folder / "config.json").read_text())
    assert config["senet_zoo"]["verification"]["checks"] == report.verification["checks"]
    layers = FAMILIES[arch]
    assert config.get("model_args", {}) == ({"layers": list(layers)} if layers else {})


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_config_and_card(converted, arch: str) -> None:
    folder, report = converted[arch]
    config = json.loads((folder / "config.json").read_text())
    release = CATALOG[arch]
    assert config["architecture"] == (release.timm_legacy or "se_bn_inception")
    assert config["num_classes"] == 1000 and config["pretrained_cfg"]["classifier"] == "last_linear"
    assert config["pretrained_cfg"]["mean"] == pytest.approx([123 / 255, 117 / 255, 104 / 255])
    assert config["pretrained_cfg"]["std"] == pytest.approx([1 / 255] * 3)
    assert config["pretrained_cfg"]["first_conv"] == ("conv1.conv" if arch == "se_bn_inception" else "layer0.conv1")
    assert config["label_names"][0] == "n01440764" and config["label_descriptions"]["n01440764"].startswith("tench")
    zoo = config["senet_zoo"]
    assert zoo["source"]["sha256"] == report.source_sha256 and zoo["weights"]["sha256"] == report.weights_sha256
    # both hashed on the fly (source in a thread, output while written): they are the files' hashes
    assert report.weights_sha256 == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert (arch == "se_bn_inception") == ("requires" in zoo)
    if FAMILIES[arch] is None:  # full size: the registry's (independently computed) parameter count
        assert report.parameters == zoo["weights"]["parameters"] == senet_zoo.model_info(arch)["params"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\ndatasets:\n- imagenet-1k\nlibrary_name: timm\nlicense: apache-2.0\n")
    assert "1709.01507" in card and "Albanie" in card
    # synthetic weights: the card names the release's numbers for reference but claims nothing for these weights
    assert not card_claims_accuracy(card) and "No accuracy is claimed for these weights" in card
    as_release = model_card(config, release_sha256=frozenset({report.source_sha256}))  # were it the authors' file
    assert card_claims_accuracy(as_release) == (not config.get("model_args"))
    if not config.get("model_args"):
        assert f"value: {release.top1_acc}" in as_release and "these weights are that release" in as_release
    assert f"{report.verification['checks'][0]['max_abs']:.3g}" in card


def test_first_conv_is_reversed_and_bn_divided(converted) -> None:
    """Weights checked directly against the Caffe blobs: conv1 BGR→RGB, running stats / s."""
    folder, report = converted["senet154"]
    assert report.parameters == sum(
        t.numel()
        for k, t in tensors(folder).items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    net = read_caffemodel(folder.parent / "senet154.caffemodel")
    state = tensors(folder)
    caffe_conv1 = torch.from_numpy(net.layer("conv1_1/3x3_s2").blobs[0].copy())
    assert torch.equal(state["layer0.conv1.weight"], caffe_conv1.flip(1))
    assert torch.equal(state["layer0.conv2.weight"], torch.from_numpy(net.layer("conv1_2/3x3").blobs[0].copy()))
    mean, var, s = (torch.from_numpy(b.copy()) for b in net.layer("conv2_1_3x3/bn").blobs)
    assert float(s) != 1.0
    assert torch.allclose(state["layer1.0.bn2.running_mean"], mean / s, rtol=1e-6)
    assert torch.allclose(state["layer1.0.bn2.running_var"], var / s, rtol=1e-6)
    assert int(state["layer1.0.bn2.num_batches_tracked"]) == 0


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(x)


def _assert_same_logits(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    x = model_input(random_images(2, 224, 1), reference.pretrained_cfg)
    expected = _logits(reference, x)
    assert torch.allclose(_logits(model, x), expected, rtol=0, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("arch", ["se_resnet50", "se_resnext50_32x4d", "senet154"])
def test_loads_into_timm_legacy(converted, arch: str) -> None:
    """Strict load into timm's legacy SENet built with the same arguments (reduced depth where the
    conversion was reduced), same logits as senet_zoo.create_model on the file; plain timm also builds
    the model from the folder's config.json (``local-dir:``, the route ``hf-hub:`` takes) with the
    Caffe preprocessing."""
    folder, report = converted[arch]
    state = tensors(folder)
    ours = senet_zoo.create_model(arch, pretrained=str(folder / "model.safetensors"), **report.model_args)
    with torch.device("meta"):  # no random init: every tensor is assigned from the file
        theirs = timm.create_model(CATALOG[arch].timm_legacy, **report.model_args)
    theirs.load_state_dict(state, strict=True, assign=True)
    _assert_same_logits(theirs, ours)
    from_dir = timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert type(from_dir).__module__ == "timm.models.senet"
    assert from_dir.pretrained_cfg["mean"] == pytest.approx(ours.pretrained_cfg["mean"])
    assert from_dir.pretrained_cfg["std"] == pytest.approx(ours.pretrained_cfg["std"])
    _assert_same_logits(from_dir, ours)


@pytest.mark.parametrize("arch", ["se_resnet101", "se_resnet152", "se_resnext101_32x4d"])
def test_deeper_releases_name_their_timm_architecture(tmp_path, arch: str) -> None:
    """The 101/152 releases (same blocks as the 50s, reduced depth here) become timm's legacy 101/152."""
    path = caffemodel(tmp_path, arch, (1, 2, 1, 1), seed=4, package_writer=True)
    report = convert(path, tmp_path / "out", verify=False, progress=False)
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (report.arch, config["architecture"]) == (arch, CATALOG[arch].timm_legacy)
    theirs = timm.create_model(config["architecture"], **config["model_args"])
    theirs.load_state_dict(tensors(tmp_path / "out"), strict=True)
    ours = getattr(models, arch)(**config["model_args"])
    ours.load_state_dict(tensors(tmp_path / "out"), strict=True)
    _assert_same_logits(theirs, ours)
