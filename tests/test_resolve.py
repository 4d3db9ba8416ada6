"""One resolver: names, tags, files, converted folders and fine-tuning runs → weights, head, labels, preprocessing.

A fine-tuned checkpoint is a model: ``create_model(name, pretrained=RUN)`` rebuilds its trained head with its
labels and preprocessing; a ``num_classes`` that does not match is refused naming both numbers unless a new
head is asked for; with no weights the preprocessing is ImageNet's whatever ``pretrained`` says.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import senet_zoo
from senet_zoo.cli import main
from senet_zoo.finetune.checkpoint import save_model
from senet_zoo.finetune.package import package_run
from senet_zoo.resolve import resolve

TINY = {"layers": [1, 1, 1, 1]}
CLASSES = ["cat", "dog", "emu"]
PREPROCESSING = {
    "input_size": [3, 40, 40],
    "interpolation": "bicubic",
    "mean": [0.5, 0.4, 0.3],
    "std": [0.2, 0.25, 0.3],
    "crop_pct": 1.0,
    "crop_mode": "center",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A fine-tuning run folder as the trainer writes it (best.safetensors with the run's description)."""
    torch.manual_seed(0)
    trained = senet_zoo.create_model("se_resnet50", num_classes=3, **TINY).eval()
    folder = tmp_path_factory.mktemp("run")
    info = dict(
        architecture="se_resnet50",
        num_classes=3,
        model_kwargs=TINY,
        classes=CLASSES,
        preprocessing=PREPROCESSING,
        base_weights={"kind": "none"},
        dataset="pets",
        epoch=1,
    )
    save_model(folder / "best.safetensors", trained.state_dict(), info)
    return folder, trained


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(torch.randn(2, 3, 40, 40, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("spec", ["folder", "file"])
def test_a_run_is_a_model_with_its_head_labels_and_preprocessing(run: tuple[Path, torch.nn.Module], spec: str) -> None:
    folder, trained = run
    weights = folder if spec == "folder" else folder / "best.safetensors"
    for model in (senet_zoo.create_model("se_resnet50", pretrained=weights), senet_zoo.create_model(str(weights))):
        cfg = model.pretrained_cfg
        assert model.num_classes == 3 and list(cfg["label_names"]) == CLASSES
        assert tuple(cfg["input_size"]) == (3, 40, 40) and cfg["interpolation"] == "bicubic"
        assert tuple(cfg["mean"]) == (0.5, 0.4, 0.3) and cfg["crop_pct"] == 1.0
        assert torch.equal(_logits(model), _logits(trained))  # identical, not close


def test_a_head_that_does_not_match_is_refused_naming_both_sizes(run: tuple[Path, torch.nn.Module]) -> None:
    folder, _ = run
    with pytest.raises(ValueError, match=r"3 classes but num_classes=1000"):
        senet_zoo.create_model("se_resnet50", pretrained=folder, num_classes=1000)


def test_a_new_head_only_when_asked_and_logged(
    run: tuple[Path, torch.nn.Module], caplog: pytest.LogCaptureFixture
) -> None:
    folder, trained = run
    with caplog.at_level(logging.WARNING, logger="senet_zoo"):
        model = senet_zoo.create_model("se_resnet50", pretrained=folder, num_classes=5, new_head=True)
    assert model.num_classes == 5 and "label_names" not in model.pretrained_cfg
    assert "new 5-class head" in caplog.text and "3 classes" in caplog.text
    kept = {k: v for k, v in trained.state_dict().items() if not k.startswith("last_linear.")}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in kept.items())


def test_weights_of_another_architecture_are_refused(run: tuple[Path, torch.nn.Module]) -> None:
    with pytest.raises(ValueError, match="se_resnet50, not a se_resnext50_32x4d"):
        senet_zoo.create_model("se_resnext50_32x4d", pretrained=run[0])


def test_a_plain_file_keeps_its_head_and_a_new_one_needs_asking(tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = senet_zoo.create_model("se_resnet50", num_classes=7, **TINY).state_dict()
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    assert senet_zoo.create_model("se_resnet50", pretrained=path, **TINY).num_classes == 7  # read from the file
    with pytest.raises(ValueError, match="7 classes but num_classes=4"):
        senet_zoo.create_model("se_resnet50", pretrained=path, num_classes=4, **TINY)
    assert senet_zoo.create_model("se_resnet50", pretrained=path, num_classes=4, new_head=True, **TINY).num_classes == 4


def test_no_weights_means_imagenet_preprocessing_either_way() -> None:
    import timm

    for model in (
        senet_zoo.create_model("se_resnet50", **TINY),
        senet_zoo.create_model("se_bn_inception"),
        timm.create_model("se_resnet50", pretrained=False, **TINY),
    ):
        assert tuple(model.pretrained_cfg["mean"]) == pytest.approx((0.485, 0.456, 0.406))
        assert tuple(model.pretrained_cfg["std"]) == pytest.approx((0.229, 0.224, 0.225))


def test_a_tag_keeps_its_preprocessing() -> None:
    entry = senet_zoo.get_weights("se_resnet50.caffe_in1k").entry
    model = senet_zoo.create_model("se_resnet50.caffe_in1k", **TINY)  # the tag's config, no weights
    assert tuple(model.pretrained_cfg["std"]) == pytest.approx(tuple(entry.preprocessing.std))


def test_the_resolver_names_every_kind(run: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    folder, _ = run
    assert resolve("se_resnet50").kind == "arch"
    tag = resolve("se_resnet50.caffe_in1k")
    assert tag.kind == "tag" and tag.entry.tag == "caffe_in1k" and tag.num_classes == 1000
    assert resolve(folder).kind == "run" and resolve(folder / "best.safetensors").kind == "file"
    published = package_run(folder, tmp_path / "pkg", repo_id="me/pets")
    source = resolve(published)
    assert source.kind == "folder" and source.arch == "se_resnet50" and source.num_classes == 3
    assert list(source.label_names or ()) == CLASSES and source.model_kwargs == TINY
    with pytest.raises(KeyError, match="known tags: caffe_in1k"):
        resolve("se_resnet50.foo")
    with pytest.raises(FileNotFoundError, match="neither a fine-tuning run"):
        resolve(tmp_path)


def test_a_model_name_stays_a_name_beside_a_folder_of_that_name(
    run: tuple[Path, torch.nn.Module], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A work folder named after its model (``runs/`` holding ``se_resnet50/``) must not turn the name into a path;
    ``./NAME`` still reaches the folder, and a bare word that is no model name is still a path."""
    folder, trained = run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "se_resnet50").mkdir()
    (tmp_path / "se_resnet50.caffe_in1k").mkdir()
    (tmp_path / "pets").symlink_to(folder)
    with caplog.at_level(logging.WARNING, logger="senet_zoo"):
        assert resolve("se_resnet50").kind == "arch"
        assert resolve("se_resnet50.caffe_in1k").kind == "tag"
        assert senet_zoo.create_model("se_resnet50", **TINY).num_classes == 1000
    assert "write ./se_resnet50 for the file or folder" in caplog.text
    with pytest.raises(FileNotFoundError, match="neither a fine-tuning run"):
        resolve("./se_resnet50")
    assert resolve("pets").kind == "run"
    assert torch.equal(_logits(senet_zoo.create_model("pets")), _logits(trained))


def test_the_packaged_run_config_is_timm_style(run: tuple[Path, torch.nn.Module], tmp_path: Path) -> None:
    folder, trained = run
    out = package_run(folder, tmp_path / "pkg", repo_id="me/pets", dataset="pets")
    config = json.loads((out / "config.json").read_text())
    assert config["num_classes"] == 3 and config["label_names"] == CLASSES
    assert config["pretrained_cfg"]["input_size"] == [3, 40, 40] and config["pretrained_cfg"]["mean"] == [0.5, 0.4, 0.3]
    assert config["architecture"] == "se_resnet50"  # model_args timm's legacy_seresnet50 lacks: senet_zoo's name
    assert "pip install senet-zoo" in config["senet_zoo"]["requires"]
    assert config["senet_zoo"]["finetune"]["dataset"] == "pets"
    card = (out / "README.md").read_text()
    assert "datasets:\n- pets" in card and "hf-hub:me/pets" in card and "random initialisation" in card
    assert torch.equal(_logits(senet_zoo.create_model(str(out))), _logits(trained))


def test_info_and_exit_codes(run: tuple[Path, torch.nn.Module], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(run[0])]) == 0
    weights = json.loads(capsys.readouterr().out)["weights"]
    assert weights["kind"] == "run" and weights["num_classes"] == 3 and weights["label_names"] == CLASSES
    assert main(["info", "se_resnet50.foo"]) == 2
    assert "known tags: caffe_in1k" in capsys.readouterr().err
    assert main(["-q", "info", "se_resnet50"]) == main(["info", "--quiet", "se_resnet50"]) == 0
