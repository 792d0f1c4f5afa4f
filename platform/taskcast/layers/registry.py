"""Layers by alias, built from configuration.

A backend is one module that owns its configuration: a pydantic model with a ``kind`` literal
that builds the backend's async layer (``build_layer``) and its sync sender
(``build_sync_sender``). ``LayerConfig`` is the union of the backends' models, told apart by
``kind`` (so settings can hold any of them as data); ``layer_config`` picks one by URL scheme, as
encode/broadcaster does. A backend of your own needs no change here: ``LayerRegistry.from_configs``
takes any object with those two methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Protocol

from pydantic import Field

from .base import ChannelLayer, SyncGroupSender
from .memory import MemoryConfig
from .redis_backend import RedisPubSubConfig, RedisReliableConfig
from .redis_target import REDIS_SCHEMES, RedisTarget, url_scheme

__all__ = [
    "BackendConfig",
    "LayerConfig",
    "LayerRegistry",
    "build_layer",
    "build_sync_sender",
    "check_url",
    "layer_config",
]

LayerConfig = Annotated[
    MemoryConfig | RedisPubSubConfig | RedisReliableConfig, Field(discriminator="kind")
]


class BackendConfig(Protocol):
    """What the registry needs of a backend's configuration."""

    def build_layer(self) -> ChannelLayer: ...

    def build_sync_sender(self) -> SyncGroupSender: ...


def layer_config(
    url: str,
    *,
    keep: tuple[int, int] | None = None,
    prefix: str = "taskcast",
    **options: Any,
) -> LayerConfig:
    """The configuration of a layer at ``url``: ``memory://`` for the in-memory backend, a Redis
    URL (see ``taskcast.layers.redis_target``) for Redis. ``keep``: ``(expiry, capacity)`` for a
    layer that keeps messages (resumable), ``None`` for one that does not; ``options``: the
    backend's own settings."""
    check_url(url)
    if url.startswith("memory://"):
        return MemoryConfig()
    if keep is None:
        return RedisPubSubConfig(url=url, prefix=prefix, **options)
    expiry, capacity = keep
    return RedisReliableConfig(url=url, prefix=prefix, expiry=expiry, capacity=capacity, **options)


def check_url(url: str) -> None:
    """``ValueError`` when no backend takes ``url`` (the message never repeats the URL: it may
    hold a password)."""
    scheme = url_scheme(url)
    if scheme in REDIS_SCHEMES:
        RedisTarget.parse(url)
    elif scheme != "memory":
        known = ", ".join(f"{name}://" for name in ("memory", *REDIS_SCHEMES))
        named = f"{scheme}://" if scheme else "a URL without a scheme"
        raise ValueError(f"no layer backend for {named} (known: {known})")


def build_layer(config: BackendConfig) -> ChannelLayer:
    return config.build_layer()


def build_sync_sender(config: BackendConfig) -> SyncGroupSender:
    """The sync side of a layer, for processes without an event loop (there is none for the
    in-memory layer: it lives in one process; use ``InMemoryLayer.sync_sender()`` from a thread
    of that process)."""
    return config.build_sync_sender()


class LayerRegistry(Mapping[str, ChannelLayer]):
    """The process's layers by alias; closing the registry closes them all."""

    def __init__(self, layers: Mapping[str, ChannelLayer]) -> None:
        self._layers = dict(layers)

    @classmethod
    def from_configs(cls, configs: Mapping[str, BackendConfig]) -> LayerRegistry:
        return cls({alias: build_layer(config) for alias, config in configs.items()})

    def __getitem__(self, alias: str) -> ChannelLayer:
        try:
            return self._layers[alias]
        except KeyError:
            known = ", ".join(sorted(self._layers)) or "none"
            raise KeyError(f"no layer with alias {alias!r} (configured: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    async def ready(self) -> dict[str, bool]:
        """Each layer's health (its backend answers), by alias: asked of all at once, so that an
        answer takes one layer's longest wait, not the sum of them."""
        aliases = list(self._layers)
        answers = await asyncio.gather(*(self._layers[alias].ready() for alias in aliases))
        return dict(zip(aliases, answers, strict=True))

    async def close(self) -> None:
        for layer in self._layers.values():
            await layer.close()
