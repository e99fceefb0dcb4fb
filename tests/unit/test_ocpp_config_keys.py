"""OCPP configuration keys: GetConfiguration, ChangeConfiguration statuses and validation, persistence."""

from __future__ import annotations

import json

import pytest

from gateway.faces.ocpp.charging_profile import RateUnit
from gateway.faces.ocpp.config_keys import (
    KEYS,
    SPECS,
    ChangeStatus,
    Configuration,
    ConfigurationStateError,
    KeyValue,
    ValueType,
)
from gateway.site.config import parse_site

REQUIRED_CORE = ("AuthorizeRemoteTxRequests", "ClockAlignedDataInterval", "ConnectionTimeOut",
                 "ConnectorPhaseRotation", "GetConfigurationMaxKeys", "HeartbeatInterval", "LocalAuthorizeOffline",
                 "LocalPreAuthorize", "MeterValuesAlignedData", "MeterValuesSampledData", "MeterValueSampleInterval",
                 "NumberOfConnectors", "ResetRetries", "StopTransactionOnEVSideDisconnect",
                 "StopTransactionOnInvalidId", "StopTxnAlignedData", "StopTxnSampledData", "SupportedFeatureProfiles",
                 "TransactionMessageAttempts", "TransactionMessageRetryInterval", "UnlockConnectorOnEVSideDisconnect")
SMART_CHARGING = ("ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit",
                  "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled")


def test_the_table_has_every_required_key_and_valid_defaults() -> None:
    assert set(REQUIRED_CORE + SMART_CHARGING) <= set(SPECS)
    assert len(SPECS) == len(KEYS)
    for spec in KEYS:
        assert spec.problem(spec.default) is None, spec.name
    assert all(SPECS[name].readonly for name in (*SMART_CHARGING, "NumberOfConnectors", "SupportedFeatureProfiles"))


def test_get_all_and_get_some() -> None:
    cfg = Configuration({"NumberOfConnectors": "3"})
    known, unknown = cfg.get()
    assert [k.key for k in known] == [spec.name for spec in KEYS] and unknown == []
    known, unknown = cfg.get(["NumberOfConnectors", "Colour", "HeartbeatInterval", "NumberOfConnectors"])
    assert known == [KeyValue("NumberOfConnectors", True, "3"), KeyValue("HeartbeatInterval", False, "300")]
    assert unknown == ["Colour"]
    body = cfg.get_payload(["HeartbeatInterval", "Colour"])
    assert body == {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
                    "unknownKey": ["Colour"]}
    assert "unknownKey" not in cfg.get_payload()


@pytest.mark.parametrize(("key", "value", "status", "stored"), [
    ("HeartbeatInterval", "120", ChangeStatus.ACCEPTED, "120"),
    ("HeartbeatInterval", " 0120 ", ChangeStatus.ACCEPTED, "120"),
    ("HeartbeatInterval", "-5", ChangeStatus.REJECTED, "300"),
    ("HeartbeatInterval", "12.5", ChangeStatus.REJECTED, "300"),
    ("HeartbeatInterval", "999999", ChangeStatus.REJECTED, "300"),
    ("LocalPreAuthorize", "TRUE", ChangeStatus.ACCEPTED, "true"),
    ("LocalPreAuthorize", "yes", ChangeStatus.REJECTED, "false"),
    ("MeterValuesSampledData", "Energy.Active.Import.Register, Current.Import.L2,Current.Offered",
     ChangeStatus.ACCEPTED, "Energy.Active.Import.Register,Current.Import.L2,Current.Offered"),
    ("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage", ChangeStatus.REJECTED,
     "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Current.Offered"),
    ("MeterValuesSampledData", "Current.Import,Current.Import", ChangeStatus.REJECTED,
     "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Current.Offered"),
    ("StopTxnSampledData", "", ChangeStatus.ACCEPTED, ""),
    ("WebSocketPingInterval", "30", ChangeStatus.REBOOT_REQUIRED, "30"),
    ("NumberOfConnectors", "5", ChangeStatus.REJECTED, "2"),
    ("ChargeProfileMaxStackLevel", "20", ChangeStatus.REJECTED, "8"),
    ("HeartbeatInterval", "1" * 501, ChangeStatus.REJECTED, "300"),
])
def test_change_configuration(key: str, value: str, status: ChangeStatus, stored: str) -> None:
    cfg = Configuration({"NumberOfConnectors": "2"})
    result, reason = cfg.change(key, value)
    assert result is status
    assert (reason is None) == (status in (ChangeStatus.ACCEPTED, ChangeStatus.REBOOT_REQUIRED))
    assert cfg.value(key) == stored


def test_unknown_key_is_not_supported() -> None:
    status, reason = Configuration().change("Colour", "red")
    assert status is ChangeStatus.NOT_SUPPORTED and "Colour" in (reason or "")


def test_measurand_list_length_is_bounded_by_its_max_length_key() -> None:
    cfg = Configuration()
    many = "Energy.Active.Import.Register,Power.Offered,Current.Offered,Current.Import,Current.Import.L1," \
           "Current.Import.L2,Current.Import.L3,Power.Active.Import,Power.Active.Import.L1"
    status, reason = cfg.change("MeterValuesSampledData", many)
    assert status is ChangeStatus.REJECTED and "MeterValuesSampledDataMaxLength" in (reason or "")


def test_typed_reads() -> None:
    cfg = Configuration()
    assert cfg.integer("MeterValueSampleInterval") == 60
    assert cfg.boolean("StopTransactionOnInvalidId") is True
    assert cfg.entries("SupportedFeatureProfiles") == ["Core", "SmartCharging", "RemoteTrigger"]
    assert SPECS["MeterValuesSampledData"].type is ValueType.LIST


def test_only_changed_writable_values_persist() -> None:
    cfg = Configuration({"NumberOfConnectors": "4"})
    cfg.change("HeartbeatInterval", "90")
    cfg.change("MeterValuesSampledData", "Current.Import")
    saved = json.loads(cfg.to_json())
    assert saved == {"version": 1, "changed": {"HeartbeatInterval": "90", "MeterValuesSampledData": "Current.Import"}}
    again = Configuration.from_json(cfg.to_json(), {"NumberOfConnectors": "4"})
    assert again.get() == cfg.get()


@pytest.mark.parametrize(("fixed", "changed", "words"), [
    ({"HeartbeatInterval": "10"}, None, "not a read-only"),
    (None, {"NumberOfConnectors": "3"}, "not a writable"),
    (None, {"HeartbeatInterval": "soon"}, "not a whole number"),
    (None, {"Colour": "red"}, "not a writable"),
])
def test_bad_supplied_values_are_refused(fixed: dict[str, str] | None, changed: dict[str, str] | None,
                                         words: str) -> None:
    with pytest.raises(ConfigurationStateError, match=words):
        Configuration(fixed, changed)


@pytest.mark.parametrize("text", ["", "[]", '{"version": 2, "changed": {}}', '{"version": 1, "changed": {"a": 1}}'])
def test_unreadable_saved_configuration_is_refused(text: str) -> None:
    with pytest.raises(ConfigurationStateError):
        Configuration.from_json(text)


def test_profile_rules_follow_the_keys() -> None:
    rules = Configuration({"NumberOfConnectors": "3", "ChargingScheduleAllowedChargingRateUnit": "Current",
                           "ChargeProfileMaxStackLevel": "4"}).profile_rules()
    assert rules.number_of_connectors == 3 and rules.max_stack_level == 4
    assert rules.allowed_units == frozenset({RateUnit.A})
    assert rules.max_periods == 24 and rules.max_profiles == 32


def test_for_site_reports_connectors_and_their_wiring() -> None:
    site, _ = parse_site({"installation_limit_a": 63, "network_limit_a": 40, "chargers": [
        {"id": "a", "profile": "p", "transport": {"type": "tcp", "host": "h"}},
        {"id": "b", "profile": "p", "transport": {"type": "tcp", "host": "h"}, "phase_rotation": "L2L3L1"},
        {"id": "c", "profile": "p", "transport": {"type": "tcp", "host": "h"}, "phases": 1,
         "phase_rotation": "L3"}]}, "site.yaml", lambda name: 32.0)
    cfg = Configuration.for_site(site)
    assert cfg.integer("NumberOfConnectors") == 3
    assert cfg.value("ConnectorPhaseRotation") == "0.RST,1.RST,2.STR,3.NotApplicable"
    assert cfg.change("ConnectorPhaseRotation", "1.RTS")[0] is ChangeStatus.REJECTED
