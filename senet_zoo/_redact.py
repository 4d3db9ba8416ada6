"""Keep secrets out of every message: tokens and URL credentials are replaced by ``***``.

Used on exception texts (including text a server echoes back), on source descriptions and, through
:class:`RedactingFilter`, on every log record of ``senet_zoo`` (see :mod:`senet_zoo._log`).
"""

from __future__ import annotations

import base64
import logging
import os
import re
import sys
from urllib.parse import unquote, urlsplit

__all__ = ["redact", "RedactingFilter", "known_secrets", "register_url_credentials"]

_REGISTERED: set[str] = set()  # credentials seen in URLs this process used; a server may echo them back

_TOKEN_ENVS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_PATTERNS = (
    (re.compile(r"(?<=://)[^/@\s:'\"]+(?::[^/@\s'\"]*)?@"), "***@"),  # scheme://user:pass@host
    (re.compile(r"\bhf_[A-Za-z0-9]{6,}"), "hf_***"),  # Hugging Face token shape
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 ***"),  # Authorization values
    (
        re.compile(
            r"(?i)([?&](?:token|access_token|api_key|sig|signature|x-amz-signature|x-amz-credential)=)[^&\s'\"]+"
        ),
        r"\1***",
    ),
)


def known_secrets(*extra: str | None) -> tuple[str, ...]:
    """The tokens in the environment and the saved Hugging Face login, plus ``extra``.

    The saved login is looked up only when huggingface_hub is already imported: a process that never
    imported it never read the token file, so no message of it can hold that token (and an error of the
    command line stays as quick as its usage errors).
    """
    found = [os.environ.get(var) for var in _TOKEN_ENVS]
    if "huggingface_hub" in sys.modules:
        try:
            from huggingface_hub import get_token

            found.append(get_token())
        except Exception:  # an unreadable token file: nothing more to hide
            pass
    return tuple(s for s in (*found, *_REGISTERED, *extra) if s and len(s) >= 4)


def register_url_credentials(url: str | None) -> None:
    """Remember the user name, password and their Basic-auth form of ``url`` so no message ever shows them."""
    parts = urlsplit(url or "")
    if parts.username or parts.password:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        _REGISTERED.update({user, password, base64.b64encode(f"{user}:{password}".encode()).decode()} - {""})


def redact(text: object, *secrets: str | None) -> str:
    """``text`` with ``secrets``, the known tokens, URL credentials and token-shaped strings replaced."""
    out = str(text)
    for secret in sorted(set(known_secrets(*secrets)), key=len, reverse=True):
        out = out.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    return out


class RedactingFilter(logging.Filter):
    """Formats each record's message and traceback and redacts them, so no handler ever sees a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:  # formatters use exc_text when it is set
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
