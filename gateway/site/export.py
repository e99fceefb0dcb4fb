"""The site as it runs now, written back as a site file: what the installer set on the page becomes a file that
``powershare check-config`` reads and that can replace the original (followers added or removed on the page,
the network limit, sharing on or off).

Only settings that differ from their defaults are written, in the site file's own key order. The OCPP
AuthorizationKey is never written out (a downloaded file travels by mail and USB sticks): a site whose key sits
in the file itself gets a comment saying to set ``password_file`` or ``password_env`` instead. Runtime unit
limits are not site-file settings (the file holds each unit's breaker limit), so they stay in the state
directory.
"""

from __future__ import annotations

from typing import Any

import yaml

from gateway.site.config import SiteConfig

HEADER = "# powershare site file, exported from the running gateway; check it with: powershare check-config FILE\n"
KEY_WITHHELD = ("# ocpp.password (the AuthorizationKey) was not exported: put it in a file and set ocpp.password_file, "
                "or set ocpp.password_env\n")


def export_site(config: SiteConfig) -> str:
    data: dict[str, Any] = config.model_dump(mode="json", exclude_defaults=True)
    for key in ("installation_limit_a", "network_limit_a"):
        data[key] = getattr(config, key)  # required keys stay even where they equal a default
    data["enabled"] = config.enabled
    withheld = False
    ocpp = data.get("ocpp")
    if isinstance(ocpp, dict) and ocpp.pop("password", None) is not None:
        withheld = True
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return HEADER + (KEY_WITHHELD if withheld else "") + body
