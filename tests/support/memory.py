"""Where a process's memory comes from (Linux ``/proc/self/maps``): shared by the lean-loading tests and
``benchmarks/load.py``."""

from __future__ import annotations

import os
from pathlib import Path


def mapped_spans(path: str | os.PathLike[str]) -> list[tuple[int, int]]:
    """The address ranges ``[lo, hi)`` at which this process maps ``path``."""
    target = os.path.realpath(path)
    spans = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and os.path.realpath(parts[5]) == target:
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            spans.append((lo, hi))
    return spans
