"""The AsyncAPI document, its YAML twin and its page, generated from the running app."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml
from starlette.routing import WebSocketRoute

from showcase.settings import Settings
from taskcast import BaseMessage, Consumer, ws_handler
from taskcast.testing import LiveServer
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]


def fetch(server: LiveServer, path: str) -> httpx.Response:
    response = httpx.get(f"{server.url}{path}", timeout=10)
    assert response.status_code == 200
    return response


@pytest.fixture
def document(server: LiveServer) -> dict[str, Any]:
    return dict(fetch(server, "/asyncapi.json").json())


def operations_of(document: dict[str, Any], channel: str) -> dict[str, Any]:
    return {
        key: op
        for key, op in document["operations"].items()
        if op["channel"]["$ref"] == f"#/channels/{channel}"
    }


def messages_of(document: dict[str, Any], op: dict[str, Any], part: str = "messages") -> set[str]:
    refs = op[part] if part == "messages" else op["reply"]["messages"]
    return {document["components"]["messages"][r["$ref"].rsplit("/", 1)[1]]["name"] for r in refs}


def test_one_channel_per_endpoint_on_the_requests_host(
    document: dict[str, Any], server: LiveServer
) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert document["servers"]["default"] == {
        "host": f"{server.host}:{server.port}",
        "protocol": "ws",
        "description": "This server",
    }
    addresses = {c["address"]: c["title"] for c in document["channels"].values()}
    assert addresses == {
        "/ws/chat": "ChatConsumer",
        "/ws/reliable": "ReliableChatConsumer",
        "/ws/notifications": "NotificationConsumer",
        "/ws/analytics": "AnalyticsConsumer",
        "/ws/system": "SystemConsumer",
        "/ws/room/{room_name}": "RoomConsumer",
        "/ws/background_jobs": "BackgroundJobsConsumer",
        "/ws/jobs/{job_id}": "ShowcaseJobWatcher",
    }
    room = next(c for c in document["channels"].values() if c["title"] == "RoomConsumer")
    assert set(room["parameters"]) == {"room_name"}
    assert "room:{room_name}" in room["parameters"]["room_name"]["description"]
    jobs = next(c for c in document["channels"].values() if c["title"] == "ShowcaseJobWatcher")
    query = jobs["bindings"]["ws"]["query"]
    assert set(query["properties"]) == {"cursor", "watch"} and query["required"] == ["watch"]
    page = httpx.get(f"{server.url}/asyncapi").text
    assert "<code>{room_name}</code>: A path parameter" in page


def test_client_actions_are_receive_operations_with_their_replies(document: dict[str, Any]) -> None:
    ops = operations_of(document, "wsChat")
    receive = {k: op for k, op in ops.items() if op["action"] == "receive"}
    assert {next(iter(messages_of(document, op))) for op in receive.values()} == {"chat", "ping"}
    ping = next(op for op in receive.values() if messages_of(document, op) == {"ping"})
    assert messages_of(document, ping, "reply") == {"pong"}
    chat = next(op for op in receive.values() if messages_of(document, op) == {"chat"})
    assert "reply" not in chat
    assert chat["summary"] == "Handle chat messages"
    assert {"name": "showcase"} in chat["tags"]


def test_everything_the_server_sends_is_a_send_operation(document: dict[str, Any]) -> None:
    sent = set()
    for op in operations_of(document, "wsNotifications").values():
        if op["action"] == "send":
            sent |= messages_of(document, op)
    assert sent == {"notification_broadcast", "error", "pong"}  # pong: the reply to ping
    summaries = {op.get("summary") for op in operations_of(document, "wsNotifications").values()}
    assert "Pass a periodic notice on as a periodic notification" in summaries
    assert "Connect and disconnect notices" in summaries
    error = document["components"]["messages"]["ErrorMessage"]
    codes = document["components"]["schemas"]["ErrorPayload"]["properties"]["code"]["enum"]
    assert {"invalid_json", "unknown_action", "invalid_payload", "internal_error"} <= set(codes)
    assert error["examples"][0]["payload"]["action"] == "error"


def test_reliable_channels_document_the_cursor_and_the_gap(document: dict[str, Any]) -> None:
    for channel in ("wsReliable", "wsAnalytics"):
        assert "cursor" in document["channels"][channel]["bindings"]["ws"]["query"]["properties"]
        names = set()
        for op in operations_of(document, channel).values():
            names |= messages_of(document, op)
        assert "gap" in names
    assert "bindings" not in document["channels"]["wsChat"]
    with_cursor = document["components"]["messages"]["ReliableChatNotificationMessageWithCursor"]
    assert "cursor" in with_cursor["payload"]["properties"]


def test_every_message_has_a_schema_and_an_example_of_its_action(document: dict[str, Any]) -> None:
    for message in document["components"]["messages"].values():
        example = message["examples"][0]["payload"]
        assert example["action"] == message["name"]
        assert set(message["payload"].get("required", [])) <= set(example)


def test_the_yaml_is_the_same_document(server: LiveServer, document: dict[str, Any]) -> None:
    response = fetch(server, "/asyncapi.yaml")
    assert response.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(response.text) == document


def test_the_page_shows_every_channel_and_operation_without_scripts(
    server: LiveServer, document: dict[str, Any]
) -> None:
    page = fetch(server, "/asyncapi").text
    assert "<script" not in page and "http://" not in page.replace(server.url, "")
    for channel_id, channel in document["channels"].items():
        assert f'id="{channel_id}"' in page and f'href="#{channel_id}"' in page
        assert f"<code>{channel['address']}</code>" in page
    for op_id in document["operations"]:
        assert f'id="{op_id}"' in page and f'href="#{op_id}"' in page
    assert "&quot;action&quot;: &quot;chat_notification&quot;" in page  # examples, escaped


class Shout(BaseMessage):
    """Say it louder."""

    action: Literal["shout"] = "shout"
    payload: str


class Echo(BaseMessage):
    action: Literal["echo"] = "echo"
    payload: str


class Megaphone(Consumer):
    """A consumer defined here, and nowhere else."""

    @ws_handler
    async def shout(self, message: Shout) -> Echo:
        """Answer in capitals."""
        return Echo(payload=message.payload.upper())


def test_a_consumer_added_to_the_app_is_documented(settings: Settings) -> None:
    app = create_app(settings)
    app.router.routes.append(WebSocketRoute("/ws/megaphone", Megaphone.as_asgi()))
    with LiveServer(app) as server:
        document = fetch(server, "/asyncapi.json").json()
    channel = document["channels"]["wsMegaphone"]
    assert (channel["address"], channel["description"]) == (
        "/ws/megaphone",
        "A consumer defined here, and nowhere else.",
    )
    shout = document["operations"]["wsMegaphoneReceive_shout"]
    assert shout["summary"] == "Answer in capitals."
    assert messages_of(document, shout, "reply") == {"echo"}


@pytest.mark.skipif(shutil.which("node") is None, reason="no Node.js here")
def test_the_official_parser_reports_no_errors_and_no_warnings(server: LiveServer) -> None:
    validate = ROOT / "tools" / "asyncapi" / "validate.mjs"
    result = subprocess.run(
        ["node", str(validate), f"{server.url}/asyncapi.json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {"errors": [], "warnings": []}


def test_many_host_headers_share_one_document(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"allowed_hosts": ["*.example"]}))
    with LiveServer(app) as server:
        ask_as_many_hosts(server)
    assert set(app.state.asyncapi) == {"document", "yaml", "page"}  # whatever the hosts


def ask_as_many_hosts(server: LiveServer) -> None:
    for n in range(50):
        headers = {"Host": f"h{n}.example"}
        response = httpx.get(f"{server.url}/asyncapi.json", headers=headers)
        assert response.json()["servers"]["default"]["host"] == f"h{n}.example"
        text = httpx.get(f"{server.url}/asyncapi.yaml", headers=headers).text
        assert yaml.safe_load(text)["servers"]["default"]["host"] == f"h{n}.example"
        page = httpx.get(f"{server.url}/asyncapi", headers=headers).text
        assert f"ws://h{n}.example" in page
