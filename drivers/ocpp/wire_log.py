"""Where OCPP frames are logged: at DEBUG, under ``drivers.ocpp.wire``.

The ``ocpp`` library logs every frame it sends and receives at INFO, and websockets logs every connection at INFO;
a gateway leading a hundred chargers would log several lines a second per charger. The gateway logs what matters
itself (a charger connected, refused, gone; a call refused), so the frames go to DEBUG, where ``-v`` shows them.
What the library logs as an exception (a message it refused) becomes one WARNING line without a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

WIRE = logging.getLogger("drivers.ocpp.wire")


class DebugLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose INFO is DEBUG (warnings and errors stay what they are)."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        """One line at WARNING, no traceback: the ``ocpp`` library logs every message it refuses this way, and a
        charger sending thousands of bad messages a second must not fill the log or the CPU with tracebacks."""
        self.warning(msg, *args, **kwargs)


def wire_log(name: str) -> DebugLog:
    """The frame logger for one kind of connection (``endpoint``, ``sim``...)."""
    return DebugLog(WIRE.getChild(name), {})
