"""A charge point at the frame level, for what the simulator will not do: malformed frames, silence, history."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from drivers.aio import cancel_and_wait
from drivers.ocpp.meter_values import format_time

Frame = list[Any]
Answer = Callable[[str, dict[str, Any]], dict[str, Any] | None]
"""(action, payload) -> the CALLRESULT payload to answer a gateway CALL with, or None to stay silent."""


def accept_everything(action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    if action == "GetConfiguration":
        return {"configurationKey": [{"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "8"}]}
    return {"status": "Accepted"}


def auth_header(identity: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()}


class RawChargePoint:
    """``async with RawChargePoint(url, id, password) as cp:``; gateway CALLs are answered by ``answer``."""

    def __init__(self, url: str, identity: str, password: str, answer: Answer = accept_everything) -> None:
        self.url = f"{url}/{identity}"
        self.identity = identity
        self.password = password
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []
        """CALLs the gateway sent us, in order."""
        self._ws: ClientConnection | None = None
        self._replies: dict[str, Frame] = {}
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._counter = 0

    async def __aenter__(self) -> RawChargePoint:
        self._ws = await connect(self.url, subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                                 additional_headers=auth_header(self.identity, self.password))
        self._reader = asyncio.create_task(self._read())
        boot = await self.call("BootNotification", {"chargePointVendor": "raw", "chargePointModel": "frames"})
        assert boot[0] == 3 and boot[2]["status"] == "Accepted"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._ws is not None and self._reader is not None
        await self._ws.close()
        await cancel_and_wait(self._reader)

    @property
    def closed(self) -> bool:
        return self._reader is not None and self._reader.done()

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            frame = json.loads(raw)
            if frame[0] == 2:
                self.calls.append((frame[2], frame[3]))
                reply = self.answer(frame[2], frame[3])
                if reply is not None:
                    await self._ws.send(json.dumps([3, frame[1], reply]))
            else:
                self._replies[frame[1]] = frame
                self._arrived.set()
                self._arrived = asyncio.Event()

    async def send_raw(self, text: str | bytes) -> None:
        assert self._ws is not None
        await self._ws.send(text)

    async def reply(self, message_id: str, timeout_s: float = 2.0) -> Frame:
        """The CALLRESULT or CALLERROR for ``message_id``."""
        async with asyncio.timeout(timeout_s):
            while message_id not in self._replies:
                await self._arrived.wait()
        return self._replies.pop(message_id)

    async def call(self, action: str, payload: dict[str, Any]) -> Frame:
        self._counter += 1
        message_id = f"raw-{self._counter}"
        await self.send_raw(json.dumps([2, message_id, action, payload]))
        return await self.reply(message_id)

    async def status(self, status: str, connector_id: int = 1) -> None:
        assert (await self.call("StatusNotification", {"connectorId": connector_id, "errorCode": "NoError",
                                                       "status": status}))[0] == 3

    async def meter_values(self, currents: tuple[float, float, float], stamp: float, connector_id: int = 1,
                           **extra: Any) -> Frame:
        values = [{"value": str(a), "measurand": "Current.Import", "phase": f"L{i + 1}", "unit": "A"}
                  for i, a in enumerate(currents)]
        values.append({"value": "12345", "measurand": "Energy.Active.Import.Register", "unit": "Wh"})
        return await self.call("MeterValues", {"connectorId": connector_id, "meterValue": [
            {"timestamp": format_time(stamp), "sampledValue": values}], **extra})
