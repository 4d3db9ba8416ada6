"""``senet-zoo finetune`` and ``senet-zoo evaluate``: fine-tune on an ImageFolder, measure top-1/top-5.

Both run unchanged under ``torchrun --nproc_per_node N -m senet_zoo.cli ...`` (DDP, one shard per rank).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["register", "add_model_options", "model_kwargs_from"]


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Architecture options shared by the commands that build a model (the paper's SE ablation knobs)."""
    from ..models.se import GATES, SQUEEZE_OPS

    g = p.add_argument_group("architecture options (must match the weights' training)")
    g.add_argument("--se-reduction", type=int, help="SE reduction ratio r (default 16)")
    g.add_argument("--se-squeeze", choices=SQUEEZE_OPS, help="SE squeeze operator (default avg)")
    g.add_argument("--se-gate", choices=tuple(GATES), help="SE excitation gate (default sigmoid)")
    g.add_argument("--in-chans", type=int, help="input channels (1: grayscale; pretrained conv1 is adapted)")
    g.add_argument("--drop-rate", type=float, help="dropout before the classifier")
    g.add_argument(
        "--model-kwargs",
        type=json.loads,
        default={},
        metavar="JSON",
        help="any other constructor options, e.g. '{\"layers\": [1, 1, 1, 1]}'",
    )


def model_kwargs_from(args: argparse.Namespace) -> dict[str, Any]:
    """The architecture options given on the command line (unset ones are left to the model/checkpoint)."""
    if not isinstance(args.model_kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")
    given = dict(
        se_reduction=args.se_reduction,
        se_squeeze=args.se_squeeze,
        se_gate=args.se_gate,
        in_chans=args.in_chans,
        drop_rate=args.drop_rate,
    )
    return {**args.model_kwargs, **{k: v for k, v in given.items() if v is not None}}


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    from .trainer import AMP_MODES

    p.add_argument("--img-size", type=int, help="input resolution (default: the model's pretrained config)")
    p.add_argument("--batch-size", type=int, default=32, help="per process (default 32)")
    p.add_argument("--workers", type=int, default=4, help="data-loading processes per training process")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda (under torchrun: one GPU per rank)")
    p.add_argument("--amp", choices=AMP_MODES, default="auto", help="mixed precision (auto: CUDA only)")


def register(subparsers: argparse._SubParsersAction) -> None:
    from .optim import OPTIMIZERS

    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on an ImageFolder (DIR/train/CLASS/*, DIR/val/CLASS/*)",
        description="Fine-tune on DIR/train, validate on DIR/val each epoch; RUN_DIR gets checkpoints "
        "(safetensors + state.json), best.safetensors, metrics.csv and curves.png. "
        "Run under torchrun for several processes.",
    )
    p.add_argument("--model", required=True, help="senet_zoo model name, e.g. se_resnet50")
    p.add_argument("--data", required=True, metavar="DIR", help="ImageFolder root with train/ and val/")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--num-classes", default="auto", help="classes of the new task (auto: count DIR/train/*)")
    p.add_argument(
        "--pretrained",
        default="default",
        metavar="PATH|TAG|default|none",
        help="starting weights (default: the model's default published weights)",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd")
    p.add_argument("--lr", type=float, default=0.01, help="backbone peak learning rate")
    p.add_argument("--head-lr", type=float, help="classifier learning rate (default: --lr)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup-epochs", type=float, default=0.0)
    p.add_argument("--min-lr-ratio", type=float, default=0.0, help="final learning rate / peak")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--freeze-epochs", type=int, default=0, help="train only the head for the first N epochs")
    p.add_argument("--freeze-until", metavar="MODULE", help="keep top-level modules up to MODULE frozen (layer2)")
    p.add_argument("--accum-steps", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--no-augment", action="store_true", help="train on the evaluation transform")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_runtime_options(p)
    add_model_options(p)
    p.set_defaults(func=_finetune)

    p = subparsers.add_parser(
        "evaluate",
        help="top-1 / top-5 accuracy of weights on an ImageFolder",
        description="Evaluate a model on DIR/CLASS/* with its evaluation transform.",
    )
    p.add_argument("--model", help="model name (default: the one recorded in a fine-tuning checkpoint)")
    p.add_argument(
        "--weights",
        required=True,
        metavar="PATH|TAG|default",
        help="a .safetensors file (e.g. RUN_DIR/best.safetensors) or a published weights tag",
    )
    p.add_argument("--data", required=True, metavar="DIR", help="ImageFolder root (e.g. DIR/val)")
    _add_runtime_options(p)
    add_model_options(p)
    p.set_defaults(func=_evaluate)


def _num_classes(value: str, data: str) -> int:
    from .data import count_classes

    if value == "auto":
        return count_classes(data)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--num-classes must be 'auto' or an integer, got {value!r}") from None


def _finetune(args: argparse.Namespace) -> int:
    import torch

    from ..registry import create_model
    from .data import image_folder_datasets
    from .load import parse_pretrained
    from .trainer import TrainConfig, Trainer

    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        head_lr=args.head_lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        min_lr_ratio=args.min_lr_ratio,
        label_smoothing=args.label_smoothing,
        freeze_epochs=args.freeze_epochs,
        freeze_until=args.freeze_until,
        accum_steps=args.accum_steps,
        amp=args.amp,
        seed=args.seed,
        num_workers=args.workers,
        device=args.device,
        deterministic=args.deterministic,
        progress=not args.no_progress,
    )
    kwargs = model_kwargs_from(args)
    num_classes = _num_classes(args.num_classes, args.data)
    torch.manual_seed(args.seed)  # every rank builds the same new head
    model = create_model(args.model, pretrained=parse_pretrained(args.pretrained), num_classes=num_classes, **kwargs)
    # The transforms follow the loaded weights' preprocessing, so the data sets come after the model.
    train, val, classes = image_folder_datasets(
        args.data, model, args.img_size, not args.no_augment, kwargs.get("in_chans", 3)
    )
    if len(classes) != num_classes:
        raise ValueError(f"{args.data}/train has {len(classes)} class folders but --num-classes is {num_classes}")
    trainer = Trainer(model, train, val, out_dir=args.out, num_classes=num_classes, config=config, model_kwargs=kwargs)
    try:
        history = trainer.fit(resume=args.resume)
    finally:
        trainer.close()
    if trainer.dist.is_main:
        last = history[-1]
        print(
            f"epoch {last['epoch']}: val top-1 {last['val_top1']:.2f}%  top-5 {last['val_top5']:.2f}%  "
            f"(best {trainer.best.get('val_top1', float('nan')):.2f}% at epoch {trainer.best.get('epoch')})"
        )
        print(f"run directory: {args.out} (best.safetensors, metrics.csv, curves.png, state.json)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from . import distributed
    from .data import eval_loader, image_folder, model_transforms
    from .load import load_model
    from .trainer import amp_dtype, evaluate

    dist_info = distributed.setup(args.device)
    try:
        model, info = load_model(args.model, args.weights, **model_kwargs_from(args))
        _, eval_tf = model_transforms(model, args.img_size, augment=False, in_chans=getattr(model, "in_chans", 3))
        dataset = image_folder(args.data, eval_tf)
        if info.get("classes") and list(dataset.classes) != info["classes"]:
            raise ValueError(
                f"{args.data}: class folders {dataset.classes} differ from the classes the weights "
                f"were trained on {info['classes']}"
            )
        loader = eval_loader(dataset, args.batch_size, dist_info, args.workers)
        model.to(dist_info.device)
        metrics = evaluate(model, loader, dist_info.device, amp_dtype(args.amp, dist_info.device), progress=True)
    finally:
        distributed.teardown(dist_info)
    if dist_info.is_main:
        print(
            f"top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  loss {metrics['loss']:.4f}  "
            f"({metrics['samples']} images)"
        )
    return 0
