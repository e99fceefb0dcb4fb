"""Which limit is in force: every source combined into one limit per circuit node and phase.

Pure: the supervisor gathers the sources (site file, commissioning settings, the BMS's limit and its watchdog, the
OCPP ChargePointMaxProfile at this instant, the site meter) and this module takes the least of them. The result also
says which source binds at the site, because an operator who sees cars charging slowly first asks "who capped us?".

A silent source never means "unlimited": a BMS whose watchdog expired is replaced by its fallback limit, and a site
meter that stops answering is replaced by its configured safe value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from drivers.model import MeterReading

PerPhase = tuple[float, float, float]

SITE_NODE = "site"
"""The root of every circuit tree: the installation itself."""


class LimitSource(IntEnum):
    """Which source sets the effective limit; numbered as in the BMS register map (IR13), so a number never changes
    meaning and a new source takes the next one."""

    INSTALLATION = 1
    NETWORK = 2
    """The network limit as the installer set it (site file, web page)."""
    BMS_FALLBACK = 3
    OCPP = 4
    SITE_METER = 5
    BMS = 6
    """The network limit as the BMS (or MQTT) last wrote it; see ``LimitSources.bms_a``."""


@dataclass(frozen=True, slots=True)
class MeterTerm:
    """A meter on ``node``: the node's limit minus the load that is not ours."""

    node: str
    node_limit_a: float
    """The breaker the meter protects (per phase)."""
    other_load_a: PerPhase | None
    """Meter current minus our chargers' measured current; None when the meter is silent or its reading invalid."""
    margin_a: float
    fallback_a: float
    """Per-phase limit for our chargers on this node while the meter is silent."""


@dataclass(frozen=True, slots=True)
class LimitSources:
    installation_a: float
    network_a: float
    circuits_a: Mapping[str, float]
    """Sub-circuit limits from the site file."""
    bms_a: float | None = None
    """The network limit the BMS wrote, when it holds one: it stands in for ``network_a`` (the installer's), since
    both set the same quantity and the last writer wins (an installer's change releases the BMS's value)."""
    bms_fallback_a: float | None = None
    """In force while the BMS watchdog has expired (like every source, it only ever lowers the limit)."""
    ocpp_site_a: PerPhase | None = None
    """The ChargePointMaxProfile composite at this instant."""
    meter: MeterTerm | None = None


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    node_limits_a: dict[str, PerPhase]
    site_source: LimitSource


SOURCE_HYSTERESIS_A = 1.0
"""The source named as binding changes only when another is lower by more than this: a meter term hovering within
an ampere of an OCPP cap must not fill the event log with "now set by ..." every few seconds."""


def effective_limits(sources: LimitSources, previous: LimitSource | None = None) -> EffectiveLimits:
    """The least of every source, per node and phase; ties at the site go to the more specific source.

    The limits themselves are always the least; only the *name* of the binding source keeps ``previous`` while
    that source is within ``SOURCE_HYSTERESIS_A`` of the lowest.
    """
    network = (LimitSource.NETWORK, sources.network_a) if sources.bms_a is None else (LimitSource.BMS, sources.bms_a)
    candidates: list[tuple[LimitSource, PerPhase]] = [
        (LimitSource.INSTALLATION, _same(sources.installation_a)),
        (network[0], _same(network[1])),
    ]
    if sources.bms_fallback_a is not None:
        candidates.append((LimitSource.BMS_FALLBACK, _same(sources.bms_fallback_a)))
    if sources.ocpp_site_a is not None:
        candidates.append((LimitSource.OCPP, sources.ocpp_site_a))
    nodes: dict[str, PerPhase] = {node: _same(limit) for node, limit in sources.circuits_a.items()}
    meter = sources.meter
    meter_limit = _meter_limit(meter) if meter is not None else None
    if meter is not None and meter_limit is not None:
        if meter.node == SITE_NODE:
            candidates.append((LimitSource.SITE_METER, meter_limit))
        else:
            nodes[meter.node] = _least(nodes.get(meter.node, meter_limit), meter_limit)
    site = candidates[0][1]
    for _, limit in candidates[1:]:
        site = _least(site, limit)
    binding, lowest = min(candidates, key=lambda item: (min(item[1]), -_specificity(item[0])))
    for source, limit in candidates:
        if source is previous and min(limit) - min(lowest) <= SOURCE_HYSTERESIS_A:
            binding = source
    nodes[SITE_NODE] = site
    return EffectiveLimits(node_limits_a=nodes, site_source=binding)


def _specificity(source: LimitSource) -> int:
    """Ties go to the more specific source; the BMS's network limit is exactly as specific as the installer's (its
    number, 6, only says it was added last to the BMS register map)."""
    return LimitSource.NETWORK.value if source is LimitSource.BMS else source.value


def _meter_limit(meter: MeterTerm) -> PerPhase:
    if meter.other_load_a is None:
        return _same(meter.fallback_a)
    values = [max(0.0, meter.node_limit_a - other - meter.margin_a) for other in meter.other_load_a]
    return (values[0], values[1], values[2])


def other_load_a(reading: MeterReading, ours_a: PerPhase) -> PerPhase | None:
    """What the meter sees that our chargers do not explain; None if any phase is missing or invalid.

    Never negative: when our chargers' readings lag the meter's, "ours" can briefly exceed the meter's figure, and a
    negative load would hand out current that does not exist.
    """
    if reading.invalid or any(value is None for value in reading.current_a):
        return None
    values = [max(0.0, float(meter or 0.0) - ours) for meter, ours in zip(reading.current_a, ours_a, strict=True)]
    return (values[0], values[1], values[2])


def bms_watchdog_deadline(watchdog_s: float, last_heartbeat_s: float) -> float | None:
    """When the BMS fallback comes into force if nothing more is heard; None with the watchdog off (0 s)."""
    return last_heartbeat_s + watchdog_s if watchdog_s > 0 else None


def bms_fallback_in_force(now: float, watchdog_s: float, last_heartbeat_s: float | None) -> bool:
    """The BMS watchdog: with it on, no limit write or heartbeat within ``watchdog_s`` puts the fallback in force,
    from the deadline itself on (so a control loop woken at the deadline acts at once).

    A gateway that has never heard from its BMS since start counts from start (``last_heartbeat_s`` = start time).
    """
    if last_heartbeat_s is None:
        return watchdog_s > 0
    deadline = bms_watchdog_deadline(watchdog_s, last_heartbeat_s)
    return deadline is not None and now >= deadline


class LimitProvider(Protocol):
    """An external source of limits the supervisor asks at every control step (the OCPP face's charging profiles,
    ChangeAvailability and authorisation). Times are wall-clock UNIX seconds: profiles are set in calendar time."""

    def site_limit_a(self, wall: float) -> PerPhase | None:
        """The site node's limit now, per phase; None: no constraint from this source."""
        ...

    def unit_caps_a(self, wall: float) -> Mapping[str, float]:
        """Caps per charger id now; a charger not named is not capped by this source. 0 keeps a unit at 0 A."""
        ...

    def next_change(self, wall: float) -> float | None:
        """The wall time at which the answers above next change by themselves (a schedule period starts), or None."""
        ...

    def on_change(self, wake: Callable[[], None]) -> None:
        """Register ``wake``; the provider calls it whenever its answers change for another reason (a new profile)."""
        ...


def external_limits(providers: Iterable[LimitProvider], wall: float,
                    unit_caps_a: Mapping[str, float]) -> tuple[PerPhase | None, dict[str, float]]:
    """The least site limit of every provider, and ``unit_caps_a`` merged with theirs by taking the least."""
    site: PerPhase | None = None
    caps = dict(unit_caps_a)
    for provider in providers:
        limit = provider.site_limit_a(wall)
        if limit is not None:
            site = limit if site is None else _least(site, limit)
        for unit, cap in provider.unit_caps_a(wall).items():
            caps[unit] = min(cap, caps.get(unit, cap))
    return site, caps


def _same(value: float) -> PerPhase:
    return (value, value, value)


def _least(a: PerPhase, b: PerPhase) -> PerPhase:
    return (min(a[0], b[0]), min(a[1], b[1]), min(a[2], b[2]))
