"""What a consumer checks before and while it serves a socket: the handshake's origin, the
client's credentials, and the rate of its frames."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import SplitResult, urlsplit

from starlette.websockets import WebSocket

from .exceptions import ConnectionRefused

if TYPE_CHECKING:
    from .consumer import Consumer

__all__ = ["Authenticator", "Grant", "TokenAuthenticator", "TokenBucket", "origin_allowed"]

TOKEN_PARAM = "token"
TOKEN_COOKIE = "taskcast_token"


def origin_allowed(websocket: WebSocket, allowed: Collection[str]) -> bool:
    """Whether the handshake's ``Origin`` may connect: the app's own origin always (scheme, host
    and port: a page served over http from this Host), the ``allowed`` origins
    (``scheme://host[:port]``, or ``*`` for any) too. No Origin (not a browser) passes:
    cross-site hijacking needs a browser, and browsers always send it."""
    origin = websocket.headers.get("origin")
    if origin is None or "*" in allowed or origin in allowed:
        return True
    scheme = "https" if websocket.url.scheme in ("wss", "https") else "http"
    own = urlsplit(f"{scheme}://{websocket.headers.get('host', '')}")
    given = urlsplit(origin)
    return (given.scheme, given.hostname, _port(given)) == (scheme, own.hostname, _port(own))


def _port(url: SplitResult) -> int | None:
    try:
        return url.port or {"http": 80, "https": 443}.get(url.scheme)
    except ValueError:  # not a port
        return -1


class Authenticator(Protocol):
    """Checks a socket before it is accepted: returns the user it belongs to (None: anonymous),
    or raises ``ConnectionRefused`` (4401: no or bad credentials, 4403: not allowed here)."""

    async def __call__(self, websocket: WebSocket, consumer: type[Consumer]) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Grant:
    """What one token opens: ``paths`` (routes such as ``/ws/room/{room_name}``, or concrete
    paths; None: every path), as ``user`` (None: anonymous)."""

    paths: frozenset[str] | None = None
    user: str | None = None


class TokenAuthenticator:
    """Bearer tokens, from the ``token`` query parameter or the ``taskcast_token`` cookie, each
    mapped to a ``Grant`` (or, as before, to the paths it may open: ``None`` for every path)."""

    def __init__(self, tokens: Mapping[str, Grant | Collection[str] | None]) -> None:
        self.tokens = {
            token: grant if isinstance(grant, Grant) else Grant(_paths(grant))
            for token, grant in tokens.items()
        }

    async def __call__(self, websocket: WebSocket, consumer: type[Consumer]) -> str | None:
        token = websocket.query_params.get(TOKEN_PARAM) or websocket.cookies.get(TOKEN_COOKIE)
        if not token or token not in self.tokens:
            raise ConnectionRefused(4401, "a valid token is required")
        grant = self.tokens[token]
        if grant.paths is not None and not _opens(grant.paths, websocket):
            raise ConnectionRefused(4403, "this token may not open this endpoint")
        return grant.user


def _paths(paths: Collection[str] | None) -> frozenset[str] | None:
    return None if paths is None else frozenset(paths)


def _opens(paths: frozenset[str], websocket: WebSocket) -> bool:
    """A rule names the route (``/ws/room/{room_name}``: every room) or one concrete path."""
    route = websocket.scope.get("taskcast.route")
    return websocket.url.path in paths or (route is not None and route in paths)


class TokenBucket:
    """``rate`` tokens a second, up to ``burst``; ``take`` spends one if there is one."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
