"""Value checks before a conversion is written: numbers no trained SENet can hold.

Verification compares two implementations fed the same numbers, so it cannot notice corrupted
values; these checks can. Refused (with the layer's name): non-finite values in any blob; a
BatchNorm scale factor (Caffe's third blob) that is not a positive number of a plausible size
(Caffe's moving-average bookkeeping leaves 1/(1 - 0.999) ≈ 1000 or less); BatchNorm variances that
are negative or absurdly large once divided by it. ``allow_suspicious`` turns the refusals into
notes (the model card lists them).
"""

from __future__ import annotations

import numpy as np

from .mapping import ConversionError

__all__ = ["SuspiciousValues", "MAX_BN_SCALE_FACTOR", "MAX_BN_VARIANCE", "check_bn", "check_finite"]

MAX_BN_SCALE_FACTOR = 1e6
MAX_BN_VARIANCE = 1e12  # a standard deviation of 10⁶ in front of a BatchNorm


class SuspiciousValues(ConversionError):
    """Weights whose values cannot come from a trained net (override: ``--allow-suspicious``)."""


def check_finite(where: str, layer: str, index: int, values: np.ndarray) -> str | None:
    """A problem description when ``values`` holds NaN or infinity (one fast reduction first)."""
    if values.size == 0 or np.isfinite(values.sum()):
        return None  # a NaN or infinity makes the sum non-finite; a finite sum clears the blob
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad == 0:
        return None  # only the float32 sum overflowed
    return f"{where}: layer {layer!r} blob {index} holds {bad} non-finite value(s) (NaN or infinity)"


def check_bn(where: str, layer: str, blobs: list[np.ndarray]) -> list[str]:
    """Problems with one Caffe BatchNorm layer's blobs ``[mean·s, var·s, s]``."""
    s = float(np.asarray(blobs[2]).reshape(-1)[0])
    if not (np.isfinite(s) and 0 < s <= MAX_BN_SCALE_FACTOR):
        return [f"{where}: layer {layer!r}: BatchNorm scale factor {s:g} is not in (0, {MAX_BN_SCALE_FACTOR:g}]"]
    var = np.asarray(blobs[1], dtype=np.float64) / s
    problems = []
    if (var < 0).any():
        problems.append(f"{where}: layer {layer!r}: {int((var < 0).sum())} negative BatchNorm variance(s)")
    if (var > MAX_BN_VARIANCE).any():
        problems.append(
            f"{where}: layer {layer!r}: BatchNorm variance up to {var.max():.3g} (> {MAX_BN_VARIANCE:g}, absurd)"
        )
    return problems
