"""``senet-zoo`` command line: thin wrappers over the package's modules.

Each area contributes its subcommands through a module with ``register(subparsers)``. Arguments are
parsed before torch or timm is imported: :data:`COMMANDS` names each subcommand's module, and only the
module of the subcommand given is imported (the others appear in ``--help`` from the table), so
``--version``, ``-h``, ``list``, ``info`` and a usage error answer at once. Every subcommand accepts
``-v``/``-q`` (also after its name; ``-q``: errors only, no progress bars) and its help shows the
defaults. Progress bars are drawn only on a terminal (:func:`progress_enabled`).

Exit status, the same for every subcommand: 0 success; 2 a usage error or bad input (an unknown name
or tag, a missing or malformed file, an argument out of range); 1 the operation failed (a download,
an upload, a failed check); 130 interrupted (Ctrl-C or SIGTERM where a command handles it).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

from ._version import __version__

# name -> (module that registers it, the help line it registers; tests/test_cli.py checks both agree),
# in data-flow order
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("senet_zoo.commands", "table of the models: parameters, compute, reported accuracy, weights"),
    "info": ("senet_zoo.commands", "everything known about a model, weights tag, run or folder, as JSON"),
    "convert": (
        "senet_zoo.convert.commands",
        "convert an SENet Caffe release (caffemodel [+ prototxt]) into a verified weights folder",
    ),
    "verify": ("senet_zoo.convert.commands", "re-check a converted folder against its Caffe model"),
    "fetch": ("senet_zoo.hub.commands", "download and verify pretrained weights into the cache; print the path"),
    "cache": ("senet_zoo.hub.commands", "inspect senet-zoo's weights cache"),
    "publish": ("senet_zoo.hub.commands", "upload a fine-tuning run or a converted folder to the Hugging Face Hub"),
    "release": (
        "senet_zoo.release.commands",
        "maintainers: convert, verify and publish the seven Caffe releases, then record them in the manifest",
    ),
    "finetune": (
        "senet_zoo.finetune.commands",
        "fine-tune a model on an ImageFolder (DIR/train/CLASS/*, DIR/val/CLASS/*)",
    ),
    "evaluate": ("senet_zoo.finetune.commands", "top-1 / top-5 accuracy of weights on an ImageFolder"),
    "excitations": (
        "senet_zoo.analysis.commands",
        "SE gate statistics per block and class over an ImageFolder (paper §7)",
    ),
    "export": (
        "senet_zoo.export_commands",
        "export a model to ONNX or OpenVINO IR (BatchNorm folded, dynamic batch), verified before writing",
    ),
    "demo": (
        "senet_zoo.demo",
        "offline end-to-end demo: synthetic Caffe SE-ResNet-50 → convert → verify → load with senet_zoo, "
        "torch.hub and timm",
    ),
}
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
# Bad input: a name, tag, value or file the user gave is unknown, missing or malformed.
BAD_INPUT = (ValueError, LookupError, FileNotFoundError, NotADirectoryError, IsADirectoryError, TypeError)


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


def progress_enabled(args: argparse.Namespace, stream: Any = None) -> bool:
    """Progress bars: not with ``-q`` (or a command's ``--no-progress``), and only on a terminal (never in
    a log file or a pipe)."""
    if getattr(args, "verbosity", 0) < 0 or getattr(args, "no_progress", False):
        return False
    return bool(getattr(stream or sys.stderr, "isatty", lambda: False)())


def _chosen(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is one), if any."""
    return next((a for a in argv if a in COMMANDS), None)


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the full subparsers of ``commands`` (all when None): only their modules are
    imported; the other subcommands are listed from :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="senet-zoo",
        description="Squeeze-and-Excitation networks for PyTorch.",
        formatter_class=HelpFormatter,
        epilog="Exit status: 0 success, 2 usage error or bad input, 1 operation failed, 130 interrupted.",
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
    chosen = COMMANDS if commands is None else commands
    wanted: dict[str, str | None] = {COMMANDS[name][0]: None for name in chosen}
    for name, (module, help_text) in COMMANDS.items():
        if module in wanted:
            if wanted[module] is None:
                importlib.import_module(module).register(subparsers)
                wanted[module] = module
        else:
            subparsers.add_parser(name, help=help_text, add_help=False)
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


def _message(err: BaseException) -> str:
    """One line for the user, credentials redacted (an error may quote a URL or a request header)."""
    from ._redact import redact

    text = err.args[0] if isinstance(err, KeyError) and err.args else err  # KeyError's str() is a repr
    return " ".join(redact(str(text)).split()) or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    command = _chosen(given)
    parser = build_parser([command] if command else [])
    args = parser.parse_args(given)
    if argv is None and args.passive_openmp:
        _passive_openmp()
    level = {1: logging.INFO, 0: logging.WARNING, -1: logging.ERROR}[args.verbosity]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except BAD_INPUT as err:
        print(f"senet-zoo {args.command}: error: {_message(err)}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, RuntimeError) as err:
        print(f"senet-zoo {args.command}: error: {_message(err)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"senet-zoo {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
