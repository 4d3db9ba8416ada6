"""Check a conversion numerically: the Caffe net and the converted model on the same random images.

The Caffe net runs in senet_zoo's Caffe executor (written from Caffe's layer definitions, sharing no
code with the models) on the BGR image minus the mean; the converted model runs on the RGB image
normalised with its ``pretrained_cfg`` mean/std. Two checks:

- ``logits`` at 224×224 (the Caffe logits mapped to sorted-WNID order);
- ``features`` (the map that enters the fixed 7×7 ``pool5``, i.e. ``forward_features``) at 259×259.
  259 is odd and the first pooling then sees a 130×130 map, where Caffe's ceil-mode output (65)
  differs from floor mode (64), so a model pooling the wrong way fails. Unlike 257 it also keeps
  SE-BN-Inception runnable in Caffe: its stride-2 modules (3c, 4e) concatenate a padded 3×3/2
  convolution with an unpadded ceil-mode 3×3/2 pool, whose sizes agree only on even inputs; at 259
  they see 32×32 and 16×16.

Differences are reported as max |diff| and max |diff| / max |Caffe output| (relative to the
output's scale); above the tolerance (1e-4 in float32) verification fails.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from .. import models
from ..caffe.executor import Executor
from ..caffe.net import Net
from .classes import sorted_row_order
from .mapping import ConversionError

__all__ = [
    "VerificationError",
    "TOLERANCE",
    "LOGITS_SIZE",
    "FEATURE_SIZE",
    "CAFFE_MEAN_BGR",
    "load_converted",
    "verify_conversion",
    "verify_folder",
    "random_images",
    "feature_net",
]

logger = logging.getLogger(__name__)

TOLERANCE = 1e-4
LOGITS_SIZE = 224
FEATURE_SIZE = 259
CAFFE_MEAN_BGR = (104.0, 117.0, 123.0)


class VerificationError(ConversionError):
    """The converted model does not reproduce the Caffe net within tolerance."""


def random_images(batch: int, size: int, seed: int) -> np.ndarray:
    """Random RGB images, float32 N×3×H×W in 0–255: smooth blobs plus noise, like photos, not white noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (batch, 3, 8, 8)).astype(np.float32)
    smooth = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(size, size), mode="bilinear", align_corners=False
    ).numpy()
    noise = rng.normal(0, 20, (batch, 3, size, size)).astype(np.float32)
    return np.clip(smooth + noise, 0, 255).astype(np.float32)


def caffe_input(rgb: np.ndarray) -> torch.Tensor:
    """What the Caffe models read: BGR, 0–255, per-channel mean subtracted."""
    bgr = rgb[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(bgr - np.array(CAFFE_MEAN_BGR, np.float32)[None, :, None, None]))


def model_input(rgb: np.ndarray, cfg: dict[str, Any]) -> torch.Tensor:
    """The RGB image as a PyTorch pipeline feeds it: /255, then (x − mean) / std from ``pretrained_cfg``."""
    mean = torch.tensor(cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=torch.float32).view(1, 3, 1, 1)
    return (torch.from_numpy(rgb) / 255.0 - mean) / std


def load_converted(weights: str | os.PathLike, arch: str, model_args: dict[str, Any] | None = None) -> torch.nn.Module:
    """``senet_zoo.models.<arch>(**model_args)`` with the converted weights loaded strictly, in eval mode."""
    from safetensors.torch import load_file

    with torch.device("meta"):  # every tensor comes from the file: no random init to throw away
        model = getattr(models, arch)(**(model_args or {}))
    state = load_file(os.fspath(weights))
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise VerificationError(f"{weights}: does not load into {arch}: {err}") from None
    return model.eval()


def feature_net(net: Net) -> tuple[Net, str]:
    """The net cut before ``pool5`` (the last pooling before the classifier) and the blob it pools."""
    ip = max(i for i, layer in enumerate(net.layers) if layer.type == "InnerProduct")
    pool = max(i for i, layer in enumerate(net.layers[:ip]) if layer.type == "Pooling")
    return Net(name=net.name, layers=net.layers[:pool], source=net.source), net.layers[pool].bottoms[0]


def _compare(name: str, ref: torch.Tensor, out: torch.Tensor, size: int, logits: bool) -> dict[str, Any]:
    if ref.shape != out.shape:
        raise VerificationError(
            f"{name} at {size}×{size}: Caffe gives shape {tuple(ref.shape)}, the converted model {tuple(out.shape)}"
        )
    ref64, out64 = ref.double(), out.double()
    max_abs = float((ref64 - out64).abs().max())
    scale = float(ref64.abs().max())
    result = {
        "name": name,
        "size": size,
        "batch": int(ref.shape[0]),
        "shape": list(ref.shape[1:]),
        "max_abs": max_abs,
        "scale": scale,
        "max_rel": max_abs / scale if scale > 0 else max_abs,
        "top1_agreement": None,
    }
    if logits:
        result["top1_agreement"] = float((ref.argmax(1) == out.argmax(1)).double().mean())
    return result


@torch.inference_mode()
def verify_conversion(
    net: Net,
    weights: str | os.PathLike,
    arch: str,
    model_args: dict[str, Any] | None = None,
    *,
    batch: int = 2,
    seed: int = 0,
    tolerance: float = TOLERANCE,
    feature_size: int = FEATURE_SIZE,
) -> dict[str, Any]:
    """Compare Caffe ``net`` (with blobs) and the converted ``weights``; raise :class:`VerificationError`."""
    model = load_converted(weights, arch, model_args)
    cfg = cast(dict[str, Any], model.pretrained_cfg)  # nn.Module attributes are typed Tensor | Module
    order = torch.from_numpy(sorted_row_order())
    checks = []

    rgb = random_images(batch, LOGITS_SIZE, seed)
    caffe_logits = Executor(net)(caffe_input(rgb), outputs=["classifier"])["classifier"]
    if caffe_logits.shape[1] == len(order):
        caffe_logits = caffe_logits[:, order]  # Caffe class k → sorted position idx[k]
    checks.append(_compare("logits", caffe_logits, model(model_input(rgb, cfg)), LOGITS_SIZE, logits=True))

    trunk, blob = feature_net(net)
    rgb = random_images(batch, feature_size, seed + 1)
    caffe_features = Executor(trunk)(caffe_input(rgb), outputs=[blob])[blob]
    checks.append(
        _compare(
            "features",
            caffe_features,
            cast(Any, model).forward_features(model_input(rgb, cfg)),
            feature_size,
            logits=False,
        )
    )

    result = {
        "tolerance": tolerance,
        "dtype": "float32",
        "checks": checks,
        "max_rel": max(c["max_rel"] for c in checks),
    }
    for c in checks:
        logger.info("%s %s at %d: max abs %.3g, max rel %.3g", arch, c["name"], c["size"], c["max_abs"], c["max_rel"])
    bad = [c for c in checks if not c["max_rel"] <= tolerance]
    if bad:
        c = bad[0]
        raise VerificationError(
            f"{weights}: the converted {arch} differs from the Caffe net: {c['name']} at {c['size']}×{c['size']} "
            f"max abs diff {c['max_abs']:.3g}, relative {c['max_rel']:.3g} > tolerance {tolerance:g}"
        )
    return result


def verify_folder(
    folder: str | os.PathLike, caffemodel: str | os.PathLike, prototxt: str | os.PathLike | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Re-verify a converted folder against its caffemodel (and prototxt); also checks the source hash."""
    from .._files import sha256_file
    from .converter import WEIGHTS_FILE, load_caffe

    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (not a converted folder)")
    config = json.loads(config_path.read_text("utf-8"))
    zoo, model_args = config.get("senet_zoo"), config.get("model_args", {})
    if not isinstance(zoo, dict) or "name" not in zoo:
        raise ConversionError(f"{config_path}: no senet_zoo section (not written by senet_zoo's converter)")
    source = load_caffe(caffemodel, prototxt, arch=zoo["name"])
    if source.detection.model_args != model_args:
        raise ConversionError(
            f"{caffemodel}: has {source.detection.model_args or 'the release depth'}, "
            f"{config_path} records {model_args}"
        )
    result = verify_conversion(source.topology, folder / WEIGHTS_FILE, zoo["name"], model_args, **kwargs)
    recorded = zoo.get("source", {}).get("sha256")
    result["source_sha256_matches"] = recorded == sha256_file(caffemodel) if recorded else None
    return result
