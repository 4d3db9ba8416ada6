"""Pretrained weights: the manifest that lists them, verified downloads, and publishing to the Hub.

Cheap to import: ``requests``, ``huggingface_hub`` and ``torch`` are imported only when a function needs them.
"""

from .fetch import DownloadError, DownloadSettings, WeightsNotAvailableError, fetch, fetch_weights, load_state_dict
from .manifest import (
    Manifest,
    ManifestError,
    Metrics,
    Preprocessing,
    Provenance,
    Source,
    UnknownWeightsError,
    WeightsEntry,
    load_manifest,
    record_published,
    update_entry,
)
from .publish import PublishError, PublishResult, publish

__all__ = [
    "DownloadError",
    "DownloadSettings",
    "Manifest",
    "ManifestError",
    "Metrics",
    "Preprocessing",
    "Provenance",
    "PublishError",
    "PublishResult",
    "Source",
    "UnknownWeightsError",
    "WeightsEntry",
    "WeightsNotAvailableError",
    "fetch",
    "fetch_weights",
    "load_manifest",
    "load_state_dict",
    "publish",
    "record_published",
    "update_entry",
]
