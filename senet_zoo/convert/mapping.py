"""Where each Caffe blob goes: layer-name rules per family and the tensor plan they produce.

Convolution and InnerProduct layers are matched by name against a family's rules, each giving the
PyTorch module of the weights and, for a convolution, of the BatchNorm that follows it. BatchNorm
and Scale layers are followed through the graph (the BatchNorm reads the convolution's output, the
Scale the BatchNorm's, in place), so one BatchNorm2d receives both: ``running_mean = blob0 / s``,
``running_var = blob1 / s`` (``s`` = blob2, 0 when ``s`` is 0), ``weight, bias`` = the Scale's blobs.
Key names are timm's legacy SENet layout (``layer0.conv1``, ``layer1.0.se_module.fc1``,
``downsample.0``, ``last_linear``) and senet_zoo's SE-BN-Inception.

Every blob gets exactly one destination; a blob without one, or a layer kind the rules do not
know, is a :class:`ConversionError` naming the layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..caffe.net import Layer, Net

__all__ = ["ConversionError", "Rule", "PlannedTensor", "FAMILY_RULES", "TORCH_BN_EPS", "match_rule", "plan_tensors"]

TORCH_BN_EPS = 1e-5  # nn.BatchNorm2d's default, and Caffe's


class ConversionError(ValueError):
    """A Caffe file that cannot become a senet_zoo model; the message names the file and the layer."""


@dataclass(frozen=True)
class Rule:
    """``caffe``: regex on the layer name; ``module``/``bn``: format strings over its named groups.

    Groups named ``stage`` and ``block`` are Caffe's 1-based numbers (``conv2_1`` = first block of
    the first stage) and are formatted 0-based, as PyTorch indexes ``layer1.0``.
    """

    caffe: str
    module: str
    bn: str | None = None
    classifier: bool = False

    def targets(self, name: str) -> tuple[str, str | None] | None:
        match = re.fullmatch(self.caffe, name)
        if match is None:
            return None
        fields = {k: int(v) - 1 if k in ("stage", "block") else v for k, v in match.groupdict().items()}
        return self.module.format(**fields), self.bn.format(**fields) if self.bn else None


_BLOCK = r"conv(?P<stage>\d)_(?P<block>\d+)"
_RESNET_RULES = (
    Rule(r"conv1/7x7_s2", "layer0.conv1", "layer0.bn1"),
    Rule(r"conv1_(?P<n>[123])/3x3(?:_s2)?", "layer0.conv{n}", "layer0.bn{n}"),
    Rule(_BLOCK + "_1x1_reduce", "layer{stage}.{block}.conv1", "layer{stage}.{block}.bn1"),
    Rule(_BLOCK + "_3x3", "layer{stage}.{block}.conv2", "layer{stage}.{block}.bn2"),
    Rule(_BLOCK + "_1x1_increase", "layer{stage}.{block}.conv3", "layer{stage}.{block}.bn3"),
    Rule(_BLOCK + "_1x1_proj", "layer{stage}.{block}.downsample.0", "layer{stage}.{block}.downsample.1"),
    Rule(_BLOCK + "_1x1_down", "layer{stage}.{block}.se_module.fc1"),
    Rule(_BLOCK + "_1x1_up", "layer{stage}.{block}.se_module.fc2"),
    Rule("classifier", "last_linear", classifier=True),
)
_MODULE = r"inception_(?P<m>\d[a-e])"
_BRANCHES = {
    "1x1": "branch1x1",
    "3x3_reduce": "branch3x3_reduce",
    "3x3": "branch3x3",
    "double3x3_reduce": "double3x3_reduce",
    "double3x3a": "double3x3a",
    "double3x3b": "double3x3b",
    "pool_proj": "pool_proj",
}
_INCEPTION_RULES = (
    Rule(r"conv1/7x7_s2", "conv1.conv", "conv1.bn"),
    Rule(r"conv2/3x3_reduce", "conv2_reduce.conv", "conv2_reduce.bn"),
    Rule(r"conv2/3x3", "conv2.conv", "conv2.bn"),
    *(
        Rule(f"{_MODULE}/{caffe}", f"inception{{m}}.{torch}.conv", f"inception{{m}}.{torch}.bn")
        for caffe, torch in _BRANCHES.items()
    ),
    Rule(_MODULE + "_1x1_down", "inception{m}.se.fc1"),
    Rule(_MODULE + "_1x1_up", "inception{m}.se.fc2"),
    Rule("classifier", "last_linear", classifier=True),
)
FAMILY_RULES: dict[str, tuple[Rule, ...]] = {"senet": _RESNET_RULES, "inception": _INCEPTION_RULES}


def match_rule(rules: Iterable[Rule], name: str) -> tuple[Rule, str, str | None] | None:
    """The first rule matching Caffe layer ``name`` with its (module, bn module), or None."""
    for rule in rules:
        targets = rule.targets(name)
        if targets is not None:
            return rule, *targets
    return None


@dataclass(frozen=True)
class PlannedTensor:
    """A row of the conversion plan: one state-dict entry and where its values come from.

    ``kind``: ``copy`` (blob as is), ``bn_mean``/``bn_var`` (blob divided by the layer's blob 2,
    the variance also corrected for a BatchNorm eps other than PyTorch's), ``count`` (the zero
    ``num_batches_tracked``, no blob). ``flip_in``: reverse input channels (BGR → RGB);
    ``permute_rows``: reorder output rows from Caffe's class order to sorted WNIDs.
    """

    key: str
    layer: str
    blob: int
    shape: tuple[int, ...]
    kind: str = "copy"
    flip_in: bool = False
    permute_rows: bool = False
    eps: float = TORCH_BN_EPS
    dtype: str = field(default="F32")


def _producers(net: Net) -> dict[str, dict[str, str]]:
    """For each layer, which layer last wrote each of its bottoms (in-place chains included)."""
    last: dict[str, str] = {}
    result: dict[str, dict[str, str]] = {}
    for layer in net.layers:
        result[layer.name] = {b: last[b] for b in layer.bottoms if b in last}
        for top in layer.tops:
            last[top] = layer.name
    return result


def plan_tensors(
    net: Net, shapes: dict[str, list[tuple[int, ...]]], rules: Iterable[Rule], num_classes_to_permute: int = 1000
) -> list[PlannedTensor]:
    """Map every blob of ``net`` (shapes per layer name, in Caffe's blob order) to a state-dict tensor.

    ``net`` supplies the layer names, types and wiring; ``shapes`` the blobs actually present.
    Tensors come in the order of the blobs in the net (sequential reads of the caffemodel).
    Raises :class:`ConversionError` for a blob that has no destination.
    """
    planner = _Planner(net, tuple(rules), num_classes_to_permute)
    for layer in net.layers:
        blobs = shapes.get(layer.name, [])
        if layer.type in ("Convolution", "InnerProduct"):
            planner.weights(layer, blobs)
        elif layer.type == "BatchNorm":
            planner.batch_norm(layer, blobs)
        elif layer.type == "Scale" and blobs:
            planner.scale(layer, blobs)
        elif blobs:
            raise planner.fail(layer.name, f"{len(blobs)} blob(s) in a layer type the converter has no destination for")
    seen: dict[str, str] = {}
    for t in planner.tensors:
        if t.key in seen:
            raise planner.fail(t.layer, f"maps to {t.key}, which layer {seen[t.key]!r} already fills")
        seen[t.key] = t.layer
    return planner.tensors


class _Planner:
    """The tensors of :func:`plan_tensors`, layer by layer: a BatchNorm belongs to the convolution it
    follows, a Scale to the BatchNorm it follows."""

    def __init__(self, net: Net, rules: tuple[Rule, ...], num_classes_to_permute: int) -> None:
        self.rules, self.num_classes = rules, num_classes_to_permute
        self.where = net.source or net.name
        self.producers = _producers(net)
        self.inputs = {top for layer in net.layers if layer.type in ("Input", "Data") for top in layer.tops}
        self.types = {layer.name: layer.type for layer in net.layers}
        self.bn_module: dict[str, str] = {}  # BatchNorm layer name → its BatchNorm2d
        self.conv_bn: dict[str, str | None] = {}  # Convolution layer name → BatchNorm2d that follows it
        self.tensors: list[PlannedTensor] = []

    def fail(self, layer: str, message: str) -> ConversionError:
        return ConversionError(f"{self.where}: layer {layer!r} ({self.types.get(layer, '?')}): {message}")

    def _source_of(self, layer: Layer) -> str | None:
        return self.producers[layer.name].get(layer.bottoms[0]) if layer.bottoms else None

    def weights(self, layer: Layer, blobs: list[tuple[int, ...]]) -> None:
        name = layer.name
        found = match_rule(self.rules, name)
        if found is None:
            if blobs:
                raise self.fail(name, f"{len(blobs)} blob(s) but no rule maps this layer name to the model")
            return
        rule, module, bn = found
        self.conv_bn[name] = bn
        if not blobs:
            return  # a missing blob is reported as a missing tensor, naming this layer
        if len(blobs) > 2:
            raise self.fail(name, f"{len(blobs)} blobs; a {layer.type} has a weight and at most a bias")
        permute = rule.classifier and blobs[0][0] == self.num_classes
        flip = layer.type == "Convolution" and bool(layer.bottoms) and layer.bottoms[0] in self.inputs
        self.tensors.append(PlannedTensor(f"{module}.weight", name, 0, blobs[0], flip_in=flip, permute_rows=permute))
        if len(blobs) == 2:
            self.tensors.append(PlannedTensor(f"{module}.bias", name, 1, blobs[1], permute_rows=permute))

    def batch_norm(self, layer: Layer, blobs: list[tuple[int, ...]]) -> None:
        name, conv = layer.name, self._source_of(layer)
        bn = self.conv_bn.get(conv) if conv else None
        if bn is None:
            if not blobs:
                return
            raise self.fail(
                name, f"normalizes the output of {conv!r}, which is not a convolution with a BatchNorm in the model"
            )
        self.bn_module[name] = bn
        if not blobs:
            return
        if len(blobs) != 3:
            raise self.fail(name, f"{len(blobs)} blobs; Caffe's BatchNorm stores [mean·s, var·s, s]")
        eps = float(layer.param("batch_norm_param").get("eps", TORCH_BN_EPS))
        self.tensors += [
            PlannedTensor(f"{bn}.running_mean", name, 0, blobs[0], kind="bn_mean"),
            PlannedTensor(f"{bn}.running_var", name, 1, blobs[1], kind="bn_var", eps=eps),
            PlannedTensor(f"{bn}.num_batches_tracked", name, -1, (), kind="count", dtype="I64"),
        ]

    def scale(self, layer: Layer, blobs: list[tuple[int, ...]]) -> None:
        norm = self._source_of(layer)
        bn = self.bn_module.get(norm) if norm else None
        if bn is None:
            raise self.fail(
                layer.name, f"{len(blobs)} blob(s), but it does not follow a BatchNorm (its input comes from {norm!r})"
            )
        if len(blobs) > 2:
            raise self.fail(layer.name, f"{len(blobs)} blobs; a Scale has gamma and at most beta")
        self.tensors.append(PlannedTensor(f"{bn}.weight", layer.name, 0, blobs[0]))
        if len(blobs) == 2:
            self.tensors.append(PlannedTensor(f"{bn}.bias", layer.name, 1, blobs[1]))
