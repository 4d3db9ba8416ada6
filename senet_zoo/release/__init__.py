"""``senet-zoo release`` (for maintainers): find the authors' caffemodels, convert, verify, publish and
record them in the manifest; resumable. The top of the data flow: it uses ``convert`` and ``hub``,
and nothing imports it. :mod:`.pipeline` does the work, :mod:`.commands` is the subcommand.

    from senet_zoo.release import release
    report = release("downloads/", "my-org", manifest_path="weights_manifest.json")
"""

from __future__ import annotations

from .._lazy import lazy_api

_API = {name: "pipeline" for name in ("release", "find_releases", "ReleaseReport", "ReleaseError", "TAG", "STATE_FILE")}

__all__ = list(_API)

__getattr__, __dir__ = lazy_api(__name__, _API)
