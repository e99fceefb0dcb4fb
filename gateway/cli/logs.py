"""How the gateway logs: to standard error, as plain lines an operator (or journald) reads, or as JSON lines a
log shipper parses.

Plain is the default. Under systemd (``JOURNAL_STREAM`` names our standard error) each line starts with a syslog
priority prefix (``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug), which journald turns into the
entry's priority, and carries no timestamp, since journald stamps every entry itself. Anywhere else a line starts
with the time and level. ``--log-format json`` writes one object per line: time (ISO 8601, UTC), level, logger,
message, and the traceback if any.

Log messages are English: journald and log shippers are searched, and support reads them. The one exception is a
person at a terminal (plain lines, not under journald): the few lines written for the operator as ``gateway.i18n``
texts (``powershare run``'s start and stop lines) appear in the command line's language there.

Secrets never reach a formatter: passwords are kept out of ``repr`` of the site sections, the OCPP client wraps
its loggers in a redacting adapter, and the MQTT face hands its password to the client library only.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal, TextIO

from gateway.i18n.catalog import DEFAULT_LANGUAGE
from gateway.i18n.text import Text

LogFormat = Literal["plain", "json"]
FORMATS: tuple[LogFormat, ...] = ("plain", "json")
_SYSLOG_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def syslog_priority(level: int) -> int:
    """The syslog priority of a logging level: the nearest standard level at or above it."""
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if level >= threshold:
            return _SYSLOG_PRIORITY[threshold]
    return _SYSLOG_PRIORITY[logging.DEBUG]


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``; journald adds the time, the unit and the process."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{syslog_priority(record.levelno)}>"
        # A traceback spans lines; each becomes its own journal entry, so each keeps the priority.
        return "\n".join(prefix + line for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Time, level, logger and message; a message that is a ``gateway.i18n`` text in the operator's language."""

    def __init__(self, lang: str = DEFAULT_LANGUAGE) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.lang = lang

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, Text) and not record.args:
            record = logging.makeLogRecord({**record.__dict__, "msg": record.msg.render(self.lang)})
        return super().format(record)


def under_journald(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether ``stream`` is the journal stream systemd connected (``JOURNAL_STREAM`` is ``device:inode``)."""
    value = environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        info = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


def formatter_for(fmt: LogFormat, stream: TextIO, environ: Mapping[str, str],
                  lang: str = DEFAULT_LANGUAGE) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if under_journald(stream, environ):
        return JournalFormatter()
    return PlainFormatter(lang)


def configure(fmt: LogFormat, verbose: bool, stream: TextIO | None = None,
              environ: Mapping[str, str] | None = None, lang: str = DEFAULT_LANGUAGE) -> None:
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter_for(fmt, out, os.environ if environ is None else environ, lang))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
