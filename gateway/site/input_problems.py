"""What pydantic found wrong with a value, in an installer's words and language.

pydantic says "Input should be greater than or equal to 6"; an installer reads "must be at least 6", and a German
one "muss mindestens 6 sein". The words are a predicate without a subject, so the site file's checks put the key's
path before them (``chargers[2].breaker_limit_a: must be at least 6``) and the web API the setting's name (``The
limit must be a number``). One table for both, so the file and the page never word a rule differently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.i18n.catalog import DEFAULT_LANGUAGE, SHIPPED
from gateway.i18n.text import Message, msgid, placeholders, text_of, tr

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
"""A name the installer gives a charger or a circuit; here with its words ("may hold only letters, digits, ...")."""
WEBSOCKET_URL_PATTERN = r"^wss?://[^\s/]+(/\S*)?$"
"""A central system's address; here with its words ("must start with ws:// or wss://, without spaces")."""
_PREDICATES = {
    "missing": msgid("input.missing"),
    "float_type": msgid("input.number"),
    "float_parsing": msgid("input.number"),
    "int_type": msgid("input.whole_number"),
    "int_parsing": msgid("input.whole_number"),
    "int_from_float": msgid("input.whole_number"),
    "finite_number": msgid("input.finite_number"),
    "bool_type": msgid("input.true_or_false"),
    "bool_parsing": msgid("input.true_or_false"),
    "string_type": msgid("input.text"),
    "extra_forbidden": msgid("input.not_a_setting"),
    "too_short": msgid("input.too_short"),
    "string_too_short": msgid("input.too_short"),
    "string_too_long": msgid("input.too_long"),
    "string_pattern_mismatch": msgid("input.pattern"),  # input.name_characters for NAME_PATTERN
    "greater_than_equal": msgid("input.at_least"),
    "greater_than": msgid("input.above"),
    "less_than_equal": msgid("input.at_most"),
    "less_than": msgid("input.below"),
    "literal_error": msgid("input.one_of"),
    "union_tag_invalid": msgid("input.one_of_tags"),
    "datetime_type": msgid("input.datetime"),
    "datetime_parsing": msgid("input.datetime"),
    "datetime_from_date_parsing": msgid("input.datetime"),
}
"""pydantic's error type -> the predicate; the template's placeholders are the error's context keys."""


def predicate(error: Mapping[str, Any]) -> Message | None:
    """The plain predicate for one pydantic error ("must be a number"), or None where none is known."""
    message_id = _PREDICATES.get(str(error.get("type")))
    if message_id is None:
        return None
    context = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, str | int | float)}
    if message_id == "input.pattern" and context.get("pattern") == NAME_PATTERN:
        message_id, context = msgid("input.name_characters"), {}
    elif message_id == "input.pattern" and context.get("pattern") == WEBSOCKET_URL_PATTERN:
        message_id, context = msgid("input.websocket_url"), {}
    expected = context.get("expected")
    if isinstance(expected, str):
        context["expected"] = _choices(expected)
    wanted = placeholders(SHIPPED.template(DEFAULT_LANGUAGE, message_id) or "")
    if not wanted.keys() <= context.keys() or any(spec and isinstance(context[k], str) for k, spec in wanted.items()):
        return None  # a constraint of another kind (a date, a pattern object): pydantic's words
    return tr(message_id, **{k: context[k] for k in wanted})


def explanation(error: Mapping[str, Any]) -> str:
    """A rule's own words (a validator's message, still translatable), else pydantic's."""
    inner = (error.get("ctx") or {}).get("error")
    if error.get("type") == "value_error" and isinstance(inner, BaseException):
        return text_of(inner)
    return str(error.get("msg"))


def problem(error: Mapping[str, Any]) -> str:
    """The predicate where one is known, else the explanation."""
    return predicate(error) or explanation(error)


def _choices(expected: str) -> str:
    """pydantic's "'N', 'E' or 'O'" with the reader's word for "or"."""
    first, sep, last = expected.rpartition(" or ")
    return tr("input.choices", first=first, last=last) if sep else expected
