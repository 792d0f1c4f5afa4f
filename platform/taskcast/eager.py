"""Running a coroutine eagerly: its first step now, in the caller, without a task.

A fan-out hands one frame to a thousand sockets. Sending through a task per socket costs a task
wake-up per frame; but a send almost never waits (only when that client's transport is paused),
so the send's first step usually finishes it. ``step`` runs that first step; when the coroutine
does wait, ``finish`` is the awaitable that carries it on, as a task would have.

Stepping a coroutine by hand is safe only for code that awaits plain asyncio futures and never
asks for its task (``asyncio.current_task``, anyio's cancel scopes). ``steppable_send`` says,
once per connection, whether an ASGI ``send`` is one known to be: uvicorn's WebSocket protocols,
reached through nothing but Starlette's exception-handling wrappers, on versions in ``TESTED``
(the same ranges ``pyproject.toml`` declares under ``[tool.taskcast.eager-send]``). Anything
else is sent with a plain ``await``: an upgrade may cost speed, never correctness.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import warnings
from collections.abc import Callable, Coroutine
from importlib.metadata import PackageNotFoundError, version
from types import CodeType, FunctionType, MethodType
from typing import Any, TypeVar

__all__ = ["TESTED", "finish", "run_eagerly", "step", "steppable_send"]

log = logging.getLogger("taskcast.eager")

# Versions the eager send is tested on: [lowest, first untested).
TESTED: dict[str, tuple[str, str]] = {"uvicorn": ("0.35", "0.55"), "starlette": ("1.0", "1.11")}
# uvicorn's WebSocket protocols and the method each hands an app as ``send``.
_UVICORN_SENDS = (
    ("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol", "send"),
    ("uvicorn.protocols.websockets.websockets_impl", "WebSocketProtocol", "asgi_send"),
    ("uvicorn.protocols.websockets.wsproto_impl", "WSProtocol", "send"),
)

T = TypeVar("T")


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


@functools.cache
def _known_sends() -> tuple[frozenset[Any], CodeType | None]:
    """uvicorn's send functions and the code of Starlette's ``sender`` wrapper, when the
    installed versions are ones the eager send is tested on; nothing otherwise."""
    for package, (low, high) in TESTED.items():
        try:
            installed = _release(version(package))
        except PackageNotFoundError:
            installed = ()
        if not _release(low) <= installed < _release(high):
            log.info("%s %s is not one the eager send is tested on: sends are awaited", package,
                     ".".join(map(str, installed)) or "(none)")  # fmt: skip
            return frozenset(), None
    functions = set()
    for module_name, class_name, method in _UVICORN_SENDS:
        try:
            with warnings.catch_warnings():  # uvicorn deprecates one of them on import
                warnings.simplefilter("ignore")
                module = importlib.import_module(module_name)
            functions.add(getattr(getattr(module, class_name), method))
        except (ImportError, AttributeError):  # an optional protocol that is not installed
            continue
    from starlette import _exception_handler

    sender = None
    for constant in _exception_handler.wrap_app_handling_exceptions.__code__.co_consts:
        if isinstance(constant, CodeType) and constant.co_name == "wrapped_app":
            nested = (c for c in constant.co_consts if isinstance(c, CodeType))
            sender = next((c for c in nested if c.co_name == "sender"), None)
    return frozenset(functions), sender


def steppable_send(send: Callable[..., Any]) -> bool:
    """Whether ``send`` may be stepped by hand (see the module's docstring)."""
    functions, sender = _known_sends()
    for _ in range(8):  # a route's wrappers: a few at most
        if isinstance(send, MethodType):
            return send.__func__ in functions
        if not isinstance(send, FunctionType) or send.__code__ is not sender or sender is None:
            return False
        cells = dict(zip(send.__code__.co_freevars, send.__closure__ or (), strict=True))
        if "send" not in cells:
            return False
        send = cells["send"].cell_contents
    return False


class Suspended:
    """A coroutine stopped at its first wait, on ``waiting_on``."""

    __slots__ = ("coro", "waiting_on")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self.coro = coro
        self.waiting_on = waiting_on


def step(coro: Coroutine[Any, Any, T]) -> tuple[bool, T | Suspended]:
    """Run ``coro`` until it finishes (``(True, result)``) or waits (``(False, Suspended)``).
    Exceptions it raises propagate."""
    try:
        waiting_on = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, Suspended(coro, _received(waiting_on))


def _received(waiting_on: Any) -> Any:
    # What asyncio.Task does with a future a coroutine yields: clear the flag that the future's
    # __await__ set, so that it can be awaited again, here.
    if getattr(waiting_on, "_asyncio_future_blocking", False):
        waiting_on._asyncio_future_blocking = False
    return waiting_on


async def finish(suspended: Suspended) -> Any:
    """Carry on a suspended coroutine to its end, resuming it each time what it waits on is done,
    as ``asyncio.Task`` does."""
    coro, waiting_on = suspended.coro, suspended.waiting_on
    while True:
        cancelled = False
        try:
            if waiting_on is None:  # a bare yield (asyncio.sleep(0)): just let the loop run
                await asyncio.sleep(0)
            else:
                await waiting_on
        except asyncio.CancelledError:
            if waiting_on is not None and not waiting_on.done():
                waiting_on.cancel()  # as a task does; the coroutine sees it on resuming
            else:
                cancelled = waiting_on is None
        except BaseException:  # the future failed: the coroutine reads that itself on resuming
            pass
        try:
            waiting_on = coro.throw(asyncio.CancelledError()) if cancelled else coro.send(None)
            waiting_on = _received(waiting_on)
        except StopIteration as stop:
            return stop.value


def run_eagerly(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """A future for ``coro``'s result, already done when its first step finished it."""
    try:
        done, value = step(coro)
    except BaseException as exc:
        failed: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        failed.set_exception(exc)
        return failed
    if done:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        future.set_result(value)  # type: ignore[arg-type]
        return future
    assert isinstance(value, Suspended)
    return asyncio.ensure_future(finish(value))
