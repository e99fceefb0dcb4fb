"""When a connector's OCPP transaction starts and stops: a pure state machine per connector.

Modbus chargers know nothing of idTags, so the site chooses how a session is authorised
(``OcppAuthorizationConfig.mode``). An OCPP follower runs its own transaction with its own idTag (a badge); that
idTag (``UnitStatus.id_tag``) takes the site's place below, so the central system sees who charges:

* ``free_vend``: a car that plugs in starts a transaction at once, with the site's idTag;
* ``authorize``: the same, once that idTag is accepted (Authorize.req, or the local list or cache);
* ``remote``: a car waits until the central system sends RemoteStartTransaction.

RemoteStartTransaction works in every mode: it books the connector for its idTag until a car plugs in, or for
``ConnectionTimeOut`` seconds (spec §5.11). A transaction stops when the car unplugs (reason ``EVDisconnected``,
unless StopTransactionOnEVSideDisconnect is false), on RemoteStopTransaction (``Remote``), on Reset
(``HardReset``/``SoftReset``), or when the central system refuses the idTag of a transaction already started
(``DeAuthorized``, errata §3.17, with StopTransactionOnInvalidId). After a stop the car gets no current until it
is unplugged (``Finishing``), except after a Reset, where a car still plugged in starts a new transaction as it
would after a charger's reboot.

Decisions are level-triggered: a connector with a car and no transaction starts one whenever the mode allows, so a
car plugged in while the gateway was down, or while the connector was Inoperative, is not forgotten. A charger the
gateway cannot read changes nothing: an unreachable charger does not end its transaction.

Meter readings are the charger's energy register when it has one; otherwise they count the session's energy from
0 Wh. Nothing here does I/O or reads a clock; the OCPP client applies the effects and persists ``to_json()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from gateway.errors import StateError
from gateway.runtime.read_model import UnitStatus


class Mode(StrEnum):
    FREE_VEND = "free_vend"
    AUTHORIZE = "authorize"
    REMOTE = "remote"


class StopReason(StrEnum):
    EV_DISCONNECTED = "EVDisconnected"
    REMOTE = "Remote"
    HARD_RESET = "HardReset"
    SOFT_RESET = "SoftReset"
    DE_AUTHORIZED = "DeAuthorized"


class Auth(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class SessionRules:
    """The site's choice and the configuration keys that shape sessions (read afresh at every step)."""

    mode: Mode
    id_tag: str
    """The site's idTag for free vend and ``authorize``."""
    stop_on_ev_disconnect: bool = True
    connection_timeout_s: float = 60.0
    stop_on_invalid_id: bool = True


@dataclass(frozen=True, slots=True)
class Pending:
    """A transaction about to start: waiting for authorisation, or (remote start) for a car."""

    id_tag: str
    auth: Auth
    remote: bool
    deadline_s: float | None = None
    """A remote start lapses at this time if no car has plugged in."""
    profile: dict[str, Any] | None = None
    """The TxProfile RemoteStartTransaction carried (payload form), applied when the transaction starts."""


@dataclass(frozen=True, slots=True)
class Running:
    local_tx: int
    """The outbox's key for the transaction (its id arrives with StartTransaction.conf)."""
    id_tag: str
    started_s: float
    meter_start_wh: float
    register: bool
    """Meter values are the charger's energy register (else the session's energy counted from 0)."""
    blocked: bool = False
    """The central system refused the idTag and StopTransactionOnInvalidId is false: no energy (errata §3.17)."""


@dataclass(frozen=True, slots=True)
class Session:
    pending: Pending | None = None
    running: Running | None = None
    finishing: bool = False


@dataclass(frozen=True, slots=True)
class StartTx:
    connector: int
    local_tx: int
    id_tag: str
    meter_start_wh: float
    time_s: float
    profile: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class StopTx:
    connector: int
    local_tx: int
    id_tag: str
    meter_stop_wh: float
    time_s: float
    reason: StopReason


@dataclass(frozen=True, slots=True)
class AuthorizeTag:
    """Ask whether ``id_tag`` may charge (Authorize.req, or the local list or cache when offline)."""

    connector: int
    id_tag: str


Effect = StartTx | StopTx | AuthorizeTag


class SessionStateError(StateError):
    """The persisted sessions cannot be read."""


def _plugged(unit: UnitStatus | None) -> bool | None:
    """None: unknown (no charger, or it does not answer): decide nothing on it."""
    if unit is None or unit.state is None:
        return None
    return unit.state.plugged_in


class Sessions:
    """The sessions of connectors 1..N."""

    def __init__(self, connectors: int, sessions: Mapping[int, Session] | None = None) -> None:
        self.connectors = connectors
        self._sessions = {n: Session() for n in range(1, connectors + 1)}
        for n, session in (sessions or {}).items():
            if n in self._sessions:
                self._sessions[n] = session
        self._last_meter: dict[int, float] = {}

    def get(self, connector: int) -> Session:
        return self._sessions[connector]

    def running(self) -> dict[int, Running]:
        return {n: s.running for n, s in self._sessions.items() if s.running is not None}

    def connector_of(self, local_tx: int) -> int | None:
        return next((n for n, r in self.running().items() if r.local_tx == local_tx), None)

    def energy_allowed(self, connector: int, mode: Mode) -> bool:
        """May the charger give current now? Not before authorisation (unless free vend), not after a stop."""
        session = self._sessions[connector]
        if session.running is not None:
            return not session.running.blocked
        if session.finishing:
            return False
        return mode is Mode.FREE_VEND

    # --- the read model ------------------------------------------------------------------------------------------

    def observe(self, connector: int, unit: UnitStatus | None, now: float, rules: SessionRules, *, operative: bool,
                new_key: Callable[[], int]) -> list[Effect]:
        """One new snapshot of the connector's charger."""
        session = self._sessions[connector]
        plugged = _plugged(unit)
        if session.running is not None:
            meter = self._meter(connector, unit, session.running)
            if plugged is False and rules.stop_on_ev_disconnect:
                return [self._stop(connector, StopReason.EV_DISCONNECTED, now, meter, finishing=False)]
            return []
        if plugged is None:
            return []
        if session.finishing:
            if not plugged:
                self._sessions[connector] = Session(pending=session.pending)
            return []
        pending = session.pending
        if pending is not None and not plugged:
            lapsed = pending.deadline_s is not None and now >= pending.deadline_s
            if lapsed or not pending.remote:
                self._sessions[connector] = Session()
            return []
        if not plugged or not operative:
            return []
        assert unit is not None
        if pending is None:
            if rules.mode is Mode.REMOTE:
                return []
            id_tag = unit.id_tag or rules.id_tag  # an OCPP follower's own badge is relayed as the session's idTag
            if rules.mode is Mode.AUTHORIZE:
                self._sessions[connector] = Session(pending=Pending(id_tag, Auth.PENDING, remote=False))
                return [AuthorizeTag(connector, id_tag)]
            pending = Pending(id_tag, Auth.ACCEPTED, remote=False)
        if pending.auth is not Auth.ACCEPTED:
            return []
        return [self._start(connector, unit, pending, now, new_key())]

    def _start(self, connector: int, unit: UnitStatus, pending: Pending, now: float, local_tx: int) -> StartTx:
        register = unit.energy_wh is not None
        meter = unit.energy_wh if unit.energy_wh is not None else 0.0
        self._sessions[connector] = Session(running=Running(local_tx, pending.id_tag, now, meter, register))
        self._last_meter[connector] = meter
        return StartTx(connector, local_tx, pending.id_tag, meter, now, pending.profile)

    def _meter(self, connector: int, unit: UnitStatus | None, running: Running) -> float:
        """The transaction's meter now; the last known value while the charger cannot say."""
        value: float | None = None
        if unit is not None and unit.state is not None:
            if running.register:
                value = unit.energy_wh
            elif unit.state.plugged_in:
                value = running.meter_start_wh + unit.session_energy_wh
        if value is not None:
            self._last_meter[connector] = value
        return self._last_meter.get(connector, running.meter_start_wh)

    def meter_wh(self, connector: int, unit: UnitStatus | None) -> float | None:
        """The meter of the connector's transaction now (None without one)."""
        running = self._sessions[connector].running
        return None if running is None else self._meter(connector, unit, running)

    def _stop(self, connector: int, reason: StopReason, now: float, meter: float, *, finishing: bool) -> StopTx:
        running = self._sessions[connector].running
        assert running is not None
        self._sessions[connector] = Session(finishing=finishing)
        self._last_meter.pop(connector, None)
        return StopTx(connector, running.local_tx, running.id_tag, meter, now, reason)

    # --- the central system --------------------------------------------------------------------------------------

    def remote_start(self, connector: int | None, id_tag: str, profile: dict[str, Any] | None, now: float,
                     rules: SessionRules, units: Mapping[int, UnitStatus | None], *, operative: Callable[[int], bool],
                     authorize_first: bool) -> tuple[int | None, str | None, list[Effect]]:
        """RemoteStartTransaction (spec §5.11): (the connector, None, effects) if accepted, else (None, reason, []).

        Without a connectorId the gateway picks a connector where a car waits, else a free one. With
        ``authorize_first`` (AuthorizeRemoteTxRequests) the idTag is checked before the transaction starts.
        """
        if connector is None:
            free = [n for n, s in self._sessions.items() if s.running is None and operative(n)]
            waiting = [n for n in free if _plugged(units.get(n))]
            if not free:
                return None, "no connector is free", []
            connector = (waiting or free)[0]
        if connector not in self._sessions:
            return None, f"connector {connector} does not exist (1..{self.connectors})", []
        if not operative(connector):
            return None, f"connector {connector} is Inoperative", []
        if self._sessions[connector].running is not None:
            return None, f"a transaction already runs on connector {connector}", []
        auth = Auth.PENDING if authorize_first else Auth.ACCEPTED
        self._sessions[connector] = Session(pending=Pending(id_tag, auth, remote=True,
                                                            deadline_s=now + rules.connection_timeout_s,
                                                            profile=profile))
        return connector, None, [AuthorizeTag(connector, id_tag)] if authorize_first else []

    def authorized(self, connector: int, id_tag: str, accepted: bool) -> None:
        """The answer to an ``AuthorizeTag``; the transaction starts at the next ``observe`` if the car is there."""
        pending = self._sessions[connector].pending
        if pending is not None and pending.id_tag == id_tag and pending.auth is Auth.PENDING:
            new = replace(pending, auth=Auth.ACCEPTED if accepted else Auth.REFUSED)
            self._sessions[connector] = replace(self._sessions[connector], pending=new)

    def stop(self, connector: int, reason: StopReason, now: float, unit: UnitStatus | None) -> StopTx | None:
        """Stop the connector's transaction; the car gets no current until it is unplugged."""
        running = self._sessions[connector].running
        if running is None:
            return None
        meter = self._meter(connector, unit, running)
        return self._stop(connector, reason, now, meter, finishing=_plugged(unit) is not False)

    def refused(self, connector: int, local_tx: int, rules: SessionRules, now: float,
                unit: UnitStatus | None) -> StopTx | None:
        """StartTransaction.conf refused the idTag of the transaction ``local_tx`` (errata §3.17)."""
        running = self._sessions[connector].running
        if running is None or running.local_tx != local_tx:
            return None
        if rules.stop_on_invalid_id:
            return self.stop(connector, StopReason.DE_AUTHORIZED, now, unit)
        self._sessions[connector] = Session(running=replace(running, blocked=True))
        return None

    def reset(self, reason: StopReason, now: float, units: Mapping[int, UnitStatus | None]) -> list[StopTx]:
        """Reset: stop every transaction and forget pending starts; cars still plugged in start anew."""
        stops = []
        for n, session in self._sessions.items():
            if session.running is not None:
                stops.append(self._stop(n, reason, now, self._meter(n, units.get(n), session.running),
                                        finishing=False))
            self._sessions[n] = Session()
        return stops

    # --- persistence ---------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {str(n): asdict(s) for n, s in self._sessions.items() if s != Session()}

    @classmethod
    def from_json(cls, connectors: int, data: object) -> Sessions:
        """Read what ``to_json`` gave; raises ``SessionStateError``. Connectors beyond ``connectors`` are left out."""
        if not isinstance(data, dict):
            raise SessionStateError("sessions: expected an object")
        sessions = {}
        try:
            for key, raw in data.items():
                pending = raw.get("pending")
                running = raw.get("running")
                sessions[int(key)] = Session(
                    pending=None if pending is None else Pending(**{**pending, "auth": Auth(pending["auth"])}),
                    running=None if running is None else Running(**running),
                    finishing=bool(raw.get("finishing", False)))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise SessionStateError(f"sessions: {exc}") from None
        for n, session in sessions.items():
            r = session.running
            if r is not None and not (isinstance(r.local_tx, int) and isinstance(r.id_tag, str)
                                      and isinstance(r.started_s, int | float)
                                      and isinstance(r.meter_start_wh, int | float)):
                raise SessionStateError(f"sessions: connector {n}: malformed transaction")
            p = session.pending
            if p is not None and not isinstance(p.id_tag, str):
                raise SessionStateError(f"sessions: connector {n}: malformed pending start")
        return cls(connectors, sessions)
