from __future__ import annotations

import httpx

from taskcast.testing import LiveServer


def test_healthz(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/healthz", timeout=5)
    assert (response.status_code, response.json()["status"]) == (200, "ok")


def test_the_index_is_the_showcase_page(server: LiveServer) -> None:
    response = httpx.get(server.url, timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for source in ["chat", "reliable", "notification", "analytics"]:
        assert f'id="socket-{source}"' in response.text
    assert 'href="/asyncapi"' in response.text
    assert f'href="http://{server.host}:5555/"' in response.text  # Flower, from the settings
    for asset in ["/static/showcase.js", "/static/showcase.css"]:
        assert httpx.get(f"{server.url}{asset}", timeout=5).status_code == 200
