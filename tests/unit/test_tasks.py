"""The supervisor of tasks on its own: backoff that doubles up to its cap, a task up again only once it settles
(after ``settle_s``, or a whole round for a task that reports rounds), a clean end is not a crash, and stopping a
task that is down waits for it and clears its FAULT."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.runtime.tasks import TaskSupervisor


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop turn until ``condition`` holds (no real time passes in these tests)."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the supervisor of tasks has no event for each state
            await asyncio.sleep(0)


def test_backoff_doubles_from_the_first_and_is_capped() -> None:
    tasks = TaskSupervisor(first_backoff_s=1.0, most_backoff_s=5.0)
    assert [tasks._backoff_s(n) for n in (1, 2, 3, 4, 40)] == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_a_task_that_reports_rounds_is_up_again_after_a_round_not_after_settle_s() -> None:
    tasks = TaskSupervisor(first_backoff_s=0.0, settle_s=0.0)
    changes: list[dict[str, str]] = []
    tasks.on_change(lambda: changes.append(tasks.down))
    attempts = 0
    release = asyncio.Event()

    async def poller() -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ValueError(f"bug {attempts}")
        await release.wait()  # a long round: settle_s (0 s) alone must not bring it back
        tasks.ran("poll")
        await asyncio.Event().wait()

    tasks.start("poll", poller, by_rounds=True)
    await until(lambda: attempts == 3)
    for _ in range(5):
        await asyncio.sleep(0)
    assert tasks.down == {"poll": "ValueError: bug 2"} and tasks.restarts("poll") == 2
    release.set()
    await until(lambda: not tasks.down)
    assert changes == [{"poll": "ValueError: bug 1"}, {}]  # down once, up once: no flapping in between
    await tasks.stop_all()
    assert tasks.names() == []


async def test_a_task_that_ends_by_itself_is_not_restarted_and_stopping_a_down_task_clears_it() -> None:
    tasks = TaskSupervisor(first_backoff_s=3600.0)
    done = asyncio.Event()

    async def ends() -> None:
        done.set()

    async def crashes() -> None:
        raise RuntimeError("bug")

    tasks.start("ends", ends)
    tasks.start("crashes", crashes)
    await done.wait()
    await until(lambda: "crashes" in tasks.down and "ends" not in tasks.names())
    await tasks.stop("crashes")  # waiting for its restart, an hour away: stopped at once
    assert tasks.down == {} and tasks.names() == []
