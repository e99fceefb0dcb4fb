"""Shared test rules. Real sockets and serial lines are used throughout; see the individual fixtures.

Every test is hermetic: it reads English whatever the machine's locale, and it must not leave an asyncio task
running or a socket open behind it. The autouse fixtures below fail a test that does (a leaked poller or connection
would otherwise carry on into later tests and make them flaky in ways no one can trace back). Sockets are told apart
from other file descriptors through /proc.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest

os.environ["POWERSHARE_LANG"] = "en"
"""The tests read English messages, whatever the machine's locale; a test of another language sets its own
environment (the command line) or sends Accept-Language (the web). The browser rig sets its own Accept-Language."""

SETTLE_ROUNDS = 50
"""Event-loop turns a finished test's tasks get to end (a cancelled task needs a few)."""
SOCKET_GRACE_S = 1.0
"""How long closed transports get to release their file descriptors (real time: the OS closes them)."""


def _sockets() -> set[str]:
    """The open sockets of this process, as 'socket:[inode]' (two fds of one socket count once)."""
    found: set[str] = set()
    try:
        names = os.listdir("/proc/self/fd")
    except FileNotFoundError:  # not Linux: the check is skipped
        return found
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


@pytest.fixture(autouse=True)
def no_leaked_sockets(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a socket open (higher-scoped fixtures are set up before and do not count)."""
    if inspect.iscoroutinefunction(request.function):
        request.getfixturevalue("no_leaked_tasks")
    before = _sockets()
    yield
    leaked = _sockets() - before
    deadline = time.monotonic() + SOCKET_GRACE_S
    while leaked and time.monotonic() < deadline:  # only then: a full collection per test would cost seconds
        gc.collect()  # a socket only the garbage still refers to is closed by its finaliser
        leaked = _sockets() - before
        if leaked:
            time.sleep(0.01)
    if leaked:
        pytest.fail(f"the test left {len(leaked)} socket(s) open: {sorted(leaked)}", pytrace=False)


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail an async test that leaves a task running (pytest-asyncio would cancel it silently)."""
    yield
    current = asyncio.current_task()
    left: set[asyncio.Task[object]] = set()
    for _ in range(SETTLE_ROUNDS):
        left = {t for t in asyncio.all_tasks() if t is not current and not t.done()}
        if not left:
            return
        await asyncio.sleep(0)
    names = sorted(f"{t.get_name()} ({t.get_coro()!r})" for t in left)
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    pytest.fail(f"the test left {len(left)} task(s) running: {names}", pytrace=False)
