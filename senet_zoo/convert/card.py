"""The converted folder's ``config.json`` (timm's format) and ``README.md`` model card.

The card is rendered from the config alone (:func:`model_card`), so a publisher can re-render it
with the Hub repository id it uploads to.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from .._files import write_text_atomic
from ..caffe.synth import ARCHS
from ..catalog import CATALOG as RELEASES
from .classes import sorted_wnids, wnid_lemmas

if TYPE_CHECKING:
    from .converter import ConversionReport

__all__ = ["TAG", "build_config", "write_config", "model_card", "write_card"]

TAG = "caffe_in1k"
MEAN = (123 / 255, 117 / 255, 104 / 255)  # RGB; the Caffe models subtract BGR (104, 117, 123) from 0–255
STD = (1 / 255, 1 / 255, 1 / 255)
BIBTEX = """@article{hu2020senet,
  title   = {Squeeze-and-Excitation Networks},
  author  = {Hu, Jie and Shen, Li and Albanie, Samuel and Sun, Gang and Wu, Enhua},
  journal = {IEEE Transactions on Pattern Analysis and Machine Intelligence},
  volume  = {42},
  number  = {8},
  pages   = {2011--2023},
  year    = {2020},
  note    = {Conference version: CVPR 2018. arXiv:1709.01507}
}"""


def build_config(report: ConversionReport, *, num_classes: int, num_features: int, first_conv: str) -> dict[str, Any]:
    """timm-style config: ``architecture``, ``pretrained_cfg``, labels, and a ``senet_zoo`` provenance block."""
    timm_arch = report.timm_arch
    config: dict[str, Any] = {
        "architecture": timm_arch or report.arch,
        "num_classes": num_classes,
        "num_features": num_features,
        "pretrained_cfg": {
            "tag": TAG,
            "custom_load": False,
            "input_size": [3, 224, 224],
            "fixed_input_size": False,
            "interpolation": "bilinear",
            "crop_pct": 0.875,
            "crop_mode": "center",
            "mean": list(MEAN),
            "std": list(STD),
            "num_classes": num_classes,
            "pool_size": [7, 7],
            "first_conv": first_conv,
            "classifier": "last_linear",
            "license": "apache-2.0",
        },
    }
    if report.model_args:  # timm passes these to the architecture (a net with fewer blocks per stage)
        config["model_args"] = report.model_args
    if num_classes == 1000:
        names = sorted_wnids()
        config["label_names"] = names
        config["label_descriptions"] = wnid_lemmas(names)
    zoo: dict[str, Any] = {
        "name": report.arch,
        "tag": TAG,
        "caffe_name": ARCHS[report.arch].caffe_name,
        "converter_version": report.converter_version,
        "source": {"file": report.source_file, "sha256": report.source_sha256, "bytes": report.source_bytes},
        "weights": {
            "file": "model.safetensors",
            "sha256": report.weights_sha256,
            "bytes": report.weights_bytes,
            "tensors": report.tensors,
            "parameters": report.parameters,
        },
        "class_order": "sorted WNIDs (label_names); the Caffe release used ILSVRC2012 devkit order, "
        "the classifier rows were permuted",
        "input": "RGB; the first convolution's input channels were reversed from the Caffe model's BGR",
    }
    if timm_arch is None:
        zoo["requires"] = (
            f"senet_zoo: timm has no {report.arch}; `import senet_zoo` registers it with timm (pip install senet-zoo)"
        )
    if report.notes:
        zoo["notes"] = list(report.notes)
    if report.verification is not None:
        zoo["verification"] = report.verification
    config["senet_zoo"] = zoo
    return config


def write_config(path: str | os.PathLike, config: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _front_matter(name: str, arch: str) -> str:
    release = RELEASES[arch]
    return f"""---
library_name: timm
license: apache-2.0
pipeline_tag: image-classification
tags:
- image-classification
- timm
- senet-zoo
- squeeze-and-excitation
datasets:
- imagenet-1k
model-index:
- name: {name}
  results:
  - task:
      type: image-classification
      name: Image Classification
    dataset:
      name: ImageNet-1k
      type: imagenet-1k
      split: validation
    metrics:
    - type: accuracy
      name: Top-1 accuracy (reported by the authors, 224 centre crop)
      value: {release.top1_acc}
    - type: accuracy
      name: Top-5 accuracy (reported by the authors, 224 centre crop)
      value: {release.top5_acc}
---
"""


def _verification_text(verification: dict[str, Any] | None) -> str:
    if not verification:
        return "This folder was converted without verification (`--no-verify`).\n"
    rows = ["| output | input | max abs diff | max rel diff | top-1 agreement |", "|---|---|---|---|---|"]
    for check in verification["checks"]:
        agree = f"{check['top1_agreement']:.0%}" if check.get("top1_agreement") is not None else "–"
        rows.append(
            f"| {check['name']} | {check['batch']}×3×{check['size']}×{check['size']} | "
            f"{check['max_abs']:.3g} | {check['max_rel']:.3g} | {agree} |"
        )
    return (
        f"The Caffe net (run by senet_zoo's independent Caffe executor) and this model were fed the same "
        f"random images (BGR minus mean for Caffe, the RGB image normalised with this config for the model). "
        f"Relative differences are max |diff| / max |Caffe output|; the conversion fails above "
        f"{verification['tolerance']:g}.\n\n" + "\n".join(rows) + "\n"
    )


def model_card(config: dict[str, Any], repo_id: str | None = None) -> str:
    """The README.md of a converted folder, from its ``config.json`` contents."""
    zoo = config["senet_zoo"]
    arch, caffe_name = zoo["name"], zoo["caffe_name"]
    release = RELEASES[arch]
    name = f"{arch}.{zoo['tag']}"
    timm_arch = release.timm_arch
    hub = f"hf-hub:{repo_id}" if repo_id else None
    timm_usage = (
        f'model = timm.create_model("{hub}", pretrained=True)'
        if hub
        else f'model = timm.create_model("{timm_arch or arch}", pretrained=True,\n'
        f'                          pretrained_cfg_overlay=dict(file="model.safetensors"))'
    )
    needs_zoo = "" if timm_arch else "import senet_zoo  # registers se_bn_inception with timm\n"
    timm_note = (
        f"The weights use the key layout of timm's `{timm_arch}`, so plain timm loads them."
        if timm_arch
        else "timm has no SE-BN-Inception: install senet_zoo, whose import registers it."
    )
    src = zoo["source"]
    args = "".join(f", {k}={v}" for k, v in config.get("model_args", {}).items())
    notes = "".join(f"- note: {note}\n" for note in zoo.get("notes", []))
    return (
        _front_matter(name, arch)
        + f"""
# {name}

**{caffe_name}** from *Squeeze-and-Excitation Networks* (Hu et al.), converted from the authors'
original Caffe release to PyTorch by senet_zoo (converter {zoo["converter_version"]}).
The values are the Caffe model's, rearranged: each BatchNorm's statistics divided by Caffe's scale
factor and merged with the Scale layer that follows it into one BatchNorm2d, the first convolution's
input channels reversed (BGR → RGB) and the classifier rows reordered to sorted-WNID class order.

## Reported accuracy

ImageNet-1k validation, single 224×224 centre crop of the image resized to 256 on the short side, as
reported by the authors for this Caffe release (not re-measured here):

| top-1 acc | top-5 acc | top-1 err | top-5 err |
|---|---|---|---|
| {release.top1_acc:.2f} | {release.top5_acc:.2f} | {release.top1_err:.2f} | {release.top5_err:.2f} |

## Preprocessing

RGB input, resize to 256 (bilinear), centre crop 224 (`crop_pct` 0.875), pixel values in 0–255 minus
the mean (123, 117, 104), no division by a standard deviation. In timm terms: `mean = (123, 117, 104) / 255`,
`std = (1/255, 1/255, 1/255)` on a 0–1 tensor — exactly the Caffe models' BGR mean subtraction.

## Class order

Outputs follow the sorted-WNID order of torchvision's `ImageFolder` and timm (class 0 = n01440764,
tench); `label_names` and `label_descriptions` in `config.json` list them. The Caffe release used the
ILSVRC2012 devkit order (its output 0 is n02119789, kit fox); the classifier rows were permuted.

## Usage

```python
import senet_zoo
model = senet_zoo.create_model("{arch}", pretrained="model.safetensors"{args}).eval()
```

```python
import torch
model = torch.hub.load("path/to/senet-zoo", "{arch}", source="local", pretrained="model.safetensors"{args})
```

```python
import timm
{needs_zoo}{timm_usage}
```

{timm_note}

## Verification

{_verification_text(zoo.get("verification"))}
## Provenance

- source: `{src["file"]}` (sha256 `{src["sha256"]}`, {src["bytes"]:,} bytes)
- weights: `model.safetensors` (sha256 `{zoo["weights"]["sha256"]}`, {zoo["weights"]["parameters"]:,} parameters)
- original models and prototxts: https://github.com/hujie-frank/SENet
{notes}
## License

Apache-2.0, the license under which the authors released the SENet models.

## Citation

```bibtex
{BIBTEX}
```
"""
    )


def write_card(path: str | os.PathLike, config: dict[str, Any], repo_id: str | None = None) -> None:
    write_text_atomic(path, model_card(config, repo_id))
