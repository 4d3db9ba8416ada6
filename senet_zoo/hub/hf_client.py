"""Configuring the HTTP client huggingface_hub creates, for the length of a ``with`` block.

huggingface_hub builds its clients through a factory (``set_client_factory``); this wraps whatever
factory is installed (possibly a user's own) so every new client is first passed to ``configure``,
then restores it. The one place senet_zoo touches huggingface_hub's private ``_http`` module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["configured_hub_client"]


@contextlib.contextmanager
def configured_hub_client(configure: Callable[[Any], None]) -> Iterator[None]:
    """Within the block, huggingface_hub's new clients are made by the previous factory, then ``configure``d."""
    from huggingface_hub.utils import _http

    previous = _http._GLOBAL_CLIENT_FACTORY

    def factory() -> Any:
        client = previous()
        configure(client)
        return client

    _http.set_client_factory(factory)
    try:
        yield
    finally:
        _http.set_client_factory(previous)
