"""The MQTT face against a real broker (mosquitto on a free loopback port) and the real gateway leading simulated
chargers over loopback Modbus: status out, commands in, Home Assistant discovery, followers removed."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pytest
from support.broker import Broker, Recorder, mosquitto, needs_mosquitto, subscriber

from drivers.profile import ProfileRegistry
from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from drivers.sim.vehicle import VehicleSpec
from gateway.faces.mqtt.face import MQTT_TASK, MqttFace
from gateway.faces.mqtt.wiring import mqtt_face
from gateway.runtime.app import GatewayApp
from gateway.runtime.commands import RemoveFollower, SetBmsFallbackLimit, SetBmsWatchdog
from gateway.runtime.read_model import GatewayHealth
from gateway.site.config import MqttConfig, parse_site

pytestmark = needs_mosquitto
REGISTRY = ProfileRegistry.shipped()
PASSWORD = "broker-secret-5d1f0c"


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    with mosquitto(tmp_path / "broker", users={"gateway": PASSWORD}) as b:
        yield b


@dataclass
class Rig:
    app: GatewayApp
    face: MqttFace
    sim: SimulatedSite


def site_data(port: int, chargers: tuple[str, ...], broker: Broker, **mqtt: Any) -> dict[str, Any]:
    return {
        "name": "Depot", "installation_limit_a": 40, "network_limit_a": 32, "enabled": True,
        "control": {"tick_s": 0.2, "vehicle_response_s": 1.0},
        "chargers": [{"id": cid, "profile": "powershare-sim", "comm_timeout_s": 5,
                      "transport": {"type": "tcp", "host": "127.0.0.1", "port": port, "unit": i, "timeout_s": 0.3}}
                     for i, cid in enumerate(chargers, start=1)],
        "mqtt": {"host": broker.host, "port": broker.port, "username": "gateway", "password": PASSWORD,
                 "publish_interval_s": 30, **mqtt},
    }


async def start_rig(tmp_path: Path, broker: Broker, chargers: tuple[str, ...] = ("bay-1", "bay.2"),
                    **mqtt: Any) -> tuple[Rig, Any]:
    sim = SimulatedSite(ScaledClock(1.0))
    line = sim.add_line(TcpListen("127.0.0.1", 0))
    units = sim.add_chargers(line, REGISTRY.charger("powershare-sim"), tuple(range(1, len(chargers) + 1)))
    units[0].plug(VehicleSpec("car", lag_s=0.2, battery_kwh=500))
    await sim.start()
    assert line.server is not None
    site, _ = parse_site(site_data(line.server.port, chargers, broker, **mqtt), "site.yaml", REGISTRY.nameplate_a)
    assert site.mqtt is not None
    app = GatewayApp.build(site, REGISTRY, state_dir=tmp_path / "state", extra_faces=[mqtt_face(site.mqtt, tmp_path)])
    await app.start()
    face = next(f for f in app.faces if isinstance(f, MqttFace))
    async with asyncio.timeout(10):
        await face.connected.wait()
    return Rig(app, face, sim), units


async def stop_rig(rig: Rig) -> None:
    await rig.app.stop()
    await rig.sim.stop()


@pytest.fixture
async def rig(tmp_path: Path, broker: Broker) -> AsyncIterator[Rig]:
    r, _ = await start_rig(tmp_path, broker)
    try:
        yield r
    finally:
        await stop_rig(r)


async def result_of(sub: Recorder, topic: str, payload: str | bytes) -> dict[str, Any]:
    before = len(sub.messages)
    await sub.publish(topic, payload)
    await sub.wait_for(lambda: any(t == "powershare/result" for t, _, _ in sub.messages[before:]))
    answer = next(p for t, p, _ in sub.messages[before:] if t == "powershare/result")
    return dict(json.loads(answer))


async def test_a_subscriber_sees_the_site_and_a_published_limit_takes_effect(rig: Rig, broker: Broker) -> None:
    async with subscriber(broker, "powershare/#") as sub:
        await sub.wait_for(lambda: {"powershare/site", "powershare/unit/bay-1", "powershare/unit/bay.2",
                                    "powershare/availability"} <= sub.latest.keys())
        assert sub.latest["powershare/availability"] == b"online"
        site = sub.json("powershare/site")
        assert site["network_limit_a"] == 32 and site["enabled"] is True and site["chargers"] == 2
        await sub.wait_for(lambda: sub.json("powershare/unit/bay-1")["state"] == "C")

        assert await result_of(sub, "powershare/set/network_limit", "12") == {
            "topic": "powershare/set/network_limit", "ok": True, "value": 12.0}
        # Within one control step the effective limit is the new one, and the subscriber sees it.
        await sub.wait_for(lambda: sub.json("powershare/site")["effective_limit_a"] == [12, 12, 12], 3)
        assert rig.app.supervisor.status().network_limit_a == 12

        for bad, error in (("400", "above the largest allowed value 400"), ("twelve", "is not a number"),
                           ("{", "not valid JSON")):
            answer = await result_of(sub, "powershare/set/network_limit", bad)
            assert answer["ok"] is False and error in answer["error"], answer
        assert await result_of(sub, "powershare/set/enabled", "banana") == {
            "topic": "powershare/set/enabled", "ok": False,
            "error": "the payload is not a switch value: send ON or OFF (also 1/0, true/false)"}
        assert rig.app.supervisor.bms.limit_a == 12 and rig.app.settings.config.enabled
        assert sub.json("powershare/site")["limit_source"] == "bms"  # MQTT rides the BMS's limit source

        assert (await result_of(sub, "powershare/set/enabled", "OFF"))["ok"]
        await sub.wait_for(lambda: sub.json("powershare/site")["enabled"] is False, 3)


async def test_the_bms_watchdog_falls_back_and_an_mqtt_heartbeat_restores_the_network_limit(
        rig: Rig, broker: Broker) -> None:
    rig.app.supervisor.apply(SetBmsFallbackLimit(6), "bms test")
    rig.app.supervisor.apply(SetBmsWatchdog(1.5), "bms test")
    async with subscriber(broker, "powershare/#") as sub:
        def source() -> str:
            return str(sub.json("powershare/site")["limit_source"]) if "powershare/site" in sub.latest else ""

        await sub.wait_for(lambda: source() == "bms_fallback", 5)  # nothing from the BMS for 1.5 s
        assert sub.json("powershare/site")["effective_limit_a"] == [6, 6, 6]
        assert (await result_of(sub, "powershare/set/heartbeat", "1"))["ok"]
        await sub.wait_for(lambda: source() == "network", 1.2)  # well before the watchdog could expire again
        await sub.wait_for(lambda: source() == "bms_fallback", 5)
        assert (await result_of(sub, "powershare/set/network_limit", "20"))["ok"]  # a limit is a heartbeat too
        await sub.wait_for(lambda: source() == "bms" and
                           sub.json("powershare/site")["effective_limit_a"] == [20, 20, 20], 1.2)


async def test_home_assistant_discovery_meets_what_it_requires(rig: Rig, broker: Broker) -> None:
    async with subscriber(broker, "homeassistant/#", "powershare/#") as sub:
        await sub.wait_for(lambda: len([t for t in sub.latest if t.startswith("homeassistant/")]) >= 13 + 2 * 11)
        await sub.wait_for(lambda: {"powershare/unit/bay.2", "powershare/availability"} <= sub.latest.keys())
        configs = {t: json.loads(p) for t, p in sub.latest.items() if t.startswith("homeassistant/")}
        problems = [f"{t}: {problem}" for t, c in configs.items() for problem in ha_problems(t, c, sub.latest)]
        assert problems == []
        assert len({c["unique_id"] for c in configs.values()}) == len(configs)
        devices = {c["device"]["name"] for c in configs.values()}
        assert devices == {"Depot", "Charger bay-1", "Charger bay.2"}
        kinds = {(t.split("/")[1], c["name"]) for t, c in configs.items() if c["device"]["name"] == "Depot"}
        assert {("number", "Network limit"), ("switch", "Sharing"), ("sensor", "Current L1"),
                ("sensor", "Power"), ("sensor", "State")} <= kinds
        bay2 = [t for t, c in configs.items() if c["device"]["name"] == "Charger bay.2"]
        assert {configs[t]["name"] for t in bay2} >= {"Current L1", "Current L2", "Current L3", "Power",
                                                       "Energy", "Session energy", "State", "Availability reason"}

        # Removing a follower removes its entities: an empty retained config for each, and its status topic.
        rig.app.supervisor.apply(RemoveFollower("bay.2"), "test")
        await sub.wait_for(lambda: all(sub.latest[t] == b"" for t in bay2) and
                           sub.latest["powershare/unit/bay.2"] == b"")
    async with subscriber(broker, "homeassistant/#", "powershare/unit/+") as fresh:
        await fresh.wait_for(lambda: "powershare/unit/bay-1" in fresh.latest)
        await asyncio.sleep(0.3)  # retained messages come together right after the subscription
        assert not [t for t in fresh.latest if "bay_2e2" in t or t.endswith("bay.2")]


async def test_a_follower_removed_while_the_gateway_was_away_is_removed_on_reconnect(
        tmp_path: Path, broker: Broker) -> None:
    first, _ = await start_rig(tmp_path, broker, ("bay-1", "bay-2", "bay-3"))
    await stop_rig(first)
    async with subscriber(broker, "powershare/availability") as sub:
        await sub.wait_for(lambda: sub.latest.get("powershare/availability") == b"offline")
    second, _ = await start_rig(tmp_path / "again", broker, ("bay-1",))
    try:
        async with subscriber(broker, "homeassistant/#", "powershare/unit/+") as fresh:
            await fresh.wait_for(lambda: "powershare/unit/bay-1" in fresh.latest)
            await asyncio.sleep(0.3)
            left = {t for t, p in fresh.latest.items() if p and ("bay-2" in t or "bay-3" in t)}
            assert left == set()
            assert any("unit_bay-1_power" in t for t in fresh.latest)
    finally:
        await stop_rig(second)


async def test_a_retained_command_is_refused_on_every_connection(tmp_path: Path, broker: Broker) -> None:
    """A retained limit would be applied again at each reconnection, long after it was meant."""
    async with subscriber(broker) as publisher:
        await publisher.client.publish("powershare/set/network_limit", "7", qos=1, retain=True)
    async with subscriber(broker, "powershare/result") as sub:
        rig, _ = await start_rig(tmp_path, broker)
        try:
            await sub.wait_for(lambda: "powershare/result" in sub.latest)
            answer = sub.json("powershare/result")
            assert answer["ok"] is False and "retained command is refused" in answer["error"]
            assert rig.app.settings.config.network_limit_a == 32
        finally:
            await stop_rig(rig)
        async with subscriber(broker) as publisher:
            await publisher.client.publish("powershare/set/network_limit", b"", qos=1, retain=True)


async def test_a_lost_broker_is_reconnected_and_given_everything_again(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The client library usually sees the connection close at once; when it misses it (its socket callbacks can
    race the close), the keep-alive finds out within 1.5 × ``keepalive_s``."""
    caplog.set_level(logging.INFO, logger="gateway")
    with mosquitto(tmp_path / "first", users={"gateway": PASSWORD}) as first:
        rig, _ = await start_rig(tmp_path, first, reconnect_max_s=0.5, keepalive_s=5)
    try:
        # The broker has gone (it kept nothing: no persistence); the gateway runs on and retries.
        await asyncio.sleep(0.5)
        assert not rig.face.connected.is_set() and rig.app.supervisor.status().units
        with mosquitto(tmp_path / "second", users={"gateway": PASSWORD}, port=first.port) as second:
            async with asyncio.timeout(30):
                await rig.face.connected.wait()
            async with subscriber(second, "powershare/#") as sub:
                await sub.wait_for(lambda: {"powershare/site", "powershare/unit/bay-1"} <= sub.latest.keys())
                assert sub.latest.get("powershare/availability") == b"online"
                assert (await result_of(sub, "powershare/set/network_limit", "11"))["ok"]
    finally:
        await stop_rig(rig)


async def test_a_fault_in_the_face_shows_fault_and_the_link_is_started_again(
        tmp_path: Path, broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fault in the face (not the broker's) was logged and the link reconnected, but the gateway never said so:
    # the face ran outside the task supervisor and its health stayed OK.
    rig, _ = await start_rig(tmp_path, broker)
    original = MqttFace._publish_all
    failed: list[bool] = []

    async def publish_all(self: MqttFace, client: Any, status: Any, *, full: bool) -> None:
        if not failed:
            failed.append(True)
            raise RuntimeError("a bug in the face")
        await original(self, client, status, full=full)

    try:
        monkeypatch.setattr(MqttFace, "_publish_all", publish_all)
        tasks = rig.app.supervisor.tasks
        async with asyncio.timeout(10):
            while not tasks.is_down(MQTT_TASK):  # noqa: ASYNC110 - the task supervisor has no event to wait on
                await asyncio.sleep(0.05)
        assert rig.app.supervisor.status().health is GatewayHealth.FAULT
        async with asyncio.timeout(10):  # started again after the first backoff (1 s)
            await rig.face.connected.wait()
        async with subscriber(broker, "powershare/result") as sub:
            answer = await result_of(sub, "powershare/set/network_limit", "20")
        assert answer["ok"] is True and rig.app.settings.config.network_limit_a == 32  # the BMS's own limit
        assert rig.app.supervisor.status().network_limit_a == 20
    finally:
        await stop_rig(rig)


async def test_read_only_answers_every_command_with_a_refusal(tmp_path: Path, broker: Broker) -> None:
    rig, _ = await start_rig(tmp_path, broker, read_only=True)
    try:
        async with subscriber(broker, "powershare/result") as sub:
            answer = await result_of(sub, "powershare/set/network_limit", "10")
            assert answer["ok"] is False and "read-only" in answer["error"]
            assert rig.app.settings.config.network_limit_a == 32
    finally:
        await stop_rig(rig)


async def test_a_wrong_password_keeps_the_gateway_running_and_never_logs_the_secret(
        tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="gateway")  # an in-process demo run elsewhere may have quietened it
    site = MqttConfig(host=broker.host, port=broker.port, username="gateway", password="wrong-" + PASSWORD)
    face = MqttFace(_Still(), site, "Depot", base_dir=tmp_path)
    await face.start()
    try:
        async with asyncio.timeout(10):
            while "unreachable" not in caplog.text:  # noqa: ASYNC110  (the log has no event to wait on)
                await asyncio.sleep(0.05)
        assert not face.connected.is_set()
    finally:
        await face.stop()
    assert PASSWORD not in caplog.text
    assert "Not authorized" in caplog.text or "not authorised" in caplog.text.lower()


class _Still:
    """A gateway whose status never changes (the face only needs to read it here)."""

    def __init__(self) -> None:
        from support.bms import BASE_STATUS
        self._status = BASE_STATUS

    def status(self) -> Any:
        return self._status

    def apply(self, command: Any, origin: str) -> None:
        raise AssertionError("no command expected")

    async def updates(self) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield self._status

    def recent_events(self) -> tuple[Any, ...]:
        return ()


# -- what Home Assistant requires of a discovery config -------------------------------------------------------------
UNITS = {"current": {"A", "mA"}, "power": {"W", "kW"}, "energy": {"Wh", "kWh", "MWh"}}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
ENERGY_STATE_CLASSES = {"total", "total_increasing"}


def ha_problems(topic: str, config: dict[str, Any], retained: dict[str, bytes]) -> list[str]:
    out = []
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "homeassistant" or parts[-1] != "config" or parts[1] not in (
            "sensor", "number", "switch") or not all(p.replace("_", "").replace("-", "").isalnum() for p in parts):
        out.append("topic is not <prefix>/<component>/<node_id>/<object_id>/config with [a-zA-Z0-9_-] ids")
    if not config.get("unique_id"):
        out.append("no unique_id (the device registry needs one)")
    device = config.get("device", {})
    if not isinstance(device.get("identifiers"), list) or not device["identifiers"]:
        out.append("device.identifiers must be a non-empty list")
    if "via_device" in device and device["via_device"] not in {"powershare_powershare"}:
        out.append("via_device names no device")
    for a in config.get("availability", []):
        if retained.get(a["topic"]) != a["payload_available"].encode():
            out.append(f"availability topic {a['topic']} is not {a['payload_available']}")
    cls, unit, state_class = config.get("device_class"), config.get("unit_of_measurement"), config.get("state_class")
    if cls in UNITS and unit not in UNITS[cls]:
        out.append(f"device_class {cls} does not take unit {unit}")
    if cls == "energy" and state_class not in ENERGY_STATE_CLASSES:
        out.append("an energy sensor needs state_class total or total_increasing")
    if cls == "enum" and (unit is not None or state_class is not None or not config.get("options")):
        out.append("an enum sensor has options and no unit or state_class")
    if state_class is not None and state_class not in STATE_CLASSES:
        out.append(f"unknown state_class {state_class}")
    component = parts[1] if len(parts) > 1 else ""
    if component in ("number", "switch") and not config.get("command_topic", "").startswith("powershare/set/"):
        out.append("a control needs the gateway's command topic")
    if component == "number" and not (config["min"] < config["max"] and config["step"] > 0):
        out.append("number range")
    state = retained.get(config["state_topic"])
    if state is None:
        out.append(f"nothing retained on its state topic {config['state_topic']}")
    elif "value_template" in config:
        value = jinja2.Environment().from_string(config["value_template"]).render(value_json=json.loads(state))
        if cls in UNITS or state_class is not None:
            try:
                float(value)
            except ValueError:
                if value != "None":  # HA's MQTT sensor reads "None" as unknown
                    out.append(f"template renders {value!r}, not a number")
        if cls == "enum" and value not in config["options"]:
            out.append(f"template renders {value!r}, not one of the options")
        if component == "switch" and value not in (config["state_on"], config["state_off"]):
            out.append(f"switch state {value!r}")
    return out


def test_run_refuses_to_start_when_the_mqtt_password_cannot_be_read(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    from gateway.cli.main import main

    caplog.set_level(logging.INFO, logger="gateway")
    config = tmp_path / "site.yaml"
    config.write_text("installation_limit_a: 40\nnetwork_limit_a: 20\nweb: {enabled: false}\n"
                      "mqtt: {host: 127.0.0.1, username: gw, password_file: missing.key}\n", encoding="utf-8")
    assert main(["run", "--config", str(config), "--state-dir", str(tmp_path / "state")]) == 1
    assert f"cannot start: mqtt.password_file {tmp_path / 'missing.key'}: No such file or directory" in caplog.text
