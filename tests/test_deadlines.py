"""tessera.deadlines: many deadlines on one timer."""

from __future__ import annotations

import asyncio

import pytest

from tessera.deadlines import Deadlines

pytestmark = pytest.mark.anyio


async def test_items_expire_in_deadline_order_and_cleared_ones_never() -> None:
    expired: list[str] = []
    deadlines: Deadlines[str] = Deadlines(expired.append, slack=0.001)
    now = asyncio.get_running_loop().time()
    deadlines.set("late", now + 0.06)
    deadlines.set("early", now + 0.02)  # earlier than the timer was due: moves it
    deadlines.set("cleared", now + 0.01)
    deadlines.clear("cleared")
    for _ in range(400):  # bounded: 2 s at most
        if len(expired) == 2:
            break
        await asyncio.sleep(0.005)
    assert expired == ["early", "late"] and len(deadlines) == 0
    deadlines.close()


async def test_an_expire_that_raises_does_not_stop_the_other_deadlines() -> None:
    expired: list[str] = []

    def expire(item: str) -> None:
        if item == "bad":
            raise RuntimeError("expire failed")
        expired.append(item)

    loop = asyncio.get_running_loop()
    seen: list[object] = []
    loop.set_exception_handler(lambda _, context: seen.append(context.get("exception")))
    try:
        deadlines: Deadlines[str] = Deadlines(expire, slack=0.001)
        now = loop.time()
        deadlines.set("bad", now + 0.01)
        deadlines.set("good", now + 0.01)
        deadlines.set("later", now + 0.05)
        for _ in range(400):  # bounded: 2 s at most
            if len(expired) == 2:
                break
            await asyncio.sleep(0.005)
    finally:
        loop.set_exception_handler(None)
    assert expired == ["good", "later"]
    assert any(isinstance(e, RuntimeError) for e in seen)
    deadlines.close()
