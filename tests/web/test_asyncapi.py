"""The AsyncAPI document, its YAML twin and its page, generated from the running app."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal, get_args

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from showcase.settings import Settings
from taskcast import BaseMessage, Consumer, ws_handler
from taskcast.asyncapi import build_document, consumer_routes, render_page
from taskcast.asyncapi.codes import CLOSE_CODES, ERROR_CODES
from taskcast.asyncapi.markup import render_blocks, render_inline
from taskcast.cursor import decode_cursor
from taskcast.messages import ErrorCode, ErrorMessage, GapMessage
from taskcast.protocol import MAX_REF_LENGTH
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


class Anchors(HTMLParser):
    """The page's ids, and every href and src it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("href", "src") and value is not None:
                self.links.append(value)


def anchors_of(page: str) -> Anchors:
    parser = Anchors()
    parser.feed(page)
    return parser


def section(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    return page[start : page.index("</section>", start)]


def row(html_text: str, name: str) -> str:
    match = re.search(rf'<tr><td data-label="Name"><code>{re.escape(name)}</code></td>.*?</tr>',
                      html_text)  # fmt: skip
    assert match, f"no row for {name}"
    return match[0]


@pytest.fixture
def page(server: LiveServer) -> str:
    return fetch(server, "/asyncapi").text


def test_payloads_are_property_tables_with_constraints(page: str) -> None:
    message = section(page, "message-ReliableChatMessage")
    text = row(message, "message")
    assert "string" in text and "required" in text and "<code>maxLength: 4096</code>" in text
    assert "<code>maxLength: 128</code>" in row(message, "ref")
    assert "optional" in row(message, "ref")
    reliable = section(page, "message-ReliableChatNotificationMessageWithCursor")
    assert "string (date-time)" in row(reliable, "sent_at")
    assert "boolean" in row(reliable, "replayed")
    error = section(page, "schema-ErrorPayload")
    code = row(error, "code")
    assert "one of" in code and "&quot;invalid_json&quot;" in code
    assert "array of" in row(error, "errors") and "| null" in row(error, "errors")
    room = section(page, "schema-RoomChatInput")
    assert "<code>maxLength: 200</code>" in row(room, "room_name")
    assert "default <code>null</code>" in row(room, "room_name")
    jobs = section(page, "schema-JobEventPayload")
    assert "<code>minimum: 0</code>" in row(jobs, "current")
    assert "<details><summary>JSON Schema</summary>" in message  # the raw schema, collapsed


def test_refs_link_to_schema_sections_and_every_anchor_exists(
    page: str, document: dict[str, Any]
) -> None:
    anchors = anchors_of(page)
    for name in document["components"]["schemas"]:
        assert f"schema-{name}" in anchors.ids
    assert 'href="#schema-ReliableChatInput"' in section(page, "message-ReliableChatMessage")
    assert 'href="#schema-ErrorItem"' in section(page, "schema-ErrorPayload")  # nested in a union
    internal = [link[1:] for link in anchors.links if link.startswith("#")]
    assert internal and set(internal) <= anchors.ids
    contents = page[page.index("<nav>") : page.index("</nav>")]
    for target in ("channels", "wsReliable", "messages", "message-ChatMessage", "schemas",
                   "schema-ChatInput", "errors", "error-codes", "close-codes"):  # fmt: skip
        assert f'href="#{target}"' in contents


def models_of(app: Starlette) -> dict[str, type[BaseMessage]]:
    models: dict[str, type[BaseMessage]] = {"ErrorMessage": ErrorMessage, "GapMessage": GapMessage}
    for endpoint in consumer_routes(app.routes).values():
        consumer = endpoint.consumer
        for handler in [*consumer.handlers.ws.values(), *consumer.handlers.events.values()]:
            for model in (handler.input_type, *handler.outputs, *handler.spec.broadcasts):
                models[model.__name__] = model
        for model in consumer.notices:
            models[model.__name__] = model
    return models


def test_examples_fill_every_field_and_validate_against_their_model(
    app: Starlette, document: dict[str, Any]
) -> None:
    models = models_of(app)
    envelope = {"ref", "cursor", "sent_at", "replayed"}
    for key, message in document["components"]["messages"].items():
        model = models[message["title"]]
        properties = message["payload"]["properties"]
        for example in message["examples"]:
            frame = example["payload"]
            assert set(frame) <= set(properties)
            model.model_validate({k: v for k, v in frame.items() if k not in envelope})
            inner = properties["payload"]
            if "$ref" in inner:  # every field of the payload, optional ones too
                schema = document["components"]["schemas"][inner["$ref"].rsplit("/", 1)[1]]
                assert set(frame["payload"]) == set(schema.get("properties", {})), key
            if "ref" in frame:
                assert isinstance(frame["ref"], str) and len(frame["ref"]) <= MAX_REF_LENGTH
    job_status = document["components"]["messages"]["JobStatusMessage"]["examples"][0]
    assert job_status["payload"]["payload"]["job_id"] and job_status["payload"]["payload"]["watch"]
    event = document["components"]["messages"]["AnalyticsMessage"]["examples"][0]["payload"]
    assert event["payload"]["event"] == "page_view:/dashboard"  # the schema's own example
    chat = document["components"]["messages"]["ChatMessage"]["examples"][0]["payload"]
    assert chat["payload"]["message"] != "text" and chat["ref"]  # a request names its ref


def test_reliable_examples_carry_a_cursor_and_when_it_was_sent(
    document: dict[str, Any], page: str
) -> None:
    assert document["channels"]["wsReliable"]["x-taskcast-reliable"] is True
    assert "x-taskcast-reliable" not in document["channels"]["wsChat"]
    live, replayed = document["components"]["messages"][
        "ReliableChatNotificationMessageWithCursor"
    ]["examples"]
    for example in (live, replayed):
        frame = example["payload"]
        assert frame["action"] == "reliable_chat_notification" and frame["payload"]["message"]
        assert decode_cursor(frame["cursor"])  # one the server could take back
        assert frame["sent_at"] == "2026-11-26T12:00:00.000Z"
        assert datetime.fromisoformat(frame["sent_at"]).tzinfo is not None
    assert "replayed" not in live["payload"] and replayed["payload"]["replayed"] is True
    plain = document["components"]["messages"]["ChatNotificationMessage"]["examples"]
    assert len(plain) == 1 and not {"cursor", "sent_at"} & set(plain[0]["payload"])
    shown = section(page, "message-ReliableChatNotificationMessageWithCursor")
    assert "&quot;cursor&quot;: " in shown and "&quot;sent_at&quot;: &quot;2026-11-26T12" in shown
    assert "&quot;replayed&quot;: true" in shown
    assert "reliable</span>" in section(page, "wsReliable")


def test_error_and_close_codes_are_listed(page: str) -> None:
    assert set(ERROR_CODES) == set(get_args(ErrorCode))
    readme = (ROOT / "README.md").read_text()
    errors = readme[readme.index("### Errors") : readme.index("## Layers")]
    assert set(re.findall(r"^\| `(\w+)` \|", errors, re.M)) == set(ERROR_CODES)
    assert set(CLOSE_CODES) == {1001, 1008, 1009, 1011, 1013, 4400, 4401, 4403}
    listed = section(page, "errors")
    for code in ERROR_CODES:
        assert f'id="error-{code}"><td><code>{code}</code>' in listed
    for number in CLOSE_CODES:
        assert f'id="close-{number}"><td><code>{number}</code>' in listed
    assert "<code>TASKCAST_MAX_FRAME_BYTES</code>" in listed  # markup rendered there too


def test_docstring_markup_is_rendered_and_everything_else_escaped(page: str) -> None:
    assert "``" not in re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)  # raw JSON aside
    assert "the pub/sub <code>chat</code> layer" in section(page, "wsChat")
    text = (
        "Uses ``x < y`` and `one`, **strong** and *soft*.\n\n"
        "- first item\n  continued\n- [docs](https://example.com/a?b=1&c=2)\n\n"
        "<script>alert(1)</script> [bad](javascript:alert(1)) <b onclick=x>"
    )
    assert render_blocks(text) == (
        "<p>Uses <code>x &lt; y</code> and <code>one</code>, <strong>strong</strong> and"
        " <em>soft</em>.</p><ul><li>first item continued</li>"
        '<li><a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer">docs</a></li>'
        "</ul><p>&lt;script&gt;alert(1)&lt;/script&gt; [bad](javascript:alert(1))"
        " &lt;b onclick=x&gt;</p>"
    )
    assert render_inline("2 * 3 * 4 and snake_case_name") == "2 * 3 * 4 and snake_case_name"


class Defaced(Consumer):
    """A consumer whose texts try to inject <script>alert("doc")</script>.

    A second paragraph with ``code``.

    - an item
    - another <img src=x onerror=alert(1)>
    """

    @ws_handler
    async def shout(self, message: Shout) -> Echo:
        """<script>alert("handler")</script>"""
        return Echo(payload=message.payload)


def test_descriptions_cannot_inject_html() -> None:
    endpoints = consumer_routes([WebSocketRoute("/ws/defaced", Defaced.as_asgi())])
    document = build_document(endpoints, title="<script>t</script>", version="1", host="h")
    page = render_page(document)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;doc&quot;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&quot;handler&quot;)&lt;/script&gt;" in page
    assert "<p>A second paragraph with <code>code</code>.</p>" in page
    assert "<li>another &lt;img src=x onerror=alert(1)&gt;</li>" in page
    assert set(anchors_of(page).tags) >= {"table", "nav", "details"}


def test_nothing_is_loaded_from_elsewhere(page: str) -> None:
    anchors = anchors_of(page)
    assert not {"script", "link", "img", "iframe"} & anchors.tags
    for link in anchors.links:
        assert link.startswith("#") or re.fullmatch(r"asyncapi\.(json|yaml)", link), link
    assert "url(" not in page and "@import" not in page
    assert 'name=viewport content="width=device-width' in page and "@media(max-width" in page
