#!/usr/bin/env python
"""Fuzz the converter at scale: N mutated caffemodels and prototxts, every outcome counted.

The corpus is tests/support/fuzz_corpus.py's (the suite runs a few dozen cases of it without verifying the
successes); here every success is also verified in float64 against the Caffe executor. Each case
runs in this process; a case over the time limit counts as a hang, and the process's peak RSS
above its post-import baseline is reported against the largest input.

    python scripts/fuzz_convert.py [--cases 400] [--seed 1] [--no-verify]

Last line: ``cases=<n> ok=<n> clean_errors=<n> tracebacks=<n> hangs=<n> peak_rss_over_input=<x>``.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-verify", dest="verify", action="store_false")
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "tests"))  # the corpus is test code, not part of the package
    import support.fuzz_corpus as fuzz

    baseline = _rss("VmRSS:")
    outcomes: collections.Counter = collections.Counter()
    kinds: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="senet-zoo-fuzz-") as tmp:
        base = fuzz.base_files(Path(tmp))
        work = Path(tmp) / "work"
        work.mkdir()
        largest = len(base[0])
        for i, case in enumerate(fuzz.corpus(base, args.cases, args.seed)):
            largest = max(largest, len(case.caffemodel))
            outcome, detail = fuzz.run_case(case, work, verify=args.verify, time_limit=args.time_limit)
            outcomes[outcome] += 1
            kinds[case.kind.split("_")[0]][outcome] += 1
            if outcome not in ("ok", "error"):
                print(f"case {i} {case.kind}: {outcome}: {detail}", flush=True)
            if (i + 1) % 50 == 0:
                print(f"{i + 1} cases, {dict(outcomes)}, {time.perf_counter() - start:.0f} s", flush=True)
    peak = _rss("VmHWM:") - baseline
    for kind, counts in sorted(kinds.items()):
        print(f"{kind:<32} {dict(counts)}")
    print(
        f"cases={sum(outcomes.values())} ok={outcomes['ok']} clean_errors={outcomes['error']} "
        f"tracebacks={outcomes['traceback']} hangs={outcomes['slow']} "
        f"peak_rss_over_input={peak / largest:.2f}"
    )
    return 0 if outcomes["traceback"] == outcomes["slow"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
