"""The ``web:`` section: its rules, HTTPS with a certificate, start-up errors, and the documents that describe it."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from pydantic import ValidationError
from support.paths import REPO
from support.web import web_rig

from gateway.faces.web.server import WebStartError
from gateway.site.config import WebConfig

DOCS = REPO / "docs"


def test_tls_needs_both_certificate_and_key() -> None:
    with pytest.raises(ValidationError, match="tls_cert and tls_key go together"):
        WebConfig(tls_cert="/etc/cert.pem")
    assert WebConfig().port == 8080 and WebConfig().read_access == "open"
    with pytest.raises(ValidationError):
        WebConfig(read_access="everyone")  # type: ignore[arg-type]


async def test_https_with_a_certificate_and_secure_cookies(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "gateway.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "gateway.key"))
    web = {"tls_cert": str(tmp_path / "gateway.pem"), "tls_key": str(tmp_path / "gateway.key")}
    async with web_rig(tmp_path / "state", web=web) as rig:
        assert rig.web.url.startswith("https://")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        async with httpx.AsyncClient(base_url=rig.web.url, verify=context) as client:
            assert (await client.get("/api/limit")).json()["network_limit_a"] == 32
            code = rig.web.setup_code
            signed = await client.post("/api/setup", json={"setup_code": code, "password": "long enough pw"})
            assert signed.status_code == 200 and "secure" in signed.headers["set-cookie"].lower()
        with pytest.raises(httpx.HTTPError):
            await rig.client.get("/api/limit")  # plain HTTP on the HTTPS port


async def test_an_unreadable_certificate_or_a_busy_port_is_a_clear_start_error(tmp_path: Path) -> None:
    web = {"tls_cert": str(tmp_path / "missing.pem"), "tls_key": str(tmp_path / "missing.key")}
    with pytest.raises(WebStartError, match="TLS certificate"):
        async with web_rig(tmp_path / "a", web=web):
            pass
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(WebStartError, match=r"cannot listen on 127\.0\.0\.1"):
            async with web_rig(tmp_path / "b", web={"port": busy.getsockname()[1]}):
                pass


def test_the_configuration_reference_names_every_web_key() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert [key for key in WebConfig.model_fields if f"`{key}`" not in text] == []


async def test_web_md_names_every_api_path(tmp_path: Path) -> None:
    text = (DOCS / "web.md").read_text(encoding="utf-8")
    async with web_rig(tmp_path) as rig:
        paths = (await rig.client.get("/openapi.json")).json()["paths"]
    assert [path for path in paths if path not in text] == []
