"""A bus transaction that is cancelled ends, even when the answer arrives in the same loop iteration.

Python 3.11's ``asyncio.wait_for``, which pymodbus awaits every answer with, returns the answer and drops the
cancellation in that case; the bus raises it again, or a supervisor stopping its pollers would wait for ever.
"""

from __future__ import annotations

import asyncio

import pytest

from drivers import bus


async def test_a_cancellation_dropped_by_wait_for_is_raised_again() -> None:
    answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    finished_normally = False

    async def transaction() -> None:
        nonlocal finished_normally
        before = bus._cancel_requests()
        await asyncio.wait_for(answer, 1.0)  # as pymodbus does
        bus._reraise_dropped_cancel(before)
        finished_normally = True

    task = asyncio.create_task(transaction())
    await asyncio.sleep(0)
    answer.set_result(1)
    task.cancel()  # in the same iteration as the answer
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not finished_normally


async def test_no_cancellation_no_exception() -> None:
    before = bus._cancel_requests()
    await asyncio.wait_for(asyncio.sleep(0, result=1), 1.0)
    bus._reraise_dropped_cancel(before)
