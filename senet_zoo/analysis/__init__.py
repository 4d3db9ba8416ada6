"""The role of SE blocks (paper §7): excitation statistics per block and class, and their plots.

>>> from senet_zoo.analysis import collect_excitations
>>> stats = collect_excitations(model, loader, classes)
>>> stats.class_spread()     # per block: how class-specific the gates are
"""

from .excitations import (
    ExcitationRecorder,
    ExcitationStats,
    collect_excitations,
    default_plot_blocks,
    se_blocks,
    select_blocks,
)
from .plots import plot_blocks, plot_depth

__all__ = [
    "ExcitationRecorder",
    "ExcitationStats",
    "collect_excitations",
    "se_blocks",
    "select_blocks",
    "default_plot_blocks",
    "plot_blocks",
    "plot_depth",
]
