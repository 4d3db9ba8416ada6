"""Helpers shared by the subcommand modules (``*/commands.py``): declaring a subcommand, and calling the
library function behind it with the parsed options."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["add_command", "call_with_options"]

T = TypeVar("T")


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand ``name`` whose parsed options go to ``handler``; add its options to the returned parser.

    Its ``--help`` text is ``description``, else the handler's docstring (what the command does), else ``help``.
    """
    text = description or inspect.getdoc(handler) or help
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help, description=text)
    parser.set_defaults(func=handler)
    return parser


def call_with_options(fn: Callable[..., T], args: argparse.Namespace, **given: Any) -> T:
    """``fn(**options)``: every parameter of ``fn`` that is a parsed option's ``dest`` gets that option's
    value, ``given`` adds or overrides the others (``progress=not args.quiet``). Options are named after
    the parameters they fill, so the command line and the library function cannot drift apart silently."""
    options = {name: getattr(args, name) for name in inspect.signature(fn).parameters if hasattr(args, name)}
    return fn(**{**options, **given})
