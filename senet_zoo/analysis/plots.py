"""Excitation plots in the style of the paper's Fig. 6 and a per-depth summary, as PNG files.

Uses matplotlib's object API (``Figure``), never pyplot: no global backend, no display needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..finetune.checkpoint import atomic_path
from .excitations import ExcitationStats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_blocks", "plot_depth"]


def _save(fig: Figure, path: str | Path, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def _pick_classes(stats: ExcitationStats, classes: Sequence[str] | None) -> list[int]:
    if classes is None:
        return [int(i) for i in np.flatnonzero(stats.present)][:8]
    unknown = [c for c in classes if c not in stats.classes]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; the data set has {stats.classes}")
    return [stats.classes.index(c) for c in classes]


def plot_blocks(
    stats: ExcitationStats,
    blocks: Sequence[str],
    path: str | Path,
    classes: Sequence[str] | None = None,
    columns: int = 3,
    dpi: int = 80,
) -> None:
    """One panel per block: mean gate per channel, one line per class and the mean over all images.

    ``classes`` picks the lines (default: the first eight classes that have images). When every chosen
    class is named after a colour (``red``, ``tab:blue``), its line is drawn in that colour.
    """
    from matplotlib.colors import get_named_colors_mapping
    from matplotlib.figure import Figure

    unknown = [b for b in blocks if b not in stats.blocks]
    if unknown or not blocks:
        raise ValueError(f"blocks {unknown or '[]'} not in the statistics (recorded: {stats.blocks})")
    chosen = _pick_classes(stats, classes)
    named = get_named_colors_mapping()
    colours = {i: stats.classes[i] if all(stats.classes[j] in named for j in chosen) else None for i in chosen}
    columns = min(columns, len(blocks))
    rows = -(-len(blocks) // columns)
    fig = Figure(figsize=(4.2 * columns, 2.8 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax, block in zip(axes, blocks):
        means = stats.class_means(block)
        channels = np.arange(means.shape[1])
        for i in chosen:
            ax.plot(channels, means[i], linewidth=0.7, label=stats.classes[i], color=colours[i])
        ax.plot(channels, stats.overall_mean(block), color="black", linestyle="--", linewidth=0.8, label="all")
        ax.set_title(block, fontsize=10)
        ax.set_xlabel("channel index", fontsize=8)
        ax.set_ylabel("mean activation", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlim(0, len(channels) - 1)
    for ax in axes[len(blocks) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 9), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (2.8 * rows)))
    _save(fig, path, dpi)


def plot_depth(stats: ExcitationStats, path: str | Path, dpi: int = 80) -> None:
    """Class spread and saturation of every recorded block against its depth."""
    from matplotlib.figure import Figure

    spread, saturation = stats.class_spread(), stats.saturation()
    x = np.arange(len(stats.blocks))
    fig = Figure(figsize=(max(6.0, 0.28 * len(x) + 2), 5.2))
    ax_spread, ax_sat = fig.subplots(2, 1, sharex=True)
    ax_spread.plot(x, [spread[b] for b in stats.blocks], marker="o")
    ax_spread.set_ylabel("class spread\n(std over classes)")
    ax_sat.plot(x, [saturation[b]["near_one"] for b in stats.blocks], marker="o", label=f"gate ≥ {1 - stats.tol:g}")
    ax_sat.plot(x, [saturation[b]["near_zero"] for b in stats.blocks], marker="s", label=f"gate ≤ {stats.tol:g}")
    ax_sat.set_ylabel("fraction of gates")
    ax_sat.legend(fontsize=8)
    ax_sat.set_xticks(x, stats.blocks, rotation=90, fontsize=7)
    for ax in (ax_spread, ax_sat):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path, dpi)
