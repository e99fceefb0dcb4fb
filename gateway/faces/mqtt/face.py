"""The MQTT face on the wire: an aiomqtt client that keeps a broker up to date and takes commands from it.

The gateway never depends on the broker: the face connects in the background, retries with capped backoff and
says once in the log when the link changes. On every connection it

1. sets the last will (``<prefix>/availability`` = ``offline``, retained) and publishes ``online``;
2. subscribes to the command topics, and for the time of its first publication to the retained configs and unit
   topics it may have published before, so that a charger removed while the gateway was away is removed from the
   broker (and Home Assistant) too (the broker sends retained messages right after the subscription is
   acknowledged, so they have all arrived once the first publication is acknowledged; staying subscribed would
   echo every status message back);
3. publishes every retained status topic, then each topic whose payload changed after every control step, and
   everything again each ``publish_interval_s``.

Status goes out with QoS 0 (the next step or the reconnect repairs a loss); availability, discovery and command
results with QoS 1. A command is answered on the result topic (``gateway.faces.mqtt.commands``); a bad one never
reaches the supervisor and never stops the face.

The link runs as the task ``mqtt`` of the gateway's task supervisor. A broker that is down or refuses the login
is not a fault of the gateway's (the face retries and says so in the log); anything else ending the link (a bug
in the face, a TLS setup the broker's certificate does not meet) is a crash: logged with its traceback, the
gateway shows FAULT, and the link is started again after the task backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path

import aiomqtt

from gateway.errors import StartError
from gateway.faces.bms.face import BmsFace
from gateway.faces.mqtt.commands import MqttCommands, Result
from gateway.faces.mqtt.discovery import Discovery
from gateway.faces.mqtt.topics import OFFLINE, ONLINE, Topics, status_messages
from gateway.faces.ocpp.client import backoff_s
from gateway.runtime.commands import GatewayControl
from gateway.runtime.read_model import SiteStatus
from gateway.runtime.tasks import TaskSupervisor
from gateway.site.config import MqttConfig

log = logging.getLogger("gateway.faces.mqtt")
_wire_log = logging.getLogger("gateway.faces.mqtt.wire")
"""aiomqtt's and paho's own messages. A step's changed topics go out together, and aiomqtt warns about every
publication that waits behind ten others; that is the intended batching, not a problem, so only errors pass."""
_wire_log.setLevel(logging.ERROR)

RECONNECT_MIN_S = 1.0
MAX_INFLIGHT = 200
"""QoS 1 messages awaiting the broker's acknowledgement at once; the first publication at a large site is thousands
of discovery configs, which paho's default of 20 would send one round trip per 20."""
STOP_TIMEOUT_S = 5.0
MQTT_TASK = "mqtt"


class MqttSetupError(StartError):
    """The password or a TLS file cannot be loaded; the message names the file or variable, never the secret."""


def load_password(config: MqttConfig, base_dir: Path, environ: Mapping[str, str] | None = None) -> str | None:
    if config.password is not None:
        return config.password
    if config.password_file is not None:
        path = base_dir / config.password_file
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MqttSetupError(f"mqtt.password_file {path}: {exc.strerror or exc}") from None
    if config.password_env is not None:
        env = os.environ if environ is None else environ
        if config.password_env not in env:
            raise MqttSetupError(f"mqtt.password_env: the environment has no {config.password_env}")
        return env[config.password_env].strip()
    return None


def tls_context(config: MqttConfig, base_dir: Path) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    try:
        context = ssl.create_default_context(
            cafile=str(base_dir / config.ca_file) if config.ca_file is not None else None)
        if config.client_cert is not None and config.client_key is not None:
            context.load_cert_chain(base_dir / config.client_cert, base_dir / config.client_key)
    except (OSError, ssl.SSLError) as exc:
        raise MqttSetupError(f"mqtt: cannot use the TLS files: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class MqttFace:
    """One gateway's MQTT link; ``start`` returns at once (the broker may be down), ``stop`` says goodbye."""

    def __init__(self, control: GatewayControl, config: MqttConfig, site_name: str, *, base_dir: Path,
                 tasks: TaskSupervisor | None = None) -> None:
        """``tasks``: who owns the face's task ``mqtt`` (the gateway's, so a fault in the face shows as FAULT and the
        link is started again); a private one if None."""
        self._control = control
        self._tasks = tasks if tasks is not None else TaskSupervisor()
        self.config = config
        self.topics = Topics(config.topic_prefix)
        self.discovery = Discovery(self.topics, config.discovery_prefix, config.client_id, site_name)
        self._commands = MqttCommands(BmsFace(control), self.topics, config.read_only)
        self._password = load_password(config, base_dir)
        self._tls = tls_context(config, base_dir)
        self._client: aiomqtt.Client | None = None
        self._sent: dict[str, bytes] = {}
        """What the broker holds for each topic this face publishes retained (as far as the face knows)."""
        self._units: set[str] = set()
        self._discovery_cache: tuple[tuple[tuple[str, ...], float], dict[str, bytes]] | None = None
        self._wanted: set[str] = set()
        """The discovery topics of the site and its chargers now."""
        self._latest = control.status()
        self._changed = asyncio.Event()
        self._link_note: str | None = None
        self.connected = asyncio.Event()
        """Set while connected and after the first full publication (tests wait on it)."""
        self.published = 0
        """Messages published since start (the benchmark reads it)."""

    @property
    def origin(self) -> str:
        return f"mqtt {self.config.host}:{self.config.port}"

    async def start(self) -> None:
        if not self.config.enabled:
            log.info("MQTT disabled (mqtt.enabled: false)")
            return
        self._tasks.start(MQTT_TASK, self._run)

    async def stop(self) -> None:
        if MQTT_TASK not in self._tasks.names():
            return
        client = self._client
        if client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
        await self._tasks.stop(MQTT_TASK)

    # -- the link -----------------------------------------------------------------------------------------------
    def _note(self, text: str | None, level: int = logging.WARNING) -> None:
        if text != self._link_note:
            self._link_note = text
            if text is not None:
                log.log(level, "%s", text)

    async def _run(self) -> None:
        follower = asyncio.create_task(self._follow(), name="mqtt follow")
        attempt = 0
        try:
            while True:
                try:
                    async with aiomqtt.Client(
                            self.config.host, self.config.port, username=self.config.username,
                            password=self._password, identifier=self.config.client_id,
                            keepalive=self.config.keepalive_s, tls_context=self._tls, logger=_wire_log,
                            max_inflight_messages=MAX_INFLIGHT,
                            will=aiomqtt.Will(self.topics.availability, OFFLINE, qos=1, retain=True)) as client:
                        self._client = client
                        attempt = 0
                        self._note(f"MQTT connected to {self.config.host}:{self.config.port}", logging.INFO)
                        await self._session(client)
                except aiomqtt.MqttError as exc:  # the broker or the network: no fault of the gateway's
                    self._note(f"MQTT broker {self.config.host}:{self.config.port} unreachable: {exc}")
                finally:
                    self._client = None
                    self.connected.clear()
                await asyncio.sleep(backoff_s(attempt, RECONNECT_MIN_S, self.config.reconnect_max_s))
                attempt += 1
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower

    async def _follow(self) -> None:
        async for status in self._control.updates():
            self._latest = status
            self._changed.set()

    async def _session(self, client: aiomqtt.Client) -> None:
        self._sent.clear()
        self._units = set()
        await client.subscribe(self.topics.commands, qos=1)
        earlier = [self.topics.units_wildcard, *([self.discovery.subscription] if self.config.discovery else [])]
        for topic in earlier:
            await client.subscribe(topic, qos=1)
        await client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._receive(client))
                await self._publish_all(client, self._latest, full=True)
                for topic in earlier:
                    await client.unsubscribe(topic)
                self.connected.set()
                group.create_task(self._publish_loop(client))
        except* aiomqtt.MqttError as lost:  # the connection ended under the receiver or a publication
            raise lost.exceptions[0] from None

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        while True:
            full = False
            try:
                async with asyncio.timeout(self.config.publish_interval_s):
                    await self._changed.wait()
            except TimeoutError:
                full = True
            self._changed.clear()
            await self._publish_all(client, self._latest, full=full)

    async def _publish_all(self, client: aiomqtt.Client, status: SiteStatus, *, full: bool) -> None:
        """Discovery for chargers that came, removal for those that left, then the status topics that changed
        (all of them if ``full``)."""
        ids = {u.id for u in status.units}
        gone = self._units - ids
        self._units = ids
        retained: dict[str, bytes] = {}
        for cid in gone:
            retained[self.topics.unit(cid)] = b""
            if self.config.discovery:
                retained.update(dict.fromkeys(self.discovery.unit_topics(cid), b""))
        if self.config.discovery:
            configs = self._configs(status)
            self._wanted = set(configs)
            retained.update({t: p for t, p in configs.items() if self._sent.get(t) != p})
        status_now = status_messages(self.topics, status)
        changed = status_now if full else {t: p for t, p in status_now.items() if self._sent.get(t) != p}
        await asyncio.gather(*(self._send(client, t, p, 1) for t, p in retained.items()),
                             *(self._send(client, t, p, 0) for t, p in changed.items()))

    def _configs(self, status: SiteStatus) -> dict[str, bytes]:
        """The discovery configs, built again only when what they say changes (the chargers, or the largest
        network limit): thousands of JSON documents at a large site, and a step must not rebuild them."""
        key = (tuple(u.id for u in status.units), status.installation_limit_a)
        if self._discovery_cache is None or self._discovery_cache[0] != key:
            self._discovery_cache = (key, self.discovery.messages(status))
        return self._discovery_cache[1]

    async def _send(self, client: aiomqtt.Client, topic: str, payload: bytes, qos: int) -> None:
        await client.publish(topic, payload, qos=qos, retain=True)
        self.published += 1
        if payload:
            self._sent[topic] = payload
        else:
            self._sent.pop(topic, None)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            topic = message.topic.value
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            if topic.startswith(self.topics.prefix + "/set/"):
                if message.retain:
                    # The broker replays a retained command at every (re)connection, long after it was meant.
                    result = Result(topic, False, "a retained command is refused: publish commands without the "
                                                  "retain flag (and clear this one with an empty retained message)")
                else:
                    result = self._commands.handle(topic, payload, self.origin)
                if result.ok:
                    self._changed.set()
                else:
                    log.warning("%s: %s refused: %s", self.origin, topic, result.message)
                await client.publish(self.topics.result, result.payload(), qos=1)
                continue
            if message.retain and payload and self._stale(topic):
                # Published by an earlier run for a charger that is no longer in the site.
                await self._send(client, topic, b"", 1)

    def _stale(self, topic: str) -> bool:
        if self.discovery.is_ours(topic):
            return topic not in self._wanted
        cid = self.topics.unit_id(topic)
        return cid is not None and cid not in self._units
