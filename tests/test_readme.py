"""The README's two commands are exactly what CI runs, and its model table is the catalog's."""

from __future__ import annotations

import re
from pathlib import Path

from senet_zoo.catalog import CATALOG


def _readme_commands(repo_root: Path) -> list[str]:
    text = (repo_root / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, re.S)[:2]


def test_ci_runs_the_readme_commands(repo_root: Path) -> None:
    setup, tests = _readme_commands(repo_root)
    ci_lines = [line.strip() for line in (repo_root / ".ci" / "run").read_text().splitlines()]
    assert "torch==2.14.1" in setup and "senet-zoo" in setup
    assert setup in ci_lines and tests in ci_lines
    assert ci_lines.index(setup) < ci_lines.index(tests)


def test_readme_model_table_is_the_catalog(repo_root: Path) -> None:
    text = (repo_root / "README.md").read_text()
    section = text[text.index("## Models") : text.index("## Use")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    expected = [
        f"| `{m.name}` | {m.display_name} | {m.params / 1e6:.2f} M | {m.gmacs:.2f} | "
        f"{m.top1_acc:.2f} / {m.top5_acc:.2f} | `{m.timm_name}` |"
        for m in CATALOG.values()
    ]
    assert rows == expected
