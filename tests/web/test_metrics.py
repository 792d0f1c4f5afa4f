"""/metrics in Prometheus' text format."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from showcase import ReliableChatConsumer
from showcase.messages import SystemNotify
from taskcast import SyncPublisher
from taskcast.testing import LiveServer, connect

pytestmark = pytest.mark.anyio


async def scrape(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_metrics_count_connections_frames_errors_and_lag(
    server: LiveServer, publisher: SyncPublisher
) -> None:
    chat = (("endpoint", "/ws/chat"),)
    async with (
        connect(server.ws_url("/ws/chat")) as client,
        connect(server.ws_url("/ws/reliable")) as reliable,
    ):
        await client.expect("chat_notification")
        await client.send({"action": "chat", "payload": {"message": "hi"}})
        await client.expect("chat_notification")
        await client.send_text("{oops")
        await client.expect("error")
        await reliable.expect("reliable_chat_notification")
        publisher.publish(ReliableChatConsumer, SystemNotify(payload="measured"))
        await reliable.expect("reliable_chat_notification")
        samples = await scrape(server)
        assert samples["taskcast_connections", chat] == 1
        assert samples["taskcast_frames_received_total", chat] == 2
        assert samples["taskcast_frames_sent_total", chat] >= 3
        assert samples["taskcast_error_frames_total", (("code", "invalid_json"), *chat)] == 1
        assert samples.get(("taskcast_dropped_frames_total", chat), 0) == 0
        # One kept message ("measured"); the join notice is transient and has no lag to measure.
        assert samples["taskcast_reliable_delivery_lag_seconds_count", (("layer", "queue"),)] >= 1
        assert samples["taskcast_redis_reconnects_total", (("layer", "chat"),)] == 0
    samples = await scrape(server)
    assert samples["taskcast_connections", chat] == 0
