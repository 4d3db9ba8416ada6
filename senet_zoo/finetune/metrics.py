"""Per-epoch metrics of a run: ``metrics.csv`` and ``curves.png`` (loss and accuracy), rewritten each epoch."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._files import atomic_path

__all__ = ["COLUMNS", "write_metrics_csv", "read_metrics_csv", "plot_curves"]

COLUMNS = (
    "epoch",
    "train_loss",
    "train_top1",
    "val_loss",
    "val_top1",
    "val_top5",
    "lr_backbone",
    "lr_head",
    "train_samples",
    "val_samples",
    "world_size",
    "img_per_s",
    "epoch_time_s",
)


def write_metrics_csv(path: str | Path, history: Sequence[Mapping[str, Any]]) -> None:
    """Write one row per epoch (missing values empty), atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def read_metrics_csv(path: str | Path) -> list[dict[str, float]]:
    """Read :func:`write_metrics_csv`'s file back as numbers (empty cells are dropped)."""
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def plot_curves(path: str | Path, history: Sequence[Mapping[str, Any]]) -> None:
    """Loss (train, val) and accuracy (train top-1, val top-1/top-5) against the epoch, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI, safe in any process

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.5))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, keys, ylabel in (
        (ax_loss, ("train_loss", "val_loss"), "loss"),
        (ax_acc, ("train_top1", "val_top1", "val_top5"), "accuracy (%)"),
    ):
        for key in keys:
            points = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
