"""Load benchmark: weights file in the local cache → model ready in eval mode, senet_zoo vs timm legacy.

Writes random weights for the model to a temporary ``.safetensors`` file (no downloads), then alternates
fresh subprocesses that import torch, timm, safetensors and senet_zoo, record the resident set size
(the baseline), and build the model from that file:

* ``senet_zoo``: ``senet_zoo.create_model(name, pretrained=<file>).eval()``
* ``timm``:      ``timm.create_model(<legacy name>, pretrained=True, pretrained_cfg_overlay=dict(file=<file>)).eval()``

Reported per loader (median over the repeats): the time to a ready model; the peak RSS above the
baseline when ready, and again after every weight has been read once (so memory-mapped pages count
too: the stricter figure, used for ``load_rss_over_file``); and the share of parameter bytes that live
in a memory map of the weights file (i.e. were never copied). Both loaders must give the same weights.

    python benchmarks/load.py [--model se_resnet50] [--repeats 5]

Last line: ``load_time_ratio=<ours/timm> load_rss_over_file=<ours, weights resident> ...``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _weights import write_random_weights

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test helpers, not the package
from support.memory import mapped_spans  # noqa: E402

LOADERS = ("senet_zoo", "timm")


def _status_mib() -> dict[str, float]:
    """VmRSS / VmHWM of this process in MiB (Linux ``/proc/self/status``)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (``clear_refs`` 5, Linux ≥ 4.0); False where not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _mmap_share(tensors: list, path: Path) -> float:
    """Fraction of the tensors' bytes that lie inside a memory mapping of ``path``."""
    spans = mapped_spans(path)
    total = inside = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        total += nbytes
        if any(lo <= t.data_ptr() and t.data_ptr() + nbytes <= hi for lo, hi in spans):
            inside += nbytes
    return inside / max(total, 1)


def child(loader: str, model_name: str, timm_name: str, path: Path) -> dict:
    """Runs in a fresh interpreter: baseline after imports, then load, then read every weight."""
    import safetensors.torch  # noqa: F401  (both loaders read safetensors; import it before the baseline)
    import timm
    import torch

    import senet_zoo
    import senet_zoo.hub.fetch  # noqa: F401  (imported lazily by the builder; part of the baseline)

    base = _status_mib()["VmRSS"]
    peak_reset = _reset_peak()
    start = time.perf_counter()
    if loader == "senet_zoo":
        model = senet_zoo.create_model(model_name, pretrained=str(path)).eval()
    else:
        model = timm.create_model(timm_name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path))).eval()
    ready_s = time.perf_counter() - start
    ready = _status_mib()
    tensors = [*model.parameters(), *model.buffers()]
    start = time.perf_counter()
    with torch.no_grad():
        checksum = sum(float(t.sum()) for t in tensors)  # reads every page, allocates nothing large
    touch_s = time.perf_counter() - start
    resident = _status_mib()
    return dict(
        loader=loader,
        ready_s=ready_s,
        touch_s=touch_s,
        base_mib=base,
        peak_reset=peak_reset,
        ready_peak_mib=ready["VmHWM"] - base,
        resident_peak_mib=resident["VmHWM"] - base,
        mmap_share=_mmap_share(tensors, path),
        checksum=checksum,
    )


def _run_child(loader: str, args: argparse.Namespace, timm_name: str, path: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        loader,
        "--model",
        args.model,
        "--timm-name",
        timm_name,
        "--file",
        str(path),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="se_resnet50")
    parser.add_argument("--timm-name", default=None, help="timm legacy name (default: the registry's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", choices=LOADERS, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.timm_name, args.file)))
        return 0

    import senet_zoo

    timm_name = args.timm_name or senet_zoo.model_info(args.model)["timm_legacy"]
    if not timm_name:
        parser.error(f"{args.model} has no timm legacy counterpart; pass --timm-name")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_random_weights(args.model, Path(tmp))
        file_mib = path.stat().st_size / 2**20
        runs: dict[str, list[dict]] = {name: [] for name in LOADERS}
        for i in range(args.repeats):
            for name in LOADERS if i % 2 == 0 else LOADERS[::-1]:  # alternate the order
                runs[name].append(_run_child(name, args, timm_name, path))
    sums = {name: runs[name][0]["checksum"] for name in LOADERS}
    if abs(sums["senet_zoo"] - sums["timm"]) > 1e-6 * abs(sums["timm"]):
        raise SystemExit(f"the loaders disagree on the weights: checksums {sums}")
    if not all(r["peak_reset"] for rs in runs.values() for r in rs):
        print("note: could not reset VmHWM; peaks include the import peak", file=sys.stderr)

    med = {
        name: {
            key: statistics.median(r[key] for r in runs[name])
            for key in ("ready_s", "touch_s", "ready_peak_mib", "resident_peak_mib", "mmap_share")
        }
        for name in LOADERS
    }
    print(
        f"{args.model} vs timm {timm_name}; weights file {file_mib:.1f} MiB; "
        f"median of {args.repeats} fresh processes each; RSS above the post-import baseline"
    )
    print(
        f"{'loader':<10} {'ready s':>8} {'+read s':>8} {'peak@ready MiB':>15} {'peak@resident MiB':>18} "
        f"{'x file':>7} {'mmap share':>11}"
    )
    for name in LOADERS:
        m = med[name]
        print(
            f"{name:<10} {m['ready_s']:>8.3f} {m['touch_s']:>8.3f} {m['ready_peak_mib']:>15.1f} "
            f"{m['resident_peak_mib']:>18.1f} {m['resident_peak_mib'] / file_mib:>7.2f} {m['mmap_share']:>11.2f}"
        )
    ours, theirs = med["senet_zoo"], med["timm"]
    print(
        f"load_time_ratio={ours['ready_s'] / theirs['ready_s']:.3f} "
        f"load_rss_over_file={ours['resident_peak_mib'] / file_mib:.3f} "
        f"ready_rss_over_file={ours['ready_peak_mib'] / file_mib:.3f} "
        f"timm_rss_over_file={theirs['resident_peak_mib'] / file_mib:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
