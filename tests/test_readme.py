"""The README's two commands are exactly what CI runs, and its model table matches the registry."""

from __future__ import annotations

import re
from pathlib import Path

import senet_zoo


def _readme_commands(repo_root: Path) -> list[str]:
    text = (repo_root / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text, re.S)[:2]


def test_ci_runs_the_readme_commands(repo_root: Path) -> None:
    setup, tests = _readme_commands(repo_root)
    ci_lines = [line.strip() for line in (repo_root / ".ci" / "run").read_text().splitlines()]
    assert "torch==2.14.1" in setup and "senet-zoo" in setup
    assert setup in ci_lines and tests in ci_lines
    assert ci_lines.index(setup) < ci_lines.index(tests)


def test_readme_model_table_matches_the_registry(repo_root: Path) -> None:
    text = (repo_root / "README.md").read_text()
    for name in senet_zoo.list_models():
        info = senet_zoo.model_info(name)
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"{info['params'] / 1e6:.2f} M" in row
        assert f"{info['top1_acc']:.2f} / {info['top5_acc']:.2f}" in row
        assert f"`{info['timm_name']}`" in row
