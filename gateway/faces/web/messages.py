"""Refusals as an installer reads them: "Port must be a whole number", not "transport.port: Input should be a
valid integer".

The request's own field names stay in the refusal's ``field`` (the page highlights that input; scripts match on
it); the ``detail`` text names the setting the way the page labels it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABELS = {
    "limit_a": "the limit", "confirm_zero": "the confirmation of 0 A", "enabled": "on/off",
    "id": "the name", "profile": "the device profile", "transport": "the connection",
    "transport.type": "the connection type", "transport.host": "the address", "transport.port": "the port",
    "transport.unit": "the unit id", "transport.device": "the serial device", "transport.baudrate": "the baud rate",
    "transport.parity": "the parity", "transport.timeout_s": "the timeout", "breaker_limit_a": "the breaker limit",
    "phases": "the phases wired", "phase_rotation": "the phase rotation", "circuit": "the circuit",
    "password": "the password", "new_password": "the new password", "current_password": "the current password",
    "setup_code": "the setup code",
    "range": "the range", "from": "the start time", "to": "the end time", "limit": "the number of rows",
    "offset": "the number of rows to skip", "unit": "the unit",
}

_BY_TYPE = {
    "missing": "{label} is missing",
    "float_type": "{label} must be a number",
    "float_parsing": "{label} must be a number",
    "int_type": "{label} must be a whole number",
    "int_parsing": "{label} must be a whole number",
    "int_from_float": "{label} must be a whole number",
    "finite_number": "{label} must be a finite number",
    "bool_type": "{label} must be true or false",
    "bool_parsing": "{label} must be true or false",
    "string_type": "{label} must be text",
    "extra_forbidden": "{label} is not a setting here",
    "too_short": "{label} is too short",
    "string_too_short": "{label} is too short",
    "string_too_long": "{label} is too long",
    "string_pattern_mismatch": "{label} may hold only letters, digits, '-', '_' and '.'",
    "greater_than_equal": "{label} must be at least {ge}",
    "greater_than": "{label} must be above {gt}",
    "less_than_equal": "{label} must be at most {le}",
    "less_than": "{label} must be below {lt}",
    "literal_error": "{label} must be one of {expected}",
    "union_tag_invalid": "{label} must be one of {expected_tags}",
    "datetime_type": "{label} must be a date and time such as 2026-05-01T08:00:00Z",
    "datetime_parsing": "{label} must be a date and time such as 2026-05-01T08:00:00Z",
    "datetime_from_date_parsing": "{label} must be a date and time such as 2026-05-01T08:00:00Z",
}


def label(field: str | None) -> str:
    if not field:
        return "the request"
    return LABELS.get(field, field.rsplit(".", 1)[-1].replace("_", " "))


def readable(field: str | None, error: Mapping[str, Any]) -> str:
    """One validation error in plain words; pydantic's own text where no plainer one is known."""
    template = _BY_TYPE.get(str(error.get("type")))
    context = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, (str, int, float))}
    what = label(field)
    try:
        text = template.format(label=what, **context) if template else f"{what}: {error.get('msg')}"
    except (KeyError, IndexError):
        text = f"{what}: {error.get('msg')}"
    return text[0].upper() + text[1:]
