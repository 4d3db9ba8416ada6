#!/usr/bin/env python
"""Conversion cost for a SENet-154-size caffemodel (~460 MB): time vs. copying the file, peak memory.

A full-size SENet-154 with random weights is synthesized and written (senet_zoo's writer) in a
temporary folder. Copy time: ``shutil.copyfile`` of the same file to a fresh destination, three
times (min and median reported; the source is in the page cache for both copy and conversion).
Conversion: ``convert(..., verify=False)`` in a fresh subprocess, timed around the call (not the
interpreter start or imports); verification (running the Caffe executor and the model) is excluded.
Memory: the subprocess's peak RSS (VmHWM) over the file size, and the same peak minus the RSS the
process had after its imports (Python, numpy, and whatever ``import senet_zoo`` pulls in), i.e. what
the conversion itself adds. Also shown: one plain SHA-256 pass over the file, since the converter
hashes the source and the output (two passes, and the output hash can only start once the source
hash is known: the safetensors header records it).

Last line: ``time_vs_copy=<x> convert_rss_over_file=<x>`` (targets: ≤ 3 and ≤ 1.5).
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
baseline = rss("VmRSS:")
start = time.perf_counter()
report = convert(sys.argv[1], sys.argv[2], verify=False, progress=False)
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, baseline=baseline, hwm=rss("VmHWM:"), bytes=report.weights_bytes,
                      maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))
"""


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
        start = time.perf_counter()
        sha256_file(src)
        hash_s = time.perf_counter() - start
        runs = []
        for i in range(2):
            runs.append(_convert_in_subprocess(src, scratch / f"out{i}"))
            shutil.rmtree(scratch / f"out{i}")
        best = min(runs, key=lambda r: r["seconds"])
        peak = max(r["hwm"] for r in runs)
        baseline = min(r["baseline"] for r in runs)
        copy_min, copy_med = min(copies), statistics.median(copies)
        mb = 1e6
        mib = 2**20
        print(f"caffemodel: {size / mib:.0f} MiB (synthetic SENet-154), safetensors: {best['bytes'] / mib:.0f} MiB")
        print(f"copy (shutil.copyfile): min {copy_min:.2f} s, median {copy_med:.2f} s over {len(copies)} runs")
        print(
            f"one SHA-256 pass over the file: {hash_s:.2f} s ({size / mb / hash_s:.0f} MB/s); the converter needs "
            f"two in sequence (source, then output): {2 * hash_s:.2f} s = {2 * hash_s / copy_min:.1f}× min copy"
        )
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(
            f"convert (verify=False): {times} s "
            f"→ {best['seconds'] / copy_min:.1f}× min copy, {best['seconds'] / copy_med:.1f}× median copy"
        )
        print(
            f"peak RSS {peak / mb:.0f} MB = {peak / size:.2f}× file; after imports {baseline / mb:.0f} MB, "
            f"so the conversion adds {(peak - baseline) / mb:.0f} MB = {(peak - baseline) / size:.2f}× file"
        )
        print(f"time_vs_copy={best['seconds'] / copy_min:.2f} convert_rss_over_file={peak / size:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
