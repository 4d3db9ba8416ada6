"""The CLI tells the truth: defaults in help (the same as TrainConfig's), -v/-q anywhere, one formatted line
per epoch, --json everywhere a script needs it, evaluate refuses mismatched classes and takes run folders,
and the default settings learn real data (scikit-learn's digits, a small subset)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from safetensors.torch import save_file
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

import senet_zoo
from senet_zoo.cli import build_parser, main
from senet_zoo.finetune import TrainConfig
from senet_zoo.finetune.data import AUGMENT_PRESETS
from senet_zoo.finetune.distributed import cpu_plan
from senet_zoo.finetune.synthetic import make_colour_folder, make_digits_folder
from senet_zoo.registry import list_models

SMALL = json.dumps({"layers": [1, 1, 1, 1]})


def _subcommand_parser(name: str):  # noqa: ANN202 - argparse's private type
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices[name]


def test_verbosity_flags_anywhere_and_defaults_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    parse = build_parser().parse_args
    assert parse(["list"]).verbosity == 0
    assert parse(["list", "-v"]).verbosity == 1 and parse(["-v", "list"]).verbosity == 1
    assert parse(["info", "se_resnet50", "-q"]).verbosity == -1 and parse(["-q", "info", "x"]).verbosity == -1
    assert parse(["finetune", "--model", "m", "--data", "d", "--out", "o", "--verbose"]).verbosity == 1

    finetune = _subcommand_parser("finetune")
    text = " ".join(finetune.format_help().split())
    for option, default in (
        ("--augment", "light"),
        ("--lr", "0.01"),
        ("--batch-size", "32"),
        ("--epochs", "10"),
        ("--warmup-epochs", "0.0"),
    ):
        assert re.search(rf"{option} .*?\(default: {re.escape(default)}\)", text), option
    # One source: every TrainConfig field the CLI exposes has the same default there.
    args = finetune.parse_args(["--model", "m", "--data", "d", "--out", "o"])
    cli_names = {"num_workers": "workers"}
    for field in dataclasses.fields(TrainConfig):
        name = cli_names.get(field.name, field.name)
        if hasattr(args, name) and field.name not in ("deterministic",):
            assert getattr(args, name) == field.default, field.name
    assert TrainConfig().augment == "light" and AUGMENT_PRESETS["light"].color_jitter == 0
    assert AUGMENT_PRESETS["light"].hflip is False and AUGMENT_PRESETS["imagenet"].hflip is True

    assert main(["list", "se_resnet5*", "--json", "-q"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == list_models("se_resnet5*")
    assert listed[0]["weights"]["caffe_in1k"]["status"] == "pending"


def test_threads_and_workers_never_oversubscribe(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(2)))
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert cpu_plan(cpu) == (2, 0)  # this machine: all cores compute, no loader processes
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert cpu_plan(cpu) == (1, 0)  # two processes per node share the two cores
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(32)))
    for device in (cpu, cuda):
        for threads, workers in ((None, None), (4, None), (None, 3), (16, None)):
            t, w = cpu_plan(device, threads, workers)
            assert t + w <= 16 and t >= 1, (device, threads, workers)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_plan(cpu)[0] == 3


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_default_settings_learn_digits_and_the_run_folder_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_digits_folder(tmp_path / "digits", val_size=60, train_size=200)
    run = tmp_path / "run"
    # Default settings except the epochs, a 1-block-per-stage network and 16 px, to stay quick.
    args = ["finetune", "--model", "se_resnet50", "--model-kwargs", SMALL, "--pretrained", "none"]
    args += ["--data", str(data), "--out", str(run), "--img-size", "16", "--epochs", "3", "--json", "--no-progress"]
    args += ["--threads", "1"]  # the same arithmetic (and result) on every machine, whatever its core count
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # --json: stdout is the summary alone, the epoch lines go to stderr
    lines = captured.err.strip().splitlines()
    assert len(lines) == 3
    pattern = (
        r"epoch (\d)/3  loss [\d.]+  val loss [\d.]+  top-1 [\d.]+%  top-5 [\d.]+%  lr ([\d.e-]+)  "
        r"\d+ img/s  [\d.]+ s  best ([\d.]+)% \(epoch \d\)"
    )
    matches = [re.fullmatch(pattern, line) for line in lines]
    assert all(matches), lines
    assert float(matches[-1].group(2)) > 0  # the last epoch's learning rate is not logged as 0.0
    best = summary["best"]["val_top1"]
    assert best > 50.0  # chance is 10 %; 200 training images, 3 epochs
    assert float(matches[-1].group(3)) == pytest.approx(best, abs=0.006)
    assert summary["augmentation"] == {
        "preset": "light",
        "scale": [0.7, 1.0],
        "ratio": [0.9, 1.1],
        "color_jitter": 0.0,
        "hflip": False,
    }
    # Random init: ImageNet's mean/std, not the Caffe weights' (std 1/255), recorded in run and checkpoints.
    assert summary["preprocessing"]["mean"] == pytest.approx(IMAGENET_DEFAULT_MEAN)
    assert summary["preprocessing"]["std"] == pytest.approx(IMAGENET_DEFAULT_STD)
    state = json.loads((run / "state.json").read_text())
    assert state["model"]["preprocessing"] == summary["preprocessing"]
    assert state["augmentation"] == summary["augmentation"]

    # evaluate takes the run folder (its best.safetensors) and reproduces the best epoch's accuracy.
    assert main(["evaluate", "--weights", str(run), "--data", str(data / "val"), "--json", "-q"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["top1"] == pytest.approx(best, abs=0.006) and result["samples"] == 60
    assert result["weights"] == str(run / "best.safetensors")

    # 10-class weights on a 3-class folder: refused unless asked for.
    colours = make_colour_folder(tmp_path / "colours", {"val": 2}, size=16)
    evaluate = ["evaluate", "--weights", str(run / "best.safetensors"), "--data", str(colours / "val")]
    assert main(evaluate) == 2  # bad input
    err = capsys.readouterr().err
    assert "3 class folders are not the 10 classes the weights were trained on" in err
    assert "--allow-mismatch" in err
    assert main([*evaluate, "--allow-mismatch", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 6
    assert main(["evaluate", "--weights", str(tmp_path), "--data", str(data / "val")]) == 2  # bad input
    assert "neither a fine-tuning run (best.safetensors)" in capsys.readouterr().err
    # Weights from elsewhere (no class names recorded): 1000 outputs against 3 folders is refused too.
    imagenet_like = tmp_path / "imagenet_like.safetensors"
    save_file(senet_zoo.create_model("se_resnet50", layers=[1, 1, 1, 1]).state_dict(), str(imagenet_like))
    plain = ["evaluate", "--model", "se_resnet50", "--model-kwargs", SMALL, "--weights", str(imagenet_like)]
    assert main([*plain, "--data", str(colours / "val")]) == 2
    assert "3 class folders, but the weights have 1000 outputs" in capsys.readouterr().err

    # excitations --json: the summary of every block over every class.
    exc = tmp_path / "exc"
    assert main(["excitations", "--weights", str(run), "--data", str(data / "val"), "--out", str(exc), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["classes"] == [str(d) for d in range(10)] and sum(stats["images_per_class"]) == 60
    assert stats["out"] == str(exc) and (exc / "excitations.png").stat().st_size > 0
