"""Pretrained weights: the manifest that lists them, verified downloads, and publishing to the Hub.

Cheap to import: ``requests``, ``huggingface_hub`` and ``torch`` are imported only when a function needs them.
"""

from .._redact import redact
from .download import DownloadFailed, DownloadSettings, download
from .fetch import (
    CacheCheck,
    DownloadError,
    WeightsNotAvailableError,
    fetch,
    fetch_weights,
    verify_cache,
)
from .manifest import (
    Manifest,
    ManifestError,
    Metrics,
    Preprocessing,
    Provenance,
    Source,
    UnknownWeightsError,
    WeightsEntry,
    check_repo_id,
    load_manifest,
    record_published,
    update_entry,
)
from .publish import PublishError, PublishResult, publish
from .weights_file import load_state_dict

__all__ = [
    "CacheCheck",
    "DownloadError",
    "DownloadFailed",
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
    "check_repo_id",
    "download",
    "fetch",
    "fetch_weights",
    "load_manifest",
    "load_state_dict",
    "publish",
    "record_published",
    "redact",
    "update_entry",
    "verify_cache",
]
