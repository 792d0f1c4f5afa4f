"""Publishing events to a consumer's groups from outside the consumer.

The consumer class is the address: its ``layer_alias``, its ``groups`` and the events its
``@event_handler``s accept. An event it does not handle, or a group it does not join, is refused
with ``PublishError`` before anything is sent.

    publisher = Publisher(layers)                       # async code (the web tier)
    await publisher.publish(ChatConsumer, SystemNotify(payload="hello"))

    publisher = SyncPublisher({"chat": sender})         # sync code (workers, threads)
    publisher.publish(ChatConsumer, SystemNotify(payload="hello"))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .consumer import Consumer
from .delivery import pack_event
from .exceptions import PublishError
from .layers.base import ChannelLayer, SyncGroupSender
from .layers.registry import LayerConfig, build_sync_sender
from .messages import BaseMessage

__all__ = ["Publisher", "SyncPublisher", "prepare"]


@dataclass(frozen=True, slots=True)
class Prepared:
    alias: str
    groups: tuple[str, ...]
    data: bytes


def prepare(
    consumer: type[Consumer], event: BaseMessage, groups: Iterable[str] | None = None
) -> Prepared:
    """Check ``event`` against what ``consumer`` handles and pack it once."""
    name = consumer.__qualname__
    if consumer.layer_alias is None:
        raise PublishError(f"{name} has no layer")
    handler = consumer.handlers.events.get(event.action)
    if handler is None or not isinstance(event, handler.input_type):
        accepted = ", ".join(t.__name__ for t in consumer.handlers.event_types) or "none"
        raise PublishError(f"{name} does not handle {type(event).__name__} (accepts: {accepted})")
    targets = consumer.groups if groups is None else tuple(groups)
    if stray := [g for g in targets if g not in consumer.groups]:
        raise PublishError(f"{name} does not join {', '.join(map(repr, stray))}")
    return Prepared(consumer.layer_alias, targets, pack_event(event))


class Publisher:
    """Publishes events through the process's async layers."""

    def __init__(self, layers: Mapping[str, ChannelLayer]) -> None:
        self._layers = layers

    async def publish(
        self,
        consumer: type[Consumer],
        event: BaseMessage,
        *,
        groups: Iterable[str] | None = None,
        key: str | None = None,
    ) -> None:
        """Broadcast ``event`` to ``consumer``'s groups (or the given subset of them).
        ``key`` makes a retried publish a no-op on layers that keep messages."""
        prepared = prepare(consumer, event, groups)
        layer = self._layers[prepared.alias]
        for group in prepared.groups:
            await layer.group_send(group, prepared.data, key=key)


class SyncPublisher:
    """Publishes events from code without an event loop, through sync senders by alias."""

    def __init__(self, senders: Mapping[str, SyncGroupSender]) -> None:
        self._senders = senders

    @classmethod
    def from_configs(cls, configs: Mapping[str, LayerConfig]) -> SyncPublisher:
        """A publisher with a sync sender per configured Redis layer (a worker's, say)."""
        return cls({alias: build_sync_sender(config) for alias, config in configs.items()})

    def publish(
        self,
        consumer: type[Consumer],
        event: BaseMessage,
        *,
        groups: Iterable[str] | None = None,
        key: str | None = None,
    ) -> None:
        """Same as ``Publisher.publish``, blocking."""
        prepared = prepare(consumer, event, groups)
        sender = self._senders[prepared.alias]
        for group in prepared.groups:
            sender.group_send(group, prepared.data, key=key)
