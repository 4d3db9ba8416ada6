"""The package's import graph: layers in the README's data-flow order, no cycles, cheap numpy-only steps.

Every ``import`` / ``from ... import`` of ``senet_zoo`` in ``senet_zoo/`` is read with ``ast``, those inside
functions included (a deferred import is still a dependency). A module may import its own layer or a
lower one, never a higher one, and no set of modules may import each other round in a circle.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "senet_zoo"

# Lowest first. The data flow caffe (read) → convert → hub (publish / fetch) → models (build) →
# registry (name it), with the plain-data foundations below it, what uses the named models above it,
# `release` (convert + hub + publish) on top of the library, then the command-line handlers and the
# package's public API. A module belongs to the first layer one of whose patterns it matches
# (`x` matches `x` and `x.*`).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("senet_zoo._version", "senet_zoo._files", "senet_zoo._lazy", "senet_zoo._redact",
                    "senet_zoo._log", "senet_zoo.catalog", "senet_zoo.preprocessing")),
    ("commands", ("senet_zoo.cli", "senet_zoo._cli_helpers", "senet_zoo.commands", "senet_zoo.*.commands",
                  "senet_zoo.export_commands", "senet_zoo.demo")),
    ("caffe", ("senet_zoo.caffe",)),
    ("convert", ("senet_zoo.convert",)),
    ("hub", ("senet_zoo.hub",)),
    ("models", ("senet_zoo.models", "senet_zoo.resolve")),
    ("registry", ("senet_zoo.registry", "senet_zoo.weights")),
    ("use", ("senet_zoo.inference", "senet_zoo.export", "senet_zoo.finetune", "senet_zoo.analysis")),
    ("release", ("senet_zoo.release",)),
    ("api", ("senet_zoo",)),
]  # fmt: skip
ORDER = ["foundation", "caffe", "convert", "hub", "models", "registry", "use", "release", "commands", "api"]


def _matches(module: str, pattern: str) -> bool:
    if pattern == "senet_zoo":
        return module == "senet_zoo"
    if "*" in pattern:
        head, tail = pattern.split("*")
        return module.startswith(head) and module.endswith(tail)
    return module == pattern or module.startswith(pattern + ".")


def layer_of(module: str) -> str:
    return next(name for name, patterns in LAYERS if any(_matches(module, p) for p in patterns))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the senet_zoo modules it imports (a ``from pkg import name`` of a submodule names it)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.split(".")[0] == "senet_zoo")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "senet_zoo":
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    targets.add(sub if sub in modules else target)
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer() -> None:
    assert sorted(name for name, _ in LAYERS) == sorted(ORDER)
    for module in import_graph():
        assert layer_of(module) in ORDER


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_no_upward_imports() -> None:
    upward = [
        f"{module} ({layer_of(module)}) → {target} ({layer_of(target)})"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if ORDER.index(layer_of(target)) > ORDER.index(layer_of(module))
    ]
    assert upward == []


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    """The checks themselves can fail: a planted cycle and a planted upward import are found."""
    graph = import_graph()
    graph["senet_zoo.caffe.wire"] = graph["senet_zoo.caffe.wire"] | {"senet_zoo.convert.mapping"}
    graph["senet_zoo.convert.mapping"] = graph["senet_zoo.convert.mapping"] | {"senet_zoo.caffe.wire"}
    assert ["senet_zoo.caffe.wire", "senet_zoo.convert.mapping"] in cycles(graph)
    assert ORDER.index(layer_of("senet_zoo.convert.mapping")) > ORDER.index(layer_of("senet_zoo.caffe.wire"))
    assert layer_of("senet_zoo.convert.commands") == "commands"
    assert layer_of("senet_zoo.release.pipeline") == "release"


def _fresh_import(statement: str) -> dict[str, object]:
    code = (
        "import json, sys, time\n"
        f"start = time.perf_counter()\n{statement}\nseconds = time.perf_counter() - start\n"
        "print(json.dumps({'seconds': seconds, 'loaded': sorted(m for m in ('torch', 'timm', 'huggingface_hub', "
        "'senet_zoo.hub.manifest', 'senet_zoo.models') if m in sys.modules)}))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "statement", ["import senet_zoo.caffe.wire", "import senet_zoo.caffe", "import senet_zoo.convert"]
)
def test_numpy_steps_load_no_torch(statement: str) -> None:
    """The Caffe reader and the converter's package import neither torch nor timm nor the manifest."""
    result = _fresh_import(statement)
    assert result["loaded"] == [], result


@pytest.mark.slow  # two fresh imports of torch and timm
def test_import_senet_zoo_registers_with_timm_in_either_order() -> None:
    """`import senet_zoo` alone loads no torch; the models are registered once timm is imported, in either
    order, and timm's own `senet154` stays timm's."""
    assert _fresh_import("import senet_zoo")["loaded"] == []
    check = (
        "import timm; assert 'senet_zoo_senet154' in timm.list_models('senet_zoo_*'), 'not registered'; "
        "assert timm.create_model('senet154').__class__.__module__.startswith('timm.'); "
        "assert type(timm.create_model('se_resnet50')).__module__ == 'senet_zoo.models.senet'"
    )
    for statement in (f"import senet_zoo; {check}", f"import timm; import senet_zoo; {check}"):
        _fresh_import(statement)  # raises (CalledProcessError) when an assertion in the child fails
