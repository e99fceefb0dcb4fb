"""The charge point's state and its answers to the central system, synchronous: what the OCPP client keeps.

One ``Station`` is the whole site as one OCPP 1.6J charge point (connectors 1..N = the chargers in site-file order).
It holds the configuration keys, the installed charging profiles, the sessions, availability, the authorisation
cache and the outbox, persists each of them atomically when it changes, and

* folds every read-model snapshot into sessions, meter values, connector statuses and limits (``observe``);
* answers every call a central system sends (``handlers``), synchronously: work that needs the central system
  (authorising an idTag, a triggered message, the reconnection after a Reset) goes to the client through
  ``auth_requests`` and ``followups``;
* takes the central system's answers to the queued transaction messages (``delivered``, ``given_up``).

Everything persists in one database under the state directory, ``charge-point.db`` (``Ledger``): the station
document (configuration changes, sessions, availability, cache), the charging profiles (``ProfileStore``) and the
outbox. One event is one database transaction (``apply``: the sessions, the message and the profiles together), so a
crash can neither lose a transaction's StartTransaction or StopTransaction nor leave them half recorded. The files
of earlier versions are moved in once (``legacy_state.migrate``). A database that cannot be opened is moved aside
(``charge-point.db.corrupt-<n>``), and a document that cannot be read is logged; the gateway then starts from
defaults: power sharing never waits for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.faces.ocpp.authorization import ACCEPTED, LocalAuthorization
from gateway.faces.ocpp.charging_profile import Purpose, parse_profile, parse_set_charging_profile
from gateway.faces.ocpp.config_keys import ChangeStatus, Configuration, ConfigurationStateError
from gateway.faces.ocpp.connector_status import Activity, ConnectorReport, connector_report, site_report
from gateway.faces.ocpp.ledger import open_or_set_aside
from gateway.faces.ocpp.legacy_state import PROFILES_DOCUMENT, STATION_DOCUMENT, migrate
from gateway.faces.ocpp.limit_provider import OcppLimits
from gateway.faces.ocpp.meter_values import Context, Wiring, meter_value, next_aligned, next_sample
from gateway.faces.ocpp.outbox import METER_VALUES, START, STOP, Outbox, OutboxFull, QueuedMessage
from gateway.faces.ocpp.payload import CallErrorCode, Fields, PayloadError, format_time
from gateway.faces.ocpp.rpc import Handler
from gateway.faces.ocpp.sessions import (
    AuthorizeTag,
    Effect,
    Mode,
    SessionRules,
    Sessions,
    SessionStateError,
    StartTx,
    StopReason,
    StopTx,
)
from gateway.faces.ocpp.smart_charging import (
    Electrical,
    ProfileStore,
    StoreFormatError,
    composite,
    parse_get_composite_schedule,
)
from gateway.runtime.read_model import Availability, SiteStatus, UnitStatus
from gateway.site.config import NameplateLookup, OcppConfig, SiteConfig
from gateway.site.store import StoreError

log = logging.getLogger(__name__)

STATE_VERSION = 1
SELF_CHECKED = frozenset({"SetChargingProfile", "ClearChargingProfile", "GetCompositeSchedule",
                          "RemoteStartTransaction"})
"""Calls whose payload the station reads itself (1.6 error codes, plain floats) instead of the schema check."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """TriggerMessage accepted: send ``message`` (for ``connector``, None: every connector)."""

    message: str
    connector: int | None


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Reset accepted: deliver the queued StopTransactions, then reconnect and boot again."""

    kind: str


Followup = Trigger | Reconnect


class Station:
    def __init__(self, site: SiteConfig, options: OcppConfig, state_dir: Path, nameplate_of: NameplateLookup,
                 wall: Callable[[], float]) -> None:
        self.options = options
        self.wall = wall
        self.charger_ids = tuple(c.id for c in site.chargers)
        self.connectors = range(1, len(self.charger_ids) + 1)
        self.wiring = {n: Wiring(c.site_phases if site.supply.phases == 3 else (0,), site.supply.voltage_v)
                       for n, c in enumerate(site.chargers, start=1)}
        self.mode = Mode(options.authorization.mode)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = open_or_set_aside(state_dir / "charge-point.db")
        migrate(state_dir, self.ledger)
        document = self._load_document()
        self.config = self._load_configuration(site, document.get("configuration", {}))
        self.store = self._load_profiles()
        self.limits = OcppLimits(self.store, Electrical.from_site(site, nameplate_of), self.charger_ids)
        try:
            self.sessions = Sessions.from_json(len(self.charger_ids), document.get("sessions", {}))
        except SessionStateError as exc:
            log.error("%s: %s; running transactions are forgotten", self.ledger.path, exc)
            self.sessions = Sessions(len(self.charger_ids))
        availability = document.get("availability", {})
        self.site_inoperative = bool(availability.get("site", False))
        self.inoperative = {n for n in availability.get("connectors", []) if n in self.connectors}
        local_list = options.authorization.local_list
        try:
            self.auth = LocalAuthorization.from_json(local_list, document.get("auth_cache", {}))
        except (TypeError, ValueError) as exc:
            log.error("%s: %s; the authorisation cache starts empty", self.ledger.path, exc)
            self.auth = LocalAuthorization(local_list)
        self.outbox = Outbox(self.ledger)
        self.units: dict[int, UnitStatus | None] = dict.fromkeys(self.connectors)
        self.reports: dict[int, tuple[ConnectorReport, float]] = {}
        """Per connector (0 = the site): the status now and since when."""
        self.heartbeat_s = float(self.config.integer("HeartbeatInterval"))
        self.status_changed = asyncio.Event()
        self.outbox_changed = asyncio.Event()
        self.auth_requests: asyncio.Queue[AuthorizeTag] = asyncio.Queue()
        self.followups: asyncio.Queue[Followup] = asyncio.Queue()
        self._next_sample: dict[int, float] = {}
        self._next_aligned: tuple[int, float] | None = None
        self._observed = False

    # --- loading and saving --------------------------------------------------------------------------------------

    def _load_document(self) -> dict[str, Any]:
        text = self.ledger.document(STATION_DOCUMENT)
        try:
            document = {} if text is None else json.loads(text)
        except ValueError as exc:
            log.error("%s: the station document is unreadable (%s); starting from defaults", self.ledger.path, exc)
            return {}
        if not isinstance(document, dict) or (document and document.get("version") != STATE_VERSION):
            log.error("%s: unknown format version %r; starting from defaults", self.ledger.path,
                      document.get("version") if isinstance(document, dict) else None)
            return {}
        return document

    def _load_configuration(self, site: SiteConfig, changed: object) -> Configuration:
        values = self.options.meter_values
        defaults = {key: value for key, value in (
            ("MeterValueSampleInterval", values.sample_interval_s),
            ("MeterValuesSampledData", None if values.sampled_data is None else ",".join(values.sampled_data)),
            ("ClockAlignedDataInterval", values.clock_aligned_interval_s),
            ("MeterValuesAlignedData", None if values.aligned_data is None else ",".join(values.aligned_data)),
        ) if value is not None}
        try:
            return Configuration.for_site(site, changed if isinstance(changed, dict) else {},
                                          {k: str(v) for k, v in defaults.items()})
        except ConfigurationStateError as exc:
            log.error("%s: configuration keys: %s; the central system's changes are dropped", self.ledger.path, exc)
            return Configuration.for_site(site, {}, {k: str(v) for k, v in defaults.items()})

    def _load_profiles(self) -> ProfileStore:
        rules = self.config.profile_rules()
        try:
            text = self.ledger.document(PROFILES_DOCUMENT)
            return ProfileStore(rules) if text is None else ProfileStore.from_json(text, rules)
        except StoreFormatError as exc:
            log.error("%s: charging profiles: %s; starting without them", self.ledger.path, exc)
            return ProfileStore(rules)

    def _document(self) -> str:
        return json.dumps({"version": STATE_VERSION, "configuration": self.config.changed(),
                           "sessions": self.sessions.to_json(),
                           "availability": {"site": self.site_inoperative, "connectors": sorted(self.inoperative)},
                           "auth_cache": self.auth.to_json()}, sort_keys=True)

    def save(self) -> None:
        try:
            self.ledger.put_document(STATION_DOCUMENT, self._document())
        except StoreError as exc:
            log.error("OCPP state not saved: %s", exc)

    def save_profiles(self) -> None:
        try:
            self.ledger.put_document(PROFILES_DOCUMENT, self.store.to_json())
        except StoreError as exc:
            log.error("charging profiles not saved: %s", exc)

    def close(self) -> None:
        self.ledger.close()

    # --- rules in force ------------------------------------------------------------------------------------------

    def session_rules(self) -> SessionRules:
        return SessionRules(self.mode, self.options.authorization.id_tag,
                            stop_on_ev_disconnect=self.config.boolean("StopTransactionOnEVSideDisconnect"),
                            connection_timeout_s=float(self.config.integer("ConnectionTimeOut")),
                            stop_on_invalid_id=self.config.boolean("StopTransactionOnInvalidId"))

    def operative(self, connector: int) -> bool:
        """No ChangeAvailability(Inoperative) is requested for the connector or the site."""
        return not self.site_inoperative and connector not in self.inoperative

    def _activity(self, connector: int) -> Activity:
        session = self.sessions.get(connector)
        if session.running is not None:
            return Activity.TRANSACTION
        if session.finishing:
            return Activity.FINISHING
        return Activity.PREPARING if session.pending is not None else Activity.IDLE

    def _reachable(self, connector: int) -> UnitStatus | None:
        unit = self.units.get(connector)
        return unit if unit is not None and unit.availability is not Availability.UNAVAILABLE else None

    # --- the read model ------------------------------------------------------------------------------------------

    def observe(self, status: SiteStatus) -> None:
        """A new snapshot of the site."""
        by_id = {u.id: u for u in status.units}
        self.units = {n: by_id.get(cid) for n, cid in zip(self.connectors, self.charger_ids, strict=True)}
        self._observed = True
        self.step(status.time_s)

    def step(self, now: float) -> None:
        """Sessions, meter values, expiry, statuses and caps at ``now``."""
        if not self._observed:
            return
        rules = self.session_rules()
        effects: list[Effect] = []
        for n in self.connectors:
            effects += self.sessions.observe(n, self.units[n], now, rules, operative=self.operative(n),
                                             new_key=self.outbox.new_local_tx)
        self.apply(effects, now)
        self._sample(now)
        if self.store.expire(now):
            self.save_profiles()
            self.limits.changed()
        self._refresh(now)

    def apply(self, effects: list[Effect], now: float) -> None:
        """Carry out what the sessions decided: transaction messages into the outbox, profiles, authorisation."""
        transactions = [e for e in effects if isinstance(e, StartTx | StopTx)]
        for effect in effects:
            if isinstance(effect, AuthorizeTag):
                self.auth_requests.put_nowait(effect)
        if not transactions:
            return
        try:
            with self.ledger.transaction():  # one event: the sessions, the messages and the profiles together
                for effect in transactions:
                    if isinstance(effect, StartTx):
                        self._start(effect)
                    else:
                        self._stop(effect, now)
                self.ledger.put_document(STATION_DOCUMENT, self._document())
                self.ledger.put_document(PROFILES_DOCUMENT, self.store.to_json())
        except StoreError as exc:
            log.error("OCPP transaction event not stored: %s", exc)
        self.limits.changed()
        self.outbox_changed.set()

    def _start(self, start: StartTx) -> None:
        profile = None if start.profile is None else parse_profile(start.profile, "chargingProfile")
        self.store.start_transaction(start.connector, start.time_s, None, tx_profile=profile)
        payload = {"connectorId": start.connector, "idTag": start.id_tag, "meterStart": round(start.meter_start_wh),
                   "timestamp": format_time(start.time_s)}
        self._queue(START, payload, start.local_tx)
        interval = self.config.integer("MeterValueSampleInterval")
        if interval > 0:
            self._next_sample[start.connector] = start.time_s + interval
        log.info("connector %d: transaction started (idTag %s, meter %d Wh)", start.connector, start.id_tag,
                 round(start.meter_start_wh))

    def _stop(self, stop: StopTx, now: float) -> None:
        self.store.end_transaction(stop.connector)
        self._next_sample.pop(stop.connector, None)
        payload: dict[str, Any] = {"idTag": stop.id_tag, "meterStop": round(stop.meter_stop_wh),
                                   "timestamp": format_time(stop.time_s), "reason": stop.reason.value}
        unit = self._reachable(stop.connector)
        measurands = self.config.entries("StopTxnSampledData")
        if unit is not None and measurands:
            sample = meter_value(unit, measurands, self.wiring[stop.connector], Context.TRANSACTION_END, now,
                                 stop.meter_stop_wh)
            if sample is not None:
                payload["transactionData"] = [sample]
        self._queue(STOP, payload, stop.local_tx)
        log.info("connector %d: transaction stopped (%s, meter %d Wh)", stop.connector, stop.reason.value,
                 round(stop.meter_stop_wh))

    def _queue(self, action: str, payload: dict[str, Any], local_tx: int | None) -> None:
        try:
            self.outbox.append(action, payload, local_tx=local_tx)
        except OutboxFull as exc:
            log.error("%s not queued: %s", action, exc)

    def _sample(self, now: float) -> None:
        interval = self.config.integer("MeterValueSampleInterval")
        measurands = self.config.entries("MeterValuesSampledData")
        queued = False
        for n, running in self.sessions.running().items():
            if interval <= 0:
                break
            due = self._next_sample.setdefault(n, next_sample(running.started_s, now, interval))
            unit = self._reachable(n)
            if now < due or unit is None:
                continue  # a sample missed for want of a reading is taken with the next reading, not skipped
            self._next_sample[n] = next_sample(running.started_s, now, interval)
            sample = meter_value(unit, measurands, self.wiring[n], Context.PERIODIC, now,
                                 self.sessions.meter_wh(n, unit))
            if sample is not None:
                self._queue(METER_VALUES, {"connectorId": n, "meterValue": [sample]}, running.local_tx)
                queued = True
        aligned = self.config.integer("ClockAlignedDataInterval")
        if aligned <= 0:
            self._next_aligned = None
        elif self._next_aligned is None or self._next_aligned[0] != aligned:
            self._next_aligned = (aligned, next_aligned(now, aligned))
        elif now >= self._next_aligned[1]:
            at = self._next_aligned[1]
            self._next_aligned = (aligned, next_aligned(now, aligned))
            queued |= self._sample_aligned(at)
        if queued:
            self.outbox_changed.set()

    def _sample_aligned(self, at: float) -> bool:
        measurands = self.config.entries("MeterValuesAlignedData")
        running = self.sessions.running()
        queued = False
        for n in self.connectors:
            unit = self._reachable(n)
            if unit is None:
                continue
            tx = running.get(n)
            energy = self.sessions.meter_wh(n, unit) if tx is not None else unit.energy_wh
            sample = meter_value(unit, measurands, self.wiring[n], Context.CLOCK, at, energy)
            if sample is not None:
                self._queue(METER_VALUES, {"connectorId": n, "meterValue": [sample]},
                            None if tx is None else tx.local_tx)
                queued = True
        return queued

    def _refresh(self, now: float) -> None:
        blocked = set()
        reports = {0: site_report(inoperative=self.site_inoperative)}
        for n in self.connectors:
            in_force = not self.operative(n) and self.sessions.get(n).running is None
            reports[n] = connector_report(self.units[n], self._activity(n), inoperative=in_force)
            if in_force or not self.sessions.energy_allowed(n, self.mode):
                blocked.add(n)
        for n, report in reports.items():
            if n not in self.reports or self.reports[n][0] != report:
                self.reports[n] = (report, now)
                self.status_changed.set()
        self.limits.block(frozenset(blocked))

    def status_payload(self, connector: int) -> dict[str, Any] | None:
        entry = self.reports.get(connector)
        return None if entry is None else entry[0].payload(connector, format_time(entry[1]))

    def triggered_meter_values(self, connector: int | None, now: float) -> list[dict[str, Any]]:
        """MeterValues.req for TriggerMessage: a snapshot now, not history (spec §5.17), sent outside the queue."""
        out = []
        measurands = self.config.entries("MeterValuesSampledData")
        for n in self.connectors if connector in (None, 0) else (connector,):
            unit = self._reachable(n)
            if unit is None:
                continue
            running = self.sessions.get(n).running
            energy = self.sessions.meter_wh(n, unit) if running is not None else unit.energy_wh
            sample = meter_value(unit, measurands, self.wiring[n], Context.TRIGGER, now, energy)
            if sample is None:
                continue
            payload: dict[str, Any] = {"connectorId": n, "meterValue": [sample]}
            tx_id = None if running is None else self.outbox.transaction_id(running.local_tx)
            if tx_id is not None:
                payload["transactionId"] = tx_id
            out.append(payload)
        return out

    # --- the central system's answers to queued messages ---------------------------------------------------------

    def delivered(self, message: QueuedMessage, answer: Mapping[str, Any]) -> None:
        info = answer.get("idTagInfo")
        id_tag = message.payload.get("idTag")
        if isinstance(info, dict) and isinstance(id_tag, str):
            self.auth.remember(id_tag, info)
        if message.action != START:
            with self.ledger.transaction():
                self.outbox.mark_delivered(message.seq)
                if isinstance(info, dict):
                    self.save()
            return
        with self.ledger.transaction():
            self._delivered_start(message, answer, info, id_tag)
        self._refresh(self.wall())

    def _delivered_start(self, message: QueuedMessage, answer: Mapping[str, Any], info: object,
                         id_tag: object) -> None:
        tx_id = int(answer["transactionId"])
        self.outbox.mark_delivered(message.seq, transaction_id=tx_id)
        assert message.local_tx is not None
        connector = self.sessions.connector_of(message.local_tx)
        if connector is not None:
            self.store.assign_transaction_id(connector, tx_id)
            self.save_profiles()
            if isinstance(info, dict) and info.get("status") != ACCEPTED:
                log.warning("connector %d: the central system refused idTag %s (%s)", connector, id_tag,
                            info.get("status"))
                stop = self.sessions.refused(connector, message.local_tx, self.session_rules(), self.wall(),
                                             self.units.get(connector))
                self.apply([stop] if stop is not None else [], self.wall())
        self.save()

    def given_up(self, message: QueuedMessage, reason: str) -> None:
        """The central system failed to process the message TransactionMessageAttempts times (spec §3.7)."""
        log.error("%s given up after %d attempts: %s", message.action,
                  self.config.integer("TransactionMessageAttempts"), reason)
        self.outbox.mark_delivered(message.seq)

    # --- calls from the central system ---------------------------------------------------------------------------

    def handlers(self) -> dict[str, Handler]:
        return {
            "ChangeAvailability": self._change_availability,
            "ChangeConfiguration": self._change_configuration,
            "ClearCache": self._clear_cache,
            "ClearChargingProfile": self._clear_charging_profile,
            "DataTransfer": lambda payload: {"status": "UnknownVendorId"},
            "GetCompositeSchedule": self._get_composite_schedule,
            "GetConfiguration": self._get_configuration,
            "RemoteStartTransaction": self._remote_start,
            "RemoteStopTransaction": self._remote_stop,
            "Reset": self._reset,
            "SetChargingProfile": self._set_charging_profile,
            "TriggerMessage": self._trigger_message,
            "UnlockConnector": lambda payload: {"status": "NotSupported"},
        }

    def _change_availability(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector, inoperative = payload["connectorId"], payload["type"] == "Inoperative"
        if connector != 0 and connector not in self.connectors:
            return {"status": "Rejected"}
        if connector == 0:
            self.site_inoperative = inoperative
        elif inoperative:
            self.inoperative.add(connector)
        else:
            self.inoperative.discard(connector)
        self.save()
        affected = self.connectors if connector == 0 else (connector,)
        busy = inoperative and any(self.sessions.get(n).running is not None for n in affected)
        log.info("ChangeAvailability %s for %s%s", payload["type"], "the site" if connector == 0 else
                 f"connector {connector}", " (scheduled after the transaction)" if busy else "")
        self.step(self.wall())
        return {"status": "Scheduled" if busy else "Accepted"}

    def _change_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        key, value = payload["key"], payload["value"]
        status, reason = self.config.change(key, value)
        if status in (ChangeStatus.ACCEPTED, ChangeStatus.REBOOT_REQUIRED):
            self.save()
            if key == "HeartbeatInterval":
                self.heartbeat_s = float(self.config.integer(key))
            log.info("configuration %s = %s", key, self.config.value(key))
        else:
            log.warning("ChangeConfiguration %s %s: %s", key, status.value, reason)
        return {"status": status.value}

    def _clear_cache(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.auth.clear_cache()
        self.save()
        return {"status": "Accepted"}

    def _get_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.config.get_payload(payload.get("key"))

    def _set_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector, profile = parse_set_charging_profile(payload)
        outcome = self.store.set_charging_profile(connector, profile, self.wall())
        if outcome.reason is not None:
            log.warning("SetChargingProfile %d on connector %d rejected: %s", profile.id, connector, outcome.reason)
        else:
            log.info("charging profile %d (%s, stack level %d) installed on connector %d", profile.id,
                     profile.purpose.value, profile.stack_level, connector)
            self.save_profiles()
            self.limits.changed()
        return {"status": outcome.status.value}

    def _clear_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        f = Fields(payload, "ClearChargingProfile")
        profile_id = f.integer("id")
        connector = f.integer("connectorId")
        purpose = f.enum("chargingProfilePurpose", Purpose)
        stack_level = f.integer("stackLevel")
        f.done()
        outcome = self.store.clear_charging_profile(profile_id=profile_id, connector_id=connector, purpose=purpose,
                                                    stack_level=stack_level)
        if outcome.cleared:
            log.info("charging profile(s) %s cleared", ", ".join(map(str, outcome.cleared)))
            self.save_profiles()
            self.limits.changed()
        return {"status": outcome.status.value}

    def _get_composite_schedule(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector, duration, unit = parse_get_composite_schedule(payload)
        schedule = composite(self.store, self.limits.electrical, connector, self.wall(), duration, unit)
        if schedule.reason is not None:
            log.warning("GetCompositeSchedule rejected: %s", schedule.reason)
        return schedule.to_payload()

    def _remote_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        f = Fields(payload, "RemoteStartTransaction")
        connector = f.integer("connectorId")
        id_tag = f.raw("idTag", required=True)
        raw_profile = f.raw("chargingProfile")
        f.done()
        if not isinstance(id_tag, str) or not 1 <= len(id_tag) <= 20:
            raise PayloadError(CallErrorCode.TYPE_CONSTRAINT_VIOLATION,
                               "RemoteStartTransaction.idTag: a string of 1 to 20 characters")
        profile = None if raw_profile is None else parse_profile(raw_profile, "RemoteStartTransaction.chargingProfile")
        now = self.wall()
        if profile is not None:
            reason = self.store.remote_start_refusal(connector or 1, profile)
            if reason is not None:
                log.warning("RemoteStartTransaction rejected: %s", reason)
                return {"status": "Rejected"}
        if connector == 0:
            log.warning("RemoteStartTransaction rejected: connector 0 has no transactions")
            return {"status": "Rejected"}
        chosen, reason, effects = self.sessions.remote_start(
            connector, id_tag, None if profile is None else profile.to_payload(), now, self.session_rules(),
            self.units, operative=self.operative, authorize_first=self.config.boolean("AuthorizeRemoteTxRequests"))
        if reason is not None:
            log.warning("RemoteStartTransaction rejected: %s", reason)
            return {"status": "Rejected"}
        log.info("RemoteStartTransaction accepted on connector %s for idTag %s", chosen, id_tag)
        self.apply(effects, now)
        self.save()
        self.step(now)
        return {"status": "Accepted"}

    def _remote_stop(self, payload: dict[str, Any]) -> dict[str, Any]:
        tx_id = payload["transactionId"]
        now = self.wall()
        for n, running in self.sessions.running().items():
            if self.outbox.transaction_id(running.local_tx) == tx_id:
                stop = self.sessions.stop(n, StopReason.REMOTE, now, self.units.get(n))
                self.apply([stop] if stop is not None else [], now)
                self.step(now)
                return {"status": "Accepted"}
        log.warning("RemoteStopTransaction rejected: no transaction %s runs", tx_id)
        return {"status": "Rejected"}

    def _reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        kind = payload["type"]
        now = self.wall()
        reason = StopReason.HARD_RESET if kind == "Hard" else StopReason.SOFT_RESET
        stops = self.sessions.reset(reason, now, self.units)
        self.apply(list(stops), now)
        self.save()
        log.info("Reset (%s): %d transaction(s) stopped; reconnecting", kind, len(stops))
        self.followups.put_nowait(Reconnect(kind))
        return {"status": "Accepted"}

    def _trigger_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        message, connector = payload["requestedMessage"], payload.get("connectorId")
        if message in ("DiagnosticsStatusNotification", "FirmwareStatusNotification"):
            return {"status": "NotImplemented"}
        if connector is not None and connector != 0 and connector not in self.connectors:
            return {"status": "Rejected"}
        self.followups.put_nowait(Trigger(message, connector))
        return {"status": "Accepted"}

