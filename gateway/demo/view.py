"""How the demo looks: a live table in a terminal, one compact line per second anywhere else (CI, pipes).

Both show the gateway's own view (its published ``SiteStatus`` and event log) next to what the car park knows
(which car is in which bay, its state of charge) and the demo's measurement of the physical currents.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from drivers.model import Iec61851State
from gateway.demo.site import Bay, Frame
from gateway.runtime.read_model import Availability, Event, UnitStatus

EVENTS_SHOWN = 8
STATE_TEXT = {Iec61851State.A: ("no car", "dim"), Iec61851State.B: ("connected", "yellow"),
              Iec61851State.C: ("charging", "green"), Iec61851State.D: ("charging", "green"),
              Iec61851State.E: ("error", "red"), Iec61851State.F: ("fault", "red")}


def _phases(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:5.1f}" for v in values)


def _state(unit: UnitStatus) -> Text:
    if unit.state is None:
        return Text("?", style="red")
    label, style = STATE_TEXT[unit.state]
    if unit.waiting:
        label, style = "waiting", "magenta"
    return Text(label, style=style)


def _availability(unit: UnitStatus) -> Text:
    if unit.availability is Availability.AVAILABLE:
        return Text("available", style="green")
    if unit.availability is Availability.DISABLED:
        return Text("disabled", style="yellow")
    return Text(f"UNAVAILABLE ({unit.unavailable_reason})", style="bold red")


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


def render(frame: Frame) -> RenderableType:
    status = frame.status
    units = Table(title=f"powershare demo — {frame.elapsed_s:.0f} s — the real gateway leading "
                        f"{len(frame.bays)} simulated chargers", title_justify="left", expand=False)
    for name, justify in (("unit", "left"), ("state", "left"), ("availability", "left"),
                          ("setpoint A", "right"), ("L1    L2    L3 A", "right"), ("car", "left"),
                          ("session kWh", "right"), ("link", "right")):
        units.add_column(name, justify=justify)  # type: ignore[arg-type]
    for unit, bay in zip(status.units, frame.bays, strict=False):
        units.add_row(f"{unit.id} ({bay.phases}~ {_rotation(bay)})", _state(unit),
                      _availability(unit), f"{unit.setpoint_a:.1f}", _phases(unit.current_a), _car(bay),
                      f"{unit.session_energy_wh / 1000:.2f}", _link(unit))

    totals = Table.grid(padding=(0, 2))
    source = status.limit_source.name.lower().replace("_", " ")
    for phase in range(3):
        measured, limit = status.measured_a[phase], status.effective_limit_a[phase]
        totals.add_row(f"L{phase + 1}", _bar(measured, limit), f"{measured:5.1f} A of {limit:g} A",
                       f"booked {status.allocated_a[phase]:5.1f} A",
                       f"cars physically draw {frame.drawn_a[phase]:5.1f} A")
    account = frame.account
    verdict = Text(f"over the limit: {account.over_amp_seconds:.1f} A·s", style="bold green"
                   if account.over_amp_seconds == 0 else "bold red")
    header = Text.assemble(("network ", "bold"), f"limit {_limit(status.effective_limit_a)} A per phase, set by ",
                           (source, "bold cyan"), "   ", verdict,
                           f"   peak {'/'.join(f'{p:.1f}' for p in account.peak_a)} A")

    events = Table.grid(padding=(0, 1))
    for event in frame.events[-EVENTS_SHOWN:]:
        style = "red" if "unavailable" in event.kind or "silent" in event.kind else ""
        events.add_row(_clock(event), Text(_text(event), style=style))

    footer = "Ctrl-C stops."
    if frame.bms_address is not None:
        host, port = frame.bms_address
        footer = (f"BMS face on {host}:{port}: try  mbpoll -m tcp -p {port} -a 1 -t 4 -0 -r 0 {host} 300  "
                  f"(network limit 30.0 A).  " + footer)
    return Group(units, header, totals, Text("recent events", style="bold"), events, Text(footer, style="dim"))


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
