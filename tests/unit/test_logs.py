"""Log formats: journald-friendly plain lines under systemd, timestamps elsewhere, JSON on request."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

from gateway.cli.logs import JsonFormatter, formatter_for, syslog_priority, under_journald


def record(level: int, message: str, name: str = "gateway.run") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, (), None)


def test_under_journald_only_when_the_stream_is_the_one_systemd_names(tmp_path: Path) -> None:
    with (tmp_path / "stream").open("w") as stream, (tmp_path / "other").open("w") as other:
        info = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"}
        assert under_journald(stream, env)
        assert not under_journald(other, env)  # stderr redirected elsewhere: not the journal any more
        assert not under_journald(stream, {})
        assert not under_journald(stream, {"JOURNAL_STREAM": "garbage"})
        journal = formatter_for("plain", stream, env)
        assert journal.format(record(logging.WARNING, "charger cp1 unavailable: timeout")) == \
            "<4>gateway.run: charger cp1 unavailable: timeout"
        assert journal.format(record(logging.ERROR, "two\nlines")) == "<3>gateway.run: two\n<3>lines"
        plain = formatter_for("plain", other, env).format(record(logging.INFO, "running"))
        assert plain.endswith(" INFO gateway.run: running") and plain[:4].isdigit()


def test_syslog_priorities() -> None:
    assert [syslog_priority(level) for level in (50, 40, 30, 20, 10, 5, 25)] == [2, 3, 4, 6, 7, 7, 6]


def test_json_lines() -> None:
    line = JsonFormatter().format(record(logging.INFO, "network limit 20 A (from mqtt 127.0.0.1:1883)"))
    entry = json.loads(line)
    assert entry["level"] == "info" and entry["logger"] == "gateway.run"
    assert entry["message"] == "network limit 20 A (from mqtt 127.0.0.1:1883)"
    assert entry["time"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        failing = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failing))["traceback"]
    assert "\n" not in JsonFormatter().format(failing)


def test_formatter_for_json_ignores_the_journal() -> None:
    assert isinstance(formatter_for("json", io.StringIO(), {"JOURNAL_STREAM": "1:2"}), JsonFormatter)
