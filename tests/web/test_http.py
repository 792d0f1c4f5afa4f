from __future__ import annotations

import httpx

from taskcast.testing import LiveServer


def test_healthz(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/healthz", timeout=5)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_the_index_page_lists_the_four_endpoints(server: LiveServer) -> None:
    response = httpx.get(server.url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for path in ["/ws/chat", "/ws/reliable", "/ws/notifications", "/ws/analytics"]:
        assert f"<code>{path}</code>" in response.text
    assert "reliable_chat, ping" not in response.text  # actions are sorted
    assert "ping, reliable_chat" in response.text
