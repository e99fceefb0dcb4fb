"""The site as the gateway starts with it, written back as a site file: what the installer set on the page becomes a
file that ``powershare check-config`` reads and that can replace the original (followers added or removed,
limits, sharing on or off, circuits, each unit's wiring, the site meter, the BMS face, the central system).
``GET /api/site.yaml`` and ``powershare export-site`` both write it with ``export_site``.

Only settings that differ from their defaults are written, in the site file's own key order, but for the required
keys and every Modbus unit id. The OCPP AuthorizationKey is never written out (a downloaded file travels by mail and
USB sticks): a site whose key sits in the file itself gets a comment saying to set ``password_file`` or
``password_env`` instead; a key set on the page is a file of the state directory, and the export names that file.
Runtime unit limits and the BMS watchdog are not site-file settings (the file holds each unit's breaker limit), so
they stay in the state directory.
"""

from __future__ import annotations

from typing import Any

import yaml

from gateway.site.config import OcppTransport, SiteConfig

HEADER = "# powershare site file, exported from the running gateway; check it with: powershare check-config FILE\n"
KEY_WITHHELD = ("# ocpp.password (the AuthorizationKey) was not exported: put it in a file and set ocpp.password_file, "
                "or set ocpp.password_env\n")


def export_site(config: SiteConfig) -> str:
    data: dict[str, Any] = config.model_dump(mode="json", exclude_defaults=True)
    for key in ("installation_limit_a", "network_limit_a"):
        data[key] = getattr(config, key)  # required keys stay even where they equal a default
    data["enabled"] = config.enabled
    # A Modbus unit id is written out even where it is the schema's default (1): check-config asks for it where
    # the device's own default differs (unit 255 for many TCP chargers), and an omitted 1 would then be refused.
    for entry, charger in zip(data.get("chargers", ()), config.chargers, strict=True):
        if not isinstance(charger.transport, OcppTransport):
            entry["transport"]["unit"] = charger.transport.unit
    if config.meter is not None:
        data["meter"]["transport"]["unit"] = config.meter.transport.unit
    withheld = False
    ocpp = data.get("ocpp")
    if isinstance(ocpp, dict) and ocpp.pop("password", None) is not None:
        withheld = True
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return HEADER + (KEY_WITHHELD if withheld else "") + body
