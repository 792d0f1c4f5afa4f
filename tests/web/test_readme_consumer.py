"""The README's "Writing a consumer" example, as written: mounted on the app, it has the app's
guards (here: tokens), its metrics, and its layer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from showcase.settings import Settings
from taskcast.testing import LiveServer, connect

pytestmark = pytest.mark.anyio

README = (Path(__file__).parents[2] / "README.md").read_text()


def run(code: str, namespace: dict[str, Any]) -> None:
    # As a user's module runs it: without this test module's __future__ flags.
    exec(compile(code, "README.md", "exec", dont_inherit=True), namespace)


def example() -> dict[str, Any]:
    section = README.split("## Writing a consumer", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    run(blocks[0], namespace)  # the consumer, as written
    return namespace


async def test_the_readme_consumer_mounted_on_the_app_has_its_guards(
    redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = example()
    section = README.split("## Writing a consumer", 1)[1].split("\n## ", 1)[0]
    mount = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TASKCAST_KEY_PREFIX", key_prefix)
    monkeypatch.setenv("TASKCAST_WS_TOKENS", '{"good": null}')
    run(mount, namespace)  # create_app(consumers={"/ws/lobby": Lobby}), from the environment
    app = namespace["app"]
    assert app.state.settings == Settings()
    with LiveServer(app) as server:
        async with connect(server.ws_url("/ws/lobby")) as stranger:
            assert await stranger.wait_closed() == 4401  # the app's tokens apply
        async with connect(server.ws_url("/ws/lobby?token=good")) as client:
            assert (await client.expect("greeting"))["payload"] == "someone came in"
            await client.send({"action": "hello", "payload": "you"}, ref="1")
            reply = await client.expect("greeting")
            assert (reply["payload"], reply["ref"]) == ("hello, you", "1")
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{server.url}/metrics", timeout=5)).text
        assert 'taskcast_frames_received_total{endpoint="/ws/lobby"} 1.0' in metrics
