"""tessera.loaders.eager.start: the first step at once, the rest as a task that
behaves as asyncio's own (3.12's eager tasks; on 3.11 Tessera's stand-in)."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from tessera.loaders import eager

pytestmark = pytest.mark.anyio

LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("label", default="none")


async def test_the_first_step_runs_before_start_returns_in_its_own_task_and_context() -> None:
    loop = asyncio.get_running_loop()
    seen: dict[str, Any] = {}
    outer = asyncio.current_task()
    LABEL.set("caller")

    async def work() -> str:
        seen["task"] = asyncio.current_task()
        seen["label"] = LABEL.get()
        LABEL.set("inside")
        await asyncio.sleep(0)
        seen["task after"] = asyncio.current_task()
        return LABEL.get()

    task = eager.start(loop, work())
    assert seen["task"] is task and seen["label"] == "caller"
    assert asyncio.current_task() is outer and LABEL.get() == "caller"  # given back
    assert await task == "inside"  # its context carried on with it
    assert seen["task after"] is task


async def test_what_it_awaits_passes_its_value_or_its_exception_in() -> None:
    loop = asyncio.get_running_loop()
    given: asyncio.Future[int] = loop.create_future()
    failing: asyncio.Future[int] = loop.create_future()

    async def add(future: asyncio.Future[int]) -> int:
        try:
            return await future + 1
        except KeyError as exc:
            return len(exc.args)

    first, second = eager.start(loop, add(given)), eager.start(loop, add(failing))
    loop.call_soon(given.set_result, 41)
    loop.call_soon(failing.set_exception, KeyError("a", "b"))
    assert await first == 42
    assert await second == 2


async def test_a_cancelled_task_cancels_what_it_awaits_and_its_coroutine() -> None:
    loop = asyncio.get_running_loop()
    forever: asyncio.Future[None] = loop.create_future()
    cleaned: list[str] = []

    async def wait() -> None:
        try:
            await forever
        finally:
            cleaned.append("finally")

    task = eager.start(loop, wait())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled() and forever.cancelled() and cleaned == ["finally"]


async def test_a_timeout_entered_in_the_first_step_fires() -> None:
    loop = asyncio.get_running_loop()

    async def slow() -> str:
        try:
            async with asyncio.timeout(0.01):  # needs a current task in the first step
                await loop.create_future()
        except TimeoutError:
            return "timed out"
        return "no"

    assert await eager.start(loop, slow()) == "timed out"


async def test_a_coroutine_that_never_waits_gives_its_result_or_its_exception() -> None:
    loop = asyncio.get_running_loop()

    async def done() -> str:
        return "at once"

    async def broken() -> str:
        raise ValueError("bad")

    assert await eager.start(loop, done()) == "at once"
    failed = eager.start(loop, broken())
    with pytest.raises(ValueError, match="bad"):
        await failed
