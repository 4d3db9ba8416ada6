"""Fidelity of the reduced-precision inference paths against the float32 model, measured, not assumed.

For each model, the logits of

* ``bf16``: ``senet_zoo.optimize_for_inference(model, precision="bf16")`` (stem, SE excitation and
  classifier in float32; the rest in bfloat16),
* ``bf16 stem``/``bf16 SE``: the same with the stem convolution / the SE excitation in bfloat16 too
  (the ablation that decided what stays in float32; ``--no-ablation`` leaves them out),
* ``ov default``: OpenVINO's CPU plugin as it comes (``openvino.convert_model`` on the PyTorch model,
  ``compile_model`` with default settings: bfloat16 on CPUs with AVX512-BF16 or AMX),

are compared with the float32 PyTorch model on the same inputs: max relative logit difference
(max |Δ| / max |float32 logit|) and top-1 agreement with the float32 model.

(a) Calibrated random-weight networks (``--models``, default all seven, ``--size`` 224): BatchNorm
    statistics measured on the inputs (cumulative average over two batches in training mode), the
    classifier scaled to logits of standard deviation 4, as a trained network's; inputs are random
    photo-like images (smooth blobs plus noise) normalised with the model's preprocessing.
(b) Networks fine-tuned on scikit-learn's digits (``--digits RUN ...``: run folders written by
    ``senet-zoo finetune --data DIGITS``, ``--digits-data`` the ImageFolder with ``val/``), on the
    360 real validation images, with the run's own preprocessing; the val top-1 of each is printed too.

    python scripts/inference_fidelity.py --models se_resnet50 --images 8
    python scripts/inference_fidelity.py --models none --digits RUN1 RUN2 --digits-data DIGITS

Targets (#22), checked and printed: on every model the bf16 path's max relative difference is at most
twice OpenVINO default's; on the digits val sets its top-1 agreement with float32 is >= 99 %.
Exit status 1 when one is missed. OpenVINO is left out (and the first target with it) if not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import senet_zoo
from senet_zoo.inference import PRECISIONS, InferenceModel, _reduce_precision, optimize_for_inference

MODELS = (
    "se_resnet50",
    "se_resnet101",
    "se_resnet152",
    "se_resnext50_32x4d",
    "se_resnext101_32x4d",
    "senet154",
    "se_bn_inception",
)
Runner = Callable[[torch.Tensor], torch.Tensor]


def calibrate(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """BatchNorm statistics measured on ``x`` (so activations are normalised as in a trained network), then
    the classifier scaled to logits of standard deviation 4; returns the model in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        model.train()
        for chunk in x.split(max(2, len(x) // 2)):
            model(chunk)
        model.eval()
        logits = model(x)
        model.get_classifier().weight.mul_(4.0 / logits.std())
    return model


def _bf16(model: nn.Module, **policy: bool) -> Runner:
    fast = optimize_for_inference(model, precision="bf16")
    if fast.precision != "bf16":
        raise RuntimeError("this CPU has no native bfloat16 (see the warning above)")
    if policy:  # the ablation: rebuild from float32 with the given parts in bfloat16 too
        fp32 = optimize_for_inference(model)
        reduced = _reduce_precision(fp32.model, PRECISIONS["bf16"], onednn=True, **policy)
        assert reduced is not None  # optimize_for_inference ran it in bf16 above
        fast = InferenceModel(
            reduced,
            channels_last=True,
            compiled=False,
            precision="bf16",
        )
    return fast


def _openvino_default(model: nn.Module, example: torch.Tensor) -> Runner | None:
    try:
        import openvino as ov
    except ImportError:
        return None
    compiled = ov.Core().compile_model(ov.convert_model(model, example_input=example[:1]), "CPU")
    print(
        f"  OpenVINO {ov.get_version()} default runs at {compiled.get_property('INFERENCE_PRECISION_HINT').to_string()}"
    )
    request = compiled.create_infer_request()
    return lambda x: torch.from_numpy(request.infer([x.numpy()])[0].copy())


def compare(model: nn.Module, x: torch.Tensor, ablation: bool, batch: int = 8) -> dict[str, dict[str, float]]:
    """Max relative logit difference and top-1 agreement of each variant with the float32 model."""

    def logits(run: Runner) -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([run(c).float() for c in x.split(batch)])

    ref = logits(model)
    variants: dict[str, Runner | None] = {"bf16": _bf16(model)}
    if ablation:
        variants["bf16 stem"] = _bf16(model, float32_stem=False)
        variants["bf16 SE"] = _bf16(model, float32_excitation=False)
    variants["ov default"] = _openvino_default(model, x)
    out = {}
    for name, run in variants.items():
        if run is None:
            continue
        got = logits(run)
        out[name] = dict(
            max_rel=float((got.double() - ref.double()).abs().max() / ref.abs().max()),
            top1_agree=float((got.argmax(1) == ref.argmax(1)).double().mean()),
        )
    out["fp32"] = dict(max_rel=0.0, top1_agree=1.0, logit_max=float(ref.abs().max()))
    return out


def random_part(names: list[str], size: int, images: int, ablation: bool) -> dict[str, Any]:
    from senet_zoo.convert.verify import model_input, random_images

    results = {}
    for name in names:
        torch.manual_seed(0)
        model = senet_zoo.create_model(name)
        cfg = model.pretrained_cfg
        x = model_input(random_images(images, size, seed=7), {"mean": cfg["mean"], "std": cfg["std"]})
        calibrate(model, x)
        print(f"(a) {name}, calibrated random weights, {images} random images {size}x{size}", flush=True)
        results[name] = compare(model, x, ablation)
        _print(results[name])
    return results


def digits_part(runs: list[Path], data: Path, ablation: bool) -> dict[str, Any]:
    from senet_zoo.finetune.data import eval_transform, image_folder
    from senet_zoo.finetune.load import load_model

    results = {}
    for run in runs:
        model, info = load_model(None, run)
        model.eval()
        size = int(model.pretrained_cfg["input_size"][-1])
        val = image_folder(data / "val", eval_transform(model, size))
        x = torch.stack([val[i][0] for i in range(len(val))])
        y = torch.tensor([val[i][1] for i in range(len(val))])
        with torch.inference_mode():
            top1 = float((model(x).argmax(1) == y).double().mean())
        print(
            f"(b) {run} ({info.get('architecture')}): digits val, {len(y)} images {size}x{size}, "
            f"float32 top-1 {100 * top1:.2f} %",
            flush=True,
        )
        results[str(run)] = compare(model, x, ablation)
        results[str(run)]["fp32"]["val_top1"] = top1
        _print(results[str(run)])
    return results


def _print(rows: dict[str, dict[str, float]]) -> None:
    for name, r in rows.items():
        if name != "fp32":
            print(
                f"  {name:<12} max rel logit diff {r['max_rel']:.2e}   top-1 agreement {100 * r['top1_agree']:6.2f} %"
            )


def check(random: dict[str, Any], digits: dict[str, Any]) -> list[str]:
    """The targets that are missed, as lines."""
    missed = []
    for key, rows in {**random, **digits}.items():
        if "ov default" in rows and rows["bf16"]["max_rel"] > 2 * rows["ov default"]["max_rel"]:
            missed.append(
                f"{key}: bf16 max rel diff {rows['bf16']['max_rel']:.2e} > 2x OpenVINO default's "
                f"{rows['ov default']['max_rel']:.2e}"
            )
    for key, rows in digits.items():
        if rows["bf16"]["top1_agree"] < 0.99:
            missed.append(f"{key}: bf16 top-1 agreement {100 * rows['bf16']['top1_agree']:.2f} % < 99 %")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, or 'none'")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--digits", type=Path, nargs="*", default=[], help="fine-tuning run folders (digits)")
    parser.add_argument("--digits-data", type=Path, help="the digits ImageFolder (with val/)")
    parser.add_argument("--no-ablation", action="store_true", help="leave out the bf16 stem / SE variants")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.digits and args.digits_data is None:
        parser.error("--digits needs --digits-data")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    names = [] if args.models == "none" else args.models.split(",")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}; load average {os.getloadavg()[0]:.1f}"
    )
    random = random_part(names, args.size, args.images, not args.no_ablation)
    digits = digits_part(args.digits, args.digits_data, not args.no_ablation) if args.digits else {}
    if args.json:
        args.json.write_text(json.dumps(dict(random=random, digits=digits), indent=1))
    missed = check(random, digits)
    print("\n".join(["MISSED: " + m for m in missed] or ["all fidelity targets met"]))
    return 1 if missed else 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
