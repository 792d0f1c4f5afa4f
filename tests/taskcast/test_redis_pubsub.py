"""The Redis pub/sub layer against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from taskcast import LayerUnavailable
from taskcast.delivery import pack_message
from taskcast.layers import RedisPubSubLayer, RedisPubSubSender

pytestmark = pytest.mark.anyio


async def commandstat(client: aioredis.Redis, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


@pytest.fixture
async def layer(redis_url: str, key_prefix: str) -> AsyncIterator[RedisPubSubLayer]:
    layer = RedisPubSubLayer(redis_url, key_prefix)
    yield layer
    await layer.close()


@pytest.mark.parametrize("audience", [10, 1000])
async def test_one_publish_per_broadcast_whatever_the_audience(
    layer: RedisPubSubLayer, client: aioredis.Redis, audience: int, recorder: Any
) -> None:
    members = [recorder(f"m{i}") for i in range(audience)]
    for member in members:
        await layer.group_add("room", member)
    before = await commandstat(client, "publish")
    for i in range(5):
        await layer.group_send("room", pack_message(f'{{"n":{i}}}'))
    await members[-1].wait_for(5)
    assert await commandstat(client, "publish") - before == 5
    for member in members:
        got = await member.wait_for(5)
        assert [d.text for d in got] == [f'{{"n":{i}}}' for i in range(5)]
        assert got[0] is members[0].got[0]  # unpacked once, shared by every local member


async def test_a_subscription_lives_while_the_group_has_local_members(
    layer: RedisPubSubLayer, client: aioredis.Redis, key_prefix: str, recorder: Any
) -> None:
    channel = f"{key_prefix}:{{room}}"

    async def subscribers() -> int:
        return int(dict(await client.pubsub_numsub(channel))[channel.encode()])

    a, b = recorder("a"), recorder("b")
    await layer.group_add("room", a)
    await layer.group_add("room", b)
    assert await subscribers() == 1  # one connection per process, not per member
    await layer.group_discard("room", a)
    assert await subscribers() == 1
    await layer.group_discard("room", b)
    async with asyncio.timeout(5):
        while await subscribers() != 0:  # noqa: ASYNC110 - Redis drops it when it reads the UNSUBSCRIBE
            await asyncio.sleep(0.01)
    await layer.group_add("room", a)  # and again after the last left
    await layer.group_send("room", pack_message("{}"))
    await a.wait_for(1)


async def test_a_broadcast_sent_right_after_a_join_reaches_the_new_member(
    layer: RedisPubSubLayer, recorder: Any
) -> None:
    for i in range(20):
        member = recorder(f"m{i}")
        await layer.group_add(f"room-{i}", member)
        await layer.group_send(f"room-{i}", pack_message("{}"))
        await member.wait_for(1)


async def test_each_process_receives_a_broadcast_once(
    redis_url: str, key_prefix: str, layer: RedisPubSubLayer, recorder: Any
) -> None:
    other = RedisPubSubLayer(redis_url, key_prefix)
    here, there = recorder("here"), recorder("there")
    await layer.group_add("room", here)
    await other.group_add("room", there)
    RedisPubSubSender(redis_url, key_prefix).group_send("room", pack_message('"sync"'))
    await layer.group_send("room", pack_message('"async"'))
    for member in (here, there):
        assert [d.text for d in await member.wait_for(2)] == ['"sync"', '"async"']
    await other.close()


async def test_publishing_without_redis_raises_layer_unavailable(key_prefix: str) -> None:
    layer = RedisPubSubLayer("redis://127.0.0.1:1/0", key_prefix)
    with pytest.raises(LayerUnavailable):
        await layer.group_send("room", pack_message("{}"))
    assert not await layer.ready()
    await layer.close()


async def test_the_layer_resubscribes_after_redis_restarts(
    private_redis: Any, caplog: pytest.LogCaptureFixture, recorder: Any
) -> None:
    caplog.set_level(logging.INFO, "taskcast.layers.redis")
    server = private_redis
    layer = RedisPubSubLayer(server.url, "restart")
    member = recorder("m")
    await layer.group_add("room", member)
    await layer.group_send("room", pack_message('"before"'))
    await member.wait_for(1)
    server.stop()
    server.start()
    restarted = time.monotonic()
    # Publish until the reader has resubscribed; each try is bounded, and so is the whole wait.
    async with asyncio.timeout(15):
        while len(member.got) < 2:
            with contextlib.suppress(LayerUnavailable):
                await layer.group_send("room", pack_message('"after"'))
            await asyncio.sleep(0.05)
    print(f"pub/sub delivery resumed {time.monotonic() - restarted:.2f}s after the restart")
    assert member.got[1].text == '"after"'
    assert layer.reconnects >= 1
    assert "reconnected" in caplog.text
    await layer.close()
