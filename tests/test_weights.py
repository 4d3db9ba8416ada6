"""``arch.tag`` names everywhere and the Weights API, against a weights file served from 127.0.0.1.

The manifest under test is a copy (``SENET_ZOO_MANIFEST``) whose ``se_resnet50.cadene_in1k`` points at
a local server; the model is SE-ResNet-50 with one block per stage and 10 classes to keep files small.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import timm
import torch
from hub_fileserver import FileServer
from hub_fixtures import PREPROCESSING, entry, manifest_dict, url_source, write_manifest
from PIL import Image
from safetensors.torch import save

import senet_zoo
from senet_zoo.catalog import CATALOG
from senet_zoo.hub.fetch import DownloadError
from senet_zoo.hub.manifest import load_manifest, shipped_manifest_path

SMALL = dict(layers=(1, 1, 1, 1), num_classes=10)
CAFFE = dict(PREPROCESSING, mean=[123 / 255, 117 / 255, 104 / 255], std=[1 / 255] * 3, crop_pct=0.9)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FileServer, bytes, dict[str, torch.Tensor]]]:
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in senet_zoo.create_model("se_resnet50", **SMALL).state_dict().items()}
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    data = save(state)
    with FileServer(lifetime_s=300) as server:
        server.add("/w.safetensors", data)
        server.add("/bad.safetensors", data, script=("corrupt",))
        yield server, data, state


@pytest.fixture
def manifest(served: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    server, data, _ = served
    digest = dict(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    caffe = entry(status="pending", sha256=None, size=None)
    caffe["preprocessing"] = CAFFE
    doc = manifest_dict(
        {
            "se_resnet50": {
                "cadene_in1k": entry(sources=[url_source(server.url("/w.safetensors"))], **digest),
                "caffe_in1k": caffe,
                "broken_in1k": entry(sources=[url_source(server.url("/bad.safetensors"))], **digest),
            }
        }
    )
    path = write_manifest(tmp_path / "manifest.json", doc)
    monkeypatch.setenv("SENET_ZOO_MANIFEST", str(path))
    return path


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(torch.ones(1, 3, 32, 32))


def test_arch_tag_loads_the_same_verified_weights_every_way(manifest: Path, served: tuple, repo_root: Path) -> None:
    _, _, state = served
    ours = senet_zoo.create_model("se_resnet50.cadene_in1k", pretrained=True, **SMALL)
    assert all(torch.equal(ours.state_dict()[k], v) for k, v in state.items())
    assert ours.pretrained_cfg["tag"] == "cadene_in1k"
    assert ours.pretrained_cfg["mean"] == tuple(PREPROCESSING["mean"])
    expected = _logits(ours)
    others = {
        "timm": timm.create_model("se_resnet50.cadene_in1k", pretrained=True, **SMALL),
        "torch.hub": torch.hub.load(str(repo_root), "se_resnet50", source="local", weights="cadene_in1k", **SMALL),
        "Weights": senet_zoo.create_model("se_resnet50", pretrained=senet_zoo.get_weights("se_resnet50"), **SMALL),
        "tag": senet_zoo.create_model("se_resnet50", pretrained="cadene_in1k", **SMALL),
    }
    for how, model in others.items():
        assert torch.equal(_logits(model), expected), how
        assert model.pretrained_cfg["tag"] == "cadene_in1k", how


def test_timm_route_refuses_a_corrupted_download(manifest: Path) -> None:
    with pytest.raises(DownloadError, match="sha256"):
        timm.create_model("se_resnet50.broken_in1k", pretrained=True, **SMALL)
    with pytest.raises(ValueError, match="names weights"):
        senet_zoo.create_model("se_resnet50.cadene_in1k", pretrained="caffe_in1k")


def test_a_tag_without_weights_brings_its_preprocessing(manifest: Path) -> None:
    cfg = senet_zoo.create_model("se_resnet50.caffe_in1k", **SMALL).pretrained_cfg
    assert cfg["tag"] == "caffe_in1k" and cfg["crop_pct"] == 0.9
    assert cfg["mean"] == pytest.approx((123 / 255, 117 / 255, 104 / 255))
    with pytest.raises(Exception, match="senet-zoo convert"):
        senet_zoo.create_model("se_resnet50.caffe_in1k", pretrained=True, **SMALL)


def test_timm_lists_the_available_tags_of_the_shipped_manifest() -> None:
    shipped = load_manifest(shipped_manifest_path())
    timm_names = {m.name: m.timm_name for m in CATALOG.values()}
    published = {f"{timm_names[e.name]}.{e.tag}" for e in shipped.entries() if e.available}
    pending = {f"{timm_names[e.name]}.{e.tag}" for e in shipped.entries() if not e.available}
    listed = set(timm.list_pretrained("se_*")) | set(timm.list_pretrained("senet_zoo_*"))
    assert published and pending
    assert listed == published
    assert pending <= set(timm.list_models("se*", include_tags=True))
    default = shipped.default_tag("se_resnet50")
    assert timm.models.get_pretrained_cfg("se_resnet50").tag == default  # timm's default tag: the manifest's


def test_weights_objects(manifest: Path, served: tuple) -> None:
    _, data, state = served
    listed = senet_zoo.list_weights("se_resnet50")
    assert [str(w) for w in listed] == ["se_resnet50.cadene_in1k", "se_resnet50.caffe_in1k", "se_resnet50.broken_in1k"]
    assert [w.tag for w in senet_zoo.list_weights("se_resnet50", available_only=True)] == ["cadene_in1k", "broken_in1k"]
    w = senet_zoo.get_weights("se_resnet50")
    assert w.tag == "cadene_in1k" and w.available
    meta = w.meta
    assert meta["num_params"] == CATALOG["se_resnet50"].params and meta["gmacs"] == CATALOG["se_resnet50"].gmacs
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["license"] == "apache-2.0"
    assert meta["metrics"]["top1_acc"] == 77.63 and meta["provenance"]["converter"] == "senet-zoo"
    tensors = w.get_state_dict(progress=False)
    assert all(torch.equal(tensors[k], v) for k, v in state.items())
    with pytest.raises(DownloadError, match="sha256"):
        senet_zoo.get_weights("se_resnet50.broken_in1k").get_state_dict(progress=False)
    with pytest.raises(KeyError, match="known tags"):
        senet_zoo.get_weights("se_resnet50.nope")
    with pytest.raises(ValueError, match="Unknown model"):
        senet_zoo.get_weights("se_resnet5")


@pytest.mark.parametrize("tag,preprocessing", [("cadene_in1k", PREPROCESSING), ("caffe_in1k", CAFFE)])
def test_weights_transforms_are_the_tags_eval_preprocessing(manifest: Path, tag: str, preprocessing: dict) -> None:
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    buffer = io.BytesIO()
    Image.fromarray(torch.randint(0, 256, (300, 400, 3), dtype=torch.uint8).numpy()).save(buffer, "PNG")
    image = Image.open(buffer).convert("RGB")
    size = preprocessing["input_size"][-1]
    resized = TF.resize(image, int(size / preprocessing["crop_pct"]), InterpolationMode.BILINEAR)
    expected = TF.normalize(TF.to_tensor(TF.center_crop(resized, size)), preprocessing["mean"], preprocessing["std"])
    actual = senet_zoo.get_weights(f"se_resnet50.{tag}").transforms()(image)
    assert actual.shape == (3, size, size)
    assert torch.allclose(actual, expected, atol=1e-4)


def test_every_evaluation_uses_the_weights_preprocessing() -> None:
    """Weights.transforms(), fine-tuning's validation transform and `release --val` share one definition:
    the same steps, sizes and statistics for the same weights."""
    from senet_zoo.finetune.data import model_eval_transform
    from senet_zoo.preprocessing import cfg_eval_transform

    weights = senet_zoo.get_weights("se_resnet50")
    model = senet_zoo.create_model("se_resnet50", pretrained=False)
    model.pretrained_cfg = {**model.pretrained_cfg, **weights.entry.preprocessing.as_pretrained_cfg()}
    config = {"pretrained_cfg": weights.entry.preprocessing.as_pretrained_cfg()}  # as in a converted config.json
    image = Image.new("RGB", (300, 260), (200, 30, 90))
    outputs = [
        t(image)
        for t in (weights.transforms(), model_eval_transform(model), cfg_eval_transform(config["pretrained_cfg"]))
    ]
    assert outputs[0].shape == (3, *weights.entry.preprocessing.input_size[1:])
    assert all(torch.equal(outputs[0], o) for o in outputs[1:])
    assert repr(weights.transforms()) == repr(model_eval_transform(model))
