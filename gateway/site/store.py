"""Persisted state, written so that a power cut at any instant leaves either the old file or the new one.

Every write goes to a temporary file in the same directory, is flushed and fsync'd, then atomically renamed over
the old file, and the directory itself is fsync'd so the rename survives the power cut too. A file that cannot be
read back (truncated by a disk fault, edited by hand into invalid JSON) is never silently replaced by defaults: it
is moved aside as ``NAME.corrupt-<n>`` and the caller is told, so no setting is lost without a trace.

A process killed between creating the temporary file and the rename leaves that file behind (``.NAME.<random>.tmp``);
it holds a write that never took effect. ``remove_stale_temporaries`` deletes them when the gateway starts, with the
state directory's lock held, so no write in progress can be hit.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError

log = logging.getLogger(__name__)


_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
"""The name ``write_atomically`` gives its temporary file (``tempfile.mkstemp`` adds eight random characters)."""


class StoreError(GatewayError, RuntimeError):
    """The state directory cannot be written (permissions, disk full); the message names the path."""


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, never a mix."""
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files that interrupted atomic writes left under ``directory``; returns them.

    Only call this while no write can be in progress (the gateway holds the state directory's lock and has not
    started anything yet). A file that cannot be removed is logged and left: it is harmless, merely untidy.
    """
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for path in sorted(directory.rglob(".*.tmp")):
        if not (_TEMPORARY.match(path.name) and path.is_file()):
            continue
        try:
            path.unlink()
        except OSError as exc:
            log.warning("cannot remove the stale temporary file %s: %s", path, exc.strerror or exc)
            continue
        removed.append(path)
    if removed:
        log.warning("removed %d temporary file(s) left by an interrupted write (the write never took effect): %s",
                    len(removed), ", ".join(p.name for p in removed))
    return removed


def set_aside_database(path: Path) -> Path:
    """Move a database that cannot be used to ``NAME.corrupt-<n>``, with its WAL files, and return the new name: it
    is kept for whoever wants to look at it, and a new database can start under the old name."""
    n = 1
    while (aside := path.with_name(f"{path.name}.corrupt-{n}")).exists():
        n += 1
    for suffix in ("", "-wal", "-shm"):
        damaged = path.with_name(path.name + suffix)
        if damaged.exists():
            damaged.replace(aside.with_name(aside.name + suffix))
    return aside


class JsonStore:
    """One JSON document on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The stored document, or None if there is none yet (or it was unreadable and has been moved aside)."""
        try:
            return self.peek()
        except ValueError as exc:
            aside = self.set_aside("corrupt")
            log.error("%s is unreadable (%s); kept as %s and starting from the site file", self.path, exc, aside)
            return None

    def peek(self) -> dict[str, Any] | None:
        """The stored document without touching the file (``check-config``): None if there is none; ``ValueError``
        if it is unreadable, ``StoreError`` if it cannot be read."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        document = json.loads(raw)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document

    def save(self, document: dict[str, Any]) -> None:
        write_atomically(self.path, json.dumps(document, indent=1, sort_keys=True).encode("utf-8"))

    def set_aside(self, tag: str) -> Path:
        """Rename the file to ``NAME.<tag>-<n>`` (the first free n), so that the next save cannot destroy it."""
        n = 1
        while (aside := self.path.with_name(f"{self.path.name}.{tag}-{n}")).exists():
            n += 1
        self.path.rename(aside)
        return aside
