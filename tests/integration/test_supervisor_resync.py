"""A device whose setpoint changed behind the gateway's back is brought back, over real Modbus: the real supervisor,
the profile-driven driver and the charger simulator on a loopback TCP port.

The controller notices the read-back differs from what the device acknowledged and re-sends; the driver once
skipped that write because its own cache said the device was already there, so a device at 32 A stayed booked at
16 A for ever."""

from __future__ import annotations

from support.ocpp_rig import REGISTRY, car, until

from drivers.bus import BusPool
from drivers.sim.clock import ScaledClock
from drivers.sim.server import TcpListen
from drivers.sim.site import SimulatedSite
from gateway.runtime.supervisor import Supervisor
from gateway.runtime.wiring import ModbusWiring
from gateway.site.config import parse_site
from gateway.site.settings import SiteSettings


async def test_a_setpoint_changed_behind_the_gateways_back_is_sent_again() -> None:
    site = SimulatedSite(ScaledClock(1.0))
    line = site.add_line(TcpListen("127.0.0.1", 0))
    charger, = site.add_chargers(line, REGISTRY.charger("powershare-sim"), [1])
    charger.plug(car("a"))
    await site.start()
    assert line.server is not None
    data = {"installation_limit_a": 100, "network_limit_a": 16, "enabled": True,
            "control": {"tick_s": 0.2, "vehicle_response_s": 0.3},
            "chargers": [{"id": "cp1", "profile": "powershare-sim", "comm_timeout_s": 30,
                          "transport": {"type": "tcp", "host": "127.0.0.1", "port": line.server.port, "unit": 1,
                                        "timeout_s": 0.3}}]}
    config, _ = parse_site(data, "site.yaml", REGISTRY.nameplate_a)
    settings = SiteSettings(config, REGISTRY.nameplate_a)
    pool = BusPool()
    wiring = ModbusWiring(REGISTRY, settings, pool)
    supervisor = Supervisor(settings, wiring.make_driver, ratings_of=wiring.ratings)
    await supervisor.start()
    try:
        await supervisor.wait_ready(5)
        await until(lambda: charger.setpoint_a == 16)
        charger.setpoint_a = 32  # the installer's display, or a reboot to the device's default
        await until(lambda: charger.setpoint_a == 16)
        assert supervisor.status().units[0].setpoint_a == 16
        assert supervisor.status().invariant_violations == 0
    finally:
        await supervisor.stop()
        await pool.close()
        await site.stop()
