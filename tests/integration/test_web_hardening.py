"""The web face under the findings of issue 12, over a real loopback HTTP server.

* request bodies over 64 KiB are refused with 413 before they are read, declared or chunked;
* every response carries the security headers, and none names the server software;
* a cookie sign-out needs the CSRF token like any other write;
* sign-in guesses from many addresses share one global budget, and the installer still gets in;
* at the connection cap the connection idle the longest is closed; one that sends no request is closed after the
  head timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.web import WebRig, web_rig

from gateway.faces.web.auth import GLOBAL_BURST, GLOBAL_CHECKS_PER_S, MAX_QUEUE_WAIT_S
from gateway.faces.web.middleware import MAX_BODY_BYTES

PASSWORD = "correct horse battery"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[WebRig]:
    async with web_rig(tmp_path) as rig:
        yield rig


def security_headers_of(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", response.url
    assert response.headers["referrer-policy"] == "no-referrer", response.url
    assert response.headers["x-frame-options"] == "DENY", response.url
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"], response.url
    assert "server" not in response.headers, response.url


async def test_a_declared_oversized_body_is_refused_413_and_nothing_changes(rig: WebRig) -> None:
    headers = await rig.sign_in(PASSWORD)
    before = rig.supervisor.status().network_limit_a
    body = b'{"limit_a": 10, "pad": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    response = await rig.client.put("/api/network-limit", content=body,
                                    headers={**headers, "content-type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    security_headers_of(response)
    assert rig.supervisor.status().network_limit_a == before


async def test_a_chunked_oversized_body_is_refused_413_while_it_arrives(rig: WebRig) -> None:
    headers = await rig.sign_in(PASSWORD)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"limit_a": 10, "pad": "'
        for _ in range(64):  # 4 MiB offered in 64 KiB chunks; the gateway stops reading after the limit
            sent += 64 * 1024
            yield b"x" * (64 * 1024)
        yield b'"}'

    with contextlib.suppress(httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        response = await rig.client.put("/api/network-limit", content=chunks(),
                                        headers={**headers, "content-type": "application/json"})
        assert response.status_code == 413
    assert rig.supervisor.status().network_limit_a == 32
    status = await rig.client.get("/api/status")  # the server is fine afterwards
    assert status.status_code == 200


async def test_a_body_within_the_limit_is_served_as_before(rig: WebRig) -> None:
    headers = await rig.sign_in(PASSWORD)
    response = await rig.client.put("/api/network-limit", json={"limit_a": 20}, headers=headers)
    assert response.status_code == 200 and rig.supervisor.status().network_limit_a == 20


async def test_every_response_carries_the_security_headers_and_no_server_banner(rig: WebRig) -> None:
    for path in ("/", "/api/status", "/api/units/none", "/static/app.js", "/openapi.json", "/favicon.ico",
                 "/no-such-page"):
        security_headers_of(await rig.client.get(path))
    security_headers_of(await rig.client.post("/api/session", json={"password": "wrong password"}))
    page = await rig.client.get("/")
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    docs = await rig.client.get("/docs")
    security_headers_of(docs)
    assert "script-src 'self' 'unsafe-inline'" in docs.headers["content-security-policy"]


async def test_a_cookie_sign_out_needs_the_csrf_token(rig: WebRig) -> None:
    signed = await rig.client.post("/api/setup", json={"setup_code": rig.web.setup_code, "password": PASSWORD})
    csrf = signed.json()["csrf_token"]
    forged = await rig.client.delete("/api/session")  # what a form on another site could make the browser send
    assert forged.status_code == 403
    assert (await rig.client.get("/api/auth")).json()["signed_in"] is True
    honest = await rig.client.delete("/api/session", headers={"X-CSRF-Token": csrf})
    assert honest.status_code == 204
    assert (await rig.client.get("/api/auth")).json()["signed_in"] is False


async def _attempt(port: int, source: str, password: str) -> httpx.Response:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        return await client.post("/api/session", json={"password": password})


async def test_guesses_from_many_addresses_share_one_budget_and_the_installer_still_gets_in(rig: WebRig) -> None:
    await rig.sign_in(PASSWORD)
    port = rig.web.port
    assert port is not None
    addresses = [f"127.0.1.{k}" for k in range(1, 41)]
    answers = await asyncio.gather(*(_attempt(port, a, "wrong guess 123") for a in addresses))
    checked = sum(1 for r in answers if r.status_code == 401)
    refused = [r for r in answers if r.status_code == 429]
    # The clock of the throttle stands still in this rig: the burst plus the queue are all that may be checked.
    most = GLOBAL_BURST + int(MAX_QUEUE_WAIT_S * GLOBAL_CHECKS_PER_S)
    assert checked <= most and checked + len(refused) == len(addresses), [r.status_code for r in answers]
    assert all(float(r.headers["retry-after"]) >= 1 for r in refused)
    # The installer, from an address that never failed, once the budget's queue has drained.
    rig.auth_clock.advance(MAX_QUEUE_WAIT_S + most / GLOBAL_CHECKS_PER_S)
    installer = await _attempt(port, "127.0.2.1", PASSWORD)
    assert installer.status_code == 200, installer.text


async def test_idle_connections_over_the_cap_are_closed_and_silent_ones_time_out(tmp_path: Path) -> None:
    async with web_rig(tmp_path, server_options={"max_connections": 4, "head_timeout_s": 0.5}) as rig:
        port = rig.web.port
        assert port is not None
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        extra = [await asyncio.open_connection("127.0.0.1", port) for _ in range(10)]
        for reader, _ in extra:
            async with asyncio.timeout(5):
                assert await reader.read() == b""
        for reader, _ in held:  # silent: closed after the head timeout
            async with asyncio.timeout(10):
                assert await reader.read() == b""
        for _, writer in held + extra:
            writer.close()
        await asyncio.sleep(0.05)
        assert (await rig.client.get("/api/status")).status_code == 200
