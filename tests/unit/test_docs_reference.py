"""The reference documents keep up with the code: every site-file key and every shipped profile is documented."""


from pydantic import BaseModel
from support.paths import REPO

from drivers.profile import ProfileRegistry
from gateway.site import config

DOCS = REPO / "docs"


def test_configuration_reference_names_every_site_file_key() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    models: list[type[BaseModel]] = [config.SiteConfig, config.SupplyConfig, config.CircuitConfig,
                                     config.ChargerConfig, config.ControlConfig, config.TcpTransport,
                                     config.RtuOverTcpTransport, config.RtuTransport, config.OcppTransport,
                                     config.OcppEndpointConfig, config.OcppConfig, config.OcppAuthorizationConfig,
                                     config.OcppMeterValuesConfig, config.MeterConfig, config.ScheduleConfig,
                                     config.HistoryConfig]
    missing = sorted({f"{m.__name__}.{key}" for m in models for key in m.model_fields if f"`{key}`" not in text})
    assert missing == []


def test_profiles_document_lists_every_shipped_profile() -> None:
    text = (DOCS / "profiles.md").read_text(encoding="utf-8")
    missing = [name for name in ProfileRegistry.shipped().names() if f"`{name}`" not in text]
    assert missing == []
