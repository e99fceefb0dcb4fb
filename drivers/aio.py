"""Small asyncio helpers shared by the drivers library and the gateway (which may import drivers, never the reverse).

``cancel_and_wait`` is the one way a task is stopped in this tree. A plain ``task.cancel(); await task`` can hang
for ever on Python 3.11: ``asyncio.wait_for`` (used inside pymodbus, websockets and the ``ocpp`` library) can lose a
cancellation that races with a result, and the task then carries on. So the cancellation is repeated until the
task has really ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RECANCEL_S = 0.1
"""How long to wait for a cancelled task before cancelling it again."""


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any] | None] | asyncio.Future[Any] | None,
                          ) -> list[BaseException]:
    """Cancel every task (None is skipped) and wait until each has ended; returns the exceptions other than
    cancellation that tasks ended with (a task that crashed before it was cancelled), for the caller to judge.

    If the caller itself is cancelled meanwhile (its own stopper repeats the cancellation too), it goes on
    stopping the tasks until they have ended and only then lets its cancellation propagate: a cleanup cut short
    would leave a task running that nobody cancels again."""
    if tasks is None or isinstance(tasks, asyncio.Future):
        tasks = [tasks]
    pending = {t for t in tasks if t is not None}
    errors: list[BaseException] = []
    ended: set[asyncio.Future[Any]] = set()
    interrupted = False
    while pending:
        for task in pending:
            task.cancel()
        try:
            done, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
        except asyncio.CancelledError:
            interrupted = True
            continue
        ended |= done
    if interrupted:
        raise asyncio.CancelledError
    for task in ended:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            errors.append(error)
    return errors
