"""``powershare run`` as a real process for the end-to-end tests: started, read through its log, signalled."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from support.paths import REPO


class GatewayProcess:
    """One ``powershare run`` process at a time; its log (standard output and error) goes to ``log``, appended at
    each start, so a restart's lines follow the previous run's."""

    def __init__(self, config: Path, state: Path, log: Path) -> None:
        self.config, self.state, self.log = config, state, log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, ready: str, timeout_s: float = 15.0) -> re.Match[str]:
        """Start it and wait until this run's log matches ``ready`` (a regular expression); the match."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config),
                "--state-dir", str(self.state), cwd=REPO, stdout=out, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
        async with asyncio.timeout(timeout_s):
            while True:
                found = re.search(ready, self.text()[offset:])
                if found:
                    return found
                assert self.process.returncode is None, self.text()
                await asyncio.sleep(0.05)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def stop(self, sig: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        async with asyncio.timeout(10):
            return await self.process.wait()

    async def kill_if_running(self) -> None:
        """Whatever the test did: no process is left behind."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
