"""``powershare demo --mqtt mqtt://127.0.0.1:PORT`` against a real broker: a subscriber sees the site and its
chargers, a published limit takes effect within a control step and a bad one is refused."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from support.broker import mosquitto, needs_mosquitto, subscriber
from support.paths import REPO

pytestmark = needs_mosquitto


async def test_the_demo_publishes_to_a_broker_and_takes_its_limit(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "broker") as broker:
        demo = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "demo", "--mqtt", f"{broker.url}/demo", "--bms-port", "0",
            "--web-port", "-1", cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async with subscriber(broker, "demo/#") as sub:
                units = {f"demo/unit/cp{i}" for i in range(1, 7)}
                await sub.wait_for(lambda: {"demo/site", "demo/availability", *units} <= sub.latest.keys(), 30)
                assert sub.latest["demo/availability"] == b"online"
                assert sub.json("demo/site")["network_limit_a"] == 48

                await sub.publish("demo/set/network_limit", "20")
                await sub.wait_for(lambda: sub.latest.get("demo/result", b"").startswith(b'{"topic"'), 10)
                assert sub.json("demo/result") == {"topic": "demo/set/network_limit", "ok": True, "value": 20.0}
                await sub.wait_for(lambda: sub.json("demo/site")["effective_limit_a"] == [20, 20, 20], 5)

                sub.latest.pop("demo/result")
                await sub.publish("demo/set/network_limit", "-3")
                await sub.wait_for(lambda: "demo/result" in sub.latest, 10)
                assert sub.json("demo/result")["ok"] is False
                assert sub.json("demo/site")["network_limit_a"] == 20
        finally:
            if demo.returncode is None:
                demo.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(demo.communicate(), 30)
        assert demo.returncode == 0, err.decode()
        async with subscriber(broker, "demo/availability") as after:
            await after.wait_for(lambda: after.latest.get("demo/availability") == b"offline", 10)
