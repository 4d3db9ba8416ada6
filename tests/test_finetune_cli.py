"""``senet-zoo finetune / evaluate / excitations`` end to end, and the same trainer under torchrun (2 CPU ranks)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from senet_zoo.cli import build_parser, main
from senet_zoo.finetune.commands import model_kwargs_from
from senet_zoo.finetune.metrics import read_metrics_csv
from senet_zoo.finetune.synthetic import make_colour_folder

SMALL = json.dumps({"layers": [1, 1, 1, 1]})
TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 7 validation images per class: 21 in all, an odd number that two ranks cannot split evenly.
    return make_colour_folder(tmp_path_factory.mktemp("colours"), {"train": 16, "val": 7}, size=32, seed=1)


def _finetune_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "finetune",
        "--model",
        "se_resnet50",
        "--model-kwargs",
        SMALL,
        "--pretrained",
        "none",
        "--data",
        str(data),
        "--out",
        str(out),
        "--img-size",
        "32",
        "--workers",
        "0",
        "--no-progress",
        "--augment",
        "none",
        "--lr",
        "0.05",
        *extra,
    ]


def _valid_png(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 0
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_finetune_then_evaluate_then_excitations(
    colours: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(_finetune_args(colours, run, "--epochs", "2", "--batch-size", "16", "--se-gate", "tanh")) == 0
    rows = read_metrics_csv(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["world_size"] == 1 for r in rows)
    assert _valid_png(run / "curves.png")[0] > 100
    state = json.loads((run / "state.json").read_text())
    assert state["model"]["model_kwargs"] == {"layers": [1, 1, 1, 1], "se_gate": "tanh"}
    best_epoch = state["best"]["epoch"]
    capsys.readouterr()

    # evaluate rebuilds the tanh-gated network from the checkpoint alone and measures what training logged.
    assert (
        main(["evaluate", "--weights", str(run / "best.safetensors"), "--data", str(colours / "val"), "--workers", "0"])
        == 0
    )
    out = capsys.readouterr().out
    top1, top5, loss = map(float, re.search(r"top-1 ([\d.]+)%\s+top-5 ([\d.]+)%\s+loss ([\d.]+)", out).groups())
    logged = rows[best_epoch - 1]
    assert top1 == pytest.approx(logged["val_top1"], abs=0.006) and top5 == pytest.approx(logged["val_top5"], abs=0.006)
    assert loss == pytest.approx(logged["val_loss"], abs=6e-5)
    assert "(21 images)" in out

    exc = tmp_path / "exc"
    assert (
        main(
            [
                "excitations",
                "--weights",
                str(run / "best.safetensors"),
                "--data",
                str(colours / "val"),
                "--out",
                str(exc),
                "--blocks",
                "layer4.*",
                "layer1.0",
                "--workers",
                "0",
                "--max-images",
                "15",
            ]
        )
        == 0
    )
    for name in ("excitations.png", "excitations_layer1.0.png", "excitations_layer4.0.png", "depth.png"):
        width, height = _valid_png(exc / name)
        assert width > 200 and height > 150
    stats = json.loads((exc / "stats.json").read_text())
    assert list(stats["blocks"]) == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]
    assert sum(stats["images_per_class"]) == 15 and stats["classes"] == ["blue", "green", "red"]
    assert min(stats["images_per_class"]) > 0  # a random subset, not the first folders in order
    means = load_file(str(exc / "class_means.safetensors"))
    assert means["layer4.0"].shape == (3, 2048)
    assert means["layer4.0"].min() > -1 and means["layer4.0"].max() < 1  # tanh gates, as trained
    assert means["layer4.0"].min() < 0  # a sigmoid would never go below zero


def test_cli_errors_name_the_problem(colours: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_finetune_args(tmp_path / "missing", tmp_path / "run", "--epochs", "1")) == 2
    assert "missing/train" in capsys.readouterr().err
    assert main(_finetune_args(colours, tmp_path / "run", "--epochs", "1", "--num-classes", "5")) == 2
    assert "3 class folders but --num-classes is 5" in capsys.readouterr().err


def test_se_ablation_options_reach_the_model_from_the_command_line(colours: Path) -> None:
    args = build_parser().parse_args(
        _finetune_args(colours, Path("unused"), "--se-gate", "relu", "--se-squeeze", "max", "--se-reduction", "8")
    )
    assert model_kwargs_from(args) == {
        "layers": [1, 1, 1, 1],
        "se_gate": "relu",
        "se_squeeze": "max",
        "se_reduction": 8,
    }
    with pytest.raises(SystemExit):
        build_parser().parse_args(_finetune_args(colours, Path("unused"), "--se-gate", "swish"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(colours: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    cmd = [
        str(TORCHRUN),
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "senet_zoo.cli",
        *_finetune_args(colours, run, "--epochs", "1", "--batch-size", "8"),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("epoch 1/1  loss") == 1 and proc.stdout.count("done: val top-1") == 1  # rank 0 only
    (row,) = read_metrics_csv(run / "metrics.csv")
    assert row["world_size"] == 2
    assert row["train_samples"] == 48  # 2 ranks × 24: every training image once
    assert row["val_samples"] == 21  # shards of 11 and 10, each image counted once
    state = json.loads((run / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 3  # 24 images per rank / 8 per batch
    assert sorted(p.name for p in run.iterdir()) == [
        "best.safetensors",
        "checkpoints",
        "curves.png",
        "metrics.csv",
        "state.json",
    ]
    weights = load_file(str(run / "best.safetensors"))
    assert weights["last_linear.weight"].shape == (3, 2048) and torch.isfinite(weights["last_linear.weight"]).all()
