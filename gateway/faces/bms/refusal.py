"""How the BMS face says no: a Modbus exception code and the reason it logs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExceptionCode(IntEnum):
    """The Modbus exception codes the face answers with."""

    ILLEGAL_FUNCTION = 1
    ILLEGAL_ADDRESS = 2
    ILLEGAL_VALUE = 3
    DEVICE_FAILURE = 4


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ExceptionCode
    reason: str
