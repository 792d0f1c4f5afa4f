"""The Redis reliable layer against a real Redis: order, resume, gaps, idempotency."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from taskcast import LayerUnavailable, Position
from taskcast.delivery import pack_message
from taskcast.layers import RedisReliableLayer, RedisReliableSender

pytestmark = pytest.mark.anyio


def msg(n: int) -> bytes:
    return pack_message(json.dumps(n))


@pytest.fixture
async def layer(redis_url: str, key_prefix: str) -> AsyncIterator[RedisReliableLayer]:
    layer = RedisReliableLayer(redis_url, key_prefix, expiry=60, capacity=100)
    yield layer
    await layer.close()


async def test_live_members_get_every_entry_in_order_with_its_position(
    layer: RedisReliableLayer, recorder: Any
) -> None:
    a, b = recorder("a"), recorder("b")
    await layer.group_add("g", a)
    await layer.group_add("g", b)
    for n in range(50):
        await layer.group_send("g", msg(n))
    for member in (a, b):
        await member.wait_for(50)
        assert member.texts() == [str(n) for n in range(50)]
    positions = [d.position for d in a.got]
    assert all(p is not None for p in positions)
    assert len({p.epoch for p in positions if p}) == 1
    assert a.got[0] is b.got[0]


async def test_one_script_call_per_broadcast_whatever_the_audience(
    layer: RedisReliableLayer, client: aioredis.Redis, recorder: Any
) -> None:
    members = [recorder(f"m{i}") for i in range(1000)]
    for member in members:
        await layer.group_add("g", member)
    stats = await client.info("commandstats")
    before = {k: v["calls"] for k, v in stats.items()}
    for n in range(5):
        await layer.group_send("g", msg(n))
    await members[-1].wait_for(5)
    after = {k: v["calls"] for k, v in (await client.info("commandstats")).items()}
    writes = sum(
        after[k] - before.get(k, 0) for k in ("cmdstat_evalsha", "cmdstat_eval") if k in after
    )
    assert writes == 5


async def test_resuming_delivers_what_was_missed_once_and_in_order(
    layer: RedisReliableLayer, recorder: Any
) -> None:
    first = recorder("first")
    await layer.group_add("g", first)
    for n in range(3):
        await layer.group_send("g", msg(n))
    await first.wait_for(3)
    position = first.got[1].position  # it saw 0 and 1, then went away
    await layer.group_discard("g", first)
    for n in range(3, 6):
        await layer.group_send("g", msg(n))
    back = recorder("back")
    await layer.group_add("g", back, since=position)
    await back.caught_up()
    await layer.group_send("g", msg(6))
    await back.wait_for(5)
    assert back.texts() == ["2", "3", "4", "5", "6"]


async def test_entries_arriving_during_the_catch_up_are_not_lost_or_repeated(
    layer: RedisReliableLayer, recorder: Any
) -> None:
    live = recorder("live")
    await layer.group_add("g", live)
    await layer.group_send("g", msg(0))
    await live.wait_for(1)
    since = live.got[0].position

    async def publish() -> None:
        for n in range(1, 301):
            await layer.group_send("g", msg(n))

    publishing = asyncio.create_task(publish())
    await asyncio.sleep(0.01)
    late = recorder("late")
    await layer.group_add("g", late, since=since)
    await late.caught_up()
    await publishing
    await late.wait_for(300)
    await live.wait_for(301)
    assert late.texts() == [str(n) for n in range(1, 301)]


async def test_a_position_older_than_the_retained_gets_a_trimmed_gap(
    redis_url: str, key_prefix: str, recorder: Any
) -> None:
    layer = RedisReliableLayer(redis_url, key_prefix, expiry=60, capacity=3)
    first = recorder("first")
    await layer.group_add("g", first)
    await layer.group_send("g", msg(0))
    await first.wait_for(1)
    await layer.group_discard("g", first)
    for n in range(1, 10):
        await layer.group_send("g", msg(n))
    back = recorder("back")
    await layer.group_add("g", back, since=first.got[0].position)
    await back.caught_up()
    assert back.texts() == ["gap:trimmed", "7", "8", "9"]
    assert back.got[0].gap is not None and back.got[0].gap.payload.group == "g"
    # From a position whose successor is still retained there is no gap.
    again = recorder("again")
    await layer.group_add("g", again, since=back.got[1].position)
    await again.caught_up()
    assert again.texts() == ["8", "9"]
    # Nor from the newest position.
    newest = recorder("newest")
    await layer.group_add("g", newest, since=back.got[-1].position)
    await newest.caught_up()
    assert newest.texts() == []
    await layer.close()


async def test_a_reader_that_lost_more_than_the_capacity_tells_its_members(
    redis_url: str, key_prefix: str, client: aioredis.Redis, recorder: Any
) -> None:
    layer = RedisReliableLayer(redis_url, key_prefix, expiry=60, capacity=3)
    member = recorder("m")
    await layer.group_add("g", member)
    await layer.group_send("g", msg(0))
    await member.wait_for(1)
    # The process's subscriber connection is cut; nine are appended before it is back (the
    # calls block: the layer cannot reconnect until all nine are in), six of them trimmed.
    pubsub = layer._subscriber._shards[""]._pubsub
    assert pubsub is not None and pubsub.connection is not None
    host, port = pubsub.connection._writer.get_extra_info("sockname")[:2]  # type: ignore[union-attr]
    await client.client_kill_filter(_type="pubsub", laddr=None, addr=f"{host}:{port}")
    sender = RedisReliableSender(redis_url, key_prefix, expiry=60, capacity=3)
    for n in range(1, 10):
        sender.group_send("g", msg(n))
    await member.wait_for(5)
    assert member.texts() == ["0", "gap:trimmed", "7", "8", "9"]
    gap = member.got[1].position
    assert gap is not None and gap.seq == 7  # resume from it: the next is number 8
    assert layer.reconnects == 1
    await layer.close()


async def test_a_lost_stream_is_not_a_continuation(
    layer: RedisReliableLayer, client: aioredis.Redis, key_prefix: str, recorder: Any
) -> None:
    live = recorder("live")
    await layer.group_add("g", live)
    await layer.group_send("g", msg(1))
    await live.wait_for(1)
    old = live.got[0].position
    assert old is not None
    await client.delete(
        f"{key_prefix}:{{g}}:stream", f"{key_prefix}:{{g}}:meta"
    )  # as a restart would
    await layer.group_send("g", msg(2))
    await live.wait_for(3)
    assert live.texts() == ["1", "gap:reset", "2"]  # live members are told too
    new = live.got[2].position
    assert new is not None and new.epoch != old.epoch
    back = recorder("back")
    await layer.group_add("g", back, since=old)
    await back.caught_up()
    assert back.texts() == ["gap:reset", "2"]


async def test_a_repeated_idempotency_key_appends_once(
    layer: RedisReliableLayer, client: aioredis.Redis, key_prefix: str
) -> None:
    await layer.group_send("g", msg(1), key="task-1")
    await layer.group_send("g", msg(1), key="task-1")
    RedisReliableSender(layer_url(layer), key_prefix, expiry=60, capacity=100).group_send(
        "g", msg(1), key="task-1"
    )
    await layer.group_send("g", msg(2), key="task-2")
    assert await client.xlen(f"{key_prefix}:{{g}}:stream") == 2


def layer_url(layer: RedisReliableLayer) -> str:
    kwargs = layer._redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


async def test_idle_groups_expire(
    layer: RedisReliableLayer, client: aioredis.Redis, key_prefix: str
) -> None:
    await layer.group_send("g", msg(1))
    for key in (f"{key_prefix}:{{g}}:stream", f"{key_prefix}:{{g}}:meta"):
        assert 0 < await client.ttl(key) <= 60


async def test_the_sync_sender_writes_what_the_layer_reads(
    layer: RedisReliableLayer, redis_url: str, key_prefix: str, recorder: Any
) -> None:
    member = recorder("m")
    await layer.group_add("g", member)
    RedisReliableSender(redis_url, key_prefix, expiry=60, capacity=100).group_send("g", msg(7))
    assert [d.text for d in await member.wait_for(1)] == ["7"]


async def test_joining_without_redis_raises_layer_unavailable(
    key_prefix: str, recorder: Any
) -> None:
    layer = RedisReliableLayer("redis://127.0.0.1:1/0", key_prefix, expiry=60, capacity=10)
    member = recorder("m")
    with pytest.raises(LayerUnavailable):
        await layer.group_add("g", member)
    with pytest.raises(LayerUnavailable):
        await layer.group_send("g", msg(1))
    await layer.close()


async def test_nothing_published_after_a_redis_restart_is_lost(
    private_redis: Any, recorder: Any
) -> None:
    server = private_redis
    layer = RedisReliableLayer(server.url, "restart", expiry=60, capacity=100)
    member = recorder("m")
    await layer.group_add("g", member)
    await layer.group_send("g", msg(1))
    await member.wait_for(1)
    server.stop()
    server.start()
    for n in range(2, 12):
        await layer.group_send("g", msg(n))  # one retry on a fresh connection covers the restart
    await member.wait_for(12, timeout=15)
    assert member.texts() == ["1", "gap:reset", *[str(n) for n in range(2, 12)]]
    await layer.close()


def test_a_position_knows_its_epoch_id_and_number() -> None:
    assert Position("e", "1-0", 1)._fields == ("epoch", "id", "seq")
