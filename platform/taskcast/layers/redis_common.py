"""What the Redis layers share: key names, errors, reconnect backoff."""

from __future__ import annotations

import asyncio
import random

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError, TimeoutError

__all__ = ["REDIS_ERRORS", "RETRY_WINDOW", "Backoff", "Keys", "answers"]

# What a lost or refused Redis connection raises, across redis-py and the socket layer.
# A Cluster whose slots are not all served (a node down) raises RedisClusterException.
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    RedisClusterException,
    OSError,
    TimeoutError,
)
# How long the idempotency key a layer makes for a send of its own is kept (seconds): long
# enough for redis-py's one retry after a timed-out reply, which must find it.
RETRY_WINDOW = 120


async def answers(client: Redis) -> bool:
    """Whether Redis answers a PING within two seconds."""
    try:
        return bool(await asyncio.wait_for(client.ping(), 2))
    except REDIS_ERRORS:
        return False


class Keys:
    """The Redis names of one layer's groups, under its prefix. A group's names share a hash tag,
    ``{group}``: on a Cluster they live in one slot, so that one node runs each script that
    touches them and holds the group's sharded channel. A ``}`` in a group would end the tag
    early (``{}`` tags nothing: the names would scatter), so it goes as ``%7D`` (and ``%`` as
    ``%25``, to keep two groups' names apart)."""

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"a key prefix may not contain braces: {prefix!r}")
        self.prefix = prefix
        self._head = len(prefix) + 2  # "<prefix>:{"

    def channel(self, group: str) -> bytes:
        return f"{self.prefix}:{{{_tag(group)}}}".encode()

    def group_of(self, channel: bytes) -> str:
        tag = channel[self._head : -1].decode()
        return tag.replace("%7D", "}").replace("%25", "%") if "%" in tag else tag

    def stream(self, group: str) -> str:
        return f"{self.prefix}:{{{_tag(group)}}}:stream"

    def meta(self, group: str) -> str:
        return f"{self.prefix}:{{{_tag(group)}}}:meta"

    def dedupe(self, group: str, key: str) -> str:
        return f"{self.prefix}:{{{_tag(group)}}}:sent:{key}"


def _tag(group: str) -> str:
    if "}" in group or "%" in group:
        return group.replace("%", "%25").replace("}", "%7D")
    return group


class Backoff:
    """Exponential reconnect delays with jitter, reset after a success."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first, self.cap, self._next = first, cap, first

    def next(self) -> float:
        delay, self._next = self._next, min(self.cap, self._next * 2)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next = self.first
