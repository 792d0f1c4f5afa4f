"""Keeping secrets out of logs: servers log request URLs, and a WebSocket's URL can carry its
token (``?token=``) and its resume position (``?cursor=``, long and useless in a log)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["REDACTED", "RedactQuery", "redact_server_logs"]

REDACTED = "[redacted]"
_SECRET_PARAMS = re.compile(r"([?&](?:token|cursor)=)[^&\s\"']*")


def _redact(value: object) -> object:
    if isinstance(value, str) and "=" in value:
        return _SECRET_PARAMS.sub(rf"\g<1>{REDACTED}", value)
    return value


class RedactQuery(logging.Filter):
    """Replaces the values of ``token`` and ``cursor`` query parameters in a record's message
    and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def redact_server_logs(loggers: Iterable[str] = ("uvicorn.error", "uvicorn.access")) -> None:
    """Install ``RedactQuery`` on the server's loggers (uvicorn's by default)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuery) for f in logger.filters):
            logger.addFilter(RedactQuery())
