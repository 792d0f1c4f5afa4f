from __future__ import annotations

import asyncio

import pytest

from taskcast import Overflow
from taskcast.outbox import Outbox

pytestmark = pytest.mark.anyio


async def test_items_come_out_in_order() -> None:
    box: Outbox[int] = Outbox(3)
    for i in range(3):
        box.put(i)
    assert [await box.get() for _ in range(3)] == [0, 1, 2]


async def test_a_full_outbox_drops_its_oldest_and_counts() -> None:
    box: Outbox[int] = Outbox(2, Overflow.DROP_OLDEST)
    for i in range(5):
        box.put(i)
    assert (len(box), box.dropped) == (2, 3)
    assert [await box.get(), await box.get()] == [3, 4]


async def test_a_full_outbox_under_close_stops_delivering() -> None:
    box: Outbox[int] = Outbox(2, Overflow.CLOSE)
    for i in range(3):
        box.put(i)
    assert box.overflowed
    assert await box.get() is None


async def test_get_waits_for_a_put() -> None:
    box: Outbox[str] = Outbox(1)
    waiter = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    box.put("x")
    assert await asyncio.wait_for(waiter, 1) == "x"


def test_an_outbox_holds_something() -> None:
    with pytest.raises(ValueError):
        Outbox(0)


async def test_a_catch_up_page_is_taken_whole_past_the_bound() -> None:
    box: Outbox[int] = Outbox(2, Overflow.CLOSE)
    box.extend([1, 2, 3])
    assert not box.overflowed and [box.pop(), box.pop(), box.pop(), box.pop()] == [1, 2, 3, None]
