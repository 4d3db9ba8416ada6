"""Inference benchmark: senet_zoo (unfused and ``optimize_for_inference``) vs timm's legacy SENet and,
with ``--peers``, ONNX Runtime.

Every variant runs in its own worker process, as a user runs it: process-wide settings one variant
makes (``optimize_for_inference``'s glibc memory reuse, OpenMP and ONNX Runtime thread pools that
spin after a call) cannot speed up or slow down another. All load the same random weights from a
temporary ``.safetensors`` file (no downloads) and run in eval mode under ``torch.inference_mode`` at
224×224 on the same deterministic images. Per batch size: warm-up rounds, then rounds in which the
driver asks each worker in turn (an order that rotates each round) for ``--inner`` timed calls after
``--settle`` untimed ones (a worker's threads have been idle while the others ran), for at least
``--repeats`` rounds and ``--min-time`` seconds. Latency is the median over the rounds (of each
round's median call), throughput images/s from it. The speedup is the median over the rounds of the
reference's time / the variant's time in that round ("paired": a burst of load from other processes
then hits both sides of a ratio alike, the robust figure on a busy machine); the ratio of the median
latencies is shown beside it. ``max|Δ|`` is the largest absolute logit difference to the reference
(on CUDA computed with TF32 off).

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
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from _weights import write_random_weights

Runner = Callable[[torch.Tensor], torch.Tensor]

REFERENCE = "reference"  # timm's legacy model, or the unfused senet_zoo model where timm has none
FAST = "senet_zoo-fast"
ORT_PREFIX = "ort: "
ORT_ZOO = ORT_PREFIX + "senet_zoo export"
ORT_TIMM = ORT_PREFIX + "timm export"
ABLATION = {"fast: fold only": dict(channels_last=False, onednn=False), "fast: +channels_last": dict(onednn=False)}
COMPILED = "fast: +compile"


# --------------------------------------------------------------------------------------------- worker
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(batch: int, size: int, device: torch.device) -> torch.Tensor:
    """The same images in every worker (seeded by the batch size)."""
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(batch)).to(device)


def _ort_runner(path: Path, device: torch.device) -> Runner:
    """An ONNX Runtime session on ``path`` as a tensor → tensor callable (all graph optimisations, torch's
    thread count); on CUDA only with onnxruntime-gpu, host↔device copies included."""
    import onnxruntime as ort

    provider = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    if provider not in ort.get_available_providers():
        raise RuntimeError(f"ONNX Runtime has no {provider}")
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


def build_runner(variant: str, cfg: dict[str, Any]) -> tuple[Runner, str]:
    """The callable a worker times for ``variant``, and a line to report about it."""
    import timm

    import senet_zoo
    from senet_zoo.inference import optimize_for_inference

    device, weights, size = torch.device(cfg["device"]), Path(cfg["weights"]), cfg["size"]
    ours = senet_zoo.create_model(cfg["model"], pretrained=str(weights)).eval()
    timm_name = cfg["timm_name"]

    def legacy() -> torch.nn.Module:
        overlay = dict(file=str(weights))
        return timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay=overlay).eval()

    if variant == REFERENCE:
        return (legacy() if timm_name else ours).to(device), timm_name or "senet_zoo unfused"
    if variant == "senet_zoo":
        return ours.to(device), ""
    if variant == FAST:
        return optimize_for_inference(ours.to(device)), ""
    if variant in ABLATION:
        return optimize_for_inference(ours.to(device), **ABLATION[variant]), ""  # type: ignore[arg-type]
    if variant == COMPILED:
        return optimize_for_inference(ours.to(device), compile=True), ""
    if variant == ORT_ZOO:
        from senet_zoo.export import export_onnx

        report = export_onnx(ours, weights.with_name(f"{cfg['model']}.onnx"), input_size=(3, size, size))
        return _ort_runner(report.path, device), report.summary()
    if variant == ORT_TIMM:
        path = _timm_onnx(legacy(), weights.with_name(f"{timm_name}.onnx"), size)
        return _ort_runner(path, device), f"exported to {path.name}"
    raise ValueError(f"unknown variant {variant!r}")


def worker(cfg: dict[str, Any]) -> int:
    """Serve one variant: JSON commands on stdin, JSON replies on the original stdout (library output
    goes to stderr)."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    device = torch.device(cfg["device"])
    start = time.perf_counter()
    try:
        run, info = build_runner(cfg["variant"], cfg)
    except Exception as err:  # reported to the driver, which leaves the variant out
        replies.write(json.dumps(dict(error=f"{type(err).__name__}: {err}")) + "\n")
        return 1
    replies.write(json.dumps(dict(ready=time.perf_counter() - start, info=info)) + "\n")
    with torch.inference_mode():
        for line in sys.stdin:
            cmd = json.loads(line)
            x = _images(cmd["batch"], cfg["size"], device)
            if cmd["op"] == "logits":
                flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
                torch.save(run(x).float().cpu(), cmd["path"])
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
                replies.write("{}\n")
                continue
            times = []
            for i in range(cmd["settle"] + cmd["inner"]):
                _sync(device)
                t0 = time.perf_counter()
                run(x)
                _sync(device)
                if i >= cmd["settle"]:
                    times.append(time.perf_counter() - t0)
            replies.write(json.dumps(dict(times=times)) + "\n")
    return 0


# --------------------------------------------------------------------------------------------- driver
class Worker:
    """A worker process serving one variant."""

    def __init__(self, variant: str, cfg: dict[str, Any], env: dict[str, str], log: IO[str]) -> None:
        self.variant = variant
        arg = json.dumps(dict(cfg, variant=variant))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", arg],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if cmd:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.variant!r} exited (status {self.proc.wait()}); see its log")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench_batch(
    workers: dict[str, Worker],
    batch: int,
    scratch: Path,
    warmup: int,
    repeats: int,
    min_time: float,
    inner: int,
    settle: int,
) -> dict[str, dict[str, float]]:
    """Median latency per variant, throughput, speedups vs the reference and vs ONNX Runtime, max |Δ|."""
    names = list(workers)
    logits = {}
    for n in names:
        path = scratch / f"logits_{names.index(n)}_b{batch}.pt"
        workers[n].ask(op="logits", batch=batch, path=str(path))
        logits[n] = torch.load(path, weights_only=True)
    ref = logits[REFERENCE]
    diffs = {n: float((v - ref).abs().max()) for n, v in logits.items()}
    scale = float(ref.abs().max())

    def one_round(r: int) -> dict[str, float]:
        out = {}
        for n in names[r % len(names) :] + names[: r % len(names)]:
            out[n] = statistics.median(workers[n].ask(op="time", batch=batch, inner=inner, settle=settle)["times"])
        return out

    for r in range(warmup):
        one_round(r)
    times: dict[str, list[float]] = {n: [] for n in names}
    start, r = time.perf_counter(), 0
    while r < repeats or time.perf_counter() - start < min_time:
        for n, t in one_round(r).items():
            times[n].append(t)
        r += 1
    ort_names = [n for n in names if n.startswith(ORT_PREFIX)]
    best_ort = [min(times[n][i] for n in ort_names) for i in range(r)] if ort_names else []
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


def _worker_env(wait_policy: str | None, spincount: int | None) -> dict[str, str]:
    """The workers' environment: OpenMP reads its wait policy when it loads (at ``import torch``)."""
    env = dict(os.environ)
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy.upper()
    if spincount is not None:
        env["GOMP_SPINCOUNT"] = str(spincount)
    here = str(Path(__file__).resolve().parent)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, root, env.get("PYTHONPATH", "")) if p)
    return env


def _openmp_env(env: dict[str, str]) -> str:
    backend = "OpenMP" if "OpenMP" in torch.__config__.parallel_info() else "native"
    return f"{backend}: " + " ".join(f"{k}={env.get(k, '-')}" for k in _OPENMP_ENV)


def main() -> int:  # noqa: PLR0915  (the benchmark's whole procedure, top to bottom)
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker(json.loads(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="se_resnet50", help="comma-separated senet_zoo names")
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=None, help="least timed rounds (default: 7 CPU, 30 CUDA)")
    parser.add_argument("--min-time", type=float, default=20.0, help="least seconds of timed rounds per batch")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up rounds (default: 2 CPU, 10 CUDA)")
    parser.add_argument(
        "--inner", type=int, default=None, help="timed calls per round (default: CUDA 10; CPU 3 up to batch 4, else 1)"
    )
    parser.add_argument(
        "--settle",
        type=int,
        default=None,
        help="untimed calls per round before the timed ones (default: 1; CPU above batch 4: 0)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--ablation", action="store_true", help="also time the fast path's steps separately")
    parser.add_argument("--compile", action="store_true", help="also time the fast path under torch.compile")
    parser.add_argument("--peers", action="store_true", help="also time ONNX Runtime on senet_zoo's and timm's export")
    parser.add_argument(
        "--omp-wait-policy",
        choices=("active", "passive"),
        help="workers run with OMP_WAIT_POLICY set (OpenMP reads it when torch is imported; default: as inherited)",
    )
    parser.add_argument("--gomp-spincount", type=int, help="workers run with GOMP_SPINCOUNT set (GNU OpenMP spins)")
    args = parser.parse_args()

    import senet_zoo

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    gpu = device.type == "cuda"
    repeats = args.repeats or (30 if gpu else 7)
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 2)

    def calls(batch: int) -> tuple[int, int]:
        """(untimed, timed) calls per round: a large CPU batch takes long enough to drown a wake-up."""
        small = gpu or batch <= 4
        settle = args.settle if args.settle is not None else (1 if small else 0)
        return settle, args.inner or (10 if gpu else 3 if small else 1)

    threads = args.threads or torch.get_num_threads()
    batches = [int(b) for b in args.batch_sizes.split(",")]
    models = args.models.split(",")
    env = _worker_env(args.omp_wait_policy, args.gomp_spincount)
    where = torch.cuda.get_device_name(device) if gpu else f"CPU, {threads} threads"
    print(
        f"torch {torch.__version__}, {where}; {args.size}x{args.size}; one process per variant; warm-up {warmup}; "
        f"at least {repeats} alternating rounds and {args.min_time:g} s per batch size; per round and variant "
        + ", ".join(f"batch {b}: {calls(b)[0]} untimed + {calls(b)[1]} timed call(s)" for b in batches)
    )
    print(_openmp_env(env))

    key: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for i, name in enumerate(models):
            timm_name = senet_zoo.model_info(name)["timm_legacy"] or None
            weights = write_random_weights(name, scratch)
            cfg = dict(model=name, timm_name=timm_name, weights=str(weights), device=args.device)
            cfg.update(size=args.size, threads=threads)
            names = [REFERENCE] + (["senet_zoo"] if timm_name else []) + [FAST]
            names += list(ABLATION) if args.ablation else []
            names += [COMPILED] if args.compile else []
            names += ([ORT_ZOO] + ([ORT_TIMM] if timm_name else [])) if args.peers else []
            t0 = time.perf_counter()
            with open(scratch / f"{name}-workers.log", "w+") as log:
                workers = {n: Worker(n, cfg, env, log) for n in names}
                try:
                    for n in list(workers):
                        ready = workers[n].ask()
                        if "error" in ready:
                            print(f"{n}: left out ({ready['error']})")
                            workers.pop(n).close()
                        elif ready["info"]:
                            print(f"{n}: {ready['info']}")
                    print(f"{name}: {len(workers)} worker processes ready in {time.perf_counter() - t0:.1f} s")
                    prefix = "" if i == 0 else f"{name}_"
                    diffs, rel, ort_over = [], [], {}
                    for b in batches:
                        settle, inner = calls(b)
                        rows = bench_batch(workers, b, scratch, warmup, repeats, args.min_time, inner, settle)
                        _print_table(name, timm_name or "senet_zoo unfused (timm has no legacy model)", b, rows)
                        key[f"{prefix}speedup_b{b}"] = rows[FAST]["speedup"]
                        diffs.append(rows[FAST]["max_abs_diff"])
                        rel.append(rows[FAST]["max_abs_diff"] / rows[REFERENCE]["logit_scale"])
                        ort_over[f"{prefix}zoo_over_ort_b{b}"] = rows[FAST]["ort_over"]
                    key[f"{prefix}max_abs_diff"] = max(diffs)
                    key[f"{prefix}max_rel_diff"] = max(rel)
                    if args.peers:
                        key.update(ort_over)
                except Exception:
                    log.seek(0)
                    sys.stderr.write(log.read()[-4000:])
                    raise
                finally:
                    for w in workers.values():
                        w.close()
    print()
    print(" ".join(f"{k}={v:.3g}" if "diff" in k else f"{k}={v:.3f}" for k, v in key.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
