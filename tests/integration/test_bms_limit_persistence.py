"""Issue 12: a BMS writing its limit every few seconds must not make the gateway write (and fsync) the settings
file on every write, inside its Modbus request; the writes are coalesced and the last one is on disk after a stop.

The settings file is replaced by a rename on every save, so an unchanged inode means it was not written.
"""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

from support.bms import bms_config
from support.web import web_rig

from gateway.faces.bms.server import BmsServer


async def test_bms_limit_writes_are_coalesced_and_the_last_is_saved_at_stop(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    async with web_rig(tmp_path) as rig:
        bms = BmsServer(rig.supervisor, bms_config())
        await bms.start()
        try:
            assert bms.tcp_address is not None
            reader, writer = await asyncio.open_connection(*bms.tcp_address)
            writer.write(struct.pack(">HHHBBHH", 1, 0, 6, 1, 6, 0, 200))  # a first limit: 20.0 A
            await writer.drain()
            await reader.readexactly(12)
            first = settings.stat().st_ino if settings.exists() else None
            for k in range(50):  # the BMS writes its limit again and again: 20.0 A, 20.1 A, ...
                writer.write(struct.pack(">HHHBBHH", 2 + k, 0, 6, 1, 6, 0, 201 + k))
                await writer.drain()
                assert (await reader.readexactly(12))[7] == 6
            assert rig.supervisor.settings.config.network_limit_a == 25.0  # in force at once
            assert (settings.stat().st_ino if settings.exists() else None) == first, "written inside the requests"
            writer.close()
        finally:
            await bms.stop()
    saved = json.loads(settings.read_text())
    assert saved["values"]["network_limit_a"]["value"] == 25.0
