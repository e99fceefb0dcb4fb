"""The installer's face: the commissioning page and its JSON API, served by the gateway (see docs/web.md)."""

from gateway.faces.web.server import WebServer, WebStartError

__all__ = ["WebServer", "WebStartError"]
