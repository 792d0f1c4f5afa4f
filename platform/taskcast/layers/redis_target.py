"""Which Redis a layer speaks to, from its URL: one node, a Sentinel-managed primary, or a Cluster.

| URL | Redis |
|---|---|
| ``redis://[user:password@]host:port/db``, ``rediss://…``, ``unix://…`` | one node |
| ``redis+sentinel://[user:password@]host:port[,host:port…]/service[/db]`` | the primary the
  sentinels at those addresses name for ``service``, found again after a failover |
| ``redis+cluster://[user:password@]host:port[,host:port…]`` | a Cluster, from those nodes |

The user and password are the data nodes' (ACL) login; sentinels are asked without one, unless
``?sentinel_password=…`` is given. On a Cluster, a group's keys share a hash tag (one slot: one
node runs each script) and broadcasts use sharded pub/sub (``SPUBLISH``), which reaches only the
node that owns the group's slot; elsewhere plain ``PUBLISH``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.cluster import RedisCluster as SyncRedisCluster
from redis.exceptions import ConnectionError, RedisError, TimeoutError
from redis.retry import Retry as SyncRetry
from redis.sentinel import Sentinel as SyncSentinel

__all__ = ["REDIS_SCHEMES", "RedisTarget", "close_client", "close_sync_client", "retried"]

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")

Topology = Literal["node", "sentinel", "cluster"]


def retried(*, idempotent: bool) -> tuple[type[RedisError], ...]:
    """The errors a client retries a command after. A timed-out reply says nothing of whether
    Redis ran the command (a stalled Redis runs it when it wakes): only idempotent commands
    (keyed appends, reads) are retried after one. A connection found closed is retried either
    way: the server that closed it is gone, and its successor never saw the command."""
    return (ConnectionError, TimeoutError) if idempotent else (ConnectionError,)


@dataclass(frozen=True)
class RedisTarget:
    topology: Topology
    url: str  # as given (one node: what redis-py connects to)
    addresses: tuple[tuple[str, int], ...] = ()  # the sentinels, or the Cluster's first nodes
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    def __repr__(self) -> str:  # never the password
        return f"RedisTarget({self.topology}, {self.describe()})"

    @classmethod
    def parse(cls, url: str) -> RedisTarget:
        """``ValueError`` (naming no password) for a URL that names no Redis."""
        scheme = url_scheme(url)
        if scheme in ("redis", "rediss", "unix"):
            _node_port(url)
            return cls("node", url)
        if scheme not in ("redis+sentinel", "redis+cluster"):
            raise ValueError(f"not a Redis URL scheme: {scheme!r} (one of {REDIS_SCHEMES})")
        parts = urlsplit(url)
        login, _, hosts = parts.netloc.rpartition("@")
        user, _, password = login.partition(":")
        addresses = tuple(_address(item) for item in hosts.split(",") if item)
        if not addresses:
            raise ValueError(f"{scheme}:// needs at least one host:port")
        path = [unquote(p) for p in parts.path.split("/") if p]
        options = parse_qs(parts.query)
        common: dict[str, Any] = {
            "username": unquote(user) or None,
            "password": unquote(password) or None,
        }
        if scheme == "redis+cluster":
            if path:
                raise ValueError("a Redis Cluster has one database: redis+cluster://host:port,…")
            return cls("cluster", url, addresses, **common)
        if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ValueError("redis+sentinel://host:port[,host:port…]/service[/db]")
        secret = options.get("sentinel_password", [None])[0]
        return cls(
            "sentinel",
            url,
            addresses,
            service=path[0],
            db=int(path[1]) if len(path) == 2 else 0,
            sentinel_password=secret,
            **common,
        )

    @property
    def sharded(self) -> bool:
        """Whether broadcasts use sharded pub/sub (a Cluster)."""
        return self.topology == "cluster"

    def describe(self) -> str:
        """Where, for logs: hosts and ports, never a login."""
        if self.topology == "node":
            parts = urlsplit(self.url)
            return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}{parts.path}"
        hosts = ",".join(f"{host}:{port}" for host, port in self.addresses)
        return f"{self.topology}://{hosts}/{self.service}".rstrip("/")

    def async_client(
        self, *, retries: int = 1, timeout: float = 5.0, idempotent: bool = True
    ) -> aioredis.Redis:
        """A client with one quick retry on a fresh connection (pooled connections that died
        with a restart or a failover), replies bounded by ``timeout``; longer outages are the
        layer's own backoff, so that no call hangs for long. A Cluster client is typed as a
        plain one: the layers use the commands both have."""
        options = self._options(retries, timeout, idempotent, AsyncRetry)
        if self.topology == "cluster":
            cluster = AsyncRedisCluster(
                startup_nodes=[AsyncClusterNode(h, p) for h, p in self.addresses],
                max_connections=32,
                **options,
            )
            return cluster  # type: ignore[return-value]
        if self.topology == "sentinel":
            sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
                list(self.addresses), sentinel_kwargs=self._sentinel_options(timeout), **options
            )
            primary = sentinel.master_for(self.service, db=self.db, max_connections=32)
            return cast(aioredis.Redis, primary)
        # A blocking pool: a burst of sends (a thousand sockets leaving at once, each with a
        # notice) waits for a connection instead of failing with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=32, timeout=timeout, **options
        )
        return aioredis.Redis.from_pool(pool)  # the client owns the pool: closing it closes it

    def node_client(self, host: str, port: int) -> aioredis.Redis:
        """A client of one Cluster node (its subscriber connection), no retries."""
        options = self._options(0, 5.0, True, AsyncRetry)
        options["retry"] = AsyncRetry(NoBackoff(), 0)
        return aioredis.Redis(host=host, port=port, **options)

    def sync_client(self, *, idempotent: bool) -> redis.Redis:
        options = self._options(1, 5.0, idempotent, SyncRetry)
        if self.topology == "cluster":
            nodes = [ClusterNode(h, p) for h, p in self.addresses]  # type: ignore[no-untyped-call]
            return SyncRedisCluster(startup_nodes=nodes, **options)  # type: ignore[return-value]
        if self.topology == "sentinel":
            sentinel = SyncSentinel(  # type: ignore[no-untyped-call]
                list(self.addresses), sentinel_kwargs=self._sentinel_options(5.0), **options
            )
            primary = sentinel.master_for(self.service, db=self.db)  # type: ignore[no-untyped-call]
            return cast(redis.Redis, primary)
        return redis.Redis.from_url(self.url, **options)

    def _options(
        self, retries: int, timeout: float, idempotent: bool, retry: type[Any]
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "socket_connect_timeout": 2,
            "socket_timeout": timeout,
            "socket_keepalive": True,
        }
        if self.topology == "cluster":
            # The Cluster client retries on its own, finding a moved slot's new node.
            options["retry"] = retry(NoBackoff(), max(retries, 1))
        else:
            options["retry"] = retry(
                NoBackoff(), retries, supported_errors=retried(idempotent=idempotent)
            )
        if self.topology != "node":
            options |= {"username": self.username, "password": self.password}
        return options

    def _sentinel_options(self, timeout: float) -> dict[str, Any]:
        return {
            "socket_connect_timeout": 2,
            "socket_timeout": timeout,
            "password": self.sentinel_password,
        }


async def close_client(client: aioredis.Redis) -> None:
    """Close ``client`` and, for a Sentinel-managed primary, its connections to the sentinels."""
    await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        await sentinel.aclose()


def close_sync_client(client: redis.Redis) -> None:
    client.close()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", ()):
        sentinel.close()


def url_scheme(url: str) -> str:
    """The scheme of ``url`` ("" when it has none that could be one): safe to print, unlike
    whatever else a malformed URL may be (a password, with a missing ``//``)."""
    scheme, sep, _ = url.partition("://")
    if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}", scheme):
        return scheme
    return ""


def _node_port(url: str) -> None:
    try:
        _ = urlsplit(url).port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None


def _address(item: str) -> tuple[str, int]:
    host, sep, port = item.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        # Not echoed: an unencoded ? # or / in a password ends the host part early, and the
        # rest of the login would be printed.
        raise ValueError(
            "a host list must be host:port[,host:port…] (a password with : / ? # @ or % in it "
            "must be percent-encoded)"
        )
    return host.strip("[]"), int(port)
