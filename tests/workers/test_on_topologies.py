"""The showcase, unchanged, with REDIS_URL naming a Redis Cluster or a Sentinel-managed primary:
tasks run by a real worker (Celery's broker and results on a Redis node of their own, as the
settings require), watched by real clients on a real server. The layers, the announcement
counter and the analytics counts all live on the topology."""

from __future__ import annotations

import asyncio

import pytest
from celery import Celery

from showcase.settings import Settings
from taskcast.layers.redis_target import RedisTarget
from taskcast.testing import LiveServer, connect
from workers.tasks import analytics_counts

from .test_tasks import body, result, run, settle

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["redis_cluster", "sentinel_set"])
def settings(request: pytest.FixtureRequest, redis_url: str, key_prefix: str) -> Settings:
    topology = request.getfixturevalue(request.param)
    return Settings(
        redis_url=topology.url,
        celery_broker_url=redis_url,
        celery_result_backend=redis_url,
        key_prefix=key_prefix,
    )


async def test_tasks_reach_clients_through_the_topology(
    worker: None, celery_app: Celery, server: LiveServer, settings: Settings
) -> None:
    paths = ["/ws/chat", "/ws/reliable", "/ws/notifications", "/ws/analytics"]
    async with (
        connect(server.ws_url(paths[0])) as chat,
        connect(server.ws_url(paths[1])) as reliable,
        connect(server.ws_url(paths[2])) as notifications,
        connect(server.ws_url(paths[3])) as analytics,
    ):
        for client, path in zip([chat, reliable, notifications], paths, strict=False):
            await settle(client, path)
        await result(run(celery_app, "send_reliable_message", message="kept"))
        kept = await reliable.receive()
        assert body(dict(kept)) == ("reliable_chat_notification", {"message": "kept"})
        texts = [await result(run(celery_app, "periodic_announcements")) for _ in range(2)]
        assert texts == ["⏰ Hourly chat announcement #1", "🔔 System status update #2"]
        assert body(await chat.receive()) == ("chat_notification", {"message": texts[0]})
        assert body(await notifications.receive())[1]["message"] == texts[1]
        await analytics.send({"action": "analytics", "payload": {"event": "click"}})
        assert body(await analytics.receive())[1]["event"] == "📊 Analytics: click"
        counts = analytics_counts(celery_app)
        async with asyncio.timeout(15):  # the web tier handed the event to a task
            while counts.counts() != {"click": 1}:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await result(run(celery_app, "publish_analytics_summary")) == {"click": 1}
        assert body(await analytics.receive())[1]["data"] == {"click": 1}
    # A client that comes back resumes from its cursor, on the topology.
    await result(run(celery_app, "send_reliable_message", message="missed"))
    async with connect(server.ws_url(f"/ws/reliable?cursor={kept['cursor']}")) as back:
        while (frame := body(await back.receive()))[1].get("message") != "missed":
            assert frame[1].get("message") != "kept"  # not delivered twice
    store = RedisTarget.parse(settings.redis_url).sync_client(idempotent=True)
    assert store.get(f"{settings.key_prefix}:announcements") == b"2"
    store.close()
