"""``senet-zoo excitations``: per-class SE gate statistics of a model over an ImageFolder, with plots."""

from __future__ import annotations

import argparse

from .._cli_helpers import add_command

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..finetune.commands import add_model_options, add_trained_model_options

    p = add_command(subparsers, "excitations", _excitations)
    add_trained_model_options(p, data_help="ImageFolder root (DIR/CLASS/*)")
    p.add_argument("--out", required=True, metavar="OUT", help="output directory")
    p.add_argument(
        "--blocks",
        nargs="+",
        metavar="PATTERN",
        help="blocks to plot, shell patterns over names like layer4.0 (default: last block of each "
        "stage and every block of the last stage)",
    )
    p.add_argument("--classes", nargs="+", help="classes drawn as lines (default: every class)")
    p.add_argument("--max-images", type=int, help="analyse a random subset (seed 0) of this many images")
    p.add_argument("--tol", type=float, default=0.05, help="saturation threshold: gate >= 1 - tol, <= tol")
    p.add_argument("--dpi", type=int, default=80, help="resolution of the PNG files")
    p.add_argument("--img-size", type=int, help="input resolution (default: the model's pretrained config)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, help="data-loading processes (default: as for finetune)")
    p.add_argument("--threads", type=int, help="torch threads (default: as for finetune)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--json", action="store_true", help="print stats.json's summary as JSON instead of the table")
    add_model_options(p)


def _excitations(args: argparse.Namespace) -> int:
    """SE gate statistics per block and class over an ImageFolder (paper §7).

    Record every SE block's excitations over DIR/CLASS/* and write to OUT: stats.json (class spread,
    saturation, mean gate per block), class_means.safetensors (block -> classes x channels),
    excitations.png and excitations_<block>.png (mean activation per channel, one line per class),
    depth.png (spread and saturation against depth).
    """
    import json
    from pathlib import Path

    import torch
    from safetensors.torch import save_file
    from torch.utils.data import DataLoader, Dataset, Subset

    from ..finetune.checkpoint import atomic_path, write_json
    from ..finetune.commands import model_kwargs_from
    from ..finetune.data import image_folder, model_eval_transform
    from ..finetune.distributed import cpu_plan, pick_device
    from ..finetune.load import load_model
    from .excitations import collect_excitations, default_plot_blocks, se_blocks, select_blocks
    from .plots import plot_blocks, plot_depth

    device = pick_device(args.device)
    threads, workers = cpu_plan(device, args.threads, args.workers)
    torch.set_num_threads(threads)
    model, _ = load_model(args.model, args.weights, **model_kwargs_from(args))
    plot_list = select_blocks(list(se_blocks(model)), args.blocks) if args.blocks else None
    folder = image_folder(args.data, model_eval_transform(model, args.img_size, getattr(model, "in_chans", 3)))
    classes = folder.classes
    dataset: Dataset = folder
    if args.max_images is not None and args.max_images < len(folder):  # the folder is sorted by class
        subset = torch.randperm(len(folder), generator=torch.Generator().manual_seed(0))[: args.max_images]
        dataset = Subset(folder, sorted(subset.tolist()))
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=workers, shuffle=False)
    progress = args.verbosity >= 0 and not args.json
    stats = collect_excitations(model, loader, classes, device=device, tol=args.tol, progress=progress)
    plot_list = plot_list or default_plot_blocks(stats.blocks)
    out = Path(args.out)
    summary = stats.summary()
    write_json(out / "stats.json", summary)
    with atomic_path(out / "class_means.safetensors") as tmp:
        save_file(
            {b: torch.from_numpy(stats.class_means(b)).float() for b in stats.blocks},
            str(tmp),
            metadata={"classes": json.dumps(stats.classes)},
        )
    plot_blocks(stats, plot_list, out / "excitations.png", args.classes, dpi=args.dpi)
    for block in plot_list:
        plot_blocks(stats, [block], out / f"excitations_{block}.png", args.classes, dpi=args.dpi)
    plot_depth(stats, out / "depth.png", dpi=args.dpi)
    if args.json:
        print(json.dumps(dict(summary, out=str(out)), indent=2))
        return 0
    print(f"{'block':<16}{'channels':>9}{'mean gate':>11}{'class spread':>14}{'≈1':>8}{'≈0':>8}")
    blocks: dict[str, dict[str, float]] = summary["blocks"]  # type: ignore[assignment]
    for block, row in blocks.items():
        print(
            f"{block:<16}{row['channels']:>9}{row['mean_gate']:>11.4f}{row['class_spread']:>14.4f}"
            f"{row['near_one']:>8.1%}{row['near_zero']:>8.1%}"
        )
    print(f"{int(stats.counts.sum())} images, {len(stats.classes)} classes; plots and stats.json in {out}")
    return 0
