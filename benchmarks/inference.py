"""Inference benchmark: senet_zoo (unfused and ``optimize_for_inference``) vs timm's legacy SENet.

Both models load the same random weights from a temporary ``.safetensors`` file (no downloads) and run
in eval mode under ``torch.inference_mode`` at 224×224. Per batch size: warm-up calls, then rounds in
which every variant runs once, in an order that rotates each round, for at least ``--repeats`` rounds
and ``--min-time`` seconds. Latency is the median over the rounds, throughput images/s from it. The
speedup is the median over the rounds of timm's time / the variant's time in that round ("paired": a
burst of load from other processes then hits both sides of a ratio alike, the robust figure on a busy
machine); the ratio of the median latencies is shown beside it. ``max|Δ|`` is the largest absolute logit
difference to timm (on CUDA computed with TF32 off).

    python benchmarks/inference.py                      # se_resnet50, batch 1 and 16, CPU
    python benchmarks/inference.py --models se_resnet50,senet154 --ablation
    python benchmarks/inference.py --device cuda        # GPU check

``--ablation`` adds the fast path without channels_last and without the oneDNN kernels, to show what
each contributes. Last line (for the first model): ``speedup_b1=<x> speedup_b16=<x> max_abs_diff=<x>``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _weights import write_random_weights

Runner = Callable[[torch.Tensor], torch.Tensor]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Runner, x: torch.Tensor, inner: int) -> float:
    """Seconds per call, averaged over ``inner`` back-to-back calls (device synchronised around them)."""
    _sync(x.device)
    start = time.perf_counter()
    for _ in range(inner):
        fn(x)
    _sync(x.device)
    return (time.perf_counter() - start) / inner


def _max_abs_diff(variants: dict[str, Runner], x: torch.Tensor) -> tuple[dict[str, float], float]:
    """Largest |logit - timm logit| per variant, in full float32 (TF32 off on CUDA); max |timm logit|."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        ref = variants["timm"](x).float()
        diffs = {name: float((fn(x).float() - ref).abs().max()) for name, fn in variants.items()}
        return diffs, float(ref.abs().max())
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def build_variants(
    model_name: str, timm_name: str, path: Path, device: torch.device, ablation: bool, compile: bool
) -> dict[str, Runner]:
    import timm

    import senet_zoo
    from senet_zoo.inference import optimize_for_inference

    reference = timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    ours = senet_zoo.create_model(model_name, pretrained=str(path))
    reference, ours = reference.eval().to(device), ours.eval().to(device)
    variants: dict[str, Runner] = {"timm": reference, "senet_zoo": ours, "senet_zoo-fast": optimize_for_inference(ours)}
    if ablation:
        variants["fast: fold only"] = optimize_for_inference(ours, channels_last=False, onednn=False)
        variants["fast: +channels_last"] = optimize_for_inference(ours, channels_last=True, onednn=False)
    if compile:
        variants["fast: +compile"] = optimize_for_inference(ours, compile=True)
    return variants


def bench_batch(
    variants: dict[str, Runner],
    batch: int,
    size: int,
    device: torch.device,
    warmup: int,
    repeats: int,
    min_time: float,
    inner: int,
) -> dict[str, dict[str, float]]:
    """Median latency per variant, throughput, speedups vs timm and max |Δ| of the logits."""
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(batch)).to(device)
    names = list(variants)
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch.inference_mode():
        diffs, scale = _max_abs_diff(variants, x)
        for _ in range(warmup):
            for n in names:
                variants[n](x)
        start, r = time.perf_counter(), 0
        while r < repeats or time.perf_counter() - start < min_time:
            for n in names[r % len(names) :] + names[: r % len(names)]:
                times[n].append(_timed(variants[n], x, inner))
            r += 1
    out = {}
    for n in names:
        lat = statistics.median(times[n])
        out[n] = dict(
            latency_ms=lat * 1e3,
            min_ms=min(times[n]) * 1e3,
            images_s=batch / lat,
            rounds=len(times[n]),
            speedup=statistics.median(t / s for t, s in zip(times["timm"], times[n])),
            of_medians=statistics.median(times["timm"]) / lat,
            max_abs_diff=diffs[n],
            logit_scale=scale,
        )
    return out


def _print_table(model_name: str, batch: int, rows: dict[str, dict[str, float]]) -> None:
    print(
        f"\n{model_name}  batch {batch}  ({rows['timm']['rounds']} rounds; "
        f"max |logit| {rows['timm']['logit_scale']:.2f})"
    )
    print(
        f"{'variant':<22} {'median ms':>10} {'min ms':>9} {'images/s':>9} {'speedup':>8} {'of medians':>11} "
        f"{'max|Δ|':>9}"
    )
    for n, r in rows.items():
        print(
            f"{n:<22} {r['latency_ms']:>10.1f} {r['min_ms']:>9.1f} {r['images_s']:>9.2f} {r['speedup']:>7.2f}x "
            f"{r['of_medians']:>10.2f}x {r['max_abs_diff']:>9.2e}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="se_resnet50", help="comma-separated senet_zoo names")
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=None, help="least timed rounds (default: 7 CPU, 30 CUDA)")
    parser.add_argument("--min-time", type=float, default=20.0, help="least seconds of timed rounds per batch")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up rounds (default: 2 CPU, 10 CUDA)")
    parser.add_argument("--inner", type=int, default=None, help="calls per timing (default: 1 CPU, 10 CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--ablation", action="store_true", help="also time the fast path's steps separately")
    parser.add_argument("--compile", action="store_true", help="also time the fast path under torch.compile")
    args = parser.parse_args()

    import senet_zoo

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    gpu = device.type == "cuda"
    repeats = args.repeats or (30 if gpu else 7)
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 2)
    inner = args.inner or (10 if gpu else 1)
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    models = args.models.split(",")
    where = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"torch {torch.__version__}, {where}; {args.size}x{args.size}; warm-up {warmup}; "
        f"at least {repeats} alternating rounds and {args.min_time:g} s per batch size, {inner} call(s) each"
    )

    key: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(models):
            timm_name = senet_zoo.model_info(name)["timm_legacy"]
            if not timm_name:
                parser.error(f"{name} has no timm legacy counterpart")
            path = write_random_weights(name, Path(tmp))
            variants = build_variants(name, timm_name, path, device, args.ablation, args.compile)
            prefix = "" if i == 0 else f"{name}_"
            diffs = []
            for b in batches:
                rows = bench_batch(variants, b, args.size, device, warmup, repeats, args.min_time, inner)
                _print_table(name, b, rows)
                key[f"{prefix}speedup_b{b}"] = rows["senet_zoo-fast"]["speedup"]
                diffs.append(rows["senet_zoo-fast"]["max_abs_diff"])
            key[f"{prefix}max_abs_diff"] = max(diffs)
            del variants
    print()
    print(" ".join(f"{k}={v:.3g}" if "diff" in k else f"{k}={v:.3f}" for k, v in key.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
