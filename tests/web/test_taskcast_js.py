"""The browser client, taskcast.js: served at /taskcast.js, typed by /asyncapi.d.ts, and run
under Node's own test runner (tests/js/), whose tests start ``python -m web`` themselves (this
interpreter) on the suite's Redis with a key prefix of this test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from taskcast.asyncapi.typescript import declarations
from taskcast.testing import LiveServer

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="no node here")
def test_taskcast_js_under_node(redis_url: str, key_prefix: str) -> None:
    assert NODE is not None
    env = {
        **os.environ,
        "TASKCAST_PYTHON": sys.executable,
        "REDIS_URL": redis_url,
        "TASKCAST_KEY_PREFIX": key_prefix,
    }
    command = [NODE, "--experimental-websocket", "--test", "tests/js/"]
    try:
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False
        )
    except subprocess.TimeoutExpired as late:
        pytest.fail(f"node --test ran past 240 s:\n{late.stdout!r}\n{late.stderr!r}")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_the_module_and_its_declarations_are_served(server: LiveServer) -> None:
    module = httpx.get(f"{server.url}/taskcast.js", timeout=5)
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    assert module.text == (files("taskcast") / "static" / "taskcast.js").read_text("utf-8")
    assert "export function connect(url, options = {})" in module.text
    types = httpx.get(f"{server.url}/asyncapi.d.ts", timeout=5)
    assert types.status_code == 200
    assert types.headers["content-type"] == "application/typescript; charset=utf-8"
    reliable = "export interface WsReliable extends Channel {"
    assert reliable in types.text
    body = types.text.split(reliable, 1)[1].split("\n}\n", 1)[0]
    assert "reliable_chat: ReliableChatInput;" in body
    assert "reliable_chat_notification: ReliableChatPayload;" in body
    assert "gap: GapPayload;" in body
    assert (
        "export function connect(url: `${string}/ws/room/${string}` | "
        "`${string}/ws/room/${string}?${string}`, options?: Options): Client<WsRoomRoomName>;"
    ) in types.text


def test_json_schemas_become_typescript_types() -> None:
    payload = {
        "type": "object",
        "properties": {
            "kind": {"enum": ["a", "b"]},
            "fixed": {"const": 3},
            "items": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
            "nested": {"$ref": "#/components/schemas/Nested"},
            "odd-name": {"type": "boolean", "description": "Says */ safely"},
            "anything": {"not": {}},
            "either": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["kind"],
    }
    message = {"payload": {"properties": {"action": {"const": "go"}, "payload": payload}}}
    document = {
        "info": {"title": "T", "version": "1"},
        "channels": {"wsGo": {"address": "/ws/go/{name}", "messages": {}}},
        "operations": {
            "op": {
                "action": "receive",
                "channel": {"$ref": "#/channels/wsGo"},
                "messages": [{"$ref": "#/components/messages/Go"}],
            }
        },
        "components": {
            "messages": {"Go": message},
            "schemas": {"Nested": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        },
    }
    text = declarations(document)
    assert "export type Nested = {\n  n?: number;\n};" in text
    for line in [
        'kind: "a" | "b";',
        "fixed?: 3;",
        "items?: (string | null)[];",
        "nested?: Nested;",
        '/** Says *\\/ safely */\n      "odd-name"?: boolean;',
        "anything?: unknown;",
        "either?: number;",
        "map?: { [key: string]: string };",
    ]:
        assert f"      {line}" in text, line
    assert "export function connect(url: `${string}/ws/go/${string}`" in text
