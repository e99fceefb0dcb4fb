"""Reading OCPP 1.6 JSON payloads field by field, with the 1.6 CALLERROR code for each kind of mistake.

The ``ocpp`` library's own schema check answers with 2.0.1 error codes (``FormatViolation``) and lets numbers
arrive as ``decimal.Decimal``; handlers that skip it and read through here answer with the 1.6 codes
(errata §3.38: a bad enum value is ``PropertyConstraintViolation``) and get plain floats. Keys are accepted in
the wire's camelCase and in the snake_case the library hands to handlers, so the same parser serves both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from drivers.ocpp.meter_values import parse_time
from gateway.errors import InputError

E = TypeVar("E", bound=StrEnum)
_TENTH = Decimal("0.1")


class CallErrorCode(StrEnum):
    """OCPP-J 1.6 error codes, spelt as in the 1.6 specification (including its typos)."""

    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


class PayloadError(InputError):
    """The payload breaks the message format; it is answered with a CALLERROR carrying ``code``."""

    def __init__(self, code: CallErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def camel_key(key: str) -> str:
    """``charging_profile_id`` -> ``chargingProfileId``; camelCase keys pass unchanged."""
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def format_time(t: float) -> str:
    """UNIX seconds to the zone-qualified ISO 8601 form OCPP peers expect, e.g. ``2024-01-01T10:00:00Z``."""
    moment = datetime.fromtimestamp(t, UTC)
    if moment.microsecond == 0:
        spec = "seconds"
    else:
        spec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def tenths(value: float) -> float:
    """Floor to a multiple of 0.1, the resolution OCPP allows for limits; a limit is never rounded up.

    Values within 1e-9 of a multiple are taken as that multiple, so 9.999999999999998 (10 W / 1 V after float
    arithmetic) stays 10.0 instead of dropping to 9.9.
    """
    exact = Decimal(repr(value)).quantize(Decimal("1e-9"))
    return float(exact.quantize(_TENTH, rounding="ROUND_FLOOR"))


def _exact(value: object) -> Decimal | None:
    """A JSON number as an exact decimal (a float by its shortest repr, so 0.3 stays 0.3); None if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return exact if exact.is_finite() else None


class Fields:
    """One JSON object being read; ``done()`` rejects any key that was not read."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise PayloadError(CallErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{where}: must be an object")
        self._data: dict[str, Any] = {camel_key(str(k)): v for k, v in data.items()}
        self._read: set[str] = set()
        self.where = where

    def _get(self, name: str, required: bool) -> Any:
        self._read.add(name)
        value = self._data.get(name)
        if value is None and required:
            raise PayloadError(CallErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
                               f"{self.where}.{name}: required field is missing")
        return value

    def raw(self, name: str, *, required: bool = False) -> Any:
        """The value as it came, for a nested object read by its own parser."""
        return self._get(name, required)

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        exact = _exact(value)
        if exact is None or exact != exact.to_integral_value():
            raise PayloadError(CallErrorCode.TYPE_CONSTRAINT_VIOLATION,
                               f"{self.where}.{name}: {value!r} is not an integer")
        return int(exact)

    def tenth(self, name: str, *, required: bool = False) -> float | None:
        """A number with at most one decimal (the schemas' ``multipleOf: 0.1``), as a float."""
        value = self._get(name, required)
        if value is None:
            return None
        exact = _exact(value)
        if exact is None:
            raise PayloadError(CallErrorCode.TYPE_CONSTRAINT_VIOLATION,
                               f"{self.where}.{name}: {value!r} is not a finite number")
        if exact % _TENTH != 0:
            raise PayloadError(CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                               f"{self.where}.{name}: {value} has more than one decimal")
        return float(exact)

    def enum(self, name: str, kind: type[E], *, required: bool = False) -> E | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise PayloadError(CallErrorCode.TYPE_CONSTRAINT_VIOLATION,
                               f"{self.where}.{name}: {value!r} is not a string")
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(member.value for member in kind)
            raise PayloadError(CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
                               f"{self.where}.{name}: {value!r} is not one of {allowed}") from None

    def time(self, name: str, *, required: bool = False) -> float | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise PayloadError(CallErrorCode.TYPE_CONSTRAINT_VIOLATION,
                               f"{self.where}.{name}: {value!r} is not a date-time string")
        try:
            return parse_time(value)
        except ValueError as exc:
            raise PayloadError(CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION, f"{self.where}.{name}: {exc}") from None

    def obj(self, name: str, *, required: bool = False) -> Fields | None:
        value = self._get(name, required)
        return None if value is None else Fields(value, f"{self.where}.{name}")

    def objects(self, name: str, *, required: bool = False) -> list[Fields]:
        value = self._get(name, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise PayloadError(CallErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{self.where}.{name}: must be a list")
        if required and not value:
            raise PayloadError(CallErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
                               f"{self.where}.{name}: needs at least one entry")
        return [Fields(item, f"{self.where}.{name}[{i}]") for i, item in enumerate(value)]

    def done(self) -> None:
        extra = sorted(set(self._data) - self._read)
        if extra:
            raise PayloadError(CallErrorCode.FORMATION_VIOLATION,
                               f"{self.where}: unknown field(s) {', '.join(extra)}")
