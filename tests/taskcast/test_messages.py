from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from taskcast import BaseMessage, DefinitionError, ErrorMessage, PingMessage
from taskcast.protocol import encode


class Greeting(BaseModel):
    text: str


class Greet(BaseMessage):
    action: Literal["greet"] = "greet"
    payload: Greeting


def test_action_comes_from_the_literal() -> None:
    assert Greet.action_name == "greet"
    assert Greet(payload=Greeting(text="hi")).action == "greet"


@pytest.mark.parametrize(
    "body",
    [
        "payload: int = 0",  # no action of its own
        "action: str = 'x'",  # not a Literal
        "action: Literal['x', 'y'] = 'x'",  # two values
        "action: Literal['x']",  # no default
        "action: Literal['x'] = 'y'",  # default differs
    ],
)
def test_a_message_without_a_one_value_literal_action_is_a_definition_error(body: str) -> None:
    source = f"class Broken(BaseMessage):\n    {body}\n"
    with pytest.raises(DefinitionError, match="one-value Literal"):
        exec(source, {"BaseMessage": BaseMessage, "Literal": Literal})


def test_messages_refuse_other_actions_and_extra_fields() -> None:
    with pytest.raises(ValidationError):
        Greet.model_validate({"action": "other", "payload": {"text": "hi"}})
    with pytest.raises(ValidationError):
        Greet.model_validate({"action": "greet", "payload": {"text": "hi"}, "extra": 1})


def test_encode_is_utf8_json_with_the_ref_last() -> None:
    text = encode(Greet(payload=Greeting(text="héllo 💬")), ref="r-1")
    assert "💬" in text  # not ASCII-escaped
    assert json.loads(text) == {"action": "greet", "payload": {"text": "héllo 💬"}, "ref": "r-1"}
    assert json.loads(encode(PingMessage())) == {"action": "ping", "payload": None}


def test_error_frames_have_one_shape() -> None:
    assert json.loads(encode(ErrorMessage.of("invalid_json", "bad"), ref="7")) == {
        "action": "error",
        "payload": {"code": "invalid_json", "detail": "bad"},
        "ref": "7",
    }
    with pytest.raises(ValidationError):
        ErrorMessage.of("no_such_code", "x")  # type: ignore[arg-type]
