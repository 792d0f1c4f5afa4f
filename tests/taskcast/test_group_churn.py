"""Groups made from what clients send (rooms) come and go: 5,000 of them, each joined, sent to
and left, leave nothing behind in the process or in Redis (no subscription, no stream reader
entry, no key without expiry), on both Redis layers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from taskcast.delivery import pack_message
from taskcast.layers import RedisPubSubLayer, RedisReliableLayer

pytestmark = pytest.mark.anyio
ROOMS = 5_000


@pytest.fixture(params=["pubsub", "reliable"])
async def layer(request: Any, redis_url: str, key_prefix: str) -> AsyncIterator[Any]:
    if request.param == "pubsub":
        layer: Any = RedisPubSubLayer(redis_url, key_prefix)
    else:
        layer = RedisReliableLayer(redis_url, key_prefix, expiry=60, capacity=100)
    yield layer
    await layer.close()


async def test_rooms_joined_and_left_leave_nothing(
    layer: Any, client: aioredis.Redis, key_prefix: str, recorder: Any
) -> None:
    member = recorder("m")
    for n in range(ROOMS):
        await layer.group_add(f"room:r{n}", member)
        if n % 500 == 0:  # some rooms are spoken in
            await layer.group_send(f"room:r{n}", pack_message('{"hi":1}'))
            await member.wait_for(n // 500 + 1)
        await layer.group_discard(f"room:r{n}", member)
    # The process: no group, no stream entry, no pending subscription.
    assert not layer._groups
    for name in ("_streams", "_confirmed", "_pending"):
        assert not getattr(layer, name, None), name
    # Redis: no channel subscribed, and every key expires.
    assert await client.pubsub_channels(f"{key_prefix}*") == []
    keys = [key async for key in client.scan_iter(match=f"{key_prefix}:*", count=1000)]
    forever = [key for key in keys if await client.ttl(key) == -1]
    assert forever == []
