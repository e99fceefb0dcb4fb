"""What the MQTT face costs at 250 chargers, against a real mosquitto on loopback. Prints its figures:

    POWERSHARE_BENCH=1 python -m pytest tests/bench/test_mqtt_bench.py -q -s

* the first publication after connecting (every Home Assistant config and status topic);
* a control step in which every charger's current changed (the worst case: one message per charger and the site);
* a step in which nothing changed;
* the baseline, measured in the same run: the client library alone publishing the same messages of a step, and
  the share of building and comparing the payloads.

CPU is this process's (``time.process_time``: the face and the client library) and the broker's (from
``/proc/<pid>/stat``). Asserts only that every message arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from support.bms import BASE_STATUS, UNIT_A
from support.broker import mosquitto, needs_mosquitto

from gateway.faces.mqtt.face import MqttFace
from gateway.faces.mqtt.topics import Topics, status_messages
from gateway.runtime.read_model import SiteStatus
from gateway.site.config import MqttConfig

MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
CHARGERS = 250
STEPS = 40
pytestmark = needs_mosquitto


class Steps:
    """A gateway whose snapshots the benchmark publishes, one per control step."""

    def __init__(self, status: SiteStatus) -> None:
        self.snapshot = status
        self._queue: asyncio.Queue[SiteStatus] = asyncio.Queue()

    def status(self) -> SiteStatus:
        return self.snapshot

    def publish(self, status: SiteStatus) -> None:
        self.snapshot = status
        self._queue.put_nowait(status)

    def apply(self, command: Any, origin: str) -> None:
        raise AssertionError("no commands here")

    async def updates(self) -> AsyncIterator[SiteStatus]:
        while True:
            yield await self._queue.get()

    def recent_events(self) -> tuple[Any, ...]:
        return ()


def site(step: int) -> SiteStatus:
    """Every charger's current differs from the previous step by 0.1 A or more."""
    units = tuple(replace(UNIT_A, id=f"cp{i:03d}", index=i,
                          current_a=(10 + (step + i) % 7 * 0.3, 10.0 + step % 5 * 0.2, 9.5),
                          power_w=6_900.0 + step * 10) for i in range(CHARGERS))
    return replace(BASE_STATUS, units=units, measured_a=(2500.0 + step, 2500.0, 2375.0), time_s=1e9 + step)


def broker_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def arrived(count: Callable[[], int], expected: int) -> None:
    async with asyncio.timeout(60):
        while count() < expected:  # noqa: ASYNC110  (a file has no event)
            await asyncio.sleep(0.01)


async def until(face: MqttFace, count: int) -> None:
    async with asyncio.timeout(60):
        while face.published < count:  # noqa: ASYNC110  (the face has no event per message)
            await asyncio.sleep(0.001)


async def test_mqtt_face_at_250_chargers(request: pytest.FixtureRequest, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    if not (os.environ.get("POWERSHARE_BENCH") or request.config.getoption("benchmark_enable", default=False)):
        pytest.skip("MQTT benchmark: set POWERSHARE_BENCH=1 or pass --benchmark-enable")
    with mosquitto(tmp_path / "broker") as broker:
        assert broker.pid is not None
        control = Steps(site(0))
        face = MqttFace(control, MqttConfig(host=broker.host, port=broker.port, publish_interval_s=3600),
                        "bench", base_dir=tmp_path)
        figures: list[tuple[str, str]] = []
        # The subscriber is a separate process, so this process's CPU time is the face's alone.
        received = tmp_path / "received.txt"
        with received.open("w") as out:
            sub = await asyncio.create_subprocess_exec(
                MOSQUITTO_SUB, "-h", broker.host, "-p", str(broker.port), "-t", "powershare/#", "-t",
                "homeassistant/#", "-v", stdout=out)
        try:
            await asyncio.sleep(0.5)  # subscribed
            lines = lambda: received.read_bytes().count(b"\n")  # noqa: E731
            cpu0, wall0, broker0 = time.process_time(), time.perf_counter(), broker_cpu_s(broker.pid)
            await face.start()
            try:
                await face.connected.wait()
                first = face.published
                await arrived(lines, first)
                figures.append(("first publication", f"{first} messages, {time.perf_counter() - wall0:.2f} s wall, "
                                                     f"{(time.process_time() - cpu0) * 1e3:.0f} ms CPU, broker "
                                                     f"{(broker_cpu_s(broker.pid) - broker0) * 1e3:.0f} ms CPU"))

                cpu0, wall0, sent0, got0 = time.process_time(), time.perf_counter(), face.published, lines()
                broker0 = broker_cpu_s(broker.pid)
                for step in range(1, STEPS + 1):
                    control.publish(site(step))
                    await until(face, sent0 + step * (CHARGERS + 1))
                cpu, wall, sent = time.process_time() - cpu0, time.perf_counter() - wall0, face.published - sent0
                await arrived(lambda: lines() - got0, sent)
                broker_cpu = broker_cpu_s(broker.pid) - broker0
                figures.append(("step, every charger changed",
                                f"{sent / STEPS:.0f} messages/step, {cpu / STEPS * 1e3:.1f} ms CPU/step "
                                f"({cpu / sent * 1e6:.0f} µs/message), {wall / STEPS * 1e3:.1f} ms wall/step, broker "
                                f"{broker_cpu / STEPS * 1e3:.1f} ms CPU/step; at one step per second "
                                f"{sent / STEPS:.0f} messages/s and {cpu / STEPS * 100:.1f} % of a core"))
                face_step_cpu = cpu / STEPS

                cpu0, sent0 = time.process_time(), face.published
                quiet = site(STEPS)
                for _ in range(STEPS):
                    control.publish(replace(quiet, time_s=quiet.time_s + 1))
                    await asyncio.sleep(0.005)
                figures.append(("step, nothing changed", f"{(face.published - sent0) / STEPS:.1f} messages/step, "
                                f"{(time.process_time() - cpu0) / STEPS * 1e3:.2f} ms CPU/step"))
            finally:
                await face.stop()

            # Baseline: the client library alone publishing the same payloads, all at once, per step.
            async with aiomqtt.Client(broker.host, broker.port, max_inflight_messages=200,
                                      logger=logging.getLogger("bench.quiet")) as bare:
                logging.getLogger("bench.quiet").setLevel(logging.ERROR)
                steps = [status_messages(Topics("bare"), site(step)) for step in range(1, STEPS + 1)]
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for messages in steps:
                    await asyncio.gather(*(bare.publish(t, p, qos=0, retain=True) for t, p in messages.items()))
                bare_cpu = (time.process_time() - cpu0) / STEPS
                figures.append(("baseline: aiomqtt alone, same messages per step",
                                f"{bare_cpu * 1e3:.1f} ms CPU/step, {(time.perf_counter() - wall0) / STEPS * 1e3:.1f} "
                                f"ms wall/step; the face costs x{face_step_cpu / bare_cpu:.2f} that"))
        finally:
            sub.terminate()
            await sub.wait()

        topics = Topics("powershare")
        sent_payloads = status_messages(topics, site(0))
        cpu0 = time.process_time()
        for step in range(1, STEPS + 1):
            now = status_messages(topics, site(step))
            changed = {t: p for t, p in now.items() if sent_payloads.get(t) != p}
            sent_payloads = now
        baseline = (time.process_time() - cpu0) / STEPS
        assert len(changed) == CHARGERS + 1
        figures.append(("of which: build and compare one step's payloads",
                        f"{baseline * 1e3:.2f} ms CPU/step; a full step costs x{face_step_cpu / baseline:.1f} that"))
    with capsys.disabled():
        print(f"\nMQTT face, {CHARGERS} chargers, {STEPS} steps, mosquitto on loopback:")
        for name, text in figures:
            print(f"  {name:<48} {text}")
