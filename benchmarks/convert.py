#!/usr/bin/env python
"""Conversion cost for a SENet-154-size caffemodel (~460 MB): time against hashing it, memory it adds.

A full-size SENet-154 with random weights is synthesized and written (senet_zoo's writer) in a
temporary folder. Reference: one SHA-256 pass over the file (the least a conversion must do: the
manifest records the source's hash); the file is in the page cache for both the hash and the
conversion. Rounds alternate a hash and a conversion (both see the same machine load); the figure
is the median over the rounds of conversion time / hash time. Conversion:
``convert(..., verify=False)`` in a fresh subprocess, timed around the call (not the interpreter
start or imports, those the converter makes on first use included); verification (running the Caffe
executor and the model) is excluded. The converter hashes the source in a thread while it converts
and the output while it writes it: on two cores its time is bounded by the two hashes sharing them.
Memory: the subprocess's peak RSS during the call (the peak is reset after the imports through
``/proc/self/clear_refs``) minus its RSS after the imports (Python, numpy, torch), over the file size:
what the conversion itself adds. Copy time (``shutil.copyfile``) is shown for context.

Last line: ``time_vs_hash=<x> convert_rss_over_file=<x>`` (targets: ≤ 1.5 and ≤ 0.25).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
from senet_zoo.convert import convert
import filelock  # what the converter imports on first use (output lock, model card) is not timed either
from huggingface_hub import ModelCard, ModelCardData
try:
    with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM: the imports' peak is not the conversion's
        f.write("5")
except OSError:
    pass
baseline = rss("VmRSS:")
start = time.perf_counter()
report = convert(sys.argv[1], sys.argv[2], verify=False, progress=False)
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, baseline=baseline, hwm=rss("VmHWM:"), bytes=report.weights_bytes,
                      maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))
"""


ROUNDS = 7


def _copy_times(src: Path, scratch: Path, runs: int = 3) -> list[float]:
    times = []
    for i in range(runs):
        dst = scratch / f"copy{i}.bin"
        start = time.perf_counter()
        shutil.copyfile(src, dst)
        times.append(time.perf_counter() - start)
        dst.unlink()
    return times


def _convert_in_subprocess(src: Path, out: Path) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(src), str(out)], check=True, capture_output=True, text=True, env=env
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    from senet_zoo._files import sha256_file
    from senet_zoo.caffe.synth import synth_net
    from senet_zoo.caffe.writer import write_caffemodel

    with tempfile.TemporaryDirectory(prefix="senet-zoo-bench-") as tmp:
        scratch = Path(tmp)
        src = scratch / "SENet.caffemodel"
        net = synth_net("senet154", seed=0)
        write_caffemodel(net, src)
        del net
        size = src.stat().st_size
        copies = _copy_times(src, scratch)
        hashes = []
        runs = []
        for i in range(ROUNDS):  # alternate hash and conversion: both see the same machine load
            start = time.perf_counter()
            sha256_file(src)
            hashes.append(time.perf_counter() - start)
            runs.append(_convert_in_subprocess(src, scratch / f"out{i}"))
            shutil.rmtree(scratch / f"out{i}")
        hash_s = statistics.median(hashes)
        ratio = statistics.median(r["seconds"] / h for r, h in zip(runs, hashes))
        added = max(r["hwm"] - r["baseline"] for r in runs)
        mb, mib = 1e6, 2**20
        print(f"caffemodel: {size / mib:.0f} MiB (synthetic SENet-154), safetensors: {runs[0]['bytes'] / mib:.0f} MiB")
        print(f"copy (shutil.copyfile): min {min(copies):.2f} s over {len(copies)} runs (context only)")
        print(
            f"one SHA-256 pass over the file: median {hash_s:.2f} s of {', '.join(f'{h:.2f}' for h in hashes)} "
            f"({size / mb / hash_s:.0f} MB/s)"
        )
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(
            f"convert (verify=False, source and output hashed on the fly): {times} s; "
            f"median of the per-round ratios {ratio:.2f}× hash"
        )
        print(
            f"RSS after imports {min(r['baseline'] for r in runs) / mb:.0f} MB; the conversion adds at most "
            f"{added / mb:.0f} MB = {added / size:.3f}× the file"
        )
        print(f"time_vs_hash={ratio:.2f} convert_rss_over_file={added / size:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
