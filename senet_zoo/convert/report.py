"""What a conversion writes and reports: the output folder's file names, the converter version, and
:class:`ConversionReport`. A module of its own so that the converter, the model card and the
verification all read it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CONVERTER_VERSION", "WEIGHTS_FILE", "CONFIG_FILE", "CARD_FILE", "ConversionReport"]

CONVERTER_VERSION = "1.0"  # bump whenever the same caffemodel would convert to different bytes
WEIGHTS_FILE, CONFIG_FILE, CARD_FILE = "model.safetensors", "config.json", "README.md"


@dataclass
class ConversionReport:
    """What :func:`convert` wrote and measured."""

    out_dir: Path
    arch: str  # senet_zoo model name
    timm_legacy: str | None
    model_args: dict[str, Any]
    source_file: str
    source_sha256: str
    source_bytes: int
    weights_sha256: str
    weights_bytes: int
    tensors: int
    parameters: int
    seconds: float
    notes: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    suspicious: list[str] = field(default_factory=list)  # sanity findings converted with allow_suspicious
    converter_version: str = CONVERTER_VERSION
