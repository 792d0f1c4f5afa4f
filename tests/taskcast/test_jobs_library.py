"""taskcast.jobs without a worker: what a job's result becomes on its stream."""

from __future__ import annotations

from taskcast.jobs import streamable


def test_any_result_can_be_streamed() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert streamable({"a": 1}) == ({"a": 1}, None)
    assert streamable(float("nan")) == ("nan", None)
    assert streamable(10**5000)[0] == "<a int that cannot be shown>"
    assert streamable(Unprintable())[0] == "<a Unprintable that cannot be shown>"
    assert isinstance(streamable(deep)[0], str)
