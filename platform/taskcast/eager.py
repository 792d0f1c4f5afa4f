"""Running a coroutine eagerly: its first step now, in the caller, without a task.

A fan-out hands one frame to a thousand sockets. Sending through a task per socket costs a task
wake-up per frame; but a send almost never waits (only when that client's transport is paused),
so the send's first step usually finishes it. ``step`` runs that first step; when the coroutine
does wait, ``finish`` is the awaitable that carries it on, as a task would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["finish", "run_eagerly", "step"]

T = TypeVar("T")


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
