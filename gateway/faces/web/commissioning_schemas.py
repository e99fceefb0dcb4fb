"""The JSON of the commissioning API (``gateway.faces.web.commissioning``): what the installer sets, read and written.

The request bodies are the site file's own models where a section is written whole (``MeterConfig``,
``BmsConfig``, ``CircuitConfig``), so a value the site file refuses is refused here by the same schema; whether it
fits the rest of the site is the settings' call (``GatewayControl.apply``). Reads come from the settings: ``saved``
(what the gateway starts with next time) and what is in force now differ only where a restart is needed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from drivers.profile import MeterProfile
from gateway.core.limits import SITE_NODE
from gateway.faces.web.schemas import Body
from gateway.runtime.bms_limit import MAX_WATCHDOG_S
from gateway.runtime.read_model import SiteStatus
from gateway.site.config import BmsConfig, CircuitConfig, MeterConfig, OcppTransport, SiteConfig
from gateway.site.settings import KEY_FILE, SiteSettings

Section = Literal["meter", "bms", "ocpp"]
SECTIONS: tuple[Section, ...] = ("meter", "bms", "ocpp")
"""``gateway.site.settings.RESTART_KEYS``, typed for the API."""


# -- requests ----------------------------------------------------------------------------------------------------
class CircuitIn(CircuitConfig):
    """A ``circuits[]`` entry of the site file; 0 A only with ``confirm_zero`` (it stops every car on it)."""

    confirm_zero: bool = Field(default=False, description="must be true for a limit of 0 A")


class WiringIn(Body):
    breaker_limit_a: float | None = Field(strict=True, allow_inf_nan=False,
                                          description="the unit's own breaker, per phase; null: its nameplate")
    phases: Literal[1, 3] = Field(description="phases wired to the charger")
    phase_rotation: str = Field(max_length=6, description='which site phase its L1, L2, L3 land on: "L1L2L3", '
                                                          '"L2L3L1", "L3L1L2" (...); one phase for a 1-phase unit')
    circuit: str = Field(max_length=32, description=f'the circuit it hangs from: "{SITE_NODE}" or a circuit id')


class BmsWatchdogIn(Body):
    timeout_s: float = Field(strict=True, allow_inf_nan=False, ge=0, le=MAX_WATCHDOG_S,
                             description="the BMS must write within this many seconds (0: no watchdog)")
    fallback_limit_a: float = Field(strict=True, allow_inf_nan=False,
                                    description="the network limit while the BMS is silent, per phase")


OCPP_BODY = {"description": "an `ocpp:` section of the site file (docs/configuration.md#ocpp). A `password` is the "
                            "AuthorizationKey: it is kept in a file of the state directory, readable by the gateway "
                            "only. Without password, password_file and password_env, the key in use is kept.",
             "content": {"application/json": {"schema": {"type": "object"}}}}


# -- responses ---------------------------------------------------------------------------------------------------
class CircuitOut(BaseModel):
    id: str
    parent: str
    limit_a: float
    units: int = Field(description="units hanging directly from it")


class WiringOut(BaseModel):
    id: str
    device: str = Field(description="its profile, or OCPP and its charge point")
    nameplate_a: float
    breaker_limit_a: float | None = Field(description="null: its nameplate")
    phases: int
    phase_rotation: str
    circuit: str
    added_here: bool = Field(description="added at run time (in the state directory, not in the site file)")


class OcppOut(BaseModel):
    settings: dict[str, Any] = Field(description="the `ocpp:` section, without the AuthorizationKey")
    key: Literal["none", "here", "file", "env", "site file"] = Field(
        description="where the AuthorizationKey comes from: none, set here (kept in the state directory), a file, "
                    "an environment variable, or the site file itself")


class CommissioningOut(BaseModel):
    instance: str = Field(description="changes at every start: a page sees that a restart happened")
    supply_phases: int
    installation_limit_a: float
    network_limit_a: float
    circuits: list[CircuitOut]
    units: list[WiringOut]
    meter: MeterConfig | None
    bms: BmsConfig | None
    bms_watchdog_s: float
    bms_fallback_limit_a: float
    ocpp: OcppOut | None
    restart_needed: list[Section] = Field(description="sections saved that apply when the gateway restarts")
    restart_available: bool = Field(description="whether this gateway can restart itself (POST /api/restart)")


class MeterProfileOut(BaseModel):
    name: str
    manufacturer: str
    models: list[str]
    transports: list[str]
    default_unit_id: int


class RestartOut(BaseModel):
    restarting: bool


def commissioning_out(settings: SiteSettings, status: SiteStatus, instance: str,
                      restart_available: bool) -> CommissioningOut:
    """The settings as the gateway starts with them; the BMS watchdog as the read model has it (the BMS's limit
    source holds it)."""
    saved: SiteConfig = settings.saved
    added = set(settings.added_here)
    counts: dict[str, int] = {}
    for charger in saved.chargers:
        counts[charger.circuit] = counts.get(charger.circuit, 0) + 1
    units = []
    for charger in saved.chargers:
        transport = charger.transport
        device = f"OCPP {transport.charge_point_id}" if isinstance(transport, OcppTransport) else str(charger.profile)
        units.append(WiringOut(id=charger.id, device=device, nameplate_a=settings.nameplate_a(charger),
                               breaker_limit_a=charger.breaker_limit_a, phases=charger.phases,
                               phase_rotation=charger.phase_rotation, circuit=charger.circuit,
                               added_here=charger.id in added))
    return CommissioningOut(
        instance=instance, supply_phases=saved.supply.phases, installation_limit_a=saved.installation_limit_a,
        network_limit_a=saved.network_limit_a,
        circuits=[CircuitOut(id=c.id, parent=c.parent, limit_a=c.limit_a, units=counts.get(c.id, 0))
                  for c in saved.circuits],
        units=units, meter=saved.meter, bms=saved.bms, bms_watchdog_s=status.bms_watchdog_s,
        bms_fallback_limit_a=status.bms_fallback_limit_a, ocpp=ocpp_out(saved),
        restart_needed=[k for k in SECTIONS if k in settings.restart_needed],
        restart_available=restart_available)


def ocpp_out(site: SiteConfig) -> OcppOut | None:
    ocpp = site.ocpp
    if ocpp is None:
        return None
    settings = ocpp.model_dump(mode="json", exclude={"password"})
    key: Literal["none", "here", "file", "env", "site file"] = "none"
    if ocpp.password is not None:
        key = "site file"
    elif ocpp.password_file is not None:
        key = "here" if ocpp.password_file.name == KEY_FILE else "file"
    elif ocpp.password_env is not None:
        key = "env"
    return OcppOut(settings=settings, key=key)


def meter_profile_out(profile: MeterProfile) -> MeterProfileOut:
    return MeterProfileOut(name=profile.name, manufacturer=profile.manufacturer, models=list(profile.models),
                           transports=[t.value for t in profile.transports], default_unit_id=profile.default_unit_id)
