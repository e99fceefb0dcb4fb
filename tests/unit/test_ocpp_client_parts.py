"""The OCPP client's pure and synchronous parts: meter values, authorisation, schema error codes, the ``ocpp:``
section of the site file, the password, log redaction, backoff."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from support.ocpp_rig import REGISTRY
from support.ocpp_units import unit

from gateway.faces.ocpp.authorization import LocalAuthorization, decide
from gateway.faces.ocpp.client import backoff_s
from gateway.faces.ocpp.meter_values import Context, Wiring, meter_value, next_aligned, next_sample
from gateway.faces.ocpp.payload import CallErrorCode, PayloadError, parse_time
from gateway.faces.ocpp.rpc import CALL, CALLRESULT, check
from gateway.faces.ocpp.security import RedactingLogger, SecuritySetupError, connection_url, load_password
from gateway.runtime.commands import SetNetworkLimit
from gateway.site.config import ConfigError, parse_site
from gateway.site.settings import SiteSettings

KEY = "0123456789abcdef0123"


def values(sample: dict[str, Any] | None) -> dict[tuple[str, str | None], str]:
    assert sample is not None
    return {(v["measurand"], v.get("phase")): v["value"] for v in sample["sampledValue"]}


def test_meter_values_are_on_the_connectors_own_phases() -> None:
    status = unit("C", current_a=(0.0, 15.0, 16.0), setpoint_a=16.0, power_w=7000.0)
    wiring = Wiring(site_phases=(1, 2, 0), voltage_v=230.0)  # charger L1 on site L2, L2 on L3, L3 on L1
    sample = meter_value(status, ["Current.Import", "Current.Offered.L3", "Power.Active.Import.L2", "Power.Offered",
                                  "Energy.Active.Import.Register"], wiring, Context.PERIODIC, 0.0, 12345.67)
    assert values(sample) == {("Current.Import", "L1"): "15", ("Current.Import", "L2"): "16",
                              ("Current.Import", "L3"): "0", ("Current.Offered", "L3"): "16",
                              ("Power.Active.Import", "L2"): "3612.9", ("Power.Offered", None): "11040",
                              ("Energy.Active.Import.Register", None): "12345.7"}
    assert sample is not None and sample["timestamp"] == "1970-01-01T00:00:00Z"


def test_a_one_phase_charger_reports_l1_only_and_nothing_without_values() -> None:
    status = unit("C", current_a=(0.0, 0.0, 7.5))
    sample = meter_value(status, ["Current.Import", "Current.Import.L2"], Wiring((2,), 230.0), Context.CLOCK, 0, None)
    assert values(sample) == {("Current.Import", "L1"): "7.5", ("Current.Import", "L2"): "0"}
    assert meter_value(status, ["Energy.Active.Import.Register"], Wiring((2,), 230.0), Context.CLOCK, 0, None) is None


@pytest.mark.parametrize(("t", "interval", "expected"), [
    ("2024-01-01T10:07:00Z", 900, "2024-01-01T10:15:00Z"),
    ("2024-01-01T10:15:00Z", 900, "2024-01-01T10:30:00Z"),
    ("2024-01-01T23:59:00Z", 7000, "2024-01-02T00:00:00Z"),  # 7000 s does not divide a day: midnight restarts
    ("2024-01-01T00:00:01Z", 7000, "2024-01-01T01:56:40Z"),
])
def test_clock_aligned_instants_count_from_midnight(t: str, interval: int, expected: str) -> None:
    assert next_aligned(parse_time(t), interval) == parse_time(expected)


def test_sampled_instants_count_from_the_transaction_start() -> None:
    assert next_sample(100.0, 100.0, 60) == 160.0
    assert next_sample(100.0, 219.0, 60) == 220.0
    assert next_sample(100.0, 220.0, 60) == 280.0


@pytest.mark.parametrize(("local", "central", "pre", "offline", "unknown", "expected"), [
    ("Accepted", None, True, False, False, True),  # LocalPreAuthorize
    ("Accepted", "Blocked", False, True, False, False),  # online: the central system decides
    (None, "Accepted", False, False, False, True),
    ("Accepted", None, False, True, False, True),  # offline, known: LocalAuthorizeOffline
    ("Accepted", None, False, False, True, False),
    ("Blocked", None, False, True, True, False),
    (None, None, False, True, True, True),  # offline, unknown: AllowOfflineTxForUnknownId
    (None, None, False, True, False, False),
])
def test_authorisation_decision(local: str | None, central: str | None, pre: bool, offline: bool, unknown: bool,
                                expected: bool) -> None:
    assert decide(local, central, pre_authorize=pre, offline_authorize=offline,
                  allow_unknown_offline=unknown) is expected


def test_local_list_and_cache_with_expiry() -> None:
    auth = LocalAuthorization(["FLEET-1"])
    auth.remember("DRIVER", {"status": "Accepted", "expiryDate": "2024-01-01T00:00:00Z"})
    auth.remember("THIEF", {"status": "Blocked"})
    assert auth.lookup("FLEET-1", 0) == "Accepted" and auth.lookup("NOBODY", 0) is None
    assert auth.lookup("DRIVER", parse_time("2023-12-31T00:00:00Z")) == "Accepted"
    assert auth.lookup("DRIVER", parse_time("2024-01-01T00:00:00Z")) == "Expired"
    restored = LocalAuthorization.from_json(["FLEET-1"], auth.to_json())
    assert restored.lookup("THIEF", 0) == "Blocked"
    restored.clear_cache()
    assert restored.lookup("THIEF", 0) is None and restored.lookup("FLEET-1", 0) == "Accepted"


@pytest.mark.parametrize(("action", "payload", "code"), [
    ("Reset", {"type": "Bogus"}, CallErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
    ("Reset", {}, CallErrorCode.OCCURENCE_CONSTRAINT_VIOLATION),
    ("Reset", {"type": "Hard", "extra": 1}, CallErrorCode.FORMATION_VIOLATION),
    ("ChangeAvailability", {"connectorId": "1", "type": "Operative"}, CallErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ("RemoteStopTransaction", {"transactionId": 1.5}, CallErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ("ChangeConfiguration", {"key": "k" * 51, "value": "1"}, CallErrorCode.TYPE_CONSTRAINT_VIOLATION),
])
def test_schema_failures_get_the_16_codes(action: str, payload: dict[str, Any], code: CallErrorCode) -> None:
    with pytest.raises(PayloadError) as failure:
        check(CALL, action, payload)
    assert failure.value.code is code


def test_a_composite_schedule_answer_is_checked_with_exact_decimals() -> None:
    answer = {"status": "Accepted", "connectorId": 0, "scheduleStart": "2024-01-01T00:00:00Z",
              "chargingSchedule": {"duration": 60, "chargingRateUnit": "A",
                                   "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}]}}
    check(CALLRESULT, "GetCompositeSchedule", answer)  # 21.4 is a multiple of 0.1 (binary floats say it is not)
    answer["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 15.94
    with pytest.raises(PayloadError):
        check(CALLRESULT, "GetCompositeSchedule", answer)


def site(ocpp: dict[str, Any]) -> Any:
    data = {"installation_limit_a": 32, "network_limit_a": 32, "ocpp": ocpp,
            "chargers": [{"id": "cp1", "profile": "powershare-sim", "transport": {"type": "tcp", "host": "h"}}]}
    return parse_site(data, "site.yaml", REGISTRY.nameplate_a)[0]


@pytest.mark.parametrize(("ocpp", "message"), [
    ({"url": "http://cs", "charge_point_id": "A"}, "url"),
    ({"url": "ws://cs", "charge_point_id": "A/B"}, "charge_point_id"),
    ({"url": "ws://cs", "charge_point_id": "A", "security_profile": 1}, "exactly one of password"),
    ({"url": "wss://cs", "charge_point_id": "A", "security_profile": 1, "password": KEY}, "profile 2"),
    ({"url": "ws://cs", "charge_point_id": "A", "security_profile": 2, "password": KEY}, "wss://"),
    ({"url": "wss://cs", "charge_point_id": "A", "security_profile": 3}, "client_cert and client_key"),
    ({"url": "ws://cs", "charge_point_id": "A", "security_profile": 1, "password": "short"}, "16 to 40"),
    ({"url": "ws://cs", "charge_point_id": "A", "password": KEY}, "sends no password"),
    ({"url": "ws://cs", "charge_point_id": "A", "meter_values": {"sampled_data": ["Voltage"]}}, "not supported"),
    ({"url": "ws://cs", "charge_point_id": "A", "authorization": {"id_tag": "x" * 21}}, "id_tag"),
    ({"url": "ws://cs", "charge_point_id": "A", "reconnect_min_s": 10, "reconnect_max_s": 5}, "reconnect_max_s"),
])
def test_the_ocpp_section_is_checked(ocpp: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as failure:
        site(ocpp)
    assert message in str(failure.value)
    assert KEY not in str(failure.value)


def test_a_good_ocpp_section_and_its_url() -> None:
    config = site({"url": "wss://cs.example.com/ocpp/", "charge_point_id": "GW-1@site", "security_profile": 2,
                   "password_env": "KEY"}).ocpp
    assert config is not None
    assert connection_url(config) == "wss://cs.example.com/ocpp/GW-1%40site"


def test_the_password_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")
    from_file = site({"url": "ws://cs", "charge_point_id": "A", "security_profile": 1,
                      "password_file": str(tmp_path / "key")}).ocpp
    assert load_password(from_file) == KEY
    from_env = site({"url": "ws://cs", "charge_point_id": "A", "security_profile": 1, "password_env": "K"}).ocpp
    assert load_password(from_env, {"K": KEY}) == KEY
    with pytest.raises(SecuritySetupError, match="no K"):
        load_password(from_env, {})
    with pytest.raises(SecuritySetupError, match="16 to 40") as failure:
        load_password(from_env, {"K": "tiny"})
    assert "tiny" not in str(failure.value)
    missing = site({"url": "ws://cs", "charge_point_id": "A", "security_profile": 1,
                    "password_file": str(tmp_path / "nope")}).ocpp
    with pytest.raises(SecuritySetupError, match="nope"):
        load_password(missing)
    assert repr(site({"url": "ws://cs", "charge_point_id": "A", "security_profile": 1, "password": KEY})).count(
        KEY) == 0


def test_redacting_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test.redact")
    redacting = RedactingLogger(logging.getLogger("test.redact"), (KEY, "dG9rZW4="))
    redacting.debug("> %s: %s", "Authorization", "Basic dG9rZW4=")
    redacting.info("key is %s", KEY)
    redacting.warning('< [2,"1","ChangeConfiguration",{"key":"AuthorizationKey","value":"s3cret\\"x"}]')
    text = caplog.text
    assert KEY not in text and "dG9rZW4=" not in text and "s3cret" not in text
    assert "Authorization: <redacted>" in text and '"value":"<redacted>"' in text


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_s(a, 1.0, 20.0) for a in range(7)] == [1, 2, 4, 8, 16, 20, 20]
    assert backoff_s(10_000, 1.0, 300.0) == 300.0


def test_runtime_settings_keep_an_inline_key() -> None:
    config = site({"url": "ws://cs", "charge_point_id": "A", "security_profile": 1, "password": KEY})
    settings = SiteSettings(config, REGISTRY.nameplate_a)
    settings.apply(SetNetworkLimit(20))
    assert settings.config.ocpp is not None and settings.config.ocpp.password == KEY
    assert KEY not in repr(settings.config)
