"""Checkpoints that cannot be fooled: every corruption of a run folder is refused on resume with the file
named (or recovered), a diverging run never replaces a good checkpoint, signals never half-write one."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import TensorDataset

from senet_zoo.cli import main
from senet_zoo.finetune import TrainConfig, Trainer
from senet_zoo.finetune.synthetic import make_colour_folder
from senet_zoo.finetune.trainer import NonFiniteError, _signals_held

pytestmark = pytest.mark.usefixtures("one_thread")


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.num_classes = 3
        self.conv = nn.Conv2d(3, 6, 3)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 3)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def _data(n: int = 16) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=gen), torch.randint(0, 3, (n,), generator=gen))


def _trainer(out: Path, epochs: int = 2, **options: object) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(**{"epochs": epochs, "lr": 0.05, "batch_size": 8, "progress": False, **options})
    return Trainer(_Tiny(), _data(), _data(6), out_dir=out, num_classes=3, config=config)


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder after one of two epochs (SGD with momentum: the optimizer file holds buffers)."""
    run = tmp_path_factory.mktemp("run") / "run"
    torch.set_num_threads(1)
    _trainer(run, epochs=1).fit()
    return run


def _copy(run: Path, tmp_path: Path) -> tuple[Path, dict]:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst, json.loads((dst / "state.json").read_text())


def _write_state(run: Path, state: dict) -> None:
    (run / "state.json").write_text(json.dumps(state))


def _rehash(run: Path, state: dict) -> None:
    """What a careful attacker does: update the recorded sha256 after changing a file."""
    for key in ("model", "optimizer"):
        data = (run / state["checkpoint"][key]).read_bytes()
        state["checkpoint"][f"{key}_sha256"] = hashlib.sha256(data).hexdigest()
    _write_state(run, state)


def _nan_optimizer(run: Path, state: dict) -> None:
    path = run / state["checkpoint"]["optimizer"]
    tensors = load_file(str(path))
    key = next(iter(tensors))
    tensors[key] = torch.full_like(tensors[key], math.nan)
    save_file(tensors, str(path))


def _nan_model(run: Path, state: dict) -> None:
    path = run / state["checkpoint"]["model"]
    tensors = load_file(str(path))
    tensors["conv.weight"][0, 0, 0, 0] = math.inf
    save_file(tensors, str(path))


def _bit_flip(run: Path, state: dict) -> None:
    path = run / state["checkpoint"]["model"]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # inside a tensor: the file still parses, the weights differ
    path.write_bytes(bytes(data))


def _empty_optimizer(run: Path, state: dict) -> None:
    (run / state["checkpoint"]["optimizer"]).write_bytes(b"")


def _no_tensors_optimizer(run: Path, state: dict) -> None:
    save_file({}, str(run / state["checkpoint"]["optimizer"]))


def _set(*keys: object, value: object) -> Callable[[Path, dict], None]:
    def change(run: Path, state: dict) -> None:
        target = state
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        _write_state(run, state)

    return change


CORRUPTIONS: dict[str, tuple[Callable[[Path, dict], None], bool, str]] = {
    # name: (corrupt, then rehash, expected message)
    "nan optimizer state": (_nan_optimizer, False, r"optim\.safetensors: the optimizer checkpoint is corrupt"),
    "nan optimizer state, rehashed": (_nan_optimizer, True, r"optim\.safetensors: optimizer state holds NaN"),
    "inf weight, rehashed": (_nan_model, True, r"epoch_001\.safetensors: holds NaN or infinite values"),
    "empty optimizer file": (_empty_optimizer, False, r"optim\.safetensors: .*corrupt.*\(0 bytes"),
    "empty optimizer file, rehashed": (_empty_optimizer, True, r"optim\.safetensors: not a readable optimizer"),
    "optimizer file without tensors, rehashed": (_no_tensors_optimizer, True, r"optim\.safetensors: no momentum"),
    "bit flip in the model file": (_bit_flip, False, r"epoch_001\.safetensors: the model checkpoint is corrupt"),
    "lr 1e30 in a param group": (
        _set("optimizer", "param_groups", 0, "lr", value=1e30),
        False,
        r"state\.json: optimizer\.param_groups\[0\]\.lr 1e\+30 is outside",
    ),
    "base_lr 1e30": (
        _set("optimizer", "param_groups", 0, "base_lr", value=1e30),
        False,
        r"param_groups\[0\]\.base_lr is 1e\+30, this run uses 0\.05",
    ),
    "lr 1e30 in the config": (_set("config", "lr", value=1e30), False, r"other options: lr 1e\+30 -> 0\.05"),
    "epoch as a string": (_set("epoch", value="1"), False, r"state\.json: epoch must be an integer >= 1, got '1'"),
    "history is null": (_set("history", value=None), False, r"state\.json: history must be a list of 1"),
    "params not a list": (
        _set("optimizer", "param_groups", 0, "params", value="all"),
        False,
        r"param_groups\[0\]\.params must be a list of parameter indices",
    ),
    "model file outside the run": (
        _set("checkpoint", "model", value="../../etc/passwd"),
        False,
        r"checkpoint\.model must be a path inside the run folder",
    ),
    "sha256 not hex": (_set("checkpoint", "model_sha256", value=7), False, r"model_sha256 must be 64 hex digits"),
    "scaler NaN": (_set("scaler", value={"scale": math.nan}), False, r"state\.scaler\.scale must be a finite"),
    "top level is a list": (lambda run, state: _write_state(run, [state]), False, r"top level must be a JSON object"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupt_checkpoint_is_refused_with_the_file_named(name: str, one_epoch: Path, tmp_path: Path) -> None:
    corrupt, rehash, message = CORRUPTIONS[name]
    run, state = _copy(one_epoch, tmp_path)
    corrupt(run, state)
    if rehash:
        _rehash(run, json.loads((run / "state.json").read_text()))
    trainer = _trainer(run)
    with pytest.raises(ValueError, match=message):
        trainer.fit(resume=True)
    assert trainer.step == 0 and not trainer.history  # nothing of the checkpoint was used


def test_the_intact_copy_resumes(one_epoch: Path, tmp_path: Path) -> None:
    run, _ = _copy(one_epoch, tmp_path)
    history = _trainer(run).fit(resume=True)
    assert [r["epoch"] for r in history] == [1, 2] and all(math.isfinite(r["train_loss"]) for r in history)
    # AdamW's betas are a tuple in the optimizer and a list in state.json: still the same run.
    _trainer(tmp_path / "adamw", epochs=1, optimizer="adamw", lr=1e-3).fit()
    assert len(_trainer(tmp_path / "adamw", optimizer="adamw", lr=1e-3).fit(resume=True)) == 2


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    def explode(trainer: Trainer, row: dict) -> None:
        if row["epoch"] == 1:
            for group in trainer.optimizer.param_groups:
                group["base_lr"] = 1e30

    run = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"epoch 2: training diverged .* the checkpoint of epoch 1 is kept"):
        _trainer(run, epochs=3).fit(on_epoch_end=explode)
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 1
    for name in ("best.safetensors", state["checkpoint"]["model"]):
        weights = load_file(str(run / name))
        assert all(torch.isfinite(v).all() for v in weights.values()), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "epoch_001.optim.safetensors",
        "epoch_001.safetensors",
    ]
    # The run resumes from the good checkpoint (with the original learning rate).
    assert [r["epoch"] for r in _trainer(run, epochs=3).fit(resume=True)] == [1, 2, 3]

    with pytest.raises(NonFiniteError, match="epoch 1: .*nothing was saved"):
        _trainer(tmp_path / "hopeless", lr=1e30).fit()
    assert not (tmp_path / "hopeless" / "state.json").exists()
    assert not (tmp_path / "hopeless" / "best.safetensors").exists()


def test_signals_are_held_back_while_a_checkpoint_is_written() -> None:
    # Python's own SIGINT handler, also where the test process inherited SIGINT ignored (a background job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        order = []
        with pytest.raises(KeyboardInterrupt):
            with _signals_held():
                signal.raise_signal(signal.SIGINT)
                order.append("write finished")
        assert order == ["write finished"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_sigterm_stops_the_cli_cleanly_and_resume_continues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_colour_folder(tmp_path / "colours", {"train": 8, "val": 4}, size=16)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "senet_zoo.cli", "finetune", "--model", "se_resnet50", "--pretrained", "none"]
    cmd += ["--model-kwargs", json.dumps({"layers": [1, 1, 1, 1]}), "--data", str(data), "--out", str(run)]
    cmd += ["--img-size", "16", "--batch-size", "8", "--no-progress", "--workers", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")  # set: no re-exec
    proc = subprocess.Popen(
        [*cmd, "--epochs", "50"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "state.json").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    state = json.loads((run / "state.json").read_text())
    assert err.strip().splitlines()[-1] == f"interrupted after epoch {state['epoch']}; continue with --resume"
    assert "Traceback" not in err
    assert not [p for p in run.rglob("*.tmp")]  # nothing half-written
    assert main([*cmd[3:], "--epochs", str(state["epoch"] + 1), "--resume"]) == 0
    assert f"epoch {state['epoch'] + 1}/{state['epoch'] + 1}  loss" in capsys.readouterr().out
