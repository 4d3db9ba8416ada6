"""The command line answers before torch or timm is imported, and follows one exit-code convention."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from senet_zoo.cli import COMMANDS, build_parser, main, progress_enabled

REPO = Path(__file__).resolve().parents[1]
# Runs senet_zoo.cli without senet_zoo/__init__.py (which registers the models with timm): what the CLI
# itself imports is measured, whatever the package's import does.
BARE_CLI = (
    "import json, sys, types\n"
    "pkg = types.ModuleType('senet_zoo')\n"
    f"pkg.__path__ = [{str(REPO / 'senet_zoo')!r}]\n"
    "sys.modules['senet_zoo'] = pkg\n"
    "from senet_zoo.cli import main\n"
    "try:\n"
    "    rc = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    rc = exc.code\n"
    "heavy = sorted(m for m in ('torch', 'timm', 'torchvision', 'huggingface_hub') if m in sys.modules)\n"
    "print(json.dumps({'rc': rc, 'heavy': heavy}))\n"
)


@pytest.mark.parametrize(
    "argv,rc",
    [
        (["--version"], 0),
        (["-h"], 0),
        (["list"], 0),
        (["info", "se_resnet50"], 0),
        (["info", "x.y"], 2),
        (["lisst"], 2),
    ],
)
def test_answers_without_importing_torch_or_timm(argv: list[str], rc: int) -> None:
    proc = subprocess.run([sys.executable, "-c", BARE_CLI, *argv], capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": rc, "heavy": []}, proc.stderr[-2000:]


def test_every_command_is_in_the_table_and_registered_by_its_module() -> None:
    full = build_parser()
    actions = [a for a in full._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(actions[0].choices) == list(COMMANDS)


def test_exit_codes_and_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "se_resnet50.nosuchtag"]) == 2
    assert "known tags" in capsys.readouterr().err
    assert main(["info", "no_such_model"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["list", "--no-such-option"])
    assert exc.value.code == 2
    assert main([]) == 2
    for argv in (["-q", "list"], ["list", "-q"], ["list", "--quiet"]):
        assert main(argv) == 0


def test_progress_bars_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    args = argparse.Namespace(verbosity=0)
    assert progress_enabled(args, io.StringIO()) is False  # a log file or a pipe
    assert progress_enabled(args, Tty()) is True
    assert progress_enabled(argparse.Namespace(verbosity=-1), Tty()) is False
    assert progress_enabled(argparse.Namespace(verbosity=0, no_progress=True), Tty()) is False


def test_the_listed_help_is_each_modules_own() -> None:
    """``senet-zoo --help`` lists commands without importing their modules (from COMMANDS): the line it
    shows must be the one the module registers (from the handler's docstring or its ``help=``)."""

    def helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {a.dest: a.help for a in sub._choices_actions}

    assert helps(build_parser([])) == helps(build_parser()) == {name: h for name, (_, h) in COMMANDS.items()}
