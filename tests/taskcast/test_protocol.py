from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel

from taskcast import BaseMessage, Consumer, event_handler, ws_handler
from taskcast.protocol import (
    MAX_REF_LENGTH,
    REF_SCAN_LIMIT,
    Accepted,
    Rejected,
    decode,
    ref_of,
)


class Point(BaseModel):
    x: int
    y: int


class Move(BaseMessage):
    action: Literal["move"] = "move"
    payload: Point


class Moved(BaseMessage):
    action: Literal["moved"] = "moved"
    payload: Point


class Board(Consumer):
    layer_alias = "main"
    groups = ("board",)

    @ws_handler
    async def move(self, message: Move) -> None: ...

    @event_handler
    async def moved(self, event: Moved) -> None: ...


def rejected(text: str) -> Rejected:
    result = decode(text, Board.handlers)
    assert isinstance(result, Rejected), result
    return result


def test_a_valid_frame_is_accepted_with_its_ref_and_handler() -> None:
    result = decode('{"action": "move", "payload": {"x": 1, "y": 2}, "ref": "a"}', Board.handlers)
    assert isinstance(result, Accepted)
    assert result.message == Move(payload=Point(x=1, y=2))
    assert (result.ref, result.handler.name) == ("a", "move")


@pytest.mark.parametrize(
    ("text", "code", "detail"),
    [
        ("{nope", "invalid_json", "not valid JSON"),
        ("[" * 100_000, "invalid_json", "nested too deeply"),
        ("[1, 2]", "invalid_message", "JSON object"),
        ('"move"', "invalid_message", "JSON object"),
        ('{"payload": {}}', "invalid_message", "no action"),
        ('{"action": 5}', "invalid_message", "must be a string"),
        ('{"action": "jump"}', "unknown_action", "Unknown action 'jump'; accepted: move, ping"),
        ('{"action": "moved"}', "unknown_action", "sent by the server"),
        ('{"action": "move", "ref": 5}', "invalid_message", "ref must be a string"),
    ],
)
def test_bad_frames_are_rejected_with_a_code(text: str, code: str, detail: str) -> None:
    error = rejected(text).error.payload
    assert error.code == code
    assert detail in error.detail


def test_a_long_unknown_action_is_shortened_in_the_detail() -> None:
    error = rejected(json.dumps({"action": "x" * 5000})).error.payload
    assert len(error.detail) < 200


def test_an_overlong_ref_is_refused() -> None:
    ref = "r" * (MAX_REF_LENGTH + 1)
    text = json.dumps({"action": "ping", "ref": ref})
    assert rejected(text).error.payload.code == "invalid_message"


def test_invalid_payloads_list_each_problem_without_the_input() -> None:
    result = rejected('{"action": "move", "payload": {"x": "left"}, "ref": "9"}')
    assert result.ref == "9"
    error = result.error.payload
    assert error.code == "invalid_payload"
    assert error.errors is not None
    found = {(tuple(item.loc), item.type) for item in error.errors}
    assert found == {(("payload", "x"), "int_parsing"), (("payload", "y"), "missing")}
    assert "left" not in result.error.model_dump_json()


def test_unexpected_top_level_fields_are_invalid_payloads() -> None:
    error = rejected('{"action": "ping", "extra": true}').error.payload
    assert error.code == "invalid_payload"
    assert error.errors is not None
    assert error.errors[0].loc == ["extra"]


@pytest.mark.parametrize(
    "text",
    [
        r'{"action": "ping", "ref": "\ud800"}',
        r'{"action": "ping", "payload": {"x": "a\udfff"}}',
    ],
)
def test_an_unpaired_surrogate_is_invalid_json_before_it_reaches_a_handler(text: str) -> None:
    result = decode(text, Board.handlers)
    assert isinstance(result, Rejected) and result.error.payload.code == "invalid_json"


def test_a_paired_surrogate_escape_is_just_a_character() -> None:
    result = decode(r'{"action": "ping", "ref": "\ud83d\ude00"}', Board.handlers)
    assert not isinstance(result, Rejected) and result.ref == "😀"


def test_the_ref_a_rate_limited_error_answers_is_read_only_where_it_is_cheap() -> None:
    assert ref_of('{"action": "ping", "ref": "r1"}') == "r1"
    too_long = '{"ref": "' + "x" * (MAX_REF_LENGTH + 1) + '"}'
    for text in ('{"ref": 5}', "[1]", "not json", '{"ref": "\\ud800"}', too_long):
        assert ref_of(text) is None
    big = '{"action": "x", "ref": "r2", "payload": [' + ",".join(["1"] * REF_SCAN_LIMIT) + "]}"
    assert ref_of(big) is None  # not parsed: the limit spares the parse
