"""``senet-zoo finetune --pretrained backbone --pretrained-path FILE``: a local copy of a backbone's weights
(timm's ``--pretrained-path``; the Python API's ``pretrained_cfg_overlay=dict(file=FILE)``). No network:
the backbone is a randomly initialised timm network saved to a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from senet_zoo.cli import main
from senet_zoo.finetune.synthetic import make_colour_folder


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_folder(tmp_path_factory.mktemp("colours"), {"train": 4, "val": 2}, size=32, seed=1)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], Path]:
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in timm.create_model("mobilenetv1_100").state_dict().items()}
    path = tmp_path_factory.mktemp("backbone") / "mobilenetv1_100.safetensors"
    save_file(state, str(path))
    return state, path


def _args(data: Path, out: Path, *pretrained: str) -> list[str]:
    return [
        "finetune", "--model", "se_mobilenet", *pretrained, "--data", str(data), "--out", str(out),
        "--img-size", "32", "--workers", "0", "--no-progress", "--augment", "none", "--epochs", "1", "--lr", "1e-12",
    ]  # fmt: skip


def test_finetune_starts_from_a_local_backbone_file(
    colours: Path, backbone: tuple[dict[str, torch.Tensor], Path], tmp_path: Path
) -> None:
    state, path = backbone
    run = tmp_path / "run"
    assert main(_args(colours, run, "--pretrained", "backbone", "--pretrained-path", str(path))) == 0
    tuned = load_file(str(run / "best.safetensors"))
    convs = [k for k in state if k.endswith(".weight") and state[k].dim() == 4]  # lr 1e-12: as loaded
    assert len(convs) == 27 and all(torch.allclose(tuned[k], state[k], rtol=0, atol=1e-7) for k in convs)
    assert tuned["classifier.weight"].shape == (3, 1024)  # the new task's head
    se = [k for k in tuned if ".se." in k]
    assert se and all(k not in state for k in se)
    recorded = json.dumps(json.loads((run / "state.json").read_text()))
    assert path.name in recorded  # the run records the file it started from


def test_a_backbone_file_given_as_the_weights_says_how_to_load_it(
    colours: Path, backbone: tuple[dict[str, torch.Tensor], Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, path = backbone
    assert main(_args(colours, tmp_path / "run", "--pretrained", str(path))) == 2
    err = capsys.readouterr().err
    assert "hold no SE tensor" in err and "--pretrained backbone --pretrained-path" in err


@pytest.mark.parametrize(
    ("pretrained", "message"),
    [("none", "not with --pretrained none"), ("nosuchtag", "nosuchtag"), ("FILE", "already names a file")],
)
def test_pretrained_path_needs_a_weights_tag(
    colours: Path,
    backbone: tuple[dict[str, torch.Tensor], Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    pretrained: str,
    message: str,
) -> None:
    _, path = backbone
    pretrained = str(path) if pretrained == "FILE" else pretrained
    args = _args(colours, tmp_path / "run", "--pretrained", pretrained, "--pretrained-path", str(path))
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_pretrained_path_must_exist(colours: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "missing.safetensors"
    assert main(_args(colours, tmp_path / "run", "--pretrained", "backbone", "--pretrained-path", str(missing))) == 2
    assert "missing.safetensors" in capsys.readouterr().err
