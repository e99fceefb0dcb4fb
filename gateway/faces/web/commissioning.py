"""The commissioning API: everything the installer sets, read and changed as the site file would set it.

Installation limit, circuits (the tree), each unit's breaker, phases, phase rotation and circuit, the site meter,
the BMS face and its watchdog, the central system (OCPP), a restart, each as one command for
``GatewayControl.apply``. The gateway lays the change over the site file and the settings already made and runs the
site file's own rules on the result (``gateway.site.settings``): a refusal is answered 422 with the rule's words and
the request field at fault, and nothing has changed. Every answer is the whole commissioning state again, so the
page shows what the gateway now holds, and which saved sections wait for a restart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from gateway.faces.web.commissioning_schemas import (
    OCPP_BODY,
    BmsWatchdogIn,
    CircuitIn,
    CommissioningOut,
    MeterProfileOut,
    RestartOut,
    WiringIn,
    commissioning_out,
    meter_profile_out,
)
from gateway.faces.web.schemas import LimitIn, Refusal
from gateway.i18n.text import text_of, tr
from gateway.runtime.commands import (
    Command,
    CommandRejected,
    RemoveCircuit,
    SetBms,
    SetBmsFallbackLimit,
    SetBmsWatchdog,
    SetCircuit,
    SetInstallationLimit,
    SetMeter,
    SetOcppUpstream,
    SetUnitWiring,
)
from gateway.site.config import BmsConfig, CircuitConfig, MeterConfig, OcppConfig
from gateway.site.settings import SiteSettings

if TYPE_CHECKING:
    from gateway.faces.web.api import ApiContext

_SECRETS = ("password", "password_file", "password_env")
Refuse = Callable[[Request, int, str, str | None], JSONResponse]


class NotAvailable(CommandRejected):
    """This gateway cannot do it (no restart without ``powershare run``; no settings in a bare test server)."""


_WRITE: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal, "description": "sign in first"},
    403: {"model": Refusal, "description": "cookie session without the X-CSRF-Token header"},
    422: {"model": Refusal, "description": "refused by the site file's rules; nothing was changed"},
}
_TAGS: list[str | Enum] = ["commissioning"]


def add_commissioning_routes(app: FastAPI, ctx: ApiContext, *, write: Depends, read: Sequence[Depends],
                             read_errors: dict[int | str, dict[str, Any]], refusal: Refuse) -> None:
    """The routes on ``app``; ``write``/``read`` are the session checks of the other routes, ``refusal`` how they
    answer a refusal (in the reader's language)."""

    def settings() -> SiteSettings:
        if ctx.settings is None:
            raise NotAvailable(tr("web.commissioning.no_settings"))
        return ctx.settings

    def state() -> CommissioningOut:
        return commissioning_out(settings(), ctx.control.status(), ctx.instance, ctx.restart is not None)

    def change(command: Command, request: Request) -> CommissioningOut:
        settings()
        try:
            ctx.control.apply(command, f"web installer@{_client(request)}")
        except CommandRejected as exc:
            raise CommandRejected(text_of(exc), field=request_field(command, exc.field)) from None
        return state()

    @app.exception_handler(NotAvailable)
    async def _not_available(request: Request, exc: NotAvailable) -> JSONResponse:
        return refusal(request, 409, text_of(exc), exc.field)

    @app.get("/api/commissioning", tags=_TAGS, dependencies=list(read), responses=read_errors,
             summary="What the installer sets: limits, circuits, wiring, meter, BMS, central system, restart")
    async def commissioning() -> CommissioningOut:
        return state()

    @app.get("/api/meter-profiles", tags=_TAGS, dependencies=list(read), responses=read_errors,
             summary="The meter profiles a site meter can be read with")
    async def meter_profiles() -> list[MeterProfileOut]:
        return [meter_profile_out(ctx.profiles.meter(n)) for n in ctx.profiles.names("meter")]

    @app.put("/api/installation-limit", tags=_TAGS, dependencies=[write], responses=_WRITE,
             summary="The installation limit (main breaker) per phase; applies at the next control step")
    async def set_installation_limit(body: LimitIn, request: Request) -> CommissioningOut:
        _zero_confirmed(body.limit_a, body.confirm_zero, tr("web.zero.every_car"))
        return change(SetInstallationLimit(body.limit_a), request)

    @app.post("/api/circuits", tags=_TAGS, dependencies=[write], responses=_WRITE, status_code=201,
              summary="Add a circuit (a distribution board with its own breaker)")
    async def add_circuit(body: CircuitIn, request: Request) -> CommissioningOut:
        _zero_confirmed(body.limit_a, body.confirm_zero, tr("web.zero.circuit", circuit=body.id))
        return change(SetCircuit(None, _circuit(body)), request)

    @app.put("/api/circuits/{circuit_id}", tags=_TAGS, dependencies=[write], responses=_WRITE,
             summary="Change a circuit: its limit, its parent, its name (its units follow a new name)")
    async def set_circuit(circuit_id: str, body: CircuitIn, request: Request) -> CommissioningOut:
        _zero_confirmed(body.limit_a, body.confirm_zero, tr("web.zero.circuit", circuit=circuit_id))
        return change(SetCircuit(circuit_id, _circuit(body)), request)

    @app.delete("/api/circuits/{circuit_id}", tags=_TAGS, dependencies=[write], responses=_WRITE,
                summary="Remove a circuit that feeds no unit, circuit or meter")
    async def remove_circuit(circuit_id: str, request: Request) -> CommissioningOut:
        return change(RemoveCircuit(circuit_id), request)

    @app.put("/api/units/{unit_id}/wiring", tags=_TAGS, dependencies=[write], responses=_WRITE,
             summary="A unit's breaker, phases, phase rotation and circuit; applies at the next control step")
    async def set_wiring(unit_id: str, body: WiringIn, request: Request) -> CommissioningOut:
        return change(SetUnitWiring(unit_id, body.breaker_limit_a, body.phases, body.phase_rotation, body.circuit),
                      request)

    @app.put("/api/meter", tags=_TAGS, dependencies=[write], responses=_WRITE,
             summary="The site meter; limits apply at once, another device when the gateway restarts")
    async def set_meter(body: MeterConfig, request: Request) -> CommissioningOut:
        return change(SetMeter(body), request)

    @app.delete("/api/meter", tags=_TAGS, dependencies=[write], responses=_WRITE,
                summary="No site meter (when the gateway restarts)")
    async def remove_meter(request: Request) -> CommissioningOut:
        return change(SetMeter(None), request)

    @app.put("/api/bms", tags=_TAGS, dependencies=[write], responses=_WRITE,
             summary="The BMS face (Modbus server); applies when the gateway restarts")
    async def set_bms(body: BmsConfig, request: Request) -> CommissioningOut:
        return change(SetBms(body), request)

    @app.delete("/api/bms", tags=_TAGS, dependencies=[write], responses=_WRITE,
                summary="No BMS face (when the gateway restarts)")
    async def remove_bms(request: Request) -> CommissioningOut:
        return change(SetBms(None), request)

    @app.put("/api/bms/watchdog", tags=_TAGS, dependencies=[write], responses=_WRITE,
             summary="The BMS watchdog and its fallback limit, as the BMS registers set them; apply at once")
    async def set_bms_watchdog(body: BmsWatchdogIn, request: Request) -> CommissioningOut:
        # The fallback first: it is the one a rule may refuse (above the installation limit); the watchdog's range
        # is the request's schema (the settings' own bound), checked before anything is applied.
        change(SetBmsFallbackLimit(body.fallback_limit_a), request)
        return change(SetBmsWatchdog(body.timeout_s), request)

    @app.put("/api/ocpp", tags=_TAGS, dependencies=[write], responses=_WRITE, openapi_extra={"requestBody": OCPP_BODY},
             summary="The central system (OCPP 1.6J); applies when the gateway restarts")
    async def set_ocpp(body: Annotated[dict[str, Any], Body()], request: Request) -> CommissioningOut:
        return change(SetOcppUpstream(_ocpp(body, settings())), request)

    @app.delete("/api/ocpp", tags=_TAGS, dependencies=[write], responses=_WRITE,
                summary="No central system (when the gateway restarts)")
    async def remove_ocpp(request: Request) -> CommissioningOut:
        return change(SetOcppUpstream(None), request)

    @app.post("/api/restart", tags=_TAGS, dependencies=[write], status_code=202, responses={
        **_WRITE, 409: {"model": Refusal, "description": "this gateway cannot restart itself"},
        422: {"model": Refusal, "description": "the next start would not use the settings (the site file changed)"}},
        summary="Restart the gateway in its process, to apply what waits for a restart; sign in again after it")
    async def restart(request: Request) -> RestartOut:
        if ctx.restart is None:
            raise NotAvailable(tr("web.commissioning.no_restart"))
        ctx.restart(f"web installer@{_client(request)}")
        return RestartOut(restarting=True)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _zero_confirmed(limit: float, confirmed: bool, what: str) -> None:
    """As for the network limit: 0 A stops cars, so it is taken only when the request says it means it."""
    if limit == 0 and not confirmed:
        raise CommandRejected(tr("web.zero_unconfirmed", what=what), field="confirm_zero")


def _circuit(body: CircuitIn) -> CircuitConfig:
    return CircuitConfig.model_validate(body.model_dump(exclude={"confirm_zero"}))


def _ocpp(body: dict[str, Any], settings: SiteSettings) -> OcppConfig:
    """The section as sent, with the key in use kept when it names none; validated by the site file's schema."""
    section = dict(body)
    current = settings.saved.ocpp
    if current is not None and all(section.get(k) is None for k in _SECRETS) \
            and section.get("security_profile") in (1, 2):
        for name in _SECRETS:
            value = getattr(current, name)
            if value is not None:
                section[name] = str(value)
    try:
        return OcppConfig.model_validate(section)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


_TRANSPORT_TAG = re.compile(r"\.transport\.(tcp|rtu|rtu-over-tcp|ocpp)(?=\.|$)")


def request_field(command: Command, field: str | None) -> str | None:
    """The rules name site-file paths ("circuits[2].limit_a", "meter.transport.host"); the page needs the
    request's own names ("limit_a", "transport.host")."""
    if field is None:
        return None
    if isinstance(command, SetInstallationLimit):
        return "limit_a"
    field = _TRANSPORT_TAG.sub(".transport", field)
    if isinstance(command, SetCircuit) and re.fullmatch(r"circuits\[\d+\]", field):
        return "id"
    return re.sub(r"^(chargers|circuits)\[\d+\]\.|^(meter|bms|ocpp)\.", "", field)
