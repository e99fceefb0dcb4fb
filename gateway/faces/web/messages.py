"""Refusals as an installer reads them: "Port must be a whole number", not "transport.port: Input should be a
valid integer"; in the reader's language (``gateway.i18n``).

The request's own field names stay in the refusal's ``field`` (the page highlights that input; scripts match on
it); the ``detail`` text names the setting the way the page labels it. The predicates ("must be a number") are the
site file's (``gateway.site.input_problems``), so the page and ``check-config`` word a rule alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.i18n.text import capitalized, msgid, tr
from gateway.site.input_problems import explanation, predicate

LABELS = {
    "limit_a": msgid("web.label.limit_a"), "confirm_zero": msgid("web.label.confirm_zero"),
    "enabled": msgid("web.label.enabled"), "id": msgid("web.label.id"), "profile": msgid("web.label.profile"),
    "transport": msgid("web.label.transport"), "transport.type": msgid("web.label.transport_type"),
    "transport.host": msgid("web.label.host"), "transport.port": msgid("web.label.port"),
    "transport.unit": msgid("web.label.unit"), "transport.device": msgid("web.label.device"),
    "transport.baudrate": msgid("web.label.baudrate"), "transport.parity": msgid("web.label.parity"),
    "transport.timeout_s": msgid("web.label.timeout"), "breaker_limit_a": msgid("web.label.breaker_limit_a"),
    "phases": msgid("web.label.phases"), "phase_rotation": msgid("web.label.phase_rotation"),
    "circuit": msgid("web.label.circuit"), "password": msgid("web.label.password"),
    "new_password": msgid("web.label.new_password"), "current_password": msgid("web.label.current_password"),
    "setup_code": msgid("web.label.setup_code"), "range": msgid("web.label.range"), "from": msgid("web.label.from"),
    "to": msgid("web.label.to"), "limit": msgid("web.label.rows"), "offset": msgid("web.label.offset"),
    "unit": msgid("web.label.history_unit"),
    "parent": msgid("web.label.parent"), "fallback_limit_a": msgid("web.label.fallback_limit_a"),
    "margin_a": msgid("web.label.margin_a"), "stale_after_s": msgid("web.label.stale_after_s"),
    "host": msgid("web.label.listen"), "port": msgid("web.label.port"), "unit_id": msgid("web.label.unit"),
    "allow_write_from": msgid("web.label.allow_write_from"), "read_only": msgid("web.label.read_only"),
    "timeout_s": msgid("web.label.watchdog"), "url": msgid("web.label.url"),
    "charge_point_id": msgid("web.label.charge_point_id"), "security_profile": msgid("web.label.security_profile"),
    "password_file": msgid("web.label.password_file"), "password_env": msgid("web.label.password_env"),
    "ca_file": msgid("web.label.ca_file"), "client_cert": msgid("web.label.client_cert"),
    "client_key": msgid("web.label.client_key"),
}
"""A request field -> the setting as the page labels it, with its article ("the limit"), to begin a sentence."""


def label(field: str | None) -> str:
    if not field:
        return tr("web.label.request")
    field = re.sub(r"\.\d+$", "", field)  # an entry of a list: the list's label
    if field in LABELS:
        return tr(LABELS[field])
    return field.rsplit(".", 1)[-1].replace("_", " ")


def readable(field: str | None, error: Mapping[str, Any]) -> str:
    """One validation error in plain words; the rule's or pydantic's own text where no plainer one is known. A rule
    of a whole section (``ocpp``: "security profile 1 needs ...") has no field: its own words alone."""
    if not field and error.get("type") == "value_error":
        return capitalized(explanation(error))
    what = capitalized(label(field))
    plain = predicate(error)
    if plain is not None:
        return tr("web.invalid", setting=what, problem=plain)
    return tr("web.invalid_other", setting=what, problem=explanation(error))
