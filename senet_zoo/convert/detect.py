"""Which SENet release a caffemodel is: by its net name, else by its structure; checked blob by blob.

A candidate architecture is synthesized (:func:`senet_zoo.caffe.synth.synth_net`, layer for layer
the released prototxt) and its expected blob shapes compared with the caffemodel's: every layer
with blobs must exist on both sides with the same number of blobs and the same shapes (singleton
axes aside: old files store a bias as 1×1×1×C). The net name orders the candidates; the releases'
own depths are tried before a candidate at the caffemodel's counted blocks per stage (a reduced
test net, recorded as ``model_args``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..caffe.executor import param_shapes
from ..caffe.net import Net
from ..caffe.synth import ARCHS, synth_net
from .mapping import ConversionError

__all__ = ["Detection", "detect_architecture", "blob_differences", "count_blocks", "normalize_name"]

Shapes = dict[str, list[tuple[int, ...]]]
_MAX_LISTED = 3


@dataclass
class Detection:
    arch: str  # senet_zoo model name, a key of synth.ARCHS
    layers: tuple[int, ...] | None  # blocks per stage when they differ from the release
    expected: Net  # the synthesized net (structure only)
    shapes: Shapes  # its blob shapes per layer
    notes: list[str] = field(default_factory=list)

    @property
    def model_args(self) -> dict[str, list[int]]:
        return {} if self.layers is None else {"layers": list(self.layers)}


def normalize_name(name: str) -> str:
    """``"SE-ResNeXt-50 (32 x 4d)"`` → ``"seresnext5032x4d"``: compares release and model names."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def blob_differences(expected: Shapes, actual: Shapes, expected_types: dict[str, str]) -> list[str]:
    """Human-readable differences between two nets' blob shapes, in the expected net's layer order."""
    problems = []
    for name, shapes in expected.items():
        if name not in actual:
            problems.append(f"layer {name!r} ({expected_types[name]}) is missing: expected blobs {shapes}")
            continue
        got = actual[name]
        if len(got) != len(shapes):
            problems.append(f"layer {name!r} has {len(got)} blob(s) {got}, expected {len(shapes)}: {shapes}")
            continue
        for i, (a, b) in enumerate(zip(got, shapes)):
            if _squeeze(a) != _squeeze(b):
                problems.append(f"layer {name!r} blob {i} has shape {a}, expected {b}")
    for name, shapes in actual.items():
        if name not in expected:
            problems.append(f"layer {name!r} carries {len(shapes)} blob(s) {shapes} that have no place in the model")
    return problems


def count_blocks(names: list[str]) -> tuple[int, ...] | None:
    """Blocks per stage from ``conv<stage>_<block>_*`` layer names (stages 2–5), or None."""
    found: dict[int, int] = {}
    for name in names:
        m = re.match(r"conv([2-5])_(\d+)_", name)
        if m:
            stage, block = int(m.group(1)), int(m.group(2))
            found[stage] = max(found.get(stage, 0), block)
    if sorted(found) != [2, 3, 4, 5]:
        return None
    return tuple(found[s] for s in (2, 3, 4, 5))


def _candidates(net_name: str, arch: str | None) -> list[str]:
    if arch is not None:
        if arch not in ARCHS:
            raise ConversionError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
        return [arch]
    key = normalize_name(net_name)
    named = [a for a, spec in ARCHS.items() if key in (normalize_name(spec.caffe_name), normalize_name(a))]
    return named + [a for a in ARCHS if a not in named]


def _expected(arch: str, layers: tuple[int, ...] | None) -> tuple[Net, Shapes]:
    net = synth_net(arch, layers=layers, blobs=False)
    return net, param_shapes(net)


def detect_architecture(net_name: str, actual: Shapes, *, arch: str | None = None, where: str = "") -> Detection:
    """Identify the release whose blobs ``actual`` (layer → blob shapes) holds, or raise naming a layer.

    ``arch`` forces the architecture (the blobs must still match it). Otherwise the architecture
    named by ``net_name`` is tried first, then every other one.
    """
    candidates = _candidates(net_name, arch)
    counted = count_blocks(list(actual))
    attempts: list[tuple[str, tuple[int, ...] | None, list[str]]] = []
    # A release's own depth first (any candidate), then the candidates at the counted depth.
    options = [(c, None) for c in candidates] + [
        (c, counted) for c in candidates if ARCHS[c].block != "inception" and counted and counted != ARCHS[c].layers
    ]
    for candidate, layers in options:
        expected, shapes = _expected(candidate, layers)
        types = {layer.name: layer.type for layer in expected.layers}
        problems = blob_differences(shapes, actual, types)
        if not problems:
            detection = Detection(candidate, layers, expected, shapes)
            named = normalize_name(net_name)
            if named and named not in (normalize_name(ARCHS[candidate].caffe_name), normalize_name(candidate)):
                detection.notes.append(f"the net is named {net_name!r} but its blobs are those of {candidate}")
            return detection
        attempts.append((candidate, layers, problems))
    first_named = arch is not None or normalize_name(net_name) in {
        k for a, s in ARCHS.items() for k in (normalize_name(s.caffe_name), normalize_name(a))
    }
    pool = [a for a in attempts if a[0] == candidates[0]] if first_named else attempts
    candidate, layers, problems = min(pool, key=lambda a: len(a[2]))
    depth = f" with {list(layers)} blocks per stage" if layers else ""
    more = f" (and {len(problems) - 1} more difference(s))" if len(problems) > 1 else ""
    listed = "; ".join(problems[:_MAX_LISTED])
    if arch is not None:
        head = f"{where}: does not match architecture {arch}{depth}"
    elif first_named:
        head = f"{where}: the net is named {net_name!r} but does not match {candidate}{depth}"
    else:
        head = f"{where}: not one of the SENet releases (closest: {candidate}{depth})"
    raise ConversionError(f"{head}: {listed}{more}")
