"""The converted folder's ``config.json`` (timm's format) and ``README.md`` model card.

The card is rendered from the config alone (:func:`model_card`), so a publisher can re-render it
with the Hub repository id it uploads to. Its front matter is built with huggingface_hub's
``ModelCardData`` / ``EvalResult``.

A card claims the release's reported accuracy (in its text and as ``model-index`` results) only for weights
that are the authors' release: :func:`release_claim` says why not otherwise. The converter knows what it
converted: the verification against the Caffe graph, the full architecture with 1000 classes, and the source
caffemodel's sha256, which must be one the catalog records for the release (``caffemodel_sha256``).
Synthetic or retrained caffemodels convert and verify just as well, but their cards claim nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .._files import write_text_atomic
from .._version import __version__
from ..caffe.synth import ARCHS
from ..catalog import CATALOG
from .classes import sorted_wnids, wnid_lemmas
from .report import ConversionReport

__all__ = [
    "TAG",
    "build_config",
    "write_config",
    "release_claim",
    "card_claims_accuracy",
    "model_card",
    "write_card",
]

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
    timm_legacy = report.timm_legacy
    config: dict[str, Any] = {
        "architecture": timm_legacy or report.arch,
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
        "senet_zoo_version": __version__,
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
    if timm_legacy is None:
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


def release_claim(config: dict[str, Any], release_sha256: frozenset[str] | None = None) -> str | None:
    """None when the folder's weights are the authors' release (its accuracy may be claimed), else why not.

    ``release_sha256`` overrides the catalog's ``caffemodel_sha256`` (tests, a newly checked download).
    """
    zoo = config.get("senet_zoo") or {}
    arch = zoo.get("name")
    if arch not in CATALOG:
        return f"{arch!r} is not one of the SENet releases"
    if not zoo.get("verification"):
        return "the conversion was not verified against the Caffe graph (--no-verify)"
    if config.get("model_args") or config.get("num_classes") != 1000:
        return "the network is not the release's full architecture with 1000 classes"
    digest = (zoo.get("source") or {}).get("sha256")
    known = CATALOG[arch].caffemodel_sha256 if release_sha256 is None else release_sha256
    if digest not in known:
        return (
            f"the source caffemodel (sha256 {digest}) is not a recorded digest of the authors' "
            f"{zoo.get('caffe_name', arch)} release (synthetic or other weights)"
        )
    return None


def card_claims_accuracy(card_text: str) -> bool:
    """Whether a model card's front matter reports evaluation results (``model-index``)."""
    from huggingface_hub import ModelCard

    return bool(getattr(ModelCard(card_text, ignore_metadata_errors=True).data, "eval_results", None))


def _front_matter(name: str, arch: str, claimed: bool) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    release = CATALOG[arch]
    results = [
        EvalResult(
            task_type="image-classification",
            task_name="Image Classification",
            dataset_type="imagenet-1k",
            dataset_name="ImageNet-1k",
            dataset_split="validation",
            metric_type="accuracy",
            metric_name=f"Top-{k} accuracy (reported by the authors, 224 centre crop)",
            metric_value=value,
        )
        for k, value in ((1, release.top1_acc), (5, release.top5_acc))
    ]
    data = ModelCardData(
        library_name="timm",
        license="apache-2.0",
        pipeline_tag="image-classification",
        tags=["image-classification", "timm", "senet-zoo", "squeeze-and-excitation"],
        datasets=["imagenet-1k"],
        model_name=name,
        eval_results=results if claimed else None,
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _accuracy_text(release: Any, reason: str | None) -> str:
    table = (
        "| top-1 acc | top-5 acc | top-1 err | top-5 err |\n|---|---|---|---|\n"
        f"| {release.top1_acc:.2f} | {release.top5_acc:.2f} | {release.top1_err:.2f} | {release.top5_err:.2f} |\n"
    )
    protocol = "ImageNet-1k validation, single 224×224 centre crop of the image resized to 256 on the short side"
    if reason is None:
        return (
            f"## Reported accuracy\n\n{protocol}, as reported by the authors for this Caffe release (these "
            f"weights are that release: the source caffemodel's sha256 is the release's; not re-measured here):\n\n"
            + table
        )
    return (
        f"## Accuracy\n\n**No accuracy is claimed for these weights**: {reason}. For reference only, the "
        f"authors report for their own Caffe release ({protocol}):\n\n" + table
    )


def _measured_text(measured: dict[str, Any] | None) -> str:
    """What ``senet-zoo release --val`` measured for these weights, next to the reported accuracy."""
    if not measured:
        return ""
    return (
        f"\nMeasured by `senet-zoo release` with this model's preprocessing on `{measured['folder']}` "
        f"({measured['images']:,} images, {measured['classes']} classes): top-1 **{measured['top1_acc']:.2f}**, "
        f"top-5 **{measured['top5_acc']:.2f}**.\n"
    )


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


def model_card(
    config: dict[str, Any], repo_id: str | None = None, *, release_sha256: frozenset[str] | None = None
) -> str:
    """The README.md of a converted folder, from its ``config.json`` contents (see :func:`release_claim`)."""
    zoo = config["senet_zoo"]
    reason = release_claim(config, release_sha256)
    origin = (
        "from the authors' original Caffe release"
        if reason is None
        else f"from a caffemodel with the layout of the authors' release (`{zoo['source']['file']}`, see Provenance)"
    )
    arch, caffe_name = zoo["name"], zoo["caffe_name"]
    release = CATALOG[arch]
    name = f"{arch}.{zoo['tag']}"
    timm_legacy = release.timm_legacy
    hub = f"hf-hub:{repo_id}" if repo_id else None
    timm_usage = (
        f'model = timm.create_model("{hub}", pretrained=True)'
        if hub
        else f'model = timm.create_model("{timm_legacy or arch}", pretrained=True,\n'
        f'                          pretrained_cfg_overlay=dict(file="model.safetensors"))'
    )
    needs_zoo = "" if timm_legacy else "import senet_zoo  # registers se_bn_inception with timm\n"
    timm_note = (
        f"The weights use the key layout of timm's `{timm_legacy}`, so plain timm loads them."
        if timm_legacy
        else "timm has no SE-BN-Inception: install senet_zoo, whose import registers it."
    )
    src = zoo["source"]
    version = f" {zoo['senet_zoo_version']}" if "senet_zoo_version" in zoo else ""  # older folders lack it
    args = "".join(f", {k}={v}" for k, v in config.get("model_args", {}).items())
    notes = "".join(f"- note: {note}\n" for note in zoo.get("notes", []))
    return (
        _front_matter(name, arch, claimed=reason is None)
        + f"""
# {name}

**{caffe_name}** from *Squeeze-and-Excitation Networks* (Hu et al.), converted {origin} to PyTorch
by senet_zoo{version} (converter {zoo["converter_version"]}).
The values are the Caffe model's, rearranged: each BatchNorm's statistics divided by Caffe's scale
factor and merged with the Scale layer that follows it into one BatchNorm2d, the first convolution's
input channels reversed (BGR → RGB) and the classifier rows reordered to sorted-WNID class order.

{_accuracy_text(release, reason)}{_measured_text(zoo.get("measured"))}
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
    """Write :func:`model_card` to ``path`` atomically."""
    write_text_atomic(path, model_card(config, repo_id))
