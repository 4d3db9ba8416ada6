"""Builders shared by the hub tests (and the end-to-end tests): manifests, converted folders, client subprocesses.

``publish_to_emulator`` publishes a folder to a running :class:`hub_server.HubEmulator` through the real
``senet_zoo.hub.publish`` code in a subprocess and returns the repo id, commit and manifest path, ready for a
``create_model`` / timm ``hf-hub:`` round trip run with ``hub.client_env(...)`` and ``SENET_ZOO_MANIFEST``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

# Loads senet_zoo.hub without running senet_zoo/__init__.py (which imports torch and registers timm models):
# the hub layer must not need the layers above it, and a bare import keeps subprocess tests fast.
BARE_HUB_IMPORT = (
    "import sys, types\n"
    "_pkg = types.ModuleType('senet_zoo')\n"
    f"_pkg.__path__ = [{str(REPO_ROOT / 'senet_zoo')!r}]\n"
    "_pkg.__version__ = 'bare-import'\n"
    "sys.modules['senet_zoo'] = _pkg\n"
)

PREPROCESSING = {
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "input_size": [3, 224, 224],
    "crop_pct": 0.875,
    "interpolation": "bilinear",
}
METRICS = {
    "dataset": "imagenet-1k val",
    "protocol": "single 224 centre crop of 256-short-side",
    "top1_acc": 77.63,
    "top5_acc": 93.64,
    "source": "test fixture",
}
PROVENANCE = {
    "caffemodel": "SE-ResNet-50.caffemodel",
    "caffemodel_sha256": None,
    "prototxt": "SE-ResNet-50.prototxt",
    "converter": "senet-zoo",
    "converter_version": None,
}
CAFFEMODEL_SHA256 = "c0ffee" * 10 + "cafe"  # stands for the digest the converter records for its input
_ENV_PREFIXES = ("HF_", "HUGGINGFACE_", "SENET_ZOO_", "TORCH_HOME")


def entry(
    *,
    status: str = "published",
    fmt: str = "safetensors",
    filename: str = "model.safetensors",
    sources: list[dict[str, Any]] | None = None,
    **digest: Any,
) -> dict[str, Any]:
    """A valid manifest entry; ``digest`` holds sha256 / sha256_prefix / size as needed."""
    return {
        "status": status,
        "format": fmt,
        "filename": filename,
        "sources": sources or [],
        **digest,
        "preprocessing": copy.deepcopy(PREPROCESSING),
        "metrics": copy.deepcopy(METRICS),
        "license": "apache-2.0",
        "provenance": copy.deepcopy(PROVENANCE),
    }


def url_source(url: str) -> dict[str, Any]:
    return {"type": "url", "url": url}


def hf_source(repo_id: str, revision: str, filename: str = "model.safetensors") -> dict[str, Any]:
    return {"type": "hf", "repo_id": repo_id, "revision": revision, "filename": filename}


def manifest_dict(models: dict[str, dict[str, dict[str, Any]]], defaults: dict[str, str] | None = None) -> dict:
    """``{name: {tag: entry}}`` → a manifest document; the default tag is the first one unless given."""
    defaults = defaults or {}
    return {
        "schema_version": 1,
        "models": {
            name: {"default_tag": defaults.get(name, next(iter(tags))), "weights": tags}
            for name, tags in models.items()
        },
    }


def write_manifest(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def pending_manifest(path: Path, name: str = "se_resnet50", tag: str = "caffe_in1k") -> Path:
    """A manifest whose only entry ``name.tag`` is pending (ready to be published)."""
    return write_manifest(path, manifest_dict({name: {tag: entry(status="pending", sha256=None, size=None)}}))


def make_weights_folder(folder: Path, *, name: str = "se_resnet50", tag: str = "caffe_in1k", seed: int = 0) -> Path:
    """A small converted folder: model.safetensors (random tensors), config.json, README.md."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    save_file(
        {
            "conv1.weight": torch.randn(8, 3, 3, 3, generator=gen),
            "fc.weight": torch.randn(10, 8, generator=gen),
            "fc.bias": torch.randn(10, generator=gen),
        },
        str(folder / "model.safetensors"),
    )
    weights_sha256 = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    config = {
        "architecture": name,
        "num_classes": 10,
        "num_features": 8,
        "pretrained_cfg": {},
        "label_names": [f"class{i}" for i in range(10)],
        "senet_zoo": {
            "name": name,
            "tag": tag,
            "converter_version": "0.1.0-test",
            "source": {"file": "SE-ResNet-50.caffemodel", "sha256": CAFFEMODEL_SHA256},
            "weights": {"file": "model.safetensors", "sha256": weights_sha256},
        },
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "README.md").write_text(f"---\nlicense: apache-2.0\nlibrary_name: timm\n---\n# {name}.{tag}\n")
    return folder


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without Hub/cache variables, plus ``extra`` and the repository on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_python(code: str, env: dict[str, str], *argv: str, timeout: float = 120.0, forbid: tuple[str, ...] = ()) -> Any:
    """Run ``code`` (with ``sys.argv[1:] == argv``) in a fresh interpreter; its last stdout line must be JSON,
    which is returned. ``forbid``: strings (e.g. a token) that must appear nowhere in its stdout or stderr.
    """
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    for secret in forbid:
        assert secret not in proc.stdout + proc.stderr, "a forbidden string was printed or logged"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def hub_client_env(hub: Any, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess talking to ``hub``, with private HF and torch caches under ``home``."""
    return clean_env(**{**hub.client_env(home / "hf"), "TORCH_HOME": str(home / "torch"), **extra})


def publish_to_emulator(
    hub: Any, folder: Path, repo_id: str, manifest_path: Path, home: Path, **publish_kwargs: Any
) -> dict[str, Any]:
    """Publish ``folder`` to the emulator with senet_zoo.hub.publish in a subprocess.

    Returns ``{"repo_id", "revision", "created_commit", "sha256", "size", "manifest_path"}``.
    """
    code = BARE_HUB_IMPORT + (
        "import json, logging\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from senet_zoo.hub.publish import publish\n"
        f"r = publish({str(folder)!r}, {repo_id!r}, manifest_path={str(manifest_path)!r}, **{publish_kwargs!r})\n"
        "print(json.dumps({'repo_id': r.repo_id, 'revision': r.revision, 'created_commit': r.created_commit,"
        " 'sha256': r.weights.sha256, 'size': r.weights.size, 'manifest_path': str(r.manifest_path)}))\n"
    )
    return run_python(code, hub_client_env(hub, home), forbid=(hub.token,))
