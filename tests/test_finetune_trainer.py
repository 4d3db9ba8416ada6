"""Fine-tuning: learning a real signal, exact resume, pretrained weights with a new head, freezing,
accumulation, schedule, checkpoints without pickle."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import TensorDataset

import senet_zoo
from senet_zoo.finetune import TrainConfig, Trainer, image_folder_datasets, load_model
from senet_zoo.finetune.checkpoint import load_optimizer, read_model_metadata, save_optimizer
from senet_zoo.finetune.metrics import read_metrics_csv
from senet_zoo.finetune.optim import lr_factor
from senet_zoo.finetune.synthetic import make_colour_folder
from senet_zoo.models import SENet

SMALL = {"layers": [1, 1, 1, 1]}  # se_resnet50 with one block per stage: the same code, 9 M parameters
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_folder(tmp_path_factory.mktemp("colours"), {"train": 16, "val": 8}, size=32)


@pytest.fixture(scope="module")
def pretrained_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A stand-in for published weights: a 1000-class model with non-trivial BatchNorm statistics."""
    torch.manual_seed(7)
    source = senet_zoo.create_model("se_resnet50", **SMALL)
    for module in source.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("pretrained") / "se_resnet50_small.safetensors"
    state = {k: v.clone() for k, v in source.state_dict().items()}
    save_file(state, str(path))
    return path, state


def _tiny_senet(seed: int) -> SENet:
    torch.manual_seed(seed)
    return SENet(layers=(1, 1, 1, 1), num_classes=3)


def _comparable(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("epoch_time_s", "img_per_s")} for row in history]


class _Interrupted(Exception):
    pass


@pytest.mark.slow
def test_learns_the_signal_and_resume_reproduces_the_uninterrupted_run(colours: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=3, batch_size=16, lr=0.05, warmup_epochs=1, progress=False, deterministic=True)
    train, val, classes = image_folder_datasets(colours, _tiny_senet(0), img_size=32, augment="light")
    assert classes == ["blue", "green", "red"]

    full = Trainer(_tiny_senet(0), train, val, out_dir=tmp_path / "full", config=config)
    history = full.fit()
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["val_top1"] >= 80.0  # chance is 33.3 %
    assert history[-1]["val_samples"] == 24 and history[-1]["train_samples"] == 48
    assert full.step == 3 * 3  # 48 images / 16 per step, three epochs

    def crash_after_first_epoch(trainer: Trainer, row: dict) -> None:
        if row["epoch"] == 1:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        Trainer(_tiny_senet(0), train, val, out_dir=tmp_path / "resumed", config=config).fit(
            on_epoch_end=crash_after_first_epoch
        )
    state = json.loads((tmp_path / "resumed" / "state.json").read_text())
    assert state["epoch"] == 1 and state["step"] == 3

    # A different initialisation: everything that matters must come from the checkpoint.
    resumed = Trainer(_tiny_senet(123), train, val, out_dir=tmp_path / "resumed", config=config)
    resumed_history = resumed.fit(resume=True)
    assert [row["epoch"] for row in resumed_history] == [1, 2, 3]
    for got, want in zip(_comparable(resumed_history), _comparable(history)):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    final, final_resumed = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(final[k].float(), final_resumed[k].float(), atol=1e-7) for k in final)
    csv_rows = read_metrics_csv(tmp_path / "resumed" / "metrics.csv")
    assert [r["epoch"] for r in csv_rows] == [1, 2, 3]
    assert [r["val_top1"] for r in csv_rows] == pytest.approx([r["val_top1"] for r in history])
    checkpoints = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert checkpoints == ["epoch_003.optim.safetensors", "epoch_003.safetensors"]  # older ones are pruned

    with pytest.raises(FileExistsError, match="already holds a run"):
        Trainer(_tiny_senet(0), train, val, out_dir=tmp_path / "full", config=config).fit()
    changed = TrainConfig(**{**config.__dict__, "lr": 0.1})
    with pytest.raises(ValueError, match="lr 0.05 -> 0.1"):
        Trainer(_tiny_senet(0), train, val, out_dir=tmp_path / "full", config=changed).fit(resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(_tiny_senet(0), train, val, out_dir=tmp_path / "empty", config=config).fit(resume=True)


def test_pretrained_weights_with_a_new_head_and_a_frozen_backbone(
    colours: Path, pretrained_file: tuple[Path, dict], tmp_path: Path
) -> None:
    path, source = pretrained_file
    probe = senet_zoo.create_model("se_resnet50", num_classes=3, **SMALL)
    train, val, _ = image_folder_datasets(colours, probe, img_size=32, augment="none")
    config = TrainConfig(epochs=1, batch_size=16, lr=0.05, freeze_epochs=1, progress=False)
    trainer = Trainer(
        "se_resnet50", train, val, out_dir=tmp_path, pretrained=str(path), model_kwargs=SMALL, config=config
    )
    loaded = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert loaded["last_linear.weight"].shape == (3, 2048) and loaded["last_linear.bias"].shape == (3,)
    backbone = [k for k in source if not k.startswith("last_linear.")]
    assert set(loaded) - set(backbone) == {"last_linear.weight", "last_linear.bias"}
    assert all(torch.equal(loaded[k], source[k]) for k in backbone)

    trainer.fit()
    after = trainer.model.state_dict()
    assert all(torch.equal(after[k], source[k]) for k in backbone)  # weights and BatchNorm statistics
    assert not torch.equal(after["last_linear.weight"], loaded["last_linear.weight"])

    # The checkpoint records how to rebuild the network: no name or options needed.
    model, info = load_model(None, tmp_path / "best.safetensors")
    assert info["architecture"] == "se_resnet50" and info["classes"] == ["blue", "green", "red"]
    assert info["preprocessing"]["input_size"] == [3, 32, 32]
    assert model.pretrained_cfg["input_size"] == (3, 32, 32)
    assert all(torch.equal(v, after[k]) for k, v in model.state_dict().items())


def test_pretrained_first_conv_is_adapted_for_other_input_channels(
    colours: Path, pretrained_file: tuple[Path, dict], tmp_path: Path
) -> None:
    path, source = pretrained_file
    conv = source["layer0.conv1.weight"]
    grey = senet_zoo.create_model(
        "se_resnet50", pretrained=str(path), num_classes=3, new_head=True, in_chans=1, **SMALL
    )
    assert torch.allclose(grey.layer0.conv1.weight, conv.sum(1, keepdim=True))
    four = senet_zoo.create_model(
        "se_resnet50", pretrained=str(path), num_classes=3, new_head=True, in_chans=4, **SMALL
    )
    assert torch.allclose(four.layer0.conv1.weight, torch.cat([conv, conv[:, :1]], 1) * 3 / 4)

    # Fine-tuning a grayscale model end to end: the data set yields one channel.
    train, val, _ = image_folder_datasets(colours, grey, img_size=32, augment="none", in_chans=1)
    assert train[0][0].shape == (1, 32, 32)
    trainer = Trainer(
        "se_resnet50",
        train,
        val,
        out_dir=tmp_path,
        pretrained=str(path),
        model_kwargs={**SMALL, "in_chans": 1},
        config=TrainConfig(epochs=1, batch_size=24, lr=0.01, progress=False),
    )
    assert torch.allclose(trainer.model.layer0.conv1.weight, conv.sum(1, keepdim=True))
    row = trainer.fit()[-1]
    assert math.isfinite(row["train_loss"]) and row["val_samples"] == 24


def test_freeze_until_a_stage_and_a_separate_head_learning_rate(colours: Path, tmp_path: Path) -> None:
    model = _tiny_senet(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train, val, _ = image_folder_datasets(colours, model, img_size=32, augment="none")
    config = TrainConfig(epochs=1, batch_size=24, lr=0.01, head_lr=0.1, freeze_until="layer2", progress=False)
    trainer = Trainer(model, train, val, out_dir=tmp_path, config=config)
    assert {(g["part"], g["base_lr"]) for g in trainer.optimizer.param_groups} == {("backbone", 0.01), ("head", 0.1)}
    row = trainer.fit()[-1]
    assert row["lr_head"] == pytest.approx(10 * row["lr_backbone"])
    after = model.state_dict()
    changed = {top: False for top in ("layer0", "layer1", "layer2", "layer3", "layer4", "last_linear")}
    for key in before:
        changed[key.split(".")[0]] |= not torch.equal(before[key], after[key])
    assert changed == {
        "layer0": False,
        "layer1": False,
        "layer2": False,
        "layer3": True,
        "layer4": True,
        "last_linear": True,
    }
    with pytest.raises(ValueError, match="not a top-level module.*layer4"):
        Trainer(
            _tiny_senet(0),
            train,
            val,
            out_dir=tmp_path / "x",
            config=TrainConfig(freeze_until="stage9", progress=False),
        )


class _NoBatchNorm(nn.Module):
    """A network whose gradients do not depend on how a batch is split (no BatchNorm)."""

    def __init__(self) -> None:
        super().__init__()
        self.num_classes = 3
        self.conv = nn.Conv2d(3, 6, 3)
        self.fc = nn.Linear(6, 3)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def _tensor_data(n: int = 16) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=gen), torch.randint(0, 3, (n,), generator=gen))


def _train_no_bn(tmp_path: Path, **options) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(**{"epochs": 2, "lr": 0.1, "weight_decay": 1e-3, "progress": False, **options})
    trainer = Trainer(_NoBatchNorm(), _tensor_data(), _tensor_data(6), out_dir=tmp_path, num_classes=3, config=config)
    trainer.fit()
    return trainer


def test_gradient_accumulation_equals_the_larger_batch(tmp_path: Path) -> None:
    accumulated = _train_no_bn(tmp_path / "accum", batch_size=4, accum_steps=2)
    large = _train_no_bn(tmp_path / "large", batch_size=8, accum_steps=1)
    assert accumulated.step == large.step == 4
    for (name, a), (_, b) in zip(accumulated.model.named_parameters(), large.model.named_parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
    initial = _NoBatchNorm()
    assert not torch.allclose(initial.fc.weight, large.model.fc.weight)


def test_bf16_autocast_and_adamw_with_label_smoothing_run_on_cpu(tmp_path: Path) -> None:
    trainer = _train_no_bn(tmp_path, batch_size=8, amp="bf16", optimizer="adamw", label_smoothing=0.1, lr=1e-3)
    assert trainer.amp_dtype == torch.bfloat16
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]) for row in trainer.history)


def test_learning_rate_schedule_warmup_then_cosine() -> None:
    total, warmup = 10, 2
    assert lr_factor(0, total, warmup) == pytest.approx(0.5)
    assert lr_factor(1, total, warmup) == pytest.approx(1.0)
    assert lr_factor(2, total, warmup) == pytest.approx(1.0)
    # Cosine over the 8 steps 2..9 towards the floor one step after the last: step 6 is halfway.
    assert lr_factor(6, total, warmup, min_ratio=0.1) == pytest.approx(0.55)
    last = lr_factor(total - 1, total, warmup, min_ratio=0.1)
    assert 0.1 < last < 0.15  # the last step still trains (it was exactly the floor, 0.0 by default)
    assert lr_factor(total - 1, total, warmup) > 0.0
    assert lr_factor(total, total, warmup, min_ratio=0.1) == pytest.approx(0.1)
    values = [lr_factor(s, total, warmup) for s in range(total)]
    assert all(a > b for a, b in zip(values[2:], values[3:]))


def test_optimizer_state_round_trips_without_pickle(tmp_path: Path) -> None:
    def step(model: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
        x, y = _tensor_data(8)[:]
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x + seed), y).backward()
        optimizer.step()

    torch.manual_seed(0)
    model = _NoBatchNorm()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    step(model, optimizer, 0)
    rest, digest = save_optimizer(tmp_path / "optim.safetensors", optimizer.state_dict())
    assert digest == hashlib.sha256((tmp_path / "optim.safetensors").read_bytes()).hexdigest()
    rest = json.loads(json.dumps(rest))  # what state.json holds
    restored_model = _NoBatchNorm()
    restored_model.load_state_dict(model.state_dict())
    restored = torch.optim.AdamW(restored_model.parameters(), lr=0.5)
    restored.load_state_dict(load_optimizer(tmp_path / "optim.safetensors", rest, digest))
    assert restored.param_groups[0]["lr"] == 0.01
    step(model, optimizer, 1)
    step(restored_model, restored, 1)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), restored_model.parameters()))
    assert set(load_file(str(tmp_path / "optim.safetensors"))) == {
        f"state.{i}.{k}" for i in range(4) for k in ("step", "exp_avg", "exp_avg_sq")
    }
    assert read_model_metadata(tmp_path / "optim.safetensors") == {}


def test_config_rejects_bad_values() -> None:
    for bad in (
        dict(epochs=0),
        dict(lr=-1.0),
        dict(accum_steps=0),
        dict(optimizer="lbfgs"),
        dict(amp="fp8"),
        dict(label_smoothing=1.0),
        dict(head_lr=0.0),
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="fp16"):
        Trainer(
            _NoBatchNorm(),
            _tensor_data(),
            out_dir="unused",
            num_classes=3,
            config=TrainConfig(amp="fp16", device="cpu"),
        )
