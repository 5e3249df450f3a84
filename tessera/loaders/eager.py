"""A task whose first step runs at once, in the caller's loop pass: Python 3.12's
eager tasks (`asyncio.Task(..., eager_start=True)`), with the same behaviour on
3.11.

    task = start(loop, loader_batch(keys))   # the call is written before this returns

A batch dispatched by `create_task` waited for a loop pass of its own before its
request was written, behind every callback the other requests had queued: at 4
connections the dispatch tick and the batch's first step each waited there
(median 0.1, p90 0.3 ms per hop on Q4, measured in the gateway), and each wait
let the next request's work in first.

On 3.11 the coroutine's first step runs here, with the task made for it entered
as the loop's current task (so `asyncio.timeout` and `current_task()` inside it
see that task) and in the task's own context; where it stops, the task carries
it on, awaiting what it awaited and passing each outcome, or the task's
cancellation, into it.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["start"]

_NATIVE = sys.version_info >= (3, 12)


def start(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run `coro`'s first step now and the rest as a task (returned)."""
    if _NATIVE:
        return asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
    context = contextvars.copy_context()
    first: list[tuple[str, Any]] = []
    task = loop.create_task(_carry_on(coro, first), context=context)
    caller = asyncio.current_task(loop)  # set aside while the new task steps, as 3.12 does
    if caller is not None:
        asyncio.tasks._leave_task(loop, caller)
    asyncio.tasks._enter_task(loop, task)
    try:
        first.append(("yielded", context.run(coro.send, None)))
    except StopIteration as done:
        first.append(("returned", done.value))
    except BaseException as exc:  # noqa: BLE001 - the task raises it, as a task would
        first.append(("raised", exc))
    finally:
        asyncio.tasks._leave_task(loop, task)
        if caller is not None:
            asyncio.tasks._enter_task(loop, caller)
    return task


async def _carry_on(coro: Coroutine[Any, Any, T], first: list[tuple[str, Any]]) -> T:
    how, what = first[0]
    if how == "returned":
        return what  # type: ignore[no-any-return]
    if how == "raised":
        raise what
    yielded = what
    while True:
        try:
            if yielded is None:  # a bare yield (asyncio.sleep(0)): one loop pass
                await asyncio.sleep(0)
            else:  # a future it awaits: await it here, as its task would
                yielded._asyncio_future_blocking = False
                await yielded
        except BaseException as exc:  # noqa: BLE001 - its outcome, or our cancellation
            outcome: BaseException | None = exc
        else:
            outcome = None
        try:
            yielded = coro.send(None) if outcome is None else coro.throw(outcome)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

