#!/usr/bin/env python
"""Full-size check of the converter against the seven released SENet prototxts (run by hand).

For each ``*.prototxt`` in the reference folder (default ``../shared/caffe-reference`` next to the
repository): check that :func:`senet_zoo.caffe.synth.synth_net` reproduces it layer for layer, give
the parsed prototxt random weights, well-conditioned (BatchNorm statistics calibrated on the
activations) and ill-conditioned (statistics "from other inputs": activations ~10³), write them as a
caffemodel with the independent google.protobuf encoder (``tests/support/caffe_proto.py``), convert with the
prototxt, and verify against the Caffe executor in float64 (logits at 224×224, last feature map at
259×259; tolerance 1e-9 relative, see senet_zoo.convert.verify). Prints one row per model and
conditioning, with the float32 model's difference for information.

    python scripts/verify_reference.py [REFERENCE_DIR] [--only SE-ResNet-50 ...] [--work DIR]
        [--conditioning well ill]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import torch

from senet_zoo.caffe.executor import random_blobs
from senet_zoo.caffe.prototxt import read_prototxt
from senet_zoo.caffe.synth import ARCHS, synth_net
from senet_zoo.convert import convert

REPO = Path(__file__).resolve().parents[1]
PROTOTXTS = (
    "SE-BN-Inception",
    "SE-ResNet-50",
    "SE-ResNet-101",
    "SE-ResNet-152",
    "SE-ResNeXt-50",
    "SE-ResNeXt-101",
    "SENet-154",
)


def _encoder():
    """tests/support/caffe_proto.py, imported by path (it is test code, not part of the package)."""
    spec = importlib.util.spec_from_file_location("caffe_proto", REPO / "tests" / "support" / "caffe_proto.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _synth_matches(reference) -> str:
    """'yes' when synth_net reproduces the parsed prototxt exactly (names, types, wiring, params)."""
    arch = next(a for a, spec in ARCHS.items() if spec.caffe_name == reference.name)
    ours = synth_net(arch, blobs=False)
    if ours.name != reference.name or len(ours.layers) != len(reference.layers):
        return "no: layer count"
    for a, b in zip(ours.layers, reference.layers):
        if (a.name, a.type, a.bottoms, a.tops, a.params) != (b.name, b.type, b.bottoms, b.tops, b.params):
            return f"no: {b.name}"
    return "yes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", nargs="?", default=str(REPO.parent / "shared" / "caffe-reference"))
    parser.add_argument("--only", nargs="*", default=None, help="prototxt names (without .prototxt)")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--conditioning", nargs="*", default=["well", "ill"], choices=["well", "ill"])
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    encoder = _encoder()
    reference_dir = Path(args.reference)
    names = args.only or PROTOTXTS
    header = (
        f"{'model':<18} {'weights':>7} {'synth':>5} {'MiB':>5} {'logits rel':>10} {'f32 rel':>8} {'top-1':>6} "
        f"{'feat rel':>9} {'f32 rel':>8} {'tolerance':>9} {'scale':>8} {'total s':>8}"
    )
    print(header)
    print("-" * len(header), flush=True)
    failures = 0
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        for name in names:
            for conditioning in args.conditioning:
                start = time.perf_counter()
                prototxt = reference_dir / f"{name}.prototxt"
                net = read_prototxt(prototxt)
                synth_ok = _synth_matches(net)
                ill = conditioning == "ill"
                random_blobs(net, seed=0, calibrate=True, ill_conditioned=ill, input_shape=(1, 3, 224, 224))
                caffemodel = Path(scratch) / f"{name}.caffemodel"
                encoder.write_caffemodel(net, caffemodel)
                del net
                try:
                    report = convert(
                        caffemodel, Path(scratch) / name, prototxt=prototxt, progress=False, overwrite=True
                    )
                except ValueError as err:
                    failures += 1
                    print(f"{name:<18} {conditioning:>7} FAILED: {err}", flush=True)
                    continue
                v = report.verification
                (logits, features), (l32, f32) = v["checks"], v["float32"]["checks"]
                tolerance = max(c["tolerance"] for c in v["checks"])
                print(
                    f"{name:<18} {conditioning:>7} {synth_ok:>5} {report.source_bytes / 2**20:>5.0f} "
                    f"{logits['max_rel']:>10.2g} {l32['max_rel']:>8.2g} {logits['top1_agreement']:>6.0%} "
                    f"{features['max_rel']:>9.2g} {f32['max_rel']:>8.2g} {tolerance:>9.2g} {features['scale']:>8.3g} "
                    f"{time.perf_counter() - start:>8.1f}",
                    flush=True,
                )
                failures += synth_ok != "yes"
                caffemodel.unlink()
    print(
        "\nlogits at 224×224, features (input of pool5) at 259×259, batch 2; relative = max|diff| / max|Caffe|, "
        "decided in float64 (executor and model both float64); 'f32 rel': the float32 model against the same "
        "float64 reference, for information; 'scale': max |Caffe feature|. 'total s' includes weights, writing, "
        "conversion and verification."
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
