from __future__ import annotations

import taskcast


def test_the_public_names_are_pinned() -> None:
    assert sorted(taskcast.__all__) == [
        "AddressRules",
        "BaseMessage",
        "ChannelLayer",
        "ConnectionRefused",
        "Consumer",
        "ConsumerApp",
        "ConsumerOptions",
        "DefinitionError",
        "Delivery",
        "ErrorMessage",
        "ErrorPayload",
        "GapMessage",
        "GapPayload",
        "HandlerSpec",
        "InMemoryLayer",
        "InvalidAddress",
        "InvalidPayload",
        "LayerConfig",
        "LayerRegistry",
        "LayerUnavailable",
        "Overflow",
        "PingMessage",
        "PongMessage",
        "Position",
        "PublishError",
        "Publisher",
        "RedisPubSubLayer",
        "RedisReliableLayer",
        "SyncGroupSender",
        "SyncPublisher",
        "TaskcastError",
        "event_handler",
        "layer_config",
        "ws_handler",
    ]
    for name in taskcast.__all__:
        assert getattr(taskcast, name) is not None


def test_the_in_memory_layer_meets_the_contract() -> None:
    assert isinstance(taskcast.InMemoryLayer(), taskcast.ChannelLayer)
