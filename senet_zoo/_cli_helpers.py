"""Helpers shared by the subcommand modules (``*/commands.py``): declaring a subcommand, and calling the
library function behind it with the parsed options."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["add_command", "add_manifest_option", "call_with_options"]

T = TypeVar("T")


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand ``name`` whose parsed options go to ``handler``; add its options to the returned parser.

    The handler's docstring documents the command: its first paragraph is the line ``senet-zoo --help``
    shows (unless ``help`` is given), the whole docstring is the command's own ``--help`` description.
    """
    doc = inspect.getdoc(handler) or ""
    summary = help or " ".join(doc.split("\n\n")[0].split()).rstrip(".")
    if summary[1:2].islower():  # the command list reads in lower case ("convert an ...", but "SE gate ...")
        summary = summary[0].lower() + summary[1:]
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=summary, description=doc or summary)
    parser.set_defaults(func=handler)
    return parser


def add_manifest_option(parser: argparse.ArgumentParser, what: str = "weights manifest") -> None:
    """``--manifest PATH`` (dest ``manifest_path``, the library's parameter name): the weights manifest a
    command reads or updates; by default ``$SENET_ZOO_MANIFEST``, else the one shipped with the package."""
    parser.add_argument(
        "--manifest", dest="manifest_path", metavar="PATH", help=f"{what} (default: $SENET_ZOO_MANIFEST or shipped)"
    )


def call_with_options(fn: Callable[..., T], args: argparse.Namespace, **given: Any) -> T:
    """``fn(**options)``: every parameter of ``fn`` that is a parsed option's ``dest`` gets that option's
    value, ``given`` adds or overrides the others (``progress=not args.quiet``). Options are named after
    the parameters they fill, so the command line and the library function cannot drift apart silently."""
    options = {name: getattr(args, name) for name in inspect.signature(fn).parameters if hasattr(args, name)}
    return fn(**{**options, **given})
