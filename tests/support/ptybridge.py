"""A serial null-modem cable made of two pseudo-terminals, for RTU tests on a real serial code path.

Two ``openpty`` pairs; the bridge copies what arrives on one master to the other, so a program that opens slave
``a`` talks to one that opens slave ``b`` through real tty devices (pyserial, termios, exclusive open). It runs on
the event loop's reader/writer callbacks, so it needs no task, and ``close`` stops it.

Limits: a pty transfers at memory speed whatever the baud rate, and Linux refuses even or odd parity on a pty
(``termios.error: Invalid argument``), so tests use parity N.
"""

from __future__ import annotations

import asyncio
import os
import tty


class PtyBridge:
    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._masters: list[int] = []
        self._slaves: list[int] = []
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line discipline before the program under test configures it
            os.set_blocking(master, False)
            self._masters.append(master)
            self._slaves.append(slave)  # held open so a master never reads EIO while nobody has the slave open
        self.a = os.ttyname(self._slaves[0])
        self.b = os.ttyname(self._slaves[1])
        self._pending: dict[int, bytearray] = {m: bytearray() for m in self._masters}
        first, second = self._masters
        self._loop.add_reader(first, self._forward, first, second)
        self._loop.add_reader(second, self._forward, second, first)
        self.bytes_forwarded = 0

    def _forward(self, source: int, target: int) -> None:
        try:
            data = os.read(source, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # EIO: the other side went away; nothing to forward
            return
        self.bytes_forwarded += len(data)
        self._pending[target] += data
        self._flush(target)

    def _flush(self, target: int) -> None:
        buffer = self._pending[target]
        try:
            written = os.write(target, buffer) if buffer else 0
        except (BlockingIOError, InterruptedError):
            written = 0
        del buffer[:written]
        if buffer:
            self._loop.add_writer(target, self._flush, target)
        else:
            self._loop.remove_writer(target)

    def close(self) -> None:
        for master in self._masters:
            self._loop.remove_reader(master)
            self._loop.remove_writer(master)
            os.close(master)
        for slave in self._slaves:
            os.close(slave)
        self._masters.clear()
        self._slaves.clear()
