"""``/metrics``: the gateway in Prometheus's text format, built from the read model at each scrape.

Nothing here runs between scrapes: the collector reads the latest snapshot, the supervisor's running counts
(``gateway.runtime.stats``) and whatever extra sources the app has (the OCPP client's outbox), and yields metric
families. Each web server has its own registry, so two gateways in one process (tests) never mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.runtime.commands import GatewayControl
from gateway.runtime.read_model import Availability
from gateway.runtime.stats import STEP_BUCKETS_S, RuntimeStats
from gateway.site.config import ChargerConfig, OcppTransport

PHASES = ("L1", "L2", "L3")
MetricsSource = Callable[[], Iterable[Metric]]
"""More families from a face (the OCPP client's outbox and errors)."""


class GatewayCollector(Collector):
    def __init__(self, control: GatewayControl, followers: Callable[[], Sequence[ChargerConfig]],
                 sources: Sequence[MetricsSource] = ()) -> None:
        self._control = control
        self._followers = followers
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        s = self._control.status()
        info = GaugeMetricFamily("powershare_info", "The gateway's version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield _gauge("powershare_sharing_enabled", "1 while power sharing is enabled", 1 if s.enabled else 0)
        yield _gauge("powershare_installation_limit_amperes", "Installation limit per phase", s.installation_limit_a)
        yield _gauge("powershare_network_limit_amperes", "Network limit per phase (setting)", s.network_limit_a)
        for name, text, values in (
                ("powershare_site_limit_amperes", "Limit in force at the site per phase, after every source",
                 s.effective_limit_a),
                ("powershare_site_measured_amperes", "Measured current of the chargers per site phase", s.measured_a),
                ("powershare_site_booked_amperes", "Sum of the chargers' booked setpoints per site phase",
                 s.allocated_a)):
            family = GaugeMetricFamily(name, text, labels=["phase"])
            for phase, value in zip(PHASES, values, strict=True):
                family.add_metric([phase], value)
            yield family
        yield _gauge("powershare_site_power_watts", "Active power of the chargers", s.power_w)
        yield CounterMetricFamily("powershare_invariant_violations",
                                  "Control steps whose setpoints broke a limit the controller must keep",
                                  value=s.invariant_violations)
        yield from self._units()
        stats = getattr(self._control, "stats", None)
        if isinstance(stats, RuntimeStats):
            yield from self._stats(stats)
        for source in self._sources:
            yield from source()

    def _units(self) -> Iterator[Metric]:
        s = self._control.status()
        setpoint = GaugeMetricFamily("powershare_unit_setpoint_amperes", "The setpoint the charger acknowledged",
                                     labels=["unit"])
        current = GaugeMetricFamily("powershare_unit_current_amperes", "Measured current per site phase",
                                    labels=["unit", "phase"])
        power = GaugeMetricFamily("powershare_unit_power_watts", "Active power", labels=["unit"])
        session = GaugeMetricFamily("powershare_unit_session_energy_watthours",
                                    "Energy of the current (or last) session", labels=["unit"])
        energy = CounterMetricFamily("powershare_unit_energy_watthours",
                                     "The charger's lifetime energy meter (absent if it has none)", labels=["unit"])
        link = GaugeMetricFamily("powershare_unit_link_quality_ratio",
                                 "Share of recent exchanges with the charger that succeeded", labels=["unit"])
        availability = GaugeMetricFamily("powershare_unit_availability",
                                         "1 for the charger's availability now, 0 for the others",
                                         labels=["unit", "availability"])
        for u in s.units:
            setpoint.add_metric([u.id], u.setpoint_a)
            for phase, value in zip(PHASES, u.current_a, strict=True):
                current.add_metric([u.id, phase], value)
            power.add_metric([u.id], u.power_w)
            session.add_metric([u.id], u.session_energy_wh)
            if u.energy_wh is not None:
                energy.add_metric([u.id], u.energy_wh)
            link.add_metric([u.id], u.link.success_rate)
            for state in Availability:
                availability.add_metric([u.id, state.name.lower()], 1 if u.availability is state else 0)
        yield from (setpoint, current, power, session, energy, link, availability)

    def _stats(self, stats: RuntimeStats) -> Iterator[Metric]:
        steps = stats.steps
        cumulative = list(accumulate(steps.counts))
        buckets = [(f"{bound:g}", count) for bound, count in zip(STEP_BUCKETS_S, cumulative, strict=False)]
        buckets.append(("+Inf", cumulative[-1]))
        yield HistogramMetricFamily("powershare_control_step_duration_seconds",
                                    "Duration of a control step (allocation and setpoint writes)", buckets=buckets,
                                    sum_value=steps.sum_s)
        kinds = {c.id: "ocpp" if isinstance(c.transport, OcppTransport) else "modbus" for c in self._followers()}
        errors = CounterMetricFamily("powershare_follower_errors",
                                     "Polls of a follower that got no valid answer, by transport",
                                     labels=["unit", "transport"])
        for cid, count in sorted(stats.failed_exchanges.items()):
            errors.add_metric([cid, kinds.get(cid, "removed")], count)
        yield errors


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def registry_for(collector: GatewayCollector) -> Callable[[], bytes]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return lambda: generate_latest(registry)


def ocpp_client_metrics(outbox_depth: int, errors: dict[str, int]) -> tuple[Metric, Metric]:
    """The OCPP client's outbox depth and error counts as families."""
    depth = GaugeMetricFamily("powershare_ocpp_outbox_messages",
                              "Messages queued for the central system (sent in order when connected)",
                              value=outbox_depth)
    counts = CounterMetricFamily("powershare_ocpp_client_errors",
                                 "Failed connections to the central system and CALLERRORs it answered",
                                 labels=["kind"])
    for kind, count in sorted(errors.items()):
        counts.add_metric([kind], count)
    return depth, counts
