"""Fine-tune an SE network on a new label set: one process or many (``torchrun``), resumable, reproducible.

>>> from senet_zoo.finetune import Trainer, TrainConfig, image_folder_datasets
>>> trainer = Trainer("se_resnet50", train, val, num_classes=5, pretrained=True, out_dir="runs/flowers",
...                   config=TrainConfig(epochs=10, lr=0.01, head_lr=0.1, freeze_epochs=1, warmup_epochs=1))
>>> history = trainer.fit()          # or trainer.fit(resume=True) after an interruption

Each epoch reseeds every random generator from (seed, epoch, rank) and the data order depends only on
(seed, epoch), so an interrupted run resumed from its last checkpoint reproduces the uninterrupted one.
A checkpoint is written with SIGINT/SIGTERM held back (never half-written) and only from finite weights:
a NaN or infinite loss stops training with :class:`NonFiniteError` and leaves the last good checkpoint
and ``best.safetensors`` as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .._files import exclusive_output
from .._log import get_logger
from . import checkpoint, distributed
from .data import (
    AUGMENT_PRESETS,
    DEFAULT_AUGMENT,
    PREPROCESSING_KEYS,
    augmentation,
    dataset_classes,
    eval_loader,
    train_loader,
)
from .metrics import plot_curves, write_metrics_csv
from .optim import OPTIMIZERS, backbone_modules, build_optimizer, lr_factor, modules_until

__all__ = ["TrainConfig", "Trainer", "NonFiniteError", "evaluate", "amp_dtype", "format_epoch", "AMP_MODES"]

_logger = get_logger(__name__)

AMP_MODES = ("auto", "bf16", "fp16", "off")
STATE_FILE = "state.json"
STATE_FORMAT = 2  # 2: state.json records the sha256 of the checkpoint files
# Options that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = frozenset({"epochs", "num_workers", "threads", "progress", "device"})


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss or weights; nothing of that epoch was saved."""


@dataclasses.dataclass
class TrainConfig:
    """Fine-tuning options.

    ``lr`` is the backbone's peak learning rate and ``head_lr`` the new classifier's (default ``lr``).
    ``freeze_epochs`` trains only the head for the first epochs; ``freeze_until`` keeps the top-level
    modules up to and including that one (e.g. ``"layer2"``) frozen for the whole run (frozen BatchNorm
    layers keep their running statistics). The schedule is a linear warm-up over ``warmup_epochs``, then a
    cosine decay to ``min_lr_ratio × lr``, stepped per optimizer step. ``accum_steps`` micro-batches
    make one optimizer step. ``amp``: ``"auto"`` uses CUDA autocast (bf16 where supported, else fp16
    with loss scaling) and full precision on the CPU; ``"bf16"`` also works on the CPU.

    ``augment`` names the training augmentation preset (:data:`~senet_zoo.finetune.data.AUGMENT_PRESETS`;
    the default ``"light"`` suits small data sets) and ``hflip`` switches horizontal flips on or off
    (None: the preset's choice); pass both to :func:`~senet_zoo.finetune.data.image_folder_datasets`,
    which builds the transforms. ``threads`` (torch intra-op threads) and ``num_workers`` (data-loading
    processes) default to a split of this process's share of the cores that never oversubscribes them
    (:func:`~senet_zoo.finetune.distributed.cpu_plan`). These defaults are the CLI's.
    """

    epochs: int = 10
    batch_size: int = 32
    augment: str = DEFAULT_AUGMENT
    hflip: bool | None = None
    optimizer: str = "sgd"
    lr: float = 0.01
    head_lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    label_smoothing: float = 0.0
    freeze_epochs: int = 0
    freeze_until: str | None = None
    accum_steps: int = 1
    amp: str = "auto"
    seed: int = 0
    num_workers: int | None = None
    threads: int | None = None
    device: str = "auto"
    deterministic: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        positive = dict(epochs=self.epochs, batch_size=self.batch_size, accum_steps=self.accum_steps, lr=self.lr)
        for key, value in positive.items():
            if not value > 0:
                raise ValueError(f"{key} must be positive, got {value!r}")
        non_negative = dict(
            weight_decay=self.weight_decay,
            warmup_epochs=self.warmup_epochs,
            freeze_epochs=self.freeze_epochs,
            num_workers=0 if self.num_workers is None else self.num_workers,
            momentum=self.momentum,
        )
        for key, value in non_negative.items():
            if value < 0:
                raise ValueError(f"{key} must be non-negative, got {value!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads!r}")
        if self.augment not in AUGMENT_PRESETS:
            raise ValueError(f"augment must be one of {tuple(AUGMENT_PRESETS)}, got {self.augment!r}")
        if self.head_lr is not None and not self.head_lr > 0:
            raise ValueError(f"head_lr must be positive, got {self.head_lr!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``mode`` on ``device`` (None: full precision)."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs a CUDA device; use 'bf16' or 'off' on the CPU")
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


def _seed_all(seed: int, epoch: int, rank: int) -> None:
    """Seed Python, NumPy and torch from (seed, epoch, rank): every epoch's randomness is reproducible."""
    value = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Cross-entropy loss and top-1 / top-5 accuracy (%) of ``model`` over ``loader``.

    Under ``torchrun`` each rank evaluates its shard and the sums are reduced, so every rank returns
    the metrics of the whole data set. With fewer than 5 classes top-5 is top-(number of classes).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top-1 hits, top-5 hits, samples
    for images, targets in tqdm(loader, desc="eval", leave=False, disable=not progress):
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with _autocast(device, amp_dtype):
            logits = model(images)
        logits = logits.float()
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices == targets[:, None]
        totals += torch.stack(
            [
                nn.functional.cross_entropy(logits, targets, reduction="sum").double(),
                hits[:, 0].sum().double(),
                hits.any(dim=1).sum().double(),
                torch.tensor(float(len(targets)), dtype=torch.float64, device=device),
            ]
        )
    model.train(was_training)
    loss_sum, top1, top5, count = distributed.all_reduce_sum(totals).tolist()
    if count == 0:
        raise ValueError("evaluation data set is empty")
    return dict(loss=loss_sum / count, top1=100.0 * top1 / count, top5=100.0 * top5 / count, samples=int(count))


class Trainer:
    """Fine-tune ``model`` (a registry name or a module) on ``train_data``, validating on ``val_data``.

    Args:
        model: a senet_zoo model name (built with ``pretrained``, ``num_classes`` and ``model_kwargs``)
            or an ``nn.Module`` with ``get_classifier()`` (its classifier is reset when ``num_classes``
            differs from ``model.num_classes``; ``model_kwargs`` then only records how it was built).
        train_data / val_data: map-style data sets of ``(image tensor, class index)``;
            :func:`~senet_zoo.finetune.data.image_folder_datasets` builds them with the model's preprocessing.
        num_classes: classes of the new task (default: ``len(train_data.classes)``).
        out_dir: run directory: ``state.json``, ``checkpoints/``, ``best.safetensors``, ``metrics.csv``,
            ``curves.png``. Only rank 0 writes.
        config: :class:`TrainConfig`.
        pretrained: for a model name: ``False``, ``True``, a weights tag or a ``.safetensors`` path.
        model_kwargs: architecture options (``in_chans``, ``se_gate``, ``drop_rate`` ...), stored in the
            checkpoints so that :func:`~senet_zoo.finetune.load_model` rebuilds the same network.
        preprocessing: the data config (timm keys: input_size, mean, std, ...) the data sets use; stored
            in the checkpoints so evaluation preprocesses alike (default: the data sets' ``data_config``,
            as :func:`~senet_zoo.finetune.data.image_folder_datasets` sets it, else the model's config).
        base_weights: where the starting weights come from (:meth:`senet_zoo.resolve.Source.provenance`),
            recorded with the checkpoints (default: described from ``pretrained`` for a model name).
    """

    def __init__(
        self,
        model: str | nn.Module,
        train_data: Dataset,
        val_data: Dataset | None = None,
        *,
        out_dir: str | Path,
        num_classes: int | None = None,
        config: TrainConfig | None = None,
        pretrained: Any = False,
        model_kwargs: Mapping[str, Any] | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        base_weights: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = cfg = config or TrainConfig()
        self.out_dir = Path(out_dir)
        self.dist = distributed.setup(cfg.device)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.classes = dataset_classes(train_data)
        if num_classes is None:
            if self.classes is None:
                raise ValueError("num_classes is required when the training data set has no `classes`")
            num_classes = len(self.classes)
        torch.manual_seed(cfg.seed)  # the same fresh head on every rank and in every run with this seed
        self.model, self.model_info = _build(model, num_classes, pretrained, dict(model_kwargs or {}), self.classes)
        given = preprocessing or getattr(val_data if val_data is not None else train_data, "data_config", None)
        self.model_info["preprocessing"] = _preprocessing(self.model, given)
        if base_weights is None and isinstance(model, str) and pretrained:
            from ..resolve import resolve_pretrained

            source = resolve_pretrained(model, pretrained)[1]
            base_weights = source.provenance() if source is not None else None
        self.model_info["base_weights"] = dict(base_weights) if base_weights else {"kind": "none"}
        self.augmentation = _augmentation(train_data, cfg)
        self.threads, self.num_workers = distributed.cpu_plan(self.dist.device, cfg.threads, cfg.num_workers)
        torch.set_num_threads(self.threads)
        self.model.to(self.dist.device)
        self.amp_dtype = amp_dtype(cfg.amp, self.dist.device)
        self.train_loader = train_loader(train_data, cfg.batch_size, self.dist, cfg.seed, self.num_workers)
        self.val_loader = (
            None if val_data is None else eval_loader(val_data, cfg.batch_size, self.dist, self.num_workers)
        )
        self.steps_per_epoch = math.ceil(len(self.train_loader) / cfg.accum_steps)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.warmup_steps = round(cfg.warmup_epochs * self.steps_per_epoch)
        self.optimizer = build_optimizer(self.model, cfg.optimizer, cfg.lr, cfg.head_lr, cfg.momentum, cfg.weight_decay)
        self.scaler = torch.amp.GradScaler(self.dist.device.type, enabled=self.amp_dtype == torch.float16)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.always_frozen = set(modules_until(self.model, cfg.freeze_until)) if cfg.freeze_until else set()
        self.backbone = set(backbone_modules(self.model))
        self.frozen: set[str] | None = None
        self.wrapped: nn.Module = self.model
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self.last_lrs: dict[str, float] = {}  # the learning rates of the last optimizer step taken
        self._own_checkpoints: set[Path] = set()  # the checkpoint files state.json names: replaced next epoch

    # ------------------------------------------------------------------------------------------ run

    def fit(
        self, resume: bool = False, on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        """Train until ``config.epochs``; return the per-epoch metrics (also in ``metrics.csv``).

        ``resume=True`` continues from ``out_dir``'s last checkpoint; without it an ``out_dir`` that
        already holds a run is an error. ``on_epoch_end(trainer, row)`` runs after each checkpoint.
        The run holds an exclusive lock on ``out_dir``: a second run into it fails at once.
        """
        lock = exclusive_output(self.out_dir, "finetune") if self.dist.is_main else contextlib.nullcontext()
        with lock:
            return self._fit(resume, on_epoch_end)

    def _fit(
        self, resume: bool, on_epoch_end: Callable[[Trainer, dict[str, Any]], None] | None
    ) -> list[dict[str, Any]]:
        state_path = self.out_dir / STATE_FILE
        if resume:
            start = self._load(state_path)
            _logger.info("resuming %s after epoch %d", self.out_dir, start)
        elif state_path.exists():
            raise FileExistsError(
                f"{state_path} exists: {self.out_dir} already holds a run "
                "(resume it, or choose another output directory)"
            )
        else:
            start = 0
        for epoch in range(start, self.config.epochs):
            started = time.perf_counter()
            self._set_frozen(epoch)
            _seed_all(self.config.seed, epoch, self.dist.rank)
            train = self._train_epoch(epoch)
            train_time = time.perf_counter() - started
            val = self.evaluate() if self.val_loader is not None else {}
            row = dict(
                epoch=epoch + 1,
                train_loss=train["loss"],
                train_top1=train["top1"],
                val_loss=val.get("loss"),
                val_top1=val.get("top1"),
                val_top5=val.get("top5"),
                lr_backbone=self.last_lrs.get("backbone"),
                lr_head=self.last_lrs.get("head"),
                train_samples=train["samples"],
                val_samples=val.get("samples"),
                world_size=self.dist.world_size,
                img_per_s=round(train["samples"] / train_time, 1),
                epoch_time_s=round(time.perf_counter() - started, 3),
            )
            self._check_finite(row)
            with _signals_held():  # a checkpoint is written whole or not at all
                self.history.append(row)
                self._save(epoch + 1)
            if self.dist.is_main:
                _logger.debug("%s", format_epoch(row, self.config.epochs, self.best))
            if on_epoch_end is not None:
                on_epoch_end(self, row)
        return self.history

    @property
    def epochs_done(self) -> int:
        """Epochs whose checkpoint is on disk (what ``fit(resume=True)`` continues from)."""
        return len(self.history)

    def _check_finite(self, row: dict[str, Any]) -> None:
        """Refuse to checkpoint an epoch whose losses or weights are not finite."""
        bad = checkpoint.non_finite(self.model.state_dict())
        losses = {k: row[k] for k in ("train_loss", "val_loss") if row[k] is not None and not math.isfinite(row[k])}
        if bad or losses:
            what = ", ".join([f"{k} {v}" for k, v in losses.items()] + ([f"weights {bad[0]} ..."] if bad else []))
            raise NonFiniteError(self._nonfinite_message(row["epoch"], what))

    def _nonfinite_message(self, epoch: int, what: str) -> str:
        kept = f"the checkpoint of epoch {self.epochs_done} is kept" if self.history else "nothing was saved"
        return (
            f"epoch {epoch}: training diverged ({what} not finite); stopped, {kept} in {self.out_dir}. "
            f"Try a lower learning rate (lr {self.config.lr:g}) or warm-up epochs."
        )

    def evaluate(self) -> dict[str, float]:
        """Validation metrics of the current model (reduced over all ranks)."""
        if self.val_loader is None:
            raise ValueError("no validation data set was given")
        return evaluate(
            self.model,
            self.val_loader,
            self.dist.device,
            self.amp_dtype,
            progress=self.config.progress and self.dist.is_main,
        )

    def close(self) -> None:
        """Leave the process group this trainer joined (under ``torchrun``)."""
        distributed.teardown(self.dist)

    # ------------------------------------------------------------------------------------- training

    def _set_frozen(self, epoch: int) -> None:
        """Freeze the backbone during the first ``freeze_epochs``; re-wrap for DDP when that changes."""
        frozen = self.always_frozen | (self.backbone if epoch < self.config.freeze_epochs else set())
        if frozen == self.frozen:
            return
        self.frozen = frozen
        for name, child in self.model.named_children():
            child.requires_grad_(name not in frozen)
        if self.dist.world_size > 1:  # DDP registers the parameters that need gradients when it is built
            ids = None if self.dist.device.type == "cpu" else [self.dist.device]
            self.wrapped = DistributedDataParallel(self.model, device_ids=ids)
        _logger.info("epoch %d: frozen modules %s", epoch + 1, sorted(frozen) or "none")

    def _train_mode(self) -> None:
        self.model.train()
        for name, child in self.model.named_children():
            if name in (self.frozen or ()):
                child.eval()  # frozen BatchNorm keeps its running statistics

    def _set_lr(self) -> None:
        factor = lr_factor(self.step, self.total_steps, self.warmup_steps, self.config.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
            self.last_lrs[group["part"]] = group["lr"]

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, device = self.config, self.dist.device
        cast(DistributedSampler, self.train_loader.sampler).set_epoch(epoch)
        self._train_mode()
        n_batches = len(self.train_loader)
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, top-1 hits, samples
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=not (cfg.progress and self.dist.is_main),
        )
        for i, (images, targets) in enumerate(bar):
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            window_start = i - i % cfg.accum_steps
            window = min(cfg.accum_steps, n_batches - window_start)  # micro-batches in this optimizer step
            last = i - window_start == window - 1
            sync = (
                contextlib.nullcontext()
                if last or self.wrapped is self.model
                else cast(DistributedDataParallel, self.wrapped).no_sync()
            )
            with sync:
                with _autocast(device, self.amp_dtype):
                    logits = self.wrapped(images)
                    loss = self.criterion(logits, targets)
                self.scaler.scale(loss / window).backward()
            value = loss.item()
            if not math.isfinite(value):  # stop before the optimizer spreads it into the weights
                raise NonFiniteError(self._nonfinite_message(epoch + 1, f"loss {value} at batch {i + 1}"))
            totals += torch.stack(
                [
                    loss.detach().double() * len(targets),
                    (logits.detach().argmax(1) == targets).sum().double(),
                    torch.tensor(float(len(targets)), dtype=torch.float64, device=device),
                ]
            )
            if last:
                self._set_lr()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
            bar.set_postfix(loss=f"{value:.3f}")
        loss_sum, hits, count = distributed.all_reduce_sum(totals).tolist()
        return dict(loss=loss_sum / count, top1=100.0 * hits / count, samples=int(count))

    # ---------------------------------------------------------------------------------- checkpoints

    def _save(self, epoch: int) -> None:
        """Rank 0 writes the checkpoint, then ``state.json`` (the commit point), metrics and curves."""
        if self.dist.is_main:
            ckpt_dir = self.out_dir / "checkpoints"
            if ckpt_dir.is_symlink():
                raise FileExistsError(f"{ckpt_dir} is a link: checkpoints are written only into the run's own folder")
            model_file = ckpt_dir / f"epoch_{epoch:03d}.safetensors"
            optim_file = ckpt_dir / f"epoch_{epoch:03d}.optim.safetensors"
            info = dict(self.model_info, epoch=epoch)
            model_sha256 = checkpoint.save_model(model_file, self.model.state_dict(), info)
            optim_rest, optim_sha256 = checkpoint.save_optimizer(optim_file, self.optimizer.state_dict())
            val_top1 = self.history[-1].get("val_top1")
            if val_top1 is not None and val_top1 > self.best.get("val_top1", -1.0):
                checkpoint.save_model(self.out_dir / "best.safetensors", self.model.state_dict(), info)
                self.best = dict(epoch=epoch, val_top1=val_top1)
            state = dict(
                format=STATE_FORMAT,
                epoch=epoch,
                step=self.step,
                world_size=self.dist.world_size,
                config=dataclasses.asdict(self.config),
                model=self.model_info,
                checkpoint=dict(
                    model=model_file.relative_to(self.out_dir).as_posix(),
                    model_sha256=model_sha256,
                    optimizer=optim_file.relative_to(self.out_dir).as_posix(),
                    optimizer_sha256=optim_sha256,
                ),
                augmentation=self.augmentation,
                optimizer=optim_rest,
                scaler=self.scaler.state_dict(),
                best=self.best,
                history=self.history,
            )
            checkpoint.write_json(self.out_dir / STATE_FILE, state)
            for old in self._own_checkpoints - {model_file, optim_file}:  # only files this run's state named
                old.unlink(missing_ok=True)  # a link is removed, never what it points to
            self._own_checkpoints = {model_file, optim_file}
            write_metrics_csv(self.out_dir / "metrics.csv", self.history)
            plot_curves(self.out_dir / "curves.png", self.history)
        distributed.barrier()

    def _load(self, state_path: Path) -> int:
        """Restore model, optimizer, scaler, step and history from ``state.json``; return its epoch.

        Nothing is used before it is checked: the JSON's structure, types and ranges, the sha256 of both
        files, every tensor's name, shape and finiteness, and the optimizer's groups and learning rates
        against this run's configuration. A ValueError names the file and the problem.
        """
        if not state_path.is_file():
            raise FileNotFoundError(f"{state_path}: no checkpoint to resume from")
        state = checkpoint.read_json(state_path)
        checkpoint.validate_state(state, state_path, STATE_FORMAT)
        self._check_config(state["config"], state_path)
        files = state["checkpoint"]
        model_file = self.out_dir / files["model"]
        weights = checkpoint.read_verified(model_file, files["model_sha256"], "model checkpoint")
        _check_tensors(model_file, weights, self.model.state_dict(), "model")
        optim_file = self.out_dir / files["optimizer"]
        optim_state = checkpoint.load_optimizer(optim_file, state["optimizer"], files["optimizer_sha256"])
        self._check_optimizer_state(optim_state, state_path, optim_file)
        self.model.load_state_dict({k: v.to(self.dist.device) for k, v in weights.items()})
        self.optimizer.load_state_dict(optim_state)
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.history, self.best = state["step"], state["history"], state["best"]
        self._own_checkpoints = {model_file, optim_file}
        return state["epoch"]

    def _check_config(self, saved: dict[str, Any], state_path: Path) -> None:
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(saved) - known)
        if unknown:
            raise ValueError(f"{state_path}: unknown config options {unknown}")
        changed = {
            k: (v, getattr(self.config, k))
            for k, v in saved.items()
            if k not in _RESUMABLE_CHANGES and getattr(self.config, k) != v
        }
        if changed:
            raise ValueError(
                f"{state_path}: the run was started with other options: "
                + ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            )
        if saved.get("epochs") != self.config.epochs:
            _logger.warning(
                "epochs changed from %s to %d: the learning-rate schedule changes with it",
                saved.get("epochs"),
                self.config.epochs,
            )

    def _check_optimizer_state(self, loaded: dict[str, Any], state_path: Path, optim_file: Path) -> None:
        """The saved optimizer must describe this model's parameters with this run's hyper-parameters."""
        current = self.optimizer.state_dict()
        groups = loaded["param_groups"]
        if len(groups) != len(current["param_groups"]):
            raise ValueError(
                f"{state_path}: {len(groups)} optimizer parameter groups, this model has {len(current['param_groups'])}"
            )
        shapes: dict[int, torch.Size] = {}
        for i, (saved, now) in enumerate(zip(groups, current["param_groups"])):
            where = f"{state_path}: optimizer.param_groups[{i}]"
            if saved["params"] != now["params"] or saved.get("part") != now["part"]:
                raise ValueError(f"{where} holds other parameters than this model's")
            for key in ("base_lr", "weight_decay", "momentum", "betas", "eps"):
                if key in now and saved.get(key) != json.loads(json.dumps(now[key])):  # as state.json holds it
                    raise ValueError(f"{where}.{key} is {saved.get(key)!r}, this run uses {now[key]!r}")
            if not 0.0 <= saved["lr"] <= saved["base_lr"] * (1 + 1e-9):
                raise ValueError(f"{where}.lr {saved['lr']!r} is outside [0, base_lr {saved['base_lr']!r}]")
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        index = [i for group in current["param_groups"] for i in group["params"]]
        shapes = {i: p.shape for i, p in zip(index, params)}
        for i, values in loaded["state"].items():
            if i not in shapes:
                raise ValueError(f"{optim_file}: state for parameter {i}, which this model does not have")
            for name, value in values.items():
                if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != shapes[i]:
                    raise ValueError(
                        f"{optim_file}: state.{i}.{name} has shape {tuple(value.shape)}, "
                        f"the parameter has {tuple(shapes[i])}"
                    )
        if self.config.optimizer == "sgd" and self.config.momentum > 0 and not loaded["state"]:
            raise ValueError(f"{optim_file}: no momentum buffers in the optimizer checkpoint")


def _check_tensors(
    path: Path, tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], what: str
) -> None:
    """``tensors`` has exactly ``expected``'s names, shapes and dtypes, and only finite values."""
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(f"{path}: not this {what}'s tensors (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, value in tensors.items():
        if value.shape != expected[key].shape or value.dtype != expected[key].dtype:
            raise ValueError(
                f"{path}: {key} is {tuple(value.shape)} {value.dtype}, "
                f"the {what} needs {tuple(expected[key].shape)} {expected[key].dtype}"
            )
    bad = checkpoint.non_finite(tensors)
    if bad:
        raise ValueError(f"{path}: holds NaN or infinite values ({', '.join(bad[:3])})")


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (main thread only), then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda sig, _frame: received.append(sig)) for sig in signums}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def format_epoch(row: Mapping[str, Any], epochs: int, best: Mapping[str, Any] | None = None) -> str:
    """One line per epoch: losses, top-1/top-5 in %, learning rate, images/s, time, best so far."""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}%"

    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    if row.get("val_loss") is not None:
        parts.append(f"val loss {row['val_loss']:.4f}  top-1 {pct(row['val_top1'])}  top-5 {pct(row['val_top5'])}")
    lr = row.get("lr_backbone") if row.get("lr_backbone") is not None else row.get("lr_head")
    parts += [
        f"lr {lr:.3g}" if lr is not None else "lr -",
        f"{row['img_per_s']:.0f} img/s",
        f"{row['epoch_time_s']:.1f} s",
    ]
    if best and best.get("val_top1") is not None:
        parts.append(f"best {best['val_top1']:.2f}% (epoch {best['epoch']})")
    return "  ".join(parts)


def _augmentation(train_data: Dataset, cfg: TrainConfig) -> dict[str, Any]:
    """What the training set applies (as image_folder_datasets records it), else the config's preset."""
    configured = augmentation(cfg.augment, cfg.hflip)
    applied = getattr(train_data, "augmentation", None)
    if applied is not None and applied != configured:
        _logger.warning("the training set uses augmentation %s, not the config's %s", applied, configured)
    return applied if applied is not None else configured


def _preprocessing(model: nn.Module, given: Mapping[str, Any] | None) -> dict[str, Any]:
    from timm.data import resolve_data_config

    cfg = dict(given) if given is not None else resolve_data_config(model=model)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items() if k in PREPROCESSING_KEYS}


def _build(
    model: str | nn.Module,
    num_classes: int,
    pretrained: Any,
    model_kwargs: dict[str, Any],
    classes: Sequence[str] | None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The model to train and the description stored with its checkpoints."""
    if isinstance(model, str):
        from ..registry import create_model

        # a new task: weights with another head (a run on other classes) get a new one, logged
        net = create_model(model, pretrained=pretrained, num_classes=num_classes, new_head=True, **model_kwargs)
        name: str | None = model
    else:
        if pretrained:
            raise ValueError("pretrained applies to a model name; a built module already holds its weights")
        net = model
        if getattr(net, "num_classes", None) != num_classes:
            cast(Any, net).reset_classifier(num_classes)
        name = getattr(net, "pretrained_cfg", {}).get("architecture")
    info = dict(architecture=name, num_classes=num_classes, model_kwargs=model_kwargs, classes=classes)
    return net, info
