"""``senet-zoo finetune`` and ``senet-zoo evaluate``: fine-tune on an ImageFolder, measure top-1/top-5.

Both run unchanged under ``torchrun --nproc_per_node N -m senet_zoo.cli ...`` (DDP, one shard per rank).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from typing import Any

from .._cli_helpers import add_command, call_with_options

__all__ = ["register", "add_model_options", "add_trained_model_options", "model_kwargs_from"]


def add_trained_model_options(p: argparse.ArgumentParser, data_help: str) -> None:
    """``--model``, ``--weights`` and ``--data``: the commands that run trained weights over an ImageFolder
    (``evaluate``, ``excitations``; both load them with :func:`senet_zoo.finetune.load.load_model`)."""
    p.add_argument("--model", help="model name (default: the one recorded in a fine-tuning checkpoint)")
    p.add_argument(
        "--weights",
        required=True,
        metavar="PATH|RUN_DIR|TAG|default",
        help="a .safetensors file, a fine-tuning run folder (its best.safetensors) or a published weights tag",
    )
    p.add_argument("--data", required=True, metavar="DIR", help=data_help)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Architecture options shared by the commands that build a model (the paper's SE ablation knobs)."""
    from ..models.se import GATES, SQUEEZE_OPS
    from ..models.senet import SE_POSITIONS

    g = p.add_argument_group("architecture options (must match the weights' training)")
    g.add_argument("--se-reduction", type=int, help="SE reduction ratio r (default 16)")
    g.add_argument("--se-squeeze", choices=SQUEEZE_OPS, help="SE squeeze operator (default avg)")
    g.add_argument("--se-gate", choices=tuple(GATES), help="SE excitation gate (default sigmoid)")
    g.add_argument(
        "--se-stages",
        type=_stages,
        metavar="N,N",
        help="ResNet family: the stages (1-4) whose blocks get SE, e.g. '3,4' or 'none' (default all; paper §6.4)",
    )
    g.add_argument(
        "--se-position",
        choices=SE_POSITIONS,
        help="ResNet family: where the SE block sits in each bottleneck (default standard; paper §6.5, Fig. 5)",
    )
    g.add_argument("--in-chans", type=int, help="input channels (1: grayscale; pretrained conv1 is adapted)")
    g.add_argument("--drop-rate", type=float, help="dropout before the classifier")
    g.add_argument(
        "--model-kwargs",
        type=json.loads,
        default={},
        metavar="JSON",
        help="any other constructor options, e.g. '{\"layers\": [1, 1, 1, 1]}'",
    )


def _stages(text: str) -> list[int]:
    """``"3,4"`` → ``[3, 4]``; ``"none"`` → ``[]`` (argparse type of ``--se-stages``)."""
    if text.strip().lower() == "none":
        return []
    try:
        stages = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected stage numbers like '3,4' or 'none', got {text!r}") from None
    if not set(stages) <= {1, 2, 3, 4}:
        raise argparse.ArgumentTypeError(f"stages are 1 to 4, got {text!r}")
    return stages


def model_kwargs_from(args: argparse.Namespace) -> dict[str, Any]:
    """The architecture options given on the command line (unset ones are left to the model/checkpoint)."""
    if not isinstance(args.model_kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")
    names = ("se_reduction", "se_squeeze", "se_gate", "se_stages", "se_position", "in_chans", "drop_rate")
    given = {k: getattr(args, k, None) for k in names}
    return {**args.model_kwargs, **{k: v for k, v in given.items() if v is not None}}


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    from .trainer import AMP_MODES, TrainConfig

    defaults = TrainConfig()
    p.add_argument("--img-size", type=int, help="input resolution (default: the model's pretrained config)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="images per batch and process")
    p.add_argument(
        "--workers",
        type=int,
        default=defaults.num_workers,
        help="data-loading processes per training process (default: a share of the cores that, with "
        "--threads, never oversubscribes them: 0 below 4 cores per process on a CPU)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=defaults.threads,
        help="torch threads per process (default: $OMP_NUM_THREADS, else the cores / processes per node "
        "left after --workers)",
    )
    p.add_argument("--device", default=defaults.device, help="auto, cpu, cuda (under torchrun: one GPU per rank)")
    p.add_argument("--amp", choices=AMP_MODES, default=defaults.amp, help="mixed precision (auto: CUDA only)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse image folders with unreadable, corrupt or oversize images or links out of the folder "
        "(default: skip them with a warning naming the first)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    from .data import AUGMENT_PRESETS
    from .optim import OPTIMIZERS
    from .trainer import TrainConfig

    d = TrainConfig()  # one source for the defaults of the CLI and the Python API
    p = add_command(subparsers, "finetune", _finetune)
    p.add_argument("--model", required=True, help="senet_zoo model name, e.g. se_resnet50")
    p.add_argument("--data", required=True, metavar="DIR", help="ImageFolder root with train/ and val/")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--num-classes", default="auto", help="classes of the new task (auto: count DIR/train/*)")
    p.add_argument(
        "--pretrained",
        default="default",
        metavar="PATH|TAG|default|none",
        help="starting weights (default: the model's default published weights; none: random init)",
    )
    p.add_argument(
        "--pretrained-path",
        metavar="FILE",
        help="a local file holding the weights --pretrained names, loaded by that tag's rules (as timm's "
        "--pretrained-path; create_model's pretrained_cfg_overlay=dict(file=FILE)), e.g. --pretrained backbone "
        "--pretrained-path mobilenetv1_100.safetensors",
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training set")
    p.add_argument(
        "--augment",
        choices=tuple(AUGMENT_PRESETS),
        default=d.augment,
        help="training augmentation: none; light (crops of 70-100%% of the image, no colour jitter; for "
        "small data sets); standard (crops of 35-100%%); imagenet (timm's from-scratch recipe: 8-100%% "
        "crops, flip, colour jitter)",
    )
    p.add_argument(
        "--hflip",
        action=argparse.BooleanOptionalAction,
        default=d.hflip,
        help="random horizontal flips (default: only with --augment imagenet; wrong for digits and text)",
    )
    p.add_argument(
        "--mean",
        type=float,
        nargs="+",
        help="input normalisation mean, 0-1 scale (default: the weights'; ImageNet's for --pretrained none)",
    )
    p.add_argument("--std", type=float, nargs="+", help="input normalisation std (default: as for --mean)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="sgd (with momentum) or adamw")
    p.add_argument("--lr", type=float, default=d.lr, help="backbone peak learning rate")
    p.add_argument("--head-lr", type=float, help="classifier learning rate (default: --lr)")
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="on weights, not biases/norms")
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs, help="linear warm-up, then cosine")
    p.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio, help="final learning rate / peak")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing, help="cross-entropy smoothing")
    p.add_argument(
        "--freeze-epochs", type=int, default=d.freeze_epochs, help="train only the head for the first N epochs"
    )
    p.add_argument("--freeze-until", metavar="MODULE", help="keep top-level modules up to MODULE frozen (layer2)")
    p.add_argument("--accum-steps", type=int, default=d.accum_steps, help="micro-batches per optimizer step")
    p.add_argument("--seed", type=int, default=d.seed, help="every epoch reseeds from (seed, epoch, rank)")
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (they are drawn only on a terminal)")
    _add_runtime_options(p)
    add_model_options(p)

    p = add_command(subparsers, "evaluate", _evaluate)
    add_trained_model_options(p, data_help="ImageFolder root (e.g. DIR/val)")
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="evaluate even if the folder's classes differ from the weights' (labels are folder indices)",
    )
    _add_runtime_options(p)
    add_model_options(p)


def _num_classes(value: str, data: str) -> int:
    from .data import count_classes

    if value == "auto":
        return count_classes(data)
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"--num-classes must be 'auto' or an integer, got {value!r}") from None


def _local_copy_of_tag(model: str, pretrained: Any, path: str) -> tuple[str, Any]:
    """``--pretrained TAG --pretrained-path FILE``: the tag (checked against the manifest) and the file as a
    resolved source (its sha256 is recorded as the run's base weights)."""
    from ..hub.manifest import load_manifest, split_name
    from ..resolve import HF_HUB_PREFIX, arch_for, is_path, resolve

    if pretrained is False:
        raise ValueError(
            "--pretrained-path FILE stands in for the weights --pretrained names: not with --pretrained none"
        )
    if (not isinstance(pretrained, str) and pretrained is not True) or (
        isinstance(pretrained, str) and (is_path(pretrained) or pretrained.startswith(HF_HUB_PREFIX))
    ):
        raise ValueError(
            f"--pretrained {pretrained} already names a file; --pretrained-path goes with a weights tag "
            "(e.g. --pretrained backbone)"
        )
    arch, tag = split_name(model)
    arch, manifest = arch_for(arch), load_manifest()
    tag = tag or (pretrained if isinstance(pretrained, str) else manifest.default_tag(arch))
    manifest.get(arch, tag)  # an unknown tag is an error naming the known ones
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--pretrained-path {path}: no such file")
    return tag, resolve(path, arch)


def _finetune(args: argparse.Namespace) -> int:
    """Fine-tune a model on an ImageFolder (DIR/train/CLASS/*, DIR/val/CLASS/*).

    Fine-tune on DIR/train, validate on DIR/val each epoch (one line per epoch); RUN_DIR gets
    checkpoints (safetensors + state.json), best.safetensors, metrics.csv and curves.png. Ctrl-C stops
    after a clean checkpoint (exit 130; continue with --resume). Run under torchrun for several
    processes.
    """
    import signal
    import sys
    from pathlib import Path

    import torch

    from ..cli import progress_enabled
    from ..registry import create_model
    from ..resolve import resolve_pretrained
    from .data import image_folder_datasets
    from .load import parse_pretrained
    from .trainer import TrainConfig, Trainer, format_epoch

    quiet = args.verbosity < 0
    # every TrainConfig field is the option of the same name
    config = call_with_options(TrainConfig, args, num_workers=args.workers, progress=progress_enabled(args))
    kwargs = model_kwargs_from(args)
    num_classes = _num_classes(args.num_classes, args.data)
    pretrained = parse_pretrained(args.pretrained)
    if args.pretrained_path is not None:
        # timm's --pretrained-path: the named tag's weights (its loading rules, preprocessing) from a local file
        pretrained, source = _local_copy_of_tag(args.model, pretrained, args.pretrained_path)
        kwargs["pretrained_cfg_overlay"] = dict(file=str(args.pretrained_path))
    else:
        _, source = resolve_pretrained(args.model, pretrained)  # once: built from it, and recorded in the run
    torch.manual_seed(args.seed)  # every rank builds the same new head
    # a new task: starting weights with another head get a new one (logged)
    weights = pretrained if args.pretrained_path is not None else source or False
    model = create_model(args.model, pretrained=weights, num_classes=num_classes, new_head=True, **kwargs)
    kwargs.pop("pretrained_cfg_overlay", None)  # the file is recorded as the run's base weights
    # The transforms follow the loaded weights' preprocessing, so the data sets come after the model.
    train, val, classes = image_folder_datasets(
        args.data,
        model,
        args.img_size,
        config.augment,
        kwargs.get("in_chans", 3),
        hflip=config.hflip,
        pretrained=pretrained is not False,
        mean=args.mean,
        std=args.std,
        strict=args.strict,
    )
    if len(classes) != num_classes:
        raise ValueError(f"{args.data}/train has {len(classes)} class folders but --num-classes is {num_classes}")
    base = source.provenance() if source is not None else None
    trainer = Trainer(
        model,
        train,
        val,
        out_dir=args.out,
        num_classes=num_classes,
        config=config,
        model_kwargs=kwargs,
        base_weights=base,
    )
    trainer.model_info["dataset"] = Path(args.data).resolve().name  # recorded with every checkpoint
    out = sys.stderr if args.json else sys.stdout  # --json: stdout holds only the summary

    def report(tr: Trainer, row: dict) -> None:
        if tr.dist.is_main and not quiet:
            print(format_epoch(row, config.epochs, tr.best), file=out, flush=True)

    def terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        history = trainer.fit(resume=args.resume, on_epoch_end=report)
    except KeyboardInterrupt:
        if trainer.dist.is_main:
            print(f"interrupted after epoch {trainer.epochs_done}; continue with --resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        trainer.close()
    if trainer.dist.is_main:
        last, best = history[-1], trainer.best
        if args.json:
            summary = dict(
                run_dir=str(args.out),
                model=args.model,
                epochs=last["epoch"],
                last=last,
                best=best,
                preprocessing=trainer.model_info["preprocessing"],
                augmentation=trainer.augmentation,
                threads=trainer.threads,
                workers=trainer.num_workers,
            )
            print(json.dumps(summary, indent=2))
        elif not quiet:
            print(
                f"done: val top-1 {last['val_top1']:.2f}%  top-5 {last['val_top5']:.2f}% after epoch {last['epoch']}"
                f"; best {best.get('val_top1', float('nan')):.2f}% at epoch {best.get('epoch')}"
            )
            print(f"run directory: {args.out} (best.safetensors, metrics.csv, curves.png, state.json)")
    return 0


def _expected_classes(model: Any, info: dict[str, Any]) -> list[str] | None:
    """The class names the weights were trained on, when they are known."""
    if info.get("classes"):
        return list(info["classes"])
    names = getattr(model, "pretrained_cfg", {}).get("label_names")
    return list(names) if names and len(names) == getattr(model, "num_classes", None) else None


def _check_classes(model: Any, info: dict[str, Any], folder: str, classes: list[str]) -> None:
    expected = _expected_classes(model, info)
    if expected is not None and expected != classes:
        missing = sorted(set(expected) - set(classes))[:5]
        extra = sorted(set(classes) - set(expected))[:5]
        raise ValueError(
            f"{folder}: its {len(classes)} class folders are not the {len(expected)} classes the weights were "
            f"trained on (e.g. not in the folder: {missing}, not in the weights: {extra}"
            f"{'; same names, other order' if not missing and not extra else ''}); "
            "pass --allow-mismatch to evaluate anyway"
        )
    outputs = getattr(model, "num_classes", None)
    if expected is None and outputs != len(classes):
        raise ValueError(
            f"{folder}: {len(classes)} class folders, but the weights have {outputs} outputs: top-1 would "
            "compare unrelated labels; pass --allow-mismatch to evaluate anyway"
        )


def _evaluate(args: argparse.Namespace) -> int:
    """Top-1 / top-5 accuracy of weights on an ImageFolder.

    Evaluate a model on DIR/CLASS/* with its evaluation transform. The class folders must be the classes
    the weights were trained on (names, or at least their number).
    """
    import torch

    from ..cli import progress_enabled
    from . import distributed
    from .data import eval_loader, image_folder, model_eval_transform
    from .load import load_model
    from .trainer import amp_dtype, evaluate

    dist_info = distributed.setup(args.device)
    try:
        model, info = load_model(args.model, args.weights, **model_kwargs_from(args))
        threads, workers = distributed.cpu_plan(dist_info.device, args.threads, args.workers)
        torch.set_num_threads(threads)
        transform = model_eval_transform(model, args.img_size, getattr(model, "in_chans", 3))
        dataset = image_folder(args.data, transform, strict=args.strict)
        if not args.allow_mismatch:
            _check_classes(model, info, args.data, list(dataset.classes))
        loader = eval_loader(dataset, args.batch_size, dist_info, workers)
        model.to(dist_info.device)
        progress = dist_info.is_main and progress_enabled(args)
        metrics = evaluate(model, loader, dist_info.device, amp_dtype(args.amp, dist_info.device), progress=progress)
    finally:
        distributed.teardown(dist_info)
    if not math.isfinite(metrics["loss"]):
        raise RuntimeError(
            f"{info.get('path', args.weights)}: the loss on {args.data} is {metrics['loss']} (the model's outputs are "
            "not finite); these weights cannot be evaluated"
        )
    if dist_info.is_main:
        if args.json:
            print(json.dumps(dict(metrics, weights=str(info.get("path", args.weights)), data=str(args.data))))
        else:
            print(
                f"top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  loss {metrics['loss']:.4f}  "
                f"({metrics['samples']} images)"
            )
    return 0
