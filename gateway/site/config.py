"""The site file: what the installer wrote, validated before anything is commanded.

A mistake here can trip a building's breaker, so parsing is strict: unknown keys are errors (a misspelt
``netwrok_limit_a`` must not silently fall back to a default), YAML duplicate keys are errors, and every message
names the file and the key path (``site.yaml: chargers[2].breaker_limit_a: ...``). All errors are collected and
reported together so an installer fixes the file in one pass.

The seed's commissioning rules are enforced here too, because the same rules apply to a value written later over
the BMS face or the web page (those call ``check_site`` on the would-be configuration before accepting it):

* the network limit is at most the installation limit and at most what the chargers could ever draw;
* a unit's limit is never above its nameplate;
* a network limit below 6 A per charger is allowed (some cars wait, in rotation) and ``notes`` says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.core.limits import SITE_NODE
from gateway.errors import InputError
from gateway.faces.ocpp.measurands import MEASURANDS, measurand_problem
from gateway.i18n.text import joined, localized, tr
from gateway.site.input_problems import NAME_PATTERN, WEBSOCKET_URL_PATTERN, problem

"""The id of the root circuit node: the supply itself."""
MIN_CHARGE_CURRENT_A = 6.0
ID_PATTERN = NAME_PATTERN
CHARGE_POINT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.*+-]{0,47}$"
"""An OCPP identity the gateway admits: no ``/`` (it ends the URL path) and no ``:`` (it splits Basic credentials)."""
_PHASE_NAMES = ("L1", "L2", "L3")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


MAX_AMPS = 10_000.0
"""The largest current any limit of the site file may name, per phase."""
Amps = Annotated[float, Field(ge=0, le=MAX_AMPS, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
UnitId = Annotated[int, Field(ge=1, le=247)]
TcpUnitId = Annotated[int, Field(ge=0, le=255)]
"""Modbus TCP devices often answer only on unit 255 (KEBA, Vestel, Bender, CHARX, Schneider) or 0."""


class TcpTransport(Strict):
    """Modbus TCP to the charger itself."""

    type: Literal["tcp"]
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    unit: TcpUnitId = 1
    timeout_s: Seconds = 1.0


class RtuOverTcpTransport(Strict):
    """Modbus RTU frames tunnelled through a serial device server (common on DIN rails)."""

    type: Literal["rtu-over-tcp"]
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    unit: UnitId = 1
    timeout_s: Seconds = 0.5


class RtuTransport(Strict):
    """Modbus RTU on an RS-485 line; several chargers share one line by unit id."""

    type: Literal["rtu"]
    device: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=19200, ge=1200, le=921_600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit: UnitId = 1
    timeout_s: Seconds = 0.3


class OcppTransport(Strict):
    """An OCPP 1.6J charger that connects to the gateway's own endpoint (``ocpp_endpoint``; docs/ocpp-followers.md).

    It has no profile: what a profile would say (its nameplate, its fail-safe means) is written here.
    """

    type: Literal["ocpp"]
    charge_point_id: str = Field(pattern=CHARGE_POINT_ID_PATTERN)
    """The identity it connects with (the last segment of its URL path); also the HTTP Basic user name."""
    connector_id: int = Field(default=1, ge=1, le=32)
    """Which connector of the charge point this charger is; a two-socket charger is two chargers."""
    password_file: str = Field(min_length=1)
    """File holding its AuthorizationKey (HTTP Basic password); relative paths are relative to the site file."""
    max_current_a: Annotated[float, Field(ge=MIN_CHARGE_CURRENT_A, le=80, allow_inf_nan=False)]
    """Its nameplate maximum per phase (an OCPP charger has no register to read it from)."""
    meter_interval_s: int = Field(default=1, ge=1, le=60)
    """MeterValueSampleInterval the gateway configures: how often it reports its currents."""
    stack_level: int | None = Field(default=None, ge=0, le=1000)
    """Stack level of the gateway's profiles; default: the charger's ChargeProfileMaxStackLevel."""
    failsafe_current_key: str | None = Field(default=None, min_length=1, max_length=50)
    """The charger's own configuration key for its fall-back current without the gateway, if it has one."""
    failsafe_timeout_key: str | None = Field(default=None, min_length=1, max_length=50)
    """The charger's own key for how long it waits before falling back (optional, with the current key)."""
    timeout_s: Seconds = 3.0
    """How long to wait for it to answer a call."""

    @model_validator(mode="after")
    def _failsafe_keys(self) -> OcppTransport:
        if self.failsafe_timeout_key is not None and self.failsafe_current_key is None:
            raise ValueError(tr("site.ocpp.failsafe_timeout_alone"))
        return self

    @property
    def station_settings(self) -> tuple[object, ...]:
        """What every connector of one charge point must agree on."""
        return (self.password_file, self.meter_interval_s, self.stack_level, self.failsafe_current_key,
                self.failsafe_timeout_key, self.timeout_s)


Transport = Annotated[TcpTransport | RtuOverTcpTransport | RtuTransport | OcppTransport, Field(discriminator="type")]
ModbusTransport = TcpTransport | RtuOverTcpTransport | RtuTransport
MeterTransport = Annotated[ModbusTransport, Field(discriminator="type")]
"""A meter is read over Modbus only."""


class SupplyConfig(Strict):
    """The supply. A North American split-phase service is ``phases: 1, voltage_v: 240``: one current per leg."""

    phases: Literal[1, 3] = 3
    voltage_v: float = Field(default=230.0, gt=0, le=1000)


class CircuitConfig(Strict):
    """A sub-circuit (distribution board, feeder) with its own breaker, below ``parent``."""

    id: str = Field(pattern=ID_PATTERN)
    parent: str = SITE_NODE
    limit_a: Amps


class ChargerConfig(Strict):
    """One follower: which device, how to reach it, and where it sits electrically."""

    id: str = Field(pattern=ID_PATTERN)
    profile: str | None = Field(default=None, min_length=1)
    """The Modbus register map by name; required for Modbus transports, absent for OCPP."""
    transport: Transport
    breaker_limit_a: Amps | None = None
    """The unit's own limit (its breaker); defaults to its nameplate, never above it."""
    phases: Literal[1, 3] = 3
    """How many phases are wired to the charger."""
    phase_rotation: str = "L1L2L3"
    """Which site phase the charger's L1, L2, L3 land on, e.g. "L2L3L1"; for a 1-phase charger just "L2"."""
    circuit: str = SITE_NODE
    priority: int = Field(default=0, ge=0, le=9)
    """Higher priority is admitted first when there is not enough current for every car."""
    weight: float = Field(default=1.0, ge=0.01, le=100)
    """Relative share of the current above the 6 A minimum."""
    comm_timeout_s: Seconds = 30.0
    """The charger's own communication watchdog: after this long without the gateway it falls back."""

    @field_validator("phase_rotation")
    @classmethod
    def _rotation(cls, value: str) -> str:
        names = re.findall(r"L[123]", value.upper())
        if "".join(names) != value.upper() or len(set(names)) != len(names) or len(names) not in (1, 3):
            raise ValueError(tr("site.charger.rotation_form"))
        return value.upper()

    @model_validator(mode="after")
    def _profile_for_modbus_only(self) -> ChargerConfig:
        if isinstance(self.transport, OcppTransport):
            if self.profile is not None:
                raise ValueError(tr("site.charger.ocpp_without_profile"))
        elif self.profile is None:
            raise ValueError(tr("site.charger.profile_required"))
        return self

    @property
    def site_phases(self) -> tuple[int, ...]:
        """Site phase index (0..2) of the charger's L1, L2, L3 (only L1 for a 1-phase charger)."""
        names = re.findall(r"L[123]", self.phase_rotation)
        return tuple(_PHASE_NAMES.index(n) for n in names[: self.phases])


class ControlConfig(Strict):
    """Tuning of the controller; the defaults suit real cars and are what the benchmarks measure."""

    tick_s: Seconds = 1.0
    min_dwell_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    """Under scarcity, a car switched on or off keeps that state at least this long."""
    rotation_period_s: Seconds = 900.0
    """Under scarcity, how long a car charges before a waiting car takes its turn."""
    hysteresis_a: Annotated[float, Field(ge=0, le=10)] = 0.5
    demand_margin_a: Annotated[float, Field(ge=0, le=10)] = 1.0
    demand_window_s: Seconds = 60.0
    probe_interval_s: Seconds = 120.0
    vehicle_response_s: Annotated[float, Field(ge=0, le=60)] = 5.0
    """How long a car may take to follow a lower current (IEC 61851-1: 5 s); a decrease is booked until then."""
    ramp_down_timeout_s: Seconds = 10.0
    """How long a car may take to follow a decrease before the charger is booked as not following."""
    order: Literal["fair", "shortest_first"] = "fair"
    """Who gets the current above the minimums: "fair" shares it equally and rotates turns under scarcity;
    "shortest_first" gives it to the car with the least energy still wanted (else the first plugged in) until it
    is capped, then the next, for a lower mean completion time (docs/benchmark.md)."""


class ScheduleConfig(Strict):
    """A fleet's routine: the cars at these chargers leave at ``departure`` (local time, every day) and/or want
    ``energy_kwh`` per session. A depot writes "vans leave at 06:00"; a value from the page, the BMS or OCPP for
    one session takes precedence (docs/deadlines.md)."""

    chargers: tuple[str, ...] = ()
    """Charger ids it applies to; empty: every charger."""
    departure: str | None = Field(default=None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """"HH:MM", local time: the next such time after the car plugs in."""
    energy_kwh: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _something(self) -> ScheduleConfig:
        if self.departure is None and self.energy_kwh is None:
            raise ValueError(tr("site.schedule.empty"))
        return self


class BmsRtuConfig(Strict):
    """The BMS face as an RTU slave on its own RS-485 port (same register map, same unit id)."""

    device: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB1")
    baudrate: int = Field(default=19200, ge=1200, le=921_600)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class BmsConfig(Strict):
    """The Modbus face a building management system polls and writes (see docs/bms.md)."""

    enabled: bool = True
    host: str = Field(default="0.0.0.0", min_length=1)
    """Address to listen on; "0.0.0.0" is every IPv4 interface."""
    port: int = Field(default=502, ge=0, le=65535)
    """0 lets the system pick a free port (tests); the port in use is logged."""
    unit_id: UnitId = 1
    allow_write_from: tuple[IPvAnyNetwork, ...] = ()
    """Client addresses or networks ("10.0.0.5", "10.0.8.0/24") whose TCP writes are accepted; reads are open."""
    read_only: bool = False
    """Refuse every write, over TCP and RTU alike."""
    rtu: BmsRtuConfig | None = None


class OcppEndpointConfig(Strict):
    """The gateway's OCPP 1.6J endpoint that OCPP chargers connect to (docs/ocpp-followers.md)."""

    host: str = Field(default="0.0.0.0", min_length=1)
    port: int = Field(default=8180, ge=0, le=65535)
    """0 lets the system pick a free port (tests); the port in use is logged."""
    tls_cert_file: str | None = Field(default=None, min_length=1)
    """Server certificate (PEM, chain included): with ``tls_key_file``, chargers connect over ``wss://`` only."""
    tls_key_file: str | None = Field(default=None, min_length=1)
    heartbeat_interval_s: int = Field(default=300, ge=10, le=86_400)
    id_tags: tuple[Annotated[str, Field(min_length=1, max_length=20)], ...] | None = None
    """The local authorisation list; absent: every idTag is accepted (a site without badges)."""

    @model_validator(mode="after")
    def _tls_pair(self) -> OcppEndpointConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(tr("site.ocpp_endpoint.tls_pair"))
        return self


class WebConfig(Strict):
    """The installer's web page and JSON API, served by the gateway itself (see docs/web.md)."""

    enabled: bool = True
    host: str = Field(default="0.0.0.0", min_length=1)
    """Address to listen on; "0.0.0.0" is every IPv4 interface, "::" every IPv6 one."""
    port: int = Field(default=8080, ge=0, le=65535)
    """0 lets the system pick a free port (tests); the address in use is logged."""
    read_access: Literal["open", "password"] = "open"
    """Whether reading the status needs the installer password too; writes always do."""
    tls_cert: str | None = Field(default=None, min_length=1)
    """PEM certificate file: with ``tls_key``, the page is served over HTTPS only."""
    tls_key: str | None = Field(default=None, min_length=1)
    session_timeout_s: Seconds = 43_200.0
    """A signed-in browser is signed out after this long without a request."""

    @model_validator(mode="after")
    def _tls_pair(self) -> WebConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(tr("site.web.tls_pair"))
        return self


class HistoryConfig(Strict):
    """What the gateway keeps of its past in the state directory: sessions, events, current per phase (see
    docs/web.md)."""

    flush_interval_s: Annotated[float, Field(ge=1, le=300, allow_inf_nan=False)] = 30.0
    """One transaction per interval: a crash or a power cut loses at most this much of the history."""


IdTag = Annotated[str, Field(min_length=1, max_length=20)]
"""OCPP 1.6 ``IdToken``: CiString20."""


class OcppAuthorizationConfig(Strict):
    """Who may charge, as the central system sees it (see docs/ocpp.md)."""

    mode: Literal["free_vend", "authorize", "remote"] = "free_vend"
    """free_vend: a transaction starts at plug-in with ``id_tag``; authorize: the same, once the central system (or
    the local list or cache) accepts ``id_tag``; remote: a car waits until RemoteStartTransaction."""
    id_tag: IdTag = "POWERSHARE"
    local_list: tuple[IdTag, ...] = ()
    """idTags accepted without asking the central system (when offline, or with LocalPreAuthorize)."""


class OcppMeterValuesConfig(Strict):
    """Site defaults for the meter-value configuration keys; a central system's ChangeConfiguration wins."""

    sample_interval_s: Annotated[int, Field(ge=0, le=86_400)] | None = None
    """MeterValueSampleInterval (0: off); unset: the key's default."""
    sampled_data: tuple[str, ...] | None = None
    """MeterValuesSampledData."""
    clock_aligned_interval_s: Annotated[int, Field(ge=0, le=86_400)] | None = None
    """ClockAlignedDataInterval (0: off)."""
    aligned_data: tuple[str, ...] | None = None
    """MeterValuesAlignedData."""

    @field_validator("sampled_data", "aligned_data")
    @classmethod
    def _measurands(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            problem = measurand_problem(list(value))
            if problem is not None:
                raise ValueError(f"{problem} (supported: {', '.join(sorted(MEASURANDS))})")
        return value


class OcppConfig(Strict):
    """The connection to the operator's OCPP 1.6J central system: the site is one charge point whose connectors
    1..N are the chargers in the order of ``chargers``."""

    url: str = Field(pattern=WEBSOCKET_URL_PATTERN)
    """The central system's endpoint, without the charge point id (``wss://cs.example.com/ocpp``)."""
    charge_point_id: str = Field(pattern=r"^[A-Za-z0-9*\-_=+|@.]{1,48}$")
    """The identity: the last URL path segment and the Basic-auth user name."""
    security_profile: Literal[0, 1, 2, 3] = 0
    """0: none; 1: Basic auth over ws://; 2: Basic auth over wss://; 3: wss:// with a client certificate."""
    password: str | None = Field(default=None, repr=False)
    """The AuthorizationKey in the site file itself; prefer ``password_file`` or ``password_env``. Kept out of
    ``repr`` (and so out of logs); a plain string, because runtime settings re-validate a dump of the site."""
    password_file: Path | None = None
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    ca_file: Path | None = None
    """Certificates that may sign the central system's (profiles 2 and 3); unset: the system's trust store."""
    client_cert: Path | None = None
    """The charge point's certificate chain (PEM), profile 3."""
    client_key: Path | None = None
    authorization: OcppAuthorizationConfig = OcppAuthorizationConfig()
    meter_values: OcppMeterValuesConfig = OcppMeterValuesConfig()
    state_dir: Path = Path("ocpp")
    """Profiles, the offline queue and sessions; relative to the gateway's state directory."""
    vendor: Annotated[str, Field(min_length=1, max_length=20)] = "powershare"
    model: Annotated[str, Field(min_length=1, max_length=20)] = "gateway"
    serial_number: Annotated[str, Field(min_length=1, max_length=25)] | None = None
    reconnect_min_s: Seconds = 1.0
    reconnect_max_s: Seconds = 300.0
    response_timeout_s: Seconds = 30.0

    @model_validator(mode="after")
    def _security(self) -> OcppConfig:
        problems: list[str] = []
        secrets = [n for n in ("password", "password_file", "password_env") if getattr(self, n) is not None]
        tls = self.url.startswith("wss://")
        profile = self.security_profile
        if profile in (1, 2) and len(secrets) != 1:
            problems.append(tr("site.ocpp.password_needed", profile=profile))
        if profile in (0, 3) and secrets:
            problems.append(tr("site.ocpp.no_password_sent", profile=profile, keys=", ".join(secrets)))
        if profile == 1 and tls:
            problems.append(tr("site.ocpp.profile1_over_wss"))
        if profile in (2, 3) and not tls:
            problems.append(tr("site.ocpp.wss_needed", profile=profile))
        if profile == 3 and (self.client_cert is None or self.client_key is None):
            problems.append(tr("site.ocpp.client_certificate_needed"))
        if profile != 3 and (self.client_cert is not None or self.client_key is not None):
            problems.append(tr("site.ocpp.client_certificate_unused"))
        if not tls and self.ca_file is not None:
            problems.append(tr("site.ocpp.ca_file_unused"))
        if self.password is not None:
            problems += _key_problems(self.password)
        if self.reconnect_max_s < self.reconnect_min_s:
            problems.append(tr("site.reconnect_order"))
        if problems:
            raise ValueError(joined(problems))
        return self


def _key_problems(key: str) -> list[str]:
    """The security white paper asks for 16 to 20 random bytes written in hex; central systems issue keys of 16 to
    40 printable characters, and the gateway sends the key as the characters written."""
    if not 16 <= len(key) <= 40:
        return [tr("site.ocpp.key_length")]
    if not key.isprintable() or not key.isascii():
        return [tr("site.ocpp.key_characters")]
    return []
TopicLevels = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$", max_length=100)]
"""An MQTT topic prefix: levels of letters, digits, ``-`` and ``_``; no wildcards, no leading or trailing ``/``."""


class MqttConfig(Strict):
    """The MQTT face: status out, network limit and sharing in, Home Assistant discovery (see docs/mqtt.md)."""

    enabled: bool = True
    host: str = Field(min_length=1)
    """The broker."""
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(default="powershare", pattern=r"^[A-Za-z0-9_-]{1,23}$")
    """Also names the gateway in Home Assistant's unique ids: keep it stable and unique per broker."""
    username: str | None = Field(default=None, min_length=1)
    password: str | None = Field(default=None, repr=False)
    """In the site file itself; prefer ``password_file`` or ``password_env``. Kept out of ``repr`` and logs."""
    password_file: Path | None = None
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    tls: bool = False
    """Connect over TLS (usually port 8883), checking the broker's certificate."""
    ca_file: Path | None = None
    """Certificates that may sign the broker's; unset: the system's trust store."""
    client_cert: Path | None = None
    client_key: Path | None = None
    topic_prefix: TopicLevels = "powershare"
    publish_interval_s: Seconds = 60.0
    """Every status topic is published again this often even when nothing changed (besides on every change)."""
    discovery: bool = True
    """Announce the site and every charger to Home Assistant (MQTT discovery)."""
    discovery_prefix: TopicLevels = "homeassistant"
    read_only: bool = False
    """Publish status but refuse every command (each refusal is answered on the result topic)."""
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_max_s: Seconds = 60.0

    @model_validator(mode="after")
    def _credentials(self) -> MqttConfig:
        problems: list[str] = []
        secrets = [n for n in ("password", "password_file", "password_env") if getattr(self, n) is not None]
        if len(secrets) > 1:
            problems.append(tr("site.mqtt.one_password", keys=", ".join(secrets)))
        if secrets and self.username is None:
            problems.append(tr("site.mqtt.username_needed"))
        if (self.client_cert is None) != (self.client_key is None):
            problems.append(tr("site.mqtt.client_certificate_pair"))
        if not self.tls and any(f is not None for f in (self.ca_file, self.client_cert, self.client_key)):
            problems.append(tr("site.mqtt.tls_needed"))
        if problems:
            raise ValueError(joined(problems))
        return self


class MeterConfig(Strict):
    """A meter on a circuit node: the load on that node that is not ours becomes less headroom for the chargers.

    The chargers on ``circuit`` may then share ``limit_a - margin_a - (meter current - their own current)`` per
    phase. A meter that has not given a valid reading for ``stale_after_s`` counts as silent, and the chargers on
    the node fall to ``fallback_limit_a``: never to "unlimited".
    """

    profile: str = Field(min_length=1)
    transport: MeterTransport
    circuit: str = SITE_NODE
    """The node it measures: ``site`` (the supply) or a circuit id."""
    limit_a: Amps
    """The breaker of the node the meter measures, per phase."""
    margin_a: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 2.0
    """Kept free below ``limit_a`` for what moves between two readings."""
    fallback_limit_a: Amps
    """What the node's chargers may share, per phase, while the meter is silent."""
    stale_after_s: Seconds = 5.0


class SiteConfig(Strict):
    name: str = "powershare site"
    supply: SupplyConfig = SupplyConfig()
    installation_limit_a: Amps
    """Hard limit per phase from the installation; nothing the gateway is told can exceed it."""
    network_limit_a: Amps
    """The current shared among the chargers per phase (seed: "network limit")."""
    enabled: bool = False
    """No vehicle charges until sharing is enabled (seed)."""
    circuits: tuple[CircuitConfig, ...] = ()
    chargers: tuple[ChargerConfig, ...] = Field(default=(), max_length=1000)
    control: ControlConfig = ControlConfig()
    schedules: tuple[ScheduleConfig, ...] = ()
    """Fleet departures and energy per charger; a charger in two schedules is an error."""
    bms: BmsConfig | None = None
    ocpp_endpoint: OcppEndpointConfig | None = None
    """Where OCPP chargers connect; the defaults apply when OCPP chargers are configured without it."""
    ocpp: OcppConfig | None = None
    meter: MeterConfig | None = None
    web: WebConfig = WebConfig()
    history: HistoryConfig = HistoryConfig()
    mqtt: MqttConfig | None = None
    """Absent: no MQTT (the face is off by default)."""


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    """The key at fault, as the file spells it (``chargers[2].breaker_limit_a``); never translated."""
    message: str
    """What is wrong: a translatable text (``gateway.i18n``) whose ``str`` is English."""

    def __str__(self) -> str:
        return self.render("en")

    def render(self, lang: str) -> str:
        text = localized(self.message, lang)
        return f"{self.path}: {text}" if self.path else text


class ConfigError(InputError):
    """The file (or a proposed change) breaks a rule; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: Sequence[ConfigIssue]) -> None:
        self.source = source
        self.issues = tuple(issues)
        super().__init__(self.render("en"))

    def render(self, lang: str) -> str:
        """Every problem, one a line, in ``lang`` (``str`` of the error is English, for the log)."""
        return "\n".join(f"{self.source}: {issue.render(lang)}" for issue in self.issues)


NameplateLookup = Callable[[str], float]
"""Returns a profile's nameplate maximum current per phase; raises ``KeyError`` for an unknown profile."""


def _loc(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def nameplate_a(charger: ChargerConfig, nameplate_of: NameplateLookup) -> float:
    """The unit's nameplate: its profile's, or an OCPP charger's ``max_current_a``; ``KeyError`` if unknown."""
    if isinstance(charger.transport, OcppTransport):
        return charger.transport.max_current_a
    assert charger.profile is not None  # a validated Modbus charger has one
    return nameplate_of(charger.profile)


def unit_limit_a(charger: ChargerConfig, nameplate_a: float) -> float:
    """The most this unit may ever be given: its breaker limit, or its nameplate."""
    return charger.breaker_limit_a if charger.breaker_limit_a is not None else nameplate_a


def chargers_most_a(site: SiteConfig, nameplate_of: NameplateLookup) -> float:
    """What the chargers could draw together on the busiest site phase, each at its breaker limit (never above its
    nameplate). Needs every charger's profile to be known (``check_site`` has said so)."""
    per_phase = [0.0, 0.0, 0.0]
    for ch in site.chargers:
        nameplate = nameplate_a(ch, nameplate_of)
        for p in ch.site_phases if site.supply.phases == 3 else (0,):
            per_phase[p] += min(unit_limit_a(ch, nameplate), nameplate)
    return max(per_phase)


def network_limit_issue(limit_a: float, installation_limit_a: float,
                        chargers_most: float | None) -> ConfigIssue | None:
    """The rule for a network limit, wherever it comes from (the site file, the page, the BMS): at most the
    installation limit, and at most what the chargers could draw together (``chargers_most_a``; None: not checked,
    as for a site without chargers)."""
    if limit_a > installation_limit_a:
        return ConfigIssue("network_limit_a", tr("site.network_above_installation", network=limit_a,
                                                 installation=installation_limit_a))
    if chargers_most is not None and limit_a > chargers_most:
        return ConfigIssue("network_limit_a", tr("site.network_above_chargers", network=limit_a,
                                                 most=chargers_most))
    return None


def check_site(site: SiteConfig, nameplate_of: NameplateLookup) -> tuple[list[ConfigIssue], list[str]]:
    """The cross-field rules. Returns (errors, notes); notes are advice that does not stop the site."""
    errors: list[ConfigIssue] = []
    notes: list[str] = []
    circuit_ids = {SITE_NODE}
    for i, c in enumerate(site.circuits):
        if c.id in circuit_ids:
            errors.append(ConfigIssue(f"circuits[{i}].id", tr("site.circuit.duplicate", circuit=c.id)))
        circuit_ids.add(c.id)
    parents = {c.id: c.parent for c in site.circuits}
    for i, c in enumerate(site.circuits):
        if c.parent not in circuit_ids:
            errors.append(ConfigIssue(f"circuits[{i}].parent", tr("site.circuit.unknown", circuit=c.parent)))
            continue
        seen, node = {c.id}, c.parent
        while node != SITE_NODE and node in parents:
            if node in seen:
                errors.append(ConfigIssue(f"circuits[{i}].parent", tr("site.circuit.loop", circuit=c.id)))
                break
            seen.add(node)
            node = parents[node]

    charger_ids: set[str] = set()
    for i, ch in enumerate(site.chargers):
        where = f"chargers[{i}]"
        if ch.id in charger_ids:
            errors.append(ConfigIssue(f"{where}.id", tr("site.charger.duplicate", charger=ch.id)))
        charger_ids.add(ch.id)
        if ch.circuit not in circuit_ids:
            errors.append(ConfigIssue(f"{where}.circuit", tr("site.circuit.unknown", circuit=ch.circuit)))
        if len(ch.phase_rotation) // 2 < ch.phases:
            errors.append(ConfigIssue(f"{where}.phase_rotation", tr("site.charger.rotation_phases",
                                                                    phases=ch.phases)))
        if site.supply.phases == 1 and any(p != 0 for p in ch.site_phases[:1]):
            errors.append(ConfigIssue(f"{where}.phase_rotation", tr("site.charger.single_phase_supply")))
        try:
            nameplate = nameplate_a(ch, nameplate_of)
        except KeyError:
            errors.append(ConfigIssue(f"{where}.profile", tr("site.profile.unknown", profile=ch.profile)))
            continue
        if ch.breaker_limit_a is not None:
            if ch.breaker_limit_a > nameplate:
                errors.append(ConfigIssue(f"{where}.breaker_limit_a", tr(
                    "site.charger.breaker_above_nameplate", breaker=ch.breaker_limit_a, nameplate=nameplate)))
            elif ch.breaker_limit_a < MIN_CHARGE_CURRENT_A:
                errors.append(ConfigIssue(f"{where}.breaker_limit_a", tr("site.charger.breaker_below_minimum")))

    errors += _ocpp_issues(site)
    errors += _schedule_issues(site, charger_ids)
    if site.meter is not None:
        errors += _meter_issues(site.meter, circuit_ids)

    most = chargers_most_a(site, nameplate_of) if site.chargers and not errors else None
    issue = network_limit_issue(site.network_limit_a, site.installation_limit_a, most)
    if issue is not None:
        errors.append(issue)
    if site.chargers and not errors:
        busiest = max(sum(1 for ch in site.chargers if p in ch.site_phases) for p in range(site.supply.phases))
        if site.network_limit_a < MIN_CHARGE_CURRENT_A * busiest:
            notes.append(tr("site.note.rotation", network=site.network_limit_a, chargers=busiest))
    return errors, notes


def _ocpp_issues(site: SiteConfig) -> list[ConfigIssue]:
    """A charge point with several connectors is several chargers: they must agree on everything per charge point."""
    issues: list[ConfigIssue] = []
    first: dict[str, tuple[int, OcppTransport]] = {}
    connectors: set[tuple[str, int]] = set()
    for i, ch in enumerate(site.chargers):
        transport = ch.transport
        if not isinstance(transport, OcppTransport):
            continue
        where = f"chargers[{i}].transport"
        key = (transport.charge_point_id, transport.connector_id)
        if key in connectors:
            issues.append(ConfigIssue(f"{where}.connector_id", tr(
                "site.ocpp.connector_twice", connector=transport.connector_id, station=transport.charge_point_id)))
        connectors.add(key)
        if transport.charge_point_id not in first:
            first[transport.charge_point_id] = (i, transport)
            continue
        j, other = first[transport.charge_point_id]
        if transport.station_settings != other.station_settings:
            issues.append(ConfigIssue(where, tr("site.ocpp.station_settings_differ",
                                                station=transport.charge_point_id, other=j)))
        elif transport.failsafe_current_key is not None:
            issues.append(ConfigIssue(f"{where}.failsafe_current_key", tr("site.ocpp.failsafe_one_connector")))
    return issues


def _schedule_issues(site: SiteConfig, charger_ids: set[str]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    covered: dict[str, int] = {}
    for i, schedule in enumerate(site.schedules):
        for cid in schedule.chargers or tuple(sorted(charger_ids)):
            if cid not in charger_ids:
                issues.append(ConfigIssue(f"schedules[{i}].chargers", tr("site.charger.unknown", charger=cid)))
            elif cid in covered:
                issues.append(ConfigIssue(f"schedules[{i}].chargers", tr("site.schedule.charger_twice",
                                                                         charger=cid, other=covered[cid])))
            else:
                covered[cid] = i
    return issues


def _meter_issues(meter: MeterConfig, circuit_ids: set[str]) -> list[ConfigIssue]:
    issues = []
    if meter.circuit not in circuit_ids:
        issues.append(ConfigIssue("meter.circuit", tr("site.circuit.unknown", circuit=meter.circuit)))
    if meter.fallback_limit_a > meter.limit_a:
        issues.append(ConfigIssue("meter.fallback_limit_a", tr("site.meter.fallback_above_limit",
                                                               fallback=meter.fallback_limit_a, limit=meter.limit_a)))
    if meter.margin_a >= meter.limit_a > 0:
        issues.append(ConfigIssue("meter.margin_a", tr("site.meter.margin_too_large", margin=meter.margin_a,
                                                       limit=meter.limit_a)))
    return issues


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file strictly; raises ``ConfigError`` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [ConfigIssue("", tr("site.file.unreadable", error=exc.strerror or str(exc)))]) \
            from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [ConfigIssue("", tr("site.file.not_yaml", error=str(exc)))]) from exc


def parse_site(data: Any, source: str, nameplate_of: NameplateLookup) -> tuple[SiteConfig, list[str]]:
    """Validate already-parsed data; returns the site and its notes or raises ``ConfigError``."""
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue("", tr("site.file.not_a_mapping"))])
    try:
        site = SiteConfig.model_validate(data)
    except ValidationError as exc:
        issues = [ConfigIssue(_loc(e["loc"]), _message(e)) for e in exc.errors()]
        raise ConfigError(source, issues) from None
    errors, notes = check_site(site, nameplate_of)
    if errors:
        raise ConfigError(source, errors)
    return site, notes


def _message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return tr("site.key.unknown")
    if error["type"] == "missing":
        return tr("site.key.missing")
    return problem(error)


def load_site(path: Path, nameplate_of: NameplateLookup) -> tuple[SiteConfig, list[str]]:
    """Read and validate a site file; raises ``ConfigError`` with every problem found."""
    return parse_site(read_yaml(path), str(path), nameplate_of)
