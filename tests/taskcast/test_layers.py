from __future__ import annotations

import pytest

from taskcast import Delivery, InMemoryLayer, LayerRegistry
from taskcast.delivery import pack_event, pack_message, unpack
from taskcast.layers import MemoryConfig
from taskcast.messages import PingMessage

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self, member_id: str) -> None:
        self.member_id = member_id
        self.got: list[Delivery] = []

    def deliver(self, delivery: Delivery) -> bool:
        self.got.append(delivery)
        return True

    def replay(self, replay: object) -> None:
        raise AssertionError("the in-memory layer keeps nothing to replay")


async def test_one_send_is_unpacked_once_and_shared_by_the_members() -> None:
    layer = InMemoryLayer()
    a, b, outsider = Recorder("a"), Recorder("b"), Recorder("c")
    await layer.group_add("g", a)
    await layer.group_add("g", b)
    await layer.group_add("other", outsider)
    await layer.group_send("g", pack_message('{"action":"x"}', exclude="a"))
    assert len(a.got) == len(b.got) == 1
    assert a.got[0] is b.got[0]
    assert (a.got[0].text, a.got[0].exclude, a.got[0].group) == ('{"action":"x"}', "a", "g")
    assert outsider.got == []


async def test_discard_forgets_the_member_and_the_empty_group() -> None:
    layer = InMemoryLayer()
    a = Recorder("a")
    await layer.group_add("g", a)
    await layer.group_discard("g", a)
    await layer.group_discard("g", a)  # twice is harmless
    await layer.group_send("g", pack_event(PingMessage()))
    assert (a.got, layer.members("g")) == ([], 0)


async def test_an_undecodable_send_is_dropped_not_raised() -> None:
    layer = InMemoryLayer()
    a = Recorder("a")
    await layer.group_add("g", a)
    await layer.group_send("g", b"garbage")
    assert a.got == []


def test_events_round_trip() -> None:
    delivery = unpack(pack_event(PingMessage()), "g")
    assert (delivery.action, delivery.event, delivery.text) == (
        "ping",
        {"action": "ping", "payload": None},
        None,
    )


@pytest.mark.parametrize("data", [b"", b"M", b"X\n{}", b"E\n[1]", b"E\n{}", b"E\n{bad"])
def test_unpack_refuses_anything_it_did_not_pack(data: bytes) -> None:
    with pytest.raises(ValueError):
        unpack(data, "g")


async def test_the_registry_builds_layers_by_alias_and_names_the_known_ones() -> None:
    registry = LayerRegistry.from_configs({"chat": MemoryConfig(), "queue": MemoryConfig()})
    assert sorted(registry) == ["chat", "queue"]
    assert isinstance(registry["chat"], InMemoryLayer)
    with pytest.raises(KeyError, match="configured: chat, queue"):
        registry["nope"]
    await registry.close()
