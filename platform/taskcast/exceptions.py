"""Taskcast's exceptions.

TaskcastError
├── DefinitionError     a message class or consumer is declared wrongly (raised on import)
├── PublishError        an event a consumer does not handle, or a group it does not join
├── LayerUnavailable    a layer's backend cannot be reached now (the socket is closed 1013)
├── InvalidPayload      raised by a handler: the frame is refused with an ``invalid_payload`` error
├── InvalidAddress      a value that may not name a group (a room from the URL, a user)
└── ConnectionRefused   raised by ``Consumer.authenticate``: close the socket with a code
"""

from __future__ import annotations


class TaskcastError(Exception):
    """Base of every error Taskcast raises on purpose."""


class DefinitionError(TaskcastError, TypeError):
    """A message class or a consumer is declared wrongly."""


class PublishError(TaskcastError, ValueError):
    """An event cannot be published to the consumer it names."""


class LayerUnavailable(TaskcastError):
    """A layer's backend cannot be reached now; try again later."""


class ConnectionRefused(TaskcastError):
    """Refuses a WebSocket connection; the socket is closed with ``code``."""

    def __init__(self, code: int = 4403, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class InvalidPayload(TaskcastError, ValueError):
    """Raised by a ``@ws_handler`` to refuse its frame: the client gets an ``invalid_payload``
    error frame carrying ``detail`` (so write it for the client), and the socket stays open."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidAddress(TaskcastError, ValueError):
    """A value that may not name a group (its field and why, in the message): a socket whose
    URL carries one is closed with 4400; a publisher raises ``PublishError``."""
