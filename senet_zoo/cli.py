"""``senet-zoo`` command line: thin wrappers over the package's modules.

Each area contributes its subcommands through a module with ``register(subparsers)``; heavy imports
happen inside the handlers so ``senet-zoo --help`` stays fast. Every subcommand accepts ``-v``/``-q``
(also after its name) and its help shows the defaults.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any

from ._version import __version__

COMMAND_MODULES: tuple[str, ...] = (  # in the order of the data flow
    "senet_zoo.commands",
    "senet_zoo.convert.commands",
    "senet_zoo.hub.commands",
    "senet_zoo.release.commands",
    "senet_zoo.finetune.commands",
    "senet_zoo.analysis.commands",
    "senet_zoo.export_commands",
    "senet_zoo.demo",
)


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless it is a flag, its default is empty or the help
    already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and action.nargs != 0  # flags (store_true/false/const) say what they do
            and not any(default is empty for empty in (None, False, argparse.SUPPRESS))  # 0 is a default
            and default != {}
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-v", "--verbose", dest="verbosity", action="store_const", const=1, default=default, help="log details"
    )
    group.add_argument(
        "-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=default, help="errors only"
    )


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: defaults in its help, and ``-v``/``-q`` accepted after the command name
    (their default is SUPPRESS, so a flag given before the name is kept). A subcommand may define an
    option of the same spelling for itself (``convert --quiet``): the later definition wins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("conflict_handler", "resolve")
        super().__init__(*args, **kwargs)
        _add_verbosity(self, argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="senet-zoo", description="Squeeze-and-Excitation networks for PyTorch.", formatter_class=HelpFormatter
    )
    _add_verbosity(parser, 0)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--passive-openmp",
        action="store_true",
        help="run the command with OMP_WAIT_POLICY=PASSIVE unless it is set: OpenMP threads sleep instead of "
        "spinning while they wait (spinning made a fine-tuning epoch 5-14x slower next to one busy process on 2 cores)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def _passive_openmp() -> None:
    """``--passive-openmp`` (opt-in): re-execute this command with ``OMP_WAIT_POLICY=PASSIVE`` unless the
    user chose a policy.

    OpenMP threads that spin while they wait take the cores from any other busy process and lose theirs
    to it: on 2 cores next to one busy process a fine-tuning epoch took 5-14× longer than alone. The
    policy is read when torch loads its OpenMP runtime, before any of this code runs, hence the re-exec
    (setting ``OMP_WAIT_POLICY`` yourself does the same without it).
    """
    if os.name == "posix" and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None and args.passive_openmp:
        _passive_openmp()
    level = {1: logging.INFO, 0: logging.WARNING, -1: logging.ERROR}[args.verbosity]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, RuntimeError, KeyError) as err:
        from .hub.redact import redact

        print(f"senet-zoo {args.command}: error: {redact(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"senet-zoo {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
