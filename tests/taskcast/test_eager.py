from __future__ import annotations

import asyncio

import pytest

from taskcast.eager import Suspended, finish, run_eagerly, step

pytestmark = pytest.mark.anyio


async def quick() -> int:
    return 1


async def waits(gate: asyncio.Event, log: list[str]) -> str:
    log.append("started")
    await gate.wait()
    log.append("resumed")
    await asyncio.sleep(0)
    return "done"


async def test_a_coroutine_that_does_not_wait_finishes_in_its_first_step() -> None:
    assert step(quick()) == (True, 1)
    future = run_eagerly(quick())
    assert future.done() and future.result() == 1


async def test_a_coroutine_that_waits_is_carried_on_by_finish() -> None:
    gate, log = asyncio.Event(), []
    done, suspended = step(waits(gate, log))
    assert not done and isinstance(suspended, Suspended)
    assert log == ["started"]
    task = asyncio.ensure_future(finish(suspended))
    await asyncio.sleep(0)
    assert not task.done()
    gate.set()
    assert await asyncio.wait_for(task, 1) == "done"
    assert log == ["started", "resumed"]


async def test_cancelling_finish_cancels_the_coroutine() -> None:
    gate, log = asyncio.Event(), []
    future = run_eagerly(waits(gate, log))
    await asyncio.sleep(0)
    future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await future
    assert log == ["started"]


async def test_exceptions_reach_the_caller() -> None:
    async def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        step(fails())
    future = run_eagerly(fails())
    with pytest.raises(ValueError):
        await future

    async def fails_later(gate: asyncio.Event) -> None:
        await gate.wait()
        raise KeyError("later")

    gate = asyncio.Event()
    later = run_eagerly(fails_later(gate))
    gate.set()
    with pytest.raises(KeyError):
        await asyncio.wait_for(later, 1)
