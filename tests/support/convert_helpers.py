"""Fixtures for the converter tests: synthesized Caffe nets written by the independent encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from senet_zoo.caffe.synth import synth_net

from .caffe_proto import write_caffemodel

REDUCED = (1, 1, 1, 1)
# One net per block kind (the 101/152 variants differ from these only in depth): SE-ResNet-50 at full
# size, the others reduced to one block per stage; SE-BN-Inception has no depth to reduce.
FAMILIES = {"se_resnet50": None, "se_resnext50_32x4d": REDUCED, "senet154": REDUCED, "se_bn_inception": None}


def caffemodel(
    tmp: Path,
    arch: str,
    layers: Any = REDUCED,
    *,
    name: str | None = None,
    seed: int = 0,
    encode: dict[str, bool] | None = None,
    mutate=None,
    package_writer: bool = False,
    **synth: Any,
) -> Path:
    """Synthesize ``arch`` (reduced), optionally alter the net, write it with google.protobuf (or,
    where only speed matters, with senet_zoo's own writer)."""
    net = synth_net(arch, layers=layers if arch != "se_bn_inception" else None, seed=seed, **synth)
    if mutate is not None:
        mutate(net)
    path = tmp / f"{name or arch}.caffemodel"
    if package_writer:
        from senet_zoo.caffe.writer import write_caffemodel as write_fast

        write_fast(net, path)
    else:
        write_caffemodel(net, path, **(encode or {}))
    return path


def tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
