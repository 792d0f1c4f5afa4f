"""Both Redis layers on a Sentinel-managed primary that fails over, and on a three-primary Redis
Cluster with a primary restarted: private topologies on free ports (tests/topologies.py)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import redis

from taskcast import LayerUnavailable
from taskcast.delivery import pack_message
from taskcast.layers import (
    RedisPubSubLayer,
    RedisPubSubSender,
    RedisReliableLayer,
    RedisReliableSender,
)
from tests.topologies import ClusterSet, SentinelSet

pytestmark = pytest.mark.anyio


def msg(text: str) -> bytes:
    return pack_message(json.dumps(text))


async def send_until_taken(layer: Any, group: str, data: bytes, within: float = 30) -> None:
    """Send, retrying while the layer says its Redis is unavailable (a failover, a restart)."""
    async with asyncio.timeout(within):
        while True:
            try:
                return await layer.group_send(group, data, key=data.decode())
            except LayerUnavailable:
                await asyncio.sleep(0.1)


async def test_a_sentinel_failover_keeps_members_and_delivers_what_was_acknowledged(
    sentinel_set: SentinelSet, recorder: Any
) -> None:
    url = sentinel_set.url
    reliable = RedisReliableLayer(url, "failover-kept", expiry=60, capacity=1000)
    pubsub = RedisPubSubLayer(url, "failover-live")
    kept, live = recorder("kept"), recorder("live")
    await reliable.group_add("g", kept)
    await pubsub.group_add("g", live)
    acknowledged: list[str] = []
    for n in range(20):
        if n == 10:  # mid-traffic: the primary dies; the replica is promoted
            old = sentinel_set.kill_primary()
        await send_until_taken(reliable, "g", msg(f"m{n}"))
        acknowledged.append(f"m{n}")
    new = sentinel_set.wait_failover(old)
    assert new != old
    # Every acknowledged message arrives once, in order; one lost to asynchronous replication
    # could only come with a gap notice before what follows it.
    await kept.wait_for(len(acknowledged), timeout=15)
    texts = [str(text) for text in kept.texts()]
    delivered = [json.loads(text) for text in texts if not text.startswith("gap:")]
    assert delivered == sorted(set(delivered), key=lambda text: int(text[1:]))  # once, in order
    if len(delivered) < len(acknowledged):
        assert "gap:trimmed" in texts or "gap:reset" in texts
    else:
        assert delivered == acknowledged
    # Pub/sub resubscribed on the new primary: a broadcast from now on reaches the member.
    async with asyncio.timeout(15):
        while not live.got:
            await send_until_taken(pubsub, "g", msg(f"live {time.monotonic()}"))
            await asyncio.sleep(0.1)
    # A sender of the workers' kind finds the new primary too.
    sender = RedisReliableSender(url, "failover-kept", expiry=60, capacity=1000)
    sender.group_send("g", msg("sync"))
    sender.close()
    assert (await kept.wait_for(len(texts) + 1))[-1].text == '"sync"'
    assert reliable.reconnects >= 1 and pubsub.reconnects >= 1
    # A member resuming from a position before the failover gets what followed it.
    back = recorder("back")
    await reliable.group_add("g", back, since=kept.got[4].position)
    await back.caught_up()
    assert back.texts()[:3] == ['"m5"', '"m6"', '"m7"']
    await reliable.close()
    await pubsub.close()


def groups_on_every_node(cluster: ClusterSet, prefix: str, count: int = 9) -> dict[str, int]:
    """Group names whose keys land on each of the three primaries, by name: the node's port."""
    found: dict[str, int] = {}
    n = 0
    while len(set(found.values())) < 3 or len(found) < count:
        name = f"g{n}"
        found[name] = cluster.node_for_key(f"{prefix}:{{{name}}}:stream")
        n += 1
    return found


async def test_a_cluster_carries_groups_on_every_node_and_rides_out_a_restart(
    redis_cluster: ClusterSet, recorder: Any
) -> None:
    url = redis_cluster.url
    reliable = RedisReliableLayer(url, "kept", expiry=60, capacity=100)
    pubsub = RedisPubSubLayer(url, "live")
    groups = groups_on_every_node(redis_cluster, "kept")
    assert set(groups.values()) == set(redis_cluster.ports)
    kept = {g: recorder(f"kept-{g}") for g in groups}
    live = {g: recorder(f"live-{g}") for g in groups}
    for g in groups:
        await reliable.group_add(g, kept[g])
        await pubsub.group_add(g, live[g])
    kept_sender = RedisReliableSender(url, "kept", expiry=60, capacity=100)
    live_sender = RedisPubSubSender(url, "live")
    for g in groups:
        await reliable.group_send(g, msg(f"{g} one"))
        await pubsub.group_send(g, msg(f"{g} live"))
        kept_sender.group_send(g, msg(f"{g} two"))
        live_sender.group_send(g, msg(f"{g} sync"))
    kept_sender.close()
    live_sender.close()
    for g in groups:
        assert [d.text for d in await kept[g].wait_for(2)] == [f'"{g} one"', f'"{g} two"']
        assert [d.text for d in await live[g].wait_for(2)] == [f'"{g} live"', f'"{g} sync"']
    # Each process subscribes on each node that owns one of its channels, sharded.
    for port in redis_cluster.ports:
        node = redis.Redis(port=port)
        channels = {c.decode() for c in node.pubsub_shardchannels("kept:*")}
        assert channels == {f"kept:{{{g}}}" for g, p in groups.items() if p == port}
        node.close()
    # A resume reads the group's stream on its node.
    first = next(iter(groups))
    back = recorder("back")
    await reliable.group_add(first, back, since=kept[first].got[0].position)
    await back.caught_up()
    assert back.texts() == [f'"{first} two"']
    # One primary restarted (it keeps nothing on disk: its groups begin again, with a notice).
    port = groups[first]
    redis_cluster.restart(port)
    for g in groups:
        await send_until_taken(reliable, g, msg(f"{g} after"))
    for g, owner in groups.items():
        async with asyncio.timeout(15):
            while True:
                texts = kept[g].texts()
                if texts and texts[-1] == f'"{g} after"':
                    break
                await kept[g].wait_for(len(texts) + 1, timeout=15)
        expected = [f'"{g} one"', f'"{g} two"']
        if owner == port:
            expected.append("gap:reset")
        assert texts == [*expected, f'"{g} after"'], g
    async with asyncio.timeout(15):  # and the restarted node's channels are subscribed again
        while len(live[first].got) < 3:
            await send_until_taken(pubsub, first, msg(f"again {time.monotonic()}"))
            await asyncio.sleep(0.1)
    await reliable.close()
    await pubsub.close()


async def test_a_cluster_takes_any_group_name(redis_cluster: ClusterSet, recorder: Any) -> None:
    # A "}" would end the hash tag early ("{}" tags nothing: the group's names would scatter
    # over slots and the append script fail), and "%7D" must stay another group than "}".
    url = redis_cluster.url
    reliable = RedisReliableLayer(url, "kept", expiry=60, capacity=100)
    pubsub = RedisPubSubLayer(url, "live")
    names = ["}", "}x{", "a}b", "%7D", "%", "{}"]
    kept = {g: recorder(f"kept-{g}") for g in names}
    live = {g: recorder(f"live-{g}") for g in names}
    for g in names:
        await reliable.group_add(g, kept[g])
        await pubsub.group_add(g, live[g])
    for g in names:
        await reliable.group_send(g, msg(f"{g} kept"), key=f"k{g}")
        await pubsub.group_send(g, msg(f"{g} live"), key=f"k{g}")
    for g in names:
        assert [d.text for d in await kept[g].wait_for(1)] == [json.dumps(f"{g} kept")]
        assert [d.text for d in await live[g].wait_for(1)] == [json.dumps(f"{g} live")]
    back = recorder("back")
    await reliable.group_add("a}b", back, since=kept["a}b"].got[0].position)
    await reliable.group_send("a}b", msg("later"))
    await back.wait_for(1)
    assert back.texts() == ['"later"']
    await reliable.close()
    await pubsub.close()
