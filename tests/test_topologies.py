"""Smoke tests of the private topologies (tests/topologies.py), with redis-py alone."""

from __future__ import annotations

import time

import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from tests.topologies import ClusterSet, SentinelSet


def test_sentinel_set_fails_over(sentinel_set: SentinelSet) -> None:
    assert sentinel_set.url.startswith("redis+sentinel://127.0.0.1:")
    assert sentinel_set.url.endswith("/taskcast/0")
    sentinel = Sentinel(sentinel_set.sentinels, socket_timeout=1)
    first = sentinel.master_for("taskcast", socket_timeout=1)
    assert first.set("before", "1")
    assert first.get("before") == b"1"
    assert first.execute_command("WAIT", 1, 5000) == 1  # the replica has it too
    first.close()

    old = sentinel_set.primary()
    assert sentinel_set.kill_primary() == old
    started = time.monotonic()
    new = sentinel_set.wait_failover(old)
    print(f"failover took {time.monotonic() - started:.1f} s: {old} -> {new}")
    assert new != old
    assert sentinel_set.primary() == new

    fresh = Sentinel(sentinel_set.sentinels, socket_timeout=1)
    assert fresh.discover_master("taskcast") == new
    second = fresh.master_for("taskcast", socket_timeout=1)
    assert second.get("before") == b"1"  # replicated before the primary died
    assert second.set("after", "2")
    assert second.get("after") == b"2"
    second.close()
    for client in [*sentinel.sentinels, *fresh.sentinels]:
        client.close()


def test_cluster_set_spreads_keys_and_survives_a_restart(redis_cluster: ClusterSet) -> None:
    ports = redis_cluster.ports
    assert redis_cluster.url == "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    client = RedisCluster(host="127.0.0.1", port=ports[0], socket_timeout=2)
    keys = [f"smoke:{i}" for i in range(30)]
    for key in keys:
        assert client.set(key, key)
    owners = {key: redis_cluster.node_for_key(key) for key in keys}
    assert set(owners.values()) == set(ports)
    assert all(client.get(key) == key.encode() for key in keys)

    victim = owners[keys[0]]
    started = time.monotonic()
    redis_cluster.restart(victim)
    print(f"restart of {victim} until cluster_state:ok took {time.monotonic() - started:.1f} s")
    assert redis_cluster.node_for_key(keys[0]) == victim  # it came back with its slots

    for key, port in owners.items():
        # Nothing is persisted: the restarted node's keys are gone, the others' are not.
        assert client.get(key) == (None if port == victim else key.encode()), key
    assert client.set(keys[0], "again")
    assert client.get(keys[0]) == b"again"
    with redis.Redis(host="127.0.0.1", port=victim) as node:
        assert node.get(keys[0]) == b"again"
    client.close()
