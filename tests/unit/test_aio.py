"""``cancel_and_wait`` ends a task even when a cancellation is lost (as Python 3.11's ``wait_for`` can lose one),
and hands back what a task crashed with instead of raising it or dropping it."""

from __future__ import annotations

import asyncio
import contextlib

from drivers.aio import cancel_and_wait


async def swallows_one_cancellation() -> None:
    with contextlib.suppress(asyncio.CancelledError):  # the cancellation is lost here, as in a racing wait_for
        await asyncio.sleep(3600)
    await asyncio.sleep(3600)


async def crashes() -> None:
    raise ValueError("bug")


async def test_a_lost_cancellation_is_repeated_until_the_task_ends() -> None:
    task = asyncio.create_task(swallows_one_cancellation())
    await asyncio.sleep(0)
    assert await cancel_and_wait(task) == []
    assert task.done()


async def test_crashes_are_returned_and_none_is_skipped() -> None:
    crashed = asyncio.create_task(crashes())
    await asyncio.sleep(0)
    running = asyncio.create_task(asyncio.sleep(3600))
    errors = await cancel_and_wait([crashed, None, running])
    assert [type(e) for e in errors] == [ValueError]
    assert running.cancelled()
    assert await cancel_and_wait(None) == []


async def test_a_cancelled_caller_still_stops_its_tasks_before_it_ends() -> None:
    child: asyncio.Task[None] | None = None

    async def owner() -> None:
        nonlocal child
        child = asyncio.create_task(swallows_one_cancellation())
        try:
            await asyncio.sleep(3600)
        finally:
            await cancel_and_wait(child)  # interrupted by the owner's stopper re-cancelling it

    task = asyncio.create_task(owner())
    await asyncio.sleep(0)
    assert await cancel_and_wait(task) == []
    assert task.cancelled() and child is not None and child.done()
