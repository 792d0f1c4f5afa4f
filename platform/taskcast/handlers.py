"""Handler decorators and the per-consumer handler table read from them.

``@ws_handler`` marks a method that answers a client frame, ``@event_handler`` one that turns an
event from a layer into a frame for the client. The decorators attach a frozen ``HandlerSpec`` and
return the function unchanged; a consumer class reads the specs and the annotations once, when it is
defined, into a ``HandlerTable``.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Literal, TypeVar, Union, overload

from pydantic import Field, TypeAdapter

from .exceptions import DefinitionError
from .messages import BaseMessage

__all__ = ["Handler", "HandlerSpec", "HandlerTable", "event_handler", "ws_handler"]

HandlerFunc = Callable[..., Awaitable[object]]
F = TypeVar("F", bound=HandlerFunc)

_SPEC_ATTR = "__taskcast_handler__"


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """What a decorator records: the handler's kind and its documentation."""

    kind: Literal["ws", "event"]
    summary: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    broadcasts: tuple[type[BaseMessage], ...] = ()
    per_connection: bool = False


def _mark(func: F, spec: HandlerSpec) -> F:
    is_async: bool = inspect.iscoroutinefunction(func)
    if not is_async:
        raise DefinitionError(f"handler {func.__qualname__} must be an async def")
    setattr(func, _SPEC_ATTR, spec)
    return func


@overload
def ws_handler(func: F, /) -> F: ...
@overload
def ws_handler(
    *,
    summary: str | None = None,
    description: str | None = None,
    tags: tuple[str, ...] = (),
    broadcasts: tuple[type[BaseMessage], ...] = (),
) -> Callable[[F], F]: ...
def ws_handler(
    func: F | None = None,
    /,
    *,
    summary: str | None = None,
    description: str | None = None,
    tags: tuple[str, ...] = (),
    broadcasts: tuple[type[BaseMessage], ...] = (),
) -> F | Callable[[F], F]:
    """Mark ``async def handle(self, message: In) -> Out | None`` as the handler of ``In``'s action.

    A returned message goes to the sender with the request's ``ref``; ``broadcasts`` names what the
    handler sends to the groups instead (for the documentation).
    """
    spec = HandlerSpec("ws", summary, description, tags, broadcasts)
    if func is not None:
        return _mark(func, spec)
    return lambda f: _mark(f, spec)


@overload
def event_handler(func: F, /) -> F: ...
@overload
def event_handler(
    *,
    summary: str | None = None,
    description: str | None = None,
    tags: tuple[str, ...] = (),
    per_connection: bool = False,
) -> Callable[[F], F]: ...
def event_handler(
    func: F | None = None,
    /,
    *,
    summary: str | None = None,
    description: str | None = None,
    tags: tuple[str, ...] = (),
    per_connection: bool = False,
) -> F | Callable[[F], F]:
    """Mark ``async def on_event(self, event: Ev) -> Out | None`` as the handler of ``Ev``.

    The result is computed once per process and event, and sent to every local member of the
    group; pass ``per_connection=True`` when it depends on the connection (``self``).
    """
    spec = HandlerSpec("event", summary, description, tags, per_connection=per_connection)
    if func is not None:
        return _mark(func, spec)
    return lambda f: _mark(f, spec)


@dataclass(frozen=True, slots=True)
class Handler:
    """A handler bound to its consumer class, with its types read from the annotations."""

    name: str
    func: HandlerFunc
    spec: HandlerSpec
    input_type: type[BaseMessage]
    outputs: tuple[type[BaseMessage], ...]  # what it may return; () when it returns None

    @property
    def action(self) -> str:
        return self.input_type.action_name

    @property
    def summary(self) -> str | None:
        if self.spec.summary is not None:
            return self.spec.summary
        doc = inspect.getdoc(self.func)
        return doc.splitlines()[0] if doc else None


@dataclass(frozen=True, slots=True)
class HandlerTable:
    """A consumer's handlers by action, and the union its client frames are validated against."""

    ws: Mapping[str, Handler]
    events: Mapping[str, Handler]
    incoming: TypeAdapter[BaseMessage]

    @property
    def event_types(self) -> tuple[type[BaseMessage], ...]:
        return tuple(h.input_type for h in self.events.values())

    @classmethod
    def collect(cls, owner: type) -> HandlerTable:
        found: dict[str, object] = {}
        for klass in reversed(owner.__mro__):
            found.update(vars(klass))
        tables: dict[str, dict[str, Handler]] = {"ws": {}, "event": {}}
        for name, attr in found.items():
            spec = getattr(attr, _SPEC_ATTR, None)
            if not isinstance(spec, HandlerSpec) or not callable(attr):
                continue
            handler = _bind(owner, name, attr, spec)
            table = tables[spec.kind]
            if (other := table.get(handler.action)) is not None:
                raise DefinitionError(
                    f"{owner.__qualname__}: {other.name} and {name} both handle "
                    f"{spec.kind} action {handler.action!r}"
                )
            table[handler.action] = handler
        types = [h.input_type for h in tables["ws"].values()]
        union: object = (
            types[0]
            if len(types) == 1
            else Annotated[Union[tuple(types)], Field(discriminator="action")]  # noqa: UP007
        )
        adapter: TypeAdapter[BaseMessage] = TypeAdapter(union)  # type: ignore[arg-type]
        return cls(ws=tables["ws"], events=tables["event"], incoming=adapter)


def _bind(owner: type, name: str, func: HandlerFunc, spec: HandlerSpec) -> Handler:
    where = f"{owner.__qualname__}.{name}"
    try:
        hints = typing.get_type_hints(func)
    except NameError as exc:
        raise DefinitionError(f"{where}: cannot resolve its annotations ({exc})") from exc
    params = [p for p in inspect.signature(func).parameters if p != "self"]
    if len(params) != 1 or params[0] not in hints:
        raise DefinitionError(f"{where} must take one annotated message argument after self")
    input_type = hints[params[0]]
    if not (isinstance(input_type, type) and issubclass(input_type, BaseMessage)):
        raise DefinitionError(f"{where}: its argument must be annotated with a message class")
    output = hints.get("return", type(None))
    is_union = typing.get_origin(output) in (Union, UnionType)
    members = typing.get_args(output) if is_union else (output,)
    outputs = tuple(t for t in members if t is not type(None))
    if not all(isinstance(t, type) and issubclass(t, BaseMessage) for t in outputs):
        raise DefinitionError(f"{where} must return message classes or None, not {output!r}")
    return Handler(name, func, spec, input_type, outputs)
