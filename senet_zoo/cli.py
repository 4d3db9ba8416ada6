"""``senet-zoo`` command line: thin wrappers over the package's modules.

Each area contributes its subcommands through a module with ``register(subparsers)``; heavy imports
happen inside the handlers so ``senet-zoo --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES: tuple[str, ...] = (  # in the order of the data flow
    "senet_zoo.commands",
    "senet_zoo.convert.commands",
    "senet_zoo.hub.commands",
    "senet_zoo.finetune.commands",
    "senet_zoo.analysis.commands",
    "senet_zoo.export_commands",
    "senet_zoo.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="senet-zoo", description="Squeeze-and-Excitation networks for PyTorch.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, RuntimeError, KeyError) as err:
        print(f"senet-zoo {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
