"""A real MQTT broker for tests: mosquitto (the Debian package) on a free loopback port with a generated config,
and a small subscriber that records what the broker delivers.

Tests that need it skip with a reason when ``mosquitto`` is not installed (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed (apt-get install "
                                                               "mosquitto mosquitto-clients)")


@dataclass
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    log: Path | None = None
    pid: int | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mosquitto(directory: Path, *, users: dict[str, str] | None = None, port: int | None = None) -> Iterator[Broker]:
    """A broker on 127.0.0.1 (on ``port``, to restart one, or a free port); with ``users`` it refuses anonymous
    clients and checks passwords."""
    assert MOSQUITTO is not None
    directory.mkdir(parents=True, exist_ok=True)
    # Started as root, mosquitto would switch to its own user, which cannot read a test's temporary directory.
    lines = [f"user {getpass.getuser()}", "persistence false", f"log_dest file {directory / 'mosquitto.log'}",
             "log_type all"]
    if users:
        passwd = directory / "passwd"
        passwd.write_text("", encoding="utf-8")
        passwd.chmod(0o600)
        for user, password in users.items():
            subprocess.run([_passwd_tool(), "-b", str(passwd), user, password], check=True, capture_output=True)
        lines += ["allow_anonymous false", f"password_file {passwd}"]
    else:
        lines += ["allow_anonymous true"]
    wanted = port
    for _attempt in range(1 if wanted is not None else 5):  # a free port may be taken before the bind: try another
        port = wanted if wanted is not None else _free_port()
        config = directory / "mosquitto.conf"
        config.write_text("\n".join([f"listener {port} 127.0.0.1", *lines]) + "\n", encoding="utf-8")
        process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        if _listening(port, process):
            break
        process.wait(5)
    else:
        raise RuntimeError("mosquitto did not start; see " + str(directory / "mosquitto.log"))
    user, password = next(iter(users.items())) if users else (None, None)
    try:
        yield Broker("127.0.0.1", port, user, password, directory / "mosquitto.log", process.pid)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _passwd_tool() -> str:
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    return tool


def _listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


@dataclass
class Recorder:
    """Everything a subscriber received, latest payload per topic, plus the full sequence."""

    client: aiomqtt.Client
    latest: dict[str, bytes] = field(default_factory=dict)
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def json(self, topic: str) -> Any:
        return json.loads(self.latest[topic])

    async def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def publish(self, topic: str, payload: str | bytes) -> None:
        await self.client.publish(topic, payload, qos=1)


@contextlib.asynccontextmanager
async def subscriber(broker: Broker, *topics: str) -> AsyncIterator[Recorder]:
    async with aiomqtt.Client(broker.host, broker.port, username=broker.username,
                              password=broker.password) as client:
        recorder = Recorder(client)

        async def receive() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                recorder.latest[message.topic.value] = payload
                recorder.messages.append((message.topic.value, payload, message.retain))
                recorder.changed.set()

        task = asyncio.create_task(receive())
        for topic in topics:
            await client.subscribe(topic, qos=1)
        try:
            yield recorder
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
