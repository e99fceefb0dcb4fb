"""What one poll costs on the wire, computed from a profile's read plan: transactions, bytes, RS-485 time.

Used for the sizing figures in docs/drivers.md (how many chargers fit on one line at a given poll period) and
checked against the bytes that really cross a serial line in tests. Run it:

    python -m drivers.wire_time heidelberg-energy-control powershare-sim abb-terra-ac --units 6 --baud 19200 \\
        --parity E

Frame sizes (Modbus application protocol and serial line specs): an RTU frame is unit id + PDU + CRC16; a TCP
frame is the 7-byte MBAP header + PDU. Read request PDU: FC + address + count (5 bytes); register read response:
FC + byte count + 2 per register; bit read response: FC + byte count + 1 per 8 bits.

Two times per poll cycle on an RS-485 line:

* the **floor**: every byte at ``bits_per_char / baud`` plus the 3.5-character silence (t3.5) before each request
  and before each response, and nothing else: what no master can beat;
* the **bus** time: the same frames with the gaps ``drivers.bus.ModbusBus`` actually keeps, i.e. before each request
  the larger of t3.5 and the profile's ``inter_frame_gap_ms`` quirk. Device turnaround beyond t3.5 is not included
  (it is the device's, typically 5-50 ms per transaction, and is added on top of both).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.profile import ProfileMeta, ProfileRegistry, ReadBlock
from drivers.transport import SerialLine

RTU_OVERHEAD = 3  # unit id + CRC16
MBAP_HEADER = 7
READ_REQUEST_PDU = 5  # FC, address (2), count (2)
WRITE_SINGLE_PDU = 5  # FC, address (2), value (2); the response echoes it


@dataclass(frozen=True, slots=True)
class Transaction:
    """One request/response pair, by PDU size."""

    request_pdu: int
    response_pdu: int

    @property
    def rtu_bytes(self) -> int:
        return self.request_pdu + self.response_pdu + 2 * RTU_OVERHEAD

    @property
    def tcp_bytes(self) -> int:
        return self.request_pdu + self.response_pdu + 2 * MBAP_HEADER


def read_transaction(block: ReadBlock) -> Transaction:
    data = (block.count + 7) // 8 if block.table.is_bit else 2 * block.count
    return Transaction(READ_REQUEST_PDU, 2 + data)


def poll_transactions(profile: ProfileMeta) -> list[Transaction]:
    """The transactions of one regular poll (one per block of the read plan)."""
    return [read_transaction(block) for block in profile.read_plan()]


def write_transaction(profile: ProfileMeta, name: str) -> Transaction:
    """Writing point ``name`` with the function code its profile names (FC5/FC6 echo; FC15/FC16 confirm)."""
    point = profile.point(name)
    if point.write_fc in (5, 6, None):
        return Transaction(WRITE_SINGLE_PDU, WRITE_SINGLE_PDU)
    data = 1 if point.write_fc == 15 else 2 * point.register_count
    return Transaction(WRITE_SINGLE_PDU + 1 + data, WRITE_SINGLE_PDU)


@dataclass(frozen=True, slots=True)
class CycleTime:
    units: int
    transactions: int
    rtu_bytes: int
    floor_s: float
    bus_s: float


def poll_cycle(profile: ProfileMeta, units: int, line: SerialLine) -> CycleTime:
    """One poll of ``units`` devices of ``profile`` on ``line``, back to back."""
    transactions = poll_transactions(profile) * units
    char_s = line.char_time_s
    t35 = line.frame_gap_s
    request_gap = max(t35, profile.quirks.inter_frame_gap_ms / 1000.0)
    frames_s = sum(t.rtu_bytes for t in transactions) * char_s
    return CycleTime(
        units=units,
        transactions=len(transactions),
        rtu_bytes=sum(t.rtu_bytes for t in transactions),
        floor_s=frames_s + 2 * t35 * len(transactions),
        bus_s=frames_s + (t35 + request_gap) * len(transactions),
    )


def report(names: Sequence[str], units: int, line: SerialLine, registry: ProfileRegistry) -> str:
    rows = ["Per device, one poll (read plan), and one setpoint write:",
            f"{'profile':<28} {'trans.':>6} {'regs':>5} {'RTU bytes':>9} {'TCP bytes':>9} {'setpoint RTU/TCP':>16}"]
    for name in names:
        profile = registry.get(name)
        plan = profile.read_plan()
        polls = poll_transactions(profile)
        write = write_transaction(profile, "setpoint") if profile.has("setpoint") else None
        written = f"{write.rtu_bytes}/{write.tcp_bytes}" if write else "-"
        rows.append(f"{name:<28} {len(polls):>6} {sum(b.count for b in plan):>5} "
                    f"{sum(t.rtu_bytes for t in polls):>9} {sum(t.tcp_bytes for t in polls):>9} {written:>16}")
    rows += ["", f"One poll cycle of {units} units on {line.describe()} ({line.bits_per_char} bits/char, "
                 f"t3.5 = {line.frame_gap_s * 1000:.2f} ms):",
             f"{'profile':<28} {'trans.':>6} {'bytes':>6} {'floor ms':>9} {'bus ms':>8} {'bus/floor':>9}"]
    for name in names:
        cycle = poll_cycle(registry.get(name), units, line)
        rows.append(f"{name:<28} {cycle.transactions:>6} {cycle.rtu_bytes:>6} {cycle.floor_s * 1000:>9.1f} "
                    f"{cycle.bus_s * 1000:>8.1f} {cycle.bus_s / cycle.floor_s:>9.2f}")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.wire_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+")
    parser.add_argument("--units", type=int, default=6)
    parser.add_argument("--baud", type=int, default=19200)
    parser.add_argument("--parity", choices=("N", "E", "O"), default="E")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1)
    args = parser.parse_args(argv)
    registry = ProfileRegistry.shipped()
    unknown = [n for n in args.profiles if n not in registry]
    if unknown:
        print(f"unknown profile(s): {', '.join(unknown)}; known: {', '.join(registry.names())}", file=sys.stderr)
        return 2
    line = SerialLine("(computed)", args.baud, args.parity, args.stopbits)
    print(report(args.profiles, args.units, line, registry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
