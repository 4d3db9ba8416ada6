"""Inference benchmark: senet_zoo (unfused and ``optimize_for_inference``) vs timm's legacy SENet and,
with ``--peers``, ONNX Runtime.

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
    python benchmarks/inference.py --peers              # + ONNX Runtime on senet_zoo's and timm's export
    python benchmarks/inference.py --peers --models se_resnet50,senet154,se_bn_inception

``--ablation`` adds the fast path without channels_last and without the oneDNN kernels, to show what
each contributes. ``--peers`` adds ONNX Runtime (all graph optimisations, as many threads as torch)
on ``senet_zoo.export_onnx``'s file and on timm's model exported with ``torch.onnx.export``;
``zoo_over_ort`` is the median over the rounds of the faster ONNX Runtime variant's time / the fast
path's time in that round (> 1: senet_zoo is faster). A model timm has no legacy counterpart for
(se_bn_inception) is compared with the unfused senet_zoo model instead. Last line (keys of later
models prefixed with their name): ``speedup_b1=<x> speedup_b16=<x> max_abs_diff=<x> max_rel_diff=<x>``
and with ``--peers`` ``zoo_over_ort_b1=<x> zoo_over_ort_b16=<x>``.
"""

from __future__ import annotations

import argparse
import math
import os
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


REFERENCE = "reference"  # timm's legacy model, or the unfused senet_zoo model where timm has none
FAST = "senet_zoo-fast"
ORT_PREFIX = "ort: "


def _max_abs_diff(variants: dict[str, Runner], x: torch.Tensor) -> tuple[dict[str, float], float]:
    """Largest |logit - reference logit| per variant, in full float32 (TF32 off on CUDA); max |reference logit|."""
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        ref = variants[REFERENCE](x).float()
        diffs = {name: float((fn(x).float().to(ref.device) - ref).abs().max()) for name, fn in variants.items()}
        return diffs, float(ref.abs().max())
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def _ort_runner(path: Path, device: torch.device) -> Runner | None:
    """An ONNX Runtime session on ``path`` as a tensor → tensor callable (all graph optimisations, torch's
    thread count); on CUDA only with onnxruntime-gpu, host↔device copies included. ``None``: not available."""
    import onnxruntime as ort

    provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        print(f"ONNX Runtime has no {provider}: skipping the ONNX Runtime peers")
        return None
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), opts, providers=[provider])
    name = sess.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, {name: x.detach().cpu().numpy()})[0]).to(x.device)

    return run


def _timm_onnx(model: torch.nn.Module, path: Path, size: int) -> Path:
    """timm's model through ``torch.onnx.export`` (TorchScript exporter, dynamic batch), as a user would."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.cpu(),
            (torch.randn(2, 3, size, size),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    return path


def build_variants(
    model_name: str,
    timm_name: str | None,
    path: Path,
    device: torch.device,
    ablation: bool,
    compile: bool,
    peers: bool,
    size: int,
) -> dict[str, Runner]:
    import timm

    import senet_zoo
    from senet_zoo.inference import optimize_for_inference

    ours = senet_zoo.create_model(model_name, pretrained=str(path)).eval()
    variants: dict[str, Runner] = {}
    reference = None
    if timm_name:
        reference = timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
        variants[REFERENCE] = reference.to(device)
        variants["senet_zoo"] = ours.to(device)
    else:
        variants[REFERENCE] = ours.to(device)
    variants[FAST] = optimize_for_inference(ours)
    if ablation:
        variants["fast: fold only"] = optimize_for_inference(ours, channels_last=False, onednn=False)
        variants["fast: +channels_last"] = optimize_for_inference(ours, channels_last=True, onednn=False)
    if compile:
        variants["fast: +compile"] = optimize_for_inference(ours, compile=True)
    if peers:
        from senet_zoo.export import export_onnx

        report = export_onnx(ours.cpu(), path.with_suffix(".onnx"), input_size=(3, size, size))
        print(f"senet_zoo export: {report.summary()}")
        runner = _ort_runner(report.path, device)
        if runner is not None:
            variants[ORT_PREFIX + "senet_zoo export"] = runner
            if reference is not None:
                timm_path = _timm_onnx(reference, path.with_name(f"{timm_name}.onnx"), size)
                variants[ORT_PREFIX + "timm export"] = _ort_runner(timm_path, device)  # type: ignore[assignment]
                reference.to(device)
        ours.to(device)
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
    """Median latency per variant, throughput, speedups vs the reference and vs ONNX Runtime, max |Δ|."""
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
    ort_names = [n for n in names if n.startswith(ORT_PREFIX)]
    best_ort = [min(times[n][r] for n in ort_names) for r in range(len(times[FAST]))] if ort_names else []
    out = {}
    for n in names:
        lat = statistics.median(times[n])
        out[n] = dict(
            latency_ms=lat * 1e3,
            min_ms=min(times[n]) * 1e3,
            images_s=batch / lat,
            rounds=len(times[n]),
            speedup=statistics.median(t / s for t, s in zip(times[REFERENCE], times[n])),
            of_medians=statistics.median(times[REFERENCE]) / lat,
            ort_over=statistics.median(o / s for o, s in zip(best_ort, times[n])) if best_ort else float("nan"),
            max_abs_diff=diffs[n],
            logit_scale=scale,
        )
    return out


def _ratio(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}x"


def _print_table(model_name: str, reference: str, batch: int, rows: dict[str, dict[str, float]]) -> None:
    ref = rows[REFERENCE]
    print(
        f"\n{model_name}  batch {batch}  ({ref['rounds']} rounds; reference: {reference}; "
        f"max |logit| {ref['logit_scale']:.2f})"
    )
    print(
        f"{'variant':<24} {'median ms':>10} {'min ms':>9} {'images/s':>9} {'speedup':>8} {'of medians':>11} "
        f"{'ORT/this':>9} {'max|Δ|':>9}"
    )
    for n, r in rows.items():
        print(
            f"{n:<24} {r['latency_ms']:>10.1f} {r['min_ms']:>9.1f} {r['images_s']:>9.2f} {r['speedup']:>7.2f}x "
            f"{r['of_medians']:>10.2f}x {_ratio(r['ort_over']):>9} {r['max_abs_diff']:>9.2e}"
        )


_OPENMP_ENV = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS")


def _reexec_with_openmp_env(wait_policy: str | None, spincount: int | None) -> None:
    """OpenMP reads its wait policy once, when the runtime loads (at ``import torch``): to change it the
    script runs itself again with the variables set (nothing happens if they already are)."""
    want = {}
    if wait_policy:
        want["OMP_WAIT_POLICY"] = wait_policy.upper()
    if spincount is not None:
        want["GOMP_SPINCOUNT"] = str(spincount)
    if all(os.environ.get(k) == v for k, v in want.items()):
        return
    os.environ.update(want)
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, *sys.argv])


def _openmp_env() -> str:
    backend = "OpenMP" if "OpenMP" in torch.__config__.parallel_info() else "native"
    return f"{backend}: " + " ".join(f"{k}={os.environ.get(k, '-')}" for k in _OPENMP_ENV)


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
    parser.add_argument("--peers", action="store_true", help="also time ONNX Runtime on senet_zoo's and timm's export")
    parser.add_argument(
        "--omp-wait-policy",
        choices=("active", "passive"),
        help="re-run with OMP_WAIT_POLICY set (OpenMP reads it when torch is imported; default: as inherited)",
    )
    parser.add_argument("--gomp-spincount", type=int, help="re-run with GOMP_SPINCOUNT set (GNU OpenMP spin-waits)")
    args = parser.parse_args()
    _reexec_with_openmp_env(args.omp_wait_policy, args.gomp_spincount)

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
    print(_openmp_env())

    key: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(models):
            timm_name = senet_zoo.model_info(name)["timm_legacy"] or None
            path = write_random_weights(name, Path(tmp))
            t0 = time.perf_counter()
            variants = build_variants(name, timm_name, path, device, args.ablation, args.compile, args.peers, args.size)
            print(f"{name}: variants built in {time.perf_counter() - t0:.1f} s")
            prefix = "" if i == 0 else f"{name}_"
            diffs, rel, ort_over = [], [], {}
            for b in batches:
                rows = bench_batch(variants, b, args.size, device, warmup, repeats, args.min_time, inner)
                _print_table(name, timm_name or "senet_zoo unfused (timm has no legacy model)", b, rows)
                key[f"{prefix}speedup_b{b}"] = rows[FAST]["speedup"]
                diffs.append(rows[FAST]["max_abs_diff"])
                rel.append(rows[FAST]["max_abs_diff"] / rows[REFERENCE]["logit_scale"])
                ort_over[f"{prefix}zoo_over_ort_b{b}"] = rows[FAST]["ort_over"]
            key[f"{prefix}max_abs_diff"] = max(diffs)
            key[f"{prefix}max_rel_diff"] = max(rel)
            if args.peers:
                key.update(ort_over)
            del variants
    print()
    print(" ".join(f"{k}={v:.3g}" if "diff" in k else f"{k}={v:.3f}" for k, v in key.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
