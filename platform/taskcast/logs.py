"""Keeping secrets out of logs: servers log request URLs, and a WebSocket's URL can carry its
token (``?token=``) and its resume position (``?cursor=``, long and useless in a log)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

__all__ = ["REDACTED", "RedactQuery", "redact_server_logs"]

REDACTED = "[redacted]"
_SECRET_NAMES = frozenset({"token", "cursor", "watch"})
# A query parameter: its name (as sent: maybe percent-encoded) and its value. In a log call's
# arguments a URL is a string of its own and a value runs to the next "&"; in a message already
# formatted, to the next space or quote.
_IN_ARGUMENT = re.compile(r"([?&;])([^=&;?\s]+)=([^&;]*)")
_IN_MESSAGE = re.compile(r"([?&;])([^=&;?\s\"']+)=([^&;\s\"']*)")


def _hide(found: re.Match[str]) -> str:
    sep, name, _ = found.groups()
    secret = unquote_plus(name).strip().lower() in _SECRET_NAMES
    return f"{sep}{name}={REDACTED}" if secret else found.group(0)


def _redact(value: object, pattern: re.Pattern[str]) -> object:
    if isinstance(value, str) and "=" in value:
        return pattern.sub(_hide, value)
    return value


class RedactQuery(logging.Filter):
    """Replaces the values of ``token`` and ``cursor`` query parameters in a record's message
    and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact(record.msg, _IN_MESSAGE)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg, _IN_ARGUMENT) for arg in record.args)
        return True


def redact_server_logs(loggers: Iterable[str] = ("uvicorn.error", "uvicorn.access")) -> None:
    """Install ``RedactQuery`` on the server's loggers (uvicorn's by default)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuery) for f in logger.filters):
            logger.addFilter(RedactQuery())
