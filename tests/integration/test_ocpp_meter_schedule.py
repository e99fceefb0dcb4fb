"""Sampled MeterValues in virtual time: five transactions at the default MeterValueSampleInterval of 60 s."""

from __future__ import annotations

from pathlib import Path

from support.ocpp_station import T0, charging, config, snapshot, station

from gateway.faces.ocpp.outbox import METER_VALUES
from gateway.runtime.read_model import Availability

TICK_S = 0.5


def run(tmp_path: Path, available: object, seconds: float = 150) -> dict[int, int]:
    """Observe five charging connectors every tick; ``available(t)`` says whether their readings are fresh."""
    site = config(5, limit=100)
    st = station(tmp_path, site)
    assert st.config.integer("MeterValueSampleInterval") == 60  # the default
    t = 0.0
    while t <= seconds:
        state = Availability.AVAILABLE if available(t) else Availability.UNAVAILABLE  # type: ignore[operator]
        st.observe(snapshot(T0 + t, *(charging(n, availability=state) for n in range(1, 6))))
        t += TICK_S
    counts = dict.fromkeys(range(1, 6), 0)
    for message in st.outbox.pending():
        if message.action == METER_VALUES and message.payload["meterValue"][0]["sampledValue"][0]["context"] \
                == "Sample.Periodic":
            counts[int(message.payload["connectorId"])] += 1
    return counts


def test_five_transactions_send_a_sample_every_interval(tmp_path: Path) -> None:
    assert run(tmp_path, lambda t: True) == dict.fromkeys(range(1, 6), 2)  # at 60 s and 120 s


def test_a_charger_whose_readings_arrive_between_the_due_instants_still_reports(tmp_path: Path) -> None:
    """Issue 12: none of five transactions sent a MeterValues in 150 s. A charger that is only briefly fresh (an
    OCPP follower that reports every ~55 s) was never fresh at the due instant, and each missed sample was
    skipped to the next interval instead of being taken when a reading came."""
    def fresh(t: float) -> bool:
        return t % 55 < 2
    counts = run(tmp_path, fresh)
    assert all(count >= 1 for count in counts.values()), counts  # the first with the reading at 110 s
