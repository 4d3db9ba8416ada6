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

The decision is made in float64: the executor and the converted model both run in float64 on the
same float32 parameter values (the converter's rescaling of BatchNorm statistics is the float32
arithmetic Caffe itself does, and the executor does it the same way), so a correct conversion differs
only by float64 summation order: ~1e-15 of the output's scale on well-conditioned weights, up to
~3e-11 when BatchNorm statistics that do not fit the input blow activations up to 10³ (measured on
reduced nets of every family). The tolerance is 1e-9 (a wrong eps, pooling rule, channel or class
order moves outputs by 1e-6 or much more), raised only for a net so ill-conditioned that float64
rounding itself could approach it: rounding errors scale with the unit roundoff, so the float64
error of a correct conversion is about 2⁻²⁹ times the float32 model's difference from the same
float64 reference; the tolerance is at least 64 times that. A semantic error of relative size δ
shows in both differences, so it is caught whenever δ exceeds ~1.2e-7 times the float32 rounding
effect: it cannot hide. The float32 model's differences are also reported for information; on
ill-conditioned weights rounding alone moves a correct float32 model by 1e-4 and more (real Caffe's
float32 output differs from float64 by 3.5e-4), which is why float32 does not decide. One exception:
a BatchNorm eps other than PyTorch's 1e-5 is folded into ``running_var`` in float32, which rounds;
then the floor is 1e-6 (that rounding, 6e-8 relative per variance, through a deep net) and the
result says so.

Differences are reported as max |diff| and max |diff| / max |Caffe output| (relative to the
output's scale).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._files import sha256_file
from .._log import get_logger
from ..caffe.executor import Executor
from ..caffe.net import Net
from ..catalog import CATALOG
from .classes import sorted_row_order
from .mapping import ConversionError
from .report import CONFIG_FILE, WEIGHTS_FILE
from .source import load_caffe

__all__ = [
    "VerificationError",
    "TOLERANCE",
    "FOLDED_EPS_TOLERANCE",
    "LOGITS_SIZE",
    "FEATURE_SIZE",
    "CAFFE_MEAN_BGR",
    "load_converted",
    "verify_conversion",
    "verify_folder",
    "random_images",
    "feature_net",
]

logger = get_logger(__name__)

TOLERANCE = 1e-9  # float64 executor vs float64 model, relative to max |output|
FOLDED_EPS_TOLERANCE = 1e-6  # when a BatchNorm eps ≠ 1e-5 was folded (rounded) into running_var
ROUNDOFF_RATIO = 2.0**-29  # float64 / float32 unit roundoff
ROUNDING_MARGIN = 64.0
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


def caffe_input(rgb: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """What the Caffe models read: BGR, 0–255, per-channel mean subtracted."""
    bgr = torch.from_numpy(np.ascontiguousarray(rgb[:, ::-1])).to(dtype)
    return bgr - torch.tensor(CAFFE_MEAN_BGR, dtype=dtype).view(1, 3, 1, 1)


def model_input(rgb: np.ndarray, cfg: dict[str, Any], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The RGB image as a PyTorch pipeline feeds it: /255, then (x − mean) / std from ``pretrained_cfg``."""
    mean = torch.tensor(cfg["mean"], dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=dtype).view(1, 3, 1, 1)
    return (torch.from_numpy(rgb).to(dtype) / 255.0 - mean) / std


def load_converted(weights: str | os.PathLike, arch: str, model_args: dict[str, Any] | None = None) -> torch.nn.Module:
    """The model ``arch`` (with ``model_args``) as ``timm.create_model`` builds it, with the converted
    weights loaded strictly, in eval mode.

    Built through timm's registry, where ``import senet_zoo`` registered every model: the conversion
    step stays below the models in the data flow, and what is verified is the model users load.
    """
    import timm
    from safetensors.torch import load_file

    with torch.device("meta"):  # every tensor comes from the file: no random init to throw away
        model = timm.create_model(CATALOG[arch].timm_name, **(model_args or {}))
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
    tolerance: float | None = None,
    feature_size: int = FEATURE_SIZE,
) -> dict[str, Any]:
    """Compare Caffe ``net`` (with blobs) and the converted ``weights`` in float64; raise
    :class:`VerificationError` above ``tolerance`` (default :data:`TOLERANCE`, or
    :data:`FOLDED_EPS_TOLERANCE` when a BatchNorm eps had to be folded). The float32 model's
    differences from the same float64 reference are reported under ``float32``, for information."""
    folded = [
        layer.name
        for layer in net.layers
        if layer.type == "BatchNorm" and float(layer.param("batch_norm_param").get("eps", 1e-5)) != 1e-5
    ]
    if tolerance is None:
        tolerance = FOLDED_EPS_TOLERANCE if folded else TOLERANCE
    model32 = load_converted(weights, arch, model_args)
    model64 = load_converted(weights, arch, model_args).double()
    from .card import MEAN, STD

    cfg: dict[str, Any] = {"mean": MEAN, "std": STD}  # the preprocessing config.json gives converted weights
    order = torch.from_numpy(sorted_row_order())
    executor = Executor(net, dtype=torch.float64)
    checks, checks32 = [], []

    rgb = random_images(batch, LOGITS_SIZE, seed)
    caffe_logits = executor(caffe_input(rgb, torch.float64), outputs=["classifier"])["classifier"]
    if caffe_logits.shape[1] == len(order):
        caffe_logits = caffe_logits[:, order]  # Caffe class k → sorted position idx[k]
    checks.append(_compare("logits", caffe_logits, model64(model_input(rgb, cfg, torch.float64)), LOGITS_SIZE, True))
    checks32.append(_compare("logits", caffe_logits, model32(model_input(rgb, cfg)), LOGITS_SIZE, True))
    del caffe_logits

    trunk, blob = feature_net(net)
    rgb = random_images(batch, feature_size, seed + 1)
    caffe_features = Executor(trunk, dtype=torch.float64)(caffe_input(rgb, torch.float64), outputs=[blob])[blob]
    features64 = model64.forward_features(model_input(rgb, cfg, torch.float64))  # type: ignore[operator]
    checks.append(_compare("features", caffe_features, features64, feature_size, logits=False))
    del features64
    features32 = model32.forward_features(model_input(rgb, cfg))  # type: ignore[operator]
    checks32.append(_compare("features", caffe_features, features32, feature_size, logits=False))

    result = {
        "tolerance": tolerance,
        "dtype": "float64",
        "checks": checks,
        "max_rel": max(c["max_rel"] for c in checks),
        "float32": {"checks": checks32, "max_rel": max(c["max_rel"] for c in checks32), "decides": False},
    }
    if folded:
        result["folded_eps_layers"] = len(folded)
    for c, c32 in zip(checks, checks32):
        logger.info(
            "%s %s at %d: float64 max rel %.3g (float32 model: %.3g)",
            arch,
            c["name"],
            c["size"],
            c["max_rel"],
            c32["max_rel"],
        )
    for c, c32 in zip(checks, checks32):  # see the module docstring: never below ``tolerance``
        c["tolerance"] = max(tolerance, ROUNDING_MARGIN * ROUNDOFF_RATIO * c32["max_rel"])
    bad = [c for c in checks if not c["max_rel"] <= c["tolerance"]]
    if bad:
        c = bad[0]
        raise VerificationError(
            f"{weights}: the converted {arch} differs from the Caffe net: {c['name']} at {c['size']}×{c['size']} "
            f"max abs diff {c['max_abs']:.3g}, relative {c['max_rel']:.3g} > tolerance {c['tolerance']:.3g} "
            "(float64)"
        )
    return result


def verify_folder(
    folder: str | os.PathLike, caffemodel: str | os.PathLike, prototxt: str | os.PathLike | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Re-verify a converted folder against its caffemodel (and prototxt); also checks the source hash."""

    folder = Path(folder)
    config_path = folder / CONFIG_FILE
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
