"""Where a Modbus device is reached, as plain data the drivers library understands.

The gateway's site file has its own (pydantic) transport models; it converts them to these so that ``drivers``
never imports ``gateway``. An endpoint names a *line*: every unit id behind one TCP endpoint or on one RS-485 line
shares it, and ``drivers.bus.BusPool`` hands out exactly one bus per endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MODBUS_CHARS_PER_FRAME_GAP = 3.5
FIXED_FRAME_GAP_S = 0.00175
"""Above 19200 baud the Modbus serial line spec fixes the inter-frame gap at 1.75 ms instead of 3.5 characters."""


@dataclass(frozen=True, slots=True)
class TcpEndpoint:
    """A Modbus TCP device, or (``rtu_framing``) a serial device server that tunnels RTU frames over TCP."""

    host: str
    port: int = 502
    rtu_framing: bool = False

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("TCP endpoint needs a host")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"TCP port {self.port} outside 1..65535")

    @property
    def key(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def describe(self) -> str:
        return f"{'rtu-over-tcp' if self.rtu_framing else 'tcp'} {self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SerialLine:
    """An RS-485 line: one serial device, one set of line settings, many unit ids."""

    device: str
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8

    def __post_init__(self) -> None:
        if not self.device:
            raise ValueError("serial line needs a device path")
        if not 300 <= self.baudrate <= 921_600:
            raise ValueError(f"baud rate {self.baudrate} outside 300..921600")

    @property
    def key(self) -> str:
        return f"serial://{self.device}"

    def describe(self) -> str:
        return f"rtu {self.device} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"

    @property
    def bits_per_char(self) -> int:
        """Start bit + data bits + parity bit (if any) + stop bits: what one byte costs on the wire."""
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits

    @property
    def char_time_s(self) -> float:
        return self.bits_per_char / self.baudrate

    @property
    def frame_gap_s(self) -> float:
        """The silent interval that ends an RTU frame (t3.5), per the Modbus serial line spec."""
        if self.baudrate > 19200:
            return FIXED_FRAME_GAP_S
        return MODBUS_CHARS_PER_FRAME_GAP * self.char_time_s


Endpoint = TcpEndpoint | SerialLine


def frames_have_no_transaction_id(endpoint: Endpoint) -> bool:
    """True where a late answer cannot be told from the next one by the frame itself (RTU framing)."""
    return isinstance(endpoint, SerialLine) or endpoint.rtu_framing


@dataclass(frozen=True, slots=True)
class BusOptions:
    """How a bus behaves on failure; the defaults suit real chargers on RS-485 and Ethernet."""

    connect_timeout_s: float = 2.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    """Reconnect attempts back off exponentially up to this; a caller in between gets ``ConnectionLost`` at once."""
    late_answer_guard_s: float = 0.1
    """RTU only: after a timeout or a mismatched answer the line stays silent this long, so that a late answer
    arrives while no request is outstanding (and is discarded) instead of being taken for the next request's."""
    min_frame_gap_s: float = 0.0
    """Extra silence between frames on the whole line, on top of the serial 3.5-character gap."""
    timeouts_before_reconnect: int = 3
    """TCP: after this many consecutive timeouts on every unit of an endpoint, the socket is presumed half-open
    and is closed and reopened. Timeouts of one unit among answering ones never close the shared socket."""

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.backoff_initial_s <= 0:
            raise ValueError("connect timeout and initial backoff must be > 0")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        if self.late_answer_guard_s < 0 or self.min_frame_gap_s < 0:
            raise ValueError("guard and gap must be >= 0")
        if self.timeouts_before_reconnect < 1:
            raise ValueError("timeouts_before_reconnect must be >= 1")
