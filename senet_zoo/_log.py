"""The package's loggers: every record of ``senet_zoo`` and its modules passes the redacting filter.

A filter on a logger sees only the records logged on that logger, not those its children pass up,
so :func:`get_logger` gives each module's logger the filter as well as the package's root logger
``senet_zoo``. No handler is added and the process's root logger is left alone.
"""

from __future__ import annotations

import logging

__all__ = ["PACKAGE", "get_logger"]

PACKAGE = "senet_zoo"


def _install(logger: logging.Logger) -> logging.Logger:
    from ._redact import RedactingFilter

    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` for a senet_zoo module, with secrets redacted from every record."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        raise ValueError(f"{name!r} is not a senet_zoo logger")
    _install(logging.getLogger(PACKAGE))
    return _install(logging.getLogger(name))
