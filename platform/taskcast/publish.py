"""Publishing events to a consumer's groups from outside the consumer.

The consumer class is the address: its ``layer_alias``, its ``groups`` and the events its
``@event_handler``s accept; ``to`` gives the values of its group templates (one room, one user,
one connection). An event it does not handle, a group it does not join, or a value no socket's
group could have, is refused with ``PublishError`` before anything is sent.

    publisher = Publisher(layers)                       # async code (the web tier)
    await publisher.publish(ChatConsumer, SystemNotify(payload="hello"))
    await publisher.publish(RoomConsumer, event, to={"room_name": "lobby"})
    await publisher.publish(NotificationConsumer, event, to={"user": "alice"})
    await publisher.publish(JobsConsumer, event, to={"connection": consumer.address})

    publisher = SyncPublisher({"chat": sender})         # sync code (workers, threads)
    publisher.publish(ChatConsumer, SystemNotify(payload="hello"))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .addresses import AddressRules, InvalidAddress, addressed
from .consumer import Consumer
from .delivery import pack_event
from .exceptions import PublishError
from .layers.base import ChannelLayer, SyncGroupSender
from .layers.registry import BackendConfig, build_sync_sender
from .messages import BaseMessage

__all__ = ["Publisher", "SyncPublisher", "prepare"]

DEFAULT_RULES = AddressRules()


@dataclass(frozen=True, slots=True)
class Prepared:
    alias: str
    groups: tuple[str, ...]
    data: bytes


def prepare(
    consumer: type[Consumer],
    event: BaseMessage,
    groups: Iterable[str] | None = None,
    to: Mapping[str, str] | None = None,
    rules: AddressRules = DEFAULT_RULES,
) -> Prepared:
    """Check ``event`` against what ``consumer`` handles, find the groups addressed (``groups``
    by name, or the templates whose placeholders are exactly ``to``'s keys: with neither, the
    constant groups) and pack it once."""
    name = consumer.__qualname__
    if consumer.layer_alias is None:
        raise PublishError(f"{name} has no layer")
    handler = consumer.handlers.events.get(event.action)
    if handler is None or not isinstance(event, handler.input_type):
        accepted = ", ".join(t.__name__ for t in consumer.handlers.event_types) or "none"
        raise PublishError(f"{name} does not handle {type(event).__name__} (accepts: {accepted})")
    templates = consumer.group_templates
    if groups is not None:
        if to:
            raise PublishError("give groups or to, not both")
        targets = tuple(groups)
        if stray := [g for g in targets if not any(t.matches(g, rules) for t in templates)]:
            raise PublishError(f"{name} does not join {', '.join(map(repr, stray))}")
    else:
        try:
            targets = addressed(templates, to or {}, rules)
        except InvalidAddress as exc:
            raise PublishError(f"{name}: {exc}") from None
        if not targets:
            given = ", ".join(sorted(to or {})) or "no values"
            known = ", ".join(consumer.groups)
            raise PublishError(f"{name} has no group addressed by {given} (its groups: {known})")
    return Prepared(consumer.layer_alias, targets, pack_event(event))


class Publisher:
    """Publishes events through the process's async layers."""

    def __init__(
        self, layers: Mapping[str, ChannelLayer], rules: AddressRules = DEFAULT_RULES
    ) -> None:
        self._layers = layers
        self.rules = rules

    async def publish(
        self,
        consumer: type[Consumer],
        event: BaseMessage,
        *,
        groups: Iterable[str] | None = None,
        to: Mapping[str, str] | None = None,
        key: str | None = None,
    ) -> None:
        """Broadcast ``event`` to ``consumer``'s groups: the constant ones, or those ``to``
        fills, or ``groups`` by name. ``key`` makes a retried publish a no-op (see layers)."""
        prepared = prepare(consumer, event, groups, to, self.rules)
        layer = self._layers[prepared.alias]
        for group in prepared.groups:
            await layer.group_send(group, prepared.data, key=key)


class SyncPublisher:
    """Publishes events from code without an event loop, through sync senders by alias."""

    def __init__(
        self, senders: Mapping[str, SyncGroupSender], rules: AddressRules = DEFAULT_RULES
    ) -> None:
        self._senders = senders
        self.rules = rules

    @classmethod
    def from_configs(
        cls, configs: Mapping[str, BackendConfig], rules: AddressRules = DEFAULT_RULES
    ) -> SyncPublisher:
        """A publisher with a sync sender per configured Redis layer (a worker's, say)."""
        senders = {alias: build_sync_sender(config) for alias, config in configs.items()}
        return cls(senders, rules)

    def publish(
        self,
        consumer: type[Consumer],
        event: BaseMessage,
        *,
        groups: Iterable[str] | None = None,
        to: Mapping[str, str] | None = None,
        key: str | None = None,
    ) -> None:
        """Same as ``Publisher.publish``, blocking."""
        prepared = prepare(consumer, event, groups, to, self.rules)
        sender = self._senders[prepared.alias]
        for group in prepared.groups:
            sender.group_send(group, prepared.data, key=key)
