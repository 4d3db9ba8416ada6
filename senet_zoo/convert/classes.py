"""ImageNet class order: the Caffe releases' devkit order → the sorted-WNID order of every PyTorch pipeline.

``senet_zoo/data/caffe_class_order.txt`` line k is the WNID of Caffe output k (devkit ID k + 1).
With ``idx[k]`` = rank of that WNID among the sorted WNIDs, ``logits_sorted[:, idx] = logits_caffe``
and the classifier rows in sorted order are ``fc_caffe[argsort(idx)]``.
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["caffe_wnids", "caffe_to_sorted_index", "sorted_row_order", "sorted_wnids", "wnid_lemmas"]

_LEMMA_FILE = ("data", "_info", "imagenet_synset_to_lemma.txt")  # shipped inside timm


@functools.lru_cache(maxsize=1)
def caffe_wnids() -> tuple[str, ...]:
    """WNID of each Caffe output index (1000 entries, all distinct)."""
    text = importlib.resources.files("senet_zoo").joinpath("data/caffe_class_order.txt").read_text("utf-8")
    wnids = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(wnids) != 1000 or len(set(wnids)) != 1000:
        raise RuntimeError(f"caffe_class_order.txt must list 1000 distinct WNIDs, found {len(set(wnids))}")
    return wnids


def sorted_wnids() -> list[str]:
    """The WNIDs in sorted order: class k of a converted model (timm's ``label_names``)."""
    return sorted(caffe_wnids())


def caffe_to_sorted_index() -> np.ndarray:
    """``idx[k]`` = sorted-order index of Caffe output ``k``."""
    rank = {wnid: i for i, wnid in enumerate(sorted_wnids())}
    return np.array([rank[w] for w in caffe_wnids()], dtype=np.int64)


def sorted_row_order() -> np.ndarray:
    """Rows to take from a Caffe classifier so that row ``j`` is sorted class ``j``: ``argsort(idx)``."""
    return np.argsort(caffe_to_sorted_index(), kind="stable")


def wnid_lemmas(wnids: list[str]) -> dict[str, str]:
    """WNID → WordNet lemmas ("tench, Tinca tinca"), from timm's ImageNet info table.

    Read straight from timm's package data (as ``timm.data.ImageNetInfo`` does) without importing timm,
    which would cost the converter hundreds of MB of resident memory.
    """
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("timm is not installed; it ships the WordNet lemmas of the ImageNet classes")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_LEMMA_FILE)
    lemmas = dict(line.split("\t", 1) for line in path.read_text("utf-8").splitlines() if "\t" in line)
    missing = [w for w in wnids if w not in lemmas]
    if missing:
        raise RuntimeError(f"{path}: no lemma for {missing[:3]}")
    return {w: lemmas[w] for w in wnids}
