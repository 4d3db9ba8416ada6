"""The README's commands are exactly what CI runs (its quick test run deselects only the slow marker),
and its model table is the catalog's."""

from __future__ import annotations

import re
from pathlib import Path

from senet_zoo.catalog import CAFFE_RELEASES, CATALOG


def _readme_commands(repo_root: Path) -> list[str]:
    text = (repo_root / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, re.S)[:2]


def test_ci_runs_the_readme_commands(repo_root: Path) -> None:
    setup, tests = _readme_commands(repo_root)
    quick, full = (line.split("#")[0].strip() for line in tests.splitlines())
    ci_lines = [line.strip() for line in (repo_root / ".ci" / "run").read_text().splitlines()]
    assert "torch==2.14.1" in setup and "senet-zoo" in setup
    assert quick == f'{full} -m "not slow"'  # the quick run is the full one without the slow cases
    assert setup in ci_lines and full in ci_lines  # CI runs everything
    assert ci_lines.index(setup) < ci_lines.index(full)


def test_readme_model_table_is_the_catalog(repo_root: Path) -> None:
    text = (repo_root / "README.md").read_text()
    section = text[text.index("## Models") : text.index("### The SE family beyond the Caffe release")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    expected = [
        f"| `{m.name}` | {m.display_name} | {m.params / 1e6:.2f} M | {m.gmacs:.2f} | "
        f"{m.top1_acc:.2f} / {m.top5_acc:.2f} | `{m.timm_name}` |"
        for m in CAFFE_RELEASES.values()
    ]
    assert rows == expected


def _family_row(m: object) -> str:
    from senet_zoo.catalog import ModelFacts

    assert isinstance(m, ModelFacts)
    paper = "—" if m.paper_gmacs is None else f"{m.paper_gmacs:.2f}"
    reported = "not in the paper" if m.top1_acc is None else f"{m.top1_acc:.2f} / {m.top5_acc:.2f} (paper)"
    weights = f"backbone-initialised from `{m.backbone}`" if m.backbone else "architecture only"
    return (
        f"| `{m.name}` | {m.display_name} | {m.params / 1e6:.2f} M | {m.gmacs:.2f} @{m.input_size} | {paper} | "
        f"{reported} | {weights} |"
    )


def test_readme_family_table_is_the_catalog(repo_root: Path) -> None:
    text = (repo_root / "README.md").read_text()
    start = text.index("### The SE family beyond the Caffe release")
    table = text.index("| name | network | params |", start)  # the family table (the section has others)
    lines = text[table : text.index("\n\n", table)].splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    assert rows == [_family_row(m) for m in CATALOG.values() if not m.is_caffe_release]
