"""Excitation plots in the style of the paper's Fig. 6 and a per-depth summary, as PNG files.

Uses matplotlib's object API (``Figure``), never pyplot: no global backend, no display needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import atomic_path
from .excitations import ExcitationStats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_blocks", "plot_depth"]


def _save(fig: Figure, path: str | Path, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def _pick_classes(stats: ExcitationStats, classes: Sequence[str] | None) -> list[int]:
    if classes is None:
        return [int(i) for i in np.flatnonzero(stats.present)]
    unknown = [c for c in classes if c not in stats.classes]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; the data set has {stats.classes}")
    return [stats.classes.index(c) for c in classes]


def _colours(stats: ExcitationStats, chosen: Sequence[int]) -> dict[int, Any]:
    """Classes named after colours are drawn in them; otherwise a qualitative map (tab10/tab20), or a
    continuous one beyond 20 classes."""
    from matplotlib import colormaps
    from matplotlib.colors import get_named_colors_mapping

    named = get_named_colors_mapping()
    if all(stats.classes[i] in named for i in chosen):
        return {i: stats.classes[i] for i in chosen}
    cmap = colormaps["tab10" if len(chosen) <= 10 else "tab20" if len(chosen) <= 20 else "turbo"]
    n = max(1, len(chosen) - 1)
    return {i: cmap(k) if len(chosen) <= 20 else cmap(k / n) for k, i in enumerate(chosen)}


def plot_blocks(
    stats: ExcitationStats,
    blocks: Sequence[str],
    path: str | Path,
    classes: Sequence[str] | None = None,
    columns: int = 2,
    dpi: int = 80,
    sort_channels: bool | None = None,
) -> Figure:
    """One panel per block: mean gate per channel, one line per class, over the mean of all images.

    ``classes`` picks the lines (default: every class that has images). The mean over all images is a
    translucent grey band, so it never hides the class lines; lines are thin and slightly transparent.
    ``sort_channels`` (default: for blocks wider than 256 channels) orders the channels by their mean
    over all images, so the 2048-channel blocks read as a smooth curve with the classes deviating from
    it. The legend (up to 40 classes; a colour bar beyond) sits inside the image, below the panels.
    Returns the figure (already saved to ``path``).
    """
    from matplotlib.figure import Figure

    unknown = [b for b in blocks if b not in stats.blocks]
    if unknown or not blocks:
        raise ValueError(f"blocks {unknown or '[]'} not in the statistics (recorded: {stats.blocks})")
    chosen = _pick_classes(stats, classes)
    colours = _colours(stats, chosen)
    columns = min(columns, len(blocks))
    rows = -(-len(blocks) // columns)
    width = max(stats.channels[b] for b in blocks)
    panel_w = 5.0 if width <= 256 else 7.0
    fig = Figure(figsize=(panel_w * columns, 2.9 * rows + 0.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    line_w, line_alpha = (0.9, 0.85) if width <= 256 else (0.4, 0.6)  # wide blocks: thin, see-through
    for ax, block in zip(axes, blocks):
        means, overall = stats.class_means(block), stats.overall_mean(block)
        order = np.arange(len(overall))
        if sort_channels if sort_channels is not None else len(overall) > 256:
            order = np.argsort(overall, kind="stable")  # a smooth "all" curve; classes show as deviations
        channels = np.arange(len(order))
        ax.plot(channels, overall[order], color="0.4", linewidth=2.5, alpha=0.5, label="all images", zorder=3)
        for i in chosen:
            ax.plot(
                channels, means[i][order], linewidth=line_w, alpha=line_alpha, color=colours[i], label=stats.classes[i]
            )

        sorted_axis = not np.array_equal(order, channels)
        ax.set_xlabel("channel, sorted by the mean over all images" if sorted_axis else "channel index", fontsize=8)
        ax.set_title(f"{block} ({means.shape[1]} channels)", fontsize=10)
        ax.set_ylabel("mean activation", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlim(0, len(channels) - 1)
        ax.grid(alpha=0.2)
    for ax in axes[len(blocks) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    if len(chosen) <= 40:
        ncol = min(len(labels), max(4, int(panel_w * columns * 1.4)))
        legend = fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
        for line in legend.get_lines():
            line.set_linewidth(2.0)
    else:  # too many classes to name: a colour bar over the class index
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import ListedColormap, Normalize

        cmap = ListedColormap([colours[i] for i in chosen])
        bar = fig.colorbar(
            ScalarMappable(Normalize(0, len(chosen) - 1), cmap), ax=list(axes[: len(blocks)]), location="bottom"
        )
        bar.set_label(f"class (index among the {len(chosen)} classes drawn)", fontsize=8)
    _save(fig, path, dpi)
    return fig


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
