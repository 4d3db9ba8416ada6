"""Full-size ONNX export check: every senet_zoo model at 224×224, exported with ``senet_zoo.export_onnx``
and verified with ONNX Runtime against the PyTorch model in float64 (batches 1 and 3).

Random weights with non-trivial BatchNorm statistics (``_weights.write_random_weights``; nothing is
downloaded). Prints one line per model and, last, ``export_all_max_rel_diff=<x> exported=<n>/7``.

    python benchmarks/export_all.py                 # all seven (a few minutes on 2 cores)
    python benchmarks/export_all.py --models se_resnet50,senet154
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _weights import write_random_weights


def main() -> int:
    import senet_zoo
    from senet_zoo.export import export_onnx

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(senet_zoo.list_models()))
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    names = args.models.split(",")
    worst, done = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            weights = write_random_weights(name, Path(tmp))
            model = senet_zoo.create_model(name, pretrained=str(weights)).eval()
            t0 = time.perf_counter()
            report = export_onnx(model, Path(tmp) / f"{name}.onnx", input_size=(3, args.size, args.size))
            elapsed = time.perf_counter() - t0
            print(f"{name:<22} {report.summary()}  [{elapsed:.1f} s]", flush=True)
            worst, done = max(worst, report.max_rel_diff), done + 1
            report.path.unlink()
            weights.unlink()
            del model
    print(f"export_all_max_rel_diff={worst:.3g} exported={done}/{len(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
