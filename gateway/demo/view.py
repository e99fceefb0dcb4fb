"""How the demo looks: a live table in a terminal, one compact line per second anywhere else (CI, pipes).

Both show the gateway's own view (its published ``SiteStatus`` and event log) next to what the car park knows
(which car is in which bay, its state of charge) and the demo's measurement of the physical currents. The table's
words are in the command line's language; the event texts (the gateway's log) and the compact lines (read by CI and
scripts) stay English.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from drivers.model import Iec61851State
from gateway.demo.site import Bay, Frame
from gateway.i18n.catalog import DEFAULT_LANGUAGE
from gateway.i18n.text import Say, fixed, msgid, speaker
from gateway.runtime.read_model import Availability, Event, UnitStatus

EVENTS_SHOWN = 8
STATE_TEXT = {Iec61851State.A: (msgid("demo.state.no_car"), "dim"),
              Iec61851State.B: (msgid("demo.state.connected"), "yellow"),
              Iec61851State.C: (msgid("demo.state.charging"), "green"),
              Iec61851State.D: (msgid("demo.state.charging"), "green"),
              Iec61851State.E: (msgid("demo.state.error"), "red"), Iec61851State.F: (msgid("demo.state.fault"), "red")}
COLUMNS = ((msgid("demo.column.unit"), "left"), (msgid("demo.column.state"), "left"),
           (msgid("demo.column.availability"), "left"), (msgid("demo.column.setpoint"), "right"),
           (msgid("demo.column.phases"), "right"), (msgid("demo.column.car"), "left"),
           (msgid("demo.column.session"), "right"), (msgid("demo.column.link"), "right"))


def _phases(values: tuple[float, float, float], lang: str) -> str:
    return " ".join(f"{fixed(v, 1, lang):>5}" for v in values)


def _state(unit: UnitStatus, say: Say) -> Text:
    if unit.state is None:
        return Text("?", style="red")
    label, style = STATE_TEXT[unit.state]
    if unit.waiting:
        label, style = msgid("demo.state.waiting"), "magenta"
    return Text(say(label), style=style)


def _availability(unit: UnitStatus, say: Say) -> Text:
    if unit.availability is Availability.AVAILABLE:
        return Text(say("demo.available"), style="green")
    if unit.availability is Availability.DISABLED:
        return Text(say("demo.disabled"), style="yellow")
    return Text(say("demo.unavailable", reason=str(unit.unavailable_reason)), style="bold red")


def _car(bay: Bay) -> str:
    vehicle = bay.vehicle
    if bay.visit is None or vehicle is None:
        return ""
    return f"{bay.visit.car.name}: {bay.visit.model.label}, {vehicle.soc:.0%}"


def _link(unit: UnitStatus) -> str:
    latency = f" {unit.link.latency_ms:.0f} ms" if unit.link.latency_ms is not None else ""
    return f"{unit.link.success_rate:.0%}{latency}"


def _clock(event: Event) -> str:
    return time.strftime("%H:%M:%S", time.localtime(event.time_s))


def _text(event: Event) -> str:
    return f"{event.text} ({event.origin})" if event.origin else event.text


def _bar(value: float, limit: float, width: int = 24) -> Text:
    filled = 0 if limit <= 0 else min(width, round(width * value / limit))
    style = "red" if value > limit + 1e-6 else "green"
    return Text("█" * filled, style=style) + Text("·" * (width - filled), style="dim")


def render(frame: Frame, lang: str = DEFAULT_LANGUAGE) -> RenderableType:
    say = speaker(lang)
    status = frame.status
    units = Table(title=say("demo.title", seconds=round(frame.elapsed_s), chargers=len(frame.bays)),
                  title_justify="left", expand=False)
    for name, justify in COLUMNS:
        units.add_column(say(name), justify=justify)  # type: ignore[arg-type]
    for unit, bay in zip(status.units, frame.bays, strict=False):
        units.add_row(f"{unit.id} ({bay.phases}~ {_rotation(bay)})", _state(unit, say),
                      _availability(unit, say), fixed(unit.setpoint_a, 1, lang), _phases(unit.current_a, lang),
                      _car(bay), fixed(unit.session_energy_wh / 1000, 2, lang), _link(unit))

    totals = Table.grid(padding=(0, 2))
    source = status.limit_source.name.lower().replace("_", " ")
    for phase in range(3):
        measured, limit = status.measured_a[phase], status.effective_limit_a[phase]
        totals.add_row(f"L{phase + 1}", _bar(measured, limit),
                       say("demo.measured", measured=f"{fixed(measured, 1, lang):>5}", limit=limit),
                       say("demo.booked", booked=f"{fixed(status.allocated_a[phase], 1, lang):>5}"),
                       say("demo.drawn", drawn=f"{fixed(frame.drawn_a[phase], 1, lang):>5}"))
    account = frame.account
    verdict = Text(say("demo.over_limit", amp_seconds=fixed(account.over_amp_seconds, 1, lang)),
                   style="bold green" if account.over_amp_seconds == 0 else "bold red")
    header = Text.assemble((say("demo.limit", limit=_limit(status.effective_limit_a)) + " ", "bold"),
                           (source, "bold cyan"), "   ", verdict,
                           "   " + say("demo.peak", peak="/".join(fixed(p, 1, lang) for p in account.peak_a)))

    events = Table.grid(padding=(0, 1))
    for event in frame.events[-EVENTS_SHOWN:]:
        style = "red" if "unavailable" in event.kind or "silent" in event.kind else ""
        events.add_row(_clock(event), Text(_text(event), style=style))

    footer = say("demo.stop")
    if frame.bms_address is not None:
        host, port = frame.bms_address
        footer = say("demo.bms", address=f"{host}:{port}",
                     command=f"mbpoll -m tcp -p {port} -a 1 -t 4 -0 -r 0 {host} 300") + "  " + footer
    return Group(units, header, totals, Text(say("demo.events"), style="bold"), events, Text(footer, style="dim"))


def _limit(limits: tuple[float, float, float]) -> str:
    return f"{limits[0]:g}" if len(set(limits)) == 1 else "/".join(f"{v:g}" for v in limits)


def _rotation(bay: Bay) -> str:
    return "".join(f"L{p + 1}" for p in bay.rotation)


class LinePrinter:
    """One compact line per call, and a line for each event not printed yet (logs, CI)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._printed_until = 0.0

    def __call__(self, frame: Frame) -> None:
        for event in frame.events:  # oldest first
            if event.time_s > self._printed_until:
                self._printed_until = event.time_s
                self._write(f"  {_clock(event)} {_text(event)}")
        status = frame.status
        unavailable = [u.id for u in status.units if u.availability is Availability.UNAVAILABLE]
        charging = sum(1 for u in status.units if u.state is not None and u.state.charging)
        source = status.limit_source.name.lower().replace("_", " ")
        drawn = "/".join(f"{v:.1f}" for v in frame.drawn_a)
        self._write(f"{frame.elapsed_s:5.0f} s  limit {_limit(status.effective_limit_a)} A ({source})  "
                    f"drawn {drawn} A  charging {charging}/{len(status.units)}  unavailable "
                    f"{','.join(unavailable) or '-'}  over-limit {frame.account.over_amp_seconds:.1f} A·s")
