"""Security profiles 1 to 3 of the OCPP 1.6 security white paper, over real loopback websockets, against both
central systems; test certificates come from ``trustme``. And the authorization key never reaches a log."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from support.ocpp_peers import Peer, node_peer, python_peer
from support.ocpp_rig import CP_ID, KEY, car, gateway, until


@dataclass(frozen=True)
class Pki:
    ca: trustme.CA
    ca_file: Path
    other_ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path

    def server_context(self, *, require_client_cert: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca_file)
        return context

    def node_tls(self, *, require_client_cert: bool) -> dict[str, Any]:
        return {"key": str(self.server_key), "cert": str(self.server_cert), "ca": str(self.ca_file),
                "requestCert": require_client_cert}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert(CP_ID)
    stranger = other.issue_cert(CP_ID)
    paths = {name: folder / f"{name}.pem" for name in ("ca", "other", "server", "server_key", "client",
                                                        "client_key", "stranger", "stranger_key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    other.cert_pem.write_to_path(str(paths["other"]))
    for cert, name in ((server, "server"), (client, "client"), (stranger, "stranger")):
        cert.private_key_pem.write_to_path(str(paths[f"{name}_key"]))
        for i, pem in enumerate(cert.cert_chain_pems):
            pem.write_to_path(str(paths[name]), append=i > 0)
    return Pki(ca, paths["ca"], paths["other"], paths["server"], paths["server_key"], paths["client"],
               paths["client_key"], paths["stranger"], paths["stranger_key"])


@pytest.fixture(params=["csms", "node"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def peer_for(kind: str, pki: Pki | None, *, password: str | None = None,
             require_client_cert: bool = False) -> Any:
    if kind == "node":
        options: dict[str, Any] = {}
        if password is not None:
            options["password"] = password
        if pki is not None:
            options["tls"] = pki.node_tls(require_client_cert=require_client_cert)
        return node_peer(**options)
    context = None if pki is None else pki.server_context(require_client_cert=require_client_cert)
    return python_peer(CP_ID, password=password, ssl_context=context)


@pytest.fixture(autouse=True)
def gateway_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The gateway's own log, whatever level an earlier test left its logger at (the demo silences it)."""
    caplog.set_level(logging.DEBUG, logger="gateway")


async def booted(peer: Peer, gw: Any) -> None:
    await peer.wait_for("BootNotification")
    await until(lambda: gw.ocpp.booted)


async def test_profile_1_basic_auth_with_the_key_from_the_environment(tmp_path: Path, kind: str) -> None:
    async with peer_for(kind, None, password=KEY) as peer, \
            gateway(tmp_path, {"url": peer.url(), "security_profile": 1, "password_env": "OCPP_KEY"},
                    environ={"OCPP_KEY": KEY}) as gw:
        await booted(peer, gw)
        if kind == "node":
            connected = next(e for e in peer.events if e["event"] == "connected")
            assert connected["password"] == KEY and connected["identity"] == CP_ID


async def test_profile_1_wrong_key_is_refused(tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    async with peer_for(kind, None, password=KEY) as peer, \
            gateway(tmp_path, {"url": peer.url(), "security_profile": 1, "password": "f" * 20}) as gw:
        await until(lambda: "HTTP 401" in caplog.text)
        assert not gw.ocpp.booted and not peer.calls("BootNotification")


async def test_profile_2_tls_and_basic_auth(tmp_path: Path, kind: str, pki: Pki) -> None:
    async with peer_for(kind, pki, password=KEY) as peer, \
            gateway(tmp_path, {"url": peer.url(), "security_profile": 2, "password": KEY,
                               "ca_file": str(pki.ca_file)}) as gw:
        assert peer.url().startswith("wss://")
        await booted(peer, gw)


async def test_profile_2_refuses_a_central_system_it_cannot_verify(tmp_path: Path, kind: str, pki: Pki,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    async with peer_for(kind, pki, password=KEY) as peer, \
            gateway(tmp_path, {"url": peer.url(), "security_profile": 2, "password": KEY,
                               "ca_file": str(pki.other_ca_file)}) as gw:
        await until(lambda: "InvalidCentralSystemCertificate" in caplog.text)
        assert not gw.ocpp.booted and not peer.calls("BootNotification")


async def test_profile_3_client_certificate(tmp_path: Path, kind: str, pki: Pki) -> None:
    async with peer_for(kind, pki, require_client_cert=True) as peer, \
            gateway(tmp_path, {"url": peer.url(), "security_profile": 3, "ca_file": str(pki.ca_file),
                               "client_cert": str(pki.client_cert), "client_key": str(pki.client_key)}) as gw:
        await booted(peer, gw)


async def test_profile_3_certificate_from_another_ca_is_refused(tmp_path: Path, kind: str, pki: Pki,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    async with peer_for(kind, pki, require_client_cert=True) as peer, \
            gateway(tmp_path, {"url": peer.url(), "security_profile": 3, "ca_file": str(pki.ca_file),
                               "client_cert": str(pki.stranger_cert), "client_key": str(pki.stranger_key)}) as gw:
        await until(lambda: "unreachable" in caplog.text)
        await asyncio.sleep(0.2)
        assert not gw.ocpp.booted and not peer.calls("BootNotification")


async def test_the_authorization_key_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Everything at DEBUG, websockets' header dump included, through a session, a transaction, a central system
    that tries to change the key, and a connection refused for a wrong key."""
    caplog.set_level(logging.DEBUG)
    new_key = "N3wS3cretKey-0000000000"
    token = base64.b64encode(f"{CP_ID}:{KEY}".encode()).decode()
    async with node_peer(password=KEY) as peer:
        async with gateway(tmp_path / "a", {"url": peer.url(), "security_profile": 1, "password": KEY}) as gw:
            await booted(peer, gw)
            gw.chargers[0].plug(car("a"))
            await peer.wait_for("StartTransaction")
            answer = await peer.call("ChangeConfiguration", {"key": "AuthorizationKey", "value": new_key})
            assert answer["status"] == "NotSupported"
            await peer.call("GetConfiguration", {})
        async with gateway(tmp_path / "b", {"url": peer.url(), "security_profile": 1,
                                            "password": KEY[::-1]}) as gw:
            await until(lambda: "HTTP 401" in caplog.text)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "Authorization: <redacted>" in text, "websockets did log the header: redacted"
    assert "AuthorizationKey" in text and '"<redacted>"' in text, "the frame was logged: redacted"
    for secret in (KEY, KEY[::-1], token, new_key):
        assert secret not in text
    for path, content in _files(tmp_path):
        assert KEY.encode() not in content and new_key.encode() not in content, path


def _files(folder: Path) -> list[tuple[Path, bytes]]:
    return [(path, path.read_bytes()) for path in folder.rglob("*") if path.is_file()]

