from __future__ import annotations

from typing import Literal

import pytest

from taskcast import (
    BaseMessage,
    Consumer,
    DefinitionError,
    PingMessage,
    PongMessage,
    event_handler,
    ws_handler,
)


class Hello(BaseMessage):
    action: Literal["hello"] = "hello"
    payload: str


class Hi(BaseMessage):
    action: Literal["hi"] = "hi"
    payload: str


class Tick(BaseMessage):
    action: Literal["tick"] = "tick"
    payload: int


class Greeter(Consumer):
    layer_alias = "main"
    groups = ("lobby",)

    @ws_handler(summary="Say hello", tags=("greet",), broadcasts=(Hi,))
    async def hello(self, message: Hello) -> Hi:
        return Hi(payload=message.payload)

    @event_handler
    async def on_tick(self, event: Tick) -> Hi | None:
        """Count a tick.

        More words here."""
        return None


def test_types_come_from_the_annotations() -> None:
    table = Greeter.handlers
    assert set(table.ws) == {"ping", "hello"}
    hello = table.ws["hello"]
    assert (hello.input_type, hello.outputs) == (Hello, (Hi,))
    assert hello.spec.summary == "Say hello"
    assert hello.spec.tags == ("greet",)
    assert hello.spec.broadcasts == (Hi,)
    assert table.ws["ping"].outputs == (PongMessage,)
    assert table.events["tick"].outputs == (Hi,)
    assert table.event_types == (Tick,)


def test_summary_defaults_to_the_docstrings_first_line() -> None:
    assert Greeter.handlers.events["tick"].summary == "Count a tick."


def test_the_decorators_return_the_function_itself() -> None:
    assert Greeter.__dict__["hello"].__name__ == "hello"


def test_the_incoming_union_validates_by_action() -> None:
    message = Greeter.handlers.incoming.validate_python({"action": "hello", "payload": "x"})
    assert message == Hello(payload="x")
    assert Greeter.handlers.incoming.validate_python({"action": "ping"}) == PingMessage()


def test_two_handlers_for_one_action_are_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="both handle ws action 'hello'"):

        class Twice(Consumer):
            @ws_handler
            async def one(self, message: Hello) -> None: ...

            @ws_handler
            async def two(self, message: Hello) -> None: ...


def test_a_subclass_may_override_a_handler_by_name() -> None:
    class Quiet(Greeter):
        @ws_handler
        async def hello(self, message: Hello) -> None: ...

    assert Quiet.handlers.ws["hello"].outputs == ()


@pytest.mark.parametrize(
    "source",
    [
        "def h(self, message: Hello) -> None: ...",  # not async
        "async def h(self, message: int) -> None: ...",  # not a message
        "async def h(self, message) -> None: ...",  # no annotation
        "async def h(self, a: Hello, b: Hello) -> None: ...",  # two arguments
        "async def h(self, message: Hello) -> int: ...",  # returns no message
    ],
)
def test_malformed_handlers_are_definition_errors(source: str) -> None:
    namespace: dict[str, object] = {"Hello": Hello}
    exec(source, namespace)
    with pytest.raises(DefinitionError):
        type("Bad", (Consumer,), {"h": ws_handler(namespace["h"])})  # type: ignore[arg-type]


def test_consumer_declarations_are_checked() -> None:
    with pytest.raises(DefinitionError, match="no layer_alias"):
        type("NoLayer", (Consumer,), {"groups": ("g",)})
    with pytest.raises(DefinitionError, match="tuple of group names"):
        type("StrGroups", (Consumer,), {"layer_alias": "x", "groups": "room"})
