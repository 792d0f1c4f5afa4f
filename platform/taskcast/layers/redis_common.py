"""What the Redis layers share: clients, key names, the append script, reconnect backoff."""

from __future__ import annotations

import asyncio
import contextlib
import random

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError, TimeoutError

__all__ = [
    "REDIS_ERRORS",
    "RETRY_WINDOW",
    "Backoff",
    "Keys",
    "answers",
    "async_client",
    "retried",
    "stop_reader",
]

# What a lost or refused Redis connection raises, across redis-py and the socket layer.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
# How long the idempotency key a layer makes for a send of its own is kept (seconds): long
# enough for redis-py's one retry after a timed-out reply, which must find it.
RETRY_WINDOW = 120


def async_client(
    url: str, *, retries: int = 1, timeout: float = 5.0, idempotent: bool = True
) -> Redis:
    # One quick retry on a fresh connection covers pooled connections that died with a restart;
    # anything longer is the layer's own backoff, so that no call hangs for long. ``timeout``
    # bounds every reply, so it must exceed any blocking read made on the client.
    # A blocking pool: a burst of sends (a thousand sockets leaving at once, each with a notice)
    # waits for a connection instead of failing with "Too many connections".
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=32,
        timeout=timeout,
        retry=Retry(NoBackoff(), retries, supported_errors=retried(idempotent=idempotent)),
        socket_connect_timeout=2,
        socket_timeout=timeout,
        socket_keepalive=True,
    )
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool


def retried(*, idempotent: bool) -> tuple[type[RedisError], ...]:
    """The errors a client retries a command after. A timed-out reply says nothing of whether
    Redis ran the command (a stalled Redis runs it when it wakes): only idempotent commands
    (keyed appends, reads) are retried after one. A connection found closed is retried either
    way: the server that closed it is gone, and its successor never saw the command."""
    return (ConnectionError, TimeoutError) if idempotent else (ConnectionError,)


async def answers(client: Redis) -> bool:
    """Whether Redis answers a PING within two seconds."""
    try:
        return bool(await asyncio.wait_for(client.ping(), 2))
    except REDIS_ERRORS:
        return False


async def stop_reader(reader: asyncio.Task[None] | None, client: Redis) -> None:
    """End a layer's reader task. Closing its connection ends a blocking read; cancelling alone
    is not enough, as redis-py may swallow a cancellation that arrives mid-read."""
    if reader is None:
        return
    await client.connection_pool.disconnect()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(reader, 5)


class Keys:
    """The Redis names of one layer's groups, under its prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def channel(self, group: str) -> bytes:
        return f"{self.prefix}:{group}".encode()

    def stream(self, group: str) -> str:
        return f"{self.prefix}:stream:{group}"

    def meta(self, group: str) -> str:
        return f"{self.prefix}:meta:{group}"

    def live(self, group: str) -> str:
        """The short stream of a group's transient broadcasts (not kept, not resumable)."""
        return f"{self.prefix}:live:{group}"

    def dedupe(self, group: str, key: str) -> str:
        return f"{self.prefix}:sent:{group}:{key}"


class Backoff:
    """Exponential reconnect delays with jitter, reset after a success."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first, self.cap, self._next = first, cap, first

    def next(self) -> float:
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next = self.first
